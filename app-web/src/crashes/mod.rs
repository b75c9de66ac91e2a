//! Desktop crash reports: uploads (`POST /api/crashes`), the minidump folder, the symbol store,
//! background symbolication and grouping, and the admin API and page that show the groups.
//!
//! Minidumps are files in `--crash-dir` (`<report id>.dmp`), their metadata and the
//! symbolicated stack rows in PostgreSQL (`crash_reports`); symbols are Breakpad `.sym` files
//! in `--symbols-dir`, uploaded by `cargo xtask release publish` (or `cargo xtask symbols
//! upload`) through the admin API.

pub mod api;
pub mod store;
pub mod symbolicate;
pub mod symbols;
pub mod upload;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

/// Crash report settings.
#[derive(Debug, Clone, Args)]
pub struct CrashConfig {
    /// Keep uploaded minidumps in this folder; without it crash uploads answer 503
    #[arg(long, env = "APP_WEB_CRASH_DIR", global = true)]
    pub crash_dir: Option<PathBuf>,

    /// Breakpad symbol files, as `<module>/<debug id>/<module>.sym` [default: <crash dir>/symbols]
    #[arg(long, env = "APP_WEB_SYMBOLS_DIR", global = true)]
    pub symbols_dir: Option<PathBuf>,

    /// Largest crash upload accepted (the minidump with its metadata), in MiB; nginx's limit on
    /// the upload route comes from the same .env variable
    #[arg(
        long,
        env = "APP_WEB_CRASH_MAX_MIB",
        default_value_t = 8,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub crash_max_mib: u64,

    /// Crash uploads one client address may make per hour; 0 turns the limit off
    #[arg(
        long,
        env = "APP_WEB_CRASH_UPLOADS_PER_HOUR",
        default_value_t = 30,
        global = true
    )]
    pub crash_uploads_per_hour: u64,

    /// Largest symbol file the admin API accepts, in MiB; nginx's limit on the symbol route
    /// comes from the same .env variable
    #[arg(
        long,
        env = "APP_WEB_SYMBOLS_MAX_MIB",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u64).range(1..),
        global = true
    )]
    pub symbols_max_mib: u64,
}

impl Default for CrashConfig {
    fn default() -> Self {
        Self {
            crash_dir: None,
            symbols_dir: None,
            crash_max_mib: 8,
            crash_uploads_per_hour: 30,
            symbols_max_mib: 1024,
        }
    }
}

/// The crash report service: where minidumps and symbols live, the symbolicator, and the
/// signal that wakes the worker.
pub struct Crashes {
    pub dir: PathBuf,
    pub symbols: symbols::SymbolStore,
    pub symbolicator: symbolicate::Symbolicator,
    pub wake: tokio::sync::Notify,
    pub max_minidump_bytes: u64,
    pub max_symbols_bytes: u64,
    pub uploads_per_hour: u64,
}

impl Crashes {
    /// The service from its settings, with both folders made; None without `--crash-dir`.
    pub fn from_config(config: &CrashConfig) -> anyhow::Result<Option<Arc<Self>>> {
        let Some(dir) = &config.crash_dir else {
            return Ok(None);
        };
        let symbols_dir = config
            .symbols_dir
            .clone()
            .unwrap_or_else(|| dir.join("symbols"));
        for folder in [dir, &symbols_dir] {
            std::fs::create_dir_all(folder).with_context(|| {
                format!(
                    "make the crash report folder {} (set --crash-dir and --symbols-dir to writable folders)",
                    folder.display()
                )
            })?;
        }
        Ok(Some(Arc::new(Self {
            dir: dir.clone(),
            symbols: symbols::SymbolStore::new(symbols_dir.clone()),
            symbolicator: symbolicate::Symbolicator::new(symbols_dir),
            wake: tokio::sync::Notify::new(),
            max_minidump_bytes: crate::body_limits::mib(config.crash_max_mib),
            max_symbols_bytes: crate::body_limits::mib(config.symbols_max_mib),
            uploads_per_hour: config.crash_uploads_per_hour,
        })))
    }

    /// Where the minidump of report `name` lives.
    pub fn minidump_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
