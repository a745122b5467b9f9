//! A parsed syslog line. It borrows from the received bytes, so parsing allocates nothing; what
//! the header did not hold stays `None` rather than being invented.

use std::borrow::Cow;
use std::fmt;

use serde::Serialize;

use crate::time::LogTime;

/// Which grammar a line was read with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// RFC 5424 (`<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`).
    Rfc5424,
    /// RFC 3164 and the variants devices send (`<PRI>Mmm dd hh:mm:ss host tag[pid]: msg`).
    Rfc3164,
    /// Nothing of a header could be read: the whole line is the message.
    Unparsed,
}

/// The facility of the PRI part, as RFC 3164 section 4.1.1 numbers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Facility(pub u8);

/// The severity of the PRI part (0 emergency … 7 debug).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Severity(pub u8);

const FACILITIES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv", "ftp", "ntp",
    "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];

const SEVERITIES: [&str; 8] = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"];

impl Facility {
    /// The conventional keyword (`auth`, `local4`), as syslog.conf writes it.
    pub fn name(self) -> &'static str {
        FACILITIES.get(usize::from(self.0)).copied().unwrap_or("unknown")
    }

    /// The facility of a keyword or a number.
    pub fn from_name(s: &str) -> Option<Facility> {
        if let Ok(n) = s.parse::<u8>() {
            return (n < 24).then_some(Facility(n));
        }
        let s = s.to_ascii_lowercase();
        let alias = match s.as_str() {
            "kernel" => "kern",
            "security" => "auth",
            other => other,
        };
        FACILITIES.iter().position(|f| *f == alias).map(|i| Facility(i as u8))
    }
}

impl Severity {
    /// The conventional keyword (`err`, `info`).
    pub fn name(self) -> &'static str {
        SEVERITIES.get(usize::from(self.0)).copied().unwrap_or("unknown")
    }

    /// The severity of a keyword (also the long forms `error`, `emergency`, `critical`…) or a number.
    pub fn from_name(s: &str) -> Option<Severity> {
        if let Ok(n) = s.parse::<u8>() {
            return (n < 8).then_some(Severity(n));
        }
        let s = s.to_ascii_lowercase();
        let alias = match s.as_str() {
            "emergency" | "panic" => "emerg",
            "critical" => "crit",
            "error" => "err",
            "warn" => "warning",
            "informational" | "information" => "info",
            other => other,
        };
        SEVERITIES.iter().position(|f| *f == alias).map(|i| Severity(i as u8))
    }
}

/// The PRI value: facility × 8 + severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Priority(pub u8);

impl Priority {
    /// What RFC 3164 section 4.3.3 has a relay assume when a line has no PRI: user.notice.
    pub const DEFAULT: Priority = Priority(13);

    /// The facility.
    pub fn facility(self) -> Facility {
        Facility(self.0 >> 3)
    }

    /// The severity.
    pub fn severity(self) -> Severity {
        Severity(self.0 & 7)
    }
}

/// Why part of a line could not be read. The line is kept all the same; this says what went
/// wrong and where, for the operator who wonders why a field is empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issue {
    /// What was wrong.
    pub reason: &'static str,
    /// The byte offset in the line where it was noticed.
    pub at: usize,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at byte {})", self.reason, self.at)
    }
}

/// One parsed syslog line, borrowing from the received text.
#[derive(Debug, Clone, PartialEq)]
pub struct Syslog<'a> {
    /// The grammar used.
    pub format: Format,
    /// The PRI part; [`Priority::DEFAULT`] when the line had none (see `priority_given`).
    pub priority: Priority,
    /// Whether the line carried a PRI part.
    pub priority_given: bool,
    /// The timestamp in the header, in UTC (None when the header had none).
    pub timestamp: Option<LogTime>,
    /// The offset east of UTC, in seconds, that the timestamp was written in (or read in).
    pub utc_offset: Option<i32>,
    /// The sending host as the header names it.
    pub hostname: Option<&'a str>,
    /// RFC 5424 APP-NAME, or the RFC 3164 tag without its `[pid]`.
    pub app_name: Option<&'a str>,
    /// RFC 5424 PROCID, or the pid of an RFC 3164 `tag[pid]:`.
    pub proc_id: Option<&'a str>,
    /// RFC 5424 MSGID.
    pub msg_id: Option<&'a str>,
    /// A sequence number some devices (Cisco IOS) put before the timestamp.
    pub sequence: Option<u64>,
    /// RFC 5424 STRUCTURED-DATA as written, already checked; read it with [`Syslog::structured_data`].
    pub structured_data: Option<&'a str>,
    /// The free-form message.
    pub msg: &'a str,
    /// The first thing that could not be read, if any.
    pub issue: Option<Issue>,
}

/// One SD-ELEMENT of RFC 5424 structured data: `[id name="value" …]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SdElement<'a> {
    /// The SD-ID (`timeQuality`, `origin`, `exampleSDID@32473`).
    pub id: &'a str,
    /// The parameters in order; values have their `\"`, `\\` and `\]` escapes resolved.
    pub params: Vec<(&'a str, Cow<'a, str>)>,
}

impl<'a> Syslog<'a> {
    /// A line of `format` with only its PRI read so far; the parsers fill in the rest.
    pub(crate) fn empty(format: Format, priority: Priority, priority_given: bool) -> Syslog<'a> {
        Syslog {
            format,
            priority,
            priority_given,
            timestamp: None,
            utc_offset: None,
            hostname: None,
            app_name: None,
            proc_id: None,
            msg_id: None,
            sequence: None,
            structured_data: None,
            msg: "",
            issue: None,
        }
    }

    /// The structured-data elements, in order (empty when the line had none).
    pub fn structured_data(&self) -> Vec<SdElement<'a>> {
        self.structured_data.map(crate::parse::rfc5424::sd_elements).unwrap_or_default()
    }

    /// As a JSON document (field names as RFC 5424 names its parts).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "format": self.format,
            "facility": self.priority.facility().name(),
            "severity": self.priority.severity().name(),
            "priority": self.priority.0,
            "timestamp": self.timestamp.map(|t| t.to_string()),
            "hostname": self.hostname,
            "app_name": self.app_name,
            "proc_id": self.proc_id,
            "msg_id": self.msg_id,
            "msg": self.msg,
        });
        if let Some(o) = v.as_object_mut() {
            if !self.priority_given {
                o.insert("priority_given".into(), false.into());
            }
            if let Some(s) = self.sequence {
                o.insert("sequence".into(), s.into());
            }
            if self.structured_data.is_some() {
                let sd: serde_json::Map<String, serde_json::Value> = self
                    .structured_data()
                    .into_iter()
                    .map(|e| {
                        let params: serde_json::Map<String, serde_json::Value> =
                            e.params.into_iter().map(|(k, v)| (k.to_owned(), v.into_owned().into())).collect();
                        (e.id.to_owned(), params.into())
                    })
                    .collect();
                o.insert("structured_data".into(), sd.into());
            }
            if let Some(i) = self.issue {
                o.insert("issue".into(), i.to_string().into());
            }
        }
        v
    }
}
