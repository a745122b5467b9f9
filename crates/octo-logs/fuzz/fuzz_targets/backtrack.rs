//! The small backtracker against the regex engine, differentially: the first line of the input
//! is a regex (anchored, as the classifier anchors patterns), the rest the text. Wherever the
//! backtracker takes the regex and does not run out of steps, it must give the regex's answer
//! and the same captures.
#![no_main]

use libfuzzer_sys::fuzz_target;
use octo_logs::backtrack::Program;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Some((pattern, hay)) = text.split_once('\n') else { return };
    if pattern.len() > 200 {
        return;
    }
    let src = format!("^(?:{pattern})");
    let Some(program) = Program::new(&src) else { return };
    let syntax = regex_automata::util::syntax::Config::new().unicode(false).utf8(false).case_insensitive(true);
    // Bytes throughout, as the classifier builds its regexes.
    let config = regex_automata::meta::Config::new().utf8_empty(false);
    let Ok(re) = regex_automata::meta::Regex::builder().syntax(syntax).configure(config).build(&src) else { return };
    let input = regex_automata::Input::new(hay.as_bytes()).anchored(regex_automata::Anchored::Yes);
    let mut want = vec![None; re.group_info().slot_len()];
    let found = re.search_slots(&input, &mut want).is_some();
    let mut got = vec![None; program.slot_len()];
    if let Ok(hit) = program.search(hay.as_bytes(), &mut got) {
        assert_eq!(hit, found, "{src} on {hay:?}");
        if found {
            let want: Vec<Option<usize>> = want.iter().map(|s| s.map(|s| s.get())).collect();
            assert_eq!(got[..], want[..got.len()], "{src} on {hay:?}");
        }
    }
});
