//! Export and import of a whole graph, as Octopoes' `io/export` and `io/import` do it: the
//! transaction log with every operation, replayed transaction by transaction.
//!
//! The shape is XTDB's tx-log with operations (`txId`, `txTime`, `txOps: [[op, doc|key, valid
//! time]]`), each document carrying its key as `xt/id`. Documents exported by Octopoes itself
//! (fields named `Type/field`, `type: "Origin"`) are read too, so a graph can move from OpenKAT;
//! Octopoes' `OriginParameter` records are skipped (parameters are found by walking here).

use std::collections::BTreeMap;

use octo_model::Reference;
use octo_store::{Timestamp, ValidTime};
use serde_json::{json, Map, Value as Json};

use crate::change::{Change, Entity};
use crate::error::{GraphError, Result};
use crate::graph::Graph;
use crate::origin::Origin;
use crate::scan::ScanProfileRecord;

/// One operation of an import, validated.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportOp {
    /// Write a record (its references, for the reverse index, already worked out).
    Put {
        /// The record's key.
        key: String,
        /// The document as the graph stores it.
        doc: Json,
        /// The keys it references.
        refs: Vec<String>,
        /// From when.
        valid_time: Timestamp,
    },
    /// Delete a record.
    Delete {
        /// The record's key.
        key: String,
        /// From when.
        valid_time: Timestamp,
    },
}

/// One transaction of an import.
pub type ImportTx = Vec<ImportOp>;

impl Graph {
    /// Every version of every record, grouped by the transaction that wrote it, oldest first.
    pub fn export(&self) -> Result<Json> {
        let snap = self.store().snapshot()?;
        let mut txs: BTreeMap<u64, (Timestamp, Vec<Json>)> = BTreeMap::new();
        let mut failure = None;
        snap.scan_versions(&mut |v| {
            let op = if v.is_tombstone() {
                json!(["delete", v.key, v.valid_time.to_string()])
            } else {
                match serde_json::from_slice::<Json>(&v.doc) {
                    Ok(Json::Object(mut doc)) => {
                        doc.insert("xt/id".into(), Json::String(v.key.clone()));
                        json!(["put", doc, v.valid_time.to_string()])
                    }
                    _ => {
                        failure = Some(GraphError::Corrupt { key: v.key.clone(), message: "not a JSON object".into() });
                        return false;
                    }
                }
            };
            txs.entry(v.tx_id).or_insert_with(|| (v.tx_time, Vec::new())).1.push(op);
            true
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(Json::Array(
            txs.into_iter()
                .map(|(id, (time, ops))| json!({"txId": id, "txTime": time.to_string(), "txOps": ops}))
                .collect(),
        ))
    }

    /// Reads and checks an export (this system's or Octopoes'), writing nothing: every document
    /// must decode as a record of this graph's catalogue, so a bad file fails before any write.
    pub fn parse_import(&self, data: &Json) -> Result<Vec<ImportTx>> {
        let Json::Array(txs) = data else {
            return Err(GraphError::Invalid("an import is a JSON array of transactions".into()));
        };
        let mut out = Vec::with_capacity(txs.len());
        for (i, tx) in txs.iter().enumerate() {
            let Some(Json::Array(ops)) = tx.get("txOps") else {
                return Err(GraphError::Invalid(format!("transaction {i}: no txOps array")));
            };
            let mut parsed = Vec::with_capacity(ops.len());
            for (j, op) in ops.iter().enumerate() {
                if let Some(op) = self
                    .parse_op(op)
                    .map_err(|e| GraphError::Invalid(format!("transaction {i}, operation {j}: {e}")))?
                {
                    parsed.push(op);
                }
            }
            out.push(parsed);
        }
        Ok(out)
    }

    fn parse_op(&self, op: &Json) -> Result<Option<ImportOp>> {
        let Some([kind, body, valid]) = op.as_array().and_then(|a| <&[Json; 3]>::try_from(a.as_slice()).ok()) else {
            return Err(GraphError::Invalid("an operation is [\"put\"|\"delete\", document|key, valid time]".into()));
        };
        let valid_time: Timestamp = valid
            .as_str()
            .ok_or_else(|| GraphError::Invalid("valid time is not a string".into()))?
            .parse()
            .map_err(|e: <Timestamp as std::str::FromStr>::Err| GraphError::Invalid(e.to_string()))?;
        match kind.as_str() {
            Some("delete") => {
                let key = body.as_str().ok_or_else(|| GraphError::Invalid("a delete names a key".into()))?;
                Ok(Some(ImportOp::Delete { key: key.to_owned(), valid_time }))
            }
            Some("put") => {
                let Json::Object(doc) = body else {
                    return Err(GraphError::Invalid("a put carries a JSON object".into()));
                };
                Ok(self.record_of(doc)?.map(|(key, doc, refs)| ImportOp::Put { key, doc, refs, valid_time }))
            }
            _ => Err(GraphError::Invalid(format!("unknown operation {kind}"))),
        }
    }

    /// The key, stored document and references of an exported record; `None` for records this
    /// graph does not keep.
    fn record_of(&self, exported: &Map<String, Json>) -> Result<Option<(String, Json, Vec<String>)>> {
        let mut doc = exported.clone();
        let id = match doc.remove("xt/id") {
            Some(Json::String(id)) => Some(id),
            _ => None,
        };
        let kind = doc.remove("type").and_then(|t| t.as_str().map(str::to_owned));
        match kind.as_deref() {
            Some("OriginParameter") => return Ok(None),
            Some("Origin") => {
                let origin: Origin = serde_json::from_value(Json::Object(doc))
                    .map_err(|e| GraphError::Invalid(format!("origin: {e}")))?;
                let key = origin.id();
                let mut refs: Vec<String> = origin.result.iter().map(|r| r.to_string()).collect();
                refs.push(origin.source.to_string());
                let doc = serde_json::to_value(&origin).map_err(|e| GraphError::Invalid(e.to_string()))?;
                return Ok(Some((key, doc, refs)));
            }
            Some("ScanProfile") => {
                let profile: ScanProfileRecord = serde_json::from_value(Json::Object(doc))
                    .map_err(|e| GraphError::Invalid(format!("scan profile: {e}")))?;
                let key = crate::scan::profile_key(&profile.reference);
                let refs = vec![profile.reference.to_string()];
                let doc = serde_json::to_value(&profile).map_err(|e| GraphError::Invalid(e.to_string()))?;
                return Ok(Some((key, doc, refs)));
            }
            _ => {}
        }
        if let Some(id) = id.as_deref().filter(|id| id.starts_with(crate::inference::SETTING_PREFIX)) {
            return Ok(Some((id.to_owned(), Json::Object(doc), vec![])));
        }
        if let Some(id) = id.as_deref().filter(|id| id.starts_with("Origin|") || id.starts_with("ScanProfile|")) {
            // This system's own export: origins and profiles carry no `type` field.
            let typed = if id.starts_with("Origin|") { "Origin" } else { "ScanProfile" };
            let mut again = doc.clone();
            again.insert("type".into(), Json::String(typed.into()));
            return self.record_of(&again);
        }
        // An object; Octopoes prefixes its fields with the type name.
        let Some(object_type) = doc.get("object_type").and_then(Json::as_str).map(str::to_owned) else {
            return Err(GraphError::Invalid(format!(
                "record {} has neither an object_type nor a known record type",
                id.as_deref().unwrap_or("without xt/id")
            )));
        };
        let prefix = format!("{object_type}/");
        let doc: Map<String, Json> =
            doc.into_iter().map(|(k, v)| (k.strip_prefix(&prefix).map(str::to_owned).unwrap_or(k), v)).collect();
        let ooi = self.catalog().ooi_from_json(&Json::Object(doc))?;
        let key = ooi.primary_key().to_string();
        let same = |id: &String| Reference::parse(id, self.catalog()).is_ok_and(|r| r.reference().as_str() == key);
        if let Some(id) = id.filter(|id| !same(id)) {
            return Err(GraphError::Invalid(format!("xt/id {id} is not the object's primary key {key}")));
        }
        let refs = ooi.references().map(|(_, r)| r.to_string()).collect();
        Ok(Some((key, crate::graph::stored_document(&ooi), refs)))
    }

    /// Replays parsed transactions, one store transaction each, with a change event per record
    /// (cause `import`). Returns how many transactions were replayed.
    pub fn import(&self, txs: &[ImportTx]) -> Result<usize> {
        let mut done = 0;
        for ops in txs {
            if ops.is_empty() {
                continue;
            }
            let mut tx = self.store().begin()?;
            for op in ops {
                let (key, valid_time, new) = match op {
                    ImportOp::Put { key, doc, valid_time, .. } => (key, *valid_time, Some(doc.clone())),
                    ImportOp::Delete { key, valid_time } => (key, *valid_time, None),
                };
                let at = octo_store::AsOf { valid_time, tx_time: None };
                let old = match tx.get(key, at)? {
                    Some(v) => Some(crate::graph::decode::<Json>(key, &v.doc)?),
                    None => None,
                };
                let valid = ValidTime { start: Some(valid_time), end: None };
                match op {
                    ImportOp::Put { doc, refs, .. } => {
                        let bytes = serde_json::to_vec(doc).map_err(|e| GraphError::Invalid(e.to_string()))?;
                        tx.put(key, &bytes, refs, valid)?;
                    }
                    ImportOp::Delete { .. } => tx.delete(key, valid)?,
                }
                if old == new {
                    continue;
                }
                let change = Change::new(entity_of(key), key, valid_time, old, new, "import");
                let payload = serde_json::to_vec(&change).map_err(|e| GraphError::Invalid(e.to_string()))?;
                tx.append_event(&payload)?;
            }
            tx.commit()?;
            done += 1;
        }
        Ok(done)
    }
}

fn entity_of(key: &str) -> Entity {
    if key.starts_with("Origin|") {
        Entity::Origin
    } else if key.starts_with("ScanProfile|") {
        Entity::ScanProfile
    } else if key.starts_with(crate::inference::SETTING_PREFIX) {
        Entity::Setting
    } else {
        Entity::Ooi
    }
}
