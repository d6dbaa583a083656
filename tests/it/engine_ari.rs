//! ACME Renewal Information in the engine: a certificate not yet due by `renew_before`
//! is renewed once the window its CA suggests has started, and not before.

use crate::support as common;

use std::time::Duration;

use common::{Harness, NowUtc, WWW};
use dcvd::ca::MethodScope;
use dcvd::model::OrderState;

#[tokio::test]
async fn renewal_starts_when_the_ca_suggested_window_starts() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let engine = h.engine().await;
    let first = engine.ensure_orders().await.unwrap()[0];
    assert_eq!(h.drive(&engine, first, 50).await, OrderState::Issued);

    // The fake CA issues 90-day certificates; renew_before (30 d) is far away.
    let start = h.clock.now_utc() + chrono::Duration::days(2);
    *h.ca.ari.lock().unwrap() = Some((start, start + chrono::Duration::days(1)));
    assert!(
        engine.ensure_orders().await.unwrap().is_empty(),
        "window not started yet"
    );
    assert!(
        h.ca.calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c == "renewal_window")
    );

    h.advance(Duration::from_secs(2 * 86400 + 60));
    let created = engine.ensure_orders().await.unwrap();
    assert_eq!(created.len(), 1, "renewal placed once the window started");
    let (o, _) = engine.store().load_order(created[0]).await.unwrap();
    assert_eq!(
        o.renewal_of,
        engine
            .store()
            .load_order(first)
            .await
            .unwrap()
            .0
            .ca_order_id
    );
    assert!(
        engine.ensure_orders().await.unwrap().is_empty(),
        "one live order at a time"
    );
}

#[tokio::test]
async fn no_window_means_renew_before_alone_decides() {
    let h = Harness::new(WWW, MethodScope::PerOrder);
    let engine = h.engine().await;
    let first = engine.ensure_orders().await.unwrap()[0];
    assert_eq!(h.drive(&engine, first, 50).await, OrderState::Issued);
    h.advance(Duration::from_secs(50 * 86400));
    assert!(engine.ensure_orders().await.unwrap().is_empty());
    h.advance(Duration::from_secs(11 * 86400));
    assert_eq!(
        engine.ensure_orders().await.unwrap().len(),
        1,
        "due by renew_before"
    );
}

#[test]
fn window_need_is_due_from_the_start() {
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp(1_800_000_000, 0).unwrap();
    assert_eq!(
        dcvd::lifecycle::renew::window_need(t, t - chrono::Duration::seconds(1)),
        None
    );
    assert_eq!(
        dcvd::lifecycle::renew::window_need(t, t),
        Some(dcvd::lifecycle::renew::Need::RenewalWindow(t))
    );
}
