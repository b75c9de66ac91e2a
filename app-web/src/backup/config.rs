//! Backup settings, in groups that each `app-web backup` command flattens only when it uses
//! them: where backups are kept (every command but keygen), how they are made, how they are
//! restored, how long they are kept, and the schedule. Every setting is a flag and an
//! `APP_WEB_BACKUP_*` variable.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

use super::retention::Policy;

/// Where backups are kept: the local folder and the off-site copy.
#[derive(Debug, Clone, Args)]
pub struct StoreConfig {
    /// The local backup folder
    #[arg(long = "dir", env = "APP_WEB_BACKUP_DIR")]
    pub dir: Option<PathBuf>,

    #[command(flatten)]
    pub s3: S3Config,
}

/// How a backup is made: pg_dump, zstd, and the age recipients it is encrypted to.
#[derive(Debug, Clone, Args)]
pub struct DumpConfig {
    /// Start of every backup's name; the UTC time follows it
    #[arg(long, env = "APP_WEB_BACKUP_PREFIX", default_value = "app")]
    pub prefix: String,

    /// age recipients (public keys, `age1...`) backups are encrypted to; comma-separated in
    /// the variable. The server needs no secret key to make backups
    #[arg(
        long = "recipient",
        env = "APP_WEB_BACKUP_RECIPIENTS",
        value_delimiter = ','
    )]
    pub recipients: Vec<String>,

    /// A file of age recipients, one per line (`#` starts a comment), added to --recipient
    #[arg(long, env = "APP_WEB_BACKUP_RECIPIENTS_FILE")]
    pub recipients_file: Option<PathBuf>,

    /// zstd level for the dump (1 fastest .. 19 smallest)
    #[arg(long, env = "APP_WEB_BACKUP_ZSTD_LEVEL", default_value_t = 3,
          value_parser = clap::value_parser!(i32).range(1..=19))]
    pub zstd_level: i32,

    /// pg_dump to run; it must not be older than the server
    #[arg(long, env = "APP_WEB_BACKUP_PG_DUMP", default_value = "pg_dump")]
    pub pg_dump: PathBuf,
}

/// How a backup is restored: the identity that decrypts it, pg_restore, and the database used to
/// create and drop others.
#[derive(Debug, Clone, Args)]
pub struct RestoreConfig {
    /// The age identity file that decrypts backups (restore and verify only)
    #[arg(long, env = "APP_WEB_BACKUP_IDENTITY_FILE")]
    pub identity_file: Option<PathBuf>,

    /// pg_restore to run
    #[arg(long, env = "APP_WEB_BACKUP_PG_RESTORE", default_value = "pg_restore")]
    pub pg_restore: PathBuf,

    /// Database to connect to for creating and dropping others (restore targets, drills)
    #[arg(
        long,
        env = "APP_WEB_BACKUP_MAINTENANCE_DATABASE",
        default_value = "postgres"
    )]
    pub maintenance_database: String,
}

/// Which backups are kept when pruning.
#[derive(Debug, Clone, Args)]
pub struct RetentionConfig {
    /// Daily backups to keep: the newest of each of this many days
    #[arg(long, env = "APP_WEB_BACKUP_KEEP_DAILY", default_value_t = 7)]
    pub keep_daily: usize,

    /// Weekly backups to keep: the newest of each of this many ISO weeks
    #[arg(long, env = "APP_WEB_BACKUP_KEEP_WEEKLY", default_value_t = 4)]
    pub keep_weekly: usize,

    /// Monthly backups to keep: the newest of each of this many months
    #[arg(long, env = "APP_WEB_BACKUP_KEEP_MONTHLY", default_value_t = 12)]
    pub keep_monthly: usize,
}

/// `backup schedule`'s own settings.
#[derive(Debug, Clone, Args)]
pub struct ScheduleConfig {
    /// When to back up, in UTC: five cron fields (minute first), or six with seconds first
    #[arg(long, env = "APP_WEB_BACKUP_SCHEDULE", default_value = "0 3 * * *")]
    pub cron: String,

    /// Prune after each successful backup
    #[arg(long, env = "APP_WEB_BACKUP_PRUNE", default_value_t = true, action = clap::ArgAction::Set)]
    pub prune: bool,

    /// Run a restore drill (`backup verify`) after each successful backup
    #[arg(long, env = "APP_WEB_BACKUP_VERIFY")]
    pub verify: bool,

    /// Address to serve Prometheus metrics on (GET /metrics)
    #[arg(
        long,
        env = "APP_WEB_BACKUP_METRICS_LISTEN",
        default_value = "127.0.0.1:9187"
    )]
    pub metrics_listen: SocketAddr,
}

/// The off-site copy: any S3-compatible store. Off when no bucket is set.
#[derive(Debug, Clone, Args)]
pub struct S3Config {
    /// Bucket for off-site copies; without it backups stay local
    #[arg(long, env = "APP_WEB_BACKUP_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// Endpoint of an S3-compatible store, e.g. https://s3.eu-central-1.example.com; AWS's when unset
    #[arg(long, env = "APP_WEB_BACKUP_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// Region
    #[arg(long, env = "APP_WEB_BACKUP_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// Key prefix inside the bucket
    #[arg(long, env = "APP_WEB_BACKUP_S3_PREFIX", default_value = "backups")]
    pub s3_prefix: String,

    /// Access key id
    #[arg(long, env = "APP_WEB_BACKUP_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,

    /// File holding the secret access key
    #[arg(long, env = "APP_WEB_BACKUP_S3_SECRET_ACCESS_KEY_FILE")]
    pub s3_secret_access_key_file: Option<PathBuf>,

    /// Allow a plain-HTTP endpoint (for a store on the same host or network only)
    #[arg(long, env = "APP_WEB_BACKUP_S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,

    /// Size of each part of a multipart upload, in MiB (S3's minimum is 5)
    #[arg(long, env = "APP_WEB_BACKUP_S3_PART_SIZE_MIB", default_value_t = 16,
          value_parser = clap::value_parser!(u64).range(5..=5120))]
    pub s3_part_size_mib: u64,
}

impl StoreConfig {
    /// The backup folder, which every command but keygen needs.
    pub fn dir(&self) -> anyhow::Result<PathBuf> {
        self.dir
            .clone()
            .context("no backup folder: set --dir or APP_WEB_BACKUP_DIR")
    }
}

impl RetentionConfig {
    pub fn policy(&self) -> Policy {
        Policy {
            daily: self.keep_daily,
            weekly: self.keep_weekly,
            monthly: self.keep_monthly,
        }
    }
}

impl DumpConfig {
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
}

impl RestoreConfig {
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
