//! The deterministic server archive: sorted entries, one timestamp, root ownership and
//! normalised modes, so the same inputs always give the same bytes.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use flate2::{Compression, GzBuilder};

/// One file in the archive, read from `source` and stored as `name` under the top folder.
#[derive(Debug, Clone)]
pub struct ArchiveEntry {
    pub name: String,
    pub source: PathBuf,
    pub executable: bool,
}

/// Writes a `.tar.gz` holding `entries` below the folder `top`. Every entry gets the mtime
/// `source_date`, uid and gid 0, no user or group name, and mode 0755 or 0644. The archive is
/// written to a temporary name beside `destination` and renamed into place when complete.
pub fn write_tar_gz(
    destination: &Path,
    top: &str,
    entries: &[ArchiveEntry],
    source_date: u64,
) -> anyhow::Result<()> {
    let folder = destination
        .parent()
        .context("archive path has no parent folder")?;
    let temporary = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("create a temporary file in {}", folder.display()))?;

    // gzip's own header carries a time and a file name; leave both out.
    let encoder = GzBuilder::new()
        .mtime(0)
        .write(temporary.as_file(), Compression::best());
    let mut tar = tar::Builder::new(encoder);
    tar.append(
        &header(
            &format!("{top}/"),
            0,
            0o755,
            tar::EntryType::Directory,
            source_date,
        )?,
        std::io::empty(),
    )
    .context("add the top folder")?;
    // The folders entries sit in (`docs/` for `docs/deploy.md`), each once, before the files.
    let mut folders: Vec<String> = entries
        .iter()
        .filter_map(|entry| {
            entry
                .name
                .rsplit_once('/')
                .map(|(folder, _)| folder.to_owned())
        })
        .collect();
    folders.sort();
    folders.dedup();
    for folder in folders {
        let path = format!("{top}/{folder}/");
        tar.append(
            &header(&path, 0, 0o755, tar::EntryType::Directory, source_date)?,
            std::io::empty(),
        )
        .with_context(|| format!("add {path}"))?;
    }

    let mut sorted: Vec<&ArchiveEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in sorted {
        let data = std::fs::read(&entry.source)
            .with_context(|| format!("read {}", entry.source.display()))?;
        let mode = if entry.executable { 0o755 } else { 0o644 };
        let path = format!("{top}/{}", entry.name);
        tar.append(
            &header(
                &path,
                data.len() as u64,
                mode,
                tar::EntryType::Regular,
                source_date,
            )?,
            data.as_slice(),
        )
        .with_context(|| format!("add {path}"))?;
    }
    let mut encoder = tar.into_inner().context("finish the tar stream")?;
    encoder.flush().context("flush the archive")?;
    encoder.finish().context("finish the gzip stream")?;
    temporary
        .as_file()
        .sync_all()
        .context("sync the archive to disk")?;
    temporary
        .persist(destination)
        .with_context(|| format!("move the archive to {}", destination.display()))?;
    Ok(())
}

fn header(
    path: &str,
    size: u64,
    mode: u32,
    kind: tar::EntryType,
    mtime: u64,
) -> anyhow::Result<tar::Header> {
    let mut header = tar::Header::new_ustar();
    header
        .set_path(path)
        .with_context(|| format!("{path} does not fit a tar header"))?;
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_username("root")?;
    header.set_groupname("root")?;
    header.set_mtime(mtime);
    header.set_cksum();
    Ok(header)
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    const SOURCE_DATE: u64 = 1_700_000_000;

    fn inputs(dir: &Path) -> Vec<ArchiveEntry> {
        std::fs::write(dir.join("bin"), b"\x7fELF pretend binary").unwrap();
        std::fs::write(dir.join("README.md"), b"# readme\n").unwrap();
        std::fs::write(dir.join("LICENSE"), b"license text\n").unwrap();
        // Given out of order, so the test also shows that the archive sorts.
        vec![
            ArchiveEntry {
                name: "README.md".into(),
                source: dir.join("README.md"),
                executable: false,
            },
            ArchiveEntry {
                name: "app-web".into(),
                source: dir.join("bin"),
                executable: true,
            },
            ArchiveEntry {
                name: "LICENSE".into(),
                source: dir.join("LICENSE"),
                executable: false,
            },
        ]
    }

    #[test]
    fn same_inputs_give_the_same_bytes_whatever_the_file_metadata() {
        let dir = tempfile::tempdir().unwrap();
        let entries = inputs(dir.path());
        let first = dir.path().join("first.tar.gz");
        write_tar_gz(&first, "pkg", &entries, SOURCE_DATE).unwrap();

        // Change what a careless archiver would copy: modes and modification times.
        std::fs::set_permissions(
            dir.path().join("README.md"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        std::fs::set_permissions(
            dir.path().join("bin"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        let later =
            std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("LICENSE"))
            .unwrap()
            .set_modified(later)
            .unwrap();

        let second = dir.path().join("second.tar.gz");
        write_tar_gz(&second, "pkg", &entries, SOURCE_DATE).unwrap();
        assert_eq!(
            std::fs::read(&first).unwrap(),
            std::fs::read(&second).unwrap()
        );
    }

    #[test]
    fn entries_are_sorted_owned_by_root_and_dated_at_the_source_date() {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("a.tar.gz");
        write_tar_gz(&archive, "pkg", &inputs(dir.path()), SOURCE_DATE).unwrap();

        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&archive).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        let mut tar = tar::Archive::new(bytes.as_slice());
        let mut seen = Vec::new();
        for entry in tar.entries().unwrap() {
            let entry = entry.unwrap();
            let header = entry.header();
            assert_eq!(header.mtime().unwrap(), SOURCE_DATE);
            assert_eq!(header.uid().unwrap(), 0);
            assert_eq!(header.gid().unwrap(), 0);
            seen.push((
                entry.path().unwrap().display().to_string(),
                header.mode().unwrap(),
            ));
        }
        assert_eq!(
            seen,
            vec![
                ("pkg/".to_owned(), 0o755),
                ("pkg/LICENSE".to_owned(), 0o644),
                ("pkg/README.md".to_owned(), 0o644),
                ("pkg/app-web".to_owned(), 0o755),
            ]
        );
    }

    #[test]
    fn a_missing_input_names_the_file_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let entries = vec![ArchiveEntry {
            name: "gone".into(),
            source: dir.path().join("gone"),
            executable: false,
        }];
        let archive = dir.path().join("a.tar.gz");
        let err = write_tar_gz(&archive, "pkg", &entries, SOURCE_DATE).unwrap_err();
        assert!(format!("{err:#}").contains("gone"), "{err:#}");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "no partial archive is left"
        );
    }
}
