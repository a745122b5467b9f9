//! Objects read back from the store, decoded straight from their bytes.
//!
//! Reads are most of what the graph does, and going through a `serde_json::Value` first (a map
//! of allocated keys, then a second pass to build the object) cost more than the read itself.
//! A document this system wrote starts with `object_type`, so its type, and with it each
//! field's kind, is known before the fields come: each value is decoded once, into what the
//! object holds. Anything unexpected (another key order, a value a changed schema no longer
//! accepts) is left to the general way, [`Catalog::ooi_from_stored`], which gives the same
//! object or the error to report.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

use super::{Ooi, ScanProfile};
use crate::catalog::{Catalog, TypeDef};
use crate::key::Reference;
use crate::schema::{FieldDef, FieldKind};
use crate::value::Value;
use crate::NameMap;

impl Catalog {
    /// Builds an object from the bytes of a document this system stored under `key`: the
    /// object [`Catalog::ooi_from_stored`] gives for the parsed document, in one pass. `None`
    /// when the document is not as this system writes it; the general path then decides.
    pub fn ooi_from_stored_bytes(&self, key: &str, bytes: &[u8]) -> Option<Ooi> {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let ooi = StoredOoi { catalog: self, key }.deserialize(&mut de).ok()?;
        de.end().ok()?;
        Some(ooi)
    }
}

/// A map key or string, borrowed from the input when it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V)
    }
}

/// Why the fast path gave up; the general path then decides.
fn give_up<E: serde::de::Error>(why: impl fmt::Display) -> E {
    E::custom(why)
}

struct StoredOoi<'a> {
    catalog: &'a Catalog,
    key: &'a str,
}

impl<'de> DeserializeSeed<'de> for StoredOoi<'_> {
    type Value = Ooi;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Ooi, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for StoredOoi<'_> {
    type Value = Ooi;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a stored object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Ooi, A::Error> {
        match map.next_key::<Text>()? {
            Some(Text(k)) if k == "object_type" => {}
            _ => return Err(give_up("object_type is not the first key")),
        }
        let Text(object_type) = map.next_value::<Text>()?;
        let def = self.catalog.get(&object_type).map_err(give_up)?;
        if def.is_abstract {
            return Err(give_up("abstract type"));
        }
        let mut slots: Vec<Option<Value>> = (0..def.fields.len()).map(|_| None).collect();
        let mut scan_profile = None;
        let mut user_id = None;
        while let Some(Text(name)) = map.next_key::<Text>()? {
            match name.as_ref() {
                "primary_key" => {
                    map.next_value::<IgnoredAny>()?;
                }
                "scan_profile" => scan_profile = map.next_value::<Option<ScanProfile>>()?,
                "user_id" => user_id = map.next_value::<Option<i64>>()?,
                field => {
                    let Some((i, _, f)) = def.fields.get_full(field) else { return Err(give_up("unknown field")) };
                    slots[i] = map.next_value_seed(StoredField { catalog: self.catalog, def, field: f })?;
                }
            }
        }
        let mut fields = NameMap::with_capacity_and_hasher(def.fields.len(), Default::default());
        for ((name, f), slot) in def.fields.iter().zip(slots) {
            let value = match (slot, &f.default) {
                (Some(v), _) => v,
                (None, Some(default)) if f.list => {
                    self.catalog.stored_list(def, f, default.clone()).map_err(give_up)?
                }
                (None, Some(default)) => self.catalog.coerce_stored(def, f, default.clone()).map_err(give_up)?,
                (None, None) if f.optional => Value::Null,
                (None, None) => return Err(give_up("a required field is missing")),
            };
            fields.insert(name.clone(), value);
        }
        Ok(Ooi {
            object_type: def.name.clone(),
            primary_key: Reference::from_trusted(self.key),
            fields,
            scan_profile,
            user_id,
        })
    }
}

/// One field's value, decoded by the field's kind; `None` for null.
struct StoredField<'a> {
    catalog: &'a Catalog,
    def: &'a TypeDef,
    field: &'a FieldDef,
}

impl<'de> DeserializeSeed<'de> for StoredField<'_> {
    type Value = Option<Value>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<Value>, D::Error> {
        let (catalog, def, f) = (self.catalog, self.def, self.field);
        if f.list {
            return match Option::<Json>::deserialize(d)? {
                None => Ok(None),
                Some(items) => catalog.stored_list(def, f, items).map(Some).map_err(give_up),
            };
        }
        match &f.kind {
            FieldKind::Reference(_) | FieldKind::String { .. } | FieldKind::Hostname | FieldKind::Url => {
                match Option::<String>::deserialize(d)? {
                    None => Ok(None),
                    Some(s) => catalog.coerce_stored(def, f, Json::String(s)).map(Some).map_err(give_up),
                }
            }
            _ => match Option::<Json>::deserialize(d)? {
                None => Ok(None),
                Some(raw) => catalog.coerce_stored(def, f, raw).map(Some).map_err(give_up),
            },
        }
    }
}
