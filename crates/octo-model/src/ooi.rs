//! Objects of interest: validated instances of catalogue types, with their primary key, read from
//! and written to JSON in the shape Octopoes' API uses.

use crate::NameMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json};

use crate::catalog::{Catalog, TypeDef};
use crate::error::ModelError;
use crate::key::{primary_key, Reference};
use crate::schema::{FieldDef, FieldKind};
use crate::value::{check_float, check_int, scalar_from_text, Value};

mod stored;

/// A scan profile as Octopoes' JSON carries it on an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanProfile {
    /// `declared`, `inherited` or `empty`.
    pub scan_profile_type: String,
    /// The object it belongs to.
    pub reference: Reference,
    /// 0 to 4.
    pub level: u8,
    /// Who declared it, when declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<i64>,
}

/// One object of interest.
#[derive(Debug, Clone, PartialEq)]
pub struct Ooi {
    object_type: String,
    primary_key: Reference,
    fields: NameMap<Value>,
    /// The scan profile, when known (filled by the graph, not part of the object's identity).
    pub scan_profile: Option<ScanProfile>,
    /// The user who created it, when known.
    pub user_id: Option<i64>,
}

impl Ooi {
    /// The concrete type name.
    pub fn object_type(&self) -> &str {
        &self.object_type
    }

    /// The primary key.
    pub fn primary_key(&self) -> &Reference {
        &self.primary_key
    }

    /// A field's value (`None` for a field the type does not have).
    pub fn get(&self, field: &str) -> Option<&Value> {
        self.fields.get(field)
    }

    /// All fields in declaration order; optional fields that were not given are `Null`.
    pub fn fields(&self) -> &NameMap<Value> {
        &self.fields
    }

    /// Every reference this object holds, with the field holding it (list elements included).
    pub fn references(&self) -> impl Iterator<Item = (&str, &Reference)> {
        self.fields.iter().flat_map(|(name, v)| {
            let refs: Vec<&Reference> = match v {
                Value::Ref(r) => vec![r],
                Value::List(items) => items.iter().filter_map(Value::as_reference).collect(),
                _ => vec![],
            };
            refs.into_iter().map(move |r| (name.as_str(), r))
        })
    }

    /// The JSON document in Octopoes' shape.
    pub fn to_json(&self) -> Json {
        let mut map = Map::new();
        map.insert("object_type".into(), Json::String(self.object_type.clone()));
        map.insert(
            "scan_profile".into(),
            self.scan_profile.as_ref().map_or(Json::Null, |p| serde_json::to_value(p).unwrap_or(Json::Null)),
        );
        map.insert("user_id".into(), self.user_id.map_or(Json::Null, Json::from));
        map.insert("primary_key".into(), Json::String(self.primary_key.as_str().to_owned()));
        for (name, v) in &self.fields {
            map.insert(name.clone(), v.to_json());
        }
        Json::Object(map)
    }
}

/// The same document as [`Ooi::to_json`], written straight to the serializer: a tree or a page
/// of objects is serialised without building a JSON value per object first.
impl Serialize for Ooi {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(4 + self.fields.len()))?;
        map.serialize_entry("object_type", &self.object_type)?;
        map.serialize_entry("scan_profile", &self.scan_profile)?;
        map.serialize_entry("user_id", &self.user_id)?;
        map.serialize_entry("primary_key", self.primary_key.as_str())?;
        for (name, v) in &self.fields {
            map.serialize_entry(name, &v.to_json())?;
        }
        map.end()
    }
}

impl Catalog {
    /// Builds an object from a JSON document in Octopoes' shape (`object_type` plus fields).
    ///
    /// `primary_key`, when present and not empty, must equal the key computed from the fields;
    /// `scan_profile` and `user_id` are carried along.
    pub fn ooi_from_json(&self, doc: &Json) -> Result<Ooi, ModelError> {
        self.ooi_from_json_with(doc, false)
    }

    /// Like [`Catalog::ooi_from_json`], for documents this system stored itself: reference keys
    /// were canonicalised when written, so they are taken as they are instead of parsed again
    /// (the costly part of reading objects back). Everything else is still checked.
    pub fn ooi_from_stored_json(&self, doc: &Json) -> Result<Ooi, ModelError> {
        self.ooi_from_json_with(doc, true)
    }

    fn ooi_from_json_with(&self, doc: &Json, trusted: bool) -> Result<Ooi, ModelError> {
        let Json::Object(map) = doc else {
            return Err(ModelError::Shape("an object must be a JSON object".into()));
        };
        let object_type = map
            .get("object_type")
            .and_then(Json::as_str)
            .ok_or_else(|| ModelError::Shape("missing string field `object_type`".into()))?;
        let mut fields = map.clone();
        let given_key = fields.shift_remove("primary_key");
        let scan_profile = match fields.shift_remove("scan_profile") {
            None | Some(Json::Null) => None,
            Some(p) => Some(
                serde_json::from_value::<ScanProfile>(p)
                    .map_err(|e| ModelError::field(object_type, "scan_profile", e.to_string()))?,
            ),
        };
        let user_id = match fields.shift_remove("user_id") {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) if n.is_i64() => n.as_i64(),
            Some(_) => return Err(ModelError::field(object_type, "user_id", "must be an integer")),
        };
        fields.shift_remove("object_type");
        let mut ooi = self.build(object_type, &fields, trusted)?;
        if let Some(Json::String(k)) = given_key {
            if !k.is_empty() && k != ooi.primary_key.as_str() {
                return Err(ModelError::field(
                    object_type,
                    "primary_key",
                    format!("'{k}' does not match the natural key, which gives '{}'", ooi.primary_key),
                ));
            }
        }
        ooi.scan_profile = scan_profile;
        ooi.user_id = user_id;
        Ok(ooi)
    }

    /// Builds an object from a document this system stored under `key`, taking the document's
    /// values instead of copying them. Reads are most of what the graph does, and a stored
    /// document was validated and normalised when it was written, so only what a changed
    /// schema could break is checked again (fields, types, enums, required values); text is
    /// taken as stored and the key is `key`, not recomputed.
    pub fn ooi_from_stored(&self, key: &str, doc: Json) -> Result<Ooi, ModelError> {
        let Json::Object(mut map) = doc else {
            return Err(ModelError::Shape("an object must be a JSON object".into()));
        };
        let object_type = match map.shift_remove("object_type") {
            Some(Json::String(t)) => t,
            _ => return Err(ModelError::Shape("missing string field `object_type`".into())),
        };
        map.shift_remove("primary_key");
        let scan_profile = match map.shift_remove("scan_profile") {
            None | Some(Json::Null) => None,
            Some(p) => Some(
                serde_json::from_value::<ScanProfile>(p)
                    .map_err(|e| ModelError::field(&object_type, "scan_profile", e.to_string()))?,
            ),
        };
        let user_id = match map.shift_remove("user_id") {
            None | Some(Json::Null) => None,
            Some(Json::Number(n)) if n.is_i64() => n.as_i64(),
            Some(_) => return Err(ModelError::field(&object_type, "user_id", "must be an integer")),
        };
        let def = self.get(&object_type)?;
        if def.is_abstract {
            return Err(ModelError::AbstractType(object_type));
        }
        if let Some(unknown) = map.keys().find(|k| !def.fields.contains_key(k.as_str())) {
            return Err(ModelError::field(&object_type, unknown, "no such field"));
        }
        let mut fields = NameMap::with_capacity_and_hasher(def.fields.len(), Default::default());
        for (name, f) in &def.fields {
            let raw = match map.shift_remove(name) {
                Some(Json::Null) | None => f.default.clone(),
                given => given,
            };
            let value = match raw {
                None if f.optional => Value::Null,
                None => return Err(ModelError::field(&object_type, name, "is required")),
                Some(raw) if f.list => self.stored_list(def, f, raw)?,
                Some(raw) => self.coerce_stored(def, f, raw)?,
            };
            fields.insert(name.clone(), value);
        }
        Ok(Ooi {
            object_type: def.name.clone(),
            primary_key: Reference::from_trusted(key),
            fields,
            scan_profile,
            user_id,
        })
    }

    /// A stored list field's value.
    fn stored_list(&self, def: &TypeDef, f: &FieldDef, raw: Json) -> Result<Value, ModelError> {
        match raw {
            Json::Array(items) => Ok(Value::List(
                items.into_iter().map(|item| self.coerce_stored(def, f, item)).collect::<Result<_, _>>()?,
            )),
            _ => Err(ModelError::field(&def.name, &f.name, "must be a list")),
        }
    }

    /// [`Catalog::coerce`] for a stored value, moved rather than copied: references and text
    /// were canonicalised when written.
    fn coerce_stored(&self, def: &TypeDef, f: &FieldDef, raw: Json) -> Result<Value, ModelError> {
        match (&f.kind, raw) {
            (FieldKind::Json, v) => Ok(Value::Json(v)),
            (FieldKind::Reference(spec), Json::String(s)) => {
                let r = Reference::from_trusted(s);
                if !self.is_a(r.type_name(), &spec.target) {
                    return Err(ModelError::field(&def.name, &f.name, format!("'{}' is not a {}", r, spec.target)));
                }
                Ok(Value::Ref(r))
            }
            (FieldKind::String { .. } | FieldKind::Hostname | FieldKind::Url, Json::String(s)) => Ok(Value::Str(s)),
            (_, raw) => self.coerce(def, f, &raw, true),
        }
    }

    /// Builds an object of `object_type` from field values; unknown fields are refused.
    pub fn build_ooi(&self, object_type: &str, given: &Map<String, Json>) -> Result<Ooi, ModelError> {
        self.build(object_type, given, false)
    }

    fn build(&self, object_type: &str, given: &Map<String, Json>, trusted: bool) -> Result<Ooi, ModelError> {
        let def = self.get(object_type)?;
        if def.is_abstract {
            return Err(ModelError::AbstractType(object_type.to_owned()));
        }
        if let Some(unknown) = given.keys().find(|k| !def.fields.contains_key(k.as_str())) {
            return Err(ModelError::field(object_type, unknown, "no such field"));
        }
        let mut fields = NameMap::with_capacity_and_hasher(def.fields.len(), Default::default());
        for (name, f) in &def.fields {
            let raw = given.get(name).filter(|v| !v.is_null()).or(f.default.as_ref());
            let value = match raw {
                None if f.optional => Value::Null,
                None => return Err(ModelError::field(object_type, name, "is required")),
                Some(raw) if f.list => match raw {
                    Json::Array(items) => Value::List(
                        items.iter().map(|item| self.coerce(def, f, item, trusted)).collect::<Result<_, _>>()?,
                    ),
                    _ => return Err(ModelError::field(object_type, name, "must be a list")),
                },
                Some(raw) => self.coerce(def, f, raw, trusted)?,
            };
            fields.insert(name.clone(), value);
        }
        let primary_key = primary_key(def, &fields);
        Ok(Ooi { object_type: def.name.clone(), primary_key, fields, scan_profile: None, user_id: None })
    }

    fn coerce(&self, def: &TypeDef, f: &FieldDef, raw: &Json, trusted: bool) -> Result<Value, ModelError> {
        let err = |m: String| ModelError::field(&def.name, &f.name, m);
        match (&f.kind, raw) {
            (FieldKind::Json, v) => Ok(Value::Json(v.clone())),
            (FieldKind::Reference(spec), Json::String(s)) if trusted => {
                let r = Reference::from_trusted(s.clone());
                if !self.is_a(r.type_name(), &spec.target) {
                    return Err(err(format!("'{}' is not a {}", r, spec.target)));
                }
                Ok(Value::Ref(r))
            }
            (FieldKind::Reference(spec), Json::String(s)) => {
                let parsed = Reference::parse(s, self).map_err(|e| err(e.to_string()))?;
                let r = parsed.into_reference();
                if !self.is_a(r.type_name(), &spec.target) {
                    return Err(err(format!("'{}' is not a {}", r, spec.target)));
                }
                Ok(Value::Ref(r))
            }
            (FieldKind::Reference(spec), _) => {
                Err(err(format!("must be a reference (key string) to a {}", spec.target)))
            }
            (FieldKind::Int { min, max }, Json::Number(n)) => match n.as_i64() {
                Some(i) => check_int(i, *min, *max).map_err(err),
                None => Err(err(format!("{n} is not an integer"))),
            },
            (FieldKind::Float { min, max }, Json::Number(n)) => {
                check_float(n.as_f64().unwrap_or(f64::NAN), *min, *max).map_err(err)
            }
            (FieldKind::Bool, Json::Bool(b)) => Ok(Value::Bool(*b)),
            (kind, Json::String(s)) if !matches!(kind, FieldKind::Bool) => scalar_from_text(kind, s).map_err(err),
            (kind, other) => Err(err(format!("expected {}, got {other}", kind_name(kind)))),
        }
    }
}

fn kind_name(kind: &FieldKind) -> &'static str {
    match kind {
        FieldKind::String { .. } => "a string",
        FieldKind::Int { .. } => "an integer",
        FieldKind::Float { .. } => "a number",
        FieldKind::Bool => "a boolean",
        FieldKind::Enum(_) => "one of the enum's strings",
        FieldKind::Ip(_) => "an IP address string",
        FieldKind::Hostname => "a hostname string",
        FieldKind::DateTime => "an RFC 3339 timestamp string",
        FieldKind::Json => "JSON",
        FieldKind::Url => "a URL string",
        FieldKind::Reference(_) => "a reference",
    }
}
