//! Octopussy's service XML files, read unchanged: `<octopussy_service name= description=>` with
//! `<message msg_id= pattern= loglevel= taxonomy= table= rank=/>`.
//!
//! Octopussy matches a pattern against the line its rsyslog writes (`ISO-time host rest`), and
//! nearly every pattern starts with `<@DATE_TIME_ISO:datetime@> <@WORD:device@> `. Such a
//! pattern is matched against the rest of the line (from the tag on), with `datetime` and
//! `device` bound from the parsed header: the same fields, without rendering every line
//! anew. Any other pattern is matched against the canonical line itself.

use quick_xml::events::Event;

use super::pattern::{parse as parse_pattern, Part};
use super::{native::check_name, Level, MessageDef, Service, ServiceError, Subject};

/// The prefix bound from the header instead of matched.
pub const HEADER_PREFIX: &str = "<@DATE_TIME_ISO:datetime@> <@WORD:device@> ";

/// Reads one service file; `source` names it in errors.
pub fn parse(xml: &str, source: &str) -> Result<Service, ServiceError> {
    let bad = |message: Option<String>, reason: String| ServiceError { source: source.into(), message, reason };
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut service: Option<Service> = None;
    loop {
        let event =
            reader.read_event().map_err(|e| bad(None, format!("XML at byte {}: {e}", reader.error_position())))?;
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let attrs = attributes(&e).map_err(|r| bad(None, r))?;
                let get = |k: &str| attrs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
                match e.name().as_ref() {
                    b"octopussy_service" => {
                        let name = get("name").ok_or_else(|| bad(None, "octopussy_service has no name".into()))?;
                        check_name(&name).map_err(|r| bad(None, r))?;
                        service = Some(Service {
                            name,
                            description: get("description").unwrap_or_default(),
                            messages: Vec::new(),
                        });
                    }
                    b"message" => {
                        let s =
                            service.as_mut().ok_or_else(|| bad(None, "a message outside octopussy_service".into()))?;
                        let id = get("msg_id").ok_or_else(|| bad(None, "a message has no msg_id".into()))?;
                        let m = message(&id, &get, &s.name).map_err(|r| bad(Some(id.clone()), r))?;
                        s.messages.push(m);
                    }
                    _ => {}
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let mut s = service.ok_or_else(|| bad(None, "no octopussy_service element".into()))?;
    s.sort();
    Ok(s)
}

fn attributes(e: &quick_xml::events::BytesStart) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("bad attribute: {e}"))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a.unescape_value().map_err(|e| format!("attribute {key}: {e}"))?.into_owned();
        out.push((key, value));
    }
    Ok(out)
}

fn message(id: &str, get: &dyn Fn(&str) -> Option<String>, service: &str) -> Result<MessageDef, String> {
    // Octopussy takes the id as written; a few files use a short service prefix (`dma:`).
    if !id.split_once(':').is_some_and(|(s, n)| !s.is_empty() && !n.is_empty()) {
        return Err(format!("msg_id must be '{service}:name'"));
    }
    let raw = get("pattern").ok_or("no pattern")?;
    let raw = raw.trim_end();
    let (pattern, subject) = match raw.strip_prefix(HEADER_PREFIX) {
        Some(rest) => (rest.to_owned(), Subject::Rest),
        None => (raw.to_owned(), Subject::Canonical),
    };
    let level: Level = get("loglevel").unwrap_or_else(|| "Information".into()).parse()?;
    let rank = get("rank").unwrap_or_default().trim().parse::<u32>().unwrap_or(u32::MAX);
    let programs = match subject {
        Subject::Rest => program_of(&pattern).into_iter().collect(),
        _ => Vec::new(),
    };
    Ok(MessageDef {
        id: id.to_owned(),
        pattern,
        subject,
        programs,
        level,
        taxonomy: get("taxonomy").unwrap_or_default(),
        table: get("table").unwrap_or_else(|| "Message".into()),
        rank,
        observe: Vec::new(),
    })
}

/// The program a pattern over the rest of a line can only match: a plain word written as
/// literal text or as `REGEXP("word")`, followed by `[` or `:`. Used to route lines, so it must
/// never exclude a line the pattern matches.
fn program_of(pattern: &str) -> Option<String> {
    let parts = parse_pattern(pattern).ok()?;
    let plain = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-'));
    match parts.as_slice() {
        [(_, Part::Literal(l)), ..] => {
            let end = l.find(['[', ':'])?;
            plain(&l[..end]).then(|| l[..end].to_ascii_lowercase())
        }
        [(_, Part::Token { ty, regex: Some(re), .. }), (_, Part::Literal(next)), ..] if ty == "REGEXP" => {
            (plain(re) && (next.starts_with('[') || next.starts_with(':'))).then(|| re.to_ascii_lowercase())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_taken_only_when_certain() {
        assert_eq!(program_of("sshd[<@PID:pid@>]: x").as_deref(), Some("sshd"));
        assert_eq!(program_of(r#"<@REGEXP("su"):daemon@>: x"#).as_deref(), Some("su"));
        assert_eq!(program_of(r#"<@REGEXP("s.d"):daemon@>[x"#), None);
        assert_eq!(program_of("<@WORD:daemon@>[<@PID:pid@>]: x"), None);
        assert_eq!(program_of("kernel x"), None);
    }
}
