//! The local backup folder: complete backups (an artifact and its manifest), the temporary
//! files of one being written, a lock that keeps two writers apart, and the run log.
//!
//! Only a manifest makes a backup exist: it is renamed into place after its artifact, so a
//! process killed at any point leaves at most unlisted leftovers, which the next locked
//! command removes.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

use super::manifest::{ARTIFACT_SUFFIX, MANIFEST_SUFFIX, Manifest};

/// Names of temporary files start with this, so listings and globs skip them.
pub const TEMPORARY_PREFIX: &str = ".partial-";
/// The run log: one JSON line per run, failures included.
pub const RUN_LOG: &str = "runs.jsonl";

pub struct Folder {
    path: PathBuf,
}

/// Held while a command writes or deletes in the folder; released on drop.
pub struct FolderLock {
    _file: File,
}

impl Folder {
    /// Opens the folder, creating it (mode 0700) when missing.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        use std::os::unix::fs::DirBuilderExt;
        if !path.is_dir() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(path)
                .with_context(|| format!("create the backup folder {}", path.display()))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn artifact_path(&self, name: &str) -> PathBuf {
        self.path.join(Manifest::artifact_file(name))
    }

    pub fn manifest_path(&self, name: &str) -> PathBuf {
        self.path.join(Manifest::manifest_file(name))
    }

    /// Takes the folder's lock, failing at once when another process holds it.
    pub fn lock(&self) -> anyhow::Result<FolderLock> {
        let path = self.path.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("open the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => Ok(FolderLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
                "another backup command is working in {} (it holds {}); wait for it to finish",
                self.path.display(),
                path.display()
            ),
            Err(std::fs::TryLockError::Error(err)) => {
                Err(err).with_context(|| format!("lock {}", path.display()))
            }
        }
    }

    /// Every complete backup, newest first. A manifest that does not parse, or whose artifact
    /// is missing, is an error: the folder needs a look.
    pub fn list(&self) -> anyhow::Result<Vec<Manifest>> {
        let mut manifests = Vec::new();
        for name in self.file_names()? {
            if name.starts_with('.') || !name.ends_with(MANIFEST_SUFFIX) {
                continue;
            }
            let path = self.path.join(&name);
            let bytes = std::fs::read(&path).with_context(|| format!("read {}", path.display()))?;
            let manifest = Manifest::from_json(&bytes, &path.display().to_string())?;
            let artifact = self.artifact_path(&manifest.name);
            anyhow::ensure!(
                artifact.is_file(),
                "the backup {} has a manifest but no artifact ({} is missing)",
                manifest.name,
                artifact.display()
            );
            manifests.push(manifest);
        }
        manifests.sort_by(Manifest::newest_first);
        Ok(manifests)
    }

    /// The backup called `name`, or the newest for `latest`.
    pub fn find(&self, name: &str) -> anyhow::Result<Manifest> {
        let backups = self.list()?;
        let found = if name == "latest" {
            backups.into_iter().next()
        } else {
            backups.into_iter().find(|backup| backup.name == name)
        };
        found.with_context(|| {
            format!(
                "no backup {name:?} in {} (`app-web backup list` shows them)",
                self.path.display()
            )
        })
    }

    fn file_names(&self) -> anyhow::Result<Vec<String>> {
        let entries = std::fs::read_dir(&self.path)
            .with_context(|| format!("list the backup folder {}", self.path.display()))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.with_context(|| format!("list {}", self.path.display()))?;
            if let Ok(name) = entry.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Removes what a killed process left: temporary files, and artifacts with no manifest.
    /// Call it with the lock held.
    pub fn remove_leftovers(&self, _lock: &FolderLock) -> anyhow::Result<Vec<String>> {
        let names = self.file_names()?;
        let mut removed = Vec::new();
        for name in &names {
            let orphan = name
                .strip_suffix(ARTIFACT_SUFFIX)
                .is_some_and(|backup| !names.contains(&Manifest::manifest_file(backup)));
            if name.starts_with(TEMPORARY_PREFIX) || orphan {
                let path = self.path.join(name);
                std::fs::remove_file(&path)
                    .with_context(|| format!("remove the leftover {}", path.display()))?;
                removed.push(name.clone());
            }
        }
        Ok(removed)
    }

    /// A temporary file in the folder, removed on drop unless persisted.
    pub fn temporary(&self, purpose: &str) -> anyhow::Result<tempfile::NamedTempFile> {
        tempfile::Builder::new()
            .prefix(&format!("{TEMPORARY_PREFIX}{purpose}-"))
            .tempfile_in(&self.path)
            .with_context(|| format!("create a temporary file in {}", self.path.display()))
    }

    /// Syncs `file` and renames it to `name` in the folder, then syncs the folder, so the
    /// name only ever points at complete contents.
    pub fn persist(&self, file: tempfile::NamedTempFile, name: &str) -> anyhow::Result<()> {
        file.as_file()
            .sync_all()
            .with_context(|| format!("sync {name}"))?;
        let target = self.path.join(name);
        file.persist(&target)
            .map_err(|err| err.error)
            .with_context(|| format!("rename into {}", target.display()))?;
        self.sync()
    }

    /// Writes `bytes` to `name` through a temporary file.
    pub fn write_atomically(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut file = self.temporary("write")?;
        file.write_all(bytes)
            .with_context(|| format!("write {name}"))?;
        self.persist(file, name)
    }

    fn sync(&self) -> anyhow::Result<()> {
        File::open(&self.path)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("sync the folder {}", self.path.display()))
    }

    /// Deletes a backup: the manifest first, so it stops being listed at once.
    pub fn delete(&self, name: &str) -> anyhow::Result<()> {
        for path in [self.manifest_path(name), self.artifact_path(name)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    return Err(err).with_context(|| format!("delete {}", path.display()));
                }
            }
        }
        self.sync()
    }

    /// Appends one line to the run log, stamped with the time. Failing to log never hides the
    /// run's own result.
    pub fn log_run(&self, mut entry: serde_json::Value) {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        entry["time"] = serde_json::Value::String(time);
        let path = self.path.join(RUN_LOG);
        let line = format!("{entry}\n");
        let written = File::options()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut file| file.write_all(line.as_bytes()));
        if let Err(err) = written {
            tracing::warn!(error = %err, file = %path.display(), "could not write the run log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_go_and_complete_backups_stay() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(&dir.path().join("backups")).unwrap();
        let lock = folder.lock().unwrap();
        std::fs::write(folder.artifact_path("app-1"), b"complete").unwrap();
        std::fs::write(folder.manifest_path("app-1"), b"{}").unwrap();
        std::fs::write(folder.artifact_path("app-2"), b"no manifest").unwrap();
        let partial = folder.temporary("dump").unwrap();
        let partial_name = partial.path().file_name().unwrap().to_owned();
        partial.keep().unwrap();
        let mut removed = folder.remove_leftovers(&lock).unwrap();
        removed.sort();
        let mut expected = vec![
            Manifest::artifact_file("app-2"),
            partial_name.into_string().unwrap(),
        ];
        expected.sort();
        assert_eq!(removed, expected);
        assert!(folder.artifact_path("app-1").exists());
    }

    #[test]
    fn a_second_writer_is_refused_while_the_lock_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let held = folder.lock().unwrap();
        let err = folder.lock().err().expect("the lock is taken");
        assert!(
            format!("{err:#}").contains("another backup command"),
            "{err:#}"
        );
        drop(held);
        folder.lock().unwrap();
    }

    #[test]
    fn writes_land_whole_under_their_name() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        folder.write_atomically("a.json", b"{\"x\": 1}").unwrap();
        assert_eq!(
            std::fs::read(dir.path().join("a.json")).unwrap(),
            b"{\"x\": 1}"
        );
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.json"]);
    }
}
