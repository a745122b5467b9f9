//! retire-js: known-vulnerable JavaScript libraries, from a small bundled table.

use std::sync::LazyLock;

use serde::Deserialize;
use sha1::{Digest, Sha1};

use crate::definition::{text, BitDefinition, BitInput, BitResult, FnBit};
use octo_model::Ooi;

/// Bits of this module.
pub fn bits() -> Vec<FnBit> {
    vec![FnBit::new(BitDefinition::new("retire-js", "Software").param("SoftwareInstance", "software"), retire_js)]
}

#[derive(Debug, Deserialize)]
struct Table {
    library: Vec<Library>,
}

#[derive(Debug, Deserialize)]
struct Library {
    name: String,
    vulnerabilities: Vec<Vulnerability>,
}

#[derive(Debug, Deserialize)]
struct Vulnerability {
    below: String,
    at_or_above: Option<String>,
    identifiers: indexmap::IndexMap<String, Vec<String>>,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    // The table is a file of this crate; a unit test parses it, so this cannot fail at run time.
    toml::from_str(include_str!("retirejs.toml")).unwrap_or_else(|e| panic!("built-in retirejs.toml: {e}"))
});

/// Library names compare without case, spaces, `_`, `-` or `.` (`jQuery`, `jquery.js`…).
fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().chars().filter(|c| !matches!(c, ' ' | '_' | '-' | '.')).collect()
}

/// Numeric components of a version (`3.5.0-rc1` → 3, 5, 0), compared with zero padding.
fn version(v: &str) -> Vec<u64> {
    v.split(['.', '-', '+'])
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

fn less(a: &[u64], b: &[u64]) -> bool {
    let n = a.len().max(b.len());
    for k in 0..n {
        let (x, y) = (a.get(k).copied().unwrap_or(0), b.get(k).copied().unwrap_or(0));
        if x != y {
            return x < y;
        }
    }
    false
}

/// The finding types a library version has: CVE ids, or `RetireJS-<name>-<hash>` for advisories
/// without one.
pub(crate) fn vulnerabilities(name: &str, version_text: Option<&str>) -> Vec<(&'static str, String)> {
    let wanted = normalise(name);
    // Without a version nothing can be said to be fixed; a high one matches nothing.
    let v = version(version_text.filter(|v| !v.is_empty()).unwrap_or("999.9.9"));
    let mut out = Vec::new();
    let Some(lib) = TABLE.library.iter().find(|l| normalise(&l.name) == wanted) else { return out };
    for vuln in &lib.vulnerabilities {
        let below = less(&v, &version(&vuln.below));
        let above = vuln.at_or_above.as_deref().is_none_or(|a| !less(&v, &version(a)));
        if !(below && above) {
            continue;
        }
        match vuln.identifiers.get("CVE").and_then(|c| c.first()) {
            Some(cve) => out.push(("CVEFindingType", cve.clone())),
            None => {
                let joined: String = vuln.identifiers.values().flatten().map(String::as_str).collect();
                let hash = format!("{:x}", Sha1::digest(joined.as_bytes()));
                out.push(("RetireJSFindingType", format!("RetireJS-{wanted}-{}", &hash[..4])));
            }
        }
    }
    out
}

fn retire_js(i: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
    let version = i.source.get("version").and_then(|v| v.as_str());
    let mut out = Vec::new();
    for (ft_type, id) in vulnerabilities(text(&i.source, "name"), version) {
        for instance in i.params_of("SoftwareInstance") {
            out.extend(i.finding(
                ft_type,
                &id,
                instance.primary_key(),
                "This JavaScript Library has known vulnerabilities",
            )?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_parses_and_matches() {
        assert!(!TABLE.library.is_empty());
        let found = vulnerabilities("jQuery", Some("3.4.1"));
        assert!(found.iter().any(|(_, id)| id == "CVE-2020-11022"));
        assert!(!found.iter().any(|(_, id)| id == "CVE-2019-11358"));
        assert!(vulnerabilities("jquery", Some("3.7.1")).is_empty());
        assert!(vulnerabilities("left-pad", Some("1.0.0")).is_empty());
        let advisory = vulnerabilities("AngularJS", Some("1.6.0"));
        assert!(advisory.iter().any(|(t, id)| *t == "RetireJSFindingType" && id.starts_with("RetireJS-angularjs-")));
    }
}
