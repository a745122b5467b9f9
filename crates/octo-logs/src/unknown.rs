//! Unknown messages: lines no service of their device matches. They are grouped by their
//! *shape* — the message with its variable parts (numbers, addresses, hex, quoted strings,
//! paths, values of `key=value`) masked — and for each group a pattern is proposed that matches
//! every line of it (Octopussy's wizard, done automatically). Groups are computed from the raw
//! store with the services as they are now, so a change of services is reflected at once.

use std::collections::HashMap;

use serde::Serialize;

use crate::classify::{Classifier, Plan};
use crate::message::Syslog;
use crate::services::{Level, MessageDef, Service, Subject};
use crate::time::LogTime;

/// One group of unknown lines.
#[derive(Debug, Clone, Serialize)]
pub struct UnknownGroup {
    /// The program (tag) of its lines.
    pub program: Option<String>,
    /// The message with variable parts masked (`Failed <NUMBER> for <IP_ADDR>`).
    pub shape: String,
    /// How many lines.
    pub count: u64,
    /// When the first and last were received.
    pub first: LogTime,
    /// See `first`.
    pub last: LogTime,
    /// Up to three of its messages.
    pub examples: Vec<String>,
    /// A pattern (Octopussy's language) that matches every line of the group.
    pub pattern: String,
    /// Whether the pattern was checked against every example and matched.
    pub verified: bool,
}

/// Collects unknown lines and groups them.
#[derive(Default)]
pub struct UnknownGroups {
    groups: HashMap<(Option<String>, String), (UnknownGroup, Vec<Tok>)>,
}

/// One whitespace-separated token of a message, with the whitespace before it.
#[derive(Debug, Clone, PartialEq)]
struct Tok {
    space: String,
    parts: Vec<Piece>,
}

impl Tok {
    fn shape(&self) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Piece::Literal(l) => l.clone(),
                Piece::Var { ty, .. } => format!("<{ty}>"),
            })
            .collect()
    }

    fn is_literal(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Piece::Literal(_)))
    }
}

fn shape_of(toks: &[Tok]) -> String {
    toks.iter().map(|t| format!("{}{}", t.space, t.shape())).collect()
}

/// Distinct words at one position of same-shaped groups beyond which the position is taken as a
/// variable (user names, host names: `Invalid user <WORD> from <IP_ADDR>`).
const VARIABLE_AT: usize = 3;

/// A piece of a message: literal text, or a variable of a token type named after its context.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Literal(String),
    Var { ty: &'static str, name: String },
}

impl UnknownGroups {
    /// Classifies a parsed line with `plan`; an unknown one joins its group. Returns whether
    /// it was unknown.
    pub fn offer(
        &mut self,
        classifier: &Classifier,
        plan: &Plan,
        line: &str,
        m: &Syslog<'_>,
        device: &str,
        received: LogTime,
    ) -> bool {
        if classifier.classify_with(plan, line, m, device).is_some() {
            return false;
        }
        let msg = m.msg.trim();
        let pieces = tokens(msg);
        let shape = shape_of(&pieces);
        let key = (m.app_name.map(str::to_owned), shape.clone());
        let entry = self.groups.entry(key).or_insert_with(|| {
            let g = UnknownGroup {
                program: m.app_name.map(str::to_owned),
                shape,
                count: 0,
                first: received,
                last: received,
                examples: Vec::new(),
                pattern: pattern(&pieces),
                verified: false,
            };
            (g, pieces)
        });
        let g = &mut entry.0;
        g.count += 1;
        g.first = g.first.min(received);
        g.last = g.last.max(received);
        if g.examples.len() < 3 && !g.examples.iter().any(|e| e == msg) {
            g.examples.push(msg.to_owned());
        }
        true
    }

    /// The groups, largest first, each pattern checked against its examples. Groups of the
    /// same program, token count and first word that differ in a position holding many
    /// different words are merged first, that position becoming a variable.
    pub fn finish(self) -> Vec<UnknownGroup> {
        // Clustered by program, token count and first word (as Drain does), so that only lines
        // of one kind are merged.
        type Cluster = Vec<(UnknownGroup, Vec<Tok>)>;
        let mut clusters: HashMap<(Option<String>, usize, String), Cluster> = HashMap::new();
        for (_, (g, toks)) in self.groups {
            let first = toks.first().map(Tok::shape).unwrap_or_default();
            clusters.entry((g.program.clone(), toks.len(), first)).or_default().push((g, toks));
        }
        let mut merged: HashMap<(Option<String>, String), (UnknownGroup, Vec<Tok>)> = HashMap::new();
        for (_, mut members) in clusters {
            let len = members[0].1.len();
            for i in 1..len {
                let words: std::collections::HashSet<String> =
                    members.iter().filter(|(_, t)| t[i].is_literal()).map(|(_, t)| t[i].shape()).collect();
                if words.len() < VARIABLE_AT {
                    continue;
                }
                for (_, toks) in members.iter_mut() {
                    if toks[i].is_literal() {
                        let context = if i > 0 { toks[i - 1].shape().to_ascii_lowercase() } else { String::new() };
                        let name = field_name(&context, "WORD", &mut HashMap::new());
                        toks[i].parts = vec![Piece::Var { ty: "WORD", name: format!("{name}_{i}") }];
                    }
                }
            }
            for (g, toks) in members {
                let shape = shape_of(&toks);
                let key = (g.program.clone(), shape.clone());
                match merged.get_mut(&key) {
                    Some((m, _)) => {
                        m.count += g.count;
                        m.first = m.first.min(g.first);
                        m.last = m.last.max(g.last);
                        for e in g.examples {
                            if m.examples.len() < 3 && !m.examples.contains(&e) {
                                m.examples.push(e);
                            }
                        }
                    }
                    None => {
                        let mut g = g;
                        g.shape = shape;
                        g.pattern = pattern(&toks);
                        merged.insert(key, (g, toks));
                    }
                }
            }
        }
        let mut out: Vec<UnknownGroup> = merged
            .into_values()
            .map(|(mut g, _)| {
                g.verified = verify(&g);
                g
            })
            .collect();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.shape.cmp(&b.shape)));
        out
    }
}

/// A service holding one message per group (what `services suggest --toml` writes).
pub fn suggested_service(name: &str, groups: &[UnknownGroup]) -> Service {
    let messages = groups
        .iter()
        .enumerate()
        .map(|(i, g)| MessageDef {
            id: format!("{name}:message_{:03}", i + 1),
            pattern: g.pattern.clone(),
            subject: Subject::Message,
            programs: g.program.iter().cloned().collect(),
            level: Level::Information,
            taxonomy: "Unknown".into(),
            table: "Message".into(),
            rank: i as u32 + 1,
            observe: Vec::new(),
        })
        .collect();
    Service { name: name.into(), description: "suggested from unknown messages".into(), messages }
}

fn verify(g: &UnknownGroup) -> bool {
    let service = suggested_service("Check", std::slice::from_ref(g));
    let Ok(c) = Classifier::new(std::slice::from_ref(&service)) else { return false };
    let plan = c.plan(&["Check".to_owned()]);
    g.examples.iter().all(|e| {
        let line = match &g.program {
            Some(p) => format!("<13>Jan  1 00:00:00 host {p}: {e}"),
            None => format!("<13>Jan  1 00:00:00 host {e}"),
        };
        let m = crate::parse::parse(&line, &crate::parse::ParseContext::now());
        // Lines without a tag parse their first word as one when it ends in ':'; check the
        // message the group was made from.
        m.msg.trim() == e && c.classify_with(&plan, &line, &m, "host").is_some()
    })
}

/// Splits a message into tokens of literal text and variables.
fn tokens(msg: &str) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut prev_word = String::new();
    let mut rest = msg;
    while !rest.is_empty() {
        let ws = rest.len() - rest.trim_start().len();
        let space = rest[..ws].to_owned();
        rest = &rest[ws..];
        if rest.is_empty() {
            break;
        }
        let mut parts: Vec<Piece> = Vec::new();
        let push_lit = |parts: &mut Vec<Piece>, s: &str| {
            if s.is_empty() {
                return;
            }
            match parts.last_mut() {
                Some(Piece::Literal(l)) => l.push_str(s),
                _ => parts.push(Piece::Literal(s.to_owned())),
            }
        };
        // A double-quoted string, spaces and all, is one token.
        if rest.starts_with('"') {
            if let Some(end) = rest[1..].find('"') {
                let name = field_name(&prev_word, "text", &mut names);
                parts.push(Piece::Var { ty: "DOUBLE_QUOTED_STRING", name });
                rest = &rest[end + 2..];
                prev_word.clear();
                out.push(Tok { space, parts });
                continue;
            }
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        rest = &rest[end..];
        // Punctuation around a token stays literal: `(uid=0)`, `[1.2.3.4]`, `x,`.
        let lead = token.len() - token.trim_start_matches(['(', '[', '<', '{', '\'']).len();
        let core_end = token.trim_end_matches([')', ']', '>', '}', ',', ';', ':', '.', '\'', '!']).len().max(lead);
        let (pre, core, post) = (&token[..lead], &token[lead..core_end], &token[core_end..]);
        push_lit(&mut parts, pre);
        let (key, value) = match core.split_once('=') {
            Some((k, v))
                if !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.')) =>
            {
                (Some(k), v)
            }
            _ => (None, core),
        };
        if let Some(k) = key {
            push_lit(&mut parts, &format!("{k}="));
        }
        match variable_type(value) {
            Some(ty) => {
                let context = key.map(str::to_owned).unwrap_or_else(|| prev_word.clone());
                let name = field_name(&context, ty, &mut names);
                parts.push(Piece::Var { ty, name });
                prev_word.clear();
            }
            None => {
                push_lit(&mut parts, value);
                if key.is_none() {
                    prev_word = value.to_ascii_lowercase();
                }
            }
        }
        push_lit(&mut parts, post);
        out.push(Tok { space, parts });
    }
    out
}

/// The token type of a variable-looking value, or None for a word kept as text.
fn variable_type(v: &str) -> Option<&'static str> {
    let b = v.as_bytes();
    if b.is_empty() {
        return None;
    }
    if v.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some("IP_ADDR");
    }
    if v.contains(':') && v.parse::<std::net::Ipv6Addr>().is_ok() {
        return Some("IPV6_ADDR");
    }
    if let Some(h) = v.strip_prefix("0x") {
        if !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Some("HEXA_NUMBER");
        }
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if (b[0] == b'-' || b[0] == b'+' || b[0].is_ascii_digit()) && b[1..].iter().all(u8::is_ascii_digit) && digits > 0 {
        return Some("NUMBER");
    }
    if digits > 0
        && v.split_once('.').is_some_and(|(a, c)| {
            !a.is_empty()
                && !c.is_empty()
                && a.bytes().all(|x| x.is_ascii_digit())
                && c.bytes().all(|x| x.is_ascii_digit())
        })
    {
        return Some("FLOAT_NUMBER");
    }
    // Paths, and words mixing letters and digits (ids, hosts, versions), vary between lines.
    if b[0] == b'/' || digits > 0 {
        return Some("WORD");
    }
    None
}

fn field_name(context: &str, ty: &str, names: &mut HashMap<String, usize>) -> String {
    let word: String =
        context.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '_').collect::<String>().to_ascii_lowercase();
    let base = match (word.as_str(), ty) {
        ("from" | "rhost" | "client", "IP_ADDR" | "IPV6_ADDR") => "src_ip".to_owned(),
        ("to", "IP_ADDR" | "IPV6_ADDR") => "dst_ip".to_owned(),
        ("port", _) => "port".to_owned(),
        ("user" | "for", _) => "user".to_owned(),
        ("", _) => ty.to_ascii_lowercase(),
        (w, _) if w.len() <= 24 && w.bytes().next().is_some_and(|c| c.is_ascii_alphabetic()) => w.to_owned(),
        _ => ty.to_ascii_lowercase(),
    };
    let n = names.entry(base.clone()).or_insert(0);
    *n += 1;
    if *n == 1 {
        base
    } else {
        format!("{base}_{n}")
    }
}

/// The pattern of a group: literal text as it is, except characters that would act as regex
/// operators, which go into `REGEXP` tokens escaped.
fn pattern(toks: &[Tok]) -> String {
    let mut out = String::new();
    for p in toks.iter().flat_map(|t| std::iter::once(Piece::Literal(t.space.clone())).chain(t.parts.iter().cloned())) {
        let p = &p;
        match p {
            Piece::Var { ty, name } => out.push_str(&format!("<@{ty}:{name}@>")),
            Piece::Literal(l) => {
                for c in l.chars() {
                    match c {
                        '.' | '*' | '+' | '?' | '{' | '}' => out.push_str(&format!("<@REGEXP(\"\\{c}\"):NULL@>")),
                        '"' => out.push_str("<@REGEXP(\"\\x22\"):NULL@>"),
                        _ => out.push(c),
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_mask_what_varies() {
        let shape = |m: &str| shape_of(&tokens(m));
        assert_eq!(
            shape("Failed password for root from 10.0.0.1 port 4711 ssh2"),
            "Failed password for root from <IP_ADDR> port <NUMBER> <WORD>"
        );
        assert_eq!(
            shape(r#"open "/etc/x y" failed (uid=0, err=0x1f)."#),
            "open <DOUBLE_QUOTED_STRING> failed (uid=<NUMBER>, err=<HEXA_NUMBER>)."
        );
        assert_eq!(shape("took 1.25 s on [2001:db8::1]"), "took <FLOAT_NUMBER> s on [<IPV6_ADDR>]");
        let p = pattern(&tokens("Failed password for root from 10.0.0.1 port 4711 ssh2"));
        assert_eq!(p, "Failed password for root from <@IP_ADDR:src_ip@> port <@NUMBER:port@> <@WORD:word@>");
    }
}
