//! Crash report settings: where minidumps and symbols are kept, and how large and how many
//! uploads may be.

use std::path::PathBuf;

use clap::Args;

/// Crash report settings.
#[derive(Debug, Clone, Args)]
pub struct CrashConfig {
    /// Keep uploaded minidumps in this folder; without it crash uploads answer 503
    #[arg(long, env = "APP_WEB_CRASH_DIR")]
    pub crash_dir: Option<PathBuf>,

    /// Breakpad symbol files, as `<module>/<debug id>/<module>.sym` [default: <crash dir>/symbols]
    #[arg(long, env = "APP_WEB_SYMBOLS_DIR")]
    pub symbols_dir: Option<PathBuf>,

    /// Largest crash upload accepted (the minidump with its metadata), in MiB; nginx's limit on
    /// the upload route comes from the same .env variable
    #[arg(
        long,
        env = "APP_WEB_CRASH_MAX_MIB",
        default_value_t = 8,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub crash_max_mib: u64,

    /// Crash uploads one client address may make per hour; 0 turns the limit off
    #[arg(long, env = "APP_WEB_CRASH_UPLOADS_PER_HOUR", default_value_t = 30)]
    pub crash_uploads_per_hour: u64,

    /// Largest symbol file the admin API accepts, in MiB; nginx's limit on the symbol route
    /// comes from the same .env variable
    #[arg(
        long,
        env = "APP_WEB_SYMBOLS_MAX_MIB",
        default_value_t = 1024,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub symbols_max_mib: u64,
}
