//! One organisation's graph: every API-level call is one store transaction, so the graph is
//! never seen half-updated, and every change it makes is in the event log of that transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use octo_model::{Catalog, Ooi, Reference};
use octo_store::{AsOf, EventId, Reader, Store, Timestamp, Transaction, TxReceipt, ValidTime};
use serde_json::Value as Json;

use crate::change::{Change, Entity, Operation};
use crate::error::{GraphError, Result};
use crate::inference::{setting_key, Changes, InferenceContext, Inferrer, LevelChange, ObjectChange};
use crate::origin::{Origin, OriginType};
use crate::scan::{self, profile_key, Edge, InheritanceStep, LevelGraph, ScanProfileRecord};

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
    /// For each type, the types whose capped references can point at it (see `edges_of`).
    capped_referrers: CappedReferrers,
    /// For each type, the types whose references can point at it (for trees).
    pub(crate) referrers: foldhash::HashMap<String, Vec<String>>,
    /// The rule engine run inside every write, if any.
    inferrer: Option<Arc<dyn Inferrer>>,
    /// Types whose objects neither pass nor receive levels (no capped reference either way),
    /// so creating or changing one needs no level maintenance.
    level_inert: foldhash::HashSet<String>,
}

impl Graph {
    /// A graph over `store`, typed by `catalog`.
    pub fn new(store: Arc<dyn Store>, catalog: Catalog) -> Self {
        let capped_referrers: CappedReferrers =
            catalog.types().map(|t| (t.name.clone(), referrer_types(&catalog, &t.name, true))).collect();
        let referrers = catalog.types().map(|t| (t.name.clone(), referrer_types(&catalog, &t.name, false))).collect();
        let level_inert = catalog
            .types()
            .filter(|t| {
                !t.references().any(|f| f.reference().is_some_and(is_capped))
                    && capped_referrers.get(&t.name).is_none_or(Vec::is_empty)
            })
            .map(|t| t.name.clone())
            .collect();
        Graph { store, catalog, capped_referrers, referrers, inferrer: None, level_inert }
    }

    /// This graph with a rule engine that runs inside every write transaction.
    pub fn with_inferrer(mut self, inferrer: Arc<dyn Inferrer>) -> Self {
        self.inferrer = Some(inferrer);
        self
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
        Ok(Session {
            tx,
            catalog: &self.catalog,
            capped_referrers: &self.capped_referrers,
            level_inert: &self.level_inert,
            valid,
            cause,
            outcome: Outcome::default(),
            scan_seeds: Vec::new(),
            scan_raise: Vec::new(),
            cache: Default::default(),
            inferrer: self.inferrer.as_deref(),
            changes: Changes::default(),
            gone: Default::default(),
            reads: Default::default(),
        })
    }

    /// Stores an organisation setting (`None` removes it); rules that read it re-run in the
    /// same transaction.
    pub fn put_setting(&self, name: &str, value: Option<Json>, valid_time: Option<Timestamp>) -> Result<Outcome> {
        let mut s = self.session(valid_time, format!("put_setting {name}"))?;
        let key = setting_key(name);
        let old = s.document(&key)?;
        if old != value {
            s.write(Entity::Setting, &key, old.clone(), value.clone(), vec![], None)?;
            s.changes.settings.push(crate::inference::SettingChange { name: name.to_owned(), old, new: value });
        }
        s.commit()
    }

    /// An organisation setting as of a time.
    pub fn setting(&self, name: &str, at: AsOf) -> Result<Option<Json>> {
        let snap = self.store.snapshot()?;
        InferenceContext::over(&*snap, &self.catalog, at).setting(name)
    }

    /// The organisation settings whose names start with `prefix`, as of a time, by name.
    pub fn settings(&self, prefix: &str, at: AsOf) -> Result<Vec<(String, Json)>> {
        let snap = self.store.snapshot()?;
        let mut out = Vec::new();
        let mut failure = None;
        snap.scan_type("Setting", at, &mut |v| {
            let name = v.key.strip_prefix(crate::inference::SETTING_PREFIX).unwrap_or_default();
            if name.starts_with(prefix) {
                match decode::<Json>(&v.key, &v.doc) {
                    Ok(value) => out.push((name.to_owned(), value)),
                    Err(e) => {
                        failure = Some(e);
                        return false;
                    }
                }
            }
            true
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Re-runs every bit on every object it consumes, and every inference origin no bit claims
    /// any more, in one transaction. On a graph kept by incremental inference this writes
    /// nothing; the property tests check that.
    pub fn recalculate_bits(&self, valid_time: Option<Timestamp>) -> Result<Outcome> {
        let Some(inferrer) = self.inferrer.clone() else { return Ok(Outcome::default()) };
        let mut s = self.session(valid_time, "recalculate_bits".into())?;
        let runs = {
            let ctx = s.context();
            let mut runs: BTreeSet<(String, Reference)> = inferrer.all_runs(&ctx)?.into_iter().collect();
            runs.extend(ctx.inference_origins()?.into_iter().map(|o| (o.method, o.source)));
            runs
        };
        s.run_inferences(runs.into_iter().collect())?;
        s.commit()
    }

    /// Runs `f` with a read-only inference view of the graph as of `at` (dry runs of bits).
    pub fn with_context<T>(&self, at: AsOf, f: impl FnOnce(&InferenceContext<'_>) -> Result<T>) -> Result<T> {
        let snap = self.store.snapshot()?;
        f(&InferenceContext::over(&*snap, &self.catalog, at))
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
        self.delete_objects(std::slice::from_ref(reference), valid_time)
    }

    /// [`Graph::delete_object`] for many objects in one transaction (Octopoes' delete_many):
    /// all go, or, when one does not exist, none.
    pub fn delete_objects(&self, references: &[Reference], valid_time: Option<Timestamp>) -> Result<Outcome> {
        let cause = match references {
            [one] => format!("delete_object {one}"),
            many => format!("delete_objects ({})", many.len()),
        };
        let mut s = self.session(valid_time, cause)?;
        for reference in references {
            if s.document(reference.as_str())?.is_none() {
                return Err(GraphError::NotFound(format!("object '{reference}' not found")));
            }
        }
        for reference in references {
            if s.document(reference.as_str())?.is_none() {
                continue; // went with an object deleted before it
            }
            for origin in s.origins_of(reference)? {
                if origin.source != *reference {
                    let mut kept = origin.clone();
                    kept.result.retain(|r| r != reference);
                    s.write_origin(&kept, Some(&origin))?;
                }
            }
            s.delete_dead(reference)?;
        }
        s.commit()
    }

    /// Declares a scan level (0–4) on an object, or with `None` withdraws the declaration so the
    /// object inherits again. Inherited levels change in the same transaction.
    pub fn set_scan_profile(
        &self,
        reference: &Reference,
        level: Option<u8>,
        user_id: Option<i64>,
        valid_time: Option<Timestamp>,
    ) -> Result<Outcome> {
        self.set_scan_profiles(&[(reference.clone(), level)], user_id, valid_time)
    }

    /// Declares (or withdraws) many scan levels in one transaction (Octopoes'
    /// `scan_profiles/save_many`); one missing object or bad level refuses them all.
    pub fn set_scan_profiles(
        &self,
        profiles: &[(Reference, Option<u8>)],
        user_id: Option<i64>,
        valid_time: Option<Timestamp>,
    ) -> Result<Outcome> {
        if let Some((_, Some(l))) = profiles.iter().find(|(_, l)| l.is_some_and(|l| l > 4)) {
            return Err(GraphError::Invalid(format!("scan level {l} is not 0–4")));
        }
        let cause = match profiles {
            [(r, _)] => format!("set_scan_profile {r}"),
            _ => format!("set_scan_profile x{}", profiles.len()),
        };
        let mut s = self.session(valid_time, cause)?;
        for (reference, level) in profiles {
            if !s.exists(reference)? {
                return Err(GraphError::NotFound(format!("object '{reference}' not found")));
            }
            s.declare_level(reference, *level, user_id)?;
        }
        s.commit()
    }

    /// An object's scan profile as Octopoes reports it (`declared`, `inherited` or `empty`).
    pub fn scan_profile(&self, reference: &Reference, at: AsOf) -> Result<octo_model::ScanProfile> {
        let snap = self.store.snapshot()?;
        if snap.get(reference.as_str(), at)?.is_none() {
            return Err(GraphError::NotFound(format!("object '{reference}' not found at {}", at.valid_time)));
        }
        profile_of(&*snap, reference, at)
    }

    /// Recomputes every inherited level from scratch and writes what differs (nothing, when the
    /// incremental maintenance is right; the property tests check that).
    pub fn recalculate_scan_profiles(&self, valid_time: Option<Timestamp>) -> Result<Outcome> {
        let mut s = self.session(valid_time, "recalculate_scan_profiles".into())?;
        let profiles: Vec<ScanProfileRecord> = crate::query::collect_type(&*s.tx, "ScanProfile", s.at(), decode)?;
        let mut declared = BTreeMap::new();
        let mut inherited = BTreeMap::new();
        for p in profiles {
            if p.scan_profile_type == "declared" {
                declared.insert(p.reference, p.level);
            } else {
                inherited.insert(p.reference, p.level);
            }
        }
        let computed = scan::compute_all(&mut SessionLevels(&s), &declared)?;
        for (r, level) in &computed {
            if inherited.get(r) != Some(level) {
                s.apply_level(r, *level)?;
            }
        }
        for r in inherited.keys() {
            if !computed.contains_key(r) {
                s.apply_level(r, 0)?;
            }
        }
        s.commit()
    }

    /// The path of objects that explains an object's level, ending at the declared one.
    pub fn inheritance(&self, reference: &Reference, valid_time: Option<Timestamp>) -> Result<Vec<InheritanceStep>> {
        // A read: a snapshot, never the write transaction (which would hold up every writer).
        let snap = self.store.snapshot()?;
        let at = AsOf::valid(valid_time.unwrap_or_else(Timestamp::now));
        let mut levels = ReaderLevels { reader: &*snap, catalog: &self.catalog, capped: &self.capped_referrers, at };
        if !levels.exists(reference)? {
            return Err(GraphError::NotFound(format!("object '{reference}' not found")));
        }
        scan::explain(&mut levels, reference)
    }

    /// An object as of a time, with its scan profile.
    pub fn get(&self, reference: &Reference, at: AsOf) -> Result<Ooi> {
        let snap = self.store.snapshot()?;
        let version = snap
            .get(reference.as_str(), at)?
            .ok_or_else(|| GraphError::NotFound(format!("object '{reference}' not found at {}", at.valid_time)))?;
        let mut ooi = decode_ooi(&self.catalog, &version.key, &version.doc)?;
        ooi.scan_profile = Some(profile_of(&*snap, reference, at)?);
        Ok(ooi)
    }

    /// The origins that hold `reference` or look at it, as of a time.
    pub fn origins(&self, reference: &Reference, at: AsOf) -> Result<Vec<Origin>> {
        let snap = self.store.snapshot()?;
        snap.referrers(reference.as_str(), Some("Origin"), at)?.iter().map(|v| decode(&v.key, &v.doc)).collect()
    }

    /// An origin by id, as of a time.
    pub fn origin(&self, origin_id: &str, at: AsOf) -> Result<Option<Origin>> {
        let snap = self.store.snapshot()?;
        snap.get(origin_id, at)?.map(|v| decode(&v.key, &v.doc)).transpose()
    }
}

/// The scan profile an object shows as of `at`.
pub(crate) fn profile_of(reader: &dyn Reader, reference: &Reference, at: AsOf) -> Result<octo_model::ScanProfile> {
    Ok(as_profile(reference, read_profile(reader, reference, at)?))
}

/// [`profile_of`] for several objects, in one batched read (the objects of a page or a tree).
pub(crate) fn profiles_of(reader: &dyn Reader, refs: &[&Reference], at: AsOf) -> Result<Vec<octo_model::ScanProfile>> {
    let keys: Vec<String> = refs.iter().map(|r| profile_key(r)).collect();
    let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
    let versions = reader.get_many(&asked, at)?;
    refs.iter()
        .zip(versions)
        .zip(&keys)
        .map(|((r, v), key)| Ok(as_profile(r, v.map(|v| decode(key, &v.doc)).transpose()?)))
        .collect()
}

/// The profile an object shows: its stored one, or the empty profile when it has none.
fn as_profile(reference: &Reference, stored: Option<ScanProfileRecord>) -> octo_model::ScanProfile {
    let record = stored.unwrap_or_else(|| ScanProfileRecord {
        scan_profile_type: "empty".into(),
        reference: reference.clone(),
        level: 0,
        user_id: None,
    });
    octo_model::ScanProfile {
        scan_profile_type: record.scan_profile_type,
        reference: record.reference,
        level: record.level,
        user_id: record.user_id,
    }
}

/// Decodes a stored object: in one pass when it is as this system writes it, else through its
/// JSON, which names what is wrong.
pub(crate) fn decode_ooi(catalog: &Catalog, key: &str, bytes: &[u8]) -> Result<Ooi> {
    if let Some(ooi) = catalog.ooi_from_stored_bytes(key, bytes) {
        return Ok(ooi);
    }
    Ok(catalog.ooi_from_stored(key, decode(key, bytes)?)?)
}

/// Decodes a stored JSON record; a record that does not decode is corruption, named by its key.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T> {
    serde_json::from_slice(bytes).map_err(|e| GraphError::Corrupt { key: key.to_owned(), message: e.to_string() })
}

/// An object's stored scan profile, if it has one (objects without one have the empty profile).
pub(crate) fn read_profile(reader: &dyn Reader, r: &Reference, at: AsOf) -> Result<Option<ScanProfileRecord>> {
    let key = profile_key(r);
    reader.get(&key, at)?.map(|v| decode(&key, &v.doc)).transpose()
}

/// An object's level and whether it is declared, from its stored profile (none: level 0).
fn level_of(profile: Option<&ScanProfileRecord>) -> (u8, bool) {
    profile.map_or((0, false), |p| (p.level, p.scan_profile_type == "declared"))
}

/// Propagation edges of an object: its own capped references, and the capped references of
/// other objects to it (see [`read_edges_many`]).
fn read_edges(
    reader: &dyn Reader,
    catalog: &Catalog,
    capped: &CappedReferrers,
    r: &Reference,
    at: AsOf,
) -> Result<Vec<Edge>> {
    let edges = read_edges_many(reader, catalog, capped, std::slice::from_ref(r), &Default::default(), at)?;
    Ok(edges.edges.into_iter().next().flatten().unwrap_or_default())
}

/// What [`read_edges_many`] read: the edges asked for, and what the documents of the referrers
/// it confirmed showed of them (they exist, and their own references).
struct EdgeReads {
    /// Per object asked, its edges; None for an object that does not exist.
    edges: Vec<Option<Vec<Edge>>>,
    /// The outgoing edges of each referrer read on the way, which therefore exists.
    referrers: Vec<(Reference, Vec<Edge>)>,
}

/// [`read_edges`] of several objects in a few batched reads (documents, the reference index,
/// then the referrers' documents). `outgoing` holds the outgoing edges of objects already
/// known to exist, whose documents are not read again. Only referrers of the `capped` types are
/// read, the only ones that can pass levels.
fn read_edges_many(
    reader: &dyn Reader,
    catalog: &Catalog,
    capped: &CappedReferrers,
    refs: &[Reference],
    outgoing: &foldhash::HashMap<Reference, Vec<Edge>>,
    at: AsOf,
) -> Result<EdgeReads> {
    let keys: Vec<&str> = refs.iter().map(Reference::as_str).collect();
    let unknown: Vec<&str> =
        keys.iter().zip(refs).filter(|(_, r)| !outgoing.contains_key(*r)).map(|(k, _)| *k).collect();
    let mut read = reader.get_many(&unknown, at)?.into_iter();
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        out.push(match outgoing.get(r) {
            Some(edges) => Some(edges.clone()),
            None => match read.next().flatten() {
                Some(v) => Some(scan::outgoing_edges(catalog, &decode::<Json>(&v.key, &v.doc)?)),
                None => None,
            },
        });
    }
    let mut referrers = Vec::new();
    let types_of = |r: &Reference| capped.get(r.type_name()).map(Vec::as_slice).unwrap_or_default();
    let expand: Vec<usize> = (0..refs.len()).filter(|&i| out[i].is_some() && !types_of(&refs[i]).is_empty()).collect();
    if expand.is_empty() {
        return Ok(EdgeReads { edges: out, referrers });
    }
    let targets: Vec<&str> = expand.iter().map(|&i| keys[i]).collect();
    let candidates: Vec<Vec<String>> = reader
        .referrer_keys_many(&targets)?
        .into_iter()
        .zip(&expand)
        .map(|(keys, &i)| {
            let types = types_of(&refs[i]);
            keys.into_iter()
                .filter(|k| {
                    let type_name = k.split('|').next().unwrap_or_default();
                    types.iter().any(|t| t == type_name)
                })
                .collect()
        })
        .collect();
    let mut wanted: Vec<&str> = candidates.iter().flatten().map(String::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    // Each referrer's document is decoded once, however many of the objects it points at.
    let mut docs: foldhash::HashMap<&str, (Vec<String>, Json)> = foldhash::HashMap::default();
    for (k, v) in wanted.iter().copied().zip(reader.get_many(&wanted, at)?) {
        if let Some(v) = v {
            let doc: Json = decode(&v.key, &v.doc)?;
            referrers.push((Reference::from_trusted(k), scan::outgoing_edges(catalog, &doc)));
            docs.insert(k, (v.refs, doc));
        }
    }
    for (&i, candidates) in expand.iter().zip(&candidates) {
        let target = &refs[i];
        let Some(edges) = out[i].as_mut() else { continue };
        // As `Reader::referrers_among` answers: the candidates, in order, that still reference it.
        for (k, (refs, doc)) in candidates.iter().filter_map(|k| docs.get_key_value(k.as_str())) {
            if refs.iter().any(|r| r == target.as_str()) {
                edges.extend(scan::incoming_edges(catalog, &Reference::from_trusted(*k), doc, target));
            }
        }
    }
    Ok(EdgeReads { edges: out, referrers })
}

/// For each type, the types whose capped references can point at it.
type CappedReferrers = foldhash::HashMap<String, Vec<String>>;

/// The graph as level propagation sees it through a read-only snapshot (explanations).
struct ReaderLevels<'a> {
    reader: &'a dyn Reader,
    catalog: &'a Catalog,
    capped: &'a CappedReferrers,
    at: AsOf,
}

impl LevelGraph for ReaderLevels<'_> {
    fn exists(&mut self, r: &Reference) -> Result<bool> {
        Ok(self.reader.get(r.as_str(), self.at)?.is_some())
    }
    fn level(&mut self, r: &Reference) -> Result<(u8, bool)> {
        Ok(level_of(read_profile(self.reader, r, self.at)?.as_ref()))
    }
    fn edges(&mut self, r: &Reference) -> Result<Vec<Edge>> {
        read_edges(self.reader, self.catalog, self.capped, r, self.at)
    }
}

/// The stored form of an object: its JSON without the scan profile, which lives apart.
pub(crate) fn stored_document(ooi: &Ooi) -> Json {
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
    capped_referrers: &'a CappedReferrers,
    level_inert: &'a foldhash::HashSet<String>,
    valid: Timestamp,
    cause: String,
    outcome: Outcome,
    /// Objects whose inherited level may have changed, with the highest level the change could
    /// have carried (see [`scan::recompute`]).
    scan_seeds: Vec<(Reference, u8)>,
    /// Objects whose declared level rose: their level is pushed outward.
    scan_raise: Vec<Reference>,
    /// Reads level maintenance repeats, valid until an object is written in this session.
    cache: std::cell::RefCell<SessionCache>,
    /// The rule engine, if any.
    inferrer: Option<&'a dyn Inferrer>,
    /// What changed since inference last looked.
    changes: Changes,
    /// Last documents of objects deleted in this session.
    gone: std::collections::HashMap<Reference, Json>,
    /// What rules read (walks, settings), valid until a write that could change it.
    reads: std::cell::RefCell<crate::inference::ReadCache>,
}

/// What level maintenance reads again and again within one session.
#[derive(Default)]
struct SessionCache {
    edges: foldhash::HashMap<Reference, Vec<Edge>>,
    /// The outgoing edges of objects whose documents were read (as referrers of others) but
    /// whose own referrers were not: half of what `edges` would hold for them.
    outgoing: foldhash::HashMap<Reference, Vec<Edge>>,
    exists: foldhash::HashMap<Reference, bool>,
    levels: foldhash::HashMap<Reference, (u8, bool)>,
}

/// The graph as level propagation sees it, read inside the session's transaction.
struct SessionLevels<'s, 'a>(&'s Session<'a>);

impl LevelGraph for SessionLevels<'_, '_> {
    fn exists(&mut self, r: &Reference) -> Result<bool> {
        self.0.exists(r)
    }
    fn level(&mut self, r: &Reference) -> Result<(u8, bool)> {
        self.0.stored_level(r)
    }
    fn edges(&mut self, r: &Reference) -> Result<Vec<Edge>> {
        self.0.edges_of(r)
    }
    fn prefetch(&mut self, refs: &[Reference], edges: bool) -> Result<()> {
        self.0.prefetch_levels(refs, edges)
    }
}

impl Session<'_> {
    fn stored_level(&self, r: &Reference) -> Result<(u8, bool)> {
        if let Some(l) = self.cache.borrow().levels.get(r) {
            return Ok(*l);
        }
        let level = level_of(read_profile(&*self.tx, r, self.at())?.as_ref());
        self.cache.borrow_mut().levels.insert(r.clone(), level);
        Ok(level)
    }

    /// Reads into the session's cache, in a few batched reads, whether each of `refs` exists,
    /// its level and, with `edges`, its propagation edges: what level maintenance is about to
    /// ask of each, one object at a time.
    fn prefetch_levels(&self, refs: &[Reference], edges: bool) -> Result<()> {
        // Only what is not known yet: a level read once, a document read once (as a referrer
        // of another object or for itself), referrers read once.
        let (mut no_level, mut unread): (Vec<Reference>, Vec<Reference>) = {
            let cache = self.cache.borrow();
            let no_level = refs.iter().filter(|r| !cache.levels.contains_key(*r)).cloned().collect();
            let unread = refs
                .iter()
                .filter(|r| if edges { !cache.edges.contains_key(*r) } else { !cache.exists.contains_key(*r) })
                .cloned()
                .collect();
            (no_level, unread)
        };
        for want in [&mut no_level, &mut unread] {
            want.sort_unstable();
            want.dedup();
        }
        let at = self.at();
        // One object is read as cheaply alone.
        if no_level.len() >= 2 {
            let profile_keys: Vec<String> = no_level.iter().map(profile_key).collect();
            let profile_keys: Vec<&str> = profile_keys.iter().map(String::as_str).collect();
            let profiles = self.tx.get_many(&profile_keys, at)?;
            let mut cache = self.cache.borrow_mut();
            for ((r, key), v) in no_level.into_iter().zip(&profile_keys).zip(profiles) {
                let p: Option<ScanProfileRecord> = v.map(|v| decode(key, &v.doc)).transpose()?;
                cache.levels.insert(r, level_of(p.as_ref()));
            }
        }
        if unread.len() < 2 {
            return Ok(());
        }
        if edges {
            let found = {
                let cache = self.cache.borrow();
                read_edges_many(&*self.tx, self.catalog, self.capped_referrers, &unread, &cache.outgoing, at)?
            };
            let mut cache = self.cache.borrow_mut();
            for (r, e) in unread.into_iter().zip(found.edges) {
                cache.outgoing.remove(&r);
                cache.exists.insert(r.clone(), e.is_some());
                cache.edges.insert(r, e.unwrap_or_default());
            }
            for (r, outgoing) in found.referrers {
                cache.exists.insert(r.clone(), true);
                if !cache.edges.contains_key(&r) {
                    cache.outgoing.insert(r, outgoing);
                }
            }
        } else {
            let keys: Vec<&str> = unread.iter().map(Reference::as_str).collect();
            let found = self.tx.get_many(&keys, at)?;
            let mut cache = self.cache.borrow_mut();
            for (r, v) in unread.into_iter().zip(found) {
                cache.exists.insert(r, v.is_some());
            }
        }
        Ok(())
    }

    /// Propagation edges of an object (see [`read_edges`]), cached for the session.
    fn edges_of(&self, r: &Reference) -> Result<Vec<Edge>> {
        if let Some(e) = self.cache.borrow().edges.get(r) {
            return Ok(e.clone());
        }
        let edges = read_edges(&*self.tx, self.catalog, self.capped_referrers, r, self.at())?;
        self.cache.borrow_mut().edges.insert(r.clone(), edges.clone());
        Ok(edges)
    }

    fn write_profile(&mut self, r: &Reference, record: Option<ScanProfileRecord>) -> Result<()> {
        let level = level_of(record.as_ref());
        if self.inferrer.is_some() {
            let (before, _) = self.stored_level(r)?;
            self.note_level_change(r, before, level.0);
        }
        self.cache.borrow_mut().levels.insert(r.clone(), level);
        let key = profile_key(r);
        let old = self.tx.get(&key, self.at())?.map(|v| decode(&key, &v.doc)).transpose()?;
        let new = record.map(|p| serde_json::to_value(p).unwrap_or(Json::Null));
        self.write(Entity::ScanProfile, &key, old, new, vec![], None)
    }

    /// Stores an inherited level (0 removes the record); declared objects are left alone.
    fn apply_level(&mut self, r: &Reference, level: u8) -> Result<()> {
        let (stored, declared) = self.stored_level(r)?;
        if declared || stored == level || !self.exists(r)? {
            return Ok(());
        }
        let inherited = |level: u8| {
            (level > 0).then(|| ScanProfileRecord {
                scan_profile_type: "inherited".into(),
                reference: r.clone(),
                level,
                user_id: None,
            })
        };
        // The old record is the inherited one the level cache describes: rebuilding it spares a
        // read, which would flush this transaction's buffered writes once per object.
        let old = inherited(stored).map(|p| serde_json::to_value(p).unwrap_or(Json::Null));
        let new = inherited(level);
        self.cache.borrow_mut().levels.insert(r.clone(), (level, false));
        let new = new.map(|p| serde_json::to_value(p).unwrap_or(Json::Null));
        self.note_level_change(r, stored, level);
        self.write(Entity::ScanProfile, &profile_key(r), old, new, vec![], None)
    }

    /// Writes a declared level (or withdraws it) and seeds level maintenance.
    fn declare_level(&mut self, reference: &Reference, level: Option<u8>, user_id: Option<i64>) -> Result<()> {
        let (old_level, was_declared) = self.stored_level(reference)?;
        match level {
            Some(l) => {
                let record = ScanProfileRecord {
                    scan_profile_type: "declared".into(),
                    reference: reference.clone(),
                    level: l,
                    user_id,
                };
                self.write_profile(reference, Some(record))?;
                if l < old_level {
                    // What this object passed on may have been more than it passes now.
                    for e in self.edges_of(reference)? {
                        self.scan_seeds.push((e.neighbour, old_level));
                    }
                }
                self.scan_raise.push(reference.clone());
            }
            None if was_declared => {
                self.write_profile(reference, None)?;
                self.scan_seeds.push((reference.clone(), old_level));
                for e in self.edges_of(reference)? {
                    self.scan_seeds.push((e.neighbour, old_level));
                }
            }
            None => {}
        }
        Ok(())
    }

    fn note_level_change(&mut self, r: &Reference, old: u8, new: u8) {
        if self.inferrer.is_some() && old != new {
            self.changes.levels.push(LevelChange { reference: r.clone(), old, new });
        }
    }

    /// Records what an object change means for levels; runs before the change is written.
    fn note_object_change(&mut self, r: &Reference, old: Option<&Json>, new: Option<&Json>) -> Result<()> {
        if new.is_some() && self.level_inert.contains(r.type_name()) {
            // Inherits nothing and passes nothing on; a declared level stays as it is.
            return Ok(());
        }
        match (old, new) {
            (None, Some(_)) => self.scan_seeds.push((r.clone(), 0)),
            (Some(old), Some(new)) => {
                let before = scan::outgoing_edges(self.catalog, old);
                let after = scan::outgoing_edges(self.catalog, new);
                let (own, _) = self.stored_level(r)?;
                for e in &before {
                    if !after.contains(e) {
                        let (theirs, _) = self.stored_level(&e.neighbour)?;
                        self.scan_seeds.push((e.neighbour.clone(), own));
                        self.scan_seeds.push((r.clone(), theirs));
                    }
                }
                for e in &after {
                    if !before.contains(e) {
                        self.scan_seeds.push((e.neighbour.clone(), 0));
                    }
                }
                self.scan_seeds.push((r.clone(), 0));
            }
            (Some(_), None) => {
                let (own, _) = self.stored_level(r)?;
                if own > 0 {
                    for e in self.edges_of(r)? {
                        self.scan_seeds.push((e.neighbour, own));
                    }
                }
                self.write_profile(r, None)?;
            }
            (None, None) => {}
        }
        Ok(())
    }

    /// Brings inherited levels up to date with this session's changes.
    fn maintain_scan_levels(&mut self) -> Result<()> {
        if self.scan_seeds.is_empty() && self.scan_raise.is_empty() {
            return Ok(());
        }
        let seeds = std::mem::take(&mut self.scan_seeds);
        let raise = std::mem::take(&mut self.scan_raise);
        let levels = {
            let mut g = SessionLevels(self);
            let mut levels = scan::recompute(&mut g, &seeds)?;
            let mut sources = Vec::new();
            for r in raise {
                let (l, _) = g.level(&r)?;
                sources.push((r, l));
            }
            scan::raise(&mut g, sources, &mut levels)?;
            levels
        };
        for (r, level) in levels {
            self.apply_level(&r, level)?;
        }
        Ok(())
    }

    fn at(&self) -> AsOf {
        AsOf::valid(self.valid)
    }

    fn document(&self, key: &str) -> Result<Option<Json>> {
        self.tx.get(key, self.at())?.map(|v| decode(key, &v.doc)).transpose()
    }

    fn exists(&self, key: &Reference) -> Result<bool> {
        if let Some(e) = self.cache.borrow().exists.get(key) {
            return Ok(*e);
        }
        let e = self.tx.get(key.as_str(), self.at())?.is_some();
        self.cache.borrow_mut().exists.insert(key.clone(), e);
        Ok(e)
    }

    fn origin(&self, id: &str) -> Result<Option<Origin>> {
        self.tx.get(id, self.at())?.map(|v| decode(id, &v.doc)).transpose()
    }

    /// Origins whose source is `r` or whose result lists it.
    fn origins_of(&self, r: &Reference) -> Result<Vec<Origin>> {
        self.tx.referrers(r.as_str(), Some("Origin"), self.at())?.iter().map(|v| decode(&v.key, &v.doc)).collect()
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
        if entity == Entity::Setting {
            self.reads.borrow_mut().forget_setting(key);
        }
        if entity == Entity::Ooi {
            let r = Reference::from_trusted(key);
            self.note_object_change(&r, old.as_ref(), new.as_ref())?;
            let mut cache = self.cache.borrow_mut();
            cache.edges.clear();
            cache.outgoing.clear();
            cache.exists.clear();
            drop(cache);
            if self.inferrer.is_some() {
                self.reads.borrow_mut().invalidate(r.type_name());
                match (&old, &new) {
                    (Some(o), None) => {
                        self.gone.insert(r.clone(), o.clone());
                    }
                    (_, Some(_)) => {
                        self.gone.remove(&r);
                    }
                    _ => {}
                }
                self.changes.objects.push(ObjectChange { reference: r, old: old.clone(), new: new.clone() });
            }
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
        // A merged document must still be a valid object (a stored document from an older
        // schema may not be); its references feed the reverse index. A new object was validated
        // when it was built.
        let refs = if old.is_some() {
            let checked = self.catalog.ooi_from_stored_json(&merged)?;
            checked.references().map(|(_, r)| r.to_string()).collect()
        } else {
            ooi.references().map(|(_, r)| r.to_string()).collect()
        };
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
        let mut seen = std::collections::HashSet::with_capacity(oois.len());
        for o in oois {
            if seen.insert(o.primary_key()) {
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
        if origin.result.is_empty() {
            // An origin that holds nothing is stale (Octopoes #3561). Octopoes keeps empty
            // inference origins; we do not, so a bit that derives nothing costs no record.
            if let Some(old) = &old {
                self.remove_origin(old)?;
            }
        } else {
            self.write_origin_until(&origin, old.as_ref(), end)?;
        }
        if let Some(old) = old {
            let kept: std::collections::HashSet<&Reference> = origin.result.iter().collect();
            let dropped: Vec<Reference> = old.result.into_iter().filter(|r| !kept.contains(r)).collect();
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

    fn context(&self) -> InferenceContext<'_> {
        InferenceContext {
            reader: &*self.tx,
            catalog: self.catalog,
            at: self.at(),
            gone: Some(&self.gone),
            reads: Some(&self.reads),
        }
    }

    /// Runs each (bit, source) whose source is alive and saves what it derives as that bit's
    /// inference origin on the source.
    fn run_inferences(&mut self, runs: Vec<(String, Reference)>) -> Result<()> {
        let Some(inferrer) = self.inferrer else { return Ok(()) };
        for (bit, source) in runs {
            if !self.exists(&source)? {
                continue;
            }
            let Some(result) = inferrer.run(&self.context(), &bit, &source)? else { continue };
            let origin = Origin {
                origin_type: OriginType::Inference,
                method: bit,
                source,
                source_method: None,
                result: vec![],
                task_id: None,
            };
            self.save_origin(origin, &result, None)?;
        }
        Ok(())
    }

    /// Levels and inferences to a fixpoint: each round re-runs the bits the previous round's
    /// changes affect, until a round changes nothing.
    fn settle(&mut self) -> Result<()> {
        let mut rounds = 0;
        loop {
            self.maintain_scan_levels()?;
            let Some(inferrer) = self.inferrer else { return Ok(()) };
            let changes = std::mem::take(&mut self.changes);
            if changes.is_empty() {
                return Ok(());
            }
            rounds += 1;
            if rounds > crate::inference::MAX_INFERENCE_ROUNDS {
                return Err(GraphError::Invalid(format!(
                    "inference did not settle after {} rounds; the last round changed {}",
                    crate::inference::MAX_INFERENCE_ROUNDS,
                    changes.objects.iter().take(5).map(|c| c.reference.as_str()).collect::<Vec<_>>().join(", ")
                )));
            }
            let mut runs = inferrer.affected(&self.context(), &changes)?;
            let mut seen = std::collections::HashSet::new();
            runs.retain(|r| seen.insert(r.clone()));
            self.run_inferences(runs)?;
        }
    }

    fn commit(mut self) -> Result<Outcome> {
        self.settle()?;
        let mut outcome = self.outcome;
        if outcome.events.is_empty() {
            // Nothing changed: nothing to make durable.
            return Ok(outcome);
        }
        outcome.tx = Some(self.tx.commit()?);
        Ok(outcome)
    }
}

/// The types that can reference an object of `type_name` (a reference field whose target is the
/// type or an ancestor of it); with `capped_only`, only through fields with a scan-level cap,
/// which are the only ones that pass levels. Reading referrers type by type keeps origins and
/// unrelated records out of the read.
pub(crate) fn referrer_types(catalog: &Catalog, type_name: &str, capped_only: bool) -> Vec<String> {
    let mut out = Vec::new();
    for t in catalog.types().filter(|t| !t.is_abstract) {
        let refers = t.references().any(|f| {
            f.reference().is_some_and(|spec| (!capped_only || is_capped(spec)) && catalog.is_a(type_name, &spec.target))
        });
        if refers {
            out.push(t.name.clone());
        }
    }
    out
}

/// Whether a reference field passes levels at all (a missing cap blocks that direction).
fn is_capped(spec: &octo_model::schema::RefSpec) -> bool {
    spec.max_issue_scan_level.is_some() || spec.max_inherit_scan_level.is_some()
}
