//! Backup settings: where backups go, whom they are encrypted to, how long they are kept, and
//! the off-site store. Every setting is a flag and an `APP_WEB_BACKUP_*` variable.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::retention::Policy;

#[derive(Debug, Clone, Args)]
pub struct BackupConfig {
    /// The local backup folder
    #[arg(long = "dir", env = "APP_WEB_BACKUP_DIR", global = true)]
    pub dir: Option<PathBuf>,

    /// Start of every backup's name; the UTC time follows it
    #[arg(
        long,
        env = "APP_WEB_BACKUP_PREFIX",
        default_value = "app",
        global = true
    )]
    pub prefix: String,

    /// age recipients (public keys, `age1...`) backups are encrypted to; comma-separated in
    /// the variable. The server needs no secret key to make backups
    #[arg(
        long = "recipient",
        env = "APP_WEB_BACKUP_RECIPIENTS",
        value_delimiter = ',',
        global = true
    )]
    pub recipients: Vec<String>,

    /// A file of age recipients, one per line (`#` starts a comment), added to --recipient
    #[arg(long, env = "APP_WEB_BACKUP_RECIPIENTS_FILE", global = true)]
    pub recipients_file: Option<PathBuf>,

    /// The age identity file that decrypts backups (restore and verify only)
    #[arg(long, env = "APP_WEB_BACKUP_IDENTITY_FILE", global = true)]
    pub identity_file: Option<PathBuf>,

    /// zstd level for the dump (1 fastest .. 19 smallest)
    #[arg(long, env = "APP_WEB_BACKUP_ZSTD_LEVEL", default_value_t = 3,
          value_parser = clap::value_parser!(i32).range(1..=19), global = true)]
    pub zstd_level: i32,

    /// Daily backups to keep: the newest of each of this many days
    #[arg(
        long,
        env = "APP_WEB_BACKUP_KEEP_DAILY",
        default_value_t = 7,
        global = true
    )]
    pub keep_daily: usize,

    /// Weekly backups to keep: the newest of each of this many ISO weeks
    #[arg(
        long,
        env = "APP_WEB_BACKUP_KEEP_WEEKLY",
        default_value_t = 4,
        global = true
    )]
    pub keep_weekly: usize,

    /// Monthly backups to keep: the newest of each of this many months
    #[arg(
        long,
        env = "APP_WEB_BACKUP_KEEP_MONTHLY",
        default_value_t = 12,
        global = true
    )]
    pub keep_monthly: usize,

    /// pg_dump to run; it must not be older than the server
    #[arg(
        long,
        env = "APP_WEB_BACKUP_PG_DUMP",
        default_value = "pg_dump",
        global = true
    )]
    pub pg_dump: PathBuf,

    /// pg_restore to run
    #[arg(
        long,
        env = "APP_WEB_BACKUP_PG_RESTORE",
        default_value = "pg_restore",
        global = true
    )]
    pub pg_restore: PathBuf,

    /// Database to connect to for creating and dropping others (restore targets, drills)
    #[arg(
        long,
        env = "APP_WEB_BACKUP_MAINTENANCE_DATABASE",
        default_value = "postgres",
        global = true
    )]
    pub maintenance_database: String,

    #[command(flatten)]
    pub s3: S3Config,
}

/// The off-site copy: any S3-compatible store. Off when no bucket is set.
#[derive(Debug, Clone, Args)]
pub struct S3Config {
    /// Bucket for off-site copies; without it backups stay local
    #[arg(long, env = "APP_WEB_BACKUP_S3_BUCKET", global = true)]
    pub s3_bucket: Option<String>,

    /// Endpoint of an S3-compatible store, e.g. https://s3.eu-central-1.example.com; AWS's when unset
    #[arg(long, env = "APP_WEB_BACKUP_S3_ENDPOINT", global = true)]
    pub s3_endpoint: Option<String>,

    /// Region
    #[arg(
        long,
        env = "APP_WEB_BACKUP_S3_REGION",
        default_value = "us-east-1",
        global = true
    )]
    pub s3_region: String,

    /// Key prefix inside the bucket
    #[arg(
        long,
        env = "APP_WEB_BACKUP_S3_PREFIX",
        default_value = "backups",
        global = true
    )]
    pub s3_prefix: String,

    /// Access key id
    #[arg(long, env = "APP_WEB_BACKUP_S3_ACCESS_KEY_ID", global = true)]
    pub s3_access_key_id: Option<String>,

    /// File holding the secret access key
    #[arg(long, env = "APP_WEB_BACKUP_S3_SECRET_ACCESS_KEY_FILE", global = true)]
    pub s3_secret_access_key_file: Option<PathBuf>,

    /// Allow a plain-HTTP endpoint (for a store on the same host or network only)
    #[arg(long, env = "APP_WEB_BACKUP_S3_ALLOW_HTTP", global = true)]
    pub s3_allow_http: bool,

    /// Size of each part of a multipart upload, in MiB (S3's minimum is 5)
    #[arg(long, env = "APP_WEB_BACKUP_S3_PART_SIZE_MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(5..=5120), global = true)]
    pub s3_part_size_mib: u64,
}

impl BackupConfig {
    /// The backup folder, which every command but keygen needs.
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        self.dir
            .clone()
            .context("no backup folder: set --dir or APP_WEB_BACKUP_DIR")
    }

    pub fn retention(&self) -> Policy {
        Policy {
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
        }
    }

    /// Every recipient from the flag and the file, parsed.
    pub fn recipients(&self) -> anyhow::Result<Vec<age::x25519::Recipient>> {
        let mut texts: Vec<(String, String)> = self
            .recipients
            .iter()
            .filter(|text| !text.trim().is_empty())
            .map(|text| (text.trim().to_owned(), "--recipient".to_owned()))
            .collect();
        if let Some(file) = &self.recipients_file {
            texts.extend(read_recipients_file(file)?);
        }
        anyhow::ensure!(
            !texts.is_empty(),
            "no age recipient to encrypt to: set --recipient or APP_WEB_BACKUP_RECIPIENTS to a \
             public key (`app-web backup keygen` makes a pair), or --recipients-file"
        );
        texts
            .iter()
            .map(|(text, source)| super::keys::parse_recipient(text, source))
            .collect()
    }

    /// The identity file, which restore and verify need.
    pub fn identity_file(&self) -> anyhow::Result<&Path> {
        self.identity_file.as_deref().context(
            "decrypting needs the age identity: set --identity-file or \
             APP_WEB_BACKUP_IDENTITY_FILE to the file `app-web backup keygen` wrote",
        )
    }
}

fn read_recipients_file(file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("read the recipients file {}", file.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .map(|(index, line)| (line.trim(), index + 1))
        .filter(|(line, _)| !line.is_empty() && !line.starts_with('#'))
        .map(|(line, number)| (line.to_owned(), format!("{}:{number}", file.display())))
        .collect())
}
