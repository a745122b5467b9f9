//! `devices` and `replay`: the log pipeline from the command line. Both work beside a running
//! server: the device registry is a locked file the server re-reads, and the raw store is read
//! without taking its writer's lock.

use std::io::Write;

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use octo_logs::device::NewDevices;
use octo_logs::raw_store::RawStore;
use octo_logs::{Device, DeviceRegistry, DeviceStatus, LogTime, TimeZoneSpec};

use crate::config::Config;

#[derive(Subcommand)]
pub enum DevicesCommand {
    /// Every device, one JSON document per line.
    List,
    /// One device.
    Show { name: String },
    /// Declare a device.
    Add {
        name: String,
        #[command(flatten)]
        fields: DeviceFields,
    },
    /// Change a device (only the options given).
    Set {
        name: String,
        #[command(flatten)]
        fields: DeviceFields,
    },
    /// Remove a device (its stored lines stay).
    Remove { name: String },
}

#[derive(Args, Default)]
pub struct DeviceFields {
    /// The address it sends from.
    #[arg(long)]
    address: Option<std::net::IpAddr>,
    /// Another hostname its lines carry (repeatable; replaces the list).
    #[arg(long = "hostname")]
    hostnames: Vec<String>,
    /// What it is (`Linux System`, `Firewall`).
    #[arg(long = "type")]
    device_type: Option<String>,
    #[arg(long)]
    model: Option<String>,
    #[arg(long)]
    description: Option<String>,
    /// A service to classify its lines with, in order (repeatable; replaces the list).
    #[arg(long = "service")]
    services: Vec<String>,
    /// pending, active or paused.
    #[arg(long)]
    status: Option<DeviceStatus>,
    /// The zone of its timestamps without an offset (`UTC`, `+01:00`, `Europe/Amsterdam`).
    #[arg(long)]
    timezone: Option<TimeZoneSpec>,
}

impl DeviceFields {
    fn apply(&self, d: &mut Device) {
        if let Some(a) = self.address {
            d.address = Some(a);
        }
        if !self.hostnames.is_empty() {
            d.hostnames = self.hostnames.clone();
        }
        for (field, value) in [
            (&mut d.device_type, &self.device_type),
            (&mut d.model, &self.model),
            (&mut d.description, &self.description),
        ] {
            if let Some(v) = value {
                *field = Some(v.clone());
            }
        }
        if !self.services.is_empty() {
            d.services = self.services.clone();
        }
        if let Some(s) = self.status {
            d.status = s;
        }
        if let Some(t) = self.timezone {
            d.timezone = Some(t);
        }
    }
}

fn registry(config: &Config) -> anyhow::Result<DeviceRegistry> {
    let dir = config.logs_dir();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(DeviceRegistry::open(&dir.join("devices.json"), NewDevices::Pending)?)
}

pub fn devices(config: &Config, cmd: DevicesCommand) -> anyhow::Result<()> {
    let r = registry(config)?;
    let mut out = std::io::stdout().lock();
    match cmd {
        DevicesCommand::List => {
            for d in r.list() {
                if writeln!(out, "{}", d.to_json()).is_err() {
                    break; // the reader went away (`| head`)
                }
            }
        }
        DevicesCommand::Show { name } => {
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&r.get(&name)?.to_json())?);
        }
        DevicesCommand::Add { name, fields } => {
            let mut d = Device::named(&name);
            fields.apply(&mut d);
            r.add(d)?;
            eprintln!("device {name} added");
        }
        DevicesCommand::Set { name, fields } => {
            let d = r.update(&name, |d| {
                fields.apply(d);
                Ok(())
            })?;
            let _ = writeln!(out, "{}", serde_json::to_string(&d)?);
        }
        DevicesCommand::Remove { name } => {
            r.remove(&name)?;
            eprintln!("device {name} removed (its stored lines stay)");
        }
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum ServicesCommand {
    /// Every service of the library (built-in and imported), one JSON document per line.
    List,
    /// A service in the native format (TOML).
    Show { name: String },
    /// Import Octopussy service files (XML) unchanged, or native TOML files; each is checked
    /// (every pattern compiled) and saved in the data directory; the server loads it on start.
    Import {
        files: Vec<std::path::PathBuf>,
        /// Replace an imported service of the same name.
        #[arg(long)]
        replace: bool,
    },
    /// Group a device's unknown lines (no service of the device matches them) by shape and
    /// propose a pattern per group, largest first (Octopussy's wizard, done automatically).
    Suggest {
        #[arg(long)]
        device: String,
        #[arg(long)]
        from: Option<LogTime>,
        #[arg(long)]
        to: Option<LogTime>,
        /// Print a service (native TOML) of the suggestions, named so, instead of the groups.
        #[arg(long)]
        toml: Option<String>,
    },
    /// Classify one line (as received, e.g. `<38>Dec 10 06:55:48 host sshd[1]: …`) and print
    /// the message and fields it gives.
    Test {
        line: String,
        /// Only these services, in this order (repeatable; default: the whole library).
        #[arg(long = "service")]
        services: Vec<String>,
    },
}

fn services_dir(config: &Config) -> std::path::PathBuf {
    config.logs_dir().join("services")
}

fn classifier(config: &Config) -> anyhow::Result<(Vec<octo_logs::services::Service>, octo_logs::Classifier)> {
    let library = octo_logs::services::library(Some(&services_dir(config)))?;
    let classifier = octo_logs::Classifier::new(&library)?;
    Ok((library, classifier))
}

pub fn services(config: &Config, cmd: ServicesCommand) -> anyhow::Result<()> {
    use octo_logs::services::{native, octopussy};
    let mut out = std::io::stdout().lock();
    match cmd {
        ServicesCommand::List => {
            let builtin: Vec<String> = octo_logs::services::builtin().into_iter().map(|s| s.name).collect();
            let (library, _) = classifier(config)?;
            for s in library {
                let origin = if services_dir(config).join(format!("{}.toml", s.name)).exists() {
                    "imported"
                } else if builtin.contains(&s.name) {
                    "builtin"
                } else {
                    "imported"
                };
                let line = serde_json::json!({"name": s.name, "description": s.description, "messages": s.messages.len(), "origin": origin});
                if writeln!(out, "{line}").is_err() {
                    break;
                }
            }
        }
        ServicesCommand::Show { name } => {
            let (library, _) = classifier(config)?;
            let s = library.iter().find(|s| s.name == name).with_context(|| format!("no service '{name}'"))?;
            let _ = write!(out, "{}", native::to_toml(s));
        }
        ServicesCommand::Import { files, replace } => {
            if files.is_empty() {
                bail!("name at least one service file");
            }
            let dir = services_dir(config);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            // Read and check every file before writing any. Octopussy's table files, given
            // among its service files, are imported as tables.
            let mut parsed = Vec::new();
            let mut table_files = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
                let source = f.display().to_string();
                if octo_logs::tables::is_octopussy_table(&text) {
                    table_files.push(f.clone());
                    continue;
                }
                let s = if text.trim_start().starts_with('<') {
                    octopussy::parse(&text, &source)?
                } else {
                    native::parse(&text, &source)?
                };
                octo_logs::Classifier::new(std::slice::from_ref(&s))?;
                let target = dir.join(format!("{}.toml", s.name));
                if target.exists() && !replace {
                    bail!("service '{}' is already imported (--replace replaces it)", s.name);
                }
                parsed.push((s, target));
            }
            let tables = read_schemas(&table_files)?;
            for (s, target) in parsed {
                std::fs::write(&target, native::to_toml(&s))
                    .with_context(|| format!("writing {}", target.display()))?;
                eprintln!("service {} imported ({} messages)", s.name, s.messages.len());
            }
            save_schemas(config, tables, replace)?;
        }
        ServicesCommand::Suggest { device, from, to, toml } => {
            let store = RawStore::open_read_only(&config.logs_dir().join("raw"))?;
            if !store.devices()?.iter().any(|d| d == &device) {
                bail!("no stored lines of device '{device}'");
            }
            let declared =
                registry(config)?.get(&device).map(|d| d.device.clone()).unwrap_or_else(|_| Device::named(&device));
            let (_, classifier) = classifier(config)?;
            let groups = octo_logs::pipeline::unknown(&classifier, &store, &declared, config.logs.timezone, from, to)?;
            match toml {
                Some(name) => {
                    let s = octo_logs::unknown::suggested_service(&name, &groups);
                    octo_logs::Classifier::new(std::slice::from_ref(&s))?;
                    let _ = write!(out, "{}", native::to_toml(&s));
                }
                None => {
                    for g in groups {
                        if writeln!(out, "{}", serde_json::to_string(&g)?).is_err() {
                            break;
                        }
                    }
                }
            }
        }
        ServicesCommand::Test { line, services } => {
            let (library, classifier) = classifier(config)?;
            for s in &services {
                if !library.iter().any(|x| &x.name == s) {
                    bail!("no service '{s}'");
                }
            }
            let mut device = Device::named("test");
            device.services = services;
            let raw = octo_logs::RawLine {
                received: LogTime::now(),
                peer: None,
                transport: octo_logs::Transport::Api,
                bytes: line.into_bytes().into(),
            };
            let v = octo_logs::pipeline::describe(&classifier, &device, config.logs.timezone, &raw);
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v)?);
        }
    }
    Ok(())
}

/// Prints a device's stored lines of `[from, to)` with their parsed headers and the message each
/// classifies as, one JSON document per line (or the raw text): Octopussy's `octo_replay`.
pub fn replay(
    config: &Config,
    device: &str,
    from: Option<LogTime>,
    to: Option<LogTime>,
    raw: bool,
) -> anyhow::Result<()> {
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            bail!("--from must be before --to");
        }
    }
    let store = RawStore::open_read_only(&config.logs_dir().join("raw"))?;
    if !store.devices()?.iter().any(|d| d == device) {
        bail!("no stored lines of device '{device}'");
    }
    let declared = registry(config)?.get(device).map(|d| d.device.clone()).unwrap_or_else(|_| Device::named(device));
    let (_, classifier) = classifier(config)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in store.read(device, from, to)? {
        let line = line?;
        let written = if raw {
            out.write_all(&line.bytes).and_then(|_| out.write_all(b"\n"))
        } else {
            writeln!(out, "{}", octo_logs::pipeline::describe(&classifier, &declared, config.logs.timezone, &line))
        };
        if written.is_err() {
            return Ok(()); // the reader went away
        }
    }
    let _ = out.flush();
    Ok(())
}

#[derive(Subcommand)]
pub enum TablesCommand {
    /// Every table with its columns, rows and size, one JSON document per line.
    List,
    /// Rows of a table, newest first, or with `--group`/`--bucket` their counts, one JSON
    /// document per line. Reads what the server has sealed (at most `[logs]
    /// table_flush_seconds` behind it); the API's `/logs/tables` sees everything.
    Query {
        table: String,
        /// From this time (RFC 3339, a date, or epoch milliseconds; inclusive).
        #[arg(long)]
        from: Option<String>,
        /// To this time (exclusive).
        #[arg(long)]
        to: Option<String>,
        /// The last span of time up to now (`15m`, `24h`, `7d`), instead of `--from`.
        #[arg(long)]
        last: Option<String>,
        /// A condition, repeatable, all must hold: `src_ip=203.0.113.9`, `level=warning|error`,
        /// `src_port<1024`, `user~adm*`, `src_ip~10.0.0.0/8`, `taxonomy!=Auth.Success`.
        #[arg(long = "where")]
        filters: Vec<String>,
        /// Count rows grouped by these columns (comma-separated) instead of printing them.
        #[arg(long)]
        group: Option<String>,
        /// Count rows per time bucket of this span (`1h`): a time series.
        #[arg(long)]
        bucket: Option<String>,
        /// At most this many rows or groups (default 100).
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Import table schemas: Octopussy table files (XML) unchanged, or native TOML; the server
    /// types new rows by them within a second.
    Import {
        files: Vec<std::path::PathBuf>,
        /// Replace an imported schema of the same name.
        #[arg(long)]
        replace: bool,
    },
}

fn tables_dir(config: &Config) -> std::path::PathBuf {
    config.logs_dir().join("tables")
}

fn schemas_dir(config: &Config) -> std::path::PathBuf {
    config.logs_dir().join("schemas")
}

/// Reads and checks table schema files, Octopussy XML or native TOML.
fn read_schemas(files: &[std::path::PathBuf]) -> anyhow::Result<Vec<octo_tables::TableSchema>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let source = f.display().to_string();
        out.push(if text.trim_start().starts_with('<') {
            octo_logs::tables::parse_octopussy(&text, &source)?
        } else {
            octo_tables::TableSchema::from_toml(&text, &source).map_err(anyhow::Error::msg)?
        });
    }
    Ok(out)
}

fn save_schemas(config: &Config, schemas: Vec<octo_tables::TableSchema>, replace: bool) -> anyhow::Result<()> {
    let dir = schemas_dir(config);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut targets = Vec::new();
    for s in schemas {
        let target = dir.join(format!("{}.toml", s.name));
        if target.exists() && !replace {
            bail!("table '{}' is already imported (--replace replaces it)", s.name);
        }
        targets.push((s, target));
    }
    for (s, target) in targets {
        std::fs::write(&target, s.to_toml()).with_context(|| format!("writing {}", target.display()))?;
        eprintln!("table {} imported ({} typed columns)", s.name, s.columns.len());
    }
    Ok(())
}

pub fn tables(config: &Config, cmd: TablesCommand) -> anyhow::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let open = || -> anyhow::Result<octo_tables::TableStore> {
        let dir = tables_dir(config);
        let store = octo_tables::TableStore::open_read_only(&dir, octo_tables::TableOptions::default())
            .with_context(|| format!("no tables in {} yet (serve creates them)", dir.display()))?;
        store.set_schemas(octo_logs::tables::schemas(Some(&schemas_dir(config)))?);
        Ok(store)
    };
    match cmd {
        TablesCommand::List => {
            for t in open()?.tables() {
                if writeln!(out, "{}", t.summary()).is_err() {
                    break;
                }
            }
        }
        TablesCommand::Query { table, from, to, last, filters, group, bucket, limit } => {
            let limit = limit.map(|l| l.to_string());
            let mut pairs: Vec<(&str, &str)> = Vec::new();
            for (k, v) in [
                ("from", &from),
                ("to", &to),
                ("last", &last),
                ("group", &group),
                ("bucket", &bucket),
                ("limit", &limit),
            ] {
                if let Some(v) = v {
                    pairs.push((k, v));
                }
            }
            pairs.extend(filters.iter().map(|f| ("filter", f.as_str())));
            let q = octo_logs::tables::query_from_params(&table, pairs, LogTime::now()).map_err(anyhow::Error::msg)?;
            let outcome = open()?.query(&q)?;
            match outcome.answer {
                octo_tables::Answer::Rows(rows) => {
                    for r in rows {
                        if writeln!(out, "{}", serde_json::Value::Object(r)).is_err() {
                            break;
                        }
                    }
                }
                octo_tables::Answer::Groups(groups) => {
                    for g in groups {
                        if writeln!(out, "{}", g.to_json()).is_err() {
                            break;
                        }
                    }
                }
            }
            eprintln!("{} rows matched of {} scanned", outcome.matched, outcome.scanned);
        }
        TablesCommand::Import { files, replace } => {
            if files.is_empty() {
                bail!("name at least one table file");
            }
            save_schemas(config, read_schemas(&files)?, replace)?;
        }
    }
    let _ = out.flush();
    Ok(())
}
