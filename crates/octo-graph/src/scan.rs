//! Scan levels: declared on objects (0–4) and inherited along references, maintained
//! incrementally inside the write transaction.
//!
//! An undeclared object's level is the widest-path value over declared objects: the maximum over
//! paths of the minimum of the source's level and each step's cap. A step along a reference
//! field from the referencing object to its target is capped by the field's
//! `max_issue_scan_level`; the step back, from the target to the referencing object, by its
//! `max_inherit_scan_level`; a missing cap blocks that direction. Declared objects are sources,
//! never relays: their own level is what they pass on.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, VecDeque};

use octo_model::{Catalog, Reference};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// A stored scan profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanProfileRecord {
    /// `declared` or `inherited` (objects without a record have the empty profile, level 0).
    pub scan_profile_type: String,
    /// The object.
    pub reference: Reference,
    /// 0 to 4.
    pub level: u8,
    /// Who declared it, for declared profiles.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
}

/// The key a scan profile is stored under.
pub fn profile_key(reference: &Reference) -> String {
    format!("ScanProfile|{reference}")
}

/// One neighbour of an object for level propagation, with the caps in each direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edge {
    pub neighbour: Reference,
    /// Cap from this object to the neighbour (None: no propagation that way).
    pub out_cap: Option<u8>,
    /// Cap from the neighbour to this object.
    pub in_cap: Option<u8>,
    /// The field and its owner, for explanations.
    pub relation: String,
}

/// The outgoing references of an object document, with caps (this object → target issues,
/// target → this object inherits).
pub(crate) fn outgoing_edges(catalog: &Catalog, doc: &Json) -> Vec<Edge> {
    let Some(type_name) = doc.get("object_type").and_then(Json::as_str) else { return vec![] };
    let Ok(def) = catalog.get(type_name) else { return vec![] };
    let mut out = Vec::new();
    for f in def.references() {
        let Some(spec) = f.reference() else { continue };
        for target in reference_values(doc.get(&f.name)) {
            out.push(Edge {
                neighbour: Reference::from_trusted(target),
                out_cap: spec.max_issue_scan_level,
                in_cap: spec.max_inherit_scan_level,
                relation: format!("{}.{}", def.name, f.name),
            });
        }
    }
    out
}

/// The edges seen from `target` for a document that references it (incoming references).
pub(crate) fn incoming_edges(catalog: &Catalog, referrer: &Reference, doc: &Json, target: &Reference) -> Vec<Edge> {
    let Some(type_name) = doc.get("object_type").and_then(Json::as_str) else { return vec![] };
    let Ok(def) = catalog.get(type_name) else { return vec![] };
    let mut out = Vec::new();
    for f in def.references() {
        let Some(spec) = f.reference() else { continue };
        if reference_values(doc.get(&f.name)).any(|v| v == target.as_str()) {
            out.push(Edge {
                neighbour: referrer.clone(),
                // From the target back to the referencing object: inheritance.
                out_cap: spec.max_inherit_scan_level,
                in_cap: spec.max_issue_scan_level,
                relation: def.reverse_name(&f.name),
            });
        }
    }
    out
}

fn reference_values(v: Option<&Json>) -> Box<dyn Iterator<Item = &str> + '_> {
    match v {
        Some(Json::String(s)) => Box::new(std::iter::once(s.as_str())),
        Some(Json::Array(items)) => Box::new(items.iter().filter_map(Json::as_str)),
        _ => Box::new(std::iter::empty()),
    }
}

/// What level propagation needs to know about the graph at one valid time.
pub(crate) trait LevelGraph {
    /// Whether the object exists.
    fn exists(&mut self, r: &Reference) -> crate::Result<bool>;
    /// The stored level and whether it is declared.
    fn level(&mut self, r: &Reference) -> crate::Result<(u8, bool)>;
    /// Propagation edges of an existing object.
    fn edges(&mut self, r: &Reference) -> crate::Result<Vec<Edge>>;
    /// A hint that the existence and level of each of `refs` (and, with `edges`, its edges)
    /// are about to be asked, so that an implementation can read them together.
    fn prefetch(&mut self, _refs: &[Reference], _edges: bool) -> crate::Result<()> {
        Ok(())
    }
}

/// Recomputes, exactly, the levels of every undeclared object in the region grown from
/// `seeds`: objects reachable from a seed whose level is at most the seed's bound (an object
/// above the bound has a better path that avoids the change). Returns the new levels of the
/// region and of the objects outside it that rose as a result.
pub(crate) fn recompute(g: &mut dyn LevelGraph, seeds: &[(Reference, u8)]) -> crate::Result<BTreeMap<Reference, u8>> {
    // 1. The region.
    let bound = seeds.iter().map(|(_, b)| *b).max().unwrap_or(0);
    // Grown a ring at a time, so that each ring's reads are asked for together.
    let mut region: BTreeSet<Reference> = BTreeSet::new();
    let mut ring: Vec<Reference> = Vec::new();
    let seed_refs: Vec<Reference> = seeds.iter().map(|(s, _)| s.clone()).collect();
    g.prefetch(&seed_refs, true)?;
    for s in seed_refs {
        if g.exists(&s)? && !g.level(&s)?.1 && region.insert(s.clone()) {
            ring.push(s);
        }
    }
    while !ring.is_empty() {
        g.prefetch(&ring, true)?;
        let mut neighbours = Vec::new();
        for n in &ring {
            neighbours.extend(g.edges(n)?.into_iter().filter(|e| e.out_cap.is_some()).map(|e| e.neighbour));
        }
        neighbours.retain(|r| !region.contains(r));
        g.prefetch(&neighbours, false)?;
        let mut next = Vec::new();
        for n in neighbours {
            if region.contains(&n) || !g.exists(&n)? {
                continue;
            }
            let (level, declared) = g.level(&n)?;
            if !declared && level > 0 && level <= bound {
                region.insert(n.clone());
                next.push(n);
            }
        }
        ring = next;
    }
    // 2. What flows into the region from outside it (and from declared objects).
    let mut levels: BTreeMap<Reference, u8> = region.iter().map(|r| (r.clone(), 0)).collect();
    let mut heap: BinaryHeap<(u8, Reference)> = BinaryHeap::new();
    let mut sources = Vec::new();
    for r in &region {
        sources.extend(
            g.edges(r)?
                .into_iter()
                .filter(|e| e.in_cap.is_some() && !region.contains(&e.neighbour))
                .map(|e| e.neighbour),
        );
    }
    g.prefetch(&sources, false)?;
    for r in &region {
        let mut best = 0;
        for e in g.edges(r)? {
            let (Some(cap), false) = (e.in_cap, region.contains(&e.neighbour)) else { continue };
            if g.exists(&e.neighbour)? {
                best = best.max(g.level(&e.neighbour)?.0.min(cap));
            }
        }
        levels.insert(r.clone(), best);
        if best > 0 {
            heap.push((best, r.clone()));
        }
    }
    // 3. Widest paths inside the region, highest level first.
    while let Some((level, r)) = heap.pop() {
        if levels.get(&r).copied() != Some(level) {
            continue;
        }
        for e in g.edges(&r)? {
            let Some(cap) = e.out_cap else { continue };
            if let Some(current) = levels.get(&e.neighbour).copied() {
                let candidate = level.min(cap);
                if candidate > current {
                    levels.insert(e.neighbour.clone(), candidate);
                    heap.push((candidate, e.neighbour));
                }
            }
        }
    }
    // 4. Raises spill over the region's edge.
    let raised: Vec<(Reference, u8)> = levels.iter().filter(|(_, l)| **l > 0).map(|(r, l)| (r.clone(), *l)).collect();
    raise(g, raised, &mut levels)?;
    Ok(levels)
}

/// Pushes levels outward from `sources`, improving undeclared objects only (adding a path can
/// only raise levels). New levels are recorded in `out`.
pub(crate) fn raise(
    g: &mut dyn LevelGraph,
    sources: Vec<(Reference, u8)>,
    out: &mut BTreeMap<Reference, u8>,
) -> crate::Result<()> {
    raise_from(g, sources, out, Baseline::Stored)
}

/// What an object's level is before a raise reaches it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Baseline {
    /// Its stored level (incremental maintenance).
    Stored,
    /// Zero (computing everything from scratch).
    Zero,
}

fn raise_from(
    g: &mut dyn LevelGraph,
    sources: Vec<(Reference, u8)>,
    out: &mut BTreeMap<Reference, u8>,
    baseline: Baseline,
) -> crate::Result<()> {
    let mut heap: BinaryHeap<(u8, Reference)> = sources.into_iter().map(|(r, l)| (l, r)).collect();
    // Taken a level at a time: every object popped at one level is final (widest paths, highest
    // first), so each batch's edges, and then its neighbours' existence and levels, are read
    // together instead of one object at a time.
    while let Some((level, _)) = heap.peek().cloned() {
        let mut batch = Vec::new();
        while heap.peek().is_some_and(|(l, _)| *l == level) {
            let Some((_, r)) = heap.pop() else { break };
            // A stale entry: the object was raised higher since it was queued.
            if out.get(&r).is_none_or(|l| *l <= level) {
                batch.push(r);
            }
        }
        batch.sort_unstable();
        batch.dedup();
        g.prefetch(&batch, true)?;
        let mut edges = Vec::with_capacity(batch.len());
        let mut neighbours = Vec::new();
        for r in &batch {
            let e: Vec<Edge> =
                g.edges(r)?.into_iter().filter(|e| e.out_cap.is_some_and(|c| c.min(level) > 0)).collect();
            neighbours.extend(e.iter().filter(|e| !out.contains_key(&e.neighbour)).map(|e| e.neighbour.clone()));
            edges.push(e);
        }
        g.prefetch(&neighbours, false)?;
        for e in edges.into_iter().flatten() {
            let candidate = level.min(e.out_cap.unwrap_or(0));
            if !g.exists(&e.neighbour)? {
                continue;
            }
            let current = match out.get(&e.neighbour) {
                Some(l) => *l,
                None => {
                    let (l, declared) = g.level(&e.neighbour)?;
                    if declared {
                        continue;
                    }
                    if baseline == Baseline::Stored {
                        l
                    } else {
                        0
                    }
                }
            };
            if candidate > current {
                out.insert(e.neighbour.clone(), candidate);
                heap.push((candidate, e.neighbour));
            }
        }
    }
    Ok(())
}

/// Every undeclared object's level from scratch, by widest paths from all declared objects.
pub(crate) fn compute_all(
    g: &mut dyn LevelGraph,
    declared: &BTreeMap<Reference, u8>,
) -> crate::Result<BTreeMap<Reference, u8>> {
    let mut out: BTreeMap<Reference, u8> = BTreeMap::new();
    let sources = declared.iter().filter(|(_, l)| **l > 0).map(|(r, l)| (r.clone(), *l)).collect();
    raise_from(g, sources, &mut out, Baseline::Zero)?;
    Ok(out)
}

/// One step of an explanation, from the object asked about to the declared object its level
/// comes from; `relation` is how this step reaches the next one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InheritanceStep {
    /// The object.
    pub reference: Reference,
    /// Its level.
    pub level: u8,
    /// Declared or inherited.
    pub declared: bool,
    /// The relation that leads on to the next step, towards the declared object (empty for the
    /// last step).
    pub relation: String,
}

/// The shortest path from `r` back to a declared object that explains its level.
pub(crate) fn explain(g: &mut dyn LevelGraph, r: &Reference) -> crate::Result<Vec<InheritanceStep>> {
    let (level, declared) = g.level(r)?;
    let first = InheritanceStep { reference: r.clone(), level, declared, relation: String::new() };
    if declared || level == 0 {
        return Ok(vec![first]);
    }
    let mut previous: BTreeMap<Reference, (Reference, String)> = BTreeMap::new();
    let mut queue = VecDeque::from([r.clone()]);
    let mut seen = BTreeSet::from([r.clone()]);
    while let Some(n) = queue.pop_front() {
        for e in g.edges(&n)? {
            // Walk backwards along edges that carry at least `level` into `n`.
            if e.in_cap.is_none_or(|c| c < level) || seen.contains(&e.neighbour) || !g.exists(&e.neighbour)? {
                continue;
            }
            let (l, d) = g.level(&e.neighbour)?;
            if l < level {
                continue;
            }
            seen.insert(e.neighbour.clone());
            previous.insert(e.neighbour.clone(), (n.clone(), e.relation.clone()));
            if d {
                let mut path = vec![InheritanceStep {
                    reference: e.neighbour.clone(),
                    level: l,
                    declared: true,
                    relation: String::new(),
                }];
                let mut cur = e.neighbour.clone();
                while let Some((next, relation)) = previous.get(&cur).cloned() {
                    let (nl, nd) = g.level(&next)?;
                    path.push(InheritanceStep { reference: next.clone(), level: nl, declared: nd, relation });
                    cur = next;
                }
                path.reverse();
                return Ok(path);
            }
            queue.push_back(e.neighbour);
        }
    }
    Ok(vec![first])
}
