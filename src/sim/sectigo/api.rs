//! Sectigo simulator endpoints: argument checks with Sectigo's error codes, and the
//! order operations behind `!AutoApplySSL`, `!AutoUpdateDCV`, `download/CollectSSL` & co.

use std::sync::Arc;

use super::Shared;
use super::state::{METHODS, SimName, SimOrder, SimOrderState, csr_names, is_approver};

/// A parsed request form; keys are matched exactly (Sectigo's are case sensitive).
pub struct Form(pub Vec<(String, String)>);

impl Form {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
    pub fn has(&self, k: &str) -> bool {
        self.get(k).is_some()
    }
}

/// An `errorCode < 0` answer.
pub fn error(code: i64, message: &str, item: Option<&str>) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    s.append_pair("errorCode", &code.to_string());
    s.append_pair("errorMessage", message);
    if let Some(i) = item {
        s.append_pair("errorItem", i);
    }
    s.finish()
}

pub(super) fn ok(pairs: &[(&str, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub(super) fn missing(item: &str) -> String {
    error(
        -3,
        &format!("The '{item}' argument is missing!"),
        Some(item),
    )
}
pub(super) fn invalid(item: &str) -> String {
    error(
        -4,
        &format!("The value of the '{item}' argument is invalid!"),
        Some(item),
    )
}

/// Answers in `Err` so handlers can use `?` on argument checks.
pub(super) type R = Result<String, String>;

pub(super) fn order_number(f: &Form) -> Result<u64, String> {
    // `baseOrderNumber` may stand in for it (seed); the simulator has no replacements,
    // so both name the same order.
    let raw = f
        .get("orderNumber")
        .or_else(|| f.get("baseOrderNumber"))
        .ok_or_else(|| missing("orderNumber"))?;
    raw.trim().parse().map_err(|_| invalid("orderNumber"))
}

fn wire_method_of_token(token: &str) -> Option<&'static str> {
    match token {
        "HTTPCSRHASH" => Some("HTTP_CSR_HASH"),
        "HTTPSCSRHASH" => Some("HTTPS_CSR_HASH"),
        "CNAMECSRHASH" => Some("CNAME_CSR_HASH"),
        _ => None,
    }
}

/// `!AutoApplySSL`: checked at once, then carried out in its own task that waits
/// `create_delay`, creates the order and answers; a client that gave up does not stop it.
pub async fn auto_apply_ssl(sh: &Arc<Shared>, f: Form) -> R {
    let names = apply_names(sh, &f)?;
    let sh = sh.clone();
    let work = tokio::spawn(async move {
        if !sh.opts.create_delay.is_zero() {
            tokio::time::sleep(sh.opts.create_delay).await;
        }
        create_order(&sh, &f, names).await
    });
    work.await
        .unwrap_or_else(|_| Err(error(-14, "An unknown error occurred!", None)))
}

/// Checks the documented arguments of `!AutoApplySSL` and returns the order's names.
type Apply = (Vec<SimName>, Vec<u8>, String, bool, u32);

fn apply_names(sh: &Shared, f: &Form) -> Result<Apply, String> {
    for item in ["product", "csr", "serverSoftware"] {
        f.get(item).ok_or_else(|| missing(item))?;
    }
    let product = f
        .get("product")
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or_else(|| invalid("product"))?;
    // `days` is the term; the documents' -115 "No price found" is what an invalid
    // value gets (reference §3). The hardest reading: more days than the CA/B Forum
    // maximum in force on the simulator's date has no price.
    let max = crate::model::public_tls_max_validity_days(sh.now().date_naive());
    match (f.get("days"), f.get("years")) {
        (Some(d), _) => {
            let days: u32 = d.trim().parse().map_err(|_| invalid("days"))?;
            if days == 0 || days > max {
                return Err(error(
                    -115,
                    &format!("No price found for product {product} for {days} days!"),
                    Some("days"),
                ));
            }
        }
        (None, Some(y)) => {
            let years: u32 = y.trim().parse().map_err(|_| invalid("years"))?;
            if years == 0 || years * 365 > max {
                return Err(error(
                    -115,
                    &format!("No price found for product {product} for {years} years!"),
                    Some("years"),
                ));
            }
        }
        (None, None) => return Err(missing("days")),
    }
    let csr_pem = f.get("csr").unwrap_or_default();
    let csr_der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateSigningRequestDer::from_pem_slice(csr_pem.as_bytes())
            .map_err(|_| error(-9, "The CSR could not be decoded!", Some("csr")))?
            .as_ref()
            .to_vec()
    };
    let uv = match f.get("uniqueValue") {
        Some(u) if u.is_empty() || !u.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            return Err(invalid("uniqueValue"));
        }
        Some(u) => u.to_string(),
        None => format!("sim{}", sh.next_number()),
    };
    let multi = f.has("domainNames");
    let names = match f.get("domainNames") {
        Some(list) => {
            let names: Vec<String> = list
                .split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect();
            let tokens: Vec<&str> = match f.get("dcvEmailAddresses") {
                Some(t) => t.split(',').map(str::trim).collect(),
                None => vec![f.get("dcvMethod").ok_or_else(|| missing("dcvMethod"))?; names.len()],
            };
            if tokens.len() != names.len() || names.iter().any(|n| n.is_empty()) {
                return Err(invalid("dcvEmailAddresses"));
            }
            let mut out = Vec::new();
            for (n, t) in names.into_iter().zip(tokens) {
                let (method, email) = match wire_method_of_token(t) {
                    Some(m) => (m.to_string(), None),
                    None if METHODS.contains(&t) && t != "EMAIL" => (t.to_string(), None),
                    None if is_approver(&n, t) => ("EMAIL".to_string(), Some(t.to_string())),
                    None => return Err(invalid("dcvEmailAddresses")),
                };
                if n.starts_with("*.") && method.starts_with("HTTP") {
                    // CA/B Forum SC45 (reference §2): no file-based DCV for wildcards.
                    return Err(invalid("dcvEmailAddresses"));
                }
                out.push(SimName {
                    name: n,
                    method,
                    email,
                    validated: false,
                });
            }
            out
        }
        None => {
            let cn = csr_names(&csr_der)
                .map_err(|_| error(-9, "The CSR could not be decoded!", Some("csr")))?;
            let method = f.get("dcvMethod").ok_or_else(|| missing("dcvMethod"))?;
            if !METHODS.contains(&method) || (cn[0].starts_with("*.") && method.starts_with("HTTP"))
            {
                return Err(invalid("dcvMethod"));
            }
            let email = if method == "EMAIL" {
                let e = f
                    .get("dcvEmailAddress")
                    .ok_or_else(|| missing("dcvEmailAddress"))?;
                if !is_approver(&cn[0], e) {
                    return Err(invalid("dcvEmailAddress"));
                }
                Some(e.to_string())
            } else {
                None
            };
            vec![SimName {
                name: cn[0].clone(),
                method: method.to_string(),
                email,
                validated: false,
            }]
        }
    };
    Ok((names, csr_der, uv, multi, product))
}

async fn create_order(sh: &Shared, f: &Form, (names, csr_der, uv, multi, product): Apply) -> R {
    let number = sh.next_number();
    let mut order = SimOrder::new(number, uv.clone(), csr_der, names, sh.now());
    order.multi_domain = multi;
    order.product = product;
    let cert_id = order.certificate_id;
    sh.orders_lock().insert(number, order);
    sh.check(number).await;
    let mut pairs = vec![
        ("errorCode", "0".to_string()),
        ("orderNumber", number.to_string()),
        ("totalCost", "0.00".into()),
        ("expectedDeliveryTime", "1".into()),
    ];
    let show_id = f.get("showCertificateID") == Some("Y");
    if show_id {
        pairs.push(("certificateID", cert_id.to_string()));
    }
    pairs.push(("uniqueValue", uv.clone()));
    if f.get("responseFormat") == Some("1") {
        return Ok(ok(&pairs));
    }
    // Newline-delimited (the documented default, reference §1.3): optional lines skipped.
    let id_line = if show_id {
        format!("{cert_id}\n")
    } else {
        String::new()
    };
    Ok(format!("0\n{number}\n0.00\n1\n{id_line}{uv}\n"))
}

pub async fn auto_update_dcv(sh: &Shared, f: &Form) -> R {
    // Unknown, cancelled, rejected, issued or another account's order: all get the
    // same generic -4 (the seed documents it for "already issued").
    let number = order_number(f)?;
    let (order_names, state) = {
        let orders = sh.orders_lock();
        let o = orders.get(&number).ok_or_else(|| invalid("orderNumber"))?;
        (
            o.names.iter().map(|n| n.name.clone()).collect::<Vec<_>>(),
            o.state,
        )
    };
    if state != SimOrderState::Pending {
        return Err(invalid("orderNumber"));
    }
    let mut changes: Vec<(String, String, Option<String>)> = Vec::new();
    if let Some(list) = f.get("domainNames") {
        let names: Vec<&str> = list.split_whitespace().collect();
        let methods: Vec<&str> = f
            .get("newMethods")
            .ok_or_else(|| missing("newMethods"))?
            .split(',')
            .map(str::trim)
            .collect();
        if methods.len() != names.len() || methods.iter().any(|m| !METHODS.contains(m)) {
            return Err(invalid("newMethods"));
        }
        let emails: Vec<&str> = f
            .get("newDCVEmailAddresses")
            .map(|e| e.split_whitespace().collect())
            .unwrap_or_default();
        if emails.len() != methods.iter().filter(|m| **m == "EMAIL").count() {
            return Err(invalid("newDCVEmailAddresses"));
        }
        let mut emails = emails.into_iter();
        for (n, m) in names.into_iter().zip(methods) {
            let email = if m == "EMAIL" {
                emails.next().map(str::to_string)
            } else {
                None
            };
            changes.push((n.to_ascii_lowercase(), m.to_string(), email));
        }
    } else {
        let name = match f.get("domainName") {
            Some(n) => n.to_ascii_lowercase(),
            None if order_names.len() == 1 => order_names[0].clone(),
            None => return Err(missing("domainName")),
        };
        let m = f.get("newMethod").ok_or_else(|| missing("newMethod"))?;
        if !METHODS.contains(&m) {
            return Err(invalid("newMethod"));
        }
        let email = if m == "EMAIL" {
            Some(
                f.get("newDCVEmailAddress")
                    .ok_or_else(|| missing("newDCVEmailAddress"))?
                    .to_string(),
            )
        } else {
            None
        };
        changes.push((name, m.to_string(), email));
    }
    let multi = f.has("domainNames");
    for (n, m, e) in &changes {
        if !order_names.contains(n) || (n.starts_with("*.") && m.starts_with("HTTP")) {
            return Err(invalid(if multi { "domainNames" } else { "domainName" }));
        }
        if let Some(e) = e
            && !is_approver(n, e)
        {
            return Err(invalid(if multi {
                "newDCVEmailAddresses"
            } else {
                "newDCVEmailAddress"
            }));
        }
    }
    if let Some(o) = sh.orders_lock().get_mut(&number) {
        for (n, m, e) in changes {
            if let Some(entry) = o.names.iter_mut().find(|x| x.name == n) {
                entry.method = m;
                entry.email = e;
            }
        }
    }
    // The seed says the call updates the method; nothing says it re-checks. So it does
    // not: only `!ResendDCVEmail` (reference §1.5) and the background check do.
    Ok(ok(&[("errorCode", "0".into())]))
}

/// Resends the e-mails and resets Sectigo's re-test schedule for the other methods
/// (reference §1.5): the simulator checks at once.
pub async fn resend_dcv_email(sh: &Shared, f: &Form) -> R {
    let number = order_number(f)?;
    let names: Vec<String> = {
        let orders = sh.orders_lock();
        let o = orders
            .get(&number)
            .filter(|o| o.state == SimOrderState::Pending)
            .ok_or_else(|| invalid("orderNumber"))?;
        o.names.iter().map(|n| n.name.clone()).collect()
    };
    if let Some(addr) = f.get("dcvEmailAddress")
        && !names.iter().any(|n| is_approver(n, addr))
    {
        return Err(invalid("dcvEmailAddress"));
    }
    sh.check(number).await;
    Ok(ok(&[("errorCode", "0".into())]))
}
