//! Recorded CertCentral responses (tests/fixtures/digicert, from riboseinc/digicert)
//! parse with the provider's wire types, quirks included.

use dcvd::provider::CaOrderState;
use dcvd::provider::digicert::client::parse_errors;
use dcvd::provider::digicert::tokens::{order_state, split_pem};
use dcvd::provider::digicert::wire::{OrderCreated, OrderInfo, OrderList};

#[test]
fn errors_as_a_single_object_parse() {
    let errors = parse_errors(include_bytes!("fixtures/digicert/errors.json")).unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].code, "not_found|route");
    assert_eq!(errors[0].message, "The specified route was not found.");
}

#[test]
fn errors_as_an_array_keep_every_item() {
    let body = br#"{"errors":[{"code":"a|x","message":"one"},{"code":"b","message":"two"}]}"#;
    let errors = parse_errors(body).unwrap();
    assert_eq!(
        errors.iter().map(|e| e.code.as_str()).collect::<Vec<_>>(),
        ["a|x", "b"]
    );
    assert!(parse_errors(b"<html>bad gateway</html>").is_none());
}

#[test]
fn order_info_with_many_unused_fields_parses() {
    let o: OrderInfo =
        serde_json::from_slice(include_bytes!("fixtures/digicert/order.json")).unwrap();
    assert_eq!(o.id, 123456789);
    assert_eq!(o.certificate.id, Some(112358));
    assert_eq!(o.certificate.dns_names, ["digicert.com"]);
    assert_eq!(o.status, "approved");
    assert_eq!(order_state(&o.status), CaOrderState::InProgress);
}

#[test]
fn order_list_parses_with_a_missing_valid_till() {
    let l: OrderList =
        serde_json::from_slice(include_bytes!("fixtures/digicert/orders.json")).unwrap();
    assert_eq!(l.orders.len(), 3);
    assert!(l.orders[2].certificate.valid_till.is_none());
    assert!(l.orders.iter().all(|o| o.comments.is_none()));
    assert_eq!(
        order_state(&l.orders[1].status),
        CaOrderState::NeedsApproval
    );
    assert_eq!(l.page.unwrap().limit, 1000);
}

#[test]
fn order_created_without_certificate_id_parses() {
    let c: OrderCreated =
        serde_json::from_slice(include_bytes!("fixtures/digicert/order_created.json")).unwrap();
    assert_eq!(c.id, 542772);
    assert!(c.certificate_id.is_none() && c.dcv_random_value.is_none());
}

#[test]
fn immediate_issuance_chain_with_crlf_splits() {
    let c: OrderCreated = serde_json::from_slice(include_bytes!(
        "fixtures/digicert/order_created_with_immediate_issuance.json"
    ))
    .unwrap();
    let chain = c.certificate_chain.unwrap();
    assert_eq!(chain.len(), 3);
    let joined: String = chain.iter().map(|e| e.pem.as_str()).collect();
    let blocks = split_pem(&joined);
    assert_eq!(blocks.len(), 3);
    for b in &blocks {
        let (_, pem) = x509_parser::pem::parse_x509_pem(b.as_bytes()).unwrap();
        pem.parse_x509().unwrap();
    }
}
