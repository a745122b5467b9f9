//! `octograph`: the command-line entry point.
//!
//! Until the HTTP server lands, the CLI is how objects get into and out of a graph's store:
//! `import` validates objects against the catalogue and writes them in one transaction; `get`,
//! `list` and `history` read at any valid and transaction time.

mod bench;
mod config;

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use octo_model::{Catalog, CatalogBuilder, Reference};
use octo_store::{AsOf, RedbStore, Store, StoreOptions, Timestamp, ValidTime};
use serde_json::json;

use crate::config::Config;

#[derive(Parser)]
#[command(name = "octograph", version, about = "Security knowledge graph, log analysis and change stream")]
struct Cli {
    /// Config file (TOML); `octograph.toml` in the working directory is read when present.
    #[arg(long, global = true, env = "OCTOGRAPH_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (overrides the config file).
    #[arg(long, global = true, env = "OCTOGRAPH_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Directory of extra schema files adding OOI types (overrides the config file).
    #[arg(long, global = true, env = "OCTOGRAPH_SCHEMA_DIR")]
    schema_dir: Option<PathBuf>,
    /// Organisation whose graph to use.
    #[arg(long, global = true, default_value = "default", env = "OCTOGRAPH_ORG")]
    org: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the object types of the catalogue (built-in plus the schema directory's).
    Types,
    /// Parse a primary key and print its canonical form and typed tokens.
    ParseKey { key: String },
    /// Validate objects (a JSON array, one object, or JSON lines; `-` for stdin) and write them
    /// in one transaction.
    Import {
        file: PathBuf,
        /// Valid time of the objects (RFC 3339); default: the transaction's time.
        #[arg(long)]
        valid_time: Option<Timestamp>,
    },
    /// Print one object as of a valid time and, optionally, a transaction time.
    Get {
        key: String,
        #[arg(long)]
        valid_time: Option<Timestamp>,
        #[arg(long)]
        tx_time: Option<Timestamp>,
    },
    /// Print the objects of a type (abstract types included), one JSON document per line.
    List {
        object_type: String,
        #[arg(long)]
        valid_time: Option<Timestamp>,
        #[arg(long)]
        tx_time: Option<Timestamp>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Print every version of an object (one JSON line each).
    History { key: String },
    /// Delete an object from a valid time on.
    Delete {
        key: String,
        #[arg(long)]
        valid_time: Option<Timestamp>,
    },
    /// Benchmarks that need a whole process (peak memory under `/usr/bin/time -v`).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // Usage errors: the one line that says what is wrong (clap adds usage and hints below it).
            let text = e.to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: invalid arguments"));
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cli) {
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}

fn catalog(config: &Config) -> anyhow::Result<Catalog> {
    let builder = CatalogBuilder::with_builtin();
    let builder = match &config.schema_dir {
        Some(dir) => builder.add_dir(dir),
        None => builder,
    };
    Ok(builder.build()?)
}

fn valid_org(org: &str) -> anyhow::Result<&str> {
    if org.is_empty() || !org.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        bail!("organisation '{org}' must be letters, digits, '-' or '_'");
    }
    Ok(org)
}

fn open_store(config: &Config, org: &str) -> anyhow::Result<RedbStore> {
    let dir = config.data_dir.join(valid_org(org)?);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let options = StoreOptions { cache_bytes: config.cache_mb << 20 };
    RedbStore::open(&dir.join("graph.redb"), &options)
        .with_context(|| format!("opening the store in {}", dir.display()))
}

fn as_of(valid_time: Option<Timestamp>, tx_time: Option<Timestamp>) -> AsOf {
    AsOf { valid_time: valid_time.unwrap_or_else(Timestamp::now), tx_time }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Bench(cmd) = cli.command {
        return bench::run(cmd);
    }
    let config = Config::load(cli.config.as_deref(), cli.data_dir, cli.schema_dir)?;
    let catalog = catalog(&config)?;
    match cli.command {
        Command::Types => {
            for t in catalog.types() {
                let line = json!({
                    "name": t.name, "abstract": t.is_abstract, "parents": t.parents,
                    "natural_key": t.natural_key, "traversable": t.traversable,
                    "source": t.source.display().to_string(),
                });
                println!("{line}");
            }
        }
        Command::ParseKey { key } => {
            let parsed = Reference::parse(&key, &catalog)?;
            println!("{}", json!({"primary_key": parsed.reference().as_str(), "tokens": parsed.tokens().to_json()}));
        }
        Command::Import { file, valid_time } => {
            let docs = read_documents(&file)?;
            let mut objects = Vec::with_capacity(docs.len());
            for (i, doc) in docs.iter().enumerate() {
                objects.push(
                    catalog.ooi_from_json(doc).with_context(|| format!("object {} of {}", i + 1, file.display()))?,
                );
            }
            let store = open_store(&config, &cli.org)?;
            let mut tx = store.begin()?;
            for o in &objects {
                let refs: Vec<String> = o.references().map(|(_, r)| r.to_string()).collect();
                let doc = serde_json::to_vec(&o.to_json())?;
                tx.put(o.primary_key().as_str(), &doc, &refs, ValidTime { start: valid_time, end: None })?;
            }
            let receipt = tx.commit()?;
            println!(
                "{}",
                json!({"imported": objects.len(), "tx_id": receipt.tx_id, "tx_time": receipt.tx_time.to_string()})
            );
        }
        Command::Get { key, valid_time, tx_time } => {
            let key = Reference::parse(&key, &catalog)?.into_reference();
            let store = open_store(&config, &cli.org)?;
            let snap = store.snapshot()?;
            let at = as_of(valid_time, tx_time);
            match snap.get(key.as_str(), at)? {
                Some(v) => println!("{}", String::from_utf8_lossy(&v.doc)),
                None => bail!("object '{key}' not found at valid time {}", at.valid_time),
            }
        }
        Command::List { object_type, valid_time, tx_time, limit } => {
            let types: Vec<&str> = catalog.concrete_types(&object_type)?.iter().map(String::as_str).collect();
            let store = open_store(&config, &cli.org)?;
            let snap = store.snapshot()?;
            let mut n = 0;
            let mut out = std::io::stdout().lock();
            let mut write_err = None;
            snap.scan_types(&types, as_of(valid_time, tx_time), &mut |v| {
                use std::io::Write;
                if let Err(e) = out.write_all(&v.doc).and_then(|()| out.write_all(b"\n")) {
                    write_err = Some(e);
                    return false;
                }
                n += 1;
                n < limit
            })?;
            if let Some(e) = write_err {
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    return Err(e.into());
                }
            }
        }
        Command::History { key } => {
            let key = Reference::parse(&key, &catalog)?.into_reference();
            let store = open_store(&config, &cli.org)?;
            let history = store.snapshot()?.history(key.as_str())?;
            if history.is_empty() {
                bail!("object '{key}' has no history");
            }
            for v in history {
                let doc: serde_json::Value =
                    if v.is_tombstone() { serde_json::Value::Null } else { serde_json::from_slice(&v.doc)? };
                println!(
                    "{}",
                    json!({
                        "valid_time": v.valid_time.to_string(), "tx_time": v.tx_time.to_string(), "tx_id": v.tx_id,
                        "content_hash": v.content_hash.map(|h| h.to_string()), "deleted": v.is_tombstone(), "document": doc,
                    })
                );
            }
        }
        Command::Delete { key, valid_time } => {
            let key = Reference::parse(&key, &catalog)?.into_reference();
            let store = open_store(&config, &cli.org)?;
            let mut tx = store.begin()?;
            let at = AsOf { valid_time: valid_time.unwrap_or(tx.tx_time()), tx_time: None };
            if tx.get(key.as_str(), at)?.is_none() {
                bail!("object '{key}' does not exist at valid time {}", at.valid_time);
            }
            tx.delete(key.as_str(), ValidTime { start: valid_time, end: None })?;
            let receipt = tx.commit()?;
            println!(
                "{}",
                json!({"deleted": key.as_str(), "tx_id": receipt.tx_id, "tx_time": receipt.tx_time.to_string()})
            );
        }
        Command::Bench(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// Reads a JSON array, a single JSON object, or JSON lines.
fn read_documents(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let mut text = String::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_string(&mut text).context("reading stdin")?;
    } else {
        text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    }
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        return serde_json::from_str(trimmed)
            .with_context(|| format!("{} is not a JSON array of objects", path.display()));
    }
    let mut docs = Vec::new();
    for (i, v) in serde_json::Deserializer::from_str(trimmed).into_iter::<serde_json::Value>().enumerate() {
        docs.push(v.with_context(|| format!("{}: JSON value {} is malformed", path.display(), i + 1))?);
    }
    if docs.is_empty() {
        bail!("{} holds no objects", path.display());
    }
    Ok(docs)
}
