//! `backup restore` and `backup verify`. Both check the artifact against its manifest and
//! decrypt its header before any database is touched; the rest streams file → age → zstd →
//! pg_restore in one transaction.

use std::fmt;
use std::io::BufReader;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::Context;
use sqlx::Executor;

use super::archive::Folder;
use super::config::{RestoreConfig, StoreConfig};
use super::keys;
use super::manifest::{Manifest, TableStats};
use super::remote::Remote;
use super::run::hash_file;
use super::stats::{self, Target, quote_identifier};
use crate::config::DatabaseConfig;

#[derive(Debug, Clone)]
pub struct RestoreOptions {
    pub target_database: String,
    pub clean: bool,
    pub no_owner: bool,
    pub from_remote: bool,
    pub dry_run: bool,
}

type Identities = Vec<Box<dyn age::Identity + Send + Sync>>;
type Plaintext = age::stream::StreamReader<BufReader<std::fs::File>>;

pub async fn restore(
    store: &StoreConfig,
    config: &RestoreConfig,
    database: &DatabaseConfig,
    backup: &str,
    options: &RestoreOptions,
    out: super::Answer<'_>,
) -> anyhow::Result<()> {
    let folder = Folder::open(&store.dir()?)?;
    let manifest = locate(store, &folder, backup, options.from_remote).await?;
    let identities = keys::read_identities(config.identity_file()?)?;
    let artifact = folder.artifact_path(&manifest.name);
    check_artifact(&artifact, &manifest)?;
    let plaintext = decrypt(&artifact, &manifest, &identities, config.identity_file()?)?;
    if options.dry_run {
        writeln!(
            out,
            "{} checks out and decrypts; a restore would go into the database {:?}",
            manifest.name, options.target_database
        )?;
        return Ok(());
    }
    let server = Target::from_config(database)?;
    let maintenance = &config.maintenance_database;
    let created = prepare_database(
        &server,
        maintenance,
        &options.target_database,
        options.clean,
    )
    .await?;
    let restored = run_pg_restore(
        config,
        &server.with_database(&options.target_database),
        plaintext,
        options.clean,
        options.no_owner,
    )
    .await;
    if let Err(err) = restored {
        if created {
            drop_database(&server, maintenance, &options.target_database).await?;
        }
        return Err(err).with_context(|| {
            format!(
                "restore {} into {:?} (pg_restore ran in one transaction: nothing of it stayed)",
                manifest.name, options.target_database
            )
        });
    }
    writeln!(
        out,
        "restored {} into the database {:?}",
        manifest.name, options.target_database
    )?;
    Ok(())
}

/// The backup called `name` in the folder, downloaded first when it is only off-site and
/// `from_remote` allows it.
async fn locate(
    store: &StoreConfig,
    folder: &Folder,
    name: &str,
    from_remote: bool,
) -> anyhow::Result<Manifest> {
    match folder.find(name) {
        Ok(manifest) => Ok(manifest),
        Err(err) if from_remote => {
            let remote = Remote::from_config(&store.s3)?
                .context("--from-remote needs the off-site store: set --s3-bucket")?;
            let _lock = folder.lock()?;
            remote
                .download(folder, name)
                .await
                .with_context(|| format!("{err:#}; nor could it come from off-site"))
        }
        Err(err) => Err(err),
    }
}

/// Fails unless the artifact has the size and SHA-256 its manifest gives.
pub fn check_artifact(path: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let (sha256, size) = hash_file(path)?;
    anyhow::ensure!(
        size == manifest.sizes.artifact_bytes,
        "the backup {} is damaged: {} has {size} bytes, its manifest says {} (truncated or \
         padded); no database was touched. Restore another backup (`app-web backup list`) or \
         the off-site copy (--from-remote)",
        manifest.name,
        path.display(),
        manifest.sizes.artifact_bytes
    );
    anyhow::ensure!(
        sha256 == manifest.sha256,
        "the backup {} is damaged: the SHA-256 of {} is {sha256}, its manifest says {}; no \
         database was touched. Restore another backup (`app-web backup list`) or the off-site \
         copy (--from-remote)",
        manifest.name,
        path.display(),
        manifest.sha256
    );
    Ok(())
}

/// Opens the artifact and decrypts its header with `identities`.
fn decrypt(
    path: &Path,
    manifest: &Manifest,
    identities: &Identities,
    identity_file: &Path,
) -> anyhow::Result<Plaintext> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let decryptor = age::Decryptor::new_buffered(BufReader::with_capacity(1 << 20, file))
        .with_context(|| format!("{} is not an age file", path.display()))?;
    decryptor
        .decrypt(
            identities
                .iter()
                .map(|identity| identity.as_ref() as &dyn age::Identity),
        )
        .map_err(|err| match err {
            age::DecryptError::NoMatchingKeys => anyhow::anyhow!(
                "no identity in {} can decrypt the backup {}: it is encrypted to {}; no \
                 database was touched. Use the identity file that belongs to one of those \
                 recipients",
                identity_file.display(),
                manifest.name,
                manifest.recipients.join(", ")
            ),
            other => anyhow::anyhow!("decrypt the backup {}: {other}", manifest.name),
        })
}

/// Creates `name` when missing (returns true then); refuses one with tables unless `clean`.
/// `maintenance` is where CREATE DATABASE runs.
async fn prepare_database(
    server: &Target,
    maintenance: &str,
    name: &str,
    clean: bool,
) -> anyhow::Result<bool> {
    let mut connection = server.with_database(maintenance).connect().await?;
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(&mut connection)
            .await
            .context("look for the target database")?;
    if !exists {
        connection
            .execute(
                format!(
                    "CREATE DATABASE {} TEMPLATE template0",
                    quote_identifier(name)
                )
                .as_str(),
            )
            .await
            .with_context(|| format!("create the database {name:?}"))?;
        return Ok(true);
    }
    let mut target = server.with_database(name).connect().await?;
    let tables = stats::user_tables(&mut target).await?;
    if let Some((schema, table)) = tables.first()
        && !clean
    {
        anyhow::bail!(
            "the database {name:?} is not empty: it has {} tables (e.g. {schema}.{table}); \
             restore into a new database name, or pass --clean to replace what the backup \
             brings",
            tables.len()
        );
    }
    Ok(false)
}

async fn drop_database(server: &Target, maintenance: &str, name: &str) -> anyhow::Result<()> {
    let mut connection = server.with_database(maintenance).connect().await?;
    connection
        .execute(
            format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_identifier(name)
            )
            .as_str(),
        )
        .await
        .with_context(|| format!("drop the database {name:?}"))?;
    Ok(())
}

/// Streams the decrypted, decompressed dump into pg_restore, in one transaction.
async fn run_pg_restore(
    config: &RestoreConfig,
    target: &Target,
    plaintext: Plaintext,
    clean: bool,
    no_owner: bool,
) -> anyhow::Result<()> {
    let pg_restore = config.pg_restore.clone();
    let env = target.libpq_env();
    let database = target.database();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut command = Command::new(&pg_restore);
        command
            .args(["--exit-on-error", "--single-transaction", "--no-password"])
            .arg(format!("--dbname={database}"))
            .envs(env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if clean {
            command.args(["--clean", "--if-exists"]);
        }
        if no_owner {
            command.arg("--no-owner");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("start {}", pg_restore.display()))?;
        let errors = super::run::collect_stderr(&mut child);
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let streamed = zstd::Decoder::new(plaintext)
            .and_then(|mut decoder| std::io::copy(&mut decoder, &mut stdin));
        drop(stdin);
        super::run::wait_for_tool(child, errors, "pg_restore")?;
        streamed.context("decrypt and decompress the backup")?;
        Ok(())
    })
    .await
    .context("the restore thread panicked")?
}

/// What a restore drill found.
#[derive(Debug)]
pub struct VerifyReport {
    pub backup: String,
    pub tables: usize,
    pub rows: i64,
    pub differences: Vec<String>,
}

impl VerifyReport {
    pub fn matches(&self) -> bool {
        self.differences.is_empty()
    }
}

impl fmt::Display for VerifyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.matches() {
            write!(
                f,
                "verified {}: {} tables, {} rows, every count and checksum matches its manifest",
                self.backup, self.tables, self.rows
            )
        } else {
            writeln!(f, "{} differs from its manifest:", self.backup)?;
            for difference in &self.differences {
                writeln!(f, "  {difference}")?;
            }
            Ok(())
        }
    }
}

/// Restores a backup into a scratch database, compares it with the manifest, drops the
/// scratch database whatever happened, and records the outcome in the run log.
pub async fn verify(
    store: &StoreConfig,
    config: &RestoreConfig,
    database: &DatabaseConfig,
    backup: &str,
) -> anyhow::Result<VerifyReport> {
    let folder = Folder::open(&store.dir()?)?;
    let result = verify_in(config, database, &folder, backup).await;
    let entry = match &result {
        Ok(report) => serde_json::json!({
            "command": "verify", "ok": report.matches(), "backup": report.backup,
            "differences": report.differences,
        }),
        Err(err) => serde_json::json!({
            "command": "verify", "ok": false, "error": format!("{err:#}"),
        }),
    };
    folder.log_run(entry);
    result
}

async fn verify_in(
    config: &RestoreConfig,
    database: &DatabaseConfig,
    folder: &Folder,
    backup: &str,
) -> anyhow::Result<VerifyReport> {
    let manifest = folder.find(backup)?;
    let identities = keys::read_identities(config.identity_file()?)?;
    let artifact = folder.artifact_path(&manifest.name);
    check_artifact(&artifact, &manifest)?;
    let plaintext = decrypt(&artifact, &manifest, &identities, config.identity_file()?)?;
    let server = Target::from_config(database)?;
    let scratch = scratch_name(&manifest.database);
    let maintenance = &config.maintenance_database;
    prepare_database(&server, maintenance, &scratch, false).await?;
    let outcome = async {
        run_pg_restore(
            config,
            &server.with_database(&scratch),
            plaintext,
            false,
            true,
        )
        .await?;
        let mut connection = server.with_database(&scratch).connect().await?;
        connection
            .execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .await
            .context("start reading the scratch database")?;
        let tables = stats::table_stats(&mut connection).await?;
        connection
            .execute("COMMIT")
            .await
            .context("finish reading")?;
        Ok::<_, anyhow::Error>(tables)
    }
    .await;
    let dropped = drop_database(&server, maintenance, &scratch).await;
    let restored = outcome.with_context(|| {
        format!(
            "restore {} into the scratch database {scratch:?}",
            manifest.name
        )
    })?;
    dropped?;
    Ok(VerifyReport {
        backup: manifest.name.clone(),
        tables: manifest.tables.len(),
        rows: manifest.tables.iter().map(|table| table.rows).sum(),
        differences: compare(&manifest.tables, &restored),
    })
}

/// A scratch database name that fits PostgreSQL's 63 bytes.
fn scratch_name(database: &str) -> String {
    let stamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let suffix = format!("_verify_{stamp}_{}", std::process::id());
    let keep = database
        .char_indices()
        .take_while(|(index, c)| index + c.len_utf8() + suffix.len() <= 63)
        .map(|(_, c)| c)
        .collect::<String>();
    format!("{keep}{suffix}")
}

/// Every way `restored` differs from `expected`, one line each.
pub fn compare(expected: &[TableStats], restored: &[TableStats]) -> Vec<String> {
    let key = |table: &TableStats| format!("{}.{}", table.schema, table.table);
    let restored_by_name: std::collections::BTreeMap<String, &TableStats> =
        restored.iter().map(|table| (key(table), table)).collect();
    let mut differences = Vec::new();
    for table in expected {
        match restored_by_name.get(&key(table)) {
            None => differences.push(format!("{}: missing after the restore", key(table))),
            Some(got) if got.rows != table.rows => differences.push(format!(
                "{}: {} rows, the manifest says {}",
                key(table),
                got.rows,
                table.rows
            )),
            Some(got) if got.checksum != table.checksum => differences.push(format!(
                "{}: checksum {}, the manifest says {}",
                key(table),
                got.checksum,
                table.checksum
            )),
            Some(_) => {}
        }
    }
    let expected_names: std::collections::BTreeSet<String> = expected.iter().map(key).collect();
    for name in restored_by_name.keys() {
        if !expected_names.contains(name) {
            differences.push(format!("{name}: not in the manifest"));
        }
    }
    differences
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, rows: i64, checksum: &str) -> TableStats {
        TableStats {
            schema: "public".into(),
            table: name.into(),
            rows,
            checksum: checksum.into(),
        }
    }

    #[test]
    fn differences_name_the_table_and_both_values() {
        let expected = [
            table("a", 1, "10"),
            table("b", 2, "20"),
            table("c", 3, "30"),
        ];
        let restored = [table("a", 1, "10"), table("b", 2, "21"), table("d", 0, "0")];
        assert_eq!(
            compare(&expected, &restored),
            [
                "public.b: checksum 21, the manifest says 20",
                "public.c: missing after the restore",
                "public.d: not in the manifest",
            ]
        );
        assert!(compare(&expected, &expected).is_empty());
    }

    #[test]
    fn scratch_names_fit_postgres() {
        let name = scratch_name(&"d".repeat(80));
        assert!(name.len() <= 63, "{name}");
        assert!(name.contains("_verify_"));
    }
}
