//! Checks on certificates ordered from a DigiCert provider.

use super::problem::Problems;
use super::rules::provider_kind;
use super::{CertificateConfig, Config};
use crate::model::ProviderKind;

/// `locale` must be a CertCentral locale code: DigiCert refuses others with a 400, a
/// permanent failure of a paid order, so it is caught here instead.
pub(super) fn check_certificate(cfg: &Config, key: &str, c: &CertificateConfig, p: &mut Problems) {
    let digicert = cfg
        .providers
        .get(&c.provider)
        .is_some_and(|pr| provider_kind(pr) == ProviderKind::Digicert);
    if digicert && !LOCALES.contains(&c.locale.as_str()) {
        p.push(
            super::problem::in_certificate(key, "locale"),
            format!(
                "`{}` is not a DigiCert locale code; use one of: {}",
                c.locale,
                LOCALES.join(", ")
            ),
        );
    }
}

/// CertCentral locale codes for DCV emails. The glossary page is not in the corpus:
/// `en` is confirmed (every example), the others are reference/digicert.md §4's list
/// (inferred). Anything else is refused at config time.
pub const LOCALES: &[&str] = &[
    "en", "de", "es", "fr", "it", "ja", "ko", "pt", "ru", "zh_CN", "zh_TW",
];

#[cfg(test)]
mod tests {
    use super::super::tests::{problems, with};

    #[test]
    fn digicert_locale_and_custom_fields_are_checked() {
        let loc = |l: &str| {
            with(&[(
                "output_dir = \"/tmp/certs/www\"",
                &format!("output_dir = \"/tmp/certs/www\"\nlocale = \"{l}\""),
            )])
        };
        assert!(problems(&loc("fr")).is_empty());
        assert!(problems(&loc("zh_CN")).is_empty());
        let ps = problems(&loc("fr-FR"));
        assert!(
            ps.iter().any(|p| p.key == "certificate \"www\": locale"
                && p.message.contains("not a DigiCert locale code")),
            "{ps:?}"
        );
        let fields = |f: &str| {
            with(&[(
                "api_key = \"",
                &format!("custom_fields = [{f}]\napi_key = \""),
            )])
        };
        assert!(problems(&fields("{ metadata_id = 12, value = \"Invoice\" }")).is_empty());
        let ps = problems(&fields("{ metadata_id = 0, value = \" \" }"));
        let keys: Vec<&str> = ps.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "providers.main.custom_fields[0].metadata_id",
                "providers.main.custom_fields[0].value"
            ]
        );
        let ps = problems(&fields("{ metadata_id = 12, value = \"x\", colour = 1 }"));
        assert!(!ps.is_empty(), "unknown keys in a custom field are refused");
    }
}
