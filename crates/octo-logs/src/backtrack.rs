//! A small backtracking matcher for the patterns most services are made of: literal text and
//! runs of a byte class (`\S+`, `\d{1,5}`, `[^\]]+`, `.+`), with captures, optional groups
//! and alternations, but no loops over groups.
//!
//! A log line meets one or two such regexes; the general engines pay for their generality on
//! every one (the one-pass DFA steps a state table per byte and stores slots per step, the
//! bounded backtracker pushes a frame per byte of a run). Here a run is one tight loop over a
//! byte table, and a greedy run followed by literal text only tries the ends where that text
//! can start. The semantics are Perl's, as the regex engines' leftmost-first semantics are: the
//! first match in priority order wins, with its captures. The program is compiled from the
//! same syntax tree the regex is compiled from, so both read the pattern alike; a pattern with
//! anything else (word boundaries, repeated groups) gets no program and keeps the regex.
//!
//! Backtracking without memory can take exponential time on a hostile line, so each search has
//! a budget of steps proportional to the line; a search that runs out answers "don't know" and
//! the caller asks the regex, which is linear.

use regex_syntax::hir::{Class, Hir, HirKind, Look};

/// A byte class as a table: one lookup per byte.
type ByteSet = [bool; 256];

#[derive(Debug)]
enum Inst {
    /// Literal text, lower case; letters compare without case, other bytes exactly.
    Folded(Box<[u8]>),
    /// A run of `min..=max` bytes of a class; `next` is the first-byte set of what must
    /// follow (literal text or a run of at least one), so that only ends where it can start
    /// are tried.
    Run {
        set: Box<ByteSet>,
        min: usize,
        max: usize,
        greedy: bool,
        next: Option<Box<ByteSet>>,
    },
    /// Records the position in a slot.
    Save(usize),
    /// Tries `first`, then `second`.
    Split {
        first: usize,
        second: usize,
    },
    Jump(usize),
    /// Only at the start of the line.
    Start,
    Match,
}

/// A compiled pattern for [`Program::search`].
#[derive(Debug)]
pub struct Program {
    insts: Vec<Inst>,
    slots: usize,
}

/// The search ran out of steps: ask the regex.
#[derive(Debug, PartialEq, Eq)]
pub struct Exhausted;

/// Steps a search may take per byte of the line (plus a fixed allowance): a line that needs
/// more is one the pattern has to backtrack over far more than real lines do.
const STEPS_PER_BYTE: usize = 16;
const STEPS_FIXED: usize = 256;

/// Repetitions of a group unrolled into copies of it, at most.
const MAX_UNROLL: u32 = 8;

/// Instructions a program may have. Every jump goes forward, so a search recurses at most this
/// deep (a few hundred small frames).
const MAX_INSTS: usize = 512;

impl Program {
    /// The program of a regex (as the classifier writes them: case-insensitive, bytes, no
    /// Unicode classes), or None when it has something the matcher does not do.
    pub fn new(src: &str) -> Option<Program> {
        let hir = regex_syntax::ParserBuilder::new()
            .unicode(false)
            .utf8(false)
            .case_insensitive(true)
            .build()
            .parse(src)
            .ok()?;
        let mut compiler = Compiler { insts: Vec::new(), slots: 2, target: usize::MAX };
        compiler.insts.push(Inst::Save(0));
        compiler.hir(&hir, false)?;
        compiler.insts.push(Inst::Save(1));
        compiler.insts.push(Inst::Match);
        if compiler.insts.len() > MAX_INSTS {
            return None;
        }
        let mut insts = compiler.insts;
        // What must follow each run, where it is plain.
        for i in 0..insts.len() {
            // Captures consume nothing: look past them.
            let after = insts[i + 1..].iter().find(|inst| !matches!(inst, Inst::Save(_)));
            let follow = match after {
                Some(Inst::Folded(text)) => text.first().map(|&b| {
                    let mut set = one_byte(b);
                    set[b.to_ascii_uppercase() as usize] = true;
                    set
                }),
                Some(Inst::Run { set, min, .. }) if *min > 0 => Some(**set),
                _ => None,
            };
            if let Inst::Run { next, .. } = &mut insts[i] {
                *next = follow.map(Box::new);
            }
        }
        Some(Program { insts, slots: compiler.slots })
    }

    /// Number of slots (two per group, group 0 the whole match).
    pub fn slot_len(&self) -> usize {
        self.slots
    }

    /// Matches at the start of `hay`; fills `slots` (start and end of each group) and says
    /// whether it matched.
    pub fn search(&self, hay: &[u8], slots: &mut [Option<usize>]) -> Result<bool, Exhausted> {
        slots.iter_mut().for_each(|s| *s = None);
        let mut budget = STEPS_FIXED + STEPS_PER_BYTE * hay.len();
        self.step(0, 0, hay, slots, &mut budget)
    }

    fn step(
        &self,
        mut pc: usize,
        mut at: usize,
        hay: &[u8],
        slots: &mut [Option<usize>],
        budget: &mut usize,
    ) -> Result<bool, Exhausted> {
        loop {
            *budget = budget.checked_sub(1).ok_or(Exhausted)?;
            match &self.insts[pc] {
                Inst::Folded(text) => {
                    match hay.get(at..at + text.len()) {
                        Some(h) if h.eq_ignore_ascii_case(text) => {}
                        _ => return Ok(false),
                    }
                    at += text.len();
                    pc += 1;
                }
                Inst::Run { set, min, max, greedy, next } => {
                    let limit = hay.len().min(at.saturating_add(*max));
                    let mut end = at;
                    while end < limit && set[hay[end] as usize] {
                        end += 1;
                    }
                    if end - at < *min {
                        return Ok(false);
                    }
                    let low = at + min;
                    // The last run of a program, or one that cannot give back: no choice.
                    let can_follow =
                        |e: usize| next.as_ref().is_none_or(|n| hay.get(e).is_some_and(|&b| n[b as usize]));
                    if low == end {
                        if !can_follow(end) {
                            return Ok(false);
                        }
                        at = end;
                        pc += 1;
                        continue;
                    }
                    if *greedy {
                        for e in (low..=end).rev() {
                            if can_follow(e) && self.step(pc + 1, e, hay, slots, budget)? {
                                return Ok(true);
                            }
                            *budget = budget.checked_sub(1).ok_or(Exhausted)?;
                        }
                    } else {
                        for e in low..=end {
                            if can_follow(e) && self.step(pc + 1, e, hay, slots, budget)? {
                                return Ok(true);
                            }
                            *budget = budget.checked_sub(1).ok_or(Exhausted)?;
                        }
                    }
                    return Ok(false);
                }
                Inst::Save(slot) => {
                    let old = slots[*slot];
                    slots[*slot] = Some(at);
                    if self.step(pc + 1, at, hay, slots, budget)? {
                        return Ok(true);
                    }
                    slots[*slot] = old;
                    return Ok(false);
                }
                Inst::Split { first, second } => {
                    if self.step(*first, at, hay, slots, budget)? {
                        return Ok(true);
                    }
                    pc = *second;
                }
                Inst::Jump(to) => pc = *to,
                Inst::Start => {
                    if at != 0 {
                        return Ok(false);
                    }
                    pc += 1;
                }
                Inst::Match => return Ok(true),
            }
        }
    }
}

struct Compiler {
    insts: Vec<Inst>,
    slots: usize,
    /// The index a jump lands on, which literal text must not be joined across.
    target: usize,
}

impl Compiler {
    /// Appends the instructions of `hir`; `in_loop` forbids captures (an unrolled repetition
    /// would record them once per copy).
    fn hir(&mut self, hir: &Hir, in_loop: bool) -> Option<()> {
        if self.insts.len() > MAX_INSTS {
            return None;
        }
        match hir.kind() {
            HirKind::Empty => {}
            HirKind::Literal(lit) => {
                for &b in lit.0.iter() {
                    if b.is_ascii_alphabetic() {
                        // A letter that must keep its case (the pattern turned case folding
                        // off): a run of one.
                        self.insts.push(Inst::Run {
                            set: Box::new(one_byte(b)),
                            min: 1,
                            max: 1,
                            greedy: true,
                            next: None,
                        });
                    } else {
                        self.folded(b);
                    }
                }
            }
            HirKind::Class(class) => {
                let set = byte_set(class)?;
                match folded_letter(&set) {
                    Some(b) => self.folded(b),
                    None => self.insts.push(Inst::Run { set: Box::new(set), min: 1, max: 1, greedy: true, next: None }),
                }
            }
            HirKind::Look(Look::Start) => self.insts.push(Inst::Start),
            HirKind::Look(_) => return None,
            HirKind::Repetition(rep) => {
                // A repeated byte class (or byte) is a run.
                let run = match rep.sub.kind() {
                    HirKind::Class(class) => Some(byte_set(class)?),
                    HirKind::Literal(lit) if lit.0.len() == 1 => Some(one_byte(lit.0[0])),
                    _ => None,
                };
                if let Some(set) = run {
                    self.insts.push(Inst::Run {
                        set: Box::new(set),
                        min: rep.min as usize,
                        max: rep.max.map_or(usize::MAX, |m| m as usize),
                        greedy: rep.greedy,
                        next: None,
                    });
                    return Some(());
                }
                // A group repeated: copies of it, the optional ones nested (`x{1,3}` is
                // `x(?:x(?:x)?)?`), when the count is small and bounded.
                let max = rep.max?;
                if max > MAX_UNROLL {
                    return None;
                }
                let looped = in_loop || max > 1;
                for _ in 0..rep.min {
                    self.hir(&rep.sub, looped)?;
                }
                let mut splits = Vec::new();
                for _ in rep.min..max {
                    splits.push(self.insts.len());
                    self.insts.push(Inst::Split { first: 0, second: 0 });
                    self.hir(&rep.sub, looped)?;
                }
                let end = self.insts.len();
                self.target = end;
                for at in splits {
                    let (first, second) = if rep.greedy { (at + 1, end) } else { (end, at + 1) };
                    self.insts[at] = Inst::Split { first, second };
                }
            }
            HirKind::Capture(cap) => {
                if in_loop {
                    return None;
                }
                let slot = 2 * cap.index as usize;
                self.slots = self.slots.max(slot + 2);
                self.insts.push(Inst::Save(slot));
                self.hir(&cap.sub, in_loop)?;
                self.insts.push(Inst::Save(slot + 1));
            }
            HirKind::Concat(subs) => {
                for sub in subs {
                    self.hir(sub, in_loop)?;
                }
            }
            HirKind::Alternation(subs) => {
                // Split to each branch in turn; every branch but the last jumps to the end.
                let mut jumps = Vec::new();
                for (i, sub) in subs.iter().enumerate() {
                    let last = i + 1 == subs.len();
                    let split = (!last).then(|| {
                        self.insts.push(Inst::Split { first: 0, second: 0 });
                        self.insts.len() - 1
                    });
                    self.hir(sub, in_loop)?;
                    if let Some(split) = split {
                        jumps.push(self.insts.len());
                        self.insts.push(Inst::Jump(0));
                        let next = self.insts.len();
                        self.insts[split] = Inst::Split { first: split + 1, second: next };
                    }
                }
                let end = self.insts.len();
                self.target = end;
                for at in jumps {
                    self.insts[at] = Inst::Jump(end);
                }
            }
        }
        Some(())
    }

    /// Appends a byte of folded literal text, joining it to the text before.
    fn folded(&mut self, b: u8) {
        let b = b.to_ascii_lowercase();
        let landing = self.insts.len() == self.target;
        if let (false, Some(Inst::Folded(text))) = (landing, self.insts.last_mut()) {
            let mut joined = text.to_vec();
            joined.push(b);
            *text = joined.into_boxed_slice();
        } else {
            self.insts.push(Inst::Folded(Box::new([b])));
        }
    }
}

/// The table of one byte.
fn one_byte(b: u8) -> ByteSet {
    let mut set = [false; 256];
    set[b as usize] = true;
    set
}

/// The table of a byte class (a Unicode class only when it is ASCII).
fn byte_set(class: &Class) -> Option<ByteSet> {
    let mut set = [false; 256];
    match class {
        Class::Bytes(c) => {
            for r in c.iter() {
                for b in r.start()..=r.end() {
                    set[b as usize] = true;
                }
            }
        }
        Class::Unicode(c) => {
            for r in c.iter() {
                let (s, e) = (u32::from(r.start()), u32::from(r.end()));
                if e > 0x7f {
                    return None;
                }
                for b in s..=e {
                    set[b as usize] = true;
                }
            }
        }
    }
    Some(set)
}

/// The letter (lower case) of a class that is exactly one letter in both cases.
fn folded_letter(set: &ByteSet) -> Option<u8> {
    let mut members = set.iter().enumerate().filter(|(_, &m)| m).map(|(b, _)| b as u8);
    let (a, b) = (members.next()?, members.next()?);
    (members.next().is_none() && a.is_ascii_uppercase() && b == a.to_ascii_lowercase()).then_some(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The regex as the classifier builds it (bytes throughout, see `classify::compile`).
    fn regex(src: &str) -> regex_automata::meta::Regex {
        let syntax = regex_automata::util::syntax::Config::new().unicode(false).utf8(false).case_insensitive(true);
        let config = regex_automata::meta::Config::new().utf8_empty(false);
        regex_automata::meta::Regex::builder().syntax(syntax).configure(config).build(src).unwrap()
    }

    /// The regex's answer: whether it matched at the start, and the slots.
    fn by_regex(re: &regex_automata::meta::Regex, hay: &[u8]) -> (bool, Vec<Option<usize>>) {
        let input = regex_automata::Input::new(hay).anchored(regex_automata::Anchored::Yes);
        let mut slots = vec![None; re.group_info().slot_len()];
        let found = re.search_slots(&input, &mut slots).is_some();
        (found, slots.iter().map(|s| s.map(|s| s.get())).collect())
    }

    fn agree(src: &str, hay: &[u8]) {
        let Some(program) = Program::new(src) else { return };
        let re = regex(src);
        let (found, want) = by_regex(&re, hay);
        let mut slots = vec![None; program.slot_len().max(want.len())];
        // Out of steps is no answer: the classifier then asks the regex.
        if let Ok(got) = program.search(hay, &mut slots) {
            assert_eq!(got, found, "{src} on {:?}", String::from_utf8_lossy(hay));
            if found {
                assert_eq!(&slots[..want.len()], &want[..], "{src} on {:?}", String::from_utf8_lossy(hay));
            }
        }
    }

    #[test]
    fn runs_literals_groups_and_alternations() {
        let cases: &[(&str, &[&str])] = &[
            (
                r"^Failed (\S+) for (.*?) from ([0-9a-f:.]+) port (\d+)",
                &[
                    "Failed password for root from 1.2.3.4 port 22 ssh2",
                    "failed PASSWORD for invalid user x from ::1 port 9",
                    "Failed password for  from 1.2.3.4 port x",
                ],
            ),
            (
                r"^(?:\[[^\]]+\] )?\[([^\]]+)\] (?:\[pid [^\]]+\] )?\[client ([0-9a-f.:]+?)(?::\d+)?\] (.+)",
                &[
                    "[Sun Dec 04 04:47:44 2005] [error] [client 1.2.3.4] File does not exist: /x",
                    "[error] [client 1.2.3.4:80] x",
                    "[Sun] [core:error] [pid 12] [client ::1:443] y",
                    "[error] [client ] x",
                ],
            ),
            (r"^(a|ab)(c|bcd)(d*)", &["abcd", "abc", "acd", "x"]),
            (r"^x{2,4}?(x+)", &["xxxxxx", "xx", "xxx"]),
            (r"^(?:ab){1,3}c", &["ababc", "abababc", "abababababc", "c"]),
            (r"^(?-i:Ab)c", &["Abc", "abc", "ABC", "AbC"]),
            (
                r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[-+]\d{2}:\d{2}) (\S+)",
                &[
                    "2024-01-02T03:04:05Z host",
                    "2024-01-02T03:04:05.123+01:00 host",
                    "2024-01-02T03:04:05.1234567Z host",
                ],
            ),
            (r#"^"(.*?)" (.+)$"#, &["\"a\" b", "\"a\" \"b\" c"]),
            // A match that can be empty and ends inside a multi-byte character (found by the
            // fuzzer): bytes, as Perl matches them.
            (r"^(?:.?.?)", &["\0\u{60d}", "\u{e9}x"]),
        ];
        for (src, hays) in cases {
            if !src.contains('$') {
                assert!(Program::new(src).is_some(), "{src} should compile");
            }
            for hay in *hays {
                agree(src, hay.as_bytes());
            }
        }
    }

    #[test]
    fn a_hostile_line_runs_out_of_steps_instead_of_time() {
        let program = Program::new(r"^(.*)(.*)(.*)(.*)(.*)x").unwrap();
        let hay = vec![b'a'; 4096];
        let mut slots = vec![None; program.slot_len()];
        assert_eq!(program.search(&hay, &mut slots), Err(Exhausted));
    }

    proptest! {
        #[test]
        fn agrees_with_the_regex_on_random_lines(hay in "[ab: .\\[\\]0-9x-]{0,24}") {
            for src in [
                r"^(\S+) (\d+)",
                r"^(.*?):(.+)",
                r"^\[([^\]]*)\](?: (\d+))?(.*)",
                r"^(a|ab|b)+?",
                r"^([ab]{1,3})(b?)(\d*?)(x|:| )",
                r"^(?:(\d+)\.){2}(\d+)",
                r"^(?:a|b)(?:[0-9]+|x)?(.)",
            ] {
                agree(src, hay.as_bytes());
            }
        }
    }
}
