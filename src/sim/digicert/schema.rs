//! The request bodies CertCentral documents, written down from the seed pages
//! (`shared/seeds/digicert-*.txt`) and `shared/reference/digicert.md`, and a checker
//! over raw JSON. The simulator parses requests only through these tables, never
//! through the client's types, so a field the client invents or mistypes is refused.

use serde_json::Value;

#[derive(Debug, Clone, Copy)]
pub enum Ty {
    Str,
    Int,
    Bool,
    /// `disable_ct`: "bool" in the table, `0` in the seed's own example.
    BoolOrInt,
    StrArray,
    Obj(&'static [Field]),
    ObjArray(&'static [Field]),
}

#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    /// Required inside its object. Top-level requirements that depend on other fields
    /// (`validity_years` "can be replaced by" …) are checked by the handler.
    pub required: bool,
}

const fn f(name: &'static str, ty: Ty, required: bool) -> Field {
    Field { name, ty, required }
}

const SERVER_PLATFORM: &[Field] = &[f("id", Ty::Int, true)];
const CERTIFICATE: &[Field] = &[
    f("common_name", Ty::Str, false),
    f("dns_names", Ty::StrArray, false),
    f("csr", Ty::Str, false),
    f("organization_units", Ty::StrArray, false),
    f("server_platform", Ty::Obj(SERVER_PLATFORM), false),
];
const DCV_EMAIL: &[Field] = &[
    f("dns_name", Ty::Str, true),
    f("email_domain", Ty::Str, true),
    f("email", Ty::Str, false),
];
const CONTAINER: &[Field] = &[f("id", Ty::Int, true)];
const CUSTOM_FIELD: &[Field] = &[f("metadata_id", Ty::Int, true), f("value", Ty::Str, true)];
const CONTACT: &[Field] = &[
    f("first_name", Ty::Str, true),
    f("last_name", Ty::Str, true),
    f("telephone", Ty::Str, true),
    f("job_title", Ty::Str, false),
    f("email", Ty::Str, true),
];

/// Seed "Order DV SSL", request parameters.
pub const ORDER: &[Field] = &[
    f("certificate", Ty::Obj(CERTIFICATE), true),
    f("renewed_thumbprint", Ty::Str, false),
    f("validity_years", Ty::Int, false),
    f("validity_days", Ty::Int, false),
    f("custom_expiration_date", Ty::Str, false),
    f("comments", Ty::Str, false),
    f("auto_renew", Ty::Int, false),
    f("custom_renewal_message", Ty::Str, false),
    f("disable_renewal_notifications", Ty::Bool, false),
    f("renewal_of_order_id", Ty::Int, false),
    f("payment_method", Ty::Str, false),
    f("dcv_method", Ty::Str, false),
    f("dcv_emails", Ty::ObjArray(DCV_EMAIL), false),
    f("locale", Ty::Str, false),
    f("skip_approval", Ty::Bool, false),
    f("disable_ct", Ty::BoolOrInt, false),
    f("container", Ty::Obj(CONTAINER), false),
    f("custom_fields", Ty::ObjArray(CUSTOM_FIELD), false),
    f("technical_contact", Ty::Obj(CONTACT), false),
];

/// Seed "Change DCV method".
pub const DCV_METHOD: &[Field] = &[f("dcv_method", Ty::Str, true)];

const APPROVAL_EMAIL: &[Field] = &[
    f("domain", Ty::Str, true),
    f("email", Ty::Str, true),
    f("email_domain", Ty::Str, false),
];
/// Seed "Resend emails" (EN page: `domain`/`email` required, `email_domain` optional).
pub const RESEND: &[Field] = &[
    f(
        "domain_approval_emails",
        Ty::ObjArray(APPROVAL_EMAIL),
        false,
    ),
    f("locale", Ty::Str, false),
];

/// reference/digicert.md §1, update order status.
pub const STATUS: &[Field] = &[
    f("status", Ty::Str, true),
    f("note", Ty::Str, false),
    f("send_emails", Ty::Bool, false),
];

/// `dcv_method` values of the glossary usable on a DV order (`http-token-dynamic` is
/// "not supported for DV").
pub const DCV_METHODS: &[&str] = &["email", "dns-txt-token", "dns-cname-token", "http-token"];

/// Locale codes: only `en` is confirmed (the glossary page is not in the corpus); the
/// others are reference/digicert.md §4's list. Anything else is refused, the answer
/// hardest for a client that sends `fr-FR` or `zh-CN`.
pub const LOCALES: &[&str] = &[
    "en", "de", "es", "fr", "it", "ja", "ko", "pt", "ru", "zh_CN", "zh_TW",
];

/// Problems of a body against `fields`: `(code, message)`. Unknown fields and wrong
/// types are `bad_request_format` (the body cannot be read as the documented request);
/// a missing required nested field is `missing_field|<path>`.
pub fn check(body: &Value, fields: &[Field]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    match body {
        Value::Object(_) => walk(body, fields, "", &mut out),
        _ => out.push(format_err("", "the body is not a JSON object")),
    }
    // Format problems first: a body that cannot be read has no meaningful other errors.
    if out.iter().any(|(c, _)| c == "bad_request_format") {
        out.retain(|(c, _)| c == "bad_request_format");
    }
    out
}

fn format_err(at: &str, what: &str) -> (String, String) {
    let at = if at.is_empty() { "body" } else { at };
    (
        "bad_request_format".into(),
        format!("The request body could not be read: {at}: {what}."),
    )
}

fn walk(v: &Value, fields: &[Field], at: &str, out: &mut Vec<(String, String)>) {
    let Some(map) = v.as_object() else {
        out.push(format_err(at, "expected an object"));
        return;
    };
    let join = |k: &str| {
        if at.is_empty() {
            k.to_string()
        } else {
            format!("{at}.{k}")
        }
    };
    for (k, val) in map {
        let Some(field) = fields.iter().find(|f| f.name == k) else {
            out.push(format_err(&join(k), "this field is not documented"));
            continue;
        };
        check_type(val, field.ty, &join(k), out);
    }
    for field in fields.iter().filter(|f| f.required) {
        if map.get(field.name).is_none_or(Value::is_null) && !at.is_empty() {
            out.push((
                format!("missing_field|{}", join(field.name)),
                format!("{} is required.", join(field.name)),
            ));
        }
    }
}

fn check_type(v: &Value, ty: Ty, at: &str, out: &mut Vec<(String, String)>) {
    let ok = match ty {
        Ty::Str => v.is_string(),
        Ty::Int => v.is_i64() || v.is_u64(),
        Ty::Bool => v.is_boolean(),
        Ty::BoolOrInt => v.is_boolean() || matches!(v.as_i64(), Some(0 | 1)),
        Ty::StrArray => v.as_array().is_some_and(|a| a.iter().all(Value::is_string)),
        Ty::Obj(fields) => {
            walk(v, fields, at, out);
            true
        }
        Ty::ObjArray(fields) => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    walk(item, fields, &format!("{at}[{i}]"), out);
                }
                true
            }
            None => false,
        },
    };
    if !ok {
        out.push(format_err(
            at,
            &format!("expected {ty:?}").replace("Obj", "object"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seed_example_passes_and_inventions_do_not() {
        let seed = json!({
            "certificate": {"common_name": "example.com", "dns_names": ["sub.example.com"],
                            "csr": "<csr>", "server_platform": {"id": 2}},
            "custom_expiration_date": "", "comments": "Message for the approver.",
            "container": {"id": 69748}, "custom_renewal_message": "Renew me.",
            "skip_approval": true, "disable_ct": 0, "validity_years": 1,
            "custom_fields": [{"metadata_id": 12, "value": "Invoice #12345"}],
            "payment_method": "balance", "dcv_method": "email",
            "dcv_emails": [{"dns_name": "example.com", "email_domain": "example.com", "email": "admin@example.com"}],
            "locale": "en",
            "technical_contact": {"first_name": "Jim", "last_name": "Smith", "telephone": "555-555-5555",
                                  "job_title": "IT Admin", "email": "jim.smith@example.com"}
        });
        assert!(check(&seed, ORDER).is_empty(), "{:?}", check(&seed, ORDER));
        let mut bad = seed.clone();
        bad["certificate"]["signature_hash"] = json!("sha256");
        bad["use_auth_key"] = json!(true);
        let errs = check(&bad, ORDER);
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(errs.iter().all(|(c, _)| c == "bad_request_format"));
        let mut bad = seed.clone();
        bad["renewal_of_order_id"] = json!("123");
        assert_eq!(check(&bad, ORDER)[0].0, "bad_request_format");
        let mut bad = seed;
        bad["custom_fields"] = json!([{"value": "x"}]);
        assert_eq!(
            check(&bad, ORDER)[0].0,
            "missing_field|custom_fields[0].metadata_id"
        );
    }
}
