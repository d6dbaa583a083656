//! Pure parts of the ACME provider: token values, challenge types, status mapping.

use instant_acme::{AuthorizationStatus, ChallengeType, OrderStatus};

use super::order::{Authz, Chal, challenge_type, dns01_value, status_of};
use crate::ca::{CaOrderState, NameDcv};
use crate::model::{DcvMethod, DomainName};

fn n(s: &str) -> DomainName {
    DomainName::parse(s).unwrap()
}

fn authz(name: &str, status: AuthorizationStatus, error: Option<&str>) -> Authz {
    Authz {
        name: Some(n(name)),
        status,
        challenges: vec![Chal {
            kind: ChallengeType::Dns01,
            token: "t".into(),
            error: error.map(str::to_string),
        }],
    }
}

#[test]
fn dns01_value_is_base64url_sha256_of_the_key_authorization() {
    // Cross-checked with Python: base64.urlsafe_b64encode(hashlib.sha256(ka).digest()).rstrip(b'=')
    let ka =
        "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.nP1qzpXGymHBrUEepNY9HCsQk7K8KhOypzEt62jcerQ";
    assert_eq!(
        dns01_value(ka),
        "NGwKoXBgCT8JhEa0bK7AwfSqHyu_ZWeugV07fLGIVq0"
    );
}

#[test]
fn methods_map_to_challenge_types() {
    assert_eq!(challenge_type(DcvMethod::DnsTxt), ChallengeType::Dns01);
    assert_eq!(challenge_type(DcvMethod::DnsCname), ChallengeType::Dns01);
    assert_eq!(challenge_type(DcvMethod::Http), ChallengeType::Http01);
}

#[test]
fn order_status_in_neutral_terms() {
    let names = [n("a.example.com"), n("b.example.com")];
    let pending = [
        authz("a.example.com", AuthorizationStatus::Valid, None),
        authz("b.example.com", AuthorizationStatus::Pending, None),
    ];
    let st = status_of(OrderStatus::Pending, None, &pending, &names);
    assert_eq!(st.order, CaOrderState::InProgress);
    assert_eq!(
        st.names,
        vec![
            (names[0].clone(), NameDcv::Valid),
            (names[1].clone(), NameDcv::Pending)
        ]
    );

    // ready/processing/valid: everything validated, download finalizes.
    for s in [
        OrderStatus::Ready,
        OrderStatus::Processing,
        OrderStatus::Valid,
    ] {
        let st = status_of(s, None, &[], &names);
        assert_eq!(st.order, CaOrderState::Issued, "{s:?}");
        assert!(st.names.iter().all(|(_, d)| *d == NameDcv::Valid));
    }

    // invalid: the failing name's problem is the reason when the order has none.
    let failed = [
        authz("a.example.com", AuthorizationStatus::Valid, None),
        authz(
            "b.example.com",
            AuthorizationStatus::Invalid,
            Some("NXDOMAIN for _acme-challenge"),
        ),
    ];
    let st = status_of(OrderStatus::Invalid, None, &failed, &names);
    match &st.order {
        CaOrderState::Failed(why) => assert!(why.contains("b.example.com: NXDOMAIN"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        st.names[1].1,
        NameDcv::Invalid("NXDOMAIN for _acme-challenge".into())
    );
    let st = status_of(
        OrderStatus::Invalid,
        Some("order expired".into()),
        &failed,
        &names,
    );
    assert_eq!(st.order, CaOrderState::Failed("order expired".into()));

    let gone = authz("a.example.com", AuthorizationStatus::Deactivated, None);
    assert!(matches!(gone.dcv(), NameDcv::Invalid(w) if w.contains("Deactivated")));
}
