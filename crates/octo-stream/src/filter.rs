//! Live-stream filters, in OpenCTI's filter-group shape:
//! `{"mode": "and"|"or", "filters": [{"key", "values", "operator", "mode"}], "filterGroups": [...]}`.
//!
//! Keys: `entity_type` (an OOI type; abstract types match their subtypes), `scan_level`,
//! `origin_type`, `origin_method`, `marking` (a TLP level), and `field:<name>` for an object's
//! field value. Operators:
//! `eq` and `not_eq` for all, `gt`, `gte`, `lt`, `lte` for `scan_level`. Within a filter the
//! values combine by the filter's `mode` (default `or`); filters and groups by the group's.

use octo_model::Catalog;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A group of filters and groups.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterGroup {
    /// How the members combine.
    #[serde(default)]
    pub mode: Mode,
    /// The filters.
    #[serde(default)]
    pub filters: Vec<Filter>,
    /// Nested groups.
    #[serde(default, rename = "filterGroups")]
    pub filter_groups: Vec<FilterGroup>,
}

/// `and` or `or`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every member must hold.
    #[default]
    And,
    /// One member must hold.
    Or,
}

/// One condition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// What is compared (see the module docs).
    pub key: String,
    /// What it is compared with.
    pub values: Vec<Json>,
    /// How (default `eq`).
    #[serde(default = "eq")]
    pub operator: String,
    /// How the values combine (default `or`).
    #[serde(default = "or")]
    pub mode: Mode,
}

fn eq() -> String {
    "eq".into()
}

fn or() -> Mode {
    Mode::Or
}

/// What a filter looks at: an object as of a change.
pub struct ObjectView<'a> {
    /// The object's document (fields by name).
    pub doc: &'a Json,
    /// Its scan level then.
    pub scan_level: u8,
    /// The kinds (`declaration`…) and methods of the origins that held it then.
    pub origins: &'a [(String, String)],
    /// Its marking then.
    pub marking: crate::Tlp,
}

impl FilterGroup {
    /// Checks every key, operator and value against the catalogue, so a bad filter is refused
    /// when saved, not silently never matching.
    pub fn check(&self, catalog: &Catalog) -> Result<(), String> {
        for f in &self.filters {
            if f.values.is_empty() {
                return Err(format!("filter '{}' has no values", f.key));
            }
            let ordered = ["gt", "gte", "lt", "lte"].contains(&f.operator.as_str());
            if !(["eq", "not_eq"].contains(&f.operator.as_str()) || ordered && f.key == "scan_level") {
                return Err(format!("operator '{}' does not apply to '{}'", f.operator, f.key));
            }
            match f.key.as_str() {
                "entity_type" => {
                    for v in &f.values {
                        let t = v.as_str().ok_or("entity_type values are type names")?;
                        catalog.concrete_types(t).map_err(|_| format!("unknown object type '{t}'"))?;
                    }
                }
                "scan_level" => {
                    if !f.values.iter().all(|v| v.as_u64().is_some_and(|l| l <= 4)) {
                        return Err("scan_level values are 0 to 4".into());
                    }
                }
                "origin_type" => {
                    for v in &f.values {
                        if !["declaration", "observation", "inference", "affirmation"]
                            .contains(&v.as_str().unwrap_or(""))
                        {
                            return Err(format!(
                                "origin_type {v} is not declaration, observation, inference or affirmation"
                            ));
                        }
                    }
                }
                "origin_method" => {
                    if !f.values.iter().all(Json::is_string) {
                        return Err("origin_method values are method names".into());
                    }
                }
                "marking" => {
                    for v in &f.values {
                        v.as_str().ok_or("marking values are TLP levels")?.parse::<crate::Tlp>()?;
                    }
                }
                key if key.starts_with("field:") => {}
                other => {
                    return Err(format!(
                    "unknown filter key '{other}' (entity_type, scan_level, origin_type, origin_method, marking, field:<name>)"
                ))
                }
            }
        }
        self.filter_groups.iter().try_for_each(|g| g.check(catalog))
    }

    /// Whether the object passes.
    pub fn matches(&self, view: &ObjectView<'_>, catalog: &Catalog) -> bool {
        let mut results = self
            .filters
            .iter()
            .map(|f| f.matches(view, catalog))
            .chain(self.filter_groups.iter().map(|g| g.matches(view, catalog)));
        match self.mode {
            Mode::And => results.all(|r| r),
            Mode::Or => {
                let mut any = false;
                let mut empty = true;
                for r in results {
                    empty = false;
                    any |= r;
                }
                empty || any
            }
        }
    }
}

impl Filter {
    fn matches(&self, view: &ObjectView<'_>, catalog: &Catalog) -> bool {
        let object_type = view.doc.get("object_type").and_then(Json::as_str).unwrap_or_default();
        let hit = |v: &Json| -> bool {
            match self.key.as_str() {
                "entity_type" => v.as_str().is_some_and(|t| catalog.is_a(object_type, t)),
                "scan_level" => v.as_u64().is_some_and(|l| {
                    let level = u64::from(view.scan_level);
                    match self.operator.as_str() {
                        "gt" => level > l,
                        "gte" => level >= l,
                        "lt" => level < l,
                        "lte" => level <= l,
                        _ => level == l,
                    }
                }),
                "origin_type" => view.origins.iter().any(|(t, _)| Some(t.as_str()) == v.as_str()),
                "origin_method" => view.origins.iter().any(|(_, m)| Some(m.as_str()) == v.as_str()),
                "marking" => v.as_str().and_then(|t| t.parse::<crate::Tlp>().ok()) == Some(view.marking),
                key => {
                    let field = key.strip_prefix("field:").unwrap_or(key);
                    match view.doc.get(field) {
                        None | Some(Json::Null) => false,
                        // Values compare as text, so `"22"` finds the port 22.
                        Some(Json::String(s)) => match v {
                            Json::String(x) => x == s,
                            other => serde_json::from_str::<Json>(s).ok().as_ref() == Some(other),
                        },
                        Some(Json::Array(items)) => items.iter().any(|i| i == v || i.as_str() == v.as_str()),
                        Some(other) => other == v || v.as_str() == Some(other.to_string().as_str()),
                    }
                }
            }
        };
        let combined = match self.mode {
            Mode::And => self.values.iter().all(hit),
            Mode::Or => self.values.iter().any(hit),
        };
        // `not_eq` negates the comparison; the ordered operators were applied in `hit`.
        if self.operator == "not_eq" {
            !combined
        } else {
            combined
        }
    }
}
