//! Classification: which message of a device's services a line is, and its fields.
//!
//! Patterns are not tried one by one. Each message is routed by the program (tag) its lines
//! come with, so a line only meets the messages of its own program plus those that take any;
//! and each message's longest required literal goes into one Aho–Corasick automaton, run once
//! over the line, so a candidate whose literal is absent is skipped without running its regex.
//! The cost per line grows with the line and its few real candidates, not with the library.
//! A candidate's pattern is then matched by the small backtracker of [`crate::backtrack`] when
//! its pattern allows (nearly all do), else by its regex.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::{Regex, RegexBuilder};

use crate::backtrack::Program;
use crate::message::{Format, Syslog};
use crate::services::pattern::{literal_regex, parse as parse_pattern, perl_braces, type_regex, Part};
use crate::services::{MessageDef, Service, ServiceError, Subject};

/// A classified line.
#[derive(Debug, Clone, PartialEq)]
pub struct Classified<'c> {
    /// The service it belongs to.
    pub service: &'c str,
    /// The message it is.
    pub message: &'c MessageDef,
    /// The captured fields, in pattern order.
    pub fields: Vec<(&'c str, String)>,
}

struct Compiled {
    def: MessageDef,
    service: usize,
    /// Its regex, run without the lazy DFA's pre-pass (see [`compile`]).
    regex: regex_automata::meta::Regex,
    /// The same pattern for the small backtracker, which runs first when the pattern allows.
    program: Option<Program>,
    /// The field of each capture group (index = group number).
    groups: Vec<Option<String>>,
    /// Exact programs (lower case) and globs.
    exact: Vec<String>,
    globs: Vec<String>,
    /// Index of its required literal in the automaton, and a searcher for it (lower case).
    literal: Option<usize>,
    finder: Option<memchr::memmem::Finder<'static>>,
    /// The literal text the pattern starts with (patterns are anchored), lower case: a line
    /// that does not start so is passed over with a few byte comparisons.
    prefix: Vec<u8>,
}

impl Classified<'_> {
    /// The objects the line is evidence of: the message's `observe` templates with the
    /// line's fields filled in (Octopoes' JSON shape), and the sender's: `{@device}` is the
    /// device's name, `{@address}` its address (declared, else the one the line came from). An
    /// object that needs an address the line does not have is left out.
    pub fn observations(
        &self,
        device: &str,
        address: Option<std::net::IpAddr>,
    ) -> Vec<serde_json::Map<String, serde_json::Value>> {
        let address = address.map(|a| a.to_string());
        self.message
            .observe
            .iter()
            .filter_map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let mut out = v.clone();
                        for name in placeholders(v) {
                            let value = match name {
                                "@device" => device,
                                "@address" => address.as_deref()?,
                                _ => self.fields.iter().find(|(f, _)| *f == name).map_or("", |(_, v)| v.as_str()),
                            };
                            out = out.replace(&format!("{{{name}}}"), value);
                        }
                        Some((k.clone(), serde_json::Value::String(out)))
                    })
                    .collect()
            })
            .collect()
    }
}

/// Placeholders every `observe` template may use besides the pattern's fields.
const SENDER_PLACEHOLDERS: [&str; 2] = ["@device", "@address"];

/// The `{name}` placeholders of a template.
fn placeholders(template: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        match rest[open..].find('}') {
            Some(close) => {
                out.push(&rest[open + 1..open + close]);
                rest = &rest[open + close + 1..];
            }
            None => break,
        }
    }
    out
}

impl Compiled {
    /// Whether a line of this program may be this message.
    fn takes(&self, app: Option<&str>) -> bool {
        if self.exact.is_empty() && self.globs.is_empty() {
            return true;
        }
        let Some(app) = app else { return false };
        self.exact.iter().any(|p| p == app) || self.globs.iter().any(|g| glob(g, app))
    }
}

/// The candidates of one list of services (a device's), per program: get it once with
/// [`Classifier::plan`] and classify many lines with it.
pub struct Plan {
    /// Looked up once per line: foldhash, not SipHash, which showed in the profile.
    by_program: HashMap<String, Candidates, foldhash::fast::RandomState>,
    any: Candidates,
}

/// The messages a line of one program may be, in the order they are tried, and the same per
/// first byte of the message text (lower case): a message matched against the text whose
/// pattern starts with a literal can only match text starting with that literal's first byte.
struct Candidates {
    all: Vec<usize>,
    by_first: Vec<Vec<usize>>,
}

impl Candidates {
    fn new(all: Vec<usize>, messages: &[Compiled]) -> Candidates {
        let by_first = (0..=255u8)
            .map(|b| {
                all.iter()
                    .copied()
                    .filter(|&i| {
                        let m = &messages[i];
                        m.def.subject != Subject::Message || m.prefix.first().is_none_or(|&p| p == b)
                    })
                    .collect()
            })
            .collect();
        Candidates { all, by_first }
    }
}

/// The compiled library: every message of every service, ready to match.
pub struct Classifier {
    services: Vec<String>,
    messages: Vec<Compiled>,
    literals: AhoCorasick,
    literal_count: usize,
    plans: Mutex<HashMap<Vec<String>, Arc<Plan>>>,
}

/// Required literals looked for one by one before a line is scanned for all of them at once.
const DIRECT_SEARCHES: usize = 8;

thread_local! {
    /// Per thread: the literals a line holds (a bit each), and the capture slots of a match.
    static SEEN: (std::cell::RefCell<Vec<u64>>, std::cell::RefCell<Vec<Option<usize>>>) =
        const { (std::cell::RefCell::new(Vec::new()), std::cell::RefCell::new(Vec::new())) };
}

impl Classifier {
    /// Compiles services; a bad pattern fails with its service, message and column.
    pub fn new(services: &[Service]) -> Result<Classifier, ServiceError> {
        let mut names = Vec::new();
        let mut messages = Vec::new();
        let mut literals: Vec<String> = Vec::new();
        for (si, s) in services.iter().enumerate() {
            if names.contains(&s.name) {
                return Err(ServiceError {
                    source: s.name.clone(),
                    message: None,
                    reason: "two services of this name".into(),
                });
            }
            names.push(s.name.clone());
            for m in &s.messages {
                let bad = |reason: String| ServiceError { source: s.name.clone(), message: Some(m.id.clone()), reason };
                let CompiledPattern { regex, program, groups, literal, prefix } = compile(&m.pattern).map_err(bad)?;
                for object in &m.observe {
                    for value in object.values() {
                        for name in placeholders(value) {
                            if !SENDER_PLACEHOLDERS.contains(&name)
                                && !groups.iter().any(|g| g.as_deref() == Some(name))
                            {
                                return Err(bad(format!("observe: '{{{name}}}' is not a field of the pattern")));
                            }
                        }
                    }
                }
                // A literal inside the prefix says nothing more than the prefix does.
                let in_prefix = |l: &String| {
                    let l = l.to_ascii_lowercase();
                    prefix.windows(l.len().max(1)).any(|w| w == l.as_bytes())
                };
                let literal = literal.filter(|l| m.subject != Subject::Canonical && !in_prefix(l));
                let finder = literal
                    .as_ref()
                    .map(|l| memchr::memmem::Finder::new(l.to_ascii_lowercase().as_bytes()).into_owned());
                let literal = literal.map(|l| {
                    literals.push(l);
                    literals.len() - 1
                });
                let (globs, exact): (Vec<String>, Vec<String>) = m
                    .programs
                    .iter()
                    .map(|p| p.to_ascii_lowercase())
                    .partition(|p| p.starts_with('*') || p.ends_with('*'));
                messages.push(Compiled {
                    def: m.clone(),
                    service: si,
                    regex,
                    program,
                    groups,
                    exact,
                    globs,
                    literal,
                    finder,
                    prefix,
                });
            }
        }
        // A full DFA: one table lookup per byte of the line (the default would pick an NFA for
        // a large set, several times slower per byte).
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .kind(Some(aho_corasick::AhoCorasickKind::DFA))
            .build(&literals)
            .map_err(|e| ServiceError { source: "library".into(), message: None, reason: e.to_string() })?;
        Ok(Classifier {
            services: names,
            messages,
            literals: automaton,
            literal_count: literals.len(),
            plans: Mutex::new(HashMap::new()),
        })
    }

    /// The services, by name, in load order.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    /// Every message.
    pub fn messages(&self) -> impl Iterator<Item = &MessageDef> {
        self.messages.iter().map(|m| &m.def)
    }

    /// The plan for a list of services, tried in that order (names not in the library are
    /// ignored). Plans are cached.
    pub fn plan(&self, services: &[String]) -> Arc<Plan> {
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = plans.get(services) {
            return p.clone();
        }
        let order: Vec<usize> = services.iter().filter_map(|n| self.services.iter().position(|s| s == n)).collect();
        let mut candidates: Vec<usize> =
            (0..self.messages.len()).filter(|&i| order.contains(&self.messages[i].service)).collect();
        candidates.sort_by_key(|&i| {
            let m = &self.messages[i];
            (order.iter().position(|&s| s == m.service), m.def.rank, i)
        });
        let takes_others = |i: usize| self.messages[i].exact.is_empty() || !self.messages[i].globs.is_empty();
        let any: Vec<usize> = candidates.iter().copied().filter(|&i| takes_others(i)).collect();
        let mut by_program: HashMap<String, Vec<usize>> = HashMap::new();
        for &i in &candidates {
            for p in &self.messages[i].exact {
                by_program.entry(p.clone()).or_default();
            }
        }
        for (program, list) in by_program.iter_mut() {
            *list = candidates
                .iter()
                .copied()
                .filter(|&i| takes_others(i) || self.messages[i].exact.contains(program))
                .collect();
        }
        let by_program = by_program.into_iter().map(|(p, list)| (p, Candidates::new(list, &self.messages))).collect();
        let plan = Arc::new(Plan { by_program, any: Candidates::new(any, &self.messages) });
        plans.insert(services.to_vec(), plan.clone());
        plan
    }

    /// The message of a line among `services` (tried in that order), or None: unknown.
    /// `line` is the text `m` was parsed from; `device` names the sender for patterns that
    /// match the canonical line.
    pub fn classify<'c>(
        &'c self,
        services: &[String],
        line: &str,
        m: &Syslog<'_>,
        device: &str,
    ) -> Option<Classified<'c>> {
        self.classify_with(&self.plan(services), line, m, device)
    }

    /// [`Classifier::classify`] with a plan already made (a device's).
    pub fn classify_with<'c>(
        &'c self,
        plan: &Plan,
        line: &str,
        m: &Syslog<'_>,
        device: &str,
    ) -> Option<Classified<'c>> {
        let app: Option<std::borrow::Cow<'_, str>> = m.app_name.map(|a| {
            if a.bytes().any(|c| c.is_ascii_uppercase()) {
                a.to_ascii_lowercase().into()
            } else {
                a.into()
            }
        });
        let candidates = match &app {
            Some(a) => plan.by_program.get::<str>(a).unwrap_or(&plan.any),
            None => &plan.any,
        };
        let list = match m.msg.trim_start_matches(' ').as_bytes().first() {
            Some(b) => &candidates.by_first[b.to_ascii_lowercase() as usize],
            None => &candidates.all,
        };
        if list.is_empty() {
            return None;
        }
        SEEN.with(|(seen, slots)| {
            let mut seen = seen.borrow_mut();
            // The first few required literals are looked for one by one in the line (lower
            // case); when a line needs more, one Aho–Corasick scan answers for all of them.
            let mut scanned = false;
            let mut lower: Option<Vec<u8>> = None;
            let mut searched = 0;
            let mut rest: Option<std::borrow::Cow<'_, str>> = None;
            let mut canonical: Option<String> = None;
            for &i in list {
                let c = &self.messages[i];
                if !c.takes(app.as_deref()) {
                    continue;
                }
                let subject: &str = match c.def.subject {
                    // Some programs pad their text (`kernel:  BIOS-e820: …`).
                    Subject::Message => m.msg.trim_start_matches(' '),
                    Subject::Rest => rest.get_or_insert_with(|| rest_of(line, m)),
                    Subject::Canonical => canonical.get_or_insert_with(|| {
                        let ts = m.timestamp.map(|t| t.to_string()).unwrap_or_default();
                        format!("{ts} {} {}", m.hostname.unwrap_or(device), rest_of(line, m))
                    }),
                };
                let head = subject.as_bytes().get(..c.prefix.len());
                if !head.is_some_and(|h| h.eq_ignore_ascii_case(&c.prefix)) {
                    continue;
                }
                if let (Some(l), Some(finder)) = (c.literal, &c.finder) {
                    if !scanned && searched < DIRECT_SEARCHES {
                        searched += 1;
                        let lower = lower.get_or_insert_with(|| line.as_bytes().to_ascii_lowercase());
                        if finder.find(lower).is_none() {
                            continue;
                        }
                    } else if !scanned {
                        seen.clear();
                        seen.resize(self.literal_count.div_ceil(64), 0);
                        for hit in self.literals.find_overlapping_iter(line.as_bytes()) {
                            let id = hit.pattern().as_usize();
                            seen[id / 64] |= 1 << (id % 64);
                        }
                        scanned = true;
                    }
                    if scanned && seen[l / 64] & (1 << (l % 64)) == 0 {
                        continue;
                    }
                }
                let hay = subject.as_bytes();
                let mut slots = slots.borrow_mut();
                if !matches(c, hay, &mut slots) {
                    continue;
                }
                let mut fields = Vec::new();
                for (g, name) in c.groups.iter().enumerate() {
                    let span = slots.get(2 * g).copied().flatten().zip(slots.get(2 * g + 1).copied().flatten());
                    if let (Some(name), Some((s, e))) = (name, span) {
                        fields.push((name.as_str(), String::from_utf8_lossy(&hay[s..e]).into_owned()));
                    }
                }
                return Some(Classified { service: &self.services[c.service], message: &c.def, fields });
            }
            None
        })
    }
}

/// Whether a message's pattern matches at the start of `hay`, with the start and end of each
/// group in `slots`: by the small backtracker where it can answer, else by the regex.
fn matches(c: &Compiled, hay: &[u8], slots: &mut Vec<Option<usize>>) -> bool {
    if let Some(program) = &c.program {
        slots.clear();
        slots.resize(program.slot_len(), None);
        if let Ok(found) = program.search(hay, slots) {
            return found;
        }
    }
    let input = regex_automata::Input::new(hay).anchored(regex_automata::Anchored::Yes);
    let mut found = vec![None; c.regex.group_info().slot_len()];
    let matched = c.regex.search_slots(&input, &mut found).is_some();
    slots.clear();
    slots.extend(found.iter().map(|s| s.map(|s| s.get())));
    matched
}

/// The line from its tag on, as Octopussy's patterns see it after the host.
fn rest_of<'a>(line: &'a str, m: &Syslog<'a>) -> std::borrow::Cow<'a, str> {
    if let (Format::Rfc3164, Some(app)) = (m.format, m.app_name) {
        let at = (app.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
        if let Some(rest) = line.get(at..) {
            return rest.into();
        }
    }
    match (m.app_name, m.proc_id) {
        (Some(a), Some(p)) => format!("{a}[{p}]: {}", m.msg).into(),
        (Some(a), None) => format!("{a}: {}", m.msg).into(),
        _ => m.msg.into(),
    }
}

fn glob(g: &str, s: &str) -> bool {
    match (g.strip_prefix('*'), g.strip_suffix('*')) {
        (Some(tail), _) if !tail.ends_with('*') => s.ends_with(tail),
        (_, Some(head)) if !head.starts_with('*') => s.starts_with(head),
        _ => s.contains(g.trim_matches('*')),
    }
}

/// A compiled pattern.
struct CompiledPattern {
    regex: regex_automata::meta::Regex,
    program: Option<Program>,
    /// The field of each capture group (index = group number).
    groups: Vec<Option<String>>,
    /// Its longest required literal.
    literal: Option<String>,
    /// The literal text it starts with (lower case).
    prefix: Vec<u8>,
}

/// Compiles a pattern.
fn compile(pattern: &str) -> Result<CompiledPattern, String> {
    let parts = parse_pattern(pattern).map_err(|e| e.to_string())?;
    let mut src = String::from("^");
    let mut groups = vec![None];
    let mut longest = String::new();
    for (at, part) in &parts {
        match part {
            Part::Literal(text) => {
                src.push_str(&literal_regex(text));
                // The required pieces: runs between regex-active characters, less a last
                // character made optional by `?`, `*` or `{`.
                let mut piece = String::new();
                for c in text.chars() {
                    if matches!(c, '.' | '*' | '+' | '?' | '{' | '}') {
                        if matches!(c, '?' | '*' | '{') {
                            piece.pop();
                        }
                        if piece.len() > longest.len() {
                            longest = std::mem::take(&mut piece);
                        }
                        piece.clear();
                    } else {
                        piece.push(c);
                    }
                }
                if piece.len() > longest.len() {
                    longest = piece;
                }
            }
            Part::Token { ty, regex, field } => {
                let owned;
                let re = match regex {
                    Some(r) => {
                        owned = perl_braces(r);
                        owned.as_str()
                    }
                    None => type_regex(ty).ok_or_else(|| format!("column {}: unknown token type '{ty}'", at + 1))?,
                };
                // Each token's regex must compile alone, so an error points at the token.
                RegexBuilder::new(re)
                    .unicode(false)
                    .build()
                    .map_err(|e| format!("column {}: {}", at + 1, first_line(&e.to_string())))?;
                match field {
                    Some(_) => {
                        src.push('(');
                        src.push_str(re);
                        src.push(')');
                        groups.push(field.clone());
                        // Groups inside a REGEXP are numbered after ours; keep their slots.
                        let inner = Regex::new(&format!("(?-u:{re})")).map(|r| r.captures_len() - 1).unwrap_or(0);
                        groups.extend(std::iter::repeat_n(None, inner));
                    }
                    None => {
                        src.push_str("(?:");
                        src.push_str(re);
                        src.push(')');
                        let inner = Regex::new(&format!("(?-u:{re})")).map(|r| r.captures_len() - 1).unwrap_or(0);
                        groups.extend(std::iter::repeat_n(None, inner));
                    }
                }
            }
        }
    }
    // The lines are short and the patterns anchored: a one-pass pattern's DFA finds a match
    // and its captures in one go, where the default first runs the lazy DFA over the line to
    // find where the match ends (8 % of the time on sshd's lines). The semantics are the same
    // whichever engine runs (leftmost-first, like Perl).
    // A pattern that is not one-pass keeps the lazy DFA: its pass rejects most lines at once
    // and narrows the span the backtracker then works on.
    let syntax = regex_automata::util::syntax::Config::new().unicode(false).utf8(false).case_insensitive(true);
    let one_pass = regex_automata::dfa::onepass::DFA::builder().syntax(syntax).build(&src).is_ok();
    // Lines are matched as bytes, as Perl matches them: a match may end inside a multi-byte
    // character (fields are read back lossily), where the default would refuse a match of a
    // pattern that can match empty there; the backtracker does the same.
    let regex = regex_automata::meta::Regex::builder()
        .syntax(syntax)
        .configure(
            regex_automata::meta::Config::new()
                .hybrid(!one_pass)
                .dfa(false)
                .nfa_size_limit(Some(8 << 20))
                .utf8_empty(false),
        )
        .build(&src)
        .map_err(|e| format!("column 1: {}", first_line(&e.to_string())))?;
    let literal = longest.trim().to_owned();
    let literal = (literal.len() >= 3 && !literal.contains(['.', '*', '+', '?'])).then_some(literal);
    // The text before the first token, up to its first regex-active character (one made
    // optional by `?`, `*` or `{` is not required).
    let mut prefix = Vec::new();
    if let Some((_, Part::Literal(text))) = parts.first() {
        for c in text.bytes() {
            if matches!(c, b'.' | b'*' | b'+' | b'?' | b'{' | b'}') {
                if matches!(c, b'?' | b'*' | b'{') {
                    prefix.pop();
                }
                break;
            }
            prefix.push(c.to_ascii_lowercase());
        }
        // A multi-byte character cut by `?` leaves half of it: keep whole characters only.
        while std::str::from_utf8(&prefix).is_err() {
            prefix.pop();
        }
    }
    let program = Program::new(&src);
    Ok(CompiledPattern { regex, program, groups, literal, prefix })
}

fn first_line(s: &str) -> String {
    s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or(s).trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse, ParseContext};
    use crate::services::Service;

    const SHARED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/");

    /// Every subject a pattern may be matched against, for loghub's lines (with and without a
    /// PRI, whole and cut short, so that matches also fail late).
    fn subjects(step: usize) -> Vec<(Subject, String)> {
        let ctx = ParseContext::now();
        let mut out = Vec::new();
        for name in ["OpenSSH_2k", "Linux_2k", "Apache_2k"] {
            let log = std::fs::read_to_string(format!("{SHARED}loghub/{name}.log")).expect("loghub in ../shared");
            for line in log.lines().step_by(step) {
                let line = format!("<38>{line}");
                let m = parse(&line, &ctx);
                let ts = m.timestamp.map(|t| t.to_string()).unwrap_or_default();
                let whole = [
                    (Subject::Message, m.msg.trim_start_matches(' ').to_owned()),
                    (Subject::Rest, rest_of(&line, &m).into_owned()),
                    (Subject::Canonical, format!("{ts} {} {}", m.hostname.unwrap_or("dev"), rest_of(&line, &m))),
                ];
                for (subject, text) in whole {
                    for cut in [text.len(), text.len() * 2 / 3, text.len() / 2] {
                        let mut cut = cut;
                        while !text.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        out.push((subject, text[..cut].to_owned()));
                    }
                }
            }
        }
        out
    }

    /// The small backtracker gives the regex's answer, captures included, for every pattern
    /// it takes, of the built-in library and of Octopussy's 151 services.
    #[test]
    fn the_backtracker_agrees_with_the_regex_on_every_library_pattern() {
        let builtin = Classifier::new(&crate::services::builtin()).unwrap();
        let dir = format!("{SHARED}octopussy/services/");
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).expect("Octopussy's services").flatten().map(|e| e.path()).collect();
        files.sort();
        let octopussy: Vec<Service> = files
            .iter()
            .map(|p| {
                crate::services::octopussy::parse(&std::fs::read_to_string(p).unwrap(), &p.display().to_string())
                    .unwrap()
            })
            .collect();
        let octopussy = Classifier::new(&octopussy).unwrap();
        let count = |c: &Classifier| c.messages.iter().filter(|c| c.program.is_some()).count();
        let (builtin_with, octopussy_with) = (count(&builtin), count(&octopussy));
        eprintln!(
            "patterns on the backtracker: {builtin_with} of {} built-in, {octopussy_with} of {} of Octopussy's",
            builtin.messages.len(),
            octopussy.messages.len()
        );
        assert!(builtin_with * 10 >= builtin.messages.len() * 9, "{builtin_with} of {}", builtin.messages.len());
        let (all, sampled) = (subjects(1), subjects(20));
        let (mut searches, mut matched, mut exhausted) = (0usize, 0usize, 0usize);
        for (classifier, lines) in [(&builtin, &all), (&octopussy, &sampled)] {
            for c in &classifier.messages {
                let Some(program) = &c.program else { continue };
                for (_, hay) in lines.iter().filter(|(s, _)| *s == c.def.subject) {
                    let hay = hay.as_bytes();
                    let input = regex_automata::Input::new(hay).anchored(regex_automata::Anchored::Yes);
                    let mut want = vec![None; c.regex.group_info().slot_len()];
                    let found = c.regex.search_slots(&input, &mut want).is_some();
                    let want: Vec<Option<usize>> = want.iter().map(|s| s.map(|s| s.get())).collect();
                    let mut got = vec![None; program.slot_len()];
                    searches += 1;
                    match program.search(hay, &mut got) {
                        Ok(hit) => {
                            let line = String::from_utf8_lossy(hay);
                            assert_eq!(hit, found, "{}: {} on {line:?}", c.def.id, c.def.pattern);
                            if found {
                                matched += 1;
                                assert_eq!(got[..], want[..got.len()], "{}: {} on {line:?}", c.def.id, c.def.pattern);
                                assert!(want[got.len()..].iter().all(Option::is_none));
                            }
                        }
                        Err(_) => exhausted += 1,
                    }
                }
            }
        }
        eprintln!("{searches} searches, {matched} matches, {exhausted} out of steps");
        assert!(matched > 5_000, "the lines must exercise the patterns: {matched} matches");
        assert!(exhausted * 1000 <= searches, "{exhausted} of {searches} searches ran out of steps");
    }
}
