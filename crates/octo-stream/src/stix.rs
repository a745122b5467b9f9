//! OOIs as STIX 2.1 objects.
//!
//! Cyber-observables (SCOs) get the deterministic ids STIX defines: a UUIDv5, in the SCO
//! namespace, of the RFC 8785 canonical JSON of the type's id-contributing properties. Every
//! SCO's id-contributing properties are in its OOI's natural key, so the id of any object follows
//! from its primary key alone: a reference becomes a STIX id without reading the referenced
//! object. Objects STIX has no observable for become domain objects (a finding is a `note`, a CVE
//! a `vulnerability`, anything else an `x-octograph-object` of our registered extension) with
//! UUIDv5 ids of their primary keys in Octograph's own namespace, so an object keeps its id
//! across updates. References that the STIX type has no property for become `relationship`
//! objects. Every object carries its OOI type, primary key and fields in the extension.

use chrono::{DateTime, NaiveDateTime, Utc};
use octo_model::{Catalog, Reference, Tokens};
use serde_json::{json, Map, Value as Json};
use uuid::Uuid;

/// STIX 2.1's namespace for deterministic cyber-observable ids.
pub const SCO_NAMESPACE: Uuid = Uuid::from_u128(0x00abedb4_aa42_466c_9c01_fed23315a9b7);

/// Octograph's namespace for the ids of domain objects and relationships (a UUIDv5 of
/// `octograph.stix` in the URL namespace, fixed here so ids never change between versions).
pub const OCTOGRAPH_NAMESPACE: Uuid = Uuid::from_u128(0x6b1c2f0e_9d3a_5e41_8a57_2c4e7f90b3d1);

/// The extension-definition that carries Octograph's fields and its own object type.
pub const EXTENSION_ID: &str = "extension-definition--2f6d8a3e-51c4-4b8e-9a0d-7c3e5b1f9a62";

/// The STIX type of objects that have no STIX equivalent.
pub const CUSTOM_TYPE: &str = "x-octograph-object";

/// RFC 8785 (JSON Canonicalization Scheme) for the values OOIs hold: object keys sorted by
/// their UTF-16 code units, no whitespace, strings escaped as ECMAScript's `JSON.stringify`
/// escapes them (which is what serde_json writes), integers as they are. Floats never contribute
/// to an id, and are written as serde_json writes them.
pub fn canonical_json(value: &Json) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

fn write_canonical(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => write_canonical_map(map, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Json::String(text) => write_string(text, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_canonical_map(map: &Map<String, Json>, out: &mut String) {
    let mut keys: Vec<&String> = map.keys().collect();
    // UTF-16 order is byte order for ASCII keys, which is what ids are made of.
    if keys.iter().all(|k| k.is_ascii()) {
        keys.sort_unstable();
    } else {
        keys.sort_by(|a, b| a.encode_utf16().cmp(b.encode_utf16()));
    }
    out.push('{');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_string(k, out);
        out.push(':');
        write_canonical(&map[k.as_str()], out);
    }
    out.push('}');
}

/// A JSON string as serde_json escapes it (which is as RFC 8785 asks).
fn write_string(text: &str, out: &mut String) {
    if text.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7F) {
        out.push('"');
        out.push_str(text);
        out.push('"');
    } else {
        out.push_str(&Json::String(text.to_owned()).to_string());
    }
}

/// The deterministic id of a cyber-observable from its id-contributing properties.
pub fn sco_id(stix_type: &str, contributing: &Map<String, Json>) -> String {
    let mut name = String::with_capacity(64);
    write_canonical_map(contributing, &mut name);
    format!("{stix_type}--{}", Uuid::new_v5(&SCO_NAMESPACE, name.as_bytes()))
}

/// The id of a domain object or relationship: stable for the same Octograph key.
pub fn octograph_id(stix_type: &str, key: &str) -> String {
    format!("{stix_type}--{}", Uuid::new_v5(&OCTOGRAPH_NAMESPACE, key.as_bytes()))
}

/// The STIX type an OOI type becomes.
pub fn stix_type(ooi_type: &str) -> &'static str {
    match ooi_type {
        "IPAddressV4" => "ipv4-addr",
        "IPAddressV6" => "ipv6-addr",
        "Hostname" => "domain-name",
        "IPPort" => "network-traffic",
        "AutonomousSystem" => "autonomous-system",
        "Software" => "software",
        "URL" => "url",
        "X509Certificate" => "x509-certificate",
        "Finding" => "note",
        "CVEFindingType" => "vulnerability",
        _ => CUSTOM_TYPE,
    }
}

fn token<'a>(tokens: &'a Tokens, name: &str) -> Option<&'a str> {
    tokens[name].as_str().filter(|s| !s.is_empty())
}

/// The STIX id of the object with this primary key, from the key alone.
pub fn stix_id(reference: &Reference, catalog: &Catalog) -> String {
    let ooi_type = reference.type_name();
    let t = stix_type(ooi_type);
    // Only observables take their ids from the key's fields: the rest need no parse.
    if t == CUSTOM_TYPE || t == "note" || t == "vulnerability" {
        return octograph_id(t, reference.as_str());
    }
    let parsed = match Reference::parse(reference.as_str(), catalog) {
        Ok(parsed) => parsed,
        Err(_) => return octograph_id(t, reference.as_str()),
    };
    let tokens = parsed.tokens();
    let mut c = Map::new();
    match ooi_type {
        "IPAddressV4" | "IPAddressV6" => {
            c.insert("value".into(), json!(token(tokens, "address").unwrap_or_default()));
        }
        "Hostname" => {
            c.insert("value".into(), json!(token(tokens, "name").unwrap_or_default()));
        }
        "URL" => {
            c.insert("value".into(), json!(token(tokens, "raw").unwrap_or_default()));
        }
        "AutonomousSystem" => {
            c.insert("number".into(), json!(as_number(token(tokens, "number").unwrap_or_default())));
        }
        "Software" => {
            for field in ["name", "version", "cpe"] {
                if let Some(v) = token(tokens, field) {
                    c.insert(field.into(), json!(v));
                }
            }
        }
        "X509Certificate" => {
            c.insert("serial_number".into(), json!(token(tokens, "serial_number").unwrap_or_default()));
        }
        "IPPort" => {
            // The address's id from the address's own tokens, nested in the port's key.
            let address = tokens["address"].as_node();
            let ip_type = stix_type(address.map(|a| a.type_name.as_str()).unwrap_or_default());
            let mut ip = Map::new();
            ip.insert("value".into(), json!(address.and_then(|a| token(a, "address")).unwrap_or_default()));
            c.insert("dst_ref".into(), json!(sco_id(ip_type, &ip)));
            c.insert("dst_port".into(), json!(token(tokens, "port").and_then(|p| p.parse::<u16>().ok())));
            c.insert("protocols".into(), json!([token(tokens, "protocol").unwrap_or_default()]));
        }
        _ => return octograph_id(t, reference.as_str()),
    }
    sco_id(t, &c)
}

/// `AS64500`, `as64500` and `64500` are the same autonomous system.
fn as_number(text: &str) -> i64 {
    text.trim().trim_start_matches(['A', 'a']).trim_start_matches(['S', 's']).parse().unwrap_or(0)
}

/// A STIX timestamp (`2026-11-23T10:00:00.000Z`) from an RFC 3339 or zone-less ISO time.
fn timestamp(text: &str) -> Option<String> {
    let t = text.trim();
    let utc: DateTime<Utc> = DateTime::parse_from_rfc3339(t)
        .map(|d| d.with_timezone(&Utc))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f").map(|n| n.and_utc()))
        .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%d %H:%M:%S%.f").map(|n| n.and_utc()))
        .ok()?;
    Some(utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// The objects one OOI becomes: its own STIX object first, then a relationship for each
/// reference its STIX type has no property for. `doc` is the OOI as the graph stores it;
/// `modified` is when this version took effect (SDOs and relationships must say).
pub fn to_stix(doc: &Json, catalog: &Catalog, modified: &str) -> Vec<Json> {
    let Some(key) = doc.get("primary_key").and_then(Json::as_str) else { return vec![] };
    let reference = Reference::from_trusted(key);
    let ooi_type = reference.type_name().to_owned();
    let t = stix_type(&ooi_type);
    let id = stix_id(&reference, catalog);
    let modified = timestamp(modified).unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into());
    let field = |name: &str| doc.get(name).filter(|v| !v.is_null());
    let text = |name: &str| field(name).and_then(Json::as_str).map(str::to_owned);
    let mut obj = Map::new();
    obj.insert("type".into(), json!(t));
    obj.insert("spec_version".into(), json!("2.1"));
    obj.insert("id".into(), json!(id));
    // Reference fields that the STIX object expresses itself (the rest become relationships).
    let mut consumed: Vec<&str> = Vec::new();
    let is_sco = !matches!(t, "note" | "vulnerability" | CUSTOM_TYPE);
    if !is_sco {
        obj.insert("created".into(), json!(modified));
        obj.insert("modified".into(), json!(modified));
    }
    match ooi_type.as_str() {
        "IPAddressV4" | "IPAddressV6" => {
            obj.insert("value".into(), json!(text("address")));
        }
        "Hostname" => {
            obj.insert("value".into(), json!(text("name")));
        }
        "URL" => {
            obj.insert("value".into(), json!(text("raw")));
        }
        "AutonomousSystem" => {
            obj.insert("number".into(), json!(as_number(&text("number").unwrap_or_default())));
            if let Some(name) = text("name") {
                obj.insert("name".into(), json!(name));
            }
        }
        "Software" => {
            for f in ["name", "version", "cpe"] {
                if let Some(v) = text(f).filter(|v| !v.is_empty()) {
                    obj.insert(f.into(), json!(v));
                }
            }
        }
        "X509Certificate" => {
            obj.insert("serial_number".into(), json!(text("serial_number")));
            for (from, to) in [("issuer", "issuer"), ("subject", "subject")] {
                if let Some(v) = text(from) {
                    obj.insert(to.into(), json!(v));
                }
            }
            for (from, to) in [("valid_from", "validity_not_before"), ("valid_until", "validity_not_after")] {
                if let Some(ts) = text(from).as_deref().and_then(timestamp) {
                    obj.insert(to.into(), json!(ts));
                }
            }
        }
        "IPPort" => {
            if let Some(address) = text("address") {
                obj.insert("dst_ref".into(), json!(stix_id(&Reference::from_trusted(address), catalog)));
            }
            obj.insert("dst_port".into(), field("port").cloned().unwrap_or(Json::Null));
            obj.insert("protocols".into(), json!([text("protocol")]));
            consumed.push("address");
        }
        "Finding" => {
            let finding_type = text("finding_type").unwrap_or_default();
            let ooi = text("ooi").unwrap_or_default();
            let type_id = finding_type.split_once('|').map_or(finding_type.as_str(), |(_, id)| id).to_owned();
            obj.insert("abstract".into(), json!(type_id));
            let content = text("description").unwrap_or_else(|| format!("{type_id} on {ooi}"));
            obj.insert("content".into(), json!(content));
            let refs: Vec<String> = [ooi, finding_type]
                .iter()
                .filter(|k| !k.is_empty())
                .map(|k| stix_id(&Reference::from_trusted(k.as_str()), catalog))
                .collect();
            obj.insert("object_refs".into(), json!(refs));
            consumed.extend(["ooi", "finding_type"]);
        }
        "CVEFindingType" => {
            let cve = text("id").unwrap_or_default();
            obj.insert("name".into(), json!(cve));
            if let Some(d) = text("description") {
                obj.insert("description".into(), json!(d));
            }
            obj.insert("external_references".into(), json!([{"source_name": "cve", "external_id": cve}]));
        }
        _ => {
            obj.insert("name".into(), json!(key));
        }
    }
    // Our own fields, in the extension: the OOI as Octograph knows it.
    let mut fields = Map::new();
    if let Json::Object(map) = doc {
        for (k, v) in map {
            if !matches!(k.as_str(), "object_type" | "primary_key" | "scan_profile" | "user_id") && !v.is_null() {
                fields.insert(k.clone(), v.clone());
            }
        }
    }
    if t == CUSTOM_TYPE {
        // A new object type: its properties stand on the object itself.
        obj.insert("ooi_type".into(), json!(ooi_type));
        obj.insert("primary_key".into(), json!(key));
        obj.insert("fields".into(), Json::Object(fields));
        obj.insert("extensions".into(), json!({ EXTENSION_ID: {"extension_type": "new-sdo"} }));
    } else {
        obj.insert(
            "extensions".into(),
            json!({ EXTENSION_ID: {
                "extension_type": "property-extension", "ooi_type": ooi_type, "primary_key": key, "fields": fields,
            }}),
        );
    }
    obj.retain(|_, v| !v.is_null());
    let mut out = vec![Json::Object(obj)];
    // Relationships for the remaining references.
    if let Ok(def) = catalog.get(&ooi_type) {
        for (name, f) in &def.fields {
            if consumed.contains(&name.as_str()) || !matches!(f.kind, octo_model::FieldKind::Reference(_)) {
                continue;
            }
            let targets: Vec<&str> = match field(name) {
                Some(Json::String(s)) => vec![s.as_str()],
                Some(Json::Array(items)) => items.iter().filter_map(Json::as_str).collect(),
                _ => vec![],
            };
            for target in targets {
                let target_id = stix_id(&Reference::from_trusted(target), catalog);
                out.push(json!({
                    "type": "relationship", "spec_version": "2.1",
                    "id": octograph_id("relationship", &format!("{key}|{name}|{target}")),
                    "created": modified, "modified": modified,
                    "relationship_type": relationship_type(name),
                    "source_ref": id, "target_ref": target_id,
                }));
            }
        }
    }
    out
}

/// A field name as a STIX relationship type (`^[a-z0-9-]+$`): `ip_service` → `ip-service`.
fn relationship_type(field: &str) -> String {
    let t: String =
        field.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' }).collect();
    if t.is_empty() {
        "related-to".into()
    } else {
        t
    }
}

/// An organisation as a STIX identity.
pub fn organisation_identity(name: &str, created: &str) -> Json {
    let ts = timestamp(created).unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into());
    json!({
        "type": "identity", "spec_version": "2.1", "id": octograph_id("identity", &format!("Organisation|{name}")),
        "created": ts, "modified": ts, "name": name, "identity_class": "organization",
    })
}

/// The extension-definition object consumers need to understand `x-octograph-object` and the
/// Octograph properties on every object.
pub fn extension_definition() -> Json {
    json!({
        "type": "extension-definition", "spec_version": "2.1", "id": EXTENSION_ID,
        "created_by_ref": octograph_id("identity", "Octograph"),
        "created": "2026-11-23T00:00:00.000Z", "modified": "2026-11-23T00:00:00.000Z",
        "name": "Octograph OOI",
        "description": "The object of interest behind a STIX object: its Octograph type, primary key and fields; \
                        and x-octograph-object for types STIX has no object for.",
        "schema": concat!(env!("CARGO_PKG_REPOSITORY"), "/blob/main/docs/STREAM.md"),
        "version": "1.0.0",
        "extension_types": ["property-extension", "new-sdo"],
    })
}
