//! Read queries, all at any (valid time, transaction time): list objects, the tree around an
//! object, origins, findings.

use std::collections::{BTreeMap, BTreeSet};

use octo_model::{Ooi, Reference};
use octo_store::{AsOf, KeyView, Reader};
use serde::Serialize;

use crate::error::{GraphError, Result};
use crate::graph::Graph;
use crate::origin::{Origin, OriginType};
use crate::scan::ScanProfileRecord;

/// A page of results with the total count of matches.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    /// Matches in all pages.
    pub count: usize,
    /// This page.
    pub items: Vec<T>,
}

/// How `list_objects` orders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListOrder {
    /// Type, then primary key.
    #[default]
    ObjectType,
    /// Scan level, then primary key.
    ScanLevel,
}

/// The filters of `list_objects` (Octopoes' `GET /objects`).
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Types to list; abstract types (and `OOI`) expand to their concrete types.
    pub types: Vec<String>,
    /// Only these levels (empty: all).
    pub scan_levels: BTreeSet<u8>,
    /// Only these profile types, `declared`, `inherited` or `empty` (empty: all).
    pub scan_profile_types: BTreeSet<String>,
    /// Case-insensitive substring of the primary key.
    pub search: Option<String>,
    /// Ordering.
    pub order_by: ListOrder,
    /// Descending instead of ascending.
    pub descending: bool,
    /// Skip this many matches.
    pub offset: usize,
    /// Return at most this many.
    pub limit: usize,
}

impl Default for ListQuery {
    fn default() -> Self {
        ListQuery {
            types: vec![octo_model::ROOT_TYPE.to_owned()],
            scan_levels: BTreeSet::new(),
            scan_profile_types: BTreeSet::new(),
            search: None,
            order_by: ListOrder::ObjectType,
            descending: false,
            offset: 0,
            limit: 50,
        }
    }
}

impl ListQuery {
    /// Whether answering needs each object's scan profile: a level or profile-type filter that
    /// leaves something out, or the level order. OpenKAT's connector sends every level and every
    /// profile type when its caller filters on neither, which must not cost a profile read per
    /// object.
    pub fn needs_profiles(&self) -> bool {
        let all_levels = (0..=4).all(|l| self.scan_levels.contains(&l));
        let all_types = ["declared", "inherited", "empty"].iter().all(|t| self.scan_profile_types.contains(*t));
        (!self.scan_levels.is_empty() && !all_levels)
            || (!self.scan_profile_types.is_empty() && !all_types)
            || self.order_by == ListOrder::ScanLevel
    }
}

/// One node of a tree: an object and its neighbours by relation name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TreeNode {
    /// The object.
    pub reference: Reference,
    /// Neighbours: an outgoing relation is named by the field, an incoming one by the
    /// referencing type's reverse name (`Type_field` unless declared).
    pub children: BTreeMap<String, Vec<TreeNode>>,
}

/// The neighbourhood of an object, with every object in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tree {
    /// The object asked about.
    pub root: TreeNode,
    /// Every object in the tree, by primary key (serialised in Octopoes' shape).
    #[serde(serialize_with = "serialize_store")]
    pub store: BTreeMap<Reference, Ooi>,
}

fn serialize_store<S: serde::Serializer>(store: &BTreeMap<Reference, Ooi>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(store.len()))?;
    for (k, v) in store {
        map.serialize_entry(k.as_str(), v)?;
    }
    map.end()
}

/// What a tree walk read: documents by key (`None`: the key does not exist) and, for each
/// object it expands, the live referrers of types that can point at it, in key order.
#[derive(Default)]
struct TreeReads {
    docs: foldhash::HashMap<Reference, Option<Ooi>>,
    referrers: foldhash::HashMap<Reference, Vec<Reference>>,
}

/// An object a tree walk reached: with the steps left, and the object and edge name it came by.
type Reached = (Reference, usize, Option<(Reference, String)>);

/// One edge out of an object in a tree.
struct TreeStep<'a> {
    neighbour: &'a Reference,
    /// The relation's name seen from the object stepped from: the field going out, the
    /// referrer's reverse name (`Type_field` unless declared) coming in.
    relation: String,
    /// The same edge's name seen from the neighbour.
    back: String,
}

impl TreeStep<'_> {
    /// Whether the walk takes this step: never straight back along the edge it came by, and
    /// only to neighbours of the allowed types (all when none are given).
    fn followed(&self, came_by: Option<(&Reference, &str)>, allowed: &BTreeSet<String>) -> bool {
        let returning = came_by.is_some_and(|(from, edge)| from == self.neighbour && edge == self.relation);
        !returning && (allowed.is_empty() || allowed.contains(self.neighbour.type_name()))
    }
}

/// Filters of `list_origins`; every given filter must match.
#[derive(Debug, Clone, Default)]
pub struct OriginQuery {
    /// The object looked at.
    pub source: Option<Reference>,
    /// An object in the result.
    pub result: Option<Reference>,
    /// The method.
    pub method: Option<String>,
    /// The task.
    pub task_id: Option<String>,
    /// The kind.
    pub origin_type: Option<OriginType>,
}

/// Filters of `list_findings`.
#[derive(Debug, Clone)]
pub struct FindingQuery {
    /// Severities to include (those of the finding types).
    pub severities: BTreeSet<String>,
    /// Leave out muted findings.
    pub exclude_muted: bool,
    /// Only muted findings.
    pub only_muted: bool,
    /// Case-insensitive substring of the finding's primary key.
    pub search: Option<String>,
    /// By the finding type's risk score (`true`) or by finding type id.
    pub order_by_score: bool,
    /// Descending.
    pub descending: bool,
    /// Skip this many.
    pub offset: usize,
    /// At most this many.
    pub limit: usize,
}

/// The severities, most severe first (Octopoes' `RiskLevelSeverity`).
pub const SEVERITIES: [&str; 7] = ["critical", "high", "medium", "low", "recommendation", "pending", "unknown"];

impl Default for FindingQuery {
    fn default() -> Self {
        FindingQuery {
            severities: SEVERITIES.iter().map(|s| s.to_string()).collect(),
            exclude_muted: true,
            only_muted: false,
            search: None,
            order_by_score: true,
            descending: true,
            offset: 0,
            limit: 50,
        }
    }
}

impl Graph {
    fn decode_ooi(&self, key: &str, doc: &[u8]) -> Result<Ooi> {
        crate::graph::decode_ooi(self.catalog(), key, doc)
    }

    fn with_profile(&self, snap: &dyn Reader, mut ooi: Ooi, at: AsOf) -> Result<Ooi> {
        ooi.scan_profile = Some(crate::graph::profile_of(snap, ooi.primary_key(), at)?);
        Ok(ooi)
    }

    /// Lists objects with Octopoes' filters, paged, with the total count.
    pub fn list_objects(&self, q: &ListQuery, at: AsOf) -> Result<Page<Ooi>> {
        let snap = self.store().snapshot()?;
        if let Some((count, keys)) = self.indexed_page(&*snap, q, at)? {
            return Ok(Page { count, items: self.load_with_profiles(&*snap, &keys, at)? });
        }
        // Scans come in key order, which is type then key: in that order only the page's keys
        // are kept (the rest are counted); any other order needs every match.
        if (q.order_by, q.descending) == (ListOrder::ObjectType, false) {
            let window = q.offset..q.offset.saturating_add(q.limit);
            let (count, page) = self.matching_keys(&*snap, q, at, Some(window))?;
            let keys: Vec<String> = page.into_iter().map(|(_, k)| k).collect();
            return Ok(Page { count, items: self.load_with_profiles(&*snap, &keys, at)? });
        }
        let (count, mut matches) = self.matching_keys(&*snap, q, at, None)?;
        match (q.order_by, q.descending) {
            // (Ascending key order was answered above.)
            (ListOrder::ObjectType, _) => matches.reverse(),
            (ListOrder::ScanLevel, desc) => {
                matches.sort_by(|a, b| if desc { b.cmp(a) } else { a.cmp(b) });
            }
        }
        let keys: Vec<String> = matches.into_iter().skip(q.offset).take(q.limit).map(|(_, k)| k).collect();
        Ok(Page { count, items: self.load_with_profiles(&*snap, &keys, at)? })
    }

    /// Octopoes' `GET /objects/random`: up to `amount` objects drawn uniformly from those at the
    /// given levels (all levels when empty), for schedulers that sample the graph.
    pub fn random_objects(&self, amount: usize, scan_levels: &BTreeSet<u8>, at: AsOf) -> Result<Vec<Ooi>> {
        let snap = self.store().snapshot()?;
        let q = ListQuery { scan_levels: scan_levels.clone(), ..ListQuery::default() };
        let mut keys: Vec<String> = self.matching_keys(&*snap, &q, at, None)?.1.into_iter().map(|(_, k)| k).collect();
        // A partial Fisher–Yates shuffle; the generator needs to be fair, not unpredictable.
        let mut state = {
            use std::hash::{BuildHasher, Hasher};
            std::collections::hash_map::RandomState::new().build_hasher().finish() | 1
        };
        let take = amount.min(keys.len());
        for i in 0..take {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let j = i + (state % (keys.len() - i) as u64) as usize;
            keys.swap(i, j);
        }
        keys.truncate(take);
        self.load_with_profiles(&*snap, &keys, at)
    }

    /// Octopoes' `GET /scan_profiles`: the stored (declared and inherited) profiles, optionally
    /// of one type.
    pub fn list_scan_profiles(&self, profile_type: Option<&str>, at: AsOf) -> Result<Vec<ScanProfileRecord>> {
        let snap = self.store().snapshot()?;
        let all: Vec<ScanProfileRecord> = collect_type(&*snap, "ScanProfile", at, crate::graph::decode)?;
        Ok(all.into_iter().filter(|p| profile_type.is_none_or(|t| p.scan_profile_type == t)).collect())
    }

    fn load_with_profiles(&self, snap: &dyn Reader, keys: &[String], at: AsOf) -> Result<Vec<Ooi>> {
        let mut items = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(v) = snap.get(key, at)? {
                let ooi = self.decode_ooi(key, &v.doc)?;
                items.push(self.with_profile(snap, ooi, at)?);
            }
        }
        Ok(items)
    }

    /// The concrete types a list query covers (abstract types expanded), in key order.
    fn listed_types(&self, q: &ListQuery) -> Result<BTreeSet<String>> {
        let mut types = BTreeSet::new();
        for t in &q.types {
            types.extend(self.catalog().concrete_types(t)?.iter().cloned());
        }
        Ok(types)
    }

    /// A page and count answered from the store's lists of live keys, when the query needs no
    /// scan levels and the store can answer for `at` (the current state): a slice of sorted
    /// lists instead of a scan of every version. A search still visits every key, in memory.
    fn indexed_page(&self, snap: &dyn Reader, q: &ListQuery, at: AsOf) -> Result<Option<(usize, Vec<String>)>> {
        if q.needs_profiles() {
            return Ok(None);
        }
        let types = self.listed_types(q)?;
        let types: Vec<&str> = types.iter().map(String::as_str).collect();
        let needle = q.search.as_ref().map(|s| s.to_lowercase());
        let mut answer = None;
        let answered = snap.live_keys_indexed(&types, at, &mut |lists| {
            // The window of the matches, in the order asked, given the count and the i-th match.
            let window = |count: usize, nth: &dyn Fn(usize) -> String| {
                let positions = q.offset.min(count)..q.offset.saturating_add(q.limit).min(count);
                (count, positions.map(|i| nth(if q.descending { count - 1 - i } else { i })).collect())
            };
            answer = Some(match &needle {
                Some(n) => {
                    let matches: Vec<&str> =
                        lists.iter().flat_map(|l| l.iter()).filter(|k| contains_ignoring_case(k, n)).collect();
                    window(matches.len(), &|i| matches[i].to_owned())
                }
                None => window(lists.iter().map(|l| l.len()).sum(), &|i| nth_key(lists, i).to_owned()),
            });
        })?;
        Ok(answer.filter(|_| answered))
    }

    /// How many keys match a list query's filters, and those matches (with their levels when
    /// the query needs them) in key order: all of them, or only those whose position falls in
    /// `keep`. Keys come from the key lists when they answer for `at`, else from a scan; levels
    /// from one scan of each listed type's profiles, merged with its keys (both are in key
    /// order), instead of a point read per key. A type's profiles are read before its keys are
    /// asked for, so that other lists need not wait on the store while the key lists are held.
    fn matching_keys(
        &self,
        snap: &dyn Reader,
        q: &ListQuery,
        at: AsOf,
        keep: Option<std::ops::Range<usize>>,
    ) -> Result<(usize, Vec<(u8, String)>)> {
        let types = self.listed_types(q)?;
        let needle = q.search.as_ref().map(|s| s.to_lowercase());
        let need_profile = q.needs_profiles();
        let mut matches: Vec<(u8, String)> = Vec::new();
        let mut count = 0usize;
        let mut visit = |profiles: &mut ProfileCursor, key: &str| {
            if needle.as_ref().is_some_and(|n| !contains_ignoring_case(key, n)) {
                return true;
            }
            let mut level = 0;
            if need_profile {
                let (l, kind) = profiles.find(key);
                if (!q.scan_levels.is_empty() && !q.scan_levels.contains(&l))
                    || (!q.scan_profile_types.is_empty() && !q.scan_profile_types.contains(kind))
                {
                    return true;
                }
                level = l;
            }
            if keep.as_ref().is_none_or(|w| w.contains(&count)) {
                matches.push((level, key.to_owned()));
            }
            count += 1;
            true
        };
        for t in &types {
            let mut profiles = ProfileCursor::default();
            if need_profile {
                profiles.list = type_profiles(snap, t, at)?;
            }
            let mut go_on = true;
            let indexed = snap.live_keys_indexed(&[t.as_str()], at, &mut |lists| {
                go_on = lists.iter().flat_map(|l| l.iter()).all(|k| visit(&mut profiles, k));
            })?;
            if !indexed {
                snap.scan_type_keys(t, at, &mut |k| {
                    go_on = visit(&mut profiles, k);
                    go_on
                })?;
            }
            if !go_on {
                break;
            }
        }
        Ok((count, matches))
    }

    /// The objects around `reference` to `depth` steps, both directions. Relations are walked
    /// as Octopoes names them; a step never goes straight back along the edge it came by, and
    /// objects of non-traversable types are leaves. `types`, when not empty, keeps only
    /// neighbours of those types (abstract types expand).
    ///
    /// The store is read a level at a time (one batched read of the level's documents, one of
    /// its referrers, one of every profile at the end), then the tree is assembled from what
    /// was read: the fifty ports of an address cost a few index walks, not fifty descents.
    pub fn tree(&self, reference: &Reference, depth: usize, types: &[String], at: AsOf) -> Result<Tree> {
        let snap = self.store().snapshot()?;
        let mut allowed: BTreeSet<String> = BTreeSet::new();
        for t in types {
            allowed.extend(self.catalog().concrete_types(t)?.iter().cloned());
        }
        let mut reads = self.read_tree(&*snap, reference, depth, &allowed, at)?;
        let mut visited = BTreeSet::new();
        let root = self
            .tree_node(&reads, reference, depth, None, &allowed, &mut visited)?
            .ok_or_else(|| GraphError::NotFound(format!("object '{reference}' not found at {}", at.valid_time)))?;
        let refs: Vec<&Reference> = visited.iter().collect();
        let profiles = crate::graph::profiles_of(&*snap, &refs, at)?;
        let mut store = BTreeMap::new();
        for (r, profile) in visited.iter().zip(profiles) {
            if let Some(Some(mut ooi)) = reads.docs.remove(r) {
                ooi.scan_profile = Some(profile);
                store.insert(r.clone(), ooi);
            }
        }
        Ok(Tree { root, store })
    }

    /// Whether a tree walk expands an object reached with `depth` steps left.
    fn tree_expands(def: &octo_model::TypeDef, depth: usize, came_by: Option<(&Reference, &str)>) -> bool {
        depth > 0 && (came_by.is_none() || def.traversable)
    }

    /// The steps out of an object in a tree: its own references in field order, then, for each
    /// referrer in key order, each of the referrer's fields that point here.
    fn tree_steps<'a>(
        &self,
        reference: &Reference,
        def: &octo_model::TypeDef,
        ooi: &'a Ooi,
        reads: &'a TreeReads,
    ) -> Result<Vec<TreeStep<'a>>> {
        let mut steps = Vec::new();
        for (field, target) in ooi.references() {
            steps.push(TreeStep { neighbour: target, relation: field.to_owned(), back: def.reverse_name(field) });
        }
        for key in reads.referrers.get(reference).map(Vec::as_slice).unwrap_or_default() {
            let Some(Some(referrer)) = reads.docs.get(key) else { continue };
            let rdef = self.catalog().get(referrer.object_type())?;
            for (field, target) in referrer.references() {
                if target == reference {
                    steps.push(TreeStep { neighbour: key, relation: rdef.reverse_name(field), back: field.to_owned() });
                }
            }
        }
        Ok(steps)
    }

    /// Reads everything a tree needs, a level at a time, mirroring the walk of
    /// [`Graph::tree_node`]: which objects it reaches, which it expands.
    fn read_tree(
        &self,
        snap: &dyn Reader,
        root: &Reference,
        depth: usize,
        allowed: &BTreeSet<String>,
        at: AsOf,
    ) -> Result<TreeReads> {
        let mut reads = TreeReads::default();
        let mut level: Vec<Reached> = vec![(root.clone(), depth, None)];
        while !level.is_empty() {
            self.read_tree_docs(snap, level.iter().map(|(r, ..)| r), at, &mut reads)?;
            let mut expanding: Vec<&Reached> = Vec::new();
            for node in &level {
                let (r, d, came_by) = node;
                let def = self.catalog().get(r.type_name())?;
                if matches!(reads.docs.get(r), Some(Some(_)))
                    && Self::tree_expands(def, *d, came_by.as_ref().map(|(f, e)| (f, e.as_str())))
                {
                    expanding.push(node);
                }
            }
            // Referrer lists of the objects expanded for the first time, then the documents of
            // the candidates of types that can point at them (origins and profiles never do).
            let fresh: BTreeSet<&Reference> =
                expanding.iter().map(|(r, ..)| r).filter(|r| !reads.referrers.contains_key(*r)).collect();
            let fresh: Vec<Reference> = fresh.into_iter().cloned().collect();
            let targets: Vec<&str> = fresh.iter().map(Reference::as_str).collect();
            let lists = snap.referrer_keys_many(&targets)?;
            let mut candidates: Vec<Vec<Reference>> = Vec::with_capacity(fresh.len());
            for (target, keys) in fresh.iter().zip(lists) {
                let types = self.referrers.get(target.type_name()).map(Vec::as_slice).unwrap_or_default();
                candidates.push(
                    keys.into_iter()
                        .filter(|k| {
                            let type_name = k.split('|').next().unwrap_or_default();
                            types.iter().any(|t| t == type_name)
                        })
                        .map(Reference::from_trusted)
                        .collect(),
                );
            }
            self.read_tree_docs(snap, candidates.iter().flatten(), at, &mut reads)?;
            for (target, keys) in fresh.into_iter().zip(candidates) {
                // A candidate counts when its version as of `at` still points here.
                let live: Vec<Reference> = keys
                    .into_iter()
                    .filter(
                        |k| matches!(reads.docs.get(k), Some(Some(doc)) if doc.references().any(|(_, t)| t == &target)),
                    )
                    .collect();
                reads.referrers.insert(target, live);
            }
            let mut next = Vec::new();
            let mut seen = foldhash::HashSet::default();
            for (r, d, came_by) in expanding {
                let def = self.catalog().get(r.type_name())?;
                let Some(Some(ooi)) = reads.docs.get(r) else { continue };
                let came_by = came_by.as_ref().map(|(f, e)| (f, e.as_str()));
                for step in self.tree_steps(r, def, ooi, &reads)? {
                    if !step.followed(came_by, allowed) {
                        continue;
                    }
                    let node = (step.neighbour.clone(), d - 1, Some((r.clone(), step.back)));
                    if seen.insert(node.clone()) {
                        next.push(node);
                    }
                }
            }
            level = next;
        }
        Ok(reads)
    }

    /// Reads and decodes, in one batch, the documents of those `keys` not read yet (absent ones
    /// recorded as absent).
    fn read_tree_docs<'k>(
        &self,
        snap: &dyn Reader,
        keys: impl Iterator<Item = &'k Reference>,
        at: AsOf,
        reads: &mut TreeReads,
    ) -> Result<()> {
        let unread: BTreeSet<&Reference> = keys.filter(|r| !reads.docs.contains_key(*r)).collect();
        let keys: Vec<Reference> = unread.into_iter().cloned().collect();
        let asked: Vec<&str> = keys.iter().map(Reference::as_str).collect();
        for (key, version) in keys.iter().zip(snap.get_many(&asked, at)?) {
            let ooi = version.map(|v| self.decode_ooi(&v.key, &v.doc)).transpose()?;
            reads.docs.insert(key.clone(), ooi);
        }
        Ok(())
    }

    /// One node and, to `depth`, its neighbours, assembled from what [`Graph::read_tree`]
    /// read; `visited` collects every object placed in the tree.
    fn tree_node(
        &self,
        reads: &TreeReads,
        reference: &Reference,
        depth: usize,
        came_by: Option<(&Reference, &str)>,
        allowed: &BTreeSet<String>,
        visited: &mut BTreeSet<Reference>,
    ) -> Result<Option<TreeNode>> {
        let def = self.catalog().get(reference.type_name())?;
        debug_assert!(reads.docs.contains_key(reference), "the tree walk did not read {reference}");
        let Some(Some(ooi)) = reads.docs.get(reference) else { return Ok(None) };
        let mut children: BTreeMap<String, Vec<TreeNode>> = BTreeMap::new();
        if Self::tree_expands(def, depth, came_by) {
            for step in self.tree_steps(reference, def, ooi, reads)? {
                if !step.followed(came_by, allowed) {
                    continue;
                }
                let from = Some((reference, step.back.as_str()));
                if let Some(child) = self.tree_node(reads, step.neighbour, depth - 1, from, allowed, visited)? {
                    children.entry(step.relation).or_default().push(child);
                }
            }
        }
        visited.insert(reference.clone());
        Ok(Some(TreeNode { reference: reference.clone(), children }))
    }

    /// Origins matching every given filter.
    pub fn list_origins(&self, q: &OriginQuery, at: AsOf) -> Result<Vec<Origin>> {
        let snap = self.store().snapshot()?;
        let mut candidates: Vec<Origin> = Vec::new();
        if let Some(anchor) = q.source.as_ref().or(q.result.as_ref()) {
            for v in snap.referrers(anchor.as_str(), Some("Origin"), at)? {
                candidates.push(crate::graph::decode(&v.key, &v.doc)?);
            }
        } else {
            candidates = collect_type(&*snap, "Origin", at, crate::graph::decode)?;
        }
        candidates.retain(|o| {
            q.source.as_ref().is_none_or(|s| &o.source == s)
                && q.result.as_ref().is_none_or(|r| o.result.contains(r))
                && q.method.as_ref().is_none_or(|m| &o.method == m)
                && q.task_id.as_ref().is_none_or(|t| o.task_id.as_ref() == Some(t))
                && q.origin_type.is_none_or(|t| o.origin_type == t)
        });
        Ok(candidates)
    }

    /// Findings by their finding type's severity, muted or not, ordered and paged.
    pub fn list_findings(&self, q: &FindingQuery, at: AsOf) -> Result<Page<Ooi>> {
        let snap = self.store().snapshot()?;
        let mut rows = Vec::new();
        let needle = q.search.as_ref().map(|s| s.to_lowercase());
        for (finding, severity, score, muted) in self.findings_with_severity(&*snap, at)? {
            if !q.severities.contains(&severity) || (q.exclude_muted && muted) || (q.only_muted && !muted) {
                continue;
            }
            if needle.as_ref().is_some_and(|n| !contains_ignoring_case(finding.primary_key().as_str(), n)) {
                continue;
            }
            rows.push((score, finding));
        }
        let finding_type = |o: &Ooi| o.get("finding_type").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
        if q.order_by_score {
            rows.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.primary_key().cmp(b.1.primary_key())));
        } else {
            rows.sort_by(|a, b| {
                finding_type(&a.1).cmp(&finding_type(&b.1)).then_with(|| a.1.primary_key().cmp(b.1.primary_key()))
            });
        }
        if q.descending {
            rows.reverse();
        }
        let count = rows.len();
        let mut items = Vec::new();
        for (_, f) in rows.into_iter().skip(q.offset).take(q.limit) {
            items.push(self.with_profile(&*snap, f, at)?);
        }
        Ok(Page { count, items })
    }

    /// How many findings there are of each severity (muted ones left out).
    pub fn count_findings_by_severity(&self, at: AsOf) -> Result<BTreeMap<String, usize>> {
        let snap = self.store().snapshot()?;
        let mut counts: BTreeMap<String, usize> = SEVERITIES.iter().map(|s| (s.to_string(), 0)).collect();
        for (_, severity, _, muted) in self.findings_with_severity(&*snap, at)? {
            if !muted {
                *counts.entry(severity).or_default() += 1;
            }
        }
        Ok(counts)
    }

    /// Every finding with its severity (`pending` when its finding type is missing, `unknown`
    /// when the type has none), risk score (0 when none) and whether it is muted.
    fn findings_with_severity(&self, snap: &dyn Reader, at: AsOf) -> Result<Vec<(Ooi, String, f64, bool)>> {
        let findings = collect_type(snap, "Finding", at, |k, d| self.decode_ooi(k, d))?;
        // Which findings are muted: from one scan of the (few) mutes, not a referrer read per
        // finding.
        let mutes = collect_type(snap, "MutedFinding", at, |k, d| self.decode_ooi(k, d))?;
        let muted: BTreeSet<&str> = mutes.iter().filter_map(|m| m.get("finding").and_then(|v| v.as_str())).collect();
        let mut types: BTreeMap<String, (String, f64)> = BTreeMap::new();
        let mut out = Vec::with_capacity(findings.len());
        for f in findings {
            let ft = f.get("finding_type").and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            if !types.contains_key(&ft) {
                let entry = match snap.get(&ft, at)? {
                    None => ("pending".to_owned(), 0.0),
                    Some(v) => {
                        let t = self.decode_ooi(&v.key, &v.doc)?;
                        let severity = t.get("risk_severity").and_then(|v| v.as_str()).unwrap_or("unknown").to_owned();
                        let score = match t.get("risk_score") {
                            Some(octo_model::Value::Float(s)) => *s,
                            Some(octo_model::Value::Int(s)) => *s as f64,
                            _ => 0.0,
                        };
                        (severity, score)
                    }
                };
                types.insert(ft.clone(), entry);
            }
            let (severity, score) = types[&ft].clone();
            let muted = muted.contains(f.primary_key().as_str());
            out.push((f, severity, score, muted));
        }
        Ok(out)
    }
}

/// A stored scan profile as a level filter needs it.
struct TypeProfile {
    /// The object's key.
    key: String,
    level: u8,
    /// `declared` or `inherited`.
    kind: String,
}

/// The stored profiles of one type's objects as of `at`, in key order: one scan of the profile
/// keys that begin with the type's name.
fn type_profiles(snap: &dyn Reader, type_name: &str, at: AsOf) -> Result<Vec<TypeProfile>> {
    #[derive(serde::Deserialize)]
    struct Stored {
        scan_profile_type: String,
        level: u8,
    }
    let prefix = crate::scan::profile_key(&Reference::from_trusted(type_name));
    collect_type(snap, &prefix, at, |key, doc| {
        let p: Stored = crate::graph::decode(key, doc)?;
        let key = key.strip_prefix("ScanProfile|").unwrap_or(key).to_owned();
        Ok(TypeProfile { key, level: p.level, kind: p.scan_profile_type })
    })
}

/// One type's stored profiles in key order, and how far a walk of its keys in the same order
/// has got through them.
#[derive(Default)]
struct ProfileCursor {
    list: Vec<TypeProfile>,
    next: usize,
}

impl ProfileCursor {
    /// The level and profile type of `key`, which comes after every key asked before it.
    fn find(&mut self, key: &str) -> (u8, &str) {
        while self.list.get(self.next).is_some_and(|p| p.key.as_str() < key) {
            self.next += 1;
        }
        match self.list.get(self.next) {
            Some(p) if p.key == key => (p.level, p.kind.as_str()),
            _ => (0, "empty"),
        }
    }
}

/// The key at position `i` of sorted lists laid end to end (`i` is below their total length).
fn nth_key<'a>(lists: &[KeyView<'a>], mut i: usize) -> &'a str {
    for list in lists {
        match list.get(i) {
            Some(key) => return key,
            None => i -= list.len(),
        }
    }
    ""
}

/// Whether `haystack` contains `needle` (already lower-case) ignoring case; keys are nearly
/// always ASCII, which is compared without allocating.
fn contains_ignoring_case(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        return n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n));
    }
    haystack.to_lowercase().contains(needle)
}

/// Every live record of one type as of `at`, decoded; the first record that does not decode
/// stops the scan and is the error.
pub(crate) fn collect_type<T>(
    snap: &dyn Reader,
    type_name: &str,
    at: AsOf,
    decode: impl Fn(&str, &[u8]) -> Result<T>,
) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut failure = None;
    snap.scan_type(type_name, at, &mut |v| match decode(&v.key, &v.doc) {
        Ok(t) => {
            out.push(t);
            true
        }
        Err(e) => {
            failure = Some(e);
            false
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    //! The batched tree walk against the walk it replaced, which reads one node at a time.

    use std::sync::Arc;

    use octo_model::Catalog;
    use octo_store::{RedbStore, StoreOptions, Timestamp};
    use serde_json::json;

    use super::*;
    use crate::Declaration;

    /// The walk before batching: a read per document, per referrer list, per profile.
    #[allow(clippy::too_many_arguments)]
    fn naive_node(
        g: &Graph,
        snap: &dyn Reader,
        reference: &Reference,
        loaded: Option<Ooi>,
        depth: usize,
        came_by: Option<(&Reference, &str)>,
        allowed: &BTreeSet<String>,
        at: AsOf,
        store: &mut BTreeMap<Reference, Ooi>,
    ) -> Result<Option<TreeNode>> {
        let def = g.catalog().get(reference.type_name())?;
        let expand = depth > 0 && (came_by.is_none() || def.traversable);
        if !expand && store.contains_key(reference) {
            return Ok(Some(TreeNode { reference: reference.clone(), children: BTreeMap::new() }));
        }
        let ooi = match loaded {
            Some(ooi) => ooi,
            None => {
                let Some(v) = snap.get(reference.as_str(), at)? else { return Ok(None) };
                g.decode_ooi(&v.key, &v.doc)?
            }
        };
        let mut children: BTreeMap<String, Vec<TreeNode>> = BTreeMap::new();
        if expand {
            // (neighbour, its document if read, relation name here, the same edge's name seen
            // from the neighbour)
            let mut steps: Vec<(Reference, Option<Ooi>, String, String)> = Vec::new();
            for (field, target) in ooi.references() {
                steps.push((target.clone(), None, field.to_owned(), def.reverse_name(field)));
            }
            // One read of the index; documents only for keys of types that can point here
            // (origins and profiles never do).
            let types = g.referrers.get(reference.type_name()).map(Vec::as_slice).unwrap_or_default();
            let candidates: Vec<String> = snap
                .referrer_keys(reference.as_str())?
                .into_iter()
                .filter(|k| {
                    let type_name = k.split('|').next().unwrap_or_default();
                    types.iter().any(|t| t == type_name)
                })
                .collect();
            let referrers = snap.referrers_among(reference.as_str(), &candidates, at)?;
            for rv in referrers {
                let referrer = g.decode_ooi(&rv.key, &rv.doc)?;
                let rdef = g.catalog().get(referrer.object_type())?;
                let edges: Vec<(String, String)> = referrer
                    .references()
                    .filter(|(_, target)| *target == reference)
                    .map(|(field, _)| (rdef.reverse_name(field), field.to_owned()))
                    .collect();
                let key = referrer.primary_key().clone();
                let mut doc = Some(referrer);
                for (i, (relation, back)) in edges.iter().enumerate() {
                    // The document goes with the last edge; an object referring twice is rare.
                    let d = if i + 1 == edges.len() { doc.take() } else { doc.clone() };
                    steps.push((key.clone(), d, relation.clone(), back.clone()));
                }
            }
            for (neighbour, doc, relation, back) in steps {
                if came_by.is_some_and(|(from, edge)| from == &neighbour && edge == relation) {
                    continue;
                }
                if !allowed.is_empty() && !allowed.contains(neighbour.type_name()) {
                    continue;
                }
                let from = Some((reference, back.as_str()));
                if let Some(child) = naive_node(g, snap, &neighbour, doc, depth - 1, from, allowed, at, store)? {
                    children.entry(relation).or_default().push(child);
                }
            }
        }
        if !store.contains_key(reference) {
            let ooi = g.with_profile(snap, ooi, at)?;
            store.insert(reference.clone(), ooi);
        }
        Ok(Some(TreeNode { reference: reference.clone(), children }))
    }

    fn naive_tree(g: &Graph, reference: &Reference, depth: usize, types: &[String], at: AsOf) -> Option<Tree> {
        let snap = g.store().snapshot().unwrap();
        let mut allowed: BTreeSet<String> = BTreeSet::new();
        for t in types {
            allowed.extend(g.catalog().concrete_types(t).unwrap().iter().cloned());
        }
        let mut store = BTreeMap::new();
        let root = naive_node(g, &*snap, reference, None, depth, None, &allowed, at, &mut store).unwrap()?;
        Some(Tree { root, store })
    }

    #[test]
    fn batched_trees_equal_the_one_read_at_a_time_walk() {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStore::open(
            &dir.path().join("t.redb"),
            &StoreOptions { cache_bytes: 8 << 20, ..StoreOptions::default() },
        )
        .unwrap();
        let c = Catalog::builtin();
        let g = Graph::new(Arc::new(store), c.clone());
        let declare = |doc: serde_json::Value| {
            let ooi = c.ooi_from_json(&doc).unwrap();
            g.save_declaration(Declaration {
                ooi,
                method: None,
                task_id: None,
                valid_time: None,
                end_valid_time: None,
            })
            .unwrap();
        };
        let ip = |a: &str| format!("IPAddressV4|internet|{a}");
        declare(json!({"object_type": "Network", "name": "internet"}));
        for a in ["192.0.2.1", "192.0.2.10", "192.0.2.2"] {
            declare(json!({"object_type": "IPAddressV4", "network": "Network|internet", "address": a}));
        }
        declare(json!({"object_type": "IPAddressV6", "network": "Network|internet", "address": "2001:db8::1"}));
        // Many ports on one address (past the store's gap limit), a few on its neighbour.
        for p in 1..=40 {
            declare(json!({"object_type": "IPPort", "address": ip("192.0.2.1"), "protocol": "tcp", "port": p}));
        }
        for p in [22, 443] {
            declare(json!({"object_type": "IPPort", "address": ip("192.0.2.10"), "protocol": "udp", "port": p}));
        }
        let port = "IPPort|internet|192.0.2.1|tcp|22";
        declare(json!({"object_type": "Service", "name": "ssh"}));
        declare(json!({"object_type": "IPService", "ip_port": port, "service": "Service|ssh"}));
        declare(json!({"object_type": "Software", "name": "openssh", "version": "9.6"}));
        declare(json!({"object_type": "SoftwareInstance", "ooi": port, "software": "Software|openssh|9.6|"}));
        declare(json!({"object_type": "KATFindingType", "id": "KAT-OPEN-SSH"}));
        declare(json!({"object_type": "Finding", "ooi": port, "finding_type": "KATFindingType|KAT-OPEN-SSH"}));
        for h in ["a.example", "b.example", "c.example"] {
            declare(json!({"object_type": "Hostname", "network": "Network|internet", "name": h}));
        }
        declare(
            json!({"object_type": "ResolvedHostname", "hostname": "Hostname|internet|a.example", "address": ip("192.0.2.1")}),
        );
        declare(
            json!({"object_type": "ResolvedHostname", "hostname": "Hostname|internet|b.example", "address": ip("192.0.2.1")}),
        );
        declare(
            json!({"object_type": "ResolvedHostname", "hostname": "Hostname|internet|b.example", "address": "IPAddressV6|internet|2001:db8::1"}),
        );
        declare(
            json!({"object_type": "DNSNSRecord", "hostname": "Hostname|internet|a.example", "value": "b.example", "name_server_hostname": "Hostname|internet|b.example"}),
        );
        // A record referring twice to one object: two edges, one document.
        declare(
            json!({"object_type": "DNSCNAMERecord", "hostname": "Hostname|internet|c.example", "value": "c.example", "target_hostname": "Hostname|internet|c.example"}),
        );
        declare(
            json!({"object_type": "DNSARecord", "hostname": "Hostname|internet|c.example", "value": "192.0.2.2", "address": ip("192.0.2.2")}),
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        let before = AsOf::valid(Timestamp::now());
        for gone in [port, "Hostname|internet|b.example", "IPPort|internet|192.0.2.1|tcp|7"] {
            g.delete_object(&Reference::from_trusted(gone), None).unwrap();
        }

        let filters: [Vec<String>; 4] =
            [vec![], vec!["IPPort".into(), "Hostname".into()], vec!["DNSRecord".into()], vec!["Finding".into()]];
        let mut compared = 0;
        for at in [before, AsOf::now()] {
            let snap = g.store().snapshot().unwrap();
            let mut keys = Vec::new();
            snap.scan_versions(&mut |v| {
                if !v.key.starts_with("Origin|") && !v.key.starts_with("ScanProfile|") && keys.last() != Some(&v.key) {
                    keys.push(v.key);
                }
                true
            })
            .unwrap();
            for key in &keys {
                let r = Reference::from_trusted(key.as_str());
                for depth in 0..=3 {
                    for types in &filters {
                        let want = naive_tree(&g, &r, depth, types, at);
                        let got = g.tree(&r, depth, types, at).ok();
                        assert_eq!(got, want, "tree of {key} to depth {depth}, types {types:?}, at {at:?}");
                        compared += usize::from(want.is_some_and(|t| t.store.len() > 1));
                    }
                }
            }
        }
        assert!(compared > 300, "only {compared} trees with neighbours compared");
    }
}
