//! Services: named sets of message patterns for one kind of software (sshd, Cisco ASA, …), as
//! Octopussy defines them. A device's lines are classified by its services, in the device's
//! order; within a service, messages are tried by rank; the first match wins.
//!
//! Services come from Octopussy's XML files unchanged ([`octopussy`]) or from our readable TOML
//! form ([`native`]), which also holds the built-in library.

pub mod native;
pub mod octopussy;
pub mod pattern;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A message's log level, Octopussy's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The system is unusable.
    Emergency,
    /// Act now.
    Alert,
    /// A critical condition.
    Critical,
    /// An error.
    Error,
    /// A warning.
    Warning,
    /// Normal but significant.
    Notice,
    /// Information.
    Information,
    /// Debugging.
    Debug,
}

impl Level {
    /// The lower-case name, as tables and the API show it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Emergency => "emergency",
            Level::Alert => "alert",
            Level::Critical => "critical",
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
            Level::Information => "information",
            Level::Debug => "debug",
        }
    }
}

impl FromStr for Level {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "emergency" | "emerg" => Level::Emergency,
            "alert" => Level::Alert,
            "critical" | "crit" => Level::Critical,
            "error" | "err" => Level::Error,
            "warning" | "warn" => Level::Warning,
            "notice" => Level::Notice,
            "information" | "info" | "informational" => Level::Information,
            "debug" => Level::Debug,
            _ => {
                return Err(format!(
                    "'{s}' is not a log level (Emergency, Alert, Critical, Error, Warning, Notice, Information, Debug)"
                ))
            }
        })
    }
}

/// What a message's pattern is matched against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Subject {
    /// The message text only (native services, with the program matched apart).
    Message,
    /// The line from the tag on: `sshd[42]: Failed password …` (Octopussy patterns whose
    /// leading `<@DATE_TIME_ISO:datetime@> <@WORD:device@> ` is bound from the header).
    Rest,
    /// The line as Octopussy's rsyslog writes it: `ISO-time host tag[pid]: msg`.
    Canonical,
}

/// One message of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageDef {
    /// `Service:name`.
    pub id: String,
    /// The pattern in Octopussy's token language.
    pub pattern: String,
    /// What the pattern is matched against.
    pub subject: Subject,
    /// Programs (tags) whose lines it reads, case-insensitively; `*` at either end is a
    /// wildcard. Empty: any.
    pub programs: Vec<String>,
    /// Its level.
    pub level: Level,
    /// Dotted taxonomy (`Auth.Failure`).
    pub taxonomy: String,
    /// The table its fields go to.
    pub table: String,
    /// Order inside the service: lower is tried first.
    pub rank: u32,
    /// What a line of this message is evidence of, for the knowledge graph: objects as
    /// Octopoes' JSON with `{field}` placeholders (`{object_type = "IPAddress", network =
    /// "Network|internet", address = "{src_ip}"}`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub observe: Vec<std::collections::BTreeMap<String, String>>,
}

/// A service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// Its name (`Linux_System`, `Sshd`).
    pub name: String,
    /// What it covers.
    pub description: String,
    /// Its messages, in rank order.
    pub messages: Vec<MessageDef>,
}

/// A service that cannot be read, naming where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceError {
    /// The file or service.
    pub source: String,
    /// The message id, when one is at fault.
    pub message: Option<String>,
    /// What is wrong.
    pub reason: String,
}

impl fmt::Display for ServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.message {
            Some(m) => write!(f, "{}: message {m}: {}", self.source, self.reason),
            None => write!(f, "{}: {}", self.source, self.reason),
        }
    }
}

impl std::error::Error for ServiceError {}

impl Service {
    /// Orders the messages by rank (stable: equal ranks keep file order).
    pub fn sort(&mut self) {
        self.messages.sort_by_key(|m| m.rank);
    }
}

/// The library a pipeline classifies with: the built-in services, then the user's `*.toml` in
/// `dir` (one service per file; a user service replaces a built-in one of the same name).
pub fn library(dir: Option<&std::path::Path>) -> Result<Vec<Service>, ServiceError> {
    let mut services = builtin();
    let Some(dir) = dir else { return Ok(services) };
    let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
        Ok(entries) => {
            entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == "toml")).collect()
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(ServiceError { source: dir.display().to_string(), message: None, reason: e.to_string() }),
    };
    files.sort();
    for f in files {
        let source = f.display().to_string();
        let text = std::fs::read_to_string(&f).map_err(|e| ServiceError {
            source: source.clone(),
            message: None,
            reason: e.to_string(),
        })?;
        let s = native::parse(&text, &source)?;
        match services.iter_mut().find(|x| x.name == s.name) {
            Some(existing) => *existing = s,
            None => services.push(s),
        }
    }
    Ok(services)
}

/// The services shipped with Octograph, written for this project.
pub fn builtin() -> Vec<Service> {
    BUILTIN
        .iter()
        .map(|(file, text)| match native::parse(text, file) {
            Ok(s) => s,
            // The built-in files are checked by a test; a broken one is a build defect.
            Err(e) => panic!("built-in service {file}: {e}"),
        })
        .collect()
}

const BUILTIN: &[(&str, &str)] = &[
    ("sshd.toml", include_str!("../../services/sshd.toml")),
    ("pam.toml", include_str!("../../services/pam.toml")),
    ("linux_system.toml", include_str!("../../services/linux_system.toml")),
    ("linux_kernel.toml", include_str!("../../services/linux_kernel.toml")),
    ("ftpd.toml", include_str!("../../services/ftpd.toml")),
    ("kerberos.toml", include_str!("../../services/kerberos.toml")),
    ("apache_error.toml", include_str!("../../services/apache_error.toml")),
    ("http_access.toml", include_str!("../../services/http_access.toml")),
    ("nginx_error.toml", include_str!("../../services/nginx_error.toml")),
    ("postfix.toml", include_str!("../../services/postfix.toml")),
    ("dovecot.toml", include_str!("../../services/dovecot.toml")),
    ("bind.toml", include_str!("../../services/bind.toml")),
    ("squid.toml", include_str!("../../services/squid.toml")),
    ("cisco.toml", include_str!("../../services/cisco.toml")),
    ("fortinet.toml", include_str!("../../services/fortinet.toml")),
    ("juniper.toml", include_str!("../../services/juniper.toml")),
    ("windows.toml", include_str!("../../services/windows.toml")),
];
