//! The catalogue: every known OOI type, resolved from schema files.
//!
//! Built-in types ship as schema files compiled into the binary; [`CatalogBuilder::add_dir`]
//! loads a user's own types from a directory at start-up, without recompiling.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use indexmap::IndexMap;

use crate::error::ModelError;
use crate::schema::{resolve_field, FieldDef, FieldKind, KeyEmbed, SchemaFile};
use crate::NameMap;
use crate::ROOT_TYPE;

/// Lookups by type name, with the hasher of [`NameMap`].
type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Key prefixes the graph uses for its own records (origins, scan profiles, settings), kept apart
/// from types.
pub const RESERVED_TYPE_NAMES: &[&str] = &["Origin", "OriginParameter", "ScanProfile", "Setting"];

/// The built-in schema files, embedded at compile time.
const BUILTIN_SCHEMAS: &[(&str, &str)] = &[
    ("network.toml", include_str!("../schema/network.toml")),
    ("dns.toml", include_str!("../schema/dns.toml")),
    ("email_security.toml", include_str!("../schema/email_security.toml")),
    ("certificate.toml", include_str!("../schema/certificate.toml")),
    ("service.toml", include_str!("../schema/service.toml")),
    ("web.toml", include_str!("../schema/web.toml")),
    ("findings.toml", include_str!("../schema/findings.toml")),
];

/// A resolved OOI type: own and inherited fields, natural key, place in the hierarchy.
#[derive(Debug, Clone)]
pub struct TypeDef {
    /// The type's name, also the first segment of its primary keys.
    pub name: String,
    /// Abstract types group concrete ones (`IPAddress`) and have no instances.
    pub is_abstract: bool,
    /// Direct parents.
    pub parents: Vec<String>,
    /// Every ancestor, nearest first, ending with the root `OOI`.
    pub ancestors: Vec<String>,
    /// Human description.
    pub description: Option<String>,
    /// Whether tree walks continue through objects of this type.
    pub traversable: bool,
    /// The fields forming the natural key, in key order.
    pub natural_key: Vec<String>,
    /// All fields, inherited ones first.
    pub fields: NameMap<FieldDef>,
    /// Names of incoming relations, by the referencing field (default `Type_field`).
    pub reverse_names: NameMap<String>,
    /// The schema file that declared it.
    pub source: PathBuf,
}

impl TypeDef {
    /// A field by name.
    pub fn field(&self, name: &str) -> Option<&FieldDef> {
        self.fields.get(name)
    }

    /// The name of the relation seen from a referenced object (Octopoes' reverse relation name).
    pub fn reverse_name(&self, field: &str) -> String {
        self.reverse_names.get(field).cloned().unwrap_or_else(|| format!("{}_{}", self.name, field))
    }

    /// The reference fields with their declarations.
    pub fn references(&self) -> impl Iterator<Item = &FieldDef> {
        self.fields.values().filter(|f| f.reference().is_some())
    }
}

/// Every known type; cheap to clone and share.
#[derive(Debug, Clone)]
pub struct Catalog {
    inner: Arc<CatalogInner>,
}

#[derive(Debug)]
struct CatalogInner {
    types: NameMap<TypeDef>,
    /// Concrete types that are the named type or descend from it.
    concrete: FastMap<String, Vec<String>>,
    /// Number of key segments of each type's natural key; `None` when variable.
    arity: FastMap<String, Option<usize>>,
}

impl Catalog {
    /// The built-in catalogue (OpenKAT's OOI model).
    pub fn builtin() -> Catalog {
        match CatalogBuilder::with_builtin().build() {
            Ok(catalog) => catalog,
            // The built-in files are tested; failing here is a bug in the shipped schema.
            Err(e) => panic!("built-in schema is invalid: {e}"),
        }
    }

    /// A builder to add user schema files to.
    pub fn builder() -> CatalogBuilder {
        CatalogBuilder::with_builtin()
    }

    /// A type by name.
    pub fn get(&self, name: &str) -> Result<&TypeDef, ModelError> {
        self.inner.types.get(name).ok_or_else(|| ModelError::UnknownType(name.to_owned()))
    }

    /// Whether a type of this name exists (abstract types and `OOI` included).
    pub fn contains(&self, name: &str) -> bool {
        self.inner.types.contains_key(name)
    }

    /// All types, in declaration order (the root `OOI` first).
    pub fn types(&self) -> impl Iterator<Item = &TypeDef> {
        self.inner.types.values()
    }

    /// The concrete types a query for `name` covers: itself when concrete, else its descendants.
    pub fn concrete_types(&self, name: &str) -> Result<&[String], ModelError> {
        self.inner.concrete.get(name).map(Vec::as_slice).ok_or_else(|| ModelError::UnknownType(name.to_owned()))
    }

    /// Whether `name` is `ancestor` or descends from it.
    pub fn is_a(&self, name: &str, ancestor: &str) -> bool {
        name == ancestor
            || ancestor == ROOT_TYPE && self.contains(name)
            || self.inner.types.get(name).is_some_and(|t| t.ancestors.iter().any(|a| a == ancestor))
    }
}

/// Collects schema files, then resolves and checks them into a [`Catalog`].
pub struct CatalogBuilder {
    files: Vec<SchemaFile>,
    errors: Vec<ModelError>,
}

impl CatalogBuilder {
    /// A builder holding the built-in schema files.
    pub fn with_builtin() -> Self {
        let mut b = CatalogBuilder { files: Vec::new(), errors: Vec::new() };
        for (name, text) in BUILTIN_SCHEMAS {
            b = b.add_str(Path::new(&format!("builtin:{name}")), text);
        }
        b
    }

    /// A builder with no types at all but the root, for tests of the schema format.
    pub fn empty() -> Self {
        CatalogBuilder { files: Vec::new(), errors: Vec::new() }
    }

    /// Adds schema text; `source` names it in errors.
    pub fn add_str(mut self, source: &Path, text: &str) -> Self {
        match SchemaFile::parse(source, text) {
            Ok(f) => self.files.push(f),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Adds one schema file.
    pub fn add_file(mut self, path: &Path) -> Self {
        match SchemaFile::read(path) {
            Ok(f) => self.files.push(f),
            Err(e) => self.errors.push(e),
        }
        self
    }

    /// Adds every `*.toml` file of a directory, in name order.
    pub fn add_dir(mut self, dir: &Path) -> Self {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.errors.push(ModelError::Schema { file: dir.to_owned(), message: e.to_string() });
                return self;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        paths.sort();
        for p in paths {
            self = self.add_file(&p);
        }
        self
    }

    /// Resolves inheritance and checks every declaration; the first error wins.
    pub fn build(self) -> Result<Catalog, ModelError> {
        if let Some(e) = self.errors.into_iter().next() {
            return Err(e);
        }
        let mut raw: IndexMap<String, (PathBuf, crate::schema::RawType)> = IndexMap::new();
        for file in self.files {
            for (name, ty) in file.types {
                if name == ROOT_TYPE {
                    return Err(schema_err(
                        &file.source,
                        format!("`{ROOT_TYPE}` is the implicit root type and cannot be declared"),
                    ));
                }
                if RESERVED_TYPE_NAMES.contains(&name.as_str()) {
                    return Err(schema_err(
                        &file.source,
                        format!("`{name}` names the graph's own records and cannot be a type"),
                    ));
                }
                if !is_type_name(&name) {
                    return Err(schema_err(&file.source, format!("type name `{name}` must be an ASCII identifier")));
                }
                if let Some((other, _)) = raw.get(&name) {
                    return Err(schema_err(
                        &file.source,
                        format!("type `{name}` is already declared in {}", other.display()),
                    ));
                }
                raw.insert(name, (file.source.clone(), ty));
            }
        }

        let mut types: NameMap<TypeDef> = NameMap::default();
        types.insert(
            ROOT_TYPE.to_owned(),
            TypeDef {
                name: ROOT_TYPE.to_owned(),
                is_abstract: true,
                parents: vec![],
                ancestors: vec![],
                description: Some("The root of every object type.".into()),
                traversable: true,
                natural_key: vec![],
                fields: NameMap::default(),
                reverse_names: NameMap::default(),
                source: PathBuf::from("builtin"),
            },
        );
        // Resolve in dependency order: a type after all its parents.
        let mut visiting = HashSet::new();
        let names: Vec<String> = raw.keys().cloned().collect();
        for name in &names {
            resolve_type(name, &raw, &mut types, &mut visiting)?;
        }

        let mut concrete: FastMap<String, Vec<String>> = FastMap::default();
        for t in types.values().filter(|t| !t.is_abstract) {
            concrete.entry(t.name.clone()).or_default().push(t.name.clone());
            for a in &t.ancestors {
                concrete.entry(a.clone()).or_default().push(t.name.clone());
            }
        }
        for t in types.values() {
            concrete.entry(t.name.clone()).or_default();
        }

        let mut catalog = CatalogInner { types, concrete, arity: FastMap::default() };
        check_references(&catalog)?;
        let names: Vec<String> = catalog.types.keys().cloned().collect();
        for name in &names {
            let mut stack = Vec::new();
            compute_arity(&mut catalog, name, &mut stack)?;
        }
        check_abstract_targets(&catalog)?;
        Ok(Catalog { inner: Arc::new(catalog) })
    }
}

fn schema_err(file: &Path, message: String) -> ModelError {
    ModelError::Schema { file: file.to_owned(), message }
}

fn is_type_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn resolve_type(
    name: &str,
    raw: &IndexMap<String, (PathBuf, crate::schema::RawType)>,
    types: &mut NameMap<TypeDef>,
    visiting: &mut HashSet<String>,
) -> Result<(), ModelError> {
    if types.contains_key(name) {
        return Ok(());
    }
    let (source, ty) = &raw[name];
    if !visiting.insert(name.to_owned()) {
        return Err(schema_err(source, format!("type `{name}` inherits from itself")));
    }
    for p in &ty.parents {
        if p == ROOT_TYPE {
            continue;
        }
        if !raw.contains_key(p) {
            return Err(schema_err(source, format!("type `{name}` has unknown parent `{p}`")));
        }
        resolve_type(p, raw, types, visiting)?;
    }
    let mut fields: NameMap<FieldDef> = NameMap::default();
    let mut reverse_names = NameMap::default();
    let mut ancestors: Vec<String> = Vec::new();
    let mut natural_key = None;
    let mut traversable = None;
    for p in ty.parents.iter().filter(|p| *p != ROOT_TYPE) {
        let parent = &types[p];
        for (fname, f) in &parent.fields {
            fields.entry(fname.clone()).or_insert_with(|| f.clone());
        }
        for (k, v) in &parent.reverse_names {
            reverse_names.entry(k.clone()).or_insert_with(|| v.clone());
        }
        natural_key = natural_key.or_else(|| Some(parent.natural_key.clone()));
        traversable = traversable.or(Some(parent.traversable));
        for a in std::iter::once(p).chain(parent.ancestors.iter()) {
            if !ancestors.contains(a) {
                ancestors.push(a.clone());
            }
        }
    }
    ancestors.retain(|a| a != ROOT_TYPE);
    ancestors.push(ROOT_TYPE.to_owned());
    for (fname, rf) in &ty.fields {
        if matches!(fname.as_str(), "object_type" | "primary_key" | "scan_profile" | "user_id") {
            return Err(schema_err(source, format!("{name}.{fname}: this field name is reserved")));
        }
        fields.insert(fname.clone(), resolve_field(source, name, fname, rf)?);
    }
    for (k, v) in &ty.reverse_names {
        reverse_names.insert(k.clone(), v.clone());
    }
    let natural_key = ty.natural_key.clone().or(natural_key).unwrap_or_default();
    if natural_key.is_empty() && !ty.is_abstract {
        return Err(schema_err(source, format!("type `{name}` needs a natural_key")));
    }
    for k in &natural_key {
        let Some(f) = fields.get(k) else {
            return Err(schema_err(source, format!("{name}: natural key field `{k}` is not a field")));
        };
        if f.list || matches!(f.kind, FieldKind::Json) {
            return Err(schema_err(source, format!("{name}.{k}: lists and JSON cannot be part of a natural key")));
        }
        if f.optional && f.reference().is_some() {
            return Err(schema_err(source, format!("{name}.{k}: a reference in the natural key cannot be optional")));
        }
    }
    for k in ty.reverse_names.keys() {
        if fields.get(k).is_none_or(|f| f.reference().is_none()) {
            return Err(schema_err(source, format!("{name}: reverse name for `{k}`, which is not a reference field")));
        }
    }
    visiting.remove(name);
    types.insert(
        name.to_owned(),
        TypeDef {
            name: name.to_owned(),
            is_abstract: ty.is_abstract,
            parents: ty.parents.clone(),
            ancestors,
            description: ty.description.clone(),
            traversable: ty.traversable.or(traversable).unwrap_or(true),
            natural_key,
            fields,
            reverse_names,
            source: source.clone(),
        },
    );
    Ok(())
}

fn check_references(c: &CatalogInner) -> Result<(), ModelError> {
    for t in c.types.values() {
        for f in t.fields.values() {
            if let Some(spec) = f.reference() {
                if !c.types.contains_key(&spec.target) {
                    return Err(schema_err(
                        &t.source,
                        format!("{}.{}: reference to unknown type `{}`", t.name, f.name, spec.target),
                    ));
                }
                if spec.target == ROOT_TYPE && spec.embed == KeyEmbed::NaturalKey && t.natural_key.contains(&f.name) {
                    return Err(schema_err(
                        &t.source,
                        format!("{}.{}: a reference to any type must embed the full key", t.name, f.name),
                    ));
                }
            }
            if let (Some(default), FieldKind::Enum(values)) = (&f.default, &f.kind) {
                if !default.as_str().is_some_and(|d| values.iter().any(|v| v == d)) {
                    return Err(schema_err(
                        &t.source,
                        format!("{}.{}: default {default} is not one of the values", t.name, f.name),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Computes the fixed number of key segments of a type (None: variable, through full keys).
fn compute_arity(c: &mut CatalogInner, name: &str, stack: &mut Vec<String>) -> Result<Option<usize>, ModelError> {
    if let Some(a) = c.arity.get(name) {
        return Ok(*a);
    }
    if stack.iter().any(|s| s == name) {
        let t = &c.types[name];
        return Err(schema_err(&t.source, format!("natural key of `{name}` contains itself: {}", stack.join(" -> "))));
    }
    stack.push(name.to_owned());
    let t = c.types[name].clone();
    let result = if t.is_abstract {
        // An abstract type's arity is that of its concrete types, when they agree.
        let concrete = c.concrete.get(name).cloned().unwrap_or_default();
        let mut arities = Vec::new();
        for ct in &concrete {
            arities.push(compute_arity(c, ct, stack)?);
        }
        match arities.split_first() {
            Some((first, rest)) if rest.iter().all(|a| a == first) => *first,
            _ => None,
        }
    } else {
        let mut total = Some(0usize);
        for k in &t.natural_key {
            let f = &t.fields[k];
            let part = match f.reference() {
                Some(spec) if spec.embed == KeyEmbed::Full => None,
                Some(spec) => compute_arity(c, &spec.target.clone(), stack)?,
                None => Some(1),
            };
            total = total.zip(part).map(|(a, b)| a + b);
        }
        total
    };
    stack.pop();
    c.arity.insert(name.to_owned(), result);
    Ok(result)
}

/// A natural-key reference to an abstract type embeds only the target's natural key; it parses
/// back only when every concrete target has the same fixed number of key segments.
fn check_abstract_targets(c: &CatalogInner) -> Result<(), ModelError> {
    for t in c.types.values().filter(|t| !t.is_abstract) {
        for k in &t.natural_key {
            let Some(spec) = t.fields[k].reference() else { continue };
            if spec.embed == KeyEmbed::Full {
                continue;
            }
            let target = &c.types[&spec.target];
            if c.concrete.get(&target.name).is_none_or(Vec::is_empty) {
                return Err(schema_err(&t.source, format!("{}.{k}: `{}` has no concrete type", t.name, target.name)));
            }
            if target.is_abstract && c.arity.get(&target.name).copied().flatten().is_none() {
                return Err(schema_err(
                    &t.source,
                    format!(
                        "{}.{k}: the concrete types of `{}` have natural keys of different shapes; set key_embed = \"full\"",
                        t.name, target.name
                    ),
                ));
            }
        }
    }
    Ok(())
}
