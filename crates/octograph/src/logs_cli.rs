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
            // Read and check every file before writing any.
            let mut parsed = Vec::new();
            for f in &files {
                let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
                let source = f.display().to_string();
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
            for (s, target) in parsed {
                std::fs::write(&target, native::to_toml(&s))
                    .with_context(|| format!("writing {}", target.display()))?;
                eprintln!("service {} imported ({} messages)", s.name, s.messages.len());
            }
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
