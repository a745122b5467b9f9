//! Our readable service format (TOML): the service's name, the programs its lines come from, and
//! its messages, each a pattern over the message text with a level, a taxonomy and a table.
//!
//! ```toml
//! name = "Sshd"
//! description = "OpenSSH server"
//! programs = ["sshd"]
//! table = "Auth"                      # default for the messages
//!
//! [[message]]
//! name = "failed_password"            # the id becomes Sshd:failed_password
//! pattern = "Failed password for <@USER:user@> from <@IP:src_ip@> port <@PORT:src_port@> ssh2"
//! level = "warning"
//! taxonomy = "Auth.Failure"
//! ```
//!
//! Messages are ranked in file order unless they give `rank`; one may name its own `programs`
//! or `table`, and `subject = "rest"` matches from the tag on, as Octopussy patterns do.
//! `observe` lists the objects a line is evidence of, for the knowledge graph:
//! `observe = [{ object_type = "IPAddress", network = "Network|internet", address = "{src_ip}" }]`.

use serde::Deserialize;

use super::{Level, MessageDef, Service, ServiceError, Subject};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    programs: Vec<String>,
    #[serde(default = "default_table")]
    table: String,
    #[serde(default, rename = "message")]
    messages: Vec<Message>,
}

fn default_table() -> String {
    "Message".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    name: String,
    pattern: String,
    level: String,
    taxonomy: String,
    table: Option<String>,
    programs: Option<Vec<String>>,
    rank: Option<u32>,
    #[serde(default = "default_subject")]
    subject: Subject,
    #[serde(default)]
    observe: Vec<std::collections::BTreeMap<String, String>>,
}

fn default_subject() -> Subject {
    Subject::Message
}

/// Reads a service file; `source` names it in errors.
pub fn parse(text: &str, source: &str) -> Result<Service, ServiceError> {
    let f: File = toml::from_str(text).map_err(|e| ServiceError {
        source: source.into(),
        message: None,
        reason: e.to_string(),
    })?;
    check_name(&f.name).map_err(|reason| ServiceError { source: source.into(), message: None, reason })?;
    let mut messages = Vec::with_capacity(f.messages.len());
    for (i, m) in f.messages.into_iter().enumerate() {
        let id = format!("{}:{}", f.name, m.name);
        let bad = |reason: String| ServiceError { source: source.into(), message: Some(id.clone()), reason };
        check_name(&m.name).map_err(bad)?;
        if messages.iter().any(|x: &MessageDef| x.id == id) {
            return Err(bad("a message of this name already exists in the service".into()));
        }
        let level: Level = m.level.parse().map_err(bad)?;
        messages.push(MessageDef {
            id: id.clone(),
            pattern: m.pattern,
            subject: m.subject,
            programs: m.programs.unwrap_or_else(|| f.programs.clone()),
            level,
            taxonomy: m.taxonomy,
            table: m.table.unwrap_or_else(|| f.table.clone()),
            rank: m.rank.unwrap_or(i as u32 + 1),
            observe: m.observe,
        });
    }
    let mut s = Service { name: f.name, description: f.description, messages };
    s.sort();
    Ok(s)
}

/// A service or message name: letters, digits, `_`, `-`, `.`.
pub fn check_name(name: &str) -> Result<(), String> {
    if !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
    {
        Ok(())
    } else {
        Err(format!("'{name}' is not a name (letters, digits, '_', '-', '.')"))
    }
}

/// Writes a service in this format (what `services export` prints).
pub fn to_toml(s: &Service) -> String {
    let mut out = format!("name = {}\ndescription = {}\n", quote(&s.name), quote(&s.description));
    for m in &s.messages {
        let name = m.id.split_once(':').map_or(m.id.as_str(), |(_, n)| n);
        out.push_str(&format!(
            "\n[[message]]\nname = {}\npattern = {}\nlevel = \"{}\"\ntaxonomy = {}\ntable = {}\nrank = {}\n",
            quote(name),
            quote(&m.pattern),
            format!("{:?}", m.level).to_lowercase(),
            quote(&m.taxonomy),
            quote(&m.table),
            m.rank
        ));
        if m.subject != Subject::Message {
            out.push_str(&format!("subject = \"{}\"\n", format!("{:?}", m.subject).to_lowercase()));
        }
        if !m.programs.is_empty() {
            let p: Vec<String> = m.programs.iter().map(|p| quote(p)).collect();
            out.push_str(&format!("programs = [{}]\n", p.join(", ")));
        }
        if !m.observe.is_empty() {
            let objects: Vec<String> = m
                .observe
                .iter()
                .map(|o| {
                    let kv: Vec<String> = o.iter().map(|(k, v)| format!("{} = {}", quote(k), quote(v))).collect();
                    format!("{{ {} }}", kv.join(", "))
                })
                .collect();
            out.push_str(&format!("observe = [{}]\n", objects.join(", ")));
        }
    }
    out
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}
