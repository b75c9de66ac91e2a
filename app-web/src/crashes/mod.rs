//! Desktop crash reports: uploads (`POST /api/crashes`), the minidump folder, the symbol store,
//! background symbolication and grouping, and the admin API and page that show the groups.
//!
//! Minidumps are files in `--crash-dir` (`<report id>.dmp`), their metadata and the
//! symbolicated stack rows in PostgreSQL (`crash_reports`); symbols are Breakpad `.sym` files
//! in `--symbols-dir`, uploaded by `cargo xtask release publish` (or `cargo xtask symbols
//! upload`) through the admin API.

pub mod api;
pub mod config;
pub mod store;
pub mod symbolicate;
pub mod symbols;
pub mod upload;
pub mod worker;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;

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
    pub fn from_config(config: &config::CrashConfig) -> anyhow::Result<Option<Arc<Self>>> {
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
