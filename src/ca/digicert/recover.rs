//! Crash recovery: find the CertCentral order an unanswered submit may have placed,
//! on facts the CA returns. The order's CSR is the definitive proof (the key and CSR
//! are dcvd's own, made for this certificate); our reference in `comments` (which GET
//! order info shows inside `requests[]`) is only a second signal.

use reqwest::Method;

use super::order::{order_names, request_names};
use super::wire::*;
use super::{DigicertProvider, NONE};
use crate::ca::{Lookup, ProviderError, SubmitRequest};

/// Orders per list page (CertCentral allows up to 1000; smaller pages keep answers short).
const PAGE: u64 = 100;
/// More pages than this for one common name in the window: the answer is not read in full.
const MAX_PAGES: u64 = 50;

/// One listed order that could be ours, after its details were read.
enum Verdict {
    Ours,
    NotOurs,
    Doubtful(String),
}

impl DigicertProvider {
    /// List every order for the common name created in the window (all pages), keep those
    /// with the request's names that dcvd does not already track, read each one's
    /// details and decide on its CSR. Calls: list pages, one GET per candidate, and the
    /// random value of the oldest match when it is a pending token order.
    pub(super) async fn find_order(&self, req: &SubmitRequest) -> Result<Lookup, ProviderError> {
        let Some(cn) = req.names.first() else {
            return Ok(Lookup::NotFound);
        };
        let (listed, complete) = self.list_window(req, cn.as_str()).await?;
        let want = request_names(req);
        let mut ours: Vec<(String, OrderInfo)> = Vec::new();
        let mut doubtful: Vec<(u64, String)> = Vec::new();
        for item in listed {
            if req
                .known_ca_orders
                .iter()
                .any(|k| k.trim() == item.id.to_string())
            {
                continue;
            }
            // A list item without names could be ours: read its details to know.
            if !item.certificate.common_name.is_empty() && order_names(&item) != want {
                continue;
            }
            let info = self.order_info(item.id).await?;
            if order_names(&info) != want {
                continue;
            }
            match verdict(&info, req) {
                Verdict::Ours => {
                    let created = info
                        .date_created
                        .clone()
                        .or_else(|| item.date_created.clone())
                        .or_else(|| info.certificate.date_created.clone())
                        .unwrap_or_default();
                    ours.push((created, info));
                }
                Verdict::NotOurs => {}
                Verdict::Doubtful(why) => doubtful.push((info.id, why)),
            }
        }
        if !ours.is_empty() {
            ours.sort_by(|a, b| {
                let t = |s: &str| super::data::parse_time(s);
                (t(&a.0), a.1.id).cmp(&(t(&b.0), b.1.id))
            });
            let mut found = Vec::with_capacity(ours.len());
            for (i, (_, info)) in ours.iter().enumerate() {
                // Only the oldest is kept by the engine; the others are canceled.
                found.push(self.submitted_from(info, req, i == 0).await?);
            }
            return Ok(Lookup::Found(found));
        }
        if !doubtful.is_empty() {
            let reason = doubtful
                .iter()
                .map(|(id, why)| format!("CA order {id}: {why}"))
                .collect::<Vec<_>>()
                .join("; ");
            return Ok(Lookup::Unsure {
                reason: format!(
                    "order {} may have been placed: {reason}; check in CertCentral and adopt the order (dcvd orders adopt) or retry",
                    req.reference
                ),
                candidates: doubtful.iter().map(|(id, _)| id.to_string()).collect(),
            });
        }
        if let Err(why) = complete {
            return Ok(Lookup::Unsure {
                reason: format!(
                    "the CertCentral order list for {cn} could not be read in full ({why}), so order {} may exist unseen",
                    req.reference
                ),
                candidates: Vec::new(),
            });
        }
        Ok(Lookup::NotFound)
    }

    /// Every page of `GET /order/certificate` for `cn` in the window.
    /// The second value says whether the list is known to be complete.
    async fn list_window(
        &self,
        req: &SubmitRequest,
        cn: &str,
    ) -> Result<(Vec<OrderInfo>, Result<(), String>), ProviderError> {
        const EP: &str = "order/certificate (list)";
        let from = (req.created_at - chrono::Duration::days(1)).format("%Y-%m-%d");
        let to = (self.clock.now() + chrono::Duration::days(1)).format("%Y-%m-%d");
        let mut out = Vec::new();
        let mut offset = 0u64;
        for _ in 0..MAX_PAGES {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("filters[common_name]", cn)
                .append_pair("filters[date_created]", &format!("{from}...{to}"))
                .append_pair("sort", "-date_created")
                .append_pair("limit", &PAGE.to_string())
                .append_pair("offset", &offset.to_string())
                .finish();
            let path = format!("/order/certificate?{query}");
            let list: OrderList = self.api.json(Method::GET, &path, EP, NONE).await?;
            let got = list.orders.len() as u64;
            for o in list.orders {
                // Newest first: an order placed meanwhile shifts a page, repeating an item.
                if !out.iter().any(|x: &OrderInfo| x.id == o.id) {
                    out.push(o);
                }
            }
            let total = list.page.as_ref().and_then(|p| p.total);
            match total {
                Some(total) if offset + got >= total => return Ok((out, Ok(()))),
                Some(total) if got == 0 => {
                    return Ok((
                        out,
                        Err(format!(
                            "the CA reports {total} orders but sent none at offset {offset}"
                        )),
                    ));
                }
                Some(_) => {}
                // No page totals: a short page is the last one; a full one may have more.
                None if got < PAGE => return Ok((out, Ok(()))),
                None => {}
            }
            offset += got;
        }
        Ok((
            out,
            Err(format!(
                "more than {} orders for this name in the window",
                MAX_PAGES * PAGE
            )),
        ))
    }
}

/// Is this order (same names, not tracked) the one `req` placed?
fn verdict(info: &OrderInfo, req: &SubmitRequest) -> Verdict {
    let referenced = info.all_comments().any(|c| c == req.reference);
    let csr = info.certificate.csr.as_deref().unwrap_or_default();
    if csr.trim().is_empty() {
        return Verdict::Doubtful(if referenced {
            format!(
                "carries our reference {} but the CA shows no CSR to confirm it",
                req.reference
            )
        } else {
            "same names, and the CA shows no CSR to tell whose it is".into()
        });
    }
    match crate::pki::pem::csr_der(csr) {
        Some(der) if der == req.csr_der => Verdict::Ours,
        Some(_) => Verdict::NotOurs,
        None => Verdict::Doubtful("its CSR could not be read".into()),
    }
}
