//! One organisation's graph: every API-level call is one store transaction, so the graph is
//! never seen half-updated, and every change it makes is in the event log of that transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use octo_model::{Catalog, Ooi, Reference};
use octo_store::{AsOf, EventId, Store, Timestamp, Transaction, TxReceipt, ValidTime};
use serde_json::Value as Json;

use crate::change::{Change, Entity, Operation};
use crate::error::{GraphError, Result};
use crate::origin::{Origin, OriginType};

/// A user's statement that an object exists (Octopoes' `Declaration`).
#[derive(Debug, Clone)]
pub struct Declaration {
    /// The object.
    pub ooi: Ooi,
    /// Default `manual`.
    pub method: Option<String>,
    /// The task behind it, if any.
    pub task_id: Option<String>,
    /// Valid from (default: now).
    pub valid_time: Option<Timestamp>,
    /// Valid until (exclusive); after it the declaration and what only it held are gone.
    pub end_valid_time: Option<Timestamp>,
}

/// What a normalizer (or a log parser) saw while looking at `source`.
#[derive(Debug, Clone)]
pub struct Observation {
    /// The normalizer.
    pub method: String,
    /// The object looked at; must exist unless it is among the results.
    pub source: Reference,
    /// The boefje behind it, if any.
    pub source_method: Option<String>,
    /// Everything seen; what the previous run saw and this one does not is dropped.
    pub result: Vec<Ooi>,
    /// The task behind it, if any.
    pub task_id: Option<String>,
    /// Valid from (default: now).
    pub valid_time: Option<Timestamp>,
}

/// What a bit derived from `source` (its results live and die by the same rules).
#[derive(Debug, Clone)]
pub struct Inference {
    /// The bit id.
    pub method: String,
    /// The consumed object.
    pub source: Reference,
    /// The produced objects.
    pub result: Vec<Ooi>,
    /// Valid from (default: now).
    pub valid_time: Option<Timestamp>,
}

/// Extra fields for an existing object that do not keep it alive.
#[derive(Debug, Clone)]
pub struct Affirmation {
    /// The object with the fields to add.
    pub ooi: Ooi,
    /// Who affirms it.
    pub method: String,
    /// The tool behind it, if any.
    pub source_method: Option<String>,
    /// The task behind it, if any.
    pub task_id: Option<String>,
    /// Valid from (default: now).
    pub valid_time: Option<Timestamp>,
}

/// What one call did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// The transaction, when anything was written.
    pub tx: Option<TxReceipt>,
    /// Objects that came into existence.
    pub created: Vec<Reference>,
    /// Objects whose document changed.
    pub updated: Vec<Reference>,
    /// Objects that ceased to exist (explicitly or by garbage collection).
    pub deleted: Vec<Reference>,
    /// The events written, in order.
    pub events: Vec<EventId>,
}

/// One organisation's knowledge graph.
pub struct Graph {
    store: Arc<dyn Store>,
    catalog: Catalog,
}

impl Graph {
    /// A graph over `store`, typed by `catalog`.
    pub fn new(store: Arc<dyn Store>, catalog: Catalog) -> Self {
        Graph { store, catalog }
    }

    /// The type catalogue.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The underlying store (for reads the graph does not wrap yet, and the event log).
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    fn session(&self, valid_time: Option<Timestamp>, cause: String) -> Result<Session<'_>> {
        let tx = self.store.begin()?;
        let valid = valid_time.unwrap_or_else(|| tx.tx_time());
        Ok(Session { tx, catalog: &self.catalog, valid, cause, outcome: Outcome::default() })
    }

    /// Saves declarations, each with its own origin, in one transaction.
    pub fn save_declarations(&self, declarations: &[Declaration]) -> Result<Outcome> {
        let Some(first) = declarations.first() else { return Ok(Outcome::default()) };
        if declarations.iter().any(|d| d.valid_time != first.valid_time) {
            return Err(GraphError::Invalid("declarations saved together must share one valid time".into()));
        }
        let mut s = self.session(first.valid_time, format!("save_declaration x{}", declarations.len()))?;
        for d in declarations {
            let origin = Origin {
                origin_type: OriginType::Declaration,
                method: d.method.clone().unwrap_or_else(|| "manual".to_owned()),
                source: d.ooi.primary_key().clone(),
                source_method: None,
                result: vec![],
                task_id: d.task_id.clone(),
            };
            s.save_origin(origin, std::slice::from_ref(&d.ooi), d.end_valid_time)?;
        }
        s.commit()
    }

    /// Saves one declaration.
    pub fn save_declaration(&self, declaration: Declaration) -> Result<Outcome> {
        self.save_declarations(std::slice::from_ref(&declaration))
    }

    /// Saves an observation, replacing the previous one of the same method and source.
    pub fn save_observation(&self, observation: Observation) -> Result<Outcome> {
        let origin = Origin {
            origin_type: OriginType::Observation,
            method: observation.method,
            source: observation.source,
            source_method: observation.source_method,
            result: vec![],
            task_id: observation.task_id,
        };
        let mut s = self.session(observation.valid_time, format!("save_observation {}", origin.id()))?;
        s.save_origin(origin, &observation.result, None)?;
        s.commit()
    }

    /// Saves an inference origin (what the bit engine does for each bit run).
    pub fn save_inference(&self, inference: Inference) -> Result<Outcome> {
        let origin = Origin {
            origin_type: OriginType::Inference,
            method: inference.method,
            source: inference.source,
            source_method: None,
            result: vec![],
            task_id: None,
        };
        let mut s = self.session(inference.valid_time, format!("save_inference {}", origin.id()))?;
        s.save_origin(origin, &inference.result, None)?;
        s.commit()
    }

    /// Adds fields to an object another origin holds; does nothing when the object is gone.
    pub fn save_affirmation(&self, affirmation: Affirmation) -> Result<Outcome> {
        let origin = Origin {
            origin_type: OriginType::Affirmation,
            method: affirmation.method,
            source: affirmation.ooi.primary_key().clone(),
            source_method: affirmation.source_method,
            result: vec![],
            task_id: affirmation.task_id,
        };
        let mut s = self.session(affirmation.valid_time, format!("save_affirmation {}", origin.id()))?;
        s.save_origin(origin, std::slice::from_ref(&affirmation.ooi), None)?;
        s.commit()
    }

    /// Deletes an origin; the objects only it held go with it.
    pub fn delete_origin(&self, origin_id: &str, valid_time: Option<Timestamp>) -> Result<Outcome> {
        let mut s = self.session(valid_time, format!("delete_origin {origin_id}"))?;
        let Some(origin) = s.origin(origin_id)? else {
            return Err(GraphError::NotFound(format!("origin '{origin_id}' not found")));
        };
        s.remove_origin(&origin)?;
        s.collect_garbage(origin.result)?;
        s.commit()
    }

    /// Deletes an object whatever holds it: it leaves every origin's result, the origins it is
    /// the source of are deleted, and what only they held goes too.
    pub fn delete_object(&self, reference: &Reference, valid_time: Option<Timestamp>) -> Result<Outcome> {
        let mut s = self.session(valid_time, format!("delete_object {reference}"))?;
        if s.document(reference.as_str())?.is_none() {
            return Err(GraphError::NotFound(format!("object '{reference}' not found")));
        }
        for origin in s.origins_of(reference)? {
            if origin.source != *reference {
                let mut kept = origin.clone();
                kept.result.retain(|r| r != reference);
                s.write_origin(&kept, Some(&origin))?;
            }
        }
        s.delete_dead(reference)?;
        s.commit()
    }

    /// An object as of a time.
    pub fn get(&self, reference: &Reference, at: AsOf) -> Result<Ooi> {
        let snap = self.store.snapshot()?;
        let version = snap
            .get(reference.as_str(), at)?
            .ok_or_else(|| GraphError::NotFound(format!("object '{reference}' not found at {}", at.valid_time)))?;
        let doc = decode(&version.key, &version.doc)?;
        Ok(self.catalog.ooi_from_json(&doc)?)
    }

    /// The origins that hold `reference` or look at it, as of a time.
    pub fn origins(&self, reference: &Reference, at: AsOf) -> Result<Vec<Origin>> {
        let snap = self.store.snapshot()?;
        snap.referrers(reference.as_str(), Some("Origin"), at)?.iter().map(|v| decode_origin(&v.key, &v.doc)).collect()
    }

    /// An origin by id, as of a time.
    pub fn origin(&self, origin_id: &str, at: AsOf) -> Result<Option<Origin>> {
        let snap = self.store.snapshot()?;
        snap.get(origin_id, at)?.map(|v| decode_origin(&v.key, &v.doc)).transpose()
    }
}

fn decode(key: &str, bytes: &[u8]) -> Result<Json> {
    serde_json::from_slice(bytes).map_err(|e| GraphError::Corrupt { key: key.to_owned(), message: e.to_string() })
}

fn decode_origin(key: &str, bytes: &[u8]) -> Result<Origin> {
    serde_json::from_slice(bytes).map_err(|e| GraphError::Corrupt { key: key.to_owned(), message: e.to_string() })
}

/// The stored form of an object: its JSON without the scan profile, which lives apart.
fn stored_document(ooi: &Ooi) -> Json {
    let mut doc = ooi.to_json();
    if let Json::Object(map) = &mut doc {
        map.shift_remove("scan_profile");
    }
    doc
}

/// One API call's transaction.
struct Session<'a> {
    tx: Box<dyn Transaction + 'a>,
    catalog: &'a Catalog,
    valid: Timestamp,
    cause: String,
    outcome: Outcome,
}

impl Session<'_> {
    fn at(&self) -> AsOf {
        AsOf::valid(self.valid)
    }

    fn document(&self, key: &str) -> Result<Option<Json>> {
        self.tx.get(key, self.at())?.map(|v| decode(key, &v.doc)).transpose()
    }

    fn exists(&self, key: &Reference) -> Result<bool> {
        Ok(self.tx.get(key.as_str(), self.at())?.is_some())
    }

    fn origin(&self, id: &str) -> Result<Option<Origin>> {
        self.tx.get(id, self.at())?.map(|v| decode_origin(id, &v.doc)).transpose()
    }

    /// Origins whose source is `r` or whose result lists it.
    fn origins_of(&self, r: &Reference) -> Result<Vec<Origin>> {
        self.tx
            .referrers(r.as_str(), Some("Origin"), self.at())?
            .iter()
            .map(|v| decode_origin(&v.key, &v.doc))
            .collect()
    }

    /// Writes (or deletes, with `new` = None) one record and its event; nothing when unchanged.
    fn write(
        &mut self,
        entity: Entity,
        key: &str,
        old: Option<Json>,
        new: Option<Json>,
        refs: Vec<String>,
        end: Option<Timestamp>,
    ) -> Result<()> {
        if old == new {
            return Ok(());
        }
        let valid = ValidTime { start: Some(self.valid), end };
        match &new {
            Some(doc) => {
                let bytes = serde_json::to_vec(doc).map_err(|e| GraphError::Invalid(e.to_string()))?;
                self.tx.put(key, &bytes, &refs, valid)?;
            }
            None => self.tx.delete(key, valid)?,
        }
        let change = Change::new(entity, key, self.valid, old, new, &self.cause);
        if entity == Entity::Ooi {
            let r = Reference::from_trusted(key);
            match change.operation {
                Operation::Create => self.outcome.created.push(r),
                Operation::Update => self.outcome.updated.push(r),
                Operation::Delete => self.outcome.deleted.push(r),
            }
        }
        let payload = serde_json::to_vec(&change).map_err(|e| GraphError::Invalid(e.to_string()))?;
        let id = self.tx.append_event(&payload)?;
        self.outcome.events.push(id);
        Ok(())
    }

    /// Saves an object, overlaying its non-null fields on the stored version.
    fn save_object(&mut self, ooi: &Ooi, end: Option<Timestamp>) -> Result<()> {
        let key = ooi.primary_key().as_str();
        let new = stored_document(ooi);
        let old = self.document(key)?;
        let merged = match (&old, new) {
            (Some(Json::Object(stored)), Json::Object(given)) => {
                let mut merged = stored.clone();
                for (field, value) in given {
                    if !value.is_null() {
                        merged.insert(field, value);
                    }
                }
                Json::Object(merged)
            }
            (_, new) => new,
        };
        // The merged document must still be a valid object (a stored document from an older
        // schema may not be); its references feed the reverse index.
        let checked = self.catalog.ooi_from_json(&merged)?;
        let refs = checked.references().map(|(_, r)| r.to_string()).collect();
        self.write(Entity::Ooi, key, old, Some(merged), refs, end)
    }

    fn origin_document(origin: &Origin) -> (Json, Vec<String>) {
        let doc = serde_json::to_value(origin).unwrap_or(Json::Null);
        let mut refs: Vec<String> = origin.result.iter().map(|r| r.to_string()).collect();
        refs.push(origin.source.to_string());
        refs.sort();
        refs.dedup();
        (doc, refs)
    }

    fn write_origin(&mut self, origin: &Origin, old: Option<&Origin>) -> Result<()> {
        self.write_origin_until(origin, old, None)
    }

    fn write_origin_until(&mut self, origin: &Origin, old: Option<&Origin>, end: Option<Timestamp>) -> Result<()> {
        let (doc, refs) = Self::origin_document(origin);
        let old_doc = old.map(|o| Self::origin_document(o).0);
        self.write(Entity::Origin, &origin.id(), old_doc, Some(doc), refs, end)
    }

    fn remove_origin(&mut self, origin: &Origin) -> Result<()> {
        let old = Self::origin_document(origin).0;
        self.write(Entity::Origin, &origin.id(), Some(old), None, vec![], None)
    }

    /// Octopoes' `save_origin`, done in this transaction with garbage collection included.
    fn save_origin(&mut self, mut origin: Origin, oois: &[Ooi], end: Option<Timestamp>) -> Result<()> {
        origin.result = Vec::with_capacity(oois.len());
        for o in oois {
            if !origin.result.contains(o.primary_key()) {
                origin.result.push(o.primary_key().clone());
            }
        }
        if !self.exists(&origin.source)? {
            match origin.origin_type {
                OriginType::Affirmation => return Ok(()),
                OriginType::Observation | OriginType::Inference if !origin.result.contains(&origin.source) => {
                    return Err(GraphError::Invalid(format!(
                        "the source of this {} does not exist: '{}'",
                        origin.origin_type.as_str(),
                        origin.source
                    )))
                }
                _ => {}
            }
        }
        if origin.origin_type == OriginType::Affirmation {
            let held = self
                .origins_of(&origin.source)?
                .iter()
                .any(|o| o.origin_type != OriginType::Affirmation && o.supports(&origin.source));
            if !held {
                // A dangling object: an affirmation does not keep it, so it goes.
                return self.collect_garbage(vec![origin.source.clone()]);
            }
        }
        for o in oois {
            self.save_object(o, end)?;
        }
        let old = self.origin(&origin.id())?;
        if origin.result.is_empty() && origin.origin_type != OriginType::Inference {
            // An origin that holds nothing is stale (Octopoes #3561).
            if let Some(old) = &old {
                self.remove_origin(old)?;
            }
        } else {
            self.write_origin_until(&origin, old.as_ref(), end)?;
        }
        if let Some(old) = old {
            let dropped: Vec<Reference> = old.result.into_iter().filter(|r| !origin.result.contains(r)).collect();
            self.collect_garbage(dropped)?;
        }
        Ok(())
    }

    /// Deletes every object among `seeds`, and what depends on them through origins, that no
    /// declaration, observation or foreign inference holds any more. Liveness is a least
    /// fixpoint from the holders outside the affected region, so a cycle of inferences does not
    /// keep itself alive.
    fn collect_garbage(&mut self, seeds: Vec<Reference>) -> Result<()> {
        let mut region: BTreeMap<Reference, Vec<Origin>> = BTreeMap::new();
        let mut queue = seeds;
        while let Some(r) = queue.pop() {
            if region.contains_key(&r) {
                continue;
            }
            let origins = self.origins_of(&r)?;
            for o in &origins {
                if o.source == r && matches!(o.origin_type, OriginType::Observation | OriginType::Inference) {
                    queue.extend(o.result.iter().filter(|x| **x != r).cloned());
                }
            }
            region.insert(r, origins);
        }
        let mut alive: BTreeSet<Reference> = BTreeSet::new();
        let mut outside_exists: BTreeMap<Reference, bool> = BTreeMap::new();
        loop {
            let mut changed = false;
            for (r, origins) in &region {
                if alive.contains(r) {
                    continue;
                }
                let mut held = false;
                for o in origins.iter().filter(|o| o.supports(r)) {
                    let source_alive = if o.origin_type == OriginType::Declaration || o.source == *r {
                        true
                    } else if region.contains_key(&o.source) {
                        alive.contains(&o.source)
                    } else {
                        match outside_exists.get(&o.source) {
                            Some(e) => *e,
                            None => {
                                let e = self.exists(&o.source)?;
                                outside_exists.insert(o.source.clone(), e);
                                e
                            }
                        }
                    };
                    if source_alive {
                        held = true;
                        break;
                    }
                }
                if held {
                    alive.insert(r.clone());
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let dead: Vec<Reference> = region.keys().filter(|r| !alive.contains(*r)).cloned().collect();
        for r in dead {
            if self.exists(&r)? {
                self.delete_dead(&r)?;
            }
        }
        Ok(())
    }

    /// Deletes an object and the origins it is the source of; the objects those origins held
    /// are garbage-collected.
    fn delete_dead(&mut self, r: &Reference) -> Result<()> {
        let old = self.document(r.as_str())?;
        if old.is_some() {
            self.write(Entity::Ooi, r.as_str(), old, None, vec![], None)?;
        }
        let mut orphans = Vec::new();
        for origin in self.origins_of(r)? {
            if origin.source == *r {
                self.remove_origin(&origin)?;
                orphans.extend(origin.result.into_iter().filter(|x| x != r));
            }
        }
        if !orphans.is_empty() {
            self.collect_garbage(orphans)?;
        }
        Ok(())
    }

    fn commit(self) -> Result<Outcome> {
        let mut outcome = self.outcome;
        if outcome.events.is_empty() {
            // Nothing changed: nothing to make durable.
            return Ok(outcome);
        }
        outcome.tx = Some(self.tx.commit()?);
        Ok(outcome)
    }
}
