//! Re-checks a dist folder before anything is published: the manifest's artifacts exist with
//! their sizes and digests, and SHA256SUMS lists exactly those files with the same digests.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;

use super::{checksums, manifest::Manifest};

/// Verifies `dir` and returns its manifest.
pub fn verify_dist(dir: &Path) -> anyhow::Result<Manifest> {
    let manifest = Manifest::read(&dir.join(super::manifest::FILE_NAME))?;
    anyhow::ensure!(
        !manifest.artifacts.is_empty(),
        "the manifest in {} lists no artifacts",
        dir.display()
    );

    let sums_path = dir.join(checksums::FILE_NAME);
    let sums_text = std::fs::read_to_string(&sums_path)
        .with_context(|| format!("read {}", sums_path.display()))?;
    let sums: BTreeMap<String, String> = checksums::parse(&sums_text)?.into_iter().collect();

    for artifact in &manifest.artifacts {
        let path = dir.join(&artifact.file);
        let metadata = std::fs::metadata(&path).with_context(|| {
            format!(
                "the manifest lists {} but it is not in {}",
                artifact.file,
                dir.display()
            )
        })?;
        anyhow::ensure!(
            metadata.len() == artifact.size,
            "{} is {} bytes, the manifest says {}",
            artifact.file,
            metadata.len(),
            artifact.size
        );
        let digest = checksums::sha256_file(&path)?;
        anyhow::ensure!(
            digest == artifact.sha256,
            "{} has sha256 {digest}, the manifest says {}",
            artifact.file,
            artifact.sha256
        );
        let listed = sums.get(&artifact.file).with_context(|| {
            format!(
                "{} is in the manifest but not in {}",
                artifact.file,
                checksums::FILE_NAME
            )
        })?;
        anyhow::ensure!(
            *listed == digest,
            "{} lists sha256 {listed} for {}, the file has {digest}",
            checksums::FILE_NAME,
            artifact.file
        );
    }
    for file in sums.keys() {
        anyhow::ensure!(
            manifest
                .artifacts
                .iter()
                .any(|artifact| &artifact.file == file),
            "{} lists {file}, which the manifest does not",
            checksums::FILE_NAME
        );
    }
    Ok(manifest)
}

#[cfg(test)]
mod tests {
    use super::super::manifest::{self, Artifact};
    use super::super::targets::ArtifactKind;
    use super::*;

    /// A dist folder with one artifact, its SHA256SUMS and its manifest.
    fn good_dist() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let file = "app-web-1.0.0-x86_64-unknown-linux-gnu.tar.gz";
        std::fs::write(dir.path().join(file), b"archive bytes").unwrap();
        let digest = checksums::sha256_file(&dir.path().join(file)).unwrap();
        std::fs::write(
            dir.path().join(checksums::FILE_NAME),
            checksums::render(&[(file.into(), digest.clone())]),
        )
        .unwrap();
        let mut manifest = Manifest::new("app", "1.0.0", &"a".repeat(40), 1);
        manifest.artifacts.push(Artifact {
            file: file.into(),
            kind: ArtifactKind::ServerArchive,
            target: "x86_64-unknown-linux-gnu".into(),
            size: 13,
            sha256: digest,
        });
        std::fs::write(
            dir.path().join(manifest::FILE_NAME),
            manifest.to_json().unwrap(),
        )
        .unwrap();
        dir
    }

    #[test]
    fn a_consistent_folder_passes() {
        let dir = good_dist();
        assert_eq!(verify_dist(dir.path()).unwrap().artifacts.len(), 1);
    }

    #[test]
    fn a_changed_artifact_fails() {
        let dir = good_dist();
        std::fs::write(
            dir.path()
                .join("app-web-1.0.0-x86_64-unknown-linux-gnu.tar.gz"),
            b"archive bytez",
        )
        .unwrap();
        let err = verify_dist(dir.path()).unwrap_err();
        assert!(err.to_string().contains("has sha256"), "{err:#}");
    }

    #[test]
    fn a_file_only_in_sha256sums_fails() {
        let dir = good_dist();
        let sums = dir.path().join(checksums::FILE_NAME);
        let mut text = std::fs::read_to_string(&sums).unwrap();
        text.push_str(&format!("{}  stray.deb\n", "0".repeat(64)));
        std::fs::write(&sums, text).unwrap();
        let err = verify_dist(dir.path()).unwrap_err();
        assert!(err.to_string().contains("stray.deb"), "{err:#}");
    }

    #[test]
    fn a_missing_artifact_fails() {
        let dir = good_dist();
        std::fs::remove_file(
            dir.path()
                .join("app-web-1.0.0-x86_64-unknown-linux-gnu.tar.gz"),
        )
        .unwrap();
        let err = verify_dist(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not in"), "{err:#}");
    }
}
