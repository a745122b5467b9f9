//! Escaping of string leaves inside primary keys.
//!
//! Octopoes joins natural-key parts with `|` and escapes nothing, so a value containing `|`
//! produces a key that cannot be split back (its issue #5299). We escape `%` as `%25` and `|` as
//! `%7C` in every string leaf; any other value passes through unchanged, so keys of ordinary
//! values are byte-identical to Octopoes' keys.

use std::borrow::Cow;

/// Escapes one natural-key leaf so it can be joined with `|`.
pub fn escape_leaf(raw: &str) -> Cow<'_, str> {
    if !raw.contains(['%', '|']) {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 4);
    for c in raw.chars() {
        match c {
            '%' => out.push_str("%25"),
            '|' => out.push_str("%7C"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Reverses [`escape_leaf`]; `None` when a `%` starts no valid escape.
pub fn unescape_leaf(escaped: &str) -> Option<Cow<'_, str>> {
    if !escaped.contains('%') {
        return Some(Cow::Borrowed(escaped));
    }
    let mut out = String::with_capacity(escaped.len());
    let mut rest = escaped;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let code = rest.get(pos + 1..pos + 3)?;
        match code {
            "25" => out.push('%'),
            "7C" | "7c" => out.push('|'),
            _ => return None,
        }
        rest = &rest[pos + 3..];
    }
    out.push_str(rest);
    Some(Cow::Owned(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_values_pass_unchanged() {
        assert!(matches!(escape_leaf("example.com/a b"), Cow::Borrowed(_)));
    }

    #[test]
    fn escapes_round_trip() {
        for raw in ["a|b", "100%", "%7C", "|%|", "ünï|cödé%"] {
            let e = escape_leaf(raw);
            assert!(!e.contains('|'));
            assert_eq!(unescape_leaf(&e).unwrap(), raw);
        }
    }

    #[test]
    fn bad_escapes_are_refused() {
        assert_eq!(unescape_leaf("50%"), None);
        assert_eq!(unescape_leaf("%2"), None);
        assert_eq!(unescape_leaf("%41"), None);
    }
}
