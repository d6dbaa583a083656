//! Host names as public CAs accept them: LDH labels, IDNA2008 IDNs (A-labels that
//! round-trip), `*.` only as the whole left-most label.

use icu_properties::props::{DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use idna::uts46::{AsciiDenyList, DnsLength, Hyphens, Uts46};

/// A DNS name a public CA accepts in a certificate: LDH labels (letters, digits, `-`;
/// 1-63 characters, no `-` first or last, no `??--` unless an `xn--` A-label), at most
/// 253 characters, `*.` only as the whole left-most label; U-labels and A-labels valid
/// IDNA2008 (UTS-46 non-transitional, an A-label must round-trip). `Err` says why.
pub(super) fn check_public_hostname(raw: &str) -> Result<(), String> {
    let name = raw.trim();
    let name = name.strip_suffix('.').unwrap_or(name);
    let rest = name.strip_prefix("*.").unwrap_or(name);
    if rest.contains('*') {
        return Err("`*` is allowed only as the whole left-most label, as in *.example.com".into());
    }
    let ascii = if rest.is_ascii() {
        rest.to_ascii_lowercase()
    } else {
        Uts46::new()
            .to_ascii(
                rest.as_bytes(),
                AsciiDenyList::STD3,
                Hyphens::Check,
                DnsLength::Verify,
            )
            .map_err(|_| {
                "it is not a valid internationalised name (UTS-46 refuses it: a character \
                 that is not allowed, a `-` in a forbidden place, or mixed-direction text)"
                    .to_string()
            })?
            .into_owned()
    };
    let total = ascii.len() + (name.len() - rest.len());
    if total > 253 {
        return Err(format!(
            "it is {total} characters long in ASCII form; at most 253 are allowed"
        ));
    }
    for label in ascii.split('.') {
        check_label(label)?;
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("it has an empty label (two dots in a row)".into());
    }
    if label.len() > 63 {
        return Err(format!(
            "label `{label}` is {} characters long; at most 63 are allowed",
            label.len()
        ));
    }
    if let Some(bad) = label
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        let what = if bad == '_' {
            "`_`: public CAs accept only letters, digits and `-` in host names (underscore \
             names such as _dmarc are DNS records, not hosts)"
                .to_string()
        } else {
            format!("`{bad}`: host names hold only letters, digits and `-`")
        };
        return Err(format!("label `{label}` contains {what}"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("label `{label}` starts or ends with `-`"));
    }
    if label.get(2..4) == Some("--") {
        return match label.strip_prefix("xn--") {
            Some(puny) => check_a_label(label, puny),
            None => Err(format!(
                "label `{label}` has `--` in the third and fourth place, reserved for IDN \
                 A-labels (`xn--`)"
            )),
        };
    }
    Ok(())
}

/// An `xn--` label: valid punycode, round-trips through UTS-46, and every code point of
/// its U-label is allowed by IDNA2008 (RFC 5892).
fn check_a_label(label: &str, puny: &str) -> Result<(), String> {
    let unicode = idna::punycode::decode_to_string(puny)
        .filter(|u| !u.is_empty())
        .ok_or_else(|| format!("label `{label}` is not valid punycode"))?;
    if let Some(c) = unicode.chars().find(|c| idna2008_disallowed(*c)) {
        return Err(format!(
            "label `{label}` (`{unicode}`) holds U+{:04X} `{c}`, which IDNA2008 does not allow \
             (only letters, digits, marks and `-`; no symbols, emoji or punctuation)",
            c as u32
        ));
    }
    let again = Uts46::new()
        .to_ascii(
            unicode.as_bytes(),
            AsciiDenyList::STD3,
            Hyphens::Check,
            DnsLength::Verify,
        )
        .map_err(|_| format!("label `{label}` (`{unicode}`) is not a valid IDN under UTS-46"))?;
    if again != label {
        return Err(format!(
            "label `{label}` does not round-trip: it decodes to `{unicode}`, which encodes as \
             `{again}`; write the name as `{again}` or in Unicode"
        ));
    }
    Ok(())
}

/// RFC 5892 derived property, without the contextual rules' context checks: PVALID are
/// lower-case LDH and letters/digits/marks that are stable and not ignorable; the
/// listed exceptions; CONTEXTJ/CONTEXTO code points are let through.
fn idna2008_disallowed(c: char) -> bool {
    if c.is_ascii() {
        return !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    }
    match c as u32 {
        // 2.6 Exceptions: PVALID.
        0xDF | 0x3C2 | 0x6FD | 0x6FE | 0xF0B | 0x3007 => return false,
        // CONTEXTO and CONTEXTJ.
        0xB7 | 0x375 | 0x5F3 | 0x5F4 | 0x30FB | 0x660..=0x669 | 0x6F0..=0x6F9 | 0x200C | 0x200D => {
            return false;
        }
        // 2.6 Exceptions: DISALLOWED.
        0x640 | 0x7FA | 0x302E | 0x302F | 0x3031..=0x3035 | 0x303B => return true,
        // 2.9 OldHangulJamo; 2.8 IgnorableBlocks.
        0x1100..=0x11FF | 0xA960..=0xA97F | 0xD7B0..=0xD7FF => return true,
        0x20D0..=0x20FF | 0x1D100..=0x1D24F => return true,
        _ => {}
    }
    if CodePointSetData::new::<DefaultIgnorableCodePoint>().contains(c) {
        return true;
    }
    !matches!(
        CodePointMapData::<GeneralCategory>::new().get(c),
        GeneralCategory::LowercaseLetter
            | GeneralCategory::OtherLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::NonspacingMark
            | GeneralCategory::SpacingMark
            | GeneralCategory::DecimalNumber
    )
}
