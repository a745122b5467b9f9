//! Settings: built-in defaults, overridden by a TOML file, then environment variables, then flags.

use std::path::{Path, PathBuf};

use anyhow::Context;
use octo_store::StoreOptions;
use serde::Deserialize;

/// Settings as written in `octograph.toml`; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where stores live (one sub-directory per organisation).
    pub data_dir: Option<PathBuf>,
    /// A directory of user schema files (`*.toml`) adding OOI types.
    pub schema_dir: Option<PathBuf>,
    /// Page cache of each embedded store, in MiB.
    pub cache_mb: Option<usize>,
    /// Memory of each store's lists of live keys by type (pages and counts of the current
    /// state), in MiB; 0 turns them off.
    pub key_index_mb: Option<usize>,
    /// Memory of each store's cache of current answers (recently read objects and referrer
    /// lists), in MiB; 0 turns it off.
    pub current_cache_mb: Option<usize>,
    /// Which bits run by default, and where user rule files live.
    #[serde(default)]
    pub bits: BitsConfig,
    /// The HTTP API.
    #[serde(default)]
    pub server: ServerSection,
    /// The change stream.
    #[serde(default)]
    pub stream: StreamSection,
    /// Syslog receivers and the raw log store.
    #[serde(default)]
    pub logs: octo_logs::LogsConfig,
}

/// The `[stream]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamSection {
    /// Change events kept per organisation (default: all).
    pub retention_events: Option<u64>,
    /// Hours change events are kept (default: for ever).
    pub retention_hours: Option<u64>,
    /// Serve change streams from Redis Streams at this URL (`redis://host:6379/`); default:
    /// the embedded store's log. `OCTOGRAPH_REDIS_URL` overrides it.
    pub redis_url: Option<String>,
    /// The prefix of the bus's Redis keys (default `octograph`): instances with the same prefix
    /// share streams.
    pub redis_prefix: Option<String>,
    /// Prepare every organisation's change events from the start, in the background as they
    /// are written (default `true`); `false` waits for an organisation's first stream consumer,
    /// sparing writes that work where nobody reads the streams.
    pub prepare_in_background: Option<bool>,
}

/// The `[server]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on (default `127.0.0.1:8001`).
    pub listen: Option<std::net::SocketAddr>,
    /// `false` turns tokens off; refused unless `listen` is a loopback address.
    pub auth: Option<bool>,
    /// Largest request body, in MiB (default 256).
    pub max_body_mb: Option<usize>,
}

/// The `[bits]` table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitsConfig {
    /// Bits to run even if off by default.
    #[serde(default)]
    pub enabled: Vec<String>,
    /// Bits not to run (an organisation can still enable them).
    #[serde(default)]
    pub disabled: Vec<String>,
    /// A directory of rule files (`*.toml`) adding bits.
    pub rules_dir: Option<PathBuf>,
}

/// The resolved settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub schema_dir: Option<PathBuf>,
    pub cache_mb: usize,
    pub key_index_mb: usize,
    pub current_cache_mb: usize,
    pub bits: BitsConfig,
    pub server: octo_server::ServerConfig,
    pub logs: octo_logs::LogsConfig,
    /// The Redis Streams bus of the change streams, if any: URL and key prefix.
    /// Whether `serve` starts the change streams' framers for every organisation at once.
    pub prepare_streams: bool,
    pub redis: Option<(String, String)>,
}

impl Config {
    /// The embedded stores' tuning (the sizes were checked to fit when the config was read).
    pub fn store_options(&self) -> StoreOptions {
        StoreOptions {
            cache_bytes: self.cache_mb << 20,
            key_index_bytes: self.key_index_mb << 20,
            current_cache_bytes: self.current_cache_mb << 20,
        }
    }

    /// Where the log pipeline keeps its devices and raw store (a name no organisation can have).
    pub fn logs_dir(&self) -> PathBuf {
        self.data_dir.join("logs.d")
    }
}

/// The config file used when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "octograph.toml";

impl Config {
    /// Reads the file (an explicit path must exist; the default one may be absent) and applies
    /// the overrides given by environment or flags (clap has already merged those two).
    pub fn load(
        path: Option<&Path>,
        data_dir: Option<PathBuf>,
        schema_dir: Option<PathBuf>,
        listen: Option<std::net::SocketAddr>,
    ) -> anyhow::Result<Config> {
        let file = match path {
            Some(p) => read(p)?,
            None if Path::new(DEFAULT_CONFIG_FILE).exists() => read(Path::new(DEFAULT_CONFIG_FILE))?,
            None => FileConfig::default(),
        };
        for (name, mb) in [
            ("cache_mb", file.cache_mb),
            ("key_index_mb", file.key_index_mb),
            ("current_cache_mb", file.current_cache_mb),
        ] {
            if let Some(mb) = mb.filter(|mb| mb.checked_mul(1 << 20).is_none()) {
                anyhow::bail!("config {name} = {mb}: more memory than this machine can address");
            }
        }
        Ok(Config {
            data_dir: data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("octograph-data")),
            schema_dir: schema_dir.or(file.schema_dir),
            cache_mb: file.cache_mb.unwrap_or(1024),
            key_index_mb: file.key_index_mb.unwrap_or(StoreOptions::default().key_index_bytes >> 20),
            current_cache_mb: file.current_cache_mb.unwrap_or(StoreOptions::default().current_cache_bytes >> 20),
            bits: file.bits,
            logs: file.logs,
            prepare_streams: file.stream.prepare_in_background.unwrap_or(true),
            redis: std::env::var("OCTOGRAPH_REDIS_URL")
                .ok()
                .filter(|u| !u.is_empty())
                .or(file.stream.redis_url.clone())
                .map(|url| (url, file.stream.redis_prefix.clone().unwrap_or_else(|| "octograph".to_owned()))),
            server: {
                let default = octo_server::ServerConfig::default();
                octo_server::ServerConfig {
                    listen: listen.or(file.server.listen).unwrap_or(default.listen),
                    auth: file.server.auth.unwrap_or(default.auth),
                    max_body_bytes: file.server.max_body_mb.map_or(default.max_body_bytes, |mb| mb << 20),
                    retention_events: file.stream.retention_events,
                    retention_age: file.stream.retention_hours.map(|h| std::time::Duration::from_secs(h * 3600)),
                }
            },
        })
    }
}

fn read(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("config {}", path.display()))
}
