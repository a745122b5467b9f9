//! Primary keys (references): `Type|nk1|nk2…`, built as Octopoes builds them and parsed back
//! exactly into typed tokens.
//!
//! A reference field contributes its target's natural key inline (`IPPort|internet|192.0.2.1|tcp|443`),
//! or, where the target may be any type, the target's full primary key
//! (`Finding|IPPort|internet|192.0.2.1|tcp|443|KAT-OPEN-PORT`). String leaves are escaped with
//! [`crate::escape`], so parsing never guesses where a value ends.

use std::fmt;
use std::ops::Index;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, TypeDef};
use crate::error::ModelError;
use crate::escape::{escape_leaf, unescape_leaf};
use crate::schema::{FieldKind, KeyEmbed, KeyHash};
use crate::value::{scalar_from_text, Value};

/// A primary key used as a value: the identity of one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Reference(String);

impl Reference {
    /// Parses and validates a key against the catalogue, returning its typed tokens and the
    /// canonical form of the key (normalised leaves).
    pub fn parse(key: &str, catalog: &Catalog) -> Result<ParsedReference, ModelError> {
        let (type_name, rest) = match key.split_once('|') {
            Some(parts) => parts,
            None => (key, ""),
        };
        let def =
            catalog.get(type_name).map_err(|_| ModelError::key(key, format!("unknown object type '{type_name}'")))?;
        if def.is_abstract {
            return Err(ModelError::key(key, format!("object type '{type_name}' is abstract")));
        }
        if !key.contains('|') {
            return Err(ModelError::key(key, "a key is `Type|natural key`"));
        }
        let segments: Vec<&str> = rest.split('|').collect();
        let mut parser = KeyParser { catalog, key, segments: &segments, pos: 0 };
        let mut canonical = vec![type_name.to_owned()];
        let tokens = parser.parse_type(def, &mut canonical)?;
        if parser.pos != segments.len() {
            return Err(ModelError::key(
                key,
                format!("{} unexpected trailing segment(s)", segments.len() - parser.pos),
            ));
        }
        Ok(ParsedReference { reference: Reference(canonical.join("|")), tokens })
    }

    /// Wraps a key string that is already known to be canonical (read back from the store).
    pub fn from_trusted(key: impl Into<String>) -> Self {
        Reference(key.into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The object type: the first segment.
    pub fn type_name(&self) -> &str {
        self.0.split_once('|').map_or(self.0.as_str(), |(t, _)| t)
    }

    /// Everything after the type: what a natural-key reference embeds.
    pub fn natural_key(&self) -> &str {
        self.0.split_once('|').map_or("", |(_, nk)| nk)
    }

    /// Consumes the reference into its key string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Reference {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// A validated key with its token tree.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedReference {
    reference: Reference,
    tokens: Tokens,
}

impl ParsedReference {
    /// The canonical key.
    pub fn reference(&self) -> &Reference {
        &self.reference
    }

    /// The token tree: `tokens()["address"]["address"]`.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Consumes into the canonical key.
    pub fn into_reference(self) -> Reference {
        self.reference
    }
}

/// The natural-key fields of one object in a key, by name.
#[derive(Debug, Clone, PartialEq)]
pub struct Tokens {
    /// The concrete type, or the abstract target type when the key cannot tell
    /// (a `FindingType` id alone does not say which kind of finding type it is).
    pub type_name: String,
    /// Natural-key fields in key order.
    pub fields: crate::NameMap<Token>,
}

/// One natural-key field inside a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// A scalar leaf, unescaped (empty for a null optional field).
    Leaf(String),
    /// A referenced object's natural key.
    Node(Tokens),
    /// Returned by indexing a field that is not there.
    Missing,
}

static MISSING: Token = Token::Missing;

impl Token {
    /// The leaf text, if this is a leaf.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Token::Leaf(s) => Some(s),
            _ => None,
        }
    }

    /// The nested tokens, if this is a node.
    pub fn as_node(&self) -> Option<&Tokens> {
        match self {
            Token::Node(t) => Some(t),
            _ => None,
        }
    }
}

impl Index<&str> for Tokens {
    type Output = Token;
    fn index(&self, field: &str) -> &Token {
        self.fields.get(field).unwrap_or(&MISSING)
    }
}

impl Index<&str> for Token {
    type Output = Token;
    fn index(&self, field: &str) -> &Token {
        match self {
            Token::Node(t) => &t[field],
            _ => &MISSING,
        }
    }
}

impl PartialEq<&str> for Token {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == Some(*other)
    }
}

struct KeyParser<'a> {
    catalog: &'a Catalog,
    key: &'a str,
    segments: &'a [&'a str],
    pos: usize,
}

impl<'a> KeyParser<'a> {
    fn next(&mut self) -> Result<&'a str, ModelError> {
        let s = *self.segments.get(self.pos).ok_or_else(|| ModelError::key(self.key, "too few segments"))?;
        self.pos += 1;
        Ok(s)
    }

    fn parse_type(&mut self, def: &TypeDef, out: &mut Vec<String>) -> Result<Tokens, ModelError> {
        let mut fields = crate::NameMap::default();
        for name in &def.natural_key {
            let f = &def.fields[name];
            let token = match &f.kind {
                FieldKind::Reference(spec) if spec.embed == KeyEmbed::Full => {
                    let type_name = self.next()?.to_owned();
                    let target = self.catalog.get(&type_name).map_err(|_| {
                        ModelError::key(self.key, format!("{}.{name}: unknown object type '{type_name}'", def.name))
                    })?;
                    if target.is_abstract || !self.catalog.is_a(&type_name, &spec.target) {
                        return Err(ModelError::key(
                            self.key,
                            format!("{}.{name}: '{type_name}' is not a concrete {}", def.name, spec.target),
                        ));
                    }
                    out.push(type_name);
                    Token::Node(self.parse_type(target, out)?)
                }
                FieldKind::Reference(spec) => Token::Node(self.parse_target(&spec.target, out)?),
                kind => {
                    let raw = self.next()?;
                    let text = unescape_leaf(raw).ok_or_else(|| {
                        ModelError::key(self.key, format!("{}.{name}: bad escape in '{raw}'", def.name))
                    })?;
                    let leaf = if f.key_hash == Some(KeyHash::Sha1) {
                        if text.len() != 40 || !text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                            return Err(ModelError::key(
                                self.key,
                                format!("{}.{name}: expected a SHA-1 hex digest", def.name),
                            ));
                        }
                        text.into_owned()
                    } else if text.is_empty() && f.optional {
                        String::new()
                    } else {
                        let value = scalar_from_text(kind, &text)
                            .map_err(|m| ModelError::key(self.key, format!("{}.{name}: {m}", def.name)))?;
                        value.key_text().into_owned()
                    };
                    out.push(escape_leaf(&leaf).into_owned());
                    Token::Leaf(leaf)
                }
            };
            fields.insert(name.clone(), token);
        }
        Ok(Tokens { type_name: def.name.clone(), fields })
    }

    /// Parses a natural-key-embedded target; an abstract target is tried as each concrete type.
    fn parse_target(&mut self, target: &str, out: &mut Vec<String>) -> Result<Tokens, ModelError> {
        let def = self.catalog.get(target)?;
        if !def.is_abstract {
            return self.parse_type(def, out);
        }
        let start = self.pos;
        let mut found: Option<(Tokens, Vec<String>, usize)> = None;
        let mut ambiguous = false;
        let mut last_err = None;
        for concrete in self.catalog.concrete_types(target)? {
            self.pos = start;
            let mut scratch = Vec::new();
            match self.parse_type(self.catalog.get(concrete)?, &mut scratch) {
                Ok(tokens) => {
                    if found.is_some() {
                        ambiguous = true;
                    } else {
                        found = Some((tokens, scratch, self.pos));
                    }
                }
                Err(e) => last_err = Some(e),
            }
        }
        match found {
            Some((mut tokens, parts, end)) => {
                if ambiguous {
                    tokens.type_name = target.to_owned();
                }
                self.pos = end;
                out.extend(parts);
                Ok(tokens)
            }
            None => Err(last_err.unwrap_or_else(|| ModelError::key(self.key, format!("no concrete type of {target}")))),
        }
    }
}

/// Builds the primary key of an object of type `def` from its validated field values.
pub(crate) fn primary_key(def: &TypeDef, fields: &crate::NameMap<Value>) -> Reference {
    let mut key = def.name.clone();
    for name in &def.natural_key {
        key.push('|');
        let f = &def.fields[name];
        match (fields.get(name), f.reference()) {
            (Some(Value::Ref(r)), Some(spec)) => match spec.embed {
                KeyEmbed::Full => key.push_str(r.as_str()),
                KeyEmbed::NaturalKey => key.push_str(r.natural_key()),
            },
            (Some(value), _) => {
                let text = value.key_text();
                match f.key_hash {
                    Some(KeyHash::Sha1) if !matches!(value, Value::Null) => key.push_str(&sha1_hex(&text)),
                    _ => key.push_str(&escape_leaf(&text)),
                }
            }
            (None, _) => {}
        }
    }
    Reference(key)
}

fn sha1_hex(text: &str) -> String {
    use sha1::{Digest, Sha1};
    let digest = Sha1::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Tokens {
    /// The token tree as JSON: `{"object_type": …, field: leaf or nested object}`.
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        map.insert("object_type".into(), serde_json::Value::String(self.type_name.clone()));
        for (name, token) in &self.fields {
            let v = match token {
                Token::Leaf(s) => serde_json::Value::String(s.clone()),
                Token::Node(t) => t.to_json(),
                Token::Missing => serde_json::Value::Null,
            };
            map.insert(name.clone(), v);
        }
        serde_json::Value::Object(map)
    }
}
