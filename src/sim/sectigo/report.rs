//! Sectigo simulator read-side and end-of-life endpoints: approver lists, per-domain
//! DCV details, order report, `download/CollectSSL`, refund and revocation.

use base64::Engine;

use super::Shared;
use super::api::{Form, R, error, invalid, missing, ok, order_number};
use super::state::{SimOrder, SimOrderState, approver_list};

/// Text format (the default): status line, then tab-separated pairs. As in the
/// recorded answer (fixture `getdcvemailaddresslist-text.txt`) a stray space precedes
/// each address.
pub fn get_dcv_email_address_list(f: &Form) -> R {
    let domain = f
        .get("domainName")
        .ok_or_else(|| missing("domainName"))?
        .to_ascii_lowercase();
    if crate::model::DomainName::parse(&domain).is_err() {
        return Err(invalid("domainName"));
    }
    if f.get("responseFormat").is_some_and(|r| r != "1") {
        // JSON (2) has no known shape (reference §1.1); refusing it is the honest answer.
        return Err(invalid("responseFormat"));
    }
    let mut out = format!("0\ndomain_name\t{domain}\n");
    for (k, v) in approver_list(&domain) {
        out.push_str(&format!("{k}\t {v}\n"));
    }
    Ok(out)
}

/// Documented for "the multi-domain certificate order number" only
/// (docs.sectigo.com/sps/get-mdc-domain-details/request). What a single-domain order
/// gets is not documented; the hardest answer is a refusal, the generic -4.
pub fn get_mdc_domain_details(sh: &Shared, f: &Form) -> R {
    let number = order_number(f)?;
    let orders = sh.orders_lock();
    let o = orders
        .get(&number)
        .filter(|o| o.multi_domain)
        .ok_or_else(|| invalid("orderNumber"))?;
    let mut pairs = vec![("errorCode".to_string(), "0".to_string())];
    for (i, n) in o.names.iter().enumerate() {
        let status = match (n.validated, n.method.as_str()) {
            (true, _) => "Validated",
            (false, "EMAIL") => "Awaiting Validation",
            (false, _) => "Not Validated",
        };
        let i = i + 1;
        pairs.push((format!("{i}_domainName"), n.name.clone()));
        pairs.push((format!("{i}_dcvMethod"), n.method.clone()));
        pairs.push((format!("{i}_dcvStatus"), status.to_string()));
    }
    let refs: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    Ok(ok(&refs))
}

fn status_text(o: &SimOrder) -> &'static str {
    match o.state {
        SimOrderState::Pending => "Awaiting Validation",
        SimOrderState::Issued => "Issued",
        SimOrderState::Cancelled => "Cancelled",
        SimOrderState::Revoked => "Revoked",
        SimOrderState::Rejected => "Rejected",
    }
}

/// Rows per answer at most; the public client's default `lastResultNo` is 10 and no
/// source gives the server's cap, so the simulator serves no more than that.
const REPORT_PAGE: usize = 10;

/// In the shape a public client parses (fixture `webhostreport-shape.txt`): rows
/// `N_orderNumber`, `N_orderStatus`, `N_dateTime` (Unix seconds) and per certificate
/// `N_M_type`, `N_M_domain`, `N_M_mdcDomainNames`, `N_M_certificateID`, `N_M_status`,
/// `N_M_dcvStatus` (+ validity once issued). No `uniqueValue`: nothing in a row says
/// which request placed the order. Rows are numbered from `firstResultNo` and
/// `noOfResults` is the number of orders matching, not of rows in this answer (the
/// documents do not say which; a client must not rely on either).
pub fn web_host_report(sh: &Shared, f: &Form) -> R {
    let num = |k: &str, default: usize| -> Result<usize, String> {
        f.get(k)
            .map(|v| v.trim().parse::<usize>().map_err(|_| invalid(k)))
            .transpose()
            .map(|v| v.unwrap_or(default))
    };
    let first = num("firstResultNo", 1)?.max(1);
    let last = num("lastResultNo", 10)?;
    if last < first {
        return Err(invalid("lastResultNo"));
    }
    let fqdn = f.get("fqdn").map(str::to_ascii_lowercase);
    let orders = sh.orders_lock();
    let matching: Vec<&SimOrder> = orders
        .values()
        .filter(|o| {
            fqdn.as_ref()
                .is_none_or(|q| o.names.iter().any(|n| &n.name == q))
        })
        .collect();
    let mut pairs: Vec<(String, String)> = vec![
        ("errorCode".into(), "0".into()),
        ("noOfResults".into(), matching.len().to_string()),
    ];
    let take = (last - first + 1).min(REPORT_PAGE);
    for (k, o) in matching.iter().skip(first - 1).take(take).enumerate() {
        let i = first + k;
        let mut row = |key: &str, v: String| pairs.push((format!("{i}_{key}"), v));
        row("orderNumber", o.order_number.to_string());
        row("orderStatus", status_text(o).into());
        row("dateTime", o.created_at.timestamp().to_string());
        row("organizationName", String::new());
        row("1_type", o.product.to_string());
        row(
            "1_domain",
            o.names.first().map(|n| n.name.clone()).unwrap_or_default(),
        );
        let others: Vec<&str> = o.names.iter().skip(1).map(|n| n.name.as_str()).collect();
        row("1_mdcDomainNames", others.join(","));
        row("1_certificateID", o.certificate_id.to_string());
        row("1_status", status_text(o).into());
        let dcv = o.names.iter().all(|n| n.validated);
        row("1_dcvStatus", if dcv { "1" } else { "0" }.into());
        if let Some((nb, na)) = o.leaf_der.as_deref().and_then(validity) {
            row("1_notBefore", nb.to_string());
            row("1_notAfter", na.to_string());
        }
    }
    let refs: Vec<(&str, String)> = pairs.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    Ok(ok(&refs))
}

fn validity(der: &[u8]) -> Option<(i64, i64)> {
    let (_, c) = x509_parser::parse_x509_certificate(der).ok()?;
    Some((
        c.validity().not_before.timestamp(),
        c.validity().not_after.timestamp(),
    ))
}

/// Only `responseType=3` (individually encoded, base64) is simulated for downloads.
/// The CA certificates come root first, so clients must order them themselves.
///
/// `responseFormat`: the default is not documented (reference §1.6); both public clients
/// send `1`. Without it the simulator answers newline-delimited, one value per line,
/// which an URL-encoded parser cannot read. With `1` the base64 values keep a raw `+`
/// (as a server that does not escape its own base64 would send them).
pub fn collect_ssl(sh: &Shared, f: &Form) -> R {
    let by_cert = f.get("certificateID").and_then(|c| c.parse::<u64>().ok());
    let orders = sh.orders_lock();
    let o = match (f.get("orderNumber").or(f.get("baseOrderNumber")), by_cert) {
        (Some(_), _) => orders.get(&order_number(f)?),
        (None, Some(c)) => orders.values().find(|o| o.certificate_id == c),
        (None, None) => return Err(missing("orderNumber")),
    }
    .ok_or_else(|| invalid("orderNumber"))?;
    let qt: u8 = f
        .get("queryType")
        .ok_or_else(|| missing("queryType"))?
        .parse()
        .map_err(|_| invalid("queryType"))?;
    if qt > 3 {
        return Err(invalid("queryType"));
    }
    let url_encoded = f.get("responseFormat") == Some("1");
    let mut pairs: Vec<(&str, String)> = Vec::new();
    match o.state {
        SimOrderState::Cancelled => {
            return Err(error(
                -20,
                "The certificate request has been rejected!",
                None,
            ));
        }
        SimOrderState::Rejected => {
            let why = o.reject_reason.clone().unwrap_or_default();
            return Err(error(-20, &why, None));
        }
        SimOrderState::Revoked => {
            return Err(error(-21, "The certificate has been revoked!", None));
        }
        SimOrderState::Pending => {
            pairs.push(("errorCode", "0".into()));
            pairs.push((
                "certificateStatus",
                "Currently being processed by Sectigo".into(),
            ));
        }
        SimOrderState::Issued => {
            pairs.push(("errorCode", "2".into()));
            pairs.push(("certificateStatus", "Issued".into()));
        }
    }
    if f.get("showFQDN") == Some("Y") {
        pairs.push((
            "fqdn",
            o.names.first().map(|n| n.name.clone()).unwrap_or_default(),
        ));
    }
    if o.state == SimOrderState::Issued && qt != 0 {
        if f.get("responseType") != Some("3") || f.get("responseEncoding").is_some_and(|e| e != "0")
        {
            return Err(invalid("responseType"));
        }
        let b64 = |d: &[u8]| base64::engine::general_purpose::STANDARD.encode(d);
        if qt == 1 || qt == 2 {
            pairs.push((
                "certificate",
                b64(o.leaf_der.as_deref().unwrap_or_default()),
            ));
        }
        if qt == 1 || qt == 3 {
            for c in o.chain_der.iter().rev() {
                pairs.push(("caCertificate", b64(c)));
            }
        }
    }
    if !url_encoded {
        let lines: Vec<&str> = pairs.iter().map(|(_, v)| v.as_str()).collect();
        return Ok(lines.join("\n") + "\n");
    }
    let mut out = Vec::new();
    for (k, v) in &pairs {
        if *k == "certificate" || *k == "caCertificate" {
            out.push(format!("{k}={v}"));
        } else {
            out.push(ok(&[(*k, v.clone())]));
        }
    }
    Ok(out.join("&"))
}

pub fn auto_refund(sh: &Shared, f: &Form) -> R {
    let number = order_number(f)?;
    // upmind always sends it; the hardest reading is that it is required.
    let reason = f
        .get("refundReasonCode")
        .ok_or_else(|| missing("refundReasonCode"))?;
    reason
        .trim()
        .parse::<u32>()
        .map_err(|_| invalid("refundReasonCode"))?;
    let mut orders = sh.orders_lock();
    let o = orders
        .get_mut(&number)
        .ok_or_else(|| invalid("orderNumber"))?;
    match o.state {
        SimOrderState::Cancelled => {
            return Err(error(
                -18,
                "The order has already been refunded!",
                Some("orderNumber"),
            ));
        }
        SimOrderState::Pending | SimOrderState::Rejected => {}
        SimOrderState::Issued | SimOrderState::Revoked => return Err(invalid("orderNumber")),
    }
    o.state = SimOrderState::Cancelled;
    Ok(ok(&[("errorCode", "0".into())]))
}

pub fn auto_revoke_ssl(sh: &Shared, f: &Form) -> R {
    let number = order_number(f)?;
    f.get("revocationReason")
        .ok_or_else(|| missing("revocationReason"))?;
    let mut orders = sh.orders_lock();
    let o = orders
        .get_mut(&number)
        .ok_or_else(|| invalid("orderNumber"))?;
    o.state = match o.state {
        SimOrderState::Issued => SimOrderState::Revoked,
        SimOrderState::Revoked => {
            return Err(error(
                -21,
                "The certificate has already been revoked!",
                None,
            ));
        }
        _ => SimOrderState::Cancelled,
    };
    Ok(ok(&[("errorCode", "0".into())]))
}
