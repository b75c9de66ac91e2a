//! `backup run`: pg_dump → zstd → age → a temporary file, renamed once complete, its manifest
//! beside it, then the off-site copy.

use std::io::{BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::Context;
use sha2::{Digest, Sha256};
use sqlx::Executor;
use time::OffsetDateTime;

use super::archive::Folder;
use super::config::{DumpConfig, StoreConfig};
use super::manifest::{self, Manifest, Sizes, Versions};
use super::remote::Remote;
use super::stats::{self, Target};
use crate::config::DatabaseConfig;

/// Runs a backup and records its outcome in the folder's run log, failures included.
pub async fn run_logged(
    store: &StoreConfig,
    config: &DumpConfig,
    database: &DatabaseConfig,
) -> anyhow::Result<Manifest> {
    let folder = Folder::open(&store.dir()?)?;
    let started = Instant::now();
    let result = run(store, config, database, &folder).await;
    let entry = match &result {
        Ok(manifest) => serde_json::json!({
            "command": "run",
            "ok": true,
            "backup": manifest.name,
            "duration_seconds": manifest.duration_seconds,
            "artifact_bytes": manifest.sizes.artifact_bytes,
        }),
        Err(err) => serde_json::json!({
            "command": "run",
            "ok": false,
            "duration_seconds": started.elapsed().as_secs_f64(),
            "error": format!("{err:#}"),
        }),
    };
    folder.log_run(entry);
    match &result {
        Ok(manifest) => tracing::info!(
            backup = %manifest.name,
            seconds = manifest.duration_seconds,
            bytes = manifest.sizes.artifact_bytes,
            "backup finished"
        ),
        Err(err) => tracing::error!(error = format!("{err:#}"), "backup failed"),
    }
    result
}

/// Makes one backup in `folder`, then brings the off-site copy up to date.
pub async fn run(
    store: &StoreConfig,
    config: &DumpConfig,
    database: &DatabaseConfig,
    folder: &Folder,
) -> anyhow::Result<Manifest> {
    let started = Instant::now();
    let recipients = config.recipients()?;
    let remote = Remote::from_config(&store.s3)?;
    let target = Target::from_config(database)?;
    let lock = folder.lock()?;
    for leftover in folder.remove_leftovers(&lock)? {
        tracing::warn!(file = %leftover, "removed what an interrupted backup left behind");
    }
    let pg_dump_version = stats::tool_version(&config.pg_dump)?;

    let mut connection = target.connect().await?;
    let snapshot = stats::export_snapshot(&mut connection).await?;
    let facts = stats::server_facts(&mut connection).await?;
    stats::check_client_version("pg_dump", &pg_dump_version, facts.server_version_num)?;
    let created_at = OffsetDateTime::now_utc().replace_nanosecond(0)?;
    let name = unused_name(folder, &config.prefix, created_at);
    tracing::info!(backup = %name, database = %target.database(), "backup started");

    let dump = DumpJob {
        pg_dump: config.pg_dump.clone(),
        env: target.libpq_env(),
        snapshot,
        recipients: recipients.clone(),
        zstd_level: config.zstd_level,
        file: folder.temporary("dump")?,
    };
    let dumping = tokio::task::spawn_blocking(move || dump.run());
    // The checksums read the snapshot pg_dump reads, while it reads it.
    let (tables, dumped) = tokio::join!(stats::table_stats(&mut connection), dumping);
    let dumped = dumped.context("the dump thread panicked")?;
    // A failed read aborts the snapshot's transaction, which fails pg_dump in turn: the read's
    // error is then the cause.
    let (tables, dumped) = match (tables, dumped) {
        (Ok(tables), Ok(dumped)) => (tables, dumped),
        (Err(read), Ok(_)) => return Err(read),
        (Ok(_), Err(dump)) => return Err(dump),
        (Err(read), Err(dump)) => {
            return Err(read.context(format!("pg_dump failed as well: {dump:#}")));
        }
    };
    connection
        .execute("COMMIT")
        .await
        .context("end the snapshot transaction")?;

    let manifest = Manifest {
        format: manifest::FORMAT,
        name: name.clone(),
        artifact: Manifest::artifact_file(&name),
        created_at,
        duration_seconds: 0.0,
        database: target.database(),
        postgres: Versions {
            server: facts.server_version,
            server_num: facts.server_version_num,
            pg_dump: pg_dump_version,
        },
        schema_version: facts.schema_version,
        sha256: dumped.sha256,
        sizes: dumped.sizes,
        compression: format!("zstd level {}", config.zstd_level),
        recipients: recipients.iter().map(ToString::to_string).collect(),
        tables,
    };
    // The artifact first, the manifest last: only the manifest makes the backup listed.
    folder.persist(dumped.file, &manifest.artifact)?;
    let manifest = Manifest {
        duration_seconds: started.elapsed().as_secs_f64(),
        ..manifest
    };
    folder.write_atomically(&Manifest::manifest_file(&name), &manifest.to_json()?)?;

    if let Some(remote) = remote {
        remote.sync_from(folder).await.with_context(|| {
            format!("the backup {name} is saved locally, but the off-site copy failed")
        })?;
    }
    drop(lock);
    Ok(manifest)
}

/// `<prefix>-<time>`, with `-2`, `-3`... when a backup of that second exists.
fn unused_name(folder: &Folder, prefix: &str, time: OffsetDateTime) -> String {
    let base = manifest::backup_name(prefix, time);
    let taken =
        |name: &str| folder.manifest_path(name).exists() || folder.artifact_path(name).exists();
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|name| !taken(name))
        .expect("some suffix is free")
}

/// One pg_dump streamed into an encrypted temporary file.
struct DumpJob {
    pg_dump: PathBuf,
    env: Vec<(&'static str, String)>,
    snapshot: String,
    recipients: Vec<age::x25519::Recipient>,
    zstd_level: i32,
    file: tempfile::NamedTempFile,
}

struct Dumped {
    file: tempfile::NamedTempFile,
    sha256: String,
    sizes: Sizes,
}

impl DumpJob {
    fn run(self) -> anyhow::Result<Dumped> {
        let mut child = Command::new(&self.pg_dump)
            .args(["--format=custom", "--compress=0", "--no-password"])
            .arg(format!("--snapshot={}", self.snapshot))
            .envs(self.env.iter().map(|(name, value)| (name, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", self.pg_dump.display()))?;
        let errors = collect_stderr(&mut child);
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let streamed = encrypt_stream(
            &mut stdout,
            self.file.as_file(),
            &self.recipients,
            self.zstd_level,
        );
        if streamed.is_err() {
            // pg_dump would block on a full pipe; it has nothing left to give.
            let _ = child.kill();
        }
        drop(stdout);
        let errors = wait_for_tool(child, errors, "pg_dump")?;
        let (sha256, sizes) = streamed.context("compress and encrypt the dump")?;
        anyhow::ensure!(
            sizes.dump_bytes > 0,
            "pg_dump wrote nothing: {}",
            errors.trim()
        );
        Ok(Dumped {
            file: self.file,
            sha256,
            sizes,
        })
    }
}

/// Reads a child's piped stderr on a thread of its own, so a chatty child never blocks on a
/// full pipe while its other stream is being drained.
pub fn collect_stderr(child: &mut std::process::Child) -> std::thread::JoinHandle<String> {
    let stderr = child.stderr.take();
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut stderr) = stderr {
            let _ = stderr.read_to_string(&mut text);
        }
        text
    })
}

/// Waits for `tool` to exit; fails with what it said on stderr unless it succeeded, else
/// returns that.
pub fn wait_for_tool(
    mut child: std::process::Child,
    errors: std::thread::JoinHandle<String>,
    tool: &str,
) -> anyhow::Result<String> {
    let status = child.wait().with_context(|| format!("wait for {tool}"))?;
    let errors = errors.join().unwrap_or_default();
    anyhow::ensure!(
        status.success(),
        "{tool} failed ({status}): {}",
        errors.trim()
    );
    Ok(errors)
}

/// Compresses and encrypts `input` into `output`; returns the SHA-256 of what was written
/// and the sizes at each stage.
pub fn encrypt_stream(
    input: &mut impl Read,
    output: &std::fs::File,
    recipients: &[age::x25519::Recipient],
    zstd_level: i32,
) -> anyhow::Result<(String, Sizes)> {
    let hashed = HashingWriter::new(BufWriter::with_capacity(1 << 20, output));
    let encryptor =
        age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
            .context("set up age encryption")?;
    let encrypted = encryptor
        .wrap_output(hashed)
        .context("write the age header")?;
    let compressed_counter = CountingWriter::new(encrypted);
    let mut compressor =
        zstd::Encoder::new(compressed_counter, zstd_level).context("start zstd")?;
    let dump_bytes = std::io::copy(input, &mut compressor).context("stream the dump")?;
    let compressed_counter = compressor.finish().context("finish zstd")?;
    let compressed_bytes = compressed_counter.count;
    let hashed = compressed_counter
        .inner
        .finish()
        .context("finish the age stream")?;
    let (mut buffered, sha256, artifact_bytes) = hashed.finish();
    buffered.flush().context("write the backup file")?;
    Ok((
        sha256,
        Sizes {
            dump_bytes,
            compressed_bytes,
            artifact_bytes,
        },
    ))
}

/// Passes writes through, counting the bytes.
pub struct CountingWriter<W> {
    pub inner: W,
    pub count: u64,
}

impl<W> CountingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, count: 0 }
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Passes writes through, hashing and counting them.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    /// The writer, the hex SHA-256 and the byte count.
    pub fn finish(self) -> (W, String, u64) {
        (self.inner, hex::encode(self.hasher.finalize()), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.count += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The hex SHA-256 and size of a file.
pub fn hash_file(path: &std::path::Path) -> anyhow::Result<(String, u64)> {
    let mut file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut hasher = HashingWriter::new(std::io::sink());
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("read {}", path.display()))?;
    let (_, sha256, size) = hasher.finish();
    Ok((sha256, size))
}
