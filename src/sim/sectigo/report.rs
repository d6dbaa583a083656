//! Sectigo simulator read-side and end-of-life endpoints: approver lists, per-domain
//! DCV details, order report, `download/CollectSSL`, refund and revocation.

use base64::Engine;

use super::Shared;
use super::api::{Form, R, error, invalid, missing, ok, order_number};
use super::state::{SimOrderState, approver_list};

/// Text format (the default): status line, then tab-separated pairs.
pub fn get_dcv_email_address_list(f: &Form) -> R {
    let domain = f
        .get("domainName")
        .ok_or_else(|| missing("domainName"))?
        .to_ascii_lowercase();
    if crate::model::DomainName::parse(&domain).is_err() {
        return Err(invalid("domainName"));
    }
    let mut out = format!("0\ndomain_name\t{domain}\n");
    for (k, v) in approver_list(&domain) {
        out.push_str(&format!("{k}\t{v}\n"));
    }
    Ok(out)
}

pub fn get_mdc_domain_details(sh: &Shared, f: &Form) -> R {
    let number = order_number(f)?;
    let orders = sh.orders_lock();
    let o = orders.get(&number).ok_or_else(|| invalid("orderNumber"))?;
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

/// Rows in order-number order; see `provider::sectigo::order::find` for the shape.
pub fn web_host_report(sh: &Shared, f: &Form) -> R {
    let date = |k: &str| -> Result<Option<chrono::DateTime<chrono::Utc>>, String> {
        f.get(k)
            .map(|d| {
                chrono::DateTime::parse_from_rfc3339(d)
                    .map(|d| d.to_utc())
                    .map_err(|_| invalid(k))
            })
            .transpose()
    };
    let (start, end) = (date("startDate")?, date("endDate")?);
    let fqdn = f.get("fqdn").map(str::to_ascii_lowercase);
    let orders = sh.orders_lock();
    let mut pairs: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    for o in orders.values() {
        let in_window =
            start.is_none_or(|s| o.created_at >= s) && end.is_none_or(|e| o.created_at <= e);
        let name_ok = fqdn
            .as_ref()
            .is_none_or(|q| o.names.iter().any(|n| &n.name == q));
        if !(in_window && name_ok) {
            continue;
        }
        i += 1;
        pairs.push((format!("{i}_orderNumber"), o.order_number.to_string()));
        pairs.push((format!("{i}_certificateID"), o.certificate_id.to_string()));
        pairs.push((
            format!("{i}_fqdn"),
            o.names.first().map(|n| n.name.clone()).unwrap_or_default(),
        ));
        pairs.push((format!("{i}_uniqueValue"), o.unique_value.clone()));
        pairs.push((format!("{i}_dateTime"), o.created_at.to_rfc3339()));
    }
    let mut all = vec![
        ("errorCode", "0".to_string()),
        ("noOfResults", i.to_string()),
    ];
    all.extend(pairs.iter().map(|(k, v)| (k.as_str(), v.clone())));
    Ok(ok(&all))
}

/// Only `responseType=3` (individually encoded, base64) is simulated for downloads.
/// The CA certificates come root first, so clients must order them themselves.
pub fn collect_ssl(sh: &Shared, f: &Form) -> R {
    let by_cert = f.get("certificateID").and_then(|c| c.parse::<u64>().ok());
    let orders = sh.orders_lock();
    let o = match (f.get("orderNumber"), by_cert) {
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
    match o.state {
        SimOrderState::Cancelled => {
            return Err(error(
                -20,
                "The certificate request has been rejected!",
                None,
            ));
        }
        SimOrderState::Revoked => {
            return Err(error(-21, "The certificate has been revoked!", None));
        }
        SimOrderState::Pending => {
            return Ok(ok(&[
                ("errorCode", "0".into()),
                (
                    "certificateStatus",
                    "Currently being processed by Sectigo".into(),
                ),
            ]));
        }
        SimOrderState::Issued => {}
    }
    let mut pairs = vec![
        ("errorCode", "2".to_string()),
        ("certificateStatus", "Issued".into()),
    ];
    if qt == 0 {
        return Ok(ok(&pairs));
    }
    if f.get("responseType") != Some("3") || f.get("responseEncoding").is_some_and(|e| e != "0") {
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
    Ok(ok(&pairs))
}

pub fn auto_refund(sh: &Shared, f: &Form) -> R {
    let number = order_number(f)?;
    let mut orders = sh.orders_lock();
    let o = orders
        .get_mut(&number)
        .ok_or_else(|| invalid("orderNumber"))?;
    if o.state == SimOrderState::Cancelled {
        return Err(error(
            -18,
            "The order has already been refunded!",
            Some("orderNumber"),
        ));
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
