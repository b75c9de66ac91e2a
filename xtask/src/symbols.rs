//! Breakpad symbols for crash reports: `symbols dump` writes the `.sym` file of each binary
//! into a symbol store folder (dump_syms, in the xtask built with the `bundler` feature, like
//! the bundles), dist zips a build's store into one artifact, and `symbols upload` sends each
//! file to app-web's symbol store through the admin API.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use xshell::Shell;

use crate::{flags, step};

impl flags::Symbols {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        match self.command {
            flags::SymbolsCommand::Dump { binaries, out } => {
                let written = dump(sh, &binaries, &out)?;
                for path in written {
                    println!("{}", path.display());
                }
                Ok(())
            }
            flags::SymbolsCommand::Upload {
                source,
                server,
                token_file,
                dry_run,
            } => upload(&source, &server, token_file.as_deref(), dry_run),
        }
    }
}

/// Writes the symbols of `binaries` into the store folder `out`; returns the files written.
/// Outside the bundler build this runs the bundler build's `symbols dump`.
pub fn dump(sh: &Shell, binaries: &[PathBuf], out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    for binary in binaries {
        anyhow::ensure!(
            binary.exists(),
            "{} does not exist: pass a built binary (or its .pdb / .dSYM)",
            binary.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("create {}", out.display()))?;
    dump_into(sh, binaries, out)?;
    sym_files(out)
}

#[cfg(feature = "bundler")]
fn dump_into(_sh: &Shell, binaries: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    for binary in binaries {
        let config = dump_syms::dumper::Config::with_output(dump_syms::dumper::Output::Store(
            out.to_owned(),
        ));
        let name = binary.to_string_lossy();
        step::run_with_spinner(
            &format!("symbols of {}", binary.display()),
            || -> anyhow::Result<()> {
                dump_syms::dumper::single_file(&config, &name)
                    .map_err(|err| anyhow::anyhow!("dump_syms on {name} failed: {err}"))
            },
        )?;
    }
    Ok(())
}

#[cfg(not(feature = "bundler"))]
fn dump_into(sh: &Shell, binaries: &[PathBuf], out: &Path) -> anyhow::Result<()> {
    step::quiet(xshell::cmd!(
        sh,
        "cargo run --locked --package xtask --features bundler -- symbols dump --out {out} {binaries...}"
    ))
    .run()
    .context("the symbols dump step failed")
}

/// Every `.sym` file under `dir`, sorted.
pub fn sym_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(true) {
        let entry = entry.with_context(|| format!("read {}", dir.display()))?;
        if !entry.file_type().is_dir() && entry.path().extension().is_some_and(|ext| ext == "sym") {
            found.push(entry.into_path());
        }
    }
    found.sort();
    Ok(found)
}

/// Zips the store folder `dir` into `zip_path`, entries sorted and dated 1980-01-01 so the
/// same symbols make the same bytes. Written to a temporary name, then renamed.
#[cfg(any(feature = "bundler", test))]
pub fn write_zip(dir: &Path, zip_path: &Path) -> anyhow::Result<()> {
    let files = sym_files(dir)?;
    anyhow::ensure!(
        !files.is_empty(),
        "{} holds no .sym files to zip",
        dir.display()
    );
    let folder = zip_path.parent().unwrap_or(Path::new("."));
    let temporary = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("create a temporary file in {}", folder.display()))?;
    let mut zip = zip::ZipWriter::new(temporary.reopen()?);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    for file in &files {
        let name = file
            .strip_prefix(dir)?
            .components()
            .map(|part| part.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        zip.start_file(name, options)?;
        let mut source =
            std::fs::File::open(file).with_context(|| format!("open {}", file.display()))?;
        std::io::copy(&mut source, &mut zip)?;
    }
    zip.finish()?.sync_all()?;
    temporary
        .persist(zip_path)
        .with_context(|| format!("rename into {}", zip_path.display()))?;
    Ok(())
}

/// One `.sym` file to upload: its module, debug id and bytes.
struct SymFile {
    debug_file: String,
    debug_id: String,
    bytes: Vec<u8>,
}

/// Reads `MODULE <os> <arch> <id> <file>` off the front of a symbol file.
fn module_of(bytes: &[u8], origin: &str) -> anyhow::Result<(String, String)> {
    let head = String::from_utf8_lossy(&bytes[..bytes.len().min(512)]);
    let line = head.lines().next().unwrap_or_default();
    let words: Vec<&str> = line.splitn(5, ' ').collect();
    match words.as_slice() {
        ["MODULE", _os, _arch, id, file] => Ok(((*file).to_owned(), (*id).to_owned())),
        _ => anyhow::bail!(
            "{origin} is not a Breakpad symbol file: it must start with `MODULE <os> <arch> <debug id> <file>`"
        ),
    }
}

fn read_source(source: &Path) -> anyhow::Result<Vec<SymFile>> {
    let mut files = Vec::new();
    if source.is_dir() {
        for path in sym_files(source)? {
            let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            let (debug_file, debug_id) = module_of(&bytes, &path.display().to_string())?;
            files.push(SymFile {
                debug_file,
                debug_id,
                bytes,
            });
        }
    } else {
        let file = std::fs::File::open(source)
            .with_context(|| format!("open {} (a folder or a symbols zip)", source.display()))?;
        let mut zip = zip::ZipArchive::new(file)
            .with_context(|| format!("{} is not a zip", source.display()))?;
        for index in 0..zip.len() {
            let mut entry = zip.by_index(index)?;
            if !entry.name().ends_with(".sym") {
                continue;
            }
            let origin = format!("{} in {}", entry.name(), source.display());
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            let (debug_file, debug_id) = module_of(&bytes, &origin)?;
            files.push(SymFile {
                debug_file,
                debug_id,
                bytes,
            });
        }
    }
    anyhow::ensure!(
        !files.is_empty(),
        "{} holds no .sym files",
        source.display()
    );
    Ok(files)
}

/// The admin token from `token_file`, or from APP_ADMIN_TOKEN.
pub fn admin_token(token_file: Option<&Path>) -> anyhow::Result<String> {
    let token = match token_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("read the admin token from {}", path.display()))?,
        None => std::env::var("APP_ADMIN_TOKEN").map_err(|_| {
            anyhow::anyhow!(
                "no admin token: pass --token-file or set APP_ADMIN_TOKEN to app-web's admin token"
            )
        })?,
    };
    let token = token.trim().to_owned();
    anyhow::ensure!(!token.is_empty(), "the admin token is empty");
    Ok(token)
}

/// Uploads every `.sym` in `source` (a store folder or a symbols zip) to app-web at `server`.
pub fn upload(
    source: &Path,
    server: &str,
    token_file: Option<&Path>,
    dry_run: bool,
) -> anyhow::Result<()> {
    let files = read_source(source)?;
    let server = server.trim_end_matches('/');
    anyhow::ensure!(
        server.starts_with("http://") || server.starts_with("https://"),
        "--server {server:?} must be an http:// or https:// URL"
    );
    if dry_run {
        for file in &files {
            eprintln!(
                "xtask: would upload {} {} ({} bytes) to {server}",
                file.debug_file,
                file.debug_id,
                file.bytes.len()
            );
        }
        return Ok(());
    }
    let token = admin_token(token_file)?;
    let client = crate::http::Client::new(600)
        .without_proxy()
        .with_header("authorization", &format!("Bearer {token}"));
    for file in &files {
        let url = format!(
            "{server}/api/admin/symbols/{}/{}",
            file.debug_file, file.debug_id
        );
        step::run(
            &format!("upload symbols of {} {}", file.debug_file, file.debug_id),
            || {
                let answer = client.send(
                    "PUT",
                    &url,
                    crate::http::Body::Bytes(&file.bytes, "text/plain"),
                )?;
                anyhow::ensure!(
                    answer.is_success(),
                    "app-web refused the symbols for {} ({}): {}",
                    file.debug_file,
                    answer.status,
                    answer.body
                );
                if step::is_verbose() {
                    eprintln!("{}", answer.body);
                }
                Ok(())
            },
        )?;
    }
    eprintln!("xtask: {} symbol file(s) uploaded to {server}", files.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYM: &str =
        "MODULE Linux x86_64 5A9832E5287241C1838ED98914E9B7FF1 app-desktop\nFUNC 0 10 0 main\n";

    #[test]
    fn a_zip_of_a_store_reads_back_and_is_reproducible() {
        let store = tempfile::tempdir().unwrap();
        let file = store
            .path()
            .join("app-desktop/5A9832E5287241C1838ED98914E9B7FF1/app-desktop.sym");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, SYM).unwrap();
        let out = tempfile::tempdir().unwrap();
        let first = out.path().join("a.zip");
        let second = out.path().join("b.zip");
        write_zip(store.path(), &first).unwrap();
        write_zip(store.path(), &second).unwrap();
        assert_eq!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap()
        );
        let files = read_source(&first).unwrap();
        assert_eq!(files.len(), 1);
        assert_eq!(files[0].debug_file, "app-desktop");
        assert_eq!(files[0].debug_id, "5A9832E5287241C1838ED98914E9B7FF1");
        assert_eq!(files[0].bytes, SYM.as_bytes());
        let from_folder = read_source(store.path()).unwrap();
        assert_eq!(from_folder[0].bytes, SYM.as_bytes());
    }

    #[test]
    fn files_that_are_not_symbols_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.sym"), "not a symbol file").unwrap();
        let err = read_source(dir.path()).err().unwrap().to_string();
        assert!(err.contains("is not a Breakpad symbol file"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        let err = read_source(empty.path()).err().unwrap().to_string();
        assert!(err.contains("holds no .sym files"), "{err}");
    }
}
