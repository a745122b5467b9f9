//! Declarative bits: rules written in TOML files, loaded from a directory without recompiling.
//!
//! ```toml
//! [[rule]]
//! id = "open-telnet"
//! consumes = "IPPort"
//! when = { port = { in = [23, 2323] }, protocol = { equals = "tcp" } }
//!
//! [[rule.emit]]
//! object_type = "KATFindingType"
//! id = "KAT-OPEN-TELNET"
//!
//! [[rule.emit]]
//! object_type = "Finding"
//! finding_type = "KATFindingType|KAT-OPEN-TELNET"
//! ooi = "{source}"
//! description = "Port {port}/{protocol} is telnet."
//! ```
//!
//! A rule matches when every condition of `when` holds (or, with `when_any`, every condition of
//! one of its tables), and every `require` about its parameters holds. It then emits its objects
//! with `{…}` placeholders filled from the consumed object: `{source}` is its key, `{field}` a
//! field; with `for_each = "Type"` it emits once per matching parameter of that type, which
//! `{param}` and `{param.field}` name. Docs: docs/BITS.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use octo_model::{Catalog, Ooi};
use regex::Regex;
use serde::Deserialize;
use serde_json::{Map, Value as Json};
use toml::Spanned;

use crate::definition::{Bit, BitDefinition, BitError, BitInput, BitResult};

/// A rule file that does not load: where, and why.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct RuleError {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    rule: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    id: String,
    consumes: Spanned<String>,
    #[serde(default = "one")]
    min_scan_level: u8,
    #[serde(default = "yes")]
    enabled: bool,
    config_path: Option<String>,
    #[serde(default)]
    parameters: Vec<RawParameter>,
    #[serde(default)]
    when: BTreeMap<String, Spanned<RawCondition>>,
    #[serde(default)]
    when_any: Vec<BTreeMap<String, Spanned<RawCondition>>>,
    #[serde(default)]
    require: Vec<RawRequire>,
    for_each: Option<String>,
    emit: Vec<Spanned<Map<String, Json>>>,
}

fn one() -> u8 {
    1
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParameter {
    #[serde(rename = "type")]
    ooi_type: String,
    path: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRequire {
    #[serde(rename = "type")]
    ooi_type: String,
    #[serde(default = "yes")]
    exists: bool,
    #[serde(default)]
    when: BTreeMap<String, Spanned<RawCondition>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCondition {
    equals: Option<Json>,
    equals_ignore_case: Option<String>,
    #[serde(rename = "in")]
    within: Option<Vec<Json>>,
    not_in: Option<Vec<Json>>,
    contains: Option<String>,
    contains_any: Option<Vec<String>>,
    matches: Option<String>,
    exists: Option<bool>,
    min: Option<f64>,
    max: Option<f64>,
}

/// One checked condition on one field.
enum Test {
    Equals(Json),
    EqualsIgnoreCase(String),
    In(Vec<Json>),
    NotIn(Vec<Json>),
    Contains(String),
    ContainsAny(Vec<String>),
    Matches(Regex),
    Exists(bool),
    Min(f64),
    Max(f64),
}

type Conditions = Vec<(String, Vec<Test>)>;

/// A loaded declarative rule.
pub struct Rule {
    definition: BitDefinition,
    when_any: Vec<Conditions>,
    require: Vec<(String, bool, Conditions)>,
    for_each: Option<String>,
    emit: Vec<Map<String, Json>>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn compile_conditions(
    raw: BTreeMap<String, Spanned<RawCondition>>,
    type_name: &str,
    catalog: &Catalog,
    err: &dyn Fn(usize, String) -> RuleError,
) -> Result<Conditions, RuleError> {
    let def = catalog.get(type_name).map_err(|e| err(0, e.to_string()))?;
    let mut out = Vec::new();
    for (field, cond) in raw {
        let at = cond.span().start;
        let known = def.field(&field).is_some()
            || catalog
                .concrete_types(type_name)
                .map(|ts| ts.iter().any(|t| catalog.get(t).is_ok_and(|d| d.field(&field).is_some())))
                .unwrap_or(false);
        if !known {
            return Err(err(at, format!("{type_name} has no field '{field}'")));
        }
        let c = cond.into_inner();
        let mut tests = Vec::new();
        if let Some(v) = c.equals {
            tests.push(Test::Equals(v));
        }
        if let Some(v) = c.equals_ignore_case {
            tests.push(Test::EqualsIgnoreCase(v.to_lowercase()));
        }
        if let Some(v) = c.within {
            tests.push(Test::In(v));
        }
        if let Some(v) = c.not_in {
            tests.push(Test::NotIn(v));
        }
        if let Some(v) = c.contains {
            tests.push(Test::Contains(v));
        }
        if let Some(v) = c.contains_any {
            tests.push(Test::ContainsAny(v));
        }
        if let Some(p) = c.matches {
            let re = Regex::new(&p).map_err(|e| err(at, format!("field '{field}': bad pattern: {e}")))?;
            tests.push(Test::Matches(re));
        }
        if let Some(v) = c.exists {
            tests.push(Test::Exists(v));
        }
        if let Some(v) = c.min {
            tests.push(Test::Min(v));
        }
        if let Some(v) = c.max {
            tests.push(Test::Max(v));
        }
        if tests.is_empty() {
            return Err(err(at, format!("field '{field}': a condition needs a test (equals, in, contains, matches…)")));
        }
        out.push((field, tests));
    }
    Ok(out)
}

fn as_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Null => String::new(),
        other => other.to_string(),
    }
}

fn holds(test: &Test, value: Option<&Json>) -> bool {
    let v = value.filter(|v| !v.is_null());
    let num = |v: &Json| v.as_f64();
    match test {
        Test::Exists(want) => v.is_some() == *want,
        _ if v.is_none() => false,
        Test::Equals(x) => v == Some(x),
        Test::EqualsIgnoreCase(x) => v.is_some_and(|v| as_text(v).to_lowercase() == *x),
        Test::In(xs) => v.is_some_and(|v| xs.contains(v)),
        Test::NotIn(xs) => v.is_some_and(|v| !xs.contains(v)),
        Test::Contains(x) => v.is_some_and(|v| as_text(v).contains(x.as_str())),
        Test::ContainsAny(xs) => v.is_some_and(|v| {
            let t = as_text(v);
            xs.iter().any(|x| t.contains(x.as_str()))
        }),
        Test::Matches(re) => v.is_some_and(|v| re.is_match(&as_text(v))),
        Test::Min(m) => v.and_then(num).is_some_and(|n| n >= *m),
        Test::Max(m) => v.and_then(num).is_some_and(|n| n <= *m),
    }
}

fn all_hold(conditions: &Conditions, doc: &Json) -> bool {
    conditions.iter().all(|(field, tests)| tests.iter().all(|t| holds(t, doc.get(field))))
}

/// Fills `{source}`, `{field}`, `{param}`, `{param.field}` and `{config.key}`.
fn fill(template: &str, source: &Json, param: Option<&Json>, config: &Map<String, Json>) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let Some(len) = rest[start..].find('}') else { return Err(format!("unclosed '{{' in '{template}'")) };
        let name = &rest[start + 1..start + len];
        let value = match name.split_once('.') {
            None if name == "source" => source.get("primary_key").cloned(),
            None if name == "param" => param.and_then(|p| p.get("primary_key").cloned()),
            None => source.get(name).cloned(),
            Some(("source", f)) => source.get(f).cloned(),
            Some(("param", f)) => param.and_then(|p| p.get(f).cloned()),
            Some(("config", k)) => config.get(k).cloned(),
            Some(_) => None,
        };
        out.push_str(&as_text(&value.unwrap_or(Json::Null)));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Checks every placeholder of a template against what the rule can fill it with.
fn check_template(template: &str, consumes: &str, param_type: Option<&str>, catalog: &Catalog) -> Result<(), String> {
    let has_field = |t: &str, f: &str| {
        catalog.get(t).is_ok_and(|d| d.field(f).is_some())
            || catalog
                .concrete_types(t)
                .is_ok_and(|ts| ts.iter().any(|c| catalog.get(c).is_ok_and(|d| d.field(f).is_some())))
    };
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start..].find('}') else { return Err(format!("unclosed '{{' in '{template}'")) };
        let name = &rest[start + 1..start + len];
        let ok = match name.split_once('.') {
            None => name == "source" || (name == "param" && param_type.is_some()) || has_field(consumes, name),
            Some(("source", f)) => has_field(consumes, f),
            Some(("param", f)) => param_type.is_some_and(|t| has_field(t, f)),
            Some(("config", _)) => true,
            Some(_) => false,
        };
        if !ok {
            return Err(format!("placeholder '{{{name}}}' names nothing this rule has"));
        }
        rest = &rest[start + len + 1..];
    }
    Ok(())
}

impl Rule {
    fn emit_for(&self, input: &BitInput<'_>, source: &Json, param: Option<&Json>) -> BitResult<Vec<Ooi>> {
        let mut out = Vec::new();
        for template in &self.emit {
            let mut fields = Map::new();
            let mut object_type = String::new();
            for (k, v) in template {
                let filled = match v {
                    Json::String(s) => Json::String(fill(s, source, param, &input.config).map_err(BitError::Invalid)?),
                    other => other.clone(),
                };
                if k == "object_type" {
                    object_type = as_text(&filled);
                } else {
                    fields.insert(k.clone(), filled);
                }
            }
            out.push(input.make(&object_type, Json::Object(fields))?);
        }
        Ok(out)
    }
}

impl Bit for Rule {
    fn definition(&self) -> &BitDefinition {
        &self.definition
    }

    fn run(&self, input: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
        let source = input.source.to_json();
        if !self.when_any.is_empty() && !self.when_any.iter().any(|c| all_hold(c, &source)) {
            return Ok(vec![]);
        }
        for (t, exists, conditions) in &self.require {
            let found = input.params_of(t).any(|p| all_hold(conditions, &p.to_json()));
            if found != *exists {
                return Ok(vec![]);
            }
        }
        match &self.for_each {
            None => self.emit_for(input, &source, None),
            Some(t) => {
                let conditions = self.require.iter().find(|(rt, _, _)| rt == t).map(|(_, _, c)| c);
                let mut out = Vec::new();
                for p in input.params_of(t) {
                    let doc = p.to_json();
                    if conditions.is_none_or(|c| all_hold(c, &doc)) {
                        out.extend(self.emit_for(input, &source, Some(&doc))?);
                    }
                }
                Ok(out)
            }
        }
    }
}

/// Loads the rules of one file, checked against the catalogue.
pub fn load_str(file: &Path, text: &str, catalog: &Catalog) -> Result<Vec<Rule>, RuleError> {
    let err =
        |offset: usize, message: String| RuleError { file: file.to_owned(), line: line_of(text, offset), message };
    let parsed: RuleFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        err(offset, e.message().to_owned())
    })?;
    let mut rules = Vec::new();
    for spanned in parsed.rule {
        let rule_at = spanned.span().start;
        let raw = spanned.into_inner();
        let at = |o: usize| if o == 0 { rule_at } else { o };
        let e = |o: usize, m: String| err(at(o), format!("rule '{}': {m}", raw.id));
        let consumes_at = raw.consumes.span().start;
        let consumes = raw.consumes.into_inner();
        catalog.get(&consumes).map_err(|x| e(consumes_at, x.to_string()))?;
        let mut definition = BitDefinition::new(&raw.id, &consumes).min_level(raw.min_scan_level);
        definition.default_enabled = raw.enabled;
        definition.config_ooi_relation_path = raw.config_path;
        for p in raw.parameters {
            definition = definition.param(&p.ooi_type, &p.path);
        }
        let mut when_any = Vec::new();
        if !raw.when.is_empty() {
            when_any.push(compile_conditions(raw.when, &consumes, catalog, &e)?);
        }
        for w in raw.when_any {
            when_any.push(compile_conditions(w, &consumes, catalog, &e)?);
        }
        let mut require = Vec::new();
        for r in raw.require {
            if !definition
                .parameters
                .iter()
                .any(|p| catalog.is_a(&p.ooi_type, &r.ooi_type) || catalog.is_a(&r.ooi_type, &p.ooi_type))
            {
                return Err(e(0, format!("require names {}, which is not among the parameters", r.ooi_type)));
            }
            require.push((r.ooi_type.clone(), r.exists, compile_conditions(r.when, &r.ooi_type, catalog, &e)?));
        }
        if let Some(t) = &raw.for_each {
            if !definition.parameters.iter().any(|p| &p.ooi_type == t) {
                return Err(e(0, format!("for_each names {t}, which is not among the parameters")));
            }
        }
        let mut emit = Vec::new();
        for spanned in raw.emit {
            let o = spanned.span().start;
            let template = spanned.into_inner();
            let Some(object_type) = template.get("object_type").and_then(Json::as_str) else {
                return Err(e(o, "an emitted object needs an object_type".into()));
            };
            let def = catalog.get(object_type).map_err(|x| e(o, x.to_string()))?;
            for (k, v) in &template {
                if k != "object_type" && def.field(k).is_none() {
                    return Err(e(o, format!("{object_type} has no field '{k}'")));
                }
                if let Json::String(s) = v {
                    check_template(s, &consumes, raw.for_each.as_deref(), catalog).map_err(|m| e(o, m))?;
                }
            }
            emit.push(template);
        }
        if emit.is_empty() {
            return Err(e(0, "a rule must emit at least one object".into()));
        }
        rules.push(Rule { definition, when_any, require, for_each: raw.for_each, emit });
    }
    Ok(rules)
}

/// Loads every `*.toml` file of a directory, in name order.
pub fn load_dir(dir: &Path, catalog: &Catalog) -> Result<Vec<Arc<dyn Bit>>, RuleError> {
    let io = |e: std::io::Error| RuleError { file: dir.to_owned(), line: 0, message: e.to_string() };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    let mut out: Vec<Arc<dyn Bit>> = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(&f).map_err(|e| RuleError { file: f.clone(), line: 0, message: e.to_string() })?;
        out.extend(load_str(&f, &text, catalog)?.into_iter().map(|r| Arc::new(r) as Arc<dyn Bit>));
    }
    Ok(out)
}

/// The built-in bits written as rules (they fit the format, so they are kept in it).
pub const BUILTIN_RULES: &[(&str, &str)] = &[
    ("port_common.toml", include_str!("../rules/port_common.toml")),
    ("check_cve_2021_41773.toml", include_str!("../rules/check_cve_2021_41773.toml")),
];
