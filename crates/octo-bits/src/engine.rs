//! The engine: which runs a change affects, and running one bit on one source.
//!
//! Octopoes stores an `OriginParameter` record for every (run, parameter object) pair and
//! re-runs bits from a task queue. Here the relation paths are walked instead: forward from a
//! changed parameter object to the sources it concerns, and backward from a source to gather
//! its parameters when it runs. Nothing is stored but the inference origins themselves, and
//! every run happens inside the transaction that caused it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use octo_graph::{Changes, Graph, GraphError, InferenceContext, Inferrer, ObjectPath};
use octo_model::{Catalog, Ooi, Reference};
use octo_store::{AsOf, Timestamp};
use serde::Serialize;
use serde_json::{json, Map, Value as Json};

use crate::definition::{Bit, BitInput};

/// The name of the organisation setting that enables and disables bits.
pub const BITS_SETTING: &str = "bits";

/// Which bits run, beyond their defaults: from the config file, and per organisation (stored in
/// the organisation's graph as the `bits` setting, same shape).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BitSwitches {
    /// Bits to run even if off by default.
    #[serde(default)]
    pub enabled: BTreeSet<String>,
    /// Bits not to run.
    #[serde(default)]
    pub disabled: BTreeSet<String>,
}

impl BitSwitches {
    /// The verdict of these switches on a bit, if they have one (disabled wins).
    fn verdict(&self, id: &str) -> Option<bool> {
        if self.disabled.contains(id) {
            Some(false)
        } else if self.enabled.contains(id) {
            Some(true)
        } else {
            None
        }
    }
}

struct CompiledBit {
    bit: Arc<dyn Bit>,
    /// For each parameter, the path from the consumed type back to the parameter type.
    params: Vec<ObjectPath>,
    /// From the consumed type to the `Config` objects that may hold this bit's config.
    config: Option<ObjectPath>,
    /// From a `Config`'s `ooi` back to the consumed objects it configures.
    config_reverse: Option<ObjectPath>,
}

/// What a change to an object of some type means for a bit.
#[derive(Clone)]
enum Trigger {
    /// The object is consumed by the bit: it runs on it.
    Consumed(usize),
    /// The object lies on a relation path of the bit (a parameter object, or an object a
    /// parameter or config path passes through): the path leads to the sources to re-run.
    /// Intermediate objects count because a path is only complete once all of them exist.
    OnPath(usize, Arc<ObjectPath>, Guard),
}

/// When a change to an intermediate object on a path can matter at all. Checking is a read or
/// two; a run it spares gathers every parameter of the source.
#[derive(Clone)]
enum Guard {
    /// The parameter object itself: always.
    Always,
    /// An object a parameter path passes through: only if some object of the previous step's
    /// type refers to it (otherwise no parameter reaches a source through it yet).
    ReferencedBy(String),
    /// An object a config path passes through: only if a `Config` of this bit hangs at the
    /// end of the path from it.
    ConfigAhead(Arc<ObjectPath>),
}

/// A set of bits, run by the graph inside each write transaction.
pub struct BitEngine {
    catalog: Catalog,
    bits: Vec<CompiledBit>,
    by_id: HashMap<String, usize>,
    defaults: BitSwitches,
    /// For each concrete type, the bits a change to an object of that type can affect.
    triggers: HashMap<String, Vec<Trigger>>,
    /// Runs and time per bit, by index.
    stats: Vec<RunCounters>,
}

#[derive(Default)]
struct RunCounters {
    runs: AtomicU64,
    nanos: AtomicU64,
}

/// How often a bit ran and how long it took, since the engine started (for metrics and for
/// finding the bit that dominates a slow write).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BitRunStats {
    /// The bit.
    pub id: String,
    /// Runs, including those that derived nothing.
    pub runs: u64,
    /// Time spent gathering inputs and running, in seconds.
    pub seconds: f64,
}

/// What `run-bit` shows: the inputs gathered and what the bit would derive.
#[derive(Debug, Clone, Serialize)]
pub struct DryRun {
    /// The bit.
    pub bit: String,
    /// The consumed object.
    pub source: Json,
    /// Its scan level.
    pub scan_level: u8,
    /// The parameter objects.
    pub parameters: Vec<Json>,
    /// The config used.
    pub config: Map<String, Json>,
    /// Whether the bit is enabled for this organisation.
    pub enabled: bool,
    /// Why it would derive nothing without running, if so.
    pub skipped: Option<String>,
    /// What it would derive.
    pub results: Vec<Json>,
}

fn compile_err(id: &str, m: impl std::fmt::Display) -> GraphError {
    GraphError::Invalid(format!("bit '{id}': {m}"))
}

impl BitEngine {
    /// Checks every bit against the catalogue (types, paths) and indexes what triggers it.
    pub fn new(catalog: Catalog, bits: Vec<Arc<dyn Bit>>, defaults: BitSwitches) -> Result<Self, GraphError> {
        let mut compiled = Vec::with_capacity(bits.len());
        let mut by_id = HashMap::new();
        let mut triggers: HashMap<String, Vec<Trigger>> = HashMap::new();
        for bit in bits {
            let def = bit.definition().clone();
            let id = def.id.as_str();
            catalog.get(&def.consumes).map_err(|e| compile_err(id, e))?;
            if by_id.insert(def.id.clone(), compiled.len()).is_some() {
                return Err(compile_err(id, "defined twice"));
            }
            let mut params = Vec::new();
            for p in &def.parameters {
                let forward = ObjectPath::parse(&format!("{}.{}", p.ooi_type, p.relation_path), &catalog)
                    .map_err(|e| compile_err(id, e))?;
                let reverse = forward.reversed().ok_or_else(|| {
                    compile_err(id, format!("parameter path '{}' must follow reference fields", p.relation_path))
                })?;
                if !catalog.is_a(&def.consumes, &reverse.start_type)
                    && !catalog.is_a(&reverse.start_type, &def.consumes)
                {
                    return Err(compile_err(
                        id,
                        format!(
                            "parameter path '{}' leads to {}, not {}",
                            p.relation_path, reverse.start_type, def.consumes
                        ),
                    ));
                }
                params.push((forward, reverse));
            }
            let (config, config_reverse) = match &def.config_ooi_relation_path {
                None => (None, None),
                Some(path) => {
                    let to_target = ObjectPath::parse(path, &catalog).map_err(|e| compile_err(id, e))?;
                    let config_reverse = to_target
                        .reversed()
                        .ok_or_else(|| compile_err(id, format!("config path '{path}' must follow reference fields")))?;
                    let config = ObjectPath::parse(&format!("{path}.<ooi[is Config]"), &catalog)
                        .map_err(|e| compile_err(id, e))?;
                    (Some(config), Some(config_reverse))
                }
            };
            // Each object type on a path, with the path from there to the sources: the rest of a
            // parameter path, or the way back along a config path.
            let mut on_path: Vec<(ObjectPath, Guard)> = Vec::new();
            for (forward, _) in &params {
                for i in 0..forward.segments.len() {
                    let start_type = forward.segments[i].source_type.clone();
                    let guard = match i {
                        0 => Guard::Always,
                        _ => Guard::ReferencedBy(forward.segments[i - 1].source_type.clone()),
                    };
                    on_path.push((ObjectPath { start_type, segments: forward.segments[i..].to_vec() }, guard));
                }
            }
            if let Some(path) = &def.config_ooi_relation_path {
                let to_configs =
                    ObjectPath::parse(&format!("{path}.<ooi[is Config]"), &catalog).map_err(|e| compile_err(id, e))?;
                let to_target = ObjectPath::parse(path, &catalog).map_err(|e| compile_err(id, e))?;
                // Every object after the consumed one, the config's target included: its
                // existence decides whether the config is reached.
                for i in 1..=to_target.segments.len() {
                    let prefix = ObjectPath {
                        start_type: to_target.start_type.clone(),
                        segments: to_target.segments[..i].to_vec(),
                    };
                    let ahead = ObjectPath {
                        start_type: to_configs.segments[i].source_type.clone(),
                        segments: to_configs.segments[i..].to_vec(),
                    };
                    if let Some(back) = prefix.reversed() {
                        on_path.push((back, Guard::ConfigAhead(Arc::new(ahead))));
                    }
                }
            }
            let b = compiled.len();
            for t in catalog.concrete_types(&def.consumes).map_err(|e| compile_err(id, e))? {
                triggers.entry(t.clone()).or_default().push(Trigger::Consumed(b));
            }
            for (path, guard) in on_path {
                let path = Arc::new(path);
                for t in catalog.concrete_types(&path.start_type).map_err(|e| compile_err(id, e))? {
                    triggers.entry(t.clone()).or_default().push(Trigger::OnPath(b, path.clone(), guard.clone()));
                }
            }
            let params = params.into_iter().map(|(_, reverse)| reverse).collect();
            compiled.push(CompiledBit { bit, params, config, config_reverse });
        }
        let stats = compiled.iter().map(|_| RunCounters::default()).collect();
        Ok(BitEngine { catalog, bits: compiled, by_id, defaults, triggers, stats })
    }

    /// Runs and time per bit, busiest first.
    pub fn run_stats(&self) -> Vec<BitRunStats> {
        let mut out: Vec<BitRunStats> = self
            .bits
            .iter()
            .zip(&self.stats)
            .map(|(c, s)| BitRunStats {
                id: c.bit.definition().id.clone(),
                runs: s.runs.load(Ordering::Relaxed),
                seconds: s.nanos.load(Ordering::Relaxed) as f64 / 1e9,
            })
            .collect();
        out.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        out
    }

    /// Starts the counts of [`BitEngine::run_stats`] again.
    pub fn reset_run_stats(&self) {
        for s in &self.stats {
            s.runs.store(0, Ordering::Relaxed);
            s.nanos.store(0, Ordering::Relaxed);
        }
    }

    /// The bits, in registration order.
    pub fn bits(&self) -> impl Iterator<Item = &Arc<dyn Bit>> {
        self.bits.iter().map(|c| &c.bit)
    }

    /// A bit by id.
    pub fn bit(&self, id: &str) -> Option<&Arc<dyn Bit>> {
        self.by_id.get(id).map(|&b| &self.bits[b].bit)
    }

    /// The organisation's switches as stored in its graph.
    fn org_switches(ctx: &InferenceContext<'_>) -> Result<BitSwitches, GraphError> {
        match ctx.setting(BITS_SETTING)? {
            None => Ok(BitSwitches::default()),
            Some(doc) => serde_json::from_value(doc)
                .map_err(|e| GraphError::Corrupt { key: format!("Setting|{BITS_SETTING}"), message: e.to_string() }),
        }
    }

    fn enabled_with(&self, org: &BitSwitches, b: usize) -> bool {
        let def = self.bits[b].bit.definition();
        org.verdict(&def.id).or_else(|| self.defaults.verdict(&def.id)).unwrap_or(def.default_enabled)
    }

    /// Whether a bit runs in the organisation `ctx` looks at.
    pub fn is_enabled(&self, ctx: &InferenceContext<'_>, id: &str) -> Result<bool, GraphError> {
        let Some(&b) = self.by_id.get(id) else { return Ok(false) };
        Ok(self.enabled_with(&Self::org_switches(ctx)?, b))
    }

    /// Gathers a run's input; `Err(reason)` when the bit would not run.
    fn gather(
        &self,
        ctx: &InferenceContext<'_>,
        b: usize,
        source: &Reference,
    ) -> Result<Result<BitInput<'_>, String>, GraphError> {
        let c = &self.bits[b];
        let def = c.bit.definition();
        let Some(doc) = ctx.document(source)? else { return Ok(Err(format!("'{source}' does not exist"))) };
        if !self.catalog.is_a(source.type_name(), &def.consumes) {
            return Ok(Err(format!("'{}' consumes {}, not {}", def.id, def.consumes, source.type_name())));
        }
        let level = ctx.level(source)?;
        if level < def.min_scan_level {
            return Ok(Err(format!("scan level {level} is below the bit's minimum {}", def.min_scan_level)));
        }
        let mut parameters: BTreeMap<Reference, Ooi> = BTreeMap::new();
        for p in &c.params {
            for (r, pdoc) in ctx.walk_cached(p, source, &doc)? {
                if let std::collections::btree_map::Entry::Vacant(slot) = parameters.entry(r) {
                    let ooi = ctx.decode_object(slot.key(), pdoc)?;
                    slot.insert(ooi);
                }
            }
        }
        let mut config = Map::new();
        if let Some(path) = &c.config {
            // Octopoes takes the last matching Config; key order makes "last" deterministic.
            for (_, cdoc) in ctx.walk_cached(path, source, &doc)? {
                if cdoc.get("bit_id").and_then(Json::as_str) == Some(def.id.as_str()) {
                    if let Some(Json::Object(m)) = cdoc.get("config") {
                        config = m.clone();
                    }
                }
            }
        }
        Ok(Ok(BitInput {
            source: ctx.decode_object(source, doc)?,
            parameters: parameters.into_values().collect(),
            config,
            valid_time: ctx.valid_time(),
            catalog: &self.catalog,
        }))
    }

    /// Runs a bit on an object without saving anything: the inputs it gathers, the config it
    /// finds and what it would derive (Octopoes' `tools/run_bit.py`).
    pub fn dry_run(&self, graph: &Graph, id: &str, source: &Reference, at: AsOf) -> Result<DryRun, GraphError> {
        let Some(&b) = self.by_id.get(id) else {
            return Err(GraphError::NotFound(format!("no bit '{id}'")));
        };
        graph.with_context(at, |ctx| {
            let Some(doc) = ctx.document(source)? else {
                return Err(GraphError::NotFound(format!("object '{source}' not found")));
            };
            let enabled = self.is_enabled(ctx, id)?;
            let scan_level = ctx.level(source)?;
            let mut out = DryRun {
                bit: id.to_owned(),
                source: doc,
                scan_level,
                parameters: vec![],
                config: Map::new(),
                enabled,
                skipped: None,
                results: vec![],
            };
            match self.gather(ctx, b, source)? {
                Err(reason) => out.skipped = Some(reason),
                Ok(input) => {
                    out.parameters = input.parameters.iter().map(Ooi::to_json).collect();
                    out.config = input.config.clone();
                    match self.bits[b].bit.run(&input) {
                        Ok(results) => out.results = results.iter().map(Ooi::to_json).collect(),
                        Err(e) => return Err(GraphError::Invalid(format!("bit '{id}' failed: {e}"))),
                    }
                }
            }
            Ok(out)
        })
    }

    /// Enables (`Some(true)`), disables (`Some(false)`) or resets to the default (`None`) a bit
    /// for one organisation; its inferences follow in the same transaction.
    pub fn switch(
        &self,
        graph: &Graph,
        id: &str,
        state: Option<bool>,
        valid_time: Option<Timestamp>,
    ) -> Result<octo_graph::Outcome, GraphError> {
        if !self.by_id.contains_key(id) {
            return Err(GraphError::NotFound(format!("no bit '{id}'")));
        }
        let at = AsOf::valid(valid_time.unwrap_or_else(Timestamp::now));
        let mut switches = graph.with_context(at, Self::org_switches)?;
        switches.enabled.remove(id);
        switches.disabled.remove(id);
        match state {
            Some(true) => {
                switches.enabled.insert(id.to_owned());
            }
            Some(false) => {
                switches.disabled.insert(id.to_owned());
            }
            None => {}
        }
        let value = (switches != BitSwitches::default()).then(|| json!(switches));
        graph.put_setting(BITS_SETTING, value, valid_time)
    }

    /// Every bit with whether it runs in this organisation.
    pub fn status(&self, graph: &Graph, at: AsOf) -> Result<Vec<(String, bool)>, GraphError> {
        graph.with_context(at, |ctx| {
            let org = Self::org_switches(ctx)?;
            Ok((0..self.bits.len())
                .map(|b| (self.bits[b].bit.definition().id.clone(), self.enabled_with(&org, b)))
                .collect())
        })
    }

    fn runs_of(
        &self,
        ctx: &InferenceContext<'_>,
        b: usize,
        out: &mut Vec<(String, Reference)>,
    ) -> Result<(), GraphError> {
        let def = self.bits[b].bit.definition();
        for t in self.catalog.concrete_types(&def.consumes)? {
            for r in ctx.keys_of_type(t)? {
                out.push((def.id.clone(), r));
            }
        }
        Ok(())
    }
}

impl Inferrer for BitEngine {
    fn affected(&self, ctx: &InferenceContext<'_>, changes: &Changes) -> Result<Vec<(String, Reference)>, GraphError> {
        let mut runs = Vec::new();
        for setting in changes.settings.iter().filter(|s| s.name == BITS_SETTING) {
            // Bits switched on or off: all their runs, and only theirs.
            let parse = |v: &Option<Json>| -> BitSwitches {
                v.as_ref().and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default()
            };
            let (before, after) = (parse(&setting.old), parse(&setting.new));
            for b in 0..self.bits.len() {
                if self.enabled_with(&before, b) != self.enabled_with(&after, b) {
                    self.runs_of(ctx, b, &mut runs)?;
                }
            }
        }
        let org = Self::org_switches(ctx)?;
        let live = |b: usize| self.enabled_with(&org, b);
        for change in &changes.objects {
            let r = &change.reference;
            if let Some(triggers) = self.triggers.get(r.type_name()) {
                for t in triggers {
                    match t {
                        Trigger::Consumed(b) => {
                            if change.new.is_some() && live(*b) {
                                runs.push((self.bits[*b].bit.definition().id.clone(), r.clone()));
                            }
                        }
                        Trigger::OnPath(b, path, guard) => {
                            if !live(*b) {
                                continue;
                            }
                            let id = &self.bits[*b].bit.definition().id;
                            let relevant = match guard {
                                Guard::Always => true,
                                Guard::ReferencedBy(t) => ctx.is_referenced_by(r, t)?,
                                Guard::ConfigAhead(ahead) => {
                                    [&change.old, &change.new].into_iter().flatten().any(|doc| {
                                        ctx.walk_through_gone(ahead, r, doc).is_ok_and(|configs| {
                                            configs
                                                .iter()
                                                .any(|(_, c)| c.get("bit_id").and_then(Json::as_str) == Some(id))
                                        })
                                    })
                                }
                            };
                            if !relevant {
                                continue;
                            }
                            for doc in [&change.old, &change.new].into_iter().flatten() {
                                for (source, _) in ctx.walk_through_gone(path, r, doc)? {
                                    runs.push((id.clone(), source));
                                }
                            }
                        }
                    }
                }
            }
            if r.type_name() == "Config" {
                for doc in [&change.old, &change.new].into_iter().flatten() {
                    let bit_id = doc.get("bit_id").and_then(Json::as_str).unwrap_or_default();
                    let Some(&b) = self.by_id.get(bit_id) else { continue };
                    let (Some(reverse), true) = (&self.bits[b].config_reverse, live(b)) else { continue };
                    let Some(target) = doc.get("ooi").and_then(Json::as_str).map(Reference::from_trusted) else {
                        continue;
                    };
                    let Some(target_doc) = ctx.document_or_gone(&target)? else { continue };
                    for (source, _) in ctx.walk_through_gone(reverse, &target, &target_doc)? {
                        runs.push((bit_id.to_owned(), source));
                    }
                }
            }
        }
        for lc in &changes.levels {
            if let Some(triggers) = self.triggers.get(lc.reference.type_name()) {
                for t in triggers {
                    if let &Trigger::Consumed(b) = t {
                        let min = self.bits[b].bit.definition().min_scan_level;
                        if (lc.old >= min) != (lc.new >= min) && live(b) {
                            runs.push((self.bits[b].bit.definition().id.clone(), lc.reference.clone()));
                        }
                    }
                }
            }
        }
        Ok(runs)
    }

    fn run(&self, ctx: &InferenceContext<'_>, bit: &str, source: &Reference) -> Result<Option<Vec<Ooi>>, GraphError> {
        let started = std::time::Instant::now();
        let b = self.by_id.get(bit).copied();
        let result = (|| {
            // An unknown bit (one that was removed) derives nothing, so its origins go.
            let Some(&b) = self.by_id.get(bit) else { return Ok(Some(vec![])) };
            if !self.is_enabled(ctx, bit)? {
                return Ok(Some(vec![]));
            }
            let input = match self.gather(ctx, b, source)? {
                Ok(input) => input,
                Err(_) => return Ok(Some(vec![])),
            };
            match self.bits[b].bit.run(&input) {
                Ok(results) => Ok(Some(results)),
                Err(e) => {
                    tracing::warn!(bit, source = source.as_str(), error = %e, "bit failed; its previous results stay");
                    Ok(None)
                }
            }
        })();
        if let Some(b) = b {
            let stats = &self.stats[b];
            stats.runs.fetch_add(1, Ordering::Relaxed);
            stats.nanos.fetch_add(started.elapsed().as_nanos() as u64, Ordering::Relaxed);
        }
        result
    }

    fn all_runs(&self, ctx: &InferenceContext<'_>) -> Result<Vec<(String, Reference)>, GraphError> {
        let mut out = Vec::new();
        for b in 0..self.bits.len() {
            self.runs_of(ctx, b, &mut out)?;
        }
        Ok(out)
    }
}
