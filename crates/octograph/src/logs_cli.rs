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

/// Prints a device's stored lines of `[from, to)` with their parsed headers, one JSON document
/// per line (or the raw text), as the classification reads them.
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
    let timezone = registry(config)?.get(device).ok().and_then(|d| d.device.timezone).unwrap_or(config.logs.timezone);
    if !store.devices()?.iter().any(|d| d == device) {
        bail!("no stored lines of device '{device}'");
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for line in store.read(device, from, to)? {
        let line = line?;
        let written = if raw {
            out.write_all(&line.bytes).and_then(|_| out.write_all(b"\n"))
        } else {
            writeln!(out, "{}", line.to_json(timezone))
        };
        if written.is_err() {
            return Ok(()); // the reader went away
        }
    }
    let _ = out.flush();
    Ok(())
}
