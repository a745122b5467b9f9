//! Devices: the senders of logs. Each line is dispatched to a device by the hostname in its
//! header, or else by the address it came from; a sender nobody declared is registered as a new
//! device (pending, unless configured otherwise), so no line is dropped for want of a device.
//!
//! The registry lives in `devices.json`, rewritten atomically on each change under a file lock,
//! so the command line and a running server can both change it; the server reloads the file
//! when another process has changed it ([`DeviceRegistry::reload_if_changed`]).

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::raw_store::validate_device_name;
use crate::time::{LogTime, TimeZoneSpec};

/// What is done with a device's lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    /// Registered automatically and not yet looked at: lines are stored, not classified.
    #[default]
    Pending,
    /// Lines are stored and classified.
    Active,
    /// Lines are stored only (a device being reconfigured, or too noisy to classify).
    Paused,
}

impl std::str::FromStr for DeviceStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(DeviceStatus::Pending),
            "active" => Ok(DeviceStatus::Active),
            "paused" => Ok(DeviceStatus::Paused),
            _ => Err(format!("'{s}' is not a device status: pending, active or paused")),
        }
    }
}

/// What happens to lines from a sender that is no device yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NewDevices {
    /// Register it as a pending device (the default).
    #[default]
    Pending,
    /// Register it as an active device.
    Active,
    /// Drop its lines (counted in the metrics): only declared devices may log.
    Refuse,
}

/// A log source, as Octopussy describes one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Device {
    /// Its name (also the directory of its stored lines): letters, digits, `.`, `-`, `_`.
    pub name: String,
    /// The address it sends from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<IpAddr>,
    /// Other hostnames its lines carry (the name itself always matches).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hostnames: Vec<String>,
    /// What it is (`Linux System`, `Firewall`, …).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub device_type: Option<String>,
    /// Its model (`Cisco ASA 5506`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The services its lines are classified with, tried in this order.
    #[serde(default)]
    pub services: Vec<String>,
    /// What is done with its lines.
    #[serde(default)]
    pub status: DeviceStatus,
    /// The zone of its timestamps when they carry no offset (default: the receiver's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<TimeZoneSpec>,
    /// When it was registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

impl Device {
    /// A device with only a name.
    pub fn named(name: &str) -> Device {
        Device {
            name: name.to_owned(),
            address: None,
            hostnames: Vec::new(),
            device_type: None,
            model: None,
            description: None,
            services: Vec::new(),
            status: DeviceStatus::Pending,
            timezone: None,
            created: None,
        }
    }

    fn check(&self) -> Result<(), DeviceError> {
        validate_device_name(&self.name).map_err(|e| DeviceError::Invalid(e.to_string()))?;
        for h in &self.hostnames {
            if h.is_empty() || h.len() > 255 || h.contains(char::is_whitespace) {
                return Err(DeviceError::Invalid(format!("device '{}': '{h}' is not a hostname", self.name)));
            }
        }
        Ok(())
    }
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// No such device.
    #[error("no device '{0}'")]
    NotFound(String),
    /// A device of that name exists.
    #[error("device '{0}' already exists")]
    Exists(String),
    /// A bad name or field.
    #[error("{0}")]
    Invalid(String),
    /// Reading or writing the file.
    #[error("device registry {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// A device as dispatch hands it out: the settings a line needs, and its live counters.
#[derive(Debug)]
pub struct DeviceEntry {
    /// The device as declared.
    pub device: Device,
    /// Lines received since the process started.
    pub lines: AtomicU64,
    /// When the last line arrived (µs since the epoch; 0: none yet).
    pub last_seen: AtomicI64,
}

impl DeviceEntry {
    fn new(device: Device) -> Arc<DeviceEntry> {
        Arc::new(DeviceEntry { device, lines: AtomicU64::new(0), last_seen: AtomicI64::new(0) })
    }

    /// Counts a line received at `t`.
    pub fn seen(&self, t: LogTime) {
        self.lines.fetch_add(1, Ordering::Relaxed);
        self.last_seen.fetch_max(t.micros(), Ordering::Relaxed);
    }

    /// The device with its counters, as the API shows it.
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(&self.device).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.insert("lines_received".into(), self.lines.load(Ordering::Relaxed).into());
            let last = self.last_seen.load(Ordering::Relaxed);
            o.insert(
                "last_seen".into(),
                if last == 0 { serde_json::Value::Null } else { LogTime(last).to_string().into() },
            );
        }
        v
    }
}

#[derive(Default)]
struct Index {
    by_name: HashMap<String, Arc<DeviceEntry>>,
    /// Lower-cased hostnames (names included).
    by_host: HashMap<String, Arc<DeviceEntry>>,
    by_address: HashMap<IpAddr, Arc<DeviceEntry>>,
}

impl Index {
    fn build(devices: Vec<Device>, previous: Option<&Index>) -> Index {
        let mut ix = Index::default();
        for d in devices {
            // Keep the live counters of a device that was there before.
            let entry = match previous.and_then(|p| p.by_name.get(&d.name)) {
                Some(old) if old.device == d => old.clone(),
                Some(old) => {
                    let e = DeviceEntry::new(d);
                    e.lines.store(old.lines.load(Ordering::Relaxed), Ordering::Relaxed);
                    e.last_seen.store(old.last_seen.load(Ordering::Relaxed), Ordering::Relaxed);
                    e
                }
                None => DeviceEntry::new(d),
            };
            ix.insert(entry);
        }
        ix
    }

    fn insert(&mut self, e: Arc<DeviceEntry>) {
        let d = &e.device;
        self.by_host.insert(d.name.to_ascii_lowercase(), e.clone());
        for h in &d.hostnames {
            self.by_host.insert(h.to_ascii_lowercase(), e.clone());
        }
        if let Some(a) = d.address {
            self.by_address.insert(a, e.clone());
        }
        self.by_name.insert(d.name.clone(), e);
    }

    fn devices(&self) -> Vec<Device> {
        let mut v: Vec<Device> = self.by_name.values().map(|e| e.device.clone()).collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }
}

#[derive(Serialize, Deserialize, Default)]
struct RegistryFile {
    devices: Vec<Device>,
}

/// The devices, indexed for dispatch.
pub struct DeviceRegistry {
    path: PathBuf,
    new_devices: NewDevices,
    index: RwLock<Index>,
    /// The file's modification time and length when last read or written.
    stamp: Mutex<Option<(SystemTime, u64)>>,
}

/// Where a line goes.
pub enum Dispatch {
    /// To this device.
    Device(Arc<DeviceEntry>),
    /// Nowhere: the sender is unknown and unknown senders are refused.
    Refused,
}

impl DeviceRegistry {
    /// The registry in `path` (created empty when missing).
    pub fn open(path: &Path, new_devices: NewDevices) -> Result<DeviceRegistry, DeviceError> {
        let r = DeviceRegistry {
            path: path.to_owned(),
            new_devices,
            index: RwLock::new(Index::default()),
            stamp: Mutex::new(None),
        };
        let devices = r.read_file()?;
        *r.index.write().unwrap_or_else(|p| p.into_inner()) = Index::build(devices, None);
        *r.stamp.lock().unwrap_or_else(|p| p.into_inner()) = r.file_stamp();
        Ok(r)
    }

    /// Every device, by name.
    pub fn list(&self) -> Vec<Arc<DeviceEntry>> {
        let ix = self.index.read().unwrap_or_else(|p| p.into_inner());
        let mut v: Vec<_> = ix.by_name.values().cloned().collect();
        v.sort_by(|a, b| a.device.name.cmp(&b.device.name));
        v
    }

    /// One device.
    pub fn get(&self, name: &str) -> Result<Arc<DeviceEntry>, DeviceError> {
        let ix = self.index.read().unwrap_or_else(|p| p.into_inner());
        ix.by_name.get(name).cloned().ok_or_else(|| DeviceError::NotFound(name.to_owned()))
    }

    /// The device of a line: by its hostname, or by its sender's address when it names none; an
    /// unknown sender becomes a new device, named after its hostname (or address), unless refused.
    pub fn dispatch(&self, hostname: Option<&str>, address: Option<IpAddr>) -> Result<Dispatch, DeviceError> {
        {
            let ix = self.index.read().unwrap_or_else(|p| p.into_inner());
            if let Some(e) = lookup(&ix, hostname, address) {
                return Ok(Dispatch::Device(e));
            }
        }
        if self.new_devices == NewDevices::Refuse {
            return Ok(Dispatch::Refused);
        }
        let name = match hostname.and_then(device_name_from) {
            Some(n) => n,
            None => match address {
                Some(a) => device_name_from(&a.to_string()).unwrap_or_else(|| "unknown".into()),
                None => "unknown".into(),
            },
        };
        let mut device = Device::named(&name);
        device.address = address;
        device.status =
            if self.new_devices == NewDevices::Active { DeviceStatus::Active } else { DeviceStatus::Pending };
        device.created = Some(LogTime::now().to_string());
        device.description = Some("registered when it first sent a line".into());
        let entry = self.change(|devices| {
            // Another thread or process may have registered it meanwhile.
            if devices.iter().any(|d| d.name == name) {
                return Ok(false);
            }
            devices.push(device.clone());
            Ok(true)
        });
        match entry {
            Ok(_) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(device = %name, ?address, "a new device sent its first line");
        let ix = self.index.read().unwrap_or_else(|p| p.into_inner());
        Ok(match lookup(&ix, hostname, address).or_else(|| ix.by_name.get(&name).cloned()) {
            Some(e) => Dispatch::Device(e),
            None => Dispatch::Refused,
        })
    }

    /// Adds a device.
    pub fn add(&self, mut device: Device) -> Result<(), DeviceError> {
        device.check()?;
        device.created.get_or_insert_with(|| LogTime::now().to_string());
        self.change(|devices| {
            if devices.iter().any(|d| d.name == device.name) {
                return Err(DeviceError::Exists(device.name.clone()));
            }
            devices.push(device.clone());
            Ok(true)
        })
    }

    /// Changes a device with `f` (its name cannot change).
    pub fn update(
        &self,
        name: &str,
        f: impl Fn(&mut Device) -> Result<(), DeviceError>,
    ) -> Result<Device, DeviceError> {
        let mut out = None;
        self.change(|devices| {
            let d =
                devices.iter_mut().find(|d| d.name == name).ok_or_else(|| DeviceError::NotFound(name.to_owned()))?;
            let mut changed = d.clone();
            f(&mut changed)?;
            if changed.name != name {
                return Err(DeviceError::Invalid("a device's name cannot change".into()));
            }
            changed.check()?;
            let differs = changed != *d;
            *d = changed.clone();
            out = Some(changed);
            Ok(differs)
        })?;
        out.ok_or_else(|| DeviceError::NotFound(name.to_owned()))
    }

    /// Removes a device (its stored lines stay in the raw store).
    pub fn remove(&self, name: &str) -> Result<(), DeviceError> {
        self.change(|devices| {
            let before = devices.len();
            devices.retain(|d| d.name != name);
            if devices.len() == before {
                return Err(DeviceError::NotFound(name.to_owned()));
            }
            Ok(true)
        })
    }

    /// Reads the file again when another process changed it; says whether it did.
    pub fn reload_if_changed(&self) -> Result<bool, DeviceError> {
        let now = self.file_stamp();
        if *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) == now {
            return Ok(false);
        }
        let _lock = self.lock()?;
        let devices = self.read_file()?;
        let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
        *ix = Index::build(devices, Some(&ix));
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = self.file_stamp();
        Ok(true)
    }

    /// Read, change and write the file under its lock, then re-index. `f` says whether it
    /// changed anything (nothing is written otherwise).
    fn change(&self, f: impl FnOnce(&mut Vec<Device>) -> Result<bool, DeviceError>) -> Result<(), DeviceError> {
        let _lock = self.lock()?;
        let mut devices = self.read_file()?;
        let changed = f(&mut devices)?;
        if changed {
            devices.sort_by(|a, b| a.name.cmp(&b.name));
            self.write_file(&devices)?;
        }
        let mut ix = self.index.write().unwrap_or_else(|p| p.into_inner());
        *ix = Index::build(devices, Some(&ix));
        *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = self.file_stamp();
        Ok(())
    }

    fn file_err(&self, message: impl std::fmt::Display) -> DeviceError {
        DeviceError::File { path: self.path.clone(), message: message.to_string() }
    }

    fn lock(&self) -> Result<File, DeviceError> {
        let lock_path = self.path.with_extension("lock");
        if let Some(dir) = lock_path.parent() {
            fs::create_dir_all(dir).map_err(|e| self.file_err(e))?;
        }
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| self.file_err(e))?;
        f.lock().map_err(|e| self.file_err(e))?;
        Ok(f)
    }

    fn file_stamp(&self) -> Option<(SystemTime, u64)> {
        let m = fs::metadata(&self.path).ok()?;
        Some((m.modified().ok()?, m.len()))
    }

    fn read_file(&self) -> Result<Vec<Device>, DeviceError> {
        let text = match fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(self.file_err(e)),
        };
        let file: RegistryFile = serde_json::from_str(&text).map_err(|e| self.file_err(e))?;
        for d in &file.devices {
            d.check().map_err(|e| self.file_err(e))?;
        }
        Ok(file.devices)
    }

    fn write_file(&self, devices: &[Device]) -> Result<(), DeviceError> {
        let tmp = self.path.with_extension("json.tmp");
        let body =
            serde_json::to_vec_pretty(&RegistryFile { devices: devices.to_vec() }).map_err(|e| self.file_err(e))?;
        let mut f = File::create(&tmp).map_err(|e| self.file_err(e))?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(|e| self.file_err(e))?;
        fs::rename(&tmp, &self.path).map_err(|e| self.file_err(e))?;
        if let Some(dir) = self.path.parent() {
            let _ = File::open(dir).and_then(|d| d.sync_all());
        }
        Ok(())
    }

    /// The devices as stored, for export.
    pub fn devices(&self) -> Vec<Device> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).devices()
    }
}

/// A line with a hostname goes to the device of that hostname (a relay forwards many hosts
/// from one address, so the address decides only when the header names no host, or names an
/// address).
fn lookup(ix: &Index, hostname: Option<&str>, address: Option<IpAddr>) -> Option<Arc<DeviceEntry>> {
    if let Some(h) = hostname {
        let found = if h.bytes().any(|c| c.is_ascii_uppercase()) {
            ix.by_host.get(&h.to_ascii_lowercase())
        } else {
            ix.by_host.get(h)
        };
        if let Some(e) = found {
            return Some(e.clone());
        }
        return match h.parse::<IpAddr>() {
            Ok(a) => ix.by_address.get(&a).cloned(),
            Err(_) => None,
        };
    }
    address.and_then(|a| ix.by_address.get(&a).cloned())
}

/// A device name made from a hostname or address: lower case, other characters as `-`; None
/// when nothing usable is left.
fn device_name_from(s: &str) -> Option<String> {
    let name: String =
        s.trim_matches('.')
            .chars()
            .take(128)
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
    let name = name.trim_start_matches('.').to_owned();
    (validate_device_name(&name).is_ok() && name.chars().any(|c| c.is_ascii_alphanumeric())).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_senders_become_pending_devices_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.json");
        let r = DeviceRegistry::open(&path, NewDevices::Pending).unwrap();
        let a: IpAddr = "192.0.2.7".parse().unwrap();
        let Dispatch::Device(d) = r.dispatch(Some("Web1.Example"), Some(a)).unwrap() else { panic!() };
        assert_eq!(d.device.name, "web1.example");
        assert_eq!(d.device.status, DeviceStatus::Pending);
        // The same host again, by name in any case, and by address alone.
        let Dispatch::Device(d2) = r.dispatch(Some("WEB1.example"), None).unwrap() else { panic!() };
        assert!(Arc::ptr_eq(&d, &d2));
        let Dispatch::Device(d3) = r.dispatch(None, Some(a)).unwrap() else { panic!() };
        assert!(Arc::ptr_eq(&d, &d3));
        // An IPv6 sender with no hostname.
        let Dispatch::Device(d4) = r.dispatch(None, Some("2001:db8::1".parse().unwrap())).unwrap() else { panic!() };
        assert_eq!(d4.device.name, "2001-db8--1");
        assert_eq!(r.list().len(), 2);
        // Persisted.
        let again = DeviceRegistry::open(&path, NewDevices::Pending).unwrap();
        assert_eq!(again.devices(), r.devices());
    }

    #[test]
    fn refused_senders_and_changes_from_another_process() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.json");
        let server = DeviceRegistry::open(&path, NewDevices::Refuse).unwrap();
        assert!(matches!(server.dispatch(Some("x"), None).unwrap(), Dispatch::Refused));
        // The command line adds a device; the server sees it after a reload.
        let cli = DeviceRegistry::open(&path, NewDevices::Refuse).unwrap();
        let mut d = Device::named("fw1");
        d.hostnames = vec!["fw1.example.net".into()];
        d.status = DeviceStatus::Active;
        cli.add(d).unwrap();
        assert!(matches!(cli.add(Device::named("fw1")), Err(DeviceError::Exists(_))));
        assert!(server.reload_if_changed().unwrap());
        let Dispatch::Device(e) = server.dispatch(Some("FW1.example.net"), None).unwrap() else { panic!() };
        assert_eq!(e.device.name, "fw1");
        // Counters survive a reload that changes another device.
        e.seen(LogTime(5));
        cli.add(Device::named("other")).unwrap();
        server.reload_if_changed().unwrap();
        assert_eq!(server.get("fw1").unwrap().lines.load(Ordering::Relaxed), 1);
        // Updates keep the name; bad names are refused.
        let u = cli.update("fw1", |d| {
            d.services = vec!["Linux_System".into()];
            Ok(())
        });
        assert_eq!(u.unwrap().services, ["Linux_System"]);
        assert!(cli
            .update("fw1", |d| {
                d.name = "renamed".into();
                Ok(())
            })
            .is_err());
        assert!(matches!(cli.add(Device::named("../x")), Err(DeviceError::Invalid(_))));
        cli.remove("fw1").unwrap();
        assert!(matches!(cli.remove("fw1"), Err(DeviceError::NotFound(_))));
    }
}
