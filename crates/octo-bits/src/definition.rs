//! What a bit is: a declaration of what it consumes and looks at, and a pure function from those
//! objects (and its configuration) to the objects it derives.

use octo_model::{Catalog, ModelError, Ooi, Reference, Tokens};
use octo_store::Timestamp;
use serde_json::{Map, Value as Json};

/// Why a bit could not run on an input.
#[derive(Debug, thiserror::Error)]
pub enum BitError {
    /// An object the bit built does not validate.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The input is not what the bit expects.
    #[error("{0}")]
    Invalid(String),
}

/// Result of bit runs.
pub type BitResult<T> = std::result::Result<T, BitError>;

/// Objects related to the consumed one that a bit also reads: those of `ooi_type` from which
/// `relation_path` leads to the consumed object (Octopoes' `BitParameterDefinition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parameter {
    /// The parameter objects' type (abstract allowed).
    pub ooi_type: String,
    /// Fields from a parameter object to the consumed one (`address`, `ip_port.address`,
    /// `ooi [is Hostname]`).
    pub relation_path: String,
}

/// A bit's declaration (Octopoes' `BitDefinition`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BitDefinition {
    /// The id, which is also the method of its inference origins.
    pub id: String,
    /// The type it consumes (abstract allowed): it runs once per object of that type.
    pub consumes: String,
    /// What else it reads.
    pub parameters: Vec<Parameter>,
    /// The consumed object's scan level must be at least this for the bit to derive anything.
    pub min_scan_level: u8,
    /// Whether it runs unless disabled.
    pub default_enabled: bool,
    /// A path from the consumed object to the object a `Config` for this bit hangs on
    /// (`IPAddress.network`).
    pub config_ooi_relation_path: Option<String>,
}

impl BitDefinition {
    /// A bit consuming `consumes`, enabled by default, minimum scan level 1 (Octopoes' defaults).
    pub fn new(id: &str, consumes: &str) -> Self {
        BitDefinition {
            id: id.to_owned(),
            consumes: consumes.to_owned(),
            parameters: Vec::new(),
            min_scan_level: 1,
            default_enabled: true,
            config_ooi_relation_path: None,
        }
    }

    /// Adds a parameter.
    pub fn param(mut self, ooi_type: &str, relation_path: &str) -> Self {
        self.parameters.push(Parameter { ooi_type: ooi_type.to_owned(), relation_path: relation_path.to_owned() });
        self
    }

    /// Sets the minimum scan level.
    pub fn min_level(mut self, level: u8) -> Self {
        self.min_scan_level = level;
        self
    }

    /// Sets the config path.
    pub fn config_path(mut self, path: &str) -> Self {
        self.config_ooi_relation_path = Some(path.to_owned());
        self
    }

    /// Makes it opt-in.
    pub fn disabled_by_default(mut self) -> Self {
        self.default_enabled = false;
        self
    }
}

/// A rule. Implementations are pure: the same input gives the same output, which is what lets
/// the engine re-run them whenever an input changes and compare.
pub trait Bit: Send + Sync {
    /// Its declaration.
    fn definition(&self) -> &BitDefinition;
    /// The objects it derives from `input`.
    fn run(&self, input: &BitInput<'_>) -> BitResult<Vec<Ooi>>;
}

/// A bit written as a plain function.
pub struct FnBit {
    definition: BitDefinition,
    run: fn(&BitInput<'_>) -> BitResult<Vec<Ooi>>,
}

impl FnBit {
    /// Pairs a declaration with its function.
    pub fn new(definition: BitDefinition, run: fn(&BitInput<'_>) -> BitResult<Vec<Ooi>>) -> Self {
        FnBit { definition, run }
    }
}

impl Bit for FnBit {
    fn definition(&self) -> &BitDefinition {
        &self.definition
    }
    fn run(&self, input: &BitInput<'_>) -> BitResult<Vec<Ooi>> {
        (self.run)(input)
    }
}

/// Everything a bit reads for one run.
#[derive(Debug, Clone)]
pub struct BitInput<'a> {
    /// The consumed object.
    pub source: Ooi,
    /// The parameter objects, in key order.
    pub parameters: Vec<Ooi>,
    /// The `config` of the matching `Config` object, or empty.
    pub config: Map<String, Json>,
    /// The valid time of the run: rules about time (certificate expiry) judge against it, so a
    /// question asked about the past gets the past's answer.
    pub valid_time: Timestamp,
    /// The catalogue, to build results.
    pub catalog: &'a Catalog,
}

impl<'a> BitInput<'a> {
    /// An input with no parameters or config, for tests and dry runs.
    pub fn new(catalog: &'a Catalog, source: Ooi) -> Self {
        BitInput { source, parameters: vec![], config: Map::new(), valid_time: Timestamp::now(), catalog }
    }

    /// The parameter objects of a type (or its subtypes).
    pub fn params_of<'s>(&'s self, type_name: &'s str) -> impl Iterator<Item = &'s Ooi> + 's {
        self.parameters.iter().filter(move |p| self.catalog.is_a(p.object_type(), type_name))
    }

    /// Builds an object from JSON fields.
    pub fn make(&self, object_type: &str, fields: Json) -> BitResult<Ooi> {
        let Json::Object(map) = fields else {
            return Err(BitError::Invalid(format!("fields for {object_type} must be a JSON object")));
        };
        Ok(self.catalog.build_ooi(object_type, &map)?)
    }

    /// A finding type and a finding of it on `ooi`: what most bits yield.
    pub fn finding(&self, type_name: &str, id: &str, ooi: &Reference, description: &str) -> BitResult<Vec<Ooi>> {
        let ft = self.make(type_name, serde_json::json!({ "id": id }))?;
        let finding = self.make(
            "Finding",
            serde_json::json!({ "finding_type": ft.primary_key().as_str(), "ooi": ooi.as_str(), "description": description }),
        )?;
        Ok(vec![ft, finding])
    }

    /// A KAT finding type and a finding of it on `ooi`.
    pub fn kat_finding(&self, id: &str, ooi: &Reference, description: &str) -> BitResult<Vec<Ooi>> {
        self.finding("KATFindingType", id, ooi, description)
    }

    /// The typed tokens of a key.
    pub fn tokens(&self, r: &Reference) -> BitResult<Tokens> {
        Ok(Reference::parse(r.as_str(), self.catalog)?.tokens().clone())
    }

    /// A string config value.
    pub fn config_str(&self, key: &str) -> Option<&str> {
        self.config.get(key).and_then(Json::as_str)
    }
}

/// A string field of an object ("" when absent).
pub fn text<'o>(ooi: &'o Ooi, field: &str) -> &'o str {
    ooi.get(field).and_then(|v| v.as_str()).unwrap_or("")
}

/// An integer field of an object.
pub fn int(ooi: &Ooi, field: &str) -> Option<i64> {
    ooi.get(field).and_then(|v| v.as_int())
}

/// A reference field of an object.
pub fn reference<'o>(ooi: &'o Ooi, field: &str) -> BitResult<&'o Reference> {
    ooi.get(field)
        .and_then(|v| v.as_reference())
        .ok_or_else(|| BitError::Invalid(format!("{} has no reference in '{field}'", ooi.primary_key())))
}
