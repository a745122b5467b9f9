//! The hook through which rules (bits) derive objects inside the write transaction.
//!
//! The graph records what a transaction changed — objects with their old and new documents,
//! scan levels, settings — and, before committing, hands it to an [`Inferrer`]. The inferrer
//! names the (bit, source) runs those changes can affect; the graph runs each and saves its
//! results as an inference origin, which may change more objects, and repeats until nothing
//! changes. A run whose results equal the stored ones writes nothing, which is what makes a
//! rule that feeds itself stop.

use std::cell::RefCell;
use std::collections::HashMap;

use octo_model::{Catalog, Ooi, Reference};
use octo_store::{AsOf, Reader, Timestamp};
use serde_json::Value as Json;

use crate::error::Result;
use crate::origin::{Origin, OriginType};
use crate::path::{ObjectPath, QueryResult};

/// How many rounds of inference one transaction may take before it is refused: a rule set
/// that never settles is a bug to report, not a reason to spin forever.
pub const MAX_INFERENCE_ROUNDS: usize = 64;

/// One object written in the transaction.
#[derive(Debug, Clone)]
pub struct ObjectChange {
    /// The object.
    pub reference: Reference,
    /// Its document before (none when created).
    pub old: Option<Json>,
    /// Its document after (none when deleted).
    pub new: Option<Json>,
}

/// One object whose scan level changed in the transaction.
#[derive(Debug, Clone)]
pub struct LevelChange {
    /// The object.
    pub reference: Reference,
    /// Level before.
    pub old: u8,
    /// Level after.
    pub new: u8,
}

/// One organisation setting written in the transaction.
#[derive(Debug, Clone)]
pub struct SettingChange {
    /// The setting's name.
    pub name: String,
    /// Its value before (none when it was not set).
    pub old: Option<Json>,
    /// Its value after (none when removed).
    pub new: Option<Json>,
}

/// Everything a round of the transaction changed that rules may depend on.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Objects created, updated or deleted.
    pub objects: Vec<ObjectChange>,
    /// Scan levels that changed.
    pub levels: Vec<LevelChange>,
    /// Settings that changed.
    pub settings: Vec<SettingChange>,
}

impl Changes {
    /// Nothing changed.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty() && self.levels.is_empty() && self.settings.is_empty()
    }
}

/// A read-only view of the graph inside the write transaction, as rules see it.
pub struct InferenceContext<'a> {
    pub(crate) reader: &'a dyn Reader,
    pub(crate) catalog: &'a Catalog,
    pub(crate) at: AsOf,
    /// Documents this transaction deleted, so a path can still be followed from a deleted
    /// object to the objects whose rules must re-run.
    pub(crate) gone: Option<&'a HashMap<Reference, Json>>,
    /// Reads already made in this transaction and still true.
    pub(crate) reads: Option<&'a RefCell<ReadCache>>,
}

/// What rules read again and again within one transaction, kept until a write could change it.
/// Walks: several bits consuming one object often gather along the same path (three bits read
/// an address's ports), and a write to an object of a type the path does not pass through
/// cannot change what it reaches. Settings: every run asks whether its bit is switched on.
#[derive(Default)]
pub(crate) struct ReadCache {
    entries: HashMap<WalkKey, Vec<(Reference, Json)>>,
    /// For each concrete type, the walks that pass through objects of it.
    by_type: HashMap<String, Vec<WalkKey>>,
    settings: HashMap<String, Option<Json>>,
}

/// How many walks a transaction keeps at most.
const WALK_CACHE_ENTRIES: usize = 4096;

/// A path (as written) and the object it starts from.
type WalkKey = (String, Reference);

impl ReadCache {
    /// Forgets a setting that was written.
    pub(crate) fn forget_setting(&mut self, key: &str) {
        self.settings.remove(key);
    }

    /// Forgets every walk that passes through objects of the concrete type `type_name`.
    pub(crate) fn invalidate(&mut self, type_name: &str) {
        if let Some(keys) = self.by_type.remove(type_name) {
            for k in keys {
                self.entries.remove(&k);
            }
        }
    }

    fn insert(&mut self, key: WalkKey, path: &ObjectPath, catalog: &Catalog, found: Vec<(Reference, Json)>) {
        if self.entries.len() >= WALK_CACHE_ENTRIES {
            // A transaction that writes little and reads much (a full recalculation) would
            // otherwise keep every walk it made; the useful ones are the recent ones.
            self.entries.clear();
            self.by_type.clear();
        }
        for t in path.segments.iter().filter_map(|s| s.target_type.as_deref()) {
            for concrete in catalog.concrete_types(t).unwrap_or_default() {
                self.by_type.entry(concrete.clone()).or_default().push(key.clone());
            }
        }
        self.entries.insert(key, found);
    }
}

impl<'a> InferenceContext<'a> {
    /// A context over a read-only snapshot (for dry runs).
    pub fn over(reader: &'a dyn Reader, catalog: &'a Catalog, at: AsOf) -> Self {
        InferenceContext { reader, catalog, at, gone: None, reads: None }
    }

    /// The type catalogue.
    pub fn catalog(&self) -> &Catalog {
        self.catalog
    }

    /// The valid time rules evaluate at (certificate expiry is judged against it).
    pub fn valid_time(&self) -> Timestamp {
        self.at.valid_time
    }

    /// A live object's stored document.
    pub fn document(&self, r: &Reference) -> Result<Option<Json>> {
        self.reader.get(r.as_str(), self.at)?.map(|v| crate::graph::decode(&v.key, &v.doc)).transpose()
    }

    /// A live object's document, or the last document of one this transaction deleted.
    pub fn document_or_gone(&self, r: &Reference) -> Result<Option<Json>> {
        if let Some(d) = self.document(r)? {
            return Ok(Some(d));
        }
        Ok(self.gone.and_then(|g| g.get(r).cloned()))
    }

    /// A live object.
    pub fn object(&self, r: &Reference) -> Result<Option<Ooi>> {
        match self.document(r)? {
            Some(doc) => Ok(Some(self.catalog.ooi_from_stored(r.as_str(), doc)?)),
            None => Ok(None),
        }
    }

    /// Builds an object from a stored document.
    pub fn decode_object(&self, key: &Reference, doc: Json) -> Result<Ooi> {
        Ok(self.catalog.ooi_from_stored(key.as_str(), doc)?)
    }

    /// An object's scan level (0 when it has no profile).
    pub fn level(&self, r: &Reference) -> Result<u8> {
        Ok(crate::graph::read_profile(self.reader, r, self.at)?.map_or(0, |p| p.level))
    }

    /// The live objects a path reaches from `start`, whose document is `start_doc`.
    pub fn walk(&self, path: &ObjectPath, start: &Reference, start_doc: &Json) -> Result<Vec<(Reference, Json)>> {
        self.walk_with(path, start, start_doc, &|r| self.document(r))
    }

    /// Like [`InferenceContext::walk`], but outgoing steps also pass through objects this
    /// transaction deleted, and `start_doc` may be a deleted object's last document: from a
    /// change to the runs it affects, which were reached through it before it went.
    pub fn walk_through_gone(
        &self,
        path: &ObjectPath,
        start: &Reference,
        start_doc: &Json,
    ) -> Result<Vec<(Reference, Json)>> {
        self.walk_with(path, start, start_doc, &|r| self.document_or_gone(r))
    }

    fn walk_with(
        &self,
        path: &ObjectPath,
        start: &Reference,
        start_doc: &Json,
        load: &crate::path::Loader<'_>,
    ) -> Result<Vec<(Reference, Json)>> {
        let results =
            crate::path::walk(self.reader, self.catalog, path, start.clone(), start_doc.clone(), self.at, load)?;
        Ok(results
            .into_iter()
            .filter_map(|q| match q {
                QueryResult::Object(doc) => {
                    let key = doc.get("primary_key").and_then(Json::as_str)?.to_owned();
                    Some((Reference::from_trusted(key), doc))
                }
                QueryResult::Value(_) => None,
            })
            .collect())
    }

    /// Whether any record of `type_name` (or a subtype) has ever referred to `r`: a cheap test,
    /// from the reference index alone, that may say yes for a referrer that is gone.
    pub fn is_referenced_by(&self, r: &Reference, type_name: &str) -> Result<bool> {
        Ok(self
            .reader
            .referrer_keys(r.as_str())?
            .iter()
            .any(|k| self.catalog.is_a(Reference::from_trusted(k.as_str()).type_name(), type_name)))
    }

    /// Like [`InferenceContext::walk`] from a live object, remembered for the rest of the
    /// transaction until a write to a type on the path.
    pub fn walk_cached(
        &self,
        path: &ObjectPath,
        start: &Reference,
        start_doc: &Json,
    ) -> Result<Vec<(Reference, Json)>> {
        let Some(cache) = self.reads else { return self.walk(path, start, start_doc) };
        let key = (path.to_string(), start.clone());
        if let Some(hit) = cache.borrow().entries.get(&key) {
            return Ok(hit.clone());
        }
        let found = self.walk(path, start, start_doc)?;
        cache.borrow_mut().insert(key, path, self.catalog, found.clone());
        Ok(found)
    }

    /// Every live object of a concrete type, by key.
    pub fn keys_of_type(&self, type_name: &str) -> Result<Vec<Reference>> {
        let mut out = Vec::new();
        self.reader.scan_type_keys(type_name, self.at, &mut |k| {
            out.push(Reference::from_trusted(k));
            true
        })?;
        Ok(out)
    }

    /// A named setting of this organisation.
    pub fn setting(&self, name: &str) -> Result<Option<Json>> {
        let key = setting_key(name);
        if let Some(hit) = self.reads.and_then(|c| c.borrow().settings.get(&key).cloned()) {
            return Ok(hit);
        }
        let value: Option<Json> =
            self.reader.get(&key, self.at)?.map(|v| crate::graph::decode(&key, &v.doc)).transpose()?;
        if let Some(cache) = self.reads {
            cache.borrow_mut().settings.insert(key, value.clone());
        }
        Ok(value)
    }

    /// Every inference origin, so a full recalculation can re-run the ones no rule claims any
    /// more (a rule that was removed) and let them go.
    pub fn inference_origins(&self) -> Result<Vec<Origin>> {
        let all: Vec<Origin> = crate::query::collect_type(self.reader, "Origin", self.at, crate::graph::decode)?;
        Ok(all.into_iter().filter(|o| o.origin_type == OriginType::Inference).collect())
    }
}

/// The store key of a setting.
/// Settings are stored under `Setting|name`.
pub(crate) const SETTING_PREFIX: &str = "Setting|";

pub(crate) fn setting_key(name: &str) -> String {
    format!("{SETTING_PREFIX}{name}")
}

/// A rule engine the graph calls inside each write transaction.
pub trait Inferrer: Send + Sync {
    /// The (bit id, source) runs that `changes` may have affected.
    fn affected(&self, ctx: &InferenceContext<'_>, changes: &Changes) -> Result<Vec<(String, Reference)>>;

    /// Runs one bit on one live source and returns what it derives now (empty when it derives
    /// nothing, is disabled, or the source's level is below the bit's minimum), or `None` to
    /// leave the stored inference as it is (a bit that failed on this input: the failure is
    /// the engine's to report, and one bad rule must not block every write).
    fn run(&self, ctx: &InferenceContext<'_>, bit: &str, source: &Reference) -> Result<Option<Vec<Ooi>>>;

    /// Every run that should exist in the graph as it stands (for `recalculate_bits`).
    fn all_runs(&self, ctx: &InferenceContext<'_>) -> Result<Vec<(String, Reference)>>;
}
