//! API tokens: created by the CLI, stored argon2-hashed in `<data dir>/tokens.json`, sent as
//! `Authorization: Bearer og_<id>_<secret>`.
//!
//! The id lets a request find its one record without trying every hash. Argon2 is slow on
//! purpose (tens of milliseconds), so a token verified once is remembered in memory under a
//! BLAKE3 digest of the whole token; the file is re-read when it changes (checked at most once
//! a second), which also forgets every remembered token, so a revocation takes effect within a
//! second.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{Duration, Instant, SystemTime};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;
use serde::{Deserialize, Serialize};

/// What a token may do, each role including the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads.
    Read,
    /// Reads and writes to the graph.
    Write,
    /// Also creates, deletes and resets organisations.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "read" => Ok(Role::Read),
            "write" => Ok(Role::Write),
            "admin" => Ok(Role::Admin),
            _ => Err(format!("role '{s}' is not read, write or admin")),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        })
    }
}

/// Organisations a token may use: `*` stands for every one, present and future.
pub const ALL_ORGANISATIONS: &str = "*";

/// The name a token lists to reach `/logs/…`, the log pipeline's API (no organisation may take it).
pub const LOGS: &str = "logs";

/// A stored token (the secret only as its argon2 hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// Public part of the token, its name in listings and revocations.
    pub id: String,
    /// PHC string of the argon2id hash of the whole token.
    pub hash: String,
    /// The organisations it may use (`*`: all).
    pub organisations: Vec<String>,
    /// What it may do there.
    pub role: Role,
    /// When it was made (RFC 3339).
    pub created: String,
    /// What it is for, as its creator said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The most restricted TLP marking it may see on the change stream (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clearance: Option<octo_stream::Tlp>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    tokens: Vec<TokenRecord>,
}

/// Who is asking: what a verified token grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's id (`None` when authentication is off).
    pub token_id: Option<String>,
    /// Its organisations.
    pub organisations: Vec<String>,
    /// Its role.
    pub role: Role,
    /// The most restricted marking it may see.
    pub clearance: octo_stream::Tlp,
}

impl Principal {
    /// Everything, for a server run with authentication off.
    pub fn unrestricted() -> Self {
        Principal {
            token_id: None,
            organisations: vec![ALL_ORGANISATIONS.into()],
            role: Role::Admin,
            clearance: octo_stream::Tlp::Red,
        }
    }

    /// Whether it may use `organisation` with at least `needed`.
    pub fn may(&self, organisation: &str, needed: Role) -> bool {
        self.role >= needed && self.organisations.iter().any(|o| o == ALL_ORGANISATIONS || o == organisation)
    }
}

/// Why a token file operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Reading or writing the file.
    #[error("token file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A bad argument.
    #[error("{0}")]
    Invalid(String),
}

/// The token file of a data directory.
pub fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("tokens.json")
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> TokenError {
    TokenError::File { path: path.to_owned(), message: e.to_string() }
}

fn read_file(path: &Path) -> Result<TokenFile, TokenError> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| file_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
        Err(e) => Err(file_error(path, e)),
    }
}

/// Writes the whole file to a temporary beside it and renames it over, so a reader never sees
/// half a file; readable by its owner only, since it holds the hashes.
fn write_file(path: &Path, file: &TokenFile) -> Result<(), TokenError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| file_error(path, e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(file).map_err(|e| file_error(path, e))?;
    std::fs::write(&tmp, bytes).map_err(|e| file_error(&tmp, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).map_err(|e| file_error(&tmp, e))?;
    }
    std::fs::rename(&tmp, path).map_err(|e| file_error(path, e))
}

fn random_hex(bytes: usize) -> Result<String, TokenError> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| TokenError::Invalid(format!("no randomness: {e}")))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// Creates a token, stores its hash, and returns the token (shown once, never stored) with
/// its record.
pub fn create_token(
    path: &Path,
    organisations: &[String],
    role: Role,
    description: Option<String>,
    clearance: Option<octo_stream::Tlp>,
) -> Result<(String, TokenRecord), TokenError> {
    if organisations.is_empty() {
        return Err(TokenError::Invalid("a token needs at least one organisation (or '*')".into()));
    }
    for o in organisations {
        // `logs` is no organisation, but tokens name it to reach the log pipeline's API.
        if o != ALL_ORGANISATIONS && o != LOGS {
            octo_graph::organisations::validate_name(o).map_err(|e| TokenError::Invalid(e.to_string()))?;
        }
    }
    let mut file = read_file(path)?;
    let id = random_hex(6)?;
    let token = format!("og_{id}_{}", random_hex(24)?);
    let hash = Argon2::default()
        .hash_password(token.as_bytes())
        .map_err(|e| TokenError::Invalid(format!("hashing: {e}")))?
        .to_string();
    let record = TokenRecord {
        id,
        hash,
        organisations: organisations.to_vec(),
        role,
        created: octo_store::Timestamp::now().to_string(),
        description,
        clearance,
    };
    file.tokens.push(record.clone());
    write_file(path, &file)?;
    Ok((token, record))
}

/// The stored tokens.
pub fn list_tokens(path: &Path) -> Result<Vec<TokenRecord>, TokenError> {
    Ok(read_file(path)?.tokens)
}

/// Removes a token; `false` when there was none with that id.
pub fn revoke_token(path: &Path, id: &str) -> Result<bool, TokenError> {
    let mut file = read_file(path)?;
    let before = file.tokens.len();
    file.tokens.retain(|t| t.id != id);
    if file.tokens.len() == before {
        return Ok(false);
    }
    write_file(path, &file)?;
    Ok(true)
}

/// The tokens a server accepts, kept in step with the file.
pub struct Tokens {
    path: PathBuf,
    state: RwLock<TokenState>,
}

struct TokenState {
    records: HashMap<String, TokenRecord>,
    verified: HashMap<[u8; 32], Principal>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// How often the file is looked at for changes.
const RELOAD_EVERY: Duration = Duration::from_secs(1);

impl Tokens {
    /// Loads the token file of `path` (absent: no tokens yet).
    pub fn open(path: &Path) -> Result<Self, TokenError> {
        let records = read_file(path)?.tokens.into_iter().map(|t| (t.id.clone(), t)).collect();
        Ok(Tokens {
            path: path.to_owned(),
            state: RwLock::new(TokenState {
                records,
                verified: HashMap::new(),
                stamp: stamp(path),
                checked: Instant::now(),
            }),
        })
    }

    fn reload_if_changed(&self) {
        self.reload(false)
    }

    /// Re-reads the file if it changed; unless `now`, at most once per [`RELOAD_EVERY`].
    fn reload(&self, now: bool) {
        if !now {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            if state.checked.elapsed() < RELOAD_EVERY {
                return;
            }
        }
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if !now && state.checked.elapsed() < RELOAD_EVERY {
            return;
        }
        state.checked = Instant::now();
        let now = stamp(&self.path);
        if now == state.stamp {
            return;
        }
        match read_file(&self.path) {
            Ok(file) => {
                state.records = file.tokens.into_iter().map(|t| (t.id.clone(), t)).collect();
                state.verified.clear();
                state.stamp = now;
                tracing::info!(tokens = state.records.len(), "token file reloaded");
            }
            // Keep serving with the tokens known; a half-edited file must not lock everyone out.
            Err(e) => tracing::warn!(error = %e, "token file not reloaded"),
        }
    }

    /// What `token` grants, or `None` for an unknown, revoked or wrong token. May take tens of
    /// milliseconds the first time a token is seen (argon2), so call it off the async threads.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        self.reload_if_changed();
        let digest = *blake3::hash(token.as_bytes()).as_bytes();
        let id = token.strip_prefix("og_")?.split('_').next()?;
        let lookup = || {
            let state = self.state.read().unwrap_or_else(|p| p.into_inner());
            match state.verified.get(&digest) {
                Some(p) => Err(p.clone()),
                None => Ok(state.records.get(id).cloned()),
            }
        };
        let record = match lookup() {
            Err(remembered) => return Some(remembered),
            Ok(Some(record)) => record,
            // A token made since the last look at the file: look again now (a stat, cheap).
            Ok(None) => {
                self.reload(true);
                match lookup() {
                    Err(remembered) => return Some(remembered),
                    Ok(record) => record?,
                }
            }
        };
        let hash = PasswordHash::new(&record.hash).ok()?;
        Argon2::default().verify_password(token.as_bytes(), &hash).ok()?;
        let principal = Principal {
            token_id: Some(record.id.clone()),
            organisations: record.organisations,
            role: record.role,
            clearance: record.clearance.unwrap_or(octo_stream::Tlp::Red),
        };
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        // Only remember it if the record is still the one verified against (not revoked meanwhile).
        if state.records.get(&record.id).is_some_and(|r| r.hash == record.hash) {
            state.verified.insert(digest, principal.clone());
        }
        Some(principal)
    }

    /// Whether `token` is already verified (no argon2 needed), so it can be checked inline.
    pub fn is_remembered(&self, token: &str) -> Option<Principal> {
        self.reload_if_changed();
        let digest = *blake3::hash(token.as_bytes()).as_bytes();
        self.state.read().unwrap_or_else(|p| p.into_inner()).verified.get(&digest).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_verify_and_revoked_ones_stop() {
        let dir = tempfile::tempdir().unwrap();
        let path = token_file(dir.path());
        let (token, record) = create_token(&path, &["acme".into()], Role::Write, None, None).unwrap();
        assert!(!std::fs::read_to_string(&path).unwrap().contains(&token), "only the hash is stored");
        let tokens = Tokens::open(&path).unwrap();
        let p = tokens.authenticate(&token).unwrap();
        assert!(p.may("acme", Role::Write) && !p.may("acme", Role::Admin) && !p.may("other", Role::Read));
        assert!(tokens.authenticate(&format!("{token}x")).is_none());
        assert!(tokens.authenticate("og_nothing_here").is_none());
        assert!(tokens.authenticate("").is_none());
        assert!(revoke_token(&path, &record.id).unwrap());
        // The file changed: within a second the server forgets the token.
        std::thread::sleep(RELOAD_EVERY + Duration::from_millis(50));
        assert!(tokens.authenticate(&token).is_none());
        assert!(!revoke_token(&path, &record.id).unwrap());
    }

    #[test]
    fn bad_arguments_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = token_file(dir.path());
        assert!(create_token(&path, &[], Role::Read, None, None).is_err());
        assert!(create_token(&path, &["../etc".into()], Role::Read, None, None).is_err());
        assert!("owner".parse::<Role>().is_err());
    }
}
