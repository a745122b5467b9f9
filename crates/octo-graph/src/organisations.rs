//! Organisations: one graph each, in its own store, so nothing crosses between them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use octo_model::Catalog;
use octo_store::{RedbStore, StoreOptions};

use crate::error::{GraphError, Result};
use crate::graph::Graph;

/// The organisations under one data directory (`<root>/<name>/graph.redb`).
pub struct Organisations {
    root: PathBuf,
    catalog: Catalog,
    options: StoreOptions,
    open: Mutex<HashMap<String, Arc<Graph>>>,
    inferrer: Option<Arc<dyn crate::inference::Inferrer>>,
}

/// Names that are not organisations: `/logs/…` is the log pipeline's part of the API.
pub const RESERVED_NAMES: &[&str] = &["logs"];

/// Checks an organisation name: it becomes a directory name and a URL path segment.
pub fn validate_name(name: &str) -> Result<()> {
    if RESERVED_NAMES.contains(&name) {
        return Err(GraphError::Invalid(format!("'{name}' is reserved (the log pipeline's API is under /{name}/)")));
    }
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(GraphError::Invalid(format!(
            "organisation '{name}' must be 1–64 letters, digits, '-' or '_', not starting with '-'"
        )))
    }
}

impl Organisations {
    /// The organisations stored under `root` (created if missing).
    pub fn open(root: &Path, catalog: Catalog, options: StoreOptions) -> Result<Self> {
        std::fs::create_dir_all(root)
            .map_err(|e| GraphError::Invalid(format!("cannot create data directory {}: {e}", root.display())))?;
        Ok(Organisations { root: root.to_owned(), catalog, options, open: Mutex::new(HashMap::new()), inferrer: None })
    }

    /// Every organisation's graph runs these rules (each organisation switches them apart).
    pub fn with_inferrer(mut self, inferrer: Arc<dyn crate::inference::Inferrer>) -> Self {
        self.inferrer = Some(inferrer);
        self
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// An existing organisation's directory, where parts beside the graph keep their files
    /// (the change stream's prepared events); deleting the organisation deletes them with it.
    pub fn directory(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        let dir = self.dir(name);
        if !dir.is_dir() {
            return Err(GraphError::NotFound(format!("organisation '{name}' does not exist")));
        }
        Ok(dir)
    }

    fn store_path(&self, name: &str) -> PathBuf {
        self.dir(name).join("graph.redb")
    }

    /// Creates an organisation; an existing one is an error.
    pub fn create(&self, name: &str) -> Result<Arc<Graph>> {
        validate_name(name)?;
        if self.store_path(name).exists() {
            return Err(GraphError::Invalid(format!("organisation '{name}' already exists")));
        }
        std::fs::create_dir_all(self.dir(name))
            .map_err(|e| GraphError::Invalid(format!("cannot create organisation '{name}': {e}")))?;
        self.get(name)
    }

    /// An existing organisation's graph (opened once, then shared).
    pub fn get(&self, name: &str) -> Result<Arc<Graph>> {
        validate_name(name)?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = open.get(name) {
            return Ok(g.clone());
        }
        if !self.dir(name).is_dir() {
            return Err(GraphError::NotFound(format!("organisation '{name}' does not exist")));
        }
        let store = RedbStore::open(&self.store_path(name), &self.options)?;
        if store.was_repaired() {
            tracing::warn!(organisation = name, "the store was not closed cleanly last time and has been repaired");
        }
        let mut graph = Graph::new(Arc::new(store), self.catalog.clone());
        if let Some(inferrer) = &self.inferrer {
            graph = graph.with_inferrer(inferrer.clone());
        }
        let graph = Arc::new(graph);
        open.insert(name.to_owned(), graph.clone());
        Ok(graph)
    }

    /// An organisation's graph, created when it does not exist yet.
    pub fn get_or_create(&self, name: &str) -> Result<Arc<Graph>> {
        match self.get(name) {
            Err(GraphError::NotFound(_)) => self.create(name),
            other => other,
        }
    }

    /// The organisations, by name.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.root)
            .map_err(|e| GraphError::Invalid(format!("cannot read {}: {e}", self.root.display())))?;
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| validate_name(n).is_ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// The size of an organisation's store on disk, in bytes: its file and its commit journal.
    pub fn store_bytes(&self, name: &str) -> Result<u64> {
        validate_name(name)?;
        octo_store::RedbStore::disk_bytes(&self.store_path(name))
            .map_err(|e| GraphError::NotFound(format!("organisation '{name}': {e}")))
    }

    /// Memory the organisation's store holds in its in-memory indexes, if its graph is open.
    pub fn index_bytes(&self, name: &str) -> Option<u64> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(name).map(|g| g.store().index_bytes())
    }

    /// Memory the organisation's store holds in its cache of current answers, if its graph is
    /// open.
    pub fn cache_bytes(&self, name: &str) -> Option<u64> {
        let open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        open.get(name).map(|g| g.store().cache_bytes())
    }

    /// Whether an organisation exists.
    pub fn exists(&self, name: &str) -> bool {
        validate_name(name).is_ok() && self.dir(name).is_dir()
    }

    /// Closes every open graph, waiting up to `wait` for the last users of each (requests and
    /// stream threads finishing) so that each store is closed cleanly and the next start does
    /// not have to repair it. Returns the organisations still in use when the time ran out.
    pub fn close(&self, wait: std::time::Duration) -> Vec<String> {
        let open: Vec<(String, Arc<Graph>)> = self.open.lock().unwrap_or_else(|p| p.into_inner()).drain().collect();
        let deadline = std::time::Instant::now() + wait;
        let mut busy = Vec::new();
        for (name, graph) in open {
            while Arc::strong_count(&graph) > 1 && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            if Arc::strong_count(&graph) > 1 {
                busy.push(name);
            }
            // The last reference closes the store, here or where the other holder lets go.
            drop(graph);
        }
        busy
    }

    /// Deletes an organisation and everything in its graph.
    pub fn delete(&self, name: &str) -> Result<()> {
        validate_name(name)?;
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if !self.dir(name).is_dir() {
            return Err(GraphError::NotFound(format!("organisation '{name}' does not exist")));
        }
        open.remove(name);
        std::fs::remove_dir_all(self.dir(name))
            .map_err(|e| GraphError::Invalid(format!("cannot delete organisation '{name}': {e}")))
    }
}
