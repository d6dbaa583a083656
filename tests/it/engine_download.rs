//! The download step never installs a broken chain (R2): a download cut inside the
//! intermediate is refused before anything is written, retried with backoff, and the
//! whole chain is installed once the CA sends it whole.

use crate::support as common;

use common::{Harness, NowUtc, WWW};
use dcvd::ca::MethodScope;
use dcvd::model::OrderState;

fn count_certs(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .matches("-----BEGIN CERTIFICATE-----")
        .count()
}

#[tokio::test]
async fn a_truncated_download_is_retried_never_installed_then_installed_whole() {
    // The placeholder files below are not a certificate dcvd could adopt; with the default
    // adopt = "if-valid" the first start would hold the certificate for the operator.
    let www = WWW.replace("output_dir =", "adopt = \"never\"\noutput_dir =");
    let h = Harness::new(&www, MethodScope::PerOrder);
    *h.ca.truncate_next_downloads.lock().unwrap() = 2;
    // What an earlier certificate left installed must stay as it is while downloads fail.
    let dir = h.path("certs/www");
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"] {
        std::fs::write(dir.join(f), format!("previous {f}\n")).unwrap();
    }

    let engine = h.engine().await;
    let id = engine.ensure_orders().await.unwrap()[0];
    let downloads = || h.ca.calls().iter().filter(|c| *c == "download").count();
    // Drive until the first (cut) download was refused.
    for _ in 0..50 {
        engine.run_due().await.unwrap();
        if downloads() >= 1 {
            break;
        }
        let next = engine.store().next_due(&[]).await.unwrap().unwrap();
        if next > h.clock.now_utc() {
            h.clock.set(next);
        }
    }
    assert_eq!(downloads(), 1, "the order reached the download step");

    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert_ne!(
        o.state,
        OrderState::Issued,
        "a chainless certificate is not issued"
    );
    assert!(
        !o.state.is_terminal(),
        "the order is not failed: {:?}",
        o.state
    );
    assert!(o.cert_pem.is_none(), "no certificate recorded");
    let err = o.last_error.clone().expect("last_error says why");
    assert!(
        err.contains("download refused")
            && err.contains("no chain certificates")
            && err.contains("retried"),
        "{err}"
    );
    assert!(
        o.next_attempt_at > h.clock.now_utc(),
        "retried later, with backoff"
    );
    for f in ["cert.pem", "chain.pem", "fullchain.pem", "privkey.pem"] {
        assert_eq!(
            std::fs::read_to_string(dir.join(f)).unwrap(),
            format!("previous {f}\n"),
            "{f} was touched by a refused download"
        );
    }
    let evs = engine.store().events(id).await.unwrap();
    assert!(
        evs.iter()
            .any(|e| e.kind == dcvd::model::EventKind::Error
                && e.message.contains("download refused")),
        "an event tells the operator: {evs:?}"
    );
    assert!(
        !evs.iter()
            .any(|e| e.kind == dcvd::model::EventKind::Installed)
    );

    // The second download is cut too; the third is whole and gets installed.
    assert_eq!(h.drive(&engine, id, 50).await, OrderState::Issued);
    assert_eq!(downloads(), 3, "{:?}", h.ca.calls());
    assert_eq!(h.ca.order_count(), 1, "never ordered again");
    assert_eq!(count_certs(&dir.join("cert.pem")), 1);
    assert_eq!(
        count_certs(&dir.join("chain.pem")),
        2,
        "intermediate and root"
    );
    assert_eq!(count_certs(&dir.join("fullchain.pem")), 3);
    let full = std::fs::read_to_string(dir.join("fullchain.pem")).unwrap();
    let leaf = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let chain = std::fs::read_to_string(dir.join("chain.pem")).unwrap();
    assert_eq!(full, format!("{leaf}{chain}"));
    assert!(
        std::fs::read_to_string(dir.join("privkey.pem"))
            .unwrap()
            .contains("PRIVATE KEY")
    );
    let (o, _) = engine.store().load_order(id).await.unwrap();
    assert!(o.last_error.is_none(), "{:?}", o.last_error);
    let refused = engine
        .store()
        .events(id)
        .await
        .unwrap()
        .iter()
        .filter(|e| {
            e.kind == dcvd::model::EventKind::Error && e.message.contains("download refused")
        })
        .count();
    assert_eq!(refused, 2);
}
