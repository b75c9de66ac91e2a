//! `app-web backup`: encrypted database backups that the same binary (and so the same image)
//! makes, lists, restores, verifies, prunes and schedules.
//!
//! A backup is `pg_dump --format=custom` streamed through zstd and age into the backup folder
//! under a temporary name, and renamed once complete; its manifest, written last, is what makes
//! it listed. Row counts and checksums per table come from the snapshot the dump reads, so a
//! restore can be compared with the database as it was.

pub mod archive;
pub mod config;
pub mod keys;
pub mod manifest;
pub mod remote;
pub mod restore;
pub mod retention;
pub mod run;
pub mod schedule;
pub mod stats;

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::config::DatabaseConfig;
use config::{DumpConfig, RestoreConfig, RetentionConfig, StoreConfig};

/// `app-web backup ...`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(subcommand)]
    pub command: BackupCommand,
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Dump the database into an encrypted backup (and copy it off-site when S3 is set)
    Run {
        /// Prune by the retention policy after a successful backup (never after a failed one)
        #[arg(long)]
        prune: bool,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        dump: DumpConfig,
        #[command(flatten)]
        retention: RetentionConfig,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// List the backups, newest first
    List {
        /// List the off-site copies instead of the local ones
        #[arg(long)]
        remote: bool,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        store: StoreConfig,
    },
    /// Restore a backup into a named database, after checking its checksum and decrypting it
    Restore {
        /// The backup's name (as `list` shows it), or `latest`
        backup: String,
        /// The database to restore into; created when missing
        #[arg(long = "target-database")]
        target_database: String,
        /// Restore into a database that already has tables, dropping the objects the backup
        /// brings (`pg_restore --clean --if-exists`)
        #[arg(long)]
        clean: bool,
        /// Do not restore object ownership (for a server without the original roles)
        #[arg(long)]
        no_owner: bool,
        /// Take the backup from the off-site copy when it is not in the local folder
        #[arg(long)]
        from_remote: bool,
        /// Check and decrypt the backup, then stop before touching any database
        #[arg(long)]
        dry_run: bool,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        restore: RestoreConfig,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// A restore drill: restore a backup (the newest by default) into a scratch database,
    /// compare row counts and checksums with its manifest, then drop the scratch database
    Verify {
        /// The backup's name, or `latest`
        #[arg(default_value = "latest")]
        backup: String,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        restore: RestoreConfig,
        #[command(flatten)]
        database: DatabaseConfig,
    },
    /// Delete backups the retention policy no longer keeps, locally and off-site
    Prune {
        /// List what would be deleted and delete nothing
        #[arg(long)]
        dry_run: bool,
        /// Prune only the backups whose names start with this (and `-`): other prefixes,
        /// such as the `predeploy` backups `cargo xtask deploy` takes, keep their own
        #[arg(long, env = "APP_WEB_BACKUP_PREFIX", default_value = "app")]
        prefix: String,
        #[command(flatten)]
        store: StoreConfig,
        #[command(flatten)]
        retention: RetentionConfig,
    },
    /// Run, prune and (optionally) verify on a cron schedule until SIGTERM, serving Prometheus
    /// metrics about it
    Schedule(Box<schedule::ScheduleArgs>),
    /// Make an age key pair: the identity (secret) goes to a file only its owner can read,
    /// the recipient (public key, for APP_WEB_BACKUP_RECIPIENTS) is printed
    Keygen {
        /// Where to write the identity; refused when the file exists
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where a command writes its answer (stdout for the binary); logs go through tracing.
pub type Answer<'a> = &'a mut (dyn Write + Send);

impl BackupArgs {
    pub async fn run(self, out: Answer<'_>) -> anyhow::Result<()> {
        match self.command {
            BackupCommand::Keygen { out: file } => {
                let recipient = keys::generate_identity_file(&file)?;
                writeln!(out, "{recipient}")?;
                tracing::info!(
                    identity = %file.display(),
                    "wrote the identity; keep it off the database server, and give the backups \
                     the recipient printed (APP_WEB_BACKUP_RECIPIENTS)"
                );
                Ok(())
            }
            BackupCommand::Run {
                prune,
                store,
                dump,
                retention,
                database,
            } => {
                let backup = run::run_logged(&store, &dump, &database).await?;
                writeln!(out, "{}", backup.name)?;
                if prune {
                    prune_all(&store, &retention, &dump.prefix, false, out).await?;
                }
                Ok(())
            }
            BackupCommand::List {
                remote,
                json,
                store,
            } => list(&store, remote, json, out).await,
            BackupCommand::Restore {
                backup,
                target_database,
                clean,
                no_owner,
                from_remote,
                dry_run,
                store,
                restore,
                database,
            } => {
                let options = restore::RestoreOptions {
                    target_database,
                    clean,
                    no_owner,
                    from_remote,
                    dry_run,
                };
                restore::restore(&store, &restore, &database, &backup, &options, out).await
            }
            BackupCommand::Verify {
                backup,
                store,
                restore,
                database,
            } => {
                let report = restore::verify(&store, &restore, &database, &backup).await?;
                writeln!(out, "{report}")?;
                anyhow::ensure!(
                    report.matches(),
                    "the restored backup {} differs from its manifest",
                    report.backup
                );
                Ok(())
            }
            BackupCommand::Prune {
                dry_run,
                prefix,
                store,
                retention,
            } => prune_all(&store, &retention, &prefix, dry_run, out).await,
            BackupCommand::Schedule(args) => schedule::schedule(&args).await,
        }
    }
}

/// Prunes the local folder, then the off-site copies, by the same policy, naming each backup
/// it deletes (or would) in `out`. Only backups named `prefix-...` count: others (a deploy's
/// `predeploy-...`) are neither pruned nor counted.
pub async fn prune_all(
    store: &StoreConfig,
    retention: &RetentionConfig,
    prefix: &str,
    dry_run: bool,
    out: Answer<'_>,
) -> anyhow::Result<()> {
    let policy = retention.policy();
    let folder = archive::Folder::open(&store.dir()?)?;
    let _lock = folder.lock()?;
    let ours = |backups: Vec<manifest::Manifest>| -> Vec<manifest::Manifest> {
        backups
            .into_iter()
            .filter(|backup| backup.name.starts_with(&format!("{prefix}-")))
            .collect()
    };
    let local = ours(folder.list()?);
    let plan = retention::plan(&local, &policy);
    for backup in &plan.remove {
        if dry_run {
            writeln!(out, "would delete {}", backup.name)?;
        } else {
            folder.delete(&backup.name)?;
            tracing::info!(backup = %backup.name, "pruned");
            writeln!(out, "deleted {}", backup.name)?;
        }
    }
    if let Some(remote) = remote::Remote::from_config(&store.s3)? {
        let copies = ours(remote.list().await?);
        let plan = retention::plan(&copies, &policy);
        for backup in &plan.remove {
            if dry_run {
                writeln!(out, "would delete {} off-site", backup.name)?;
            } else {
                remote.delete(&backup.name).await?;
                tracing::info!(backup = %backup.name, "pruned off-site");
                writeln!(out, "deleted {} off-site", backup.name)?;
            }
        }
    }
    Ok(())
}

async fn list(
    store: &StoreConfig,
    remote: bool,
    json: bool,
    out: Answer<'_>,
) -> anyhow::Result<()> {
    let manifests = if remote {
        remote::Remote::from_config(&store.s3)?
            .context("--remote needs the off-site store: set --s3-bucket")?
            .list()
            .await?
    } else {
        archive::Folder::open(&store.dir()?)?.list()?
    };
    if json {
        writeln!(out, "{}", serde_json::to_string_pretty(&manifests)?)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<34} {:<21} {:>14} {:>8} {:>10}",
        "name", "created", "bytes", "tables", "rows"
    )?;
    for manifest in &manifests {
        writeln!(
            out,
            "{:<34} {:<21} {:>14} {:>8} {:>10}",
            manifest.name,
            manifest::format_time(manifest.created_at),
            manifest.sizes.artifact_bytes,
            manifest.tables.len(),
            manifest.tables.iter().map(|table| table.rows).sum::<i64>()
        )?;
    }
    Ok(())
}
