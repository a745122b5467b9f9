//! Octopoes' path queries: `Type.field.<field[is Type]…`, from objects of a start type along
//! outgoing references (`field`, optionally `field[is Type]`) and incoming ones
//! (`<field[is Type]`: the objects of Type whose `field` points here). A last step that is a plain
//! field yields its values.

use std::collections::BTreeMap;

use octo_model::{Catalog, Reference};
use octo_store::{AsOf, Reader};
use serde_json::Value as Json;

use crate::error::{GraphError, Result};
use crate::graph::Graph;

/// Which way a step goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Along a field of the current object.
    Outgoing,
    /// Back along a field of other objects that points at the current one.
    Incoming,
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// The type the step starts from.
    pub source_type: String,
    /// Outgoing or incoming.
    pub direction: Direction,
    /// The field (of the source type when outgoing, of the target type when incoming).
    pub property: String,
    /// Where the step arrives; `None` for a plain (non-reference) field, which ends the path.
    pub target_type: Option<String>,
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectPath {
    /// The type the path starts from.
    pub start_type: String,
    /// The steps.
    pub segments: Vec<Segment>,
}

fn is_name(s: &str) -> bool {
    s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl ObjectPath {
    /// Parses and checks a path against the catalogue; errors say which step is wrong.
    pub fn parse(path: &str, catalog: &Catalog) -> Result<ObjectPath> {
        let err = |m: String| GraphError::Invalid(format!("path '{path}': {m}"));
        let mut parts = path.split('.');
        let start = parts.next().unwrap_or_default();
        catalog.get(start).map_err(|_| err(format!("unknown type '{start}'")))?;
        let mut current = Some(start.to_owned());
        let mut segments = Vec::new();
        for step in parts {
            let Some(source_type) = current.clone() else {
                return Err(err(format!("'{step}' follows a plain field, which ends a path")));
            };
            let (direction, body) = match step.strip_prefix('<') {
                Some(rest) => (Direction::Incoming, rest),
                None => (Direction::Outgoing, step),
            };
            let (property, explicit) = match body.split_once('[') {
                // Octopoes writes `ooi [is Hostname]` as well as `ooi[is Hostname]`.
                Some((p, rest)) => {
                    let p = p.trim_end();
                    let t = rest
                        .strip_suffix(']')
                        .and_then(|r| r.strip_prefix("is "))
                        .ok_or_else(|| err(format!("step '{step}': expected `[is Type]`")))?
                        .trim();
                    catalog.get(t).map_err(|_| err(format!("step '{step}': unknown type '{t}'")))?;
                    (p, Some(t.to_owned()))
                }
                None => (body, None),
            };
            if !is_name(property) {
                return Err(err(format!("step '{step}': '{property}' is not a field name")));
            }
            let segment = match direction {
                Direction::Incoming => {
                    let owner = explicit.ok_or_else(|| err(format!("incoming step '{step}' needs `[is Type]`")))?;
                    let field =
                        catalog.get(&owner)?.field(property).and_then(|f| f.reference().map(|r| r.target.clone()));
                    match field {
                        Some(target) if catalog.is_a(&source_type, &target) || catalog.is_a(&target, &source_type) => {}
                        Some(target) => {
                            return Err(err(format!("{owner}.{property} points at {target}, not at {source_type}")))
                        }
                        None => return Err(err(format!("{owner} has no reference field '{property}'"))),
                    }
                    Segment { source_type, direction, property: property.to_owned(), target_type: Some(owner) }
                }
                Direction::Outgoing => {
                    // The field of the type itself, or of any of its concrete types.
                    let candidates = catalog.concrete_types(&source_type)?;
                    let mut field = catalog.get(&source_type)?.field(property).cloned();
                    if field.is_none() {
                        field = candidates
                            .iter()
                            .find_map(|t| catalog.get(t).ok().and_then(|d| d.field(property).cloned()));
                    }
                    let field = field.ok_or_else(|| err(format!("{source_type} has no field '{property}'")))?;
                    let target = match (field.reference(), explicit) {
                        (Some(_), Some(t)) => Some(t),
                        (Some(spec), None) => Some(spec.target.clone()),
                        (None, Some(_)) => {
                            return Err(err(format!("'{property}' is not a reference; `[is …]` does not apply")))
                        }
                        (None, None) => None,
                    };
                    Segment { source_type, direction, property: property.to_owned(), target_type: target }
                }
            };
            current = segment.target_type.clone();
            segments.push(segment);
        }
        if segments.is_empty() {
            return Err(err("a path needs at least one step after the type".into()));
        }
        Ok(ObjectPath { start_type: start.to_owned(), segments })
    }
}

impl std::fmt::Display for ObjectPath {
    /// The path as written: `IPAddress.<address[is IPPort]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.start_type)?;
        for seg in &self.segments {
            match (seg.direction, &seg.target_type) {
                (Direction::Incoming, Some(t)) => write!(f, ".<{}[is {t}]", seg.property)?,
                (_, Some(t)) => write!(f, ".{}[is {t}]", seg.property)?,
                (_, None) => write!(f, ".{}", seg.property)?,
            }
        }
        Ok(())
    }
}

/// What a path query yields: objects, or the values of a plain field.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryResult {
    /// An object (its stored document, scan profile not included).
    Object(Json),
    /// A field value.
    Value(Json),
}

impl QueryResult {
    /// As JSON.
    pub fn to_json(&self) -> Json {
        match self {
            QueryResult::Object(j) | QueryResult::Value(j) => j.clone(),
        }
    }
}

fn reference_values(v: Option<&Json>) -> Vec<Reference> {
    match v {
        Some(Json::String(s)) => vec![Reference::from_trusted(s.clone())],
        Some(Json::Array(items)) => {
            items.iter().filter_map(Json::as_str).map(|s| Reference::from_trusted(s.to_owned())).collect()
        }
        _ => vec![],
    }
}

/// A document loader: the store as of a time, or (for inference) the store plus what the
/// current transaction deleted.
pub(crate) type Loader<'a> = dyn Fn(&Reference) -> Result<Option<Json>> + 'a;

/// Follows a path from one object whose document is `start_doc`; distinct results in key order
/// (values in order met). Outgoing steps load documents with `load`; incoming steps read the
/// reference index of `reader`.
pub(crate) fn walk(
    reader: &dyn Reader,
    catalog: &Catalog,
    path: &ObjectPath,
    start: Reference,
    start_doc: Json,
    at: AsOf,
    load: &Loader<'_>,
) -> Result<Vec<QueryResult>> {
    let mut current: BTreeMap<Reference, Json> = BTreeMap::new();
    if catalog.is_a(start.type_name(), &path.start_type) {
        current.insert(start, start_doc);
    }
    for (i, seg) in path.segments.iter().enumerate() {
        let mut next: BTreeMap<Reference, Json> = BTreeMap::new();
        match (seg.direction, &seg.target_type) {
            (Direction::Outgoing, None) => {
                let mut values = Vec::new();
                for doc in current.values() {
                    if let Some(v) = doc.get(&seg.property).filter(|v| !v.is_null()) {
                        if !values.contains(v) {
                            values.push(v.clone());
                        }
                    }
                }
                debug_assert_eq!(i + 1, path.segments.len());
                return Ok(values.into_iter().map(QueryResult::Value).collect());
            }
            (Direction::Outgoing, Some(target)) => {
                for doc in current.values() {
                    for r in reference_values(doc.get(&seg.property)) {
                        if next.contains_key(&r) || !catalog.is_a(r.type_name(), target) {
                            continue;
                        }
                        if let Some(d) = load(&r)? {
                            next.insert(r, d);
                        }
                    }
                }
            }
            (Direction::Incoming, Some(owner)) => {
                let owners = catalog.concrete_types(owner)?.to_vec();
                for r in current.keys() {
                    for t in &owners {
                        for v in reader.referrers(r.as_str(), Some(t), at)? {
                            let d: Json = crate::graph::decode(&v.key, &v.doc)?;
                            if reference_values(d.get(&seg.property)).contains(r) {
                                next.insert(Reference::from_trusted(v.key), d);
                            }
                        }
                    }
                }
            }
            (Direction::Incoming, None) => unreachable!("incoming steps always name a type"),
        }
        current = next;
    }
    Ok(current.into_values().map(QueryResult::Object).collect())
}

impl ObjectPath {
    /// The same relation walked the other way: from the type this all-reference path arrives
    /// at, back to its start type (`IPPort.address` becomes `IPAddress.<address[is IPPort]`).
    /// `None` when a step is a plain field or already incoming.
    pub fn reversed(&self) -> Option<ObjectPath> {
        let last = self.segments.last()?.target_type.clone()?;
        let mut segments = Vec::with_capacity(self.segments.len());
        let mut from = last.clone();
        for seg in self.segments.iter().rev() {
            if seg.direction != Direction::Outgoing {
                return None;
            }
            seg.target_type.as_ref()?;
            segments.push(Segment {
                source_type: from.clone(),
                direction: Direction::Incoming,
                property: seg.property.clone(),
                target_type: Some(seg.source_type.clone()),
            });
            from = seg.source_type.clone();
        }
        Some(ObjectPath { start_type: last, segments })
    }
}

impl Graph {
    fn walk_from(&self, snap: &dyn Reader, path: &ObjectPath, start: Reference, at: AsOf) -> Result<Vec<QueryResult>> {
        let load = |r: &Reference| -> Result<Option<Json>> {
            snap.get(r.as_str(), at)?.map(|v| crate::graph::decode(&v.key, &v.doc)).transpose()
        };
        let Some(doc) = load(&start)? else { return Ok(vec![]) };
        walk(snap, self.catalog(), path, start, doc, at, &load)
    }

    /// Octopoes' `GET /query`: the path's results from `source`, or from every object of the
    /// start type when no source is given; paged.
    pub fn query(
        &self,
        path: &str,
        source: Option<&Reference>,
        offset: usize,
        limit: usize,
        at: AsOf,
    ) -> Result<Vec<QueryResult>> {
        let path = ObjectPath::parse(path, self.catalog())?;
        let snap = self.store().snapshot()?;
        let sources: Vec<Reference> = match source {
            Some(s) => vec![s.clone()],
            None => {
                let mut all = Vec::new();
                let types: Vec<&str> =
                    self.catalog().concrete_types(&path.start_type)?.iter().map(String::as_str).collect();
                snap.scan_types(&types, at, &mut |v| {
                    all.push(Reference::from_trusted(v.key));
                    true
                })?;
                all
            }
        };
        let mut out: Vec<QueryResult> = Vec::new();
        for s in sources {
            for r in self.walk_from(&*snap, &path, s, at)? {
                if !out.contains(&r) {
                    out.push(r);
                }
            }
        }
        Ok(out.into_iter().skip(offset).take(limit).collect())
    }

    /// Octopoes' `GET /query-many`: each result with the source it came from.
    pub fn query_many(&self, path: &str, sources: &[Reference], at: AsOf) -> Result<Vec<(Reference, QueryResult)>> {
        let path = ObjectPath::parse(path, self.catalog())?;
        let snap = self.store().snapshot()?;
        let mut out = Vec::new();
        for s in sources {
            for r in self.walk_from(&*snap, &path, s.clone(), at)? {
                out.push((s.clone(), r));
            }
        }
        Ok(out)
    }
}
