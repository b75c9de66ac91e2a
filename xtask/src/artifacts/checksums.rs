//! SHA-256 of artifacts, and the `SHA256SUMS` file in the format `sha256sum -c` reads.

use std::path::Path;

use anyhow::Context;
use sha2::{Digest, Sha256};

pub const FILE_NAME: &str = "SHA256SUMS";

/// The lowercase hex SHA-256 of the file at `path`, read in a stream.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("read {}", path.display()))?;
    Ok(hex::encode(hasher.finalize()))
}

/// One line per file, sorted by name: the digest, two spaces (text mode), the file name.
pub fn render(entries: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = entries.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    sorted
        .iter()
        .map(|(name, digest)| format!("{digest}  {name}\n"))
        .collect()
}

/// Reads a SHA256SUMS file back into (file name, digest) pairs.
pub fn parse(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let (digest, name) = line
                .split_once("  ")
                .or_else(|| line.split_once(" *"))
                .with_context(|| {
                    format!(
                        "{FILE_NAME} line {} is not `<sha256>  <file>`: {line:?}",
                        index + 1
                    )
                })?;
            anyhow::ensure!(
                digest.len() == 64 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
                "{FILE_NAME} line {} has {digest:?} where a SHA-256 should be",
                index + 1
            );
            Ok((name.to_owned(), digest.to_ascii_lowercase()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256_file(&path).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn sha256sum_accepts_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut entries = Vec::new();
        for (name, content) in [
            ("b.deb", "second"),
            ("a.tar.gz", "first"),
            ("c file.rpm", "third"),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, content).unwrap();
            entries.push((name.to_owned(), sha256_file(&path).unwrap()));
        }
        let text = render(&entries);
        assert!(
            text.lines().next().unwrap().ends_with("  a.tar.gz"),
            "sorted by name:\n{text}"
        );
        std::fs::write(dir.path().join(FILE_NAME), &text).unwrap();

        let check = std::process::Command::new("sha256sum")
            .args(["--check", "--strict", FILE_NAME])
            .current_dir(dir.path())
            .output()
            .expect("run sha256sum (coreutils; `cargo xtask setup` installs it)");
        assert!(
            check.status.success(),
            "sha256sum -c failed: {}",
            String::from_utf8_lossy(&check.stdout)
        );

        std::fs::write(dir.path().join("b.deb"), "tampered").unwrap();
        let tampered = std::process::Command::new("sha256sum")
            .args(["--check", FILE_NAME])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            !tampered.status.success(),
            "sha256sum -c must notice a changed file"
        );
    }

    #[test]
    fn parse_reads_what_render_writes() {
        let entries = vec![
            ("x.deb".to_owned(), "a".repeat(64)),
            ("y z.rpm".to_owned(), "b".repeat(64)),
        ];
        assert_eq!(parse(&render(&entries)).unwrap(), entries);
    }

    #[test]
    fn parse_names_the_bad_line() {
        let err = parse(&format!("{}  ok\nnot a checksum line\n", "c".repeat(64))).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
