//! What the benches share: loghub's OpenSSH and Linux lines with a PRI, as a device sends them.

/// The 4,000 lines of OpenSSH_2k and Linux_2k, each with `<38>` in front.
pub fn loghub_lines() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus/loghub/");
    let mut lines = Vec::new();
    for name in ["OpenSSH_2k.log", "Linux_2k.log"] {
        let text = std::fs::read_to_string(format!("{dir}{name}")).expect("the loghub corpus in ../shared");
        lines.extend(text.lines().map(|l| format!("<38>{l}")));
    }
    lines
}
