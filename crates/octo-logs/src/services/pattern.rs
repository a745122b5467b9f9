//! Octopussy's pattern language: literal text with tokens `<@TYPE:field@>` (captured into
//! `field`, or not captured when the field is `NULL`) and `<@REGEXP("re"):field@>`. A pattern
//! compiles to one regular expression anchored at the start, matched case-insensitively on
//! bytes with Perl's ASCII classes, as Octopussy's Perl does.
//!
//! Literal text is passed to the regex as Octopussy passes it: only `/ \ ^ $ ( ) [ ] |` are
//! escaped, so `.`, `*`, `+` and `?` in literal text keep their regex meaning (patterns rely on
//! it), and a `{` that does not start a repetition is escaped (Perl reads it as a character).

use std::fmt;

/// One piece of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text (with the regex meaning its unescaped characters have).
    Literal(String),
    /// A typed token.
    Token {
        /// The type (`WORD`, `IP_ADDR`, …), or `REGEXP`.
        ty: String,
        /// The regex of a `REGEXP("…")` token.
        regex: Option<String>,
        /// The field it is captured into (None for `NULL`).
        field: Option<String>,
    },
}

/// A pattern that cannot be read or compiled, with the byte column (1-based) where it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// 1-based byte column in the pattern.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.message)
    }
}

/// Splits a pattern into literal text and tokens.
pub fn parse(pattern: &str) -> Result<Vec<(usize, Part)>, PatternError> {
    let mut parts = Vec::new();
    let mut rest = pattern;
    let mut offset = 0;
    while let Some(start) = rest.find("<@") {
        if start > 0 {
            parts.push((offset, Part::Literal(rest[..start].to_owned())));
        }
        let body_start = start + 2;
        let at = offset + start;
        let body = &rest[body_start..];
        let (ty, regex, after) = if let Some(re_body) = body.strip_prefix("REGEXP(\"") {
            // The regex ends at the last `"):` before the token's end.
            let end_tok = re_body.find("@>").ok_or_else(|| err(at, "token is not closed with '@>'"))?;
            let close = re_body[..end_tok]
                .rfind("\"):")
                .ok_or_else(|| err(at, "REGEXP(\"…\") must be followed by ':field'"))?;
            let re = &re_body[..close];
            ("REGEXP".to_owned(), Some(re.to_owned()), &re_body[close + 2..])
        } else {
            let colon = body.find(':').ok_or_else(|| err(at, "token needs a ':field' (or ':NULL')"))?;
            let ty = &body[..colon];
            if ty.is_empty() || !ty.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_') {
                return Err(err(at, &format!("'{ty}' is not a token type (upper-case letters, digits, '_')")));
            }
            (ty.to_owned(), None, &body[colon..])
        };
        // `after` starts at the ':' before the field.
        let after = after.strip_prefix(':').ok_or_else(|| err(at, "expected ':' and a field name"))?;
        let end = after.find("@>").ok_or_else(|| err(at, "token is not closed with '@>'"))?;
        let field = &after[..end];
        if field.is_empty() || !field.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_') {
            return Err(err(at, &format!("'{field}' is not a field name (letters, digits, '_')")));
        }
        let field = (field != "NULL").then(|| field.to_owned());
        parts.push((at, Part::Token { ty, regex, field }));
        let consumed = rest.len() - after.len() + end + 2;
        offset += consumed;
        rest = &rest[consumed..];
    }
    if !rest.is_empty() {
        parts.push((offset, Part::Literal(rest.to_owned())));
    }
    Ok(parts)
}

fn err(at: usize, message: &str) -> PatternError {
    PatternError { column: at + 1, message: message.to_owned() }
}

/// Literal text as a regex: Octopussy's escapes, and `{` escaped unless it starts `{n}`,
/// `{n,}` or `{n,m}`.
pub fn literal_regex(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 8);
    let mut i = 0;
    while i < b.len() {
        let c = text[i..].chars().next().unwrap_or(' ');
        match c {
            '/' | '\\' | '^' | '$' | '(' | ')' | '[' | ']' | '|' => {
                out.push('\\');
                out.push(c);
            }
            '{' if !is_repetition(&b[i..]) => out.push_str("\\{"),
            '}' if !closes_repetition(b, i) => out.push_str("\\}"),
            _ => out.push(c),
        }
        i += c.len_utf8();
    }
    out
}

/// A Perl regex as Rust's `regex` reads it: a `{` that starts no repetition is a plain
/// character to Perl (`create { .+ }`) but an error to `regex`, so it is escaped, with its `}`.
pub fn perl_braces(re: &str) -> String {
    let b = re.as_bytes();
    let mut out = String::with_capacity(re.len() + 4);
    let mut i = 0;
    let mut in_class = false;
    while i < b.len() {
        let c = re[i..].chars().next().unwrap_or(' ');
        let n = c.len_utf8();
        match c {
            '\\' => {
                let next = re[i + 1..].chars().next().map_or(0, char::len_utf8);
                out.push_str(&re[i..i + 1 + next]);
                i += 1 + next;
                continue;
            }
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            '{' if !in_class && !is_repetition(&b[i..]) => {
                out.push_str("\\{");
                i += 1;
                continue;
            }
            '}' if !in_class && !closes_repetition(b, i) => {
                out.push_str("\\}");
                i += 1;
                continue;
            }
            _ => {}
        }
        out.push(c);
        i += n;
    }
    out
}

/// `{n}`, `{n,}` or `{n,m}` at the start.
fn is_repetition(b: &[u8]) -> bool {
    let Some(close) = b.iter().position(|&c| c == b'}') else { return false };
    let inner = &b[1..close];
    let mut parts = inner.splitn(2, |&c| c == b',');
    let first = parts.next().unwrap_or(&[]);
    let second = parts.next();
    !first.is_empty() && first.iter().all(u8::is_ascii_digit) && second.is_none_or(|s| s.iter().all(u8::is_ascii_digit))
}

/// Whether the `}` at `b[i]` closes a repetition.
fn closes_repetition(b: &[u8], i: usize) -> bool {
    match b[..i].iter().rposition(|&c| c == b'{') {
        Some(open) => !b[open..i].contains(&b'}') && is_repetition(&b[open..=i]),
        None => false,
    }
}

/// The regex of a token type: Octopussy's built-in types and those of its `types.xml`, written
/// here, plus a few of our own for native services. None for an unknown type.
pub fn type_regex(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "NUMBER" | "BYTES" | "SECONDS" => r"[-+]?\d+",
        "PID" => r"\d+",
        "WORD" => r"\S+",
        "EMAIL" => r".+@.+\..+",
        "USER_AGENT" | "STRING" | "LONG_STRING" => r".+",
        "IP_ADDR" => r"\d+\.\d+\.\d+\.\d+",
        "IPV6_ADDR" => r"[0-9a-f:]*:[0-9a-f:.]+",
        // One class, not an alternation of the two forms: a pattern stays one-pass, so its
        // fields come out of the one-pass DFA instead of the backtracker (sshd's lines:
        // 300–309k → 366–442k lines/s, `bench classify`).
        "IP" => r"[0-9a-f:.]+",
        "PORT" => r"\d{1,5}",
        "USER" => r"\S*",
        "HOSTNAME" => r"[A-Za-z0-9._-]+",
        "MAC_ADDR" => r"[0-9a-f]{1,2}(?::[0-9a-f]{1,2}){5}",
        "HEXA_NUMBER" => r"0x[0-9a-f]+",
        "FLOAT_NUMBER" => r"\d+\.\d+",
        "NET_INTERFACE" => r"(?:br|eth|tun|vlan|wlan)\d+",
        "TIME" => r"\d{1,3}:\d{2}:\d{2}",
        "DATE" => r"\d{4}/\d{2}/\d{2}",
        "DATE_SQL" => r"\d{4}-\d{2}-\d{2}",
        "DATE_TIME_ISO" => r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[-+]\d{2}:\d{2})",
        "DATE_TIME_SYSLOG" => r"\w{3} \s?\d{1,2} \d{2}:\d{2}:\d{2}",
        "DATE_TIME_SYSLOG_LONG" => r"\w{3} \s?\d{1,2} \d{4} \d{2}:\d{2}:\d{2}",
        "DATE_TIME_NS" => r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}",
        "DATE_TIME_STD" => r"\d{2}/\d{2}/\d{4} \d{2}:\d{2}",
        "DATE_TIME_APACHE_ACCESS" => r"\d{2}/\w{3}/\d{4}:\d{2}:\d{2}:\d{2} [-+]\d{4}",
        "DATE_TIME_APACHE_ERROR" => r"\w{3} \w{3} \s?\d{1,2} \d{2}:\d{2}:\d{2}(?:\.\d+)? \d{4}",
        "DOUBLE_QUOTED_STRING" => r#"".*?""#,
        "SINGLE_QUOTED_STRING" => r"'.*?'",
        "BAD_QUOTED_STRING" => r"`.*?'",
        "BRACKETED_STRING" => r"\[\D*?\]",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_literals() {
        let p = parse(r#"<@WORD:daemon@>[<@PID:pid@>]: <@REGEXP("Failed \S+"):what@> x<@NUMBER:NULL@>"#).unwrap();
        assert_eq!(p.len(), 7);
        assert_eq!(p[0].1, Part::Token { ty: "WORD".into(), regex: None, field: Some("daemon".into()) });
        assert_eq!(p[1].1, Part::Literal("[".into()));
        assert_eq!(
            p[4].1,
            Part::Token { ty: "REGEXP".into(), regex: Some(r"Failed \S+".into()), field: Some("what".into()) }
        );
        assert_eq!(p[6].1, Part::Token { ty: "NUMBER".into(), regex: None, field: None });
    }

    #[test]
    fn bad_patterns_name_the_column() {
        for (bad, col) in
            [("abc <@WORD@>", 5), ("<@word:x@>", 1), ("x <@WORD:a b@>", 3), ("<@WORD:x", 1), (r#"<@REGEXP("a):x@>"#, 1)]
        {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.column, col, "{bad}: {e}");
        }
    }

    #[test]
    fn literals_escape_as_octopussy_does() {
        assert_eq!(literal_regex("a.b (c) [d] x|y ^$ /\\"), r"a.b \(c\) \[d\] x\|y \^\$ \/\\");
        assert_eq!(literal_regex("a{2} b{ c} {x}"), r"a{2} b\{ c\} \{x\}");
        assert_eq!(perl_braces(r"create { .+ } x{2,3} [{}] \{"), r"create \{ .+ \} x{2,3} [{}] \{");
    }
}
