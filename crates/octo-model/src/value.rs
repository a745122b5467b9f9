//! Field values: validated and normalised on construction, so two spellings of one address or
//! hostname never become two objects.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};

use chrono::{DateTime, FixedOffset, SecondsFormat};

use crate::key::Reference;
use crate::schema::{Case, FieldKind, IpVersion};

/// One validated field value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Absent (only for optional fields).
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// Text: strings, enums, hostnames and URLs after normalisation.
    Str(String),
    /// An IP address.
    Ip(IpAddr),
    /// A timestamp with its offset.
    DateTime(DateTime<FixedOffset>),
    /// Free-form JSON.
    Json(serde_json::Value),
    /// A primary key of another object.
    Ref(Reference),
    /// A list of values of one kind.
    List(Vec<Value>),
}

impl Value {
    /// The JSON form, as Octopoes serialises it (references as key strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Ip(ip) => J::String(format_ip(ip)),
            Value::DateTime(dt) => J::String(dt.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
            Value::Json(v) => v.clone(),
            Value::Ref(r) => J::String(r.as_str().to_owned()),
            Value::List(items) => J::Array(items.iter().map(Value::to_json).collect()),
        }
    }

    /// The unescaped text this value contributes to a natural key (Python's `str()` of it).
    pub(crate) fn key_text(&self) -> Cow<'_, str> {
        match self {
            Value::Null => Cow::Borrowed(""),
            Value::Bool(true) => Cow::Borrowed("True"),
            Value::Bool(false) => Cow::Borrowed("False"),
            Value::Int(i) => Cow::Owned(i.to_string()),
            Value::Float(f) => Cow::Owned(python_float(*f)),
            Value::Str(s) => Cow::Borrowed(s),
            Value::Ip(ip) => Cow::Owned(format_ip(ip)),
            Value::DateTime(dt) => Cow::Owned(dt.to_rfc3339_opts(SecondsFormat::AutoSi, false)),
            Value::Json(v) => Cow::Owned(v.to_string()),
            Value::Ref(r) => Cow::Borrowed(r.as_str()),
            Value::List(_) => Cow::Borrowed(""),
        }
    }

    /// The text when this value is a string-like leaf.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            Value::Ref(r) => Some(r.as_str()),
            _ => None,
        }
    }

    /// The integer when this value is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The reference when this value is one.
    pub fn as_reference(&self) -> Option<&Reference> {
        match self {
            Value::Ref(r) => Some(r),
            _ => None,
        }
    }
}

fn python_float(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
        format!("{f:.1}")
    } else {
        f.to_string()
    }
}

/// Formats an address as Python's `ipaddress` does, so keys match Octopoes' byte for byte
/// (Rust prints IPv4-mapped IPv6 addresses in dotted form; Python does not).
pub fn format_ip(ip: &IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format_ipv6(v6),
    }
}

fn format_ipv6(addr: &Ipv6Addr) -> String {
    let seg = addr.segments();
    // Longest run of two or more zero groups, the first one on a tie (RFC 5952 and Python).
    let (mut best_start, mut best_len) = (usize::MAX, 0);
    let mut i = 0;
    while i < 8 {
        if seg[i] == 0 {
            let start = i;
            while i < 8 && seg[i] == 0 {
                i += 1;
            }
            if i - start > best_len && i - start >= 2 {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    let hex = |s: &[u16]| s.iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":");
    if best_len == 0 {
        hex(&seg)
    } else {
        format!("{}::{}", hex(&seg[..best_start]), hex(&seg[best_start + best_len..]))
    }
}

/// Normalises a hostname: lower-case, IDNA (punycode) for non-ASCII labels, one trailing dot
/// dropped; refuses characters outside letters, digits, `-`, `_` and `.`, a trailing hyphen,
/// empty labels and IP literals (an address is an IPAddress, not a Hostname).
pub fn normalize_hostname(raw: &str) -> Result<String, String> {
    let trimmed = raw.strip_suffix('.').unwrap_or(raw);
    if trimmed.is_empty() {
        return Err("hostname is empty".into());
    }
    let ascii = if trimmed.is_ascii() {
        trimmed.to_ascii_lowercase()
    } else {
        idna::domain_to_ascii(trimmed).map_err(|_| format!("'{raw}' is not a valid internationalised hostname"))?
    };
    if let Some(c) = ascii.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(format!("invalid hostname character '{c}' in '{raw}'"));
    }
    if ascii.ends_with('-') {
        return Err(format!("hostname '{raw}' must not end with a hyphen"));
    }
    if ascii.split('.').any(|label| label.is_empty() || label.len() > 63) || ascii.len() > 253 {
        return Err(format!("hostname '{raw}' has an empty or over-long label"));
    }
    if ascii.parse::<IpAddr>().is_ok() {
        return Err(format!("'{raw}' is an IP address, not a hostname"));
    }
    Ok(ascii)
}

/// Validates an absolute URL loosely: a scheme, `:`, and no whitespace.
fn validate_url(raw: &str) -> Result<(), String> {
    let Some((scheme, rest)) = raw.split_once(':') else {
        return Err(format!("'{raw}' is not an absolute URL"));
    };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok || rest.is_empty() || raw.chars().any(char::is_whitespace) {
        return Err(format!("'{raw}' is not an absolute URL"));
    }
    Ok(())
}

/// Validates a scalar given as text (from JSON strings and from key leaves) against its kind.
/// References are handled by the caller, which needs the catalogue.
pub(crate) fn scalar_from_text(kind: &FieldKind, text: &str) -> Result<Value, String> {
    match kind {
        FieldKind::String { case, strip } => {
            let s = if *strip { text.trim() } else { text };
            Ok(Value::Str(match case {
                Case::Keep => s.to_owned(),
                Case::Lower => s.to_lowercase(),
                Case::Upper => s.to_uppercase(),
            }))
        }
        FieldKind::Int { min, max } => {
            let i: i64 = text.trim().parse().map_err(|_| format!("'{text}' is not an integer"))?;
            check_int(i, *min, *max)
        }
        FieldKind::Float { min, max } => {
            let f: f64 = text.trim().parse().map_err(|_| format!("'{text}' is not a number"))?;
            check_float(f, *min, *max)
        }
        FieldKind::Bool => match text {
            "True" | "true" => Ok(Value::Bool(true)),
            "False" | "false" => Ok(Value::Bool(false)),
            _ => Err(format!("'{text}' is not a boolean")),
        },
        FieldKind::Enum(values) => {
            if values.iter().any(|v| v == text) {
                Ok(Value::Str(text.to_owned()))
            } else {
                Err(format!("'{text}' is not one of {}", values.join(", ")))
            }
        }
        FieldKind::Ip(version) => {
            let ip: IpAddr = text.trim().parse().map_err(|_| format!("'{text}' is not an IP address"))?;
            match (version, ip) {
                (IpVersion::V4, IpAddr::V6(_)) => Err(format!("'{text}' is not an IPv4 address")),
                (IpVersion::V6, IpAddr::V4(_)) => Err(format!("'{text}' is not an IPv6 address")),
                _ => Ok(Value::Ip(ip)),
            }
        }
        FieldKind::Hostname => normalize_hostname(text).map(Value::Str),
        FieldKind::DateTime => DateTime::parse_from_rfc3339(text)
            .map(Value::DateTime)
            .map_err(|e| format!("'{text}' is not an RFC 3339 timestamp: {e}")),
        FieldKind::Json => serde_json::from_str(text).map(Value::Json).map_err(|e| format!("invalid JSON: {e}")),
        FieldKind::Url => validate_url(text).map(|()| Value::Str(text.to_owned())),
        FieldKind::Reference(_) => Err("internal: references need the catalogue".into()),
    }
}

pub(crate) fn check_int(i: i64, min: Option<i64>, max: Option<i64>) -> Result<Value, String> {
    if min.is_some_and(|m| i < m) || max.is_some_and(|m| i > m) {
        return Err(format!("{i} is out of range {}..={}", fmt_bound(min), fmt_bound(max)));
    }
    Ok(Value::Int(i))
}

pub(crate) fn check_float(f: f64, min: Option<f64>, max: Option<f64>) -> Result<Value, String> {
    if !f.is_finite() || min.is_some_and(|m| f < m) || max.is_some_and(|m| f > m) {
        return Err(format!("{f} is out of range {}..={}", fmt_bound(min), fmt_bound(max)));
    }
    Ok(Value::Float(f))
}

fn fmt_bound<T: std::fmt::Display>(b: Option<T>) -> String {
    b.map_or(String::new(), |b| b.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_formats_as_python() {
        let cases = [
            ("2001:db8::1", "2001:db8::1"),
            ("::ffff:1.2.3.4", "::ffff:102:304"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("FDF8:F53B:82E4::53", "fdf8:f53b:82e4::53"),
        ];
        for (input, want) in cases {
            let ip: IpAddr = input.parse().unwrap();
            assert_eq!(format_ip(&ip), want, "{input}");
        }
    }

    #[test]
    fn hostnames_are_normalised() {
        assert_eq!(normalize_hostname("Example.COM.").unwrap(), "example.com");
        assert_eq!(normalize_hostname("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert_eq!(normalize_hostname("_dmarc.example.com").unwrap(), "_dmarc.example.com");
        assert!(normalize_hostname("exa mple.com").is_err());
        assert!(normalize_hostname("example-").is_err());
        assert!(normalize_hostname("a..b").is_err());
        assert!(normalize_hostname("192.0.2.1").is_err());
        assert!(normalize_hostname("").is_err());
    }

    #[test]
    fn urls_need_a_scheme() {
        assert!(validate_url("https://example.com/a").is_ok());
        assert!(validate_url("example.com").is_err());
        assert!(validate_url("https://exa mple.com").is_err());
    }
}
