//! `octograph`: the command-line entry point.
//!
//! `serve` runs the HTTP API (the main job); `token` manages its tokens. The other commands
//! work on an organisation's graph directly, for scripts and for looking inside: `import`
//! declares objects in one transaction (garbage collection and scan levels included); `get`,
//! `list`, `tree`, `origins`, `findings` and `history` read at any valid time. A graph is used by
//! one process at a time: stop the server before writing with these commands.

mod bench;
mod bench_bits;
mod bench_server;
mod bench_stream;
mod bench_syslog;
mod bench_tables;
mod config;
mod evidence;
mod logs_cli;

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use octo_bits::{BitEngine, BitSwitches};
use octo_graph::{Declaration, FindingQuery, Graph, ListQuery, Organisations, OriginQuery, Outcome};
use octo_model::{Catalog, CatalogBuilder, Reference};
use octo_store::{AsOf, Timestamp};
use serde_json::json;

use crate::config::Config;

/// mimalloc instead of the system allocator: with glibc's, a third of a tree request's time went
/// to malloc and free under concurrent load (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Address the API listens on (`serve`; overrides the config file).
    #[arg(long, global = true, env = "OCTOGRAPH_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Organisation whose graph to use.
    #[arg(long, global = true, default_value = "default", env = "OCTOGRAPH_ORG")]
    org: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP API (Octopoes-compatible) until Ctrl-C or SIGTERM.
    Serve {
        /// Log lines as JSON objects instead of text.
        #[arg(long, env = "OCTOGRAPH_LOG_JSON")]
        log_json: bool,
        /// Also receive syslog over UDP here (added to the config file's `[logs] udp`).
        #[arg(long = "syslog-udp")]
        syslog_udp: Vec<std::net::SocketAddr>,
        /// Also receive syslog over TCP here (added to `[logs] tcp`).
        #[arg(long = "syslog-tcp")]
        syslog_tcp: Vec<std::net::SocketAddr>,
        /// Also receive RELP here (added to `[logs] relp`).
        #[arg(long = "syslog-relp")]
        syslog_relp: Vec<std::net::SocketAddr>,
    },
    /// Manage the devices that send logs (the server sees changes at once).
    #[command(subcommand)]
    Devices(logs_cli::DevicesCommand),
    /// The service library that classifies log lines: list, show, import (Octopussy XML or
    /// native TOML), test a line.
    #[command(subcommand)]
    Services(logs_cli::ServicesCommand),
    /// The tables of classified lines: list them, query rows and grouped counts, import
    /// schemas (Octopussy table XML or native TOML).
    #[command(subcommand)]
    Tables(logs_cli::TablesCommand),
    /// Print a device's stored lines received in a time range, with their parsed headers, one
    /// JSON document per line (Octopussy's octo_replay); works beside a running server.
    Replay {
        #[arg(long)]
        device: String,
        /// From this time (RFC 3339, a date, or epoch milliseconds; inclusive).
        #[arg(long)]
        from: Option<octo_logs::LogTime>,
        /// To this time (exclusive).
        #[arg(long)]
        to: Option<octo_logs::LogTime>,
        /// The lines as received, without the parsed header.
        #[arg(long)]
        raw: bool,
    },
    /// Manage API tokens (stored hashed in the data directory; the server sees changes at once).
    #[command(subcommand)]
    Token(TokenCommand),
    /// List the object types of the catalogue (built-in plus the schema directory's).
    Types,
    /// Parse a primary key and print its canonical form and typed tokens.
    ParseKey { key: String },
    /// Manage organisations (each has its own graph).
    #[command(subcommand)]
    Org(OrgCommand),
    /// Declare objects (a JSON array, one object, or JSON lines; `-` for stdin), all in one
    /// transaction; validation fails the whole file before anything is written.
    Import {
        file: PathBuf,
        /// Valid time of the declarations (RFC 3339); default: the transaction's time.
        #[arg(long)]
        valid_time: Option<Timestamp>,
        /// The declaration method recorded in each origin.
        #[arg(long, default_value = "manual")]
        method: String,
    },
    /// Print one object, with its scan profile, as of a valid time and optionally a transaction time.
    Get {
        key: String,
        #[arg(long)]
        valid_time: Option<Timestamp>,
        #[arg(long)]
        tx_time: Option<Timestamp>,
    },
    /// Print the objects of a type (abstract types included), one JSON document per line.
    List {
        #[arg(default_value = "OOI")]
        object_type: String,
        #[arg(long)]
        valid_time: Option<Timestamp>,
        #[arg(long)]
        tx_time: Option<Timestamp>,
        /// Case-insensitive substring of the primary key.
        #[arg(long)]
        search: Option<String>,
        /// Only objects at these scan levels (repeatable).
        #[arg(long = "scan-level")]
        scan_levels: Vec<u8>,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Print every version of an object (one JSON line each).
    History { key: String },
    /// Delete an object, whatever holds it; what only it held goes too.
    Delete {
        key: String,
        #[arg(long)]
        valid_time: Option<Timestamp>,
    },
    /// Print the objects around one, to a depth, as JSON.
    Tree {
        key: String,
        #[arg(long, default_value_t = 1)]
        depth: usize,
        #[arg(long)]
        valid_time: Option<Timestamp>,
    },
    /// Print the origins whose source is, or whose result holds, an object.
    Origins { key: String },
    /// Run an Octopoes path query (`Hostname.<hostname[is ResolvedHostname].address`).
    Query {
        path: String,
        /// Start from this object (default: every object of the path's start type).
        #[arg(long)]
        source: Option<String>,
        #[arg(long)]
        valid_time: Option<Timestamp>,
        #[arg(long, default_value_t = 0)]
        offset: usize,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Print the findings (not muted), highest risk score first.
    Findings {
        /// Only these severities (repeatable).
        #[arg(long = "severity")]
        severities: Vec<String>,
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Declare an object's scan level (0–4), or `none` to let it inherit again.
    ScanLevel { key: String, level: String },
    /// Run a bit on one object and print its inputs, config and what it would derive, without
    /// saving anything (Octopoes' tools/run_bit.py).
    RunBit {
        organisation: String,
        bit_id: String,
        reference: String,
        #[arg(long)]
        valid_time: Option<Timestamp>,
    },
    /// List, switch and recalculate the bits of an organisation (`--org`).
    #[command(subcommand)]
    Bits(BitsCommand),
    /// Benchmarks that need a whole process (peak memory under `/usr/bin/time -v`).
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

#[derive(Subcommand)]
enum BitsCommand {
    /// Every bit with what it consumes and whether it runs here.
    List,
    /// Run a bit in this organisation (its inferences are made now).
    Enable { bit_id: String },
    /// Stop a bit in this organisation (its inferences go now).
    Disable { bit_id: String },
    /// Back to the config file's or the bit's default.
    Reset { bit_id: String },
    /// Re-run every bit on every object (writes nothing when all is up to date).
    Recalculate,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a token for the organisations of `--org` (comma-separated; `*` for all) and print
    /// it (it is shown this once).
    Create {
        /// read, write or admin.
        #[arg(long)]
        role: octo_server::auth::Role,
        /// What it is for.
        #[arg(long)]
        description: Option<String>,
        /// The most restricted TLP marking it may see on the change stream (default: all).
        #[arg(long)]
        clearance: Option<octo_stream::Tlp>,
    },
    /// List tokens (ids, organisations, roles; never the secrets).
    List,
    /// Revoke a token by id.
    Revoke { id: String },
}

#[derive(Subcommand)]
enum OrgCommand {
    /// Create an organisation.
    Create { name: String },
    /// List organisations.
    List,
    /// Delete an organisation and its whole graph.
    Delete { name: String },
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
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let mut line = lines.next().unwrap_or("error: invalid arguments").to_owned();
            if line.ends_with(':') {
                // "…were not provided:" names them on the next line.
                line = format!("{line} {}", lines.next().unwrap_or("").trim());
            }
            eprintln!("{line}");
            std::process::exit(2);
        }
    };
    if let Err(e) = run(cli) {
        eprintln!("error: {}", format!("{e:#}").replace('\n', " "));
        std::process::exit(1);
    }
}

fn token(config: &Config, org: &str, cmd: &TokenCommand) -> anyhow::Result<()> {
    use octo_server::auth;
    let path = auth::token_file(&config.data_dir);
    match cmd {
        TokenCommand::Create { role, description, clearance } => {
            let organisations: Vec<String> = org.split(',').map(|o| o.trim().to_owned()).collect();
            let (token, record) = auth::create_token(&path, &organisations, *role, description.clone(), *clearance)?;
            eprintln!(
                "token {} ({} in {}); keep it, it is not shown again:",
                record.id,
                record.role,
                record.organisations.join(", ")
            );
            println!("{token}");
        }
        TokenCommand::List => {
            let lines = auth::list_tokens(&path)?.into_iter().map(|t| {
                json!({"id": t.id, "organisations": t.organisations, "role": t.role, "clearance": t.clearance,
                    "created": t.created, "description": t.description})
            });
            print_lines(lines)?;
        }
        TokenCommand::Revoke { id } => {
            if !auth::revoke_token(&path, id)? {
                bail!("no token '{id}'");
            }
            eprintln!("token {id} revoked");
        }
    }
    Ok(())
}

/// Runs the API until a shutdown signal; requests in flight finish first.
fn serve(
    config: &Config,
    orgs: Organisations,
    engine: std::sync::Arc<BitEngine>,
    log_json: bool,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=info"));
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if log_json {
        subscriber.json().init();
    } else {
        subscriber.init();
    }
    config.server.check().map_err(anyhow::Error::msg)?;
    let tokens = if config.server.auth {
        Some(Arc::new(octo_server::auth::Tokens::open(&octo_server::auth::token_file(&config.data_dir))?))
    } else {
        tracing::warn!("authentication is off (loopback only)");
        None
    };
    // The default organisation exists from the first start, so a new user has somewhere to write.
    orgs.get_or_create("default")?;
    let orgs = Arc::new(orgs);
    let state = octo_server::AppState::new(orgs.clone(), Some(engine), tokens);
    if let Some((url, prefix)) = &config.redis {
        let bus =
            octo_server::EventBus::redis(url, prefix, config.server.retention_events).map_err(anyhow::Error::msg)?;
        state.set_event_bus(bus);
        tracing::info!(url = %url, prefix = %prefix, "change streams on the Redis Streams bus");
    }
    // Each change event is prepared for the streams once, in the background, as it is written
    // (unless the config waits for the first consumer).
    if config.prepare_streams {
        state
            .prepare_streams()
            .map_err(|e| anyhow::anyhow!("cannot start the change streams' framers: {}", e.message))?;
    }
    if !orgs.exists(&config.logs.organisation) {
        anyhow::bail!("[logs] organisation '{}' does not exist (org create it first)", config.logs.organisation);
    }
    let logs = octo_logs::Pipeline::open(&config.logs_dir(), config.logs.clone())?;
    state.set_logs(logs.clone());
    let app = octo_server::app(state.clone(), &config.server);
    let runtime = octo_server::runtime()?;
    runtime.block_on(async {
        // Listening for SIGTERM from here on: one that comes during the start stops it cleanly.
        let shutdown = octo_server::shutdown_signal_for(state.clone());
        let receivers = octo_logs::source::start(logs.clone()).await?;
        let housekeeping = tokio::spawn(logs_housekeeping(logs.clone()));
        let evidence = logs.evidence().map(|rx| {
            tokio::spawn(evidence::into_graph(
                rx,
                orgs.clone(),
                config.logs.organisation.clone(),
                std::time::Duration::from_secs(config.logs.evidence_seconds),
                std::time::Duration::from_secs(config.logs.evidence_window_hours * 3600),
            ))
        });
        let listener = tokio::net::TcpListener::bind(config.server.listen)
            .await
            .with_context(|| format!("listening on {}", config.server.listen))?;
        tracing::info!(
            listen = %listener.local_addr()?, data_dir = %config.data_dir.display(), auth = config.server.auth,
            "octograph API ready"
        );
        // Retention runs beside the server and stops with it.
        let trimming = tokio::spawn(octo_server::trim_events_forever(
            state.clone(),
            config.server.clone(),
            std::time::Duration::from_secs(60),
        ));
        octo_server::serve(listener, app, shutdown).await?;
        trimming.abort();
        housekeeping.abort();
        if let Some(e) = evidence {
            e.abort();
        }
        receivers.shutdown().await;
        // Seal the tables, so that the next start has no lines to classify again.
        let l = logs.clone();
        match tokio::task::spawn_blocking(move || l.flush_tables()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "the tables could not be sealed; the next start classifies again"),
            Err(e) => tracing::warn!(error = %e, "sealing the tables failed"),
        }
        // Close every store cleanly (a store still open at exit is repaired, reading the whole
        // file, at the next start).
        let o = orgs.clone();
        match tokio::task::spawn_blocking(move || o.close(std::time::Duration::from_secs(10))).await {
            Ok(busy) if busy.is_empty() => {}
            Ok(busy) => {
                tracing::warn!(organisations = ?busy, "stores still in use at exit: the next start repairs them")
            }
            Err(e) => tracing::warn!(error = %e, "closing the stores failed"),
        }
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// Beside the server: devices changed by another process are re-read every second, and the raw
/// store's retention is applied every minute.
async fn logs_housekeeping(logs: std::sync::Arc<octo_logs::Pipeline>) {
    let mut tick = 0u64;
    let mut services = logs.services_stamp();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let l = logs.clone();
        let retention = tick.is_multiple_of(60);
        let before = std::mem::take(&mut services);
        let done = tokio::task::spawn_blocking(move || {
            if let Err(e) = l.devices().reload_if_changed() {
                tracing::warn!(error = %e, "re-reading the devices failed");
            }
            // Services and table schemas imported by the command line apply without a restart.
            let now = l.services_stamp();
            if now != before {
                if let Err(e) = l.reload_schemas() {
                    tracing::warn!(error = %e, "the changed table schemas do not load; the old ones stay");
                }
                match l.reload_services() {
                    Ok(()) => tracing::info!("services reloaded"),
                    Err(e) => tracing::warn!(error = %e, "the changed services do not load; the old ones stay"),
                }
            }
            if retention {
                match l.apply_retention() {
                    Ok(r) if r.segments > 0 => {
                        tracing::info!(segments = r.segments, bytes = r.bytes, "raw log retention")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "raw log retention failed"),
                }
            }
            now
        });
        services = done.await.unwrap_or_default();
        tick += 1;
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

/// The bit engine: the built-in bits plus the rule files of `bits.rules_dir`, with the config
/// file's switches checked against them.
fn bit_engine(config: &Config, catalog: &Catalog) -> anyhow::Result<std::sync::Arc<BitEngine>> {
    let mut bits = octo_bits::builtin::all();
    if let Some(dir) = &config.bits.rules_dir {
        bits.extend(octo_bits::rules::load_dir(dir, catalog)?);
    }
    for id in config.bits.enabled.iter().chain(&config.bits.disabled) {
        if !bits.iter().any(|b| &b.definition().id == id) {
            anyhow::bail!("config [bits]: no bit '{id}'");
        }
    }
    let switches = BitSwitches {
        enabled: config.bits.enabled.iter().cloned().collect(),
        disabled: config.bits.disabled.iter().cloned().collect(),
    };
    Ok(std::sync::Arc::new(BitEngine::new(catalog.clone(), bits, switches)?))
}

fn organisations(
    config: &Config,
    catalog: Catalog,
    engine: std::sync::Arc<BitEngine>,
) -> anyhow::Result<Organisations> {
    Ok(Organisations::open(&config.data_dir, catalog, config.store_options())?.with_inferrer(engine))
}

/// The organisation's graph; `default` is created on first use, others by `org create`.
fn graph(orgs: &Organisations, org: &str) -> anyhow::Result<std::sync::Arc<Graph>> {
    Ok(if org == "default" { orgs.get_or_create(org)? } else { orgs.get(org)? })
}

fn as_of(valid_time: Option<Timestamp>, tx_time: Option<Timestamp>) -> AsOf {
    AsOf { valid_time: valid_time.unwrap_or_else(Timestamp::now), tx_time }
}

fn outcome_json(o: &Outcome) -> serde_json::Value {
    json!({
        "tx_id": o.tx.map(|t| t.tx_id), "tx_time": o.tx.map(|t| t.tx_time.to_string()),
        "created": o.created.len(), "updated": o.updated.len(),
        "deleted": o.deleted.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "events": o.events.len(),
    })
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Bench(cmd) = cli.command {
        return bench::run(cmd);
    }
    let config = Config::load(cli.config.as_deref(), cli.data_dir, cli.schema_dir, cli.listen)?;
    let mut config = config;
    match cli.command {
        Command::Token(cmd) => return token(&config, &cli.org, &cmd),
        Command::Devices(cmd) => return logs_cli::devices(&config, cmd),
        Command::Services(cmd) => return logs_cli::services(&config, cmd),
        Command::Tables(cmd) => return logs_cli::tables(&config, cmd),
        Command::Replay { device, from, to, raw } => return logs_cli::replay(&config, &device, from, to, raw),
        Command::Serve { ref syslog_udp, ref syslog_tcp, ref syslog_relp, .. } => {
            config.logs.udp.extend(syslog_udp);
            config.logs.tcp.extend(syslog_tcp);
            config.logs.relp.extend(syslog_relp);
        }
        _ => {}
    }
    let catalog = catalog(&config)?;
    let engine = bit_engine(&config, &catalog)?;
    let orgs = organisations(&config, catalog.clone(), engine.clone())?;
    let key = |k: &str| -> anyhow::Result<Reference> { Ok(Reference::parse(k, &catalog)?.into_reference()) };
    match cli.command {
        Command::Serve { log_json, .. } => serve(&config, orgs, engine, log_json)?,
        Command::Token(_)
        | Command::Devices(_)
        | Command::Services(_)
        | Command::Tables(_)
        | Command::Replay { .. } => {
            unreachable!("handled above")
        }
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
        Command::RunBit { organisation, bit_id, reference, valid_time } => {
            let g = graph(&orgs, &organisation)?;
            let run = engine.dry_run(&g, &bit_id, &key(&reference)?, as_of(valid_time, None))?;
            println!("{}", serde_json::to_string_pretty(&run)?);
        }
        Command::Bits(cmd) => {
            let g = graph(&orgs, &cli.org)?;
            let switch = |id: &str, state| -> anyhow::Result<()> {
                let outcome = engine.switch(&g, id, state, None)?;
                println!("{}", outcome_json(&outcome));
                Ok(())
            };
            match cmd {
                BitsCommand::List => {
                    let lines = engine.status(&g, as_of(None, None))?.into_iter().map(|(id, enabled)| {
                        let def = engine.bit(&id).map(|b| b.definition().clone());
                        json!({
                            "id": id, "enabled": enabled,
                            "consumes": def.as_ref().map(|d| d.consumes.clone()),
                            "min_scan_level": def.as_ref().map(|d| d.min_scan_level),
                            "parameters": def.as_ref().map(|d| d.parameters.iter().map(|p| format!("{}.{}", p.ooi_type, p.relation_path)).collect::<Vec<_>>()),
                        })
                    });
                    print_lines(lines)?;
                }
                BitsCommand::Enable { bit_id } => switch(&bit_id, Some(true))?,
                BitsCommand::Disable { bit_id } => switch(&bit_id, Some(false))?,
                BitsCommand::Reset { bit_id } => switch(&bit_id, None)?,
                BitsCommand::Recalculate => println!("{}", outcome_json(&g.recalculate_bits(None)?)),
            }
        }
        Command::Org(OrgCommand::Create { name }) => {
            orgs.create(&name)?;
            println!("{}", json!({"created": name}));
        }
        Command::Org(OrgCommand::List) => {
            for name in orgs.list()? {
                println!("{name}");
            }
        }
        Command::Org(OrgCommand::Delete { name }) => {
            orgs.delete(&name)?;
            println!("{}", json!({"deleted": name}));
        }
        Command::Import { file, valid_time, method } => {
            let docs = read_documents(&file)?;
            let mut declarations = Vec::with_capacity(docs.len());
            for (i, doc) in docs.iter().enumerate() {
                let ooi =
                    catalog.ooi_from_json(doc).with_context(|| format!("object {} of {}", i + 1, file.display()))?;
                declarations.push(Declaration {
                    ooi,
                    method: Some(method.clone()),
                    task_id: None,
                    valid_time,
                    end_valid_time: None,
                });
            }
            let outcome = graph(&orgs, &cli.org)?.save_declarations(&declarations)?;
            let mut out = outcome_json(&outcome);
            out["imported"] = json!(declarations.len());
            println!("{out}");
        }
        Command::Get { key: k, valid_time, tx_time } => {
            let ooi = graph(&orgs, &cli.org)?.get(&key(&k)?, as_of(valid_time, tx_time))?;
            println!("{}", ooi.to_json());
        }
        Command::List { object_type, valid_time, tx_time, search, scan_levels, offset, limit } => {
            let q = ListQuery {
                types: vec![object_type],
                scan_levels: scan_levels.into_iter().collect(),
                search,
                offset,
                limit,
                ..Default::default()
            };
            let page = graph(&orgs, &cli.org)?.list_objects(&q, as_of(valid_time, tx_time))?;
            print_lines(page.items.iter().map(|o| o.to_json()))?;
        }
        Command::History { key: k } => {
            let k = key(&k)?;
            let history = graph(&orgs, &cli.org)?.store().snapshot()?.history(k.as_str())?;
            if history.is_empty() {
                bail!("object '{k}' has no history");
            }
            let mut lines = Vec::new();
            for v in history {
                let doc: serde_json::Value =
                    if v.is_tombstone() { serde_json::Value::Null } else { serde_json::from_slice(&v.doc)? };
                lines.push(json!({
                    "valid_time": v.valid_time.to_string(), "tx_time": v.tx_time.to_string(), "tx_id": v.tx_id,
                    "content_hash": v.content_hash().map(|h| h.to_string()), "deleted": v.is_tombstone(), "document": doc,
                }));
            }
            print_lines(lines.into_iter())?;
        }
        Command::Delete { key: k, valid_time } => {
            let outcome = graph(&orgs, &cli.org)?.delete_object(&key(&k)?, valid_time)?;
            println!("{}", outcome_json(&outcome));
        }
        Command::Tree { key: k, depth, valid_time } => {
            let tree = graph(&orgs, &cli.org)?.tree(&key(&k)?, depth, &[], as_of(valid_time, None))?;
            println!("{}", serde_json::to_string(&tree)?);
        }
        Command::Origins { key: k } => {
            let g = graph(&orgs, &cli.org)?;
            let k = key(&k)?;
            let mut origins =
                g.list_origins(&OriginQuery { source: Some(k.clone()), ..Default::default() }, AsOf::now())?;
            for o in g.list_origins(&OriginQuery { result: Some(k), ..Default::default() }, AsOf::now())? {
                if !origins.contains(&o) {
                    origins.push(o);
                }
            }
            print_lines(origins.iter().map(|o| json!({"id": o.id(), "origin": o})))?;
        }
        Command::Query { path, source, valid_time, offset, limit } => {
            let source = source.map(|k| key(&k)).transpose()?;
            let results =
                graph(&orgs, &cli.org)?.query(&path, source.as_ref(), offset, limit, as_of(valid_time, None))?;
            print_lines(results.iter().map(|r| r.to_json()))?;
        }
        Command::Findings { severities, limit } => {
            let mut q = FindingQuery { limit, ..Default::default() };
            if !severities.is_empty() {
                q.severities = severities.into_iter().collect();
            }
            let page = graph(&orgs, &cli.org)?.list_findings(&q, AsOf::now())?;
            print_lines(page.items.iter().map(|o| o.to_json()))?;
        }
        Command::ScanLevel { key: k, level } => {
            let level = match level.as_str() {
                "none" => None,
                l => Some(
                    l.parse::<u8>()
                        .ok()
                        .filter(|l| *l <= 4)
                        .ok_or_else(|| anyhow::anyhow!("scan level '{l}' is not 0–4 or `none`"))?,
                ),
            };
            let outcome = graph(&orgs, &cli.org)?.set_scan_profile(&key(&k)?, level, None, None)?;
            println!("{}", outcome_json(&outcome));
        }
        Command::Bench(_) => unreachable!("handled above"),
    }
    Ok(())
}

/// Prints JSON values one per line; a closed pipe (`| head`) ends quietly.
fn print_lines(values: impl Iterator<Item = serde_json::Value>) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    for v in values {
        if let Err(e) = writeln!(out, "{v}") {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                return Ok(());
            }
            return Err(e.into());
        }
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
