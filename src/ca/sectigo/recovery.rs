//! Sectigo crash recovery and operator adoption on facts the CA returns:
//! `!WebHostReport` rows in the public-client shape, each candidate confirmed with
//! `download/CollectSSL`.
//!
//! A report row carries no `uniqueValue` (fixtures/sectigo/webhostreport-shape.txt), so
//! nothing in it proves which request placed the order. A row is a candidate when its
//! names are exactly the request's and its `N_dateTime` lies in the submit window (from
//! `created_at`, with [`CLOCK_SLACK`] either side, up to now). One candidate, confirmed by a
//! status call, is `Found`; two, or any row that cannot be read, is `Unsure` (an order
//! placed by hand for the same names in the same minutes looks exactly like ours).

use std::collections::BTreeSet;

use super::dcv::unique_value_for;
use super::{OrderData, SectigoProvider, wire};
use crate::ca::{CaOrderState, ErrorKind, Lookup, ProviderError, SubmitRequest, Submitted};
use crate::model::{DcvMethod, DomainName};

const REPORT: &str = "!WebHostReport";
const MDC_DETAILS: &str = "!GetMDCDomainDetails";

/// Rows asked for per report call (the public client's default `lastResultNo` is 10).
const PAGE: usize = 10;
/// Report calls at most per recovery; beyond, the answer is `Unsure`.
const MAX_PAGES: usize = 100;
/// Seconds either side of the window for clock differences between dcvd and Sectigo.
pub const CLOCK_SLACK: i64 = 600;

/// One report row that may be ours.
#[derive(Debug)]
struct Candidate {
    number: String,
    certificate_id: Option<String>,
}

fn name_set<'a>(names: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    names
        .into_iter()
        .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

impl SectigoProvider {
    pub(super) async fn find_order(&self, req: &SubmitRequest) -> Result<Lookup, ProviderError> {
        let Some(cn) = req.names.first() else {
            return Ok(Lookup::Unsure {
                reason: "the submit intent has no names; nothing to search for".into(),
                candidates: Vec::new(),
            });
        };
        let want = name_set(req.names.iter().map(|n| n.as_str()));
        let from = req.created_at.timestamp() - CLOCK_SLACK;
        let to = self.clock.now().timestamp() + CLOCK_SLACK;
        let mut seen = BTreeSet::new();
        let mut candidates = Vec::new();
        let mut unreadable = Vec::new();
        let mut first = 1usize;
        let mut with_fqdn = true;
        let mut complete = false;
        for _ in 0..MAX_PAGES {
            let mut params = vec![
                ("firstResultNo", first.to_string()),
                ("lastResultNo", (first + PAGE - 1).to_string()),
            ];
            if with_fqdn {
                params.push(("fqdn", cn.to_string()));
            }
            let (code, reply) = self.call_raw(REPORT, &params).await?;
            if code == -2 && with_fqdn && reply.get("errorItem") == Some("fqdn") {
                // The filter is named in the reference without a source page; without it
                // the whole report is read.
                with_fqdn = false;
                continue;
            }
            if code < 0 {
                let e = wire::api_error(&self.name, REPORT, code, &reply);
                if e.kind != ErrorKind::Permanent {
                    return Err(e);
                }
                return Ok(Lookup::Unsure {
                    reason: format!(
                        "Sectigo refused the order report, so dcvd cannot tell whether the \
                         submit of {} ({}) reached it: {e}",
                        req.reference,
                        names_text(req)
                    ),
                    candidates: candidates
                        .into_iter()
                        .map(|c: Candidate| c.number)
                        .collect(),
                });
            }
            let rows = row_indices(&reply);
            let mut new_rows = 0;
            for i in rows {
                let Some(number) = reply.get(&format!("{i}_orderNumber")).map(str::to_string)
                else {
                    continue;
                };
                if !seen.insert(number.clone()) {
                    continue;
                }
                new_rows += 1;
                match read_row(&reply, i) {
                    Err(missing) => unreadable.push(format!("order {number}: {missing}")),
                    Ok((when, certs)) => {
                        let ours = certs.iter().find(|(names, _)| *names == want);
                        if ours.is_some() && when > to {
                            unreadable.push(format!(
                                "order {number} for these names is dated {when} (Unix), after \
                                 dcvd's clock: the clocks differ by more than {CLOCK_SLACK} s"
                            ));
                            continue;
                        }
                        if let Some((_, cert_id)) = ours
                            && (from..=to).contains(&when)
                        {
                            if req.known_ca_orders.contains(&number) {
                                tracing::info!(provider = %self.name, order = %number,
                                    reference = %req.reference,
                                    "recovery: report row matches but dcvd already tracks this order; not adopted");
                                continue;
                            }
                            candidates.push(Candidate {
                                number,
                                certificate_id: cert_id.clone(),
                            });
                        }
                    }
                }
            }
            if new_rows == 0 {
                complete = true;
                break;
            }
            first += new_rows;
        }
        if !complete {
            return Ok(Lookup::Unsure {
                reason: format!(
                    "Sectigo's order report for {cn} has more than {} orders; dcvd stopped \
                     reading and cannot tell whether the submit of {} reached Sectigo",
                    PAGE * MAX_PAGES,
                    req.reference
                ),
                candidates: candidates.into_iter().map(|c| c.number).collect(),
            });
        }
        if !unreadable.is_empty() {
            return Ok(Lookup::Unsure {
                reason: format!(
                    "Sectigo's order report has rows that do not settle it ({}), so dcvd \
                     cannot tell whether one of them is the submit of {} ({})",
                    unreadable.join("; "),
                    req.reference,
                    names_text(req)
                ),
                candidates: candidates.into_iter().map(|c| c.number).collect(),
            });
        }
        match candidates.len() {
            0 => Ok(Lookup::NotFound),
            1 => {
                let c = candidates.remove(0);
                self.confirm(req, c).await
            }
            _ => Ok(Lookup::Unsure {
                reason: format!(
                    "Sectigo has {} orders for {} placed in the submit window of {} (orders {}); \
                     the report does not say which request placed each, so dcvd adopts none. \
                     Adopt the right one with `dcvd orders adopt` and cancel the others",
                    candidates.len(),
                    names_text(req),
                    req.reference,
                    candidates
                        .iter()
                        .map(|c| c.number.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                candidates: candidates.into_iter().map(|c| c.number).collect(),
            }),
        }
    }

    /// The status call that confirms a report row: the order exists in this account and
    /// its common name is ours.
    async fn confirm(&self, req: &SubmitRequest, c: Candidate) -> Result<Lookup, ProviderError> {
        let (code, reply) = self.collect_status(&c.number).await?;
        let unsure = |why: String| Lookup::Unsure {
            reason: format!(
                "Sectigo's report shows order {} for {} in the submit window of {}, but {why}",
                c.number,
                names_text(req),
                req.reference
            ),
            candidates: vec![c.number.clone()],
        };
        if code == -4 {
            return Ok(unsure(format!(
                "CollectSSL does not know it: {}",
                reply.get("errorMessage").unwrap_or("-4")
            )));
        }
        let state = self.collect_state(&c.number, code, &reply)?;
        match reply.get("fqdn") {
            Some(f)
                if !name_set([f]).is_subset(&name_set(req.names.iter().map(|n| n.as_str()))) =>
            {
                return Ok(unsure(format!("CollectSSL names it {f}")));
            }
            _ => {}
        }
        tracing::info!(provider = %self.name, order = %c.number, reference = %req.reference,
            state = ?state, "recovery: Sectigo order confirmed by the report and a status call");
        let data = self.order_data(req, &c.number, c.certificate_id, &state);
        self.submitted(data, &req.csr_der).map(|s| {
            Lookup::Found(vec![Submitted {
                issued: state == CaOrderState::Issued,
                ..s
            }])
        })
    }

    /// `dcvd orders adopt`: read order `id` and take it as the answer to `req`, refused
    /// (Permanent) when its names are not the request's or the order has ended.
    pub(super) async fn order_by_id(
        &self,
        req: &SubmitRequest,
        id: &str,
    ) -> Result<Submitted, ProviderError> {
        let refuse = |d: String| self.permanent("order_by_id", d);
        let id = id.trim();
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse(format!(
                "{id:?} is not a Sectigo order number (digits only)"
            )));
        }
        if req.known_ca_orders.iter().any(|k| k == id) {
            return Err(refuse(format!(
                "Sectigo order {id} is already tracked by dcvd; it is not adopted twice"
            )));
        }
        let (code, reply) = self.collect_status(id).await?;
        let state = self.collect_state(id, code, &reply)?;
        if let CaOrderState::Failed(words) = &state {
            return Err(refuse(format!("not adopting order {id}: {words}")));
        }
        let want = name_set(req.names.iter().map(|n| n.as_str()));
        let (mdc_code, mdc) = self
            .call_raw(MDC_DETAILS, &[("orderNumber", id.to_string())])
            .await?;
        let have = if mdc_code >= 0 {
            let mut names = BTreeSet::new();
            for i in 1.. {
                let Some(d) = mdc.get(&format!("{i}_domainName")) else {
                    break;
                };
                names.extend(name_set([d]));
            }
            names
        } else {
            // Single-domain orders: CollectSSL's `fqdn` is the only name there is.
            let Some(f) = reply.get("fqdn") else {
                return Err(refuse(format!(
                    "Sectigo did not say which name order {id} is for (no fqdn in CollectSSL, \
                     !GetMDCDomainDetails refused: {}); cannot check it is for {}",
                    mdc.get("errorMessage").unwrap_or("-"),
                    names_text(req)
                )));
            };
            name_set([f])
        };
        // Sectigo may add a free `www.` to a single-domain order (reference §2).
        let extra_www = |n: &String| n.strip_prefix("www.").is_some_and(|b| want.contains(b));
        let have: BTreeSet<String> = have
            .into_iter()
            .filter(|n| want.contains(n) || !extra_www(n))
            .collect();
        if have != want {
            return Err(refuse(format!(
                "Sectigo order {id} is for {} but certificate {} needs {}; not adopted",
                have.iter().cloned().collect::<Vec<_>>().join(", "),
                req.certificate,
                names_text(req)
            )));
        }
        let data = self.order_data(req, id, None, &state);
        let s = self.submitted(data, &req.csr_der)?;
        Ok(Submitted {
            issued: state == CaOrderState::Issued,
            ..s
        })
    }

    fn order_data(
        &self,
        req: &SubmitRequest,
        number: &str,
        certificate_id: Option<String>,
        state: &CaOrderState,
    ) -> OrderData {
        let method_of = |n: &DomainName| {
            req.names
                .iter()
                .position(|x| x == n)
                .and_then(|i| req.methods.get(i))
                .copied()
        };
        OrderData {
            order_number: number.to_string(),
            certificate_id,
            // dcvd always sends its own uniqueValue, and Sectigo keeps what it was sent.
            unique_value: unique_value_for(&req.reference),
            dcv_suffix: self.suffix.clone(),
            methods: req
                .names
                .iter()
                .zip(req.methods.iter())
                .map(|(n, m)| (n.to_string(), *m))
                .collect(),
            emails: req
                .approver_emails
                .iter()
                .filter(|(n, _)| method_of(n) == Some(DcvMethod::Email))
                .map(|(n, e)| (n.to_string(), e.clone()))
                .collect(),
            last_collect: Some(self.clock.now().timestamp()),
            collected_when_valid: false,
            mdc_refused: false,
            last_trigger: None,
            issued: *state == CaOrderState::Issued,
        }
    }
}

fn names_text(req: &SubmitRequest) -> String {
    req.names
        .iter()
        .map(|n| n.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Row numbers present in a report answer (`N_orderNumber` keys), whatever they start at.
fn row_indices(reply: &wire::Reply) -> Vec<usize> {
    let mut rows: Vec<usize> = reply
        .pairs
        .iter()
        .filter_map(|(k, _)| {
            let (n, rest) = k.split_once('_')?;
            rest.eq_ignore_ascii_case("orderNumber")
                .then(|| n.parse().ok())
                .flatten()
        })
        .collect();
    rows.sort_unstable();
    rows.dedup();
    rows
}

type Certs = Vec<(BTreeSet<String>, Option<String>)>;

/// A row's `N_dateTime` and, per certificate `M`, its names (`N_M_domain` plus
/// `N_M_mdcDomainNames`) and `N_M_certificateID`. `Err` names the missing field.
fn read_row(reply: &wire::Reply, i: usize) -> Result<(i64, Certs), String> {
    let when = reply
        .get(&format!("{i}_dateTime"))
        .ok_or_else(|| format!("no {i}_dateTime"))?;
    let when: i64 = when
        .trim()
        .parse()
        .map_err(|_| format!("{i}_dateTime {when:?} is not a Unix time"))?;
    let mut certs = Vec::new();
    for m in 1.. {
        let Some(domain) = reply.get(&format!("{i}_{m}_domain")) else {
            break;
        };
        let others = reply
            .get(&format!("{i}_{m}_mdcDomainNames"))
            .unwrap_or_default();
        let mut names = name_set([domain]);
        names.extend(name_set(others.split([',', ' '])));
        let id = reply
            .get(&format!("{i}_{m}_certificateID"))
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        certs.push((names, id));
    }
    if certs.is_empty() {
        return Err(format!("no {i}_1_domain"));
    }
    Ok((when, certs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_public_client_shape() {
        let body = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/fixtures/sectigo/webhostreport-shape.txt"
        ))
        .unwrap();
        let r = wire::Reply::parse(&body).unwrap();
        assert_eq!(row_indices(&r), [1, 2]);
        let (when, certs) = read_row(&r, 2).unwrap();
        assert_eq!(when, 1796186301);
        assert_eq!(
            certs[0].0,
            name_set([
                "multi.example.com",
                "www.multi.example.com",
                "api.multi.example.com"
            ])
        );
        assert_eq!(certs[0].1.as_deref(), Some("8040825"));
        let r = wire::Reply::parse("errorCode=0&1_orderNumber=5&1_1_domain=a.example").unwrap();
        assert_eq!(read_row(&r, 1).unwrap_err(), "no 1_dateTime");
    }
}
