//! The manifest written beside each backup: what it holds and how to check it.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The manifest format; bumped when a field changes meaning.
pub const FORMAT: u32 = 1;

/// Suffix of the encrypted dump.
pub const ARTIFACT_SUFFIX: &str = ".dump.zst.age";
/// Suffix of the manifest.
pub const MANIFEST_SUFFIX: &str = ".manifest.json";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    /// The backup's name: the prefix and the UTC start time.
    pub name: String,
    /// The encrypted dump's file name, beside this manifest.
    pub artifact: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    pub duration_seconds: f64,
    pub database: String,
    pub postgres: Versions,
    /// The newest migration applied (sqlx's `_sqlx_migrations`), when there is one.
    pub schema_version: Option<i64>,
    /// Lower-case hex SHA-256 of the encrypted file.
    pub sha256: String,
    pub sizes: Sizes,
    pub compression: String,
    /// The age recipients the backup is encrypted to.
    pub recipients: Vec<String>,
    /// Row counts and checksums per table, read in the snapshot the dump read.
    pub tables: Vec<TableStats>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Versions {
    /// `server_version` of the dumped server.
    pub server: String,
    /// `server_version_num`.
    pub server_num: i32,
    /// What `pg_dump --version` said.
    pub pg_dump: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sizes {
    /// pg_dump's output (custom format, uncompressed).
    pub dump_bytes: u64,
    /// After zstd.
    pub compressed_bytes: u64,
    /// The encrypted file.
    pub artifact_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct TableStats {
    pub schema: String,
    pub table: String,
    pub rows: i64,
    /// An order-independent checksum over the rows' text: the sum of the first 64 bits of
    /// each row's MD5, as a decimal.
    pub checksum: String,
}

impl Manifest {
    pub fn manifest_file(name: &str) -> String {
        format!("{name}{MANIFEST_SUFFIX}")
    }

    pub fn artifact_file(name: &str) -> String {
        format!("{name}{ARTIFACT_SUFFIX}")
    }

    /// Newest first, by start time, then by name for backups of the same second; every
    /// listing and the retention plan order backups this way.
    pub fn newest_first(a: &Self, b: &Self) -> std::cmp::Ordering {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| b.name.cmp(&a.name))
    }

    pub fn to_json(&self) -> anyhow::Result<Vec<u8>> {
        let mut text = serde_json::to_vec_pretty(self)?;
        text.push(b'\n');
        Ok(text)
    }

    pub fn from_json(bytes: &[u8], what: &str) -> anyhow::Result<Self> {
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|err| anyhow::anyhow!("the manifest {what} is not valid: {err}"))?;
        anyhow::ensure!(
            manifest.format == FORMAT,
            "the manifest {what} has format {}, this app-web reads format {FORMAT}",
            manifest.format
        );
        anyhow::ensure!(
            manifest.artifact == Self::artifact_file(&manifest.name),
            "the manifest {what} names the artifact {:?}, expected {:?}",
            manifest.artifact,
            Self::artifact_file(&manifest.name)
        );
        Ok(manifest)
    }
}

/// `2026-11-27 17:00:01Z`, for tables.
pub fn format_time(time: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]Z");
    time.format(&format).unwrap_or_else(|_| time.to_string())
}

/// The name of a backup started at `time`: `<prefix>-20261127T170001Z`.
pub fn backup_name(prefix: &str, time: OffsetDateTime) -> String {
    let format = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
    let stamp = time
        .to_offset(time::UtcOffset::UTC)
        .format(&format)
        .unwrap_or_else(|_| time.unix_timestamp().to_string());
    format!("{prefix}-{stamp}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_utc_start_time() {
        let time = time::macros::datetime!(2026-11-27 17:00:01 +01:00);
        assert_eq!(backup_name("app", time), "app-20261127T160001Z");
    }
}
