//! Sectigo simulator endpoints: argument checks with Sectigo's error codes, and the
//! order operations behind `!AutoApplySSL`, `!AutoUpdateDCV`, `download/CollectSSL` & co.

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
    fn has(&self, k: &str) -> bool {
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
    let raw = f.get("orderNumber").ok_or_else(|| missing("orderNumber"))?;
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

pub async fn auto_apply_ssl(sh: &Shared, f: &Form) -> R {
    for item in ["product", "csr", "serverSoftware"] {
        f.get(item).ok_or_else(|| missing(item))?;
    }
    f.get("product")
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or_else(|| invalid("product"))?;
    if !f.has("days") && !f.has("years") {
        return Err(missing("days"));
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
        Some(u)
            if u.is_empty() || u.len() > 20 || !u.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            return Err(invalid("uniqueValue"));
        }
        Some(u) => u.to_string(),
        None => format!("sim{}", sh.next_number()),
    };
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
            if !METHODS.contains(&method) {
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
    let number = sh.next_number();
    let order = SimOrder::new(number, uv.clone(), csr_der, names, sh.now());
    let cert_id = order.certificate_id;
    sh.orders_lock().insert(number, order);
    sh.check(number).await;
    let pairs = [
        ("errorCode", "0".to_string()),
        ("orderNumber", number.to_string()),
        ("certificateID", cert_id.to_string()),
        ("totalCost", "0.00".into()),
        ("expectedDeliveryTime", "1".into()),
        ("uniqueValue", uv.clone()),
    ];
    if f.get("responseFormat") == Some("1") {
        return Ok(ok(&pairs));
    }
    Ok(format!("0\n{number}\n0.00\n1\n{cert_id}\n{uv}\n"))
}

const UPDATE_DCV_ARGS: &[&str] = &[
    "loginName",
    "loginPassword",
    "orderNumber",
    "baseOrderNumber",
    "domainName",
    "newMethod",
    "newDCVEmailAddress",
    "domainNames",
    "newMethods",
    "newDCVEmailAddresses",
];

pub async fn auto_update_dcv(sh: &Shared, f: &Form) -> R {
    // Stricter than documented on purpose: any argument the seed does not list
    // (notably `responseFormat`, which the real service refuses) gets -2.
    if let Some((k, _)) =
        f.0.iter()
            .find(|(k, _)| !UPDATE_DCV_ARGS.contains(&k.as_str()))
    {
        return Err(error(
            -2,
            &format!("The '{k}' argument was not recognised!"),
            Some(k),
        ));
    }
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
    for (n, _, e) in &changes {
        if !order_names.contains(n) {
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
    sh.check(number).await;
    Ok(ok(&[("errorCode", "0".into())]))
}

pub async fn resend_dcv_email(sh: &Shared, f: &Form) -> R {
    let number = order_number(f)?;
    let names: Vec<String> = {
        let orders = sh.orders_lock();
        let o = orders.get(&number).ok_or_else(|| invalid("orderNumber"))?;
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
