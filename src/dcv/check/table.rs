//! Entry point and output of `dcvd dns check <fqdn> <TXT|CNAME> <value>`.

use super::dns::Expect;
use super::{CheckReport, DnsError, ServerOutcome};
use crate::config::DnsConfig;
use crate::model::ChallengeKind;
use crate::model::ErrorKind;

/// One round of the DNS check for `fqdn` with the configured mode, resolvers and overrides.
/// `kind` is `TXT` or `CNAME`.
pub async fn check_once(
    cfg: &DnsConfig,
    fqdn: &str,
    kind: ChallengeKind,
    value: &str,
) -> Result<CheckReport, DnsError> {
    let bad = |detail: String| DnsError {
        what: fqdn.to_string(),
        detail,
        kind: ErrorKind::Permanent,
    };
    let expect = match kind {
        ChallengeKind::DnsTxt => Expect::Txt(value.to_string()),
        ChallengeKind::DnsCname => Expect::Cname(value.trim_end_matches('.').to_ascii_lowercase()),
        other => return Err(bad(format!("`dns check` takes TXT or CNAME, not {other}"))),
    };
    let check = super::build_dns(cfg).map_err(bad)?;
    check.check_name(fqdn, &expect).await
}

fn outcome_text(o: &ServerOutcome) -> (String, String) {
    match o {
        ServerOutcome::OtherValue(v) => ("other value".into(), v.join(" | ")),
        ServerOutcome::Error(e) => ("error".into(), e.clone()),
        other => (other.metric_label().to_string(), String::new()),
    }
}

/// A per-server table, then a verdict line.
pub fn render_table(report: &CheckReport) -> String {
    let rows: Vec<(String, String, String)> = report
        .servers
        .iter()
        .map(|s| {
            let (r, d) = outcome_text(&s.outcome);
            (s.server.clone(), r, d)
        })
        .collect();
    let w0 = rows
        .iter()
        .map(|r| r.0.len())
        .max()
        .unwrap_or(0)
        .max("SERVER".len());
    let w1 = rows
        .iter()
        .map(|r| r.1.len())
        .max()
        .unwrap_or(0)
        .max("RESULT".len());
    let mut out = format!("{:<w0$}  {:<w1$}  DETAIL\n", "SERVER", "RESULT");
    for (s, r, d) in &rows {
        out.push_str(format!("{s:<w0$}  {r:<w1$}  {d}").trim_end());
        out.push('\n');
    }
    let ok = report
        .servers
        .iter()
        .filter(|s| s.outcome == ServerOutcome::Present)
        .count();
    out.push_str(&format!(
        "{}: {} of {} servers have the value at {}\n",
        if report.present {
            "PRESENT"
        } else {
            "NOT PRESENT"
        },
        ok,
        report.servers.len(),
        report.final_name
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServerResult;

    #[test]
    fn table_lists_every_server_and_the_verdict() {
        let r = CheckReport {
            present: false,
            final_name: "_dnsauth.example.test".into(),
            servers: vec![
                ServerResult {
                    server: "ns1.example.test (127.0.0.1:53)".into(),
                    outcome: ServerOutcome::Present,
                },
                ServerResult {
                    server: "127.0.0.2:53".into(),
                    outcome: ServerOutcome::OtherValue(vec!["old".into()]),
                },
            ],
        };
        let t = render_table(&r);
        assert!(
            t.contains("ns1.example.test (127.0.0.1:53)  present"),
            "{t}"
        );
        assert!(t.contains("other value  old"), "{t}");
        assert!(
            t.ends_with("NOT PRESENT: 1 of 2 servers have the value at _dnsauth.example.test\n"),
            "{t}"
        );
    }
}
