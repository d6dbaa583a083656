//! Sectigo simulator request checks, written from the documents (seed `!AutoUpdateDCV`
//! page, reference/sectigo.md), not from the client: which arguments each endpoint
//! takes, their maximum lengths, and the documented error answers for the rest.

use super::api::{Form, error, invalid};

/// One documented argument: name and maximum length in characters (`None`: the
/// documents give none).
pub struct Arg(pub &'static str, pub Option<usize>);

const LOGIN: [Arg; 2] = [Arg("loginName", Some(64)), Arg("loginPassword", Some(128))];

/// Seed page table (lengths as printed there) plus `dcvTemplateID` from the SSL
/// changelog (docs.sectigo.com/sps/auto-update-dcv/changelog).
pub const AUTO_UPDATE_DCV: &[Arg] = &[
    Arg("orderNumber", None),
    Arg("baseOrderNumber", None),
    Arg("domainName", Some(255)),
    Arg("newMethod", Some(32)),
    Arg("newDCVEmailAddress", Some(255)),
    Arg("domainNames", Some(255)),
    Arg("newMethods", Some(32)),
    Arg("newDCVEmailAddresses", Some(255)),
    Arg("dcvTemplateID", None),
];

/// reference/sectigo.md §1.2 and §1.3 (parameters named there by any source).
pub const AUTO_APPLY_SSL: &[Arg] = &[
    Arg("product", None),
    Arg("days", None),
    Arg("years", None),
    Arg("csr", None),
    Arg("serverSoftware", None),
    Arg("isCustomerValidated", None),
    Arg("dcvMethod", None),
    Arg("dcvEmailAddress", Some(255)),
    Arg("domainNames", None),
    Arg("dcvEmailAddresses", None),
    Arg("uniqueValue", Some(20)),
    Arg("showCertificateID", None),
    Arg("showCertificateState", None),
    Arg("test", None),
    Arg("foreignOrderNumber", None),
    Arg("emailAddress", None),
    Arg("responseFormat", None),
];

/// reference §1.5.
pub const RESEND_DCV_EMAIL: &[Arg] = &[
    Arg("orderNumber", None),
    Arg("baseOrderNumber", None),
    Arg("dcvEmailAddress", Some(255)),
    Arg("dcvTemplateID", None),
];

/// reference §1.1.
pub const GET_DCV_EMAIL_ADDRESS_LIST: &[Arg] =
    &[Arg("domainName", Some(255)), Arg("responseFormat", None)];

/// reference §1.6.
pub const GET_MDC_DOMAIN_DETAILS: &[Arg] = &[
    Arg("orderNumber", None),
    Arg("showStatusDetails", None),
    Arg("responseFormat", None),
];

/// reference §1.6 and §1.7.
pub const COLLECT_SSL: &[Arg] = &[
    Arg("orderNumber", None),
    Arg("certificateID", None),
    Arg("baseOrderNumber", None),
    Arg("queryType", None),
    Arg("responseType", None),
    Arg("responseEncoding", None),
    Arg("showValidityPeriod", None),
    Arg("showFQDN", None),
    Arg("showExtStatus", None),
    Arg("showStatusDetails", None),
    Arg("showMDCDomainDetails", None),
    Arg("showMDCDomainDetails2", None),
    Arg("responseFormat", None),
];

/// The public client's arguments (fixtures/sectigo/webhostreport-shape.txt) and the
/// `fqdn` filter of reference §1.6. The date filters exist but their names are not in
/// any source, so the simulator refuses every date argument: a client must not need them.
pub const WEB_HOST_REPORT: &[Arg] = &[
    Arg("firstResultNo", None),
    Arg("lastResultNo", None),
    Arg("fqdn", Some(255)),
];

/// `!AutoRefund (orderNumber, refundReasonCode)` (reference §1, upmind).
pub const AUTO_REFUND: &[Arg] = &[Arg("orderNumber", None), Arg("refundReasonCode", None)];

/// reference §1.9.
pub const AUTO_REVOKE_SSL: &[Arg] = &[
    Arg("orderNumber", None),
    Arg("certificateID", None),
    Arg("serialNumber", None),
    Arg("revocationReason", None),
];

/// -2 for an argument the documents do not list for this endpoint (the real service
/// does this for `responseFormat` on `!AutoUpdateDCV`, reference §0), -4 for a value
/// longer than documented (the documents say nothing of the answer; -4 is the hardest,
/// a refusal the client cannot retry).
pub fn check(form: &Form, allowed: &[Arg]) -> Result<(), String> {
    for (k, v) in &form.0 {
        let spec = LOGIN
            .iter()
            .chain(allowed.iter())
            .find(|a| a.0 == k.as_str());
        let Some(Arg(_, max)) = spec else {
            return Err(error(
                -2,
                &format!("The '{k}' argument was not recognised!"),
                Some(k),
            ));
        };
        if max.is_some_and(|m| v.chars().count() > m) {
            return Err(invalid(k));
        }
    }
    Ok(())
}
