//! `cargo xtask dist` end to end: real release builds and real bundles in temporary folders,
//! checked against their manifest, SHA256SUMS and the workspace version.

use e2e::tools as support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use support::{dist_into, project_root, workspace_version, xtask};

fn sha256(path: &Path) -> String {
    let output = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("run sha256sum");
    assert!(output.status.success());
    String::from_utf8(output.stdout)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn dist_writes_artifacts_that_agree_with_manifest_and_checksums() {
    let version = workspace_version();
    let first = tempfile::tempdir().unwrap();
    let manifest = dist_into(first.path());

    // The manifest against its schema.
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(project_root().join("xtask/dist-manifest.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&manifest)
        .map(|err| err.to_string())
        .collect();
    assert!(
        errors.is_empty(),
        "the manifest breaks its schema: {errors:?}"
    );
    assert_eq!(manifest["version"], version.as_str());

    // The manifest against the files on disk.
    let artifacts = manifest["artifacts"].as_array().unwrap();
    let mut listed = BTreeSet::new();
    for artifact in artifacts {
        let file = artifact["file"].as_str().unwrap();
        let path = first.path().join(file);
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            artifact["size"].as_u64().unwrap(),
            "{file} size"
        );
        assert_eq!(
            sha256(&path),
            artifact["sha256"].as_str().unwrap(),
            "{file} sha256"
        );
        listed.insert(file.to_owned());
    }
    let on_disk: BTreeSet<String> = std::fs::read_dir(first.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name != "SHA256SUMS" && name != "dist-manifest.json")
        .collect();
    assert_eq!(
        on_disk, listed,
        "the folder holds exactly the artifacts the manifest lists"
    );
    let kinds: BTreeSet<&str> = artifacts
        .iter()
        .map(|a| a["kind"].as_str().unwrap())
        .collect();
    for kind in ["server-archive", "deb", "rpm"] {
        assert!(kinds.contains(kind), "no {kind} artifact in {kinds:?}");
    }

    // SHA256SUMS against the files, by the tool people will use.
    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(first.path())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "sha256sum -c: {}",
        String::from_utf8_lossy(&check.stdout)
    );
    let sums = std::fs::read_to_string(first.path().join("SHA256SUMS")).unwrap();
    assert_eq!(
        sums.lines().count(),
        artifacts.len(),
        "SHA256SUMS lists every artifact once"
    );

    // The deb's control data carries the workspace version.
    let deb = artifacts.iter().find(|a| a["kind"] == "deb").unwrap()["file"]
        .as_str()
        .unwrap();
    let field = Command::new("dpkg-deb")
        .args(["--field", deb, "Version", "Package", "Depends"])
        .current_dir(first.path())
        .output()
        .expect("run dpkg-deb (package dpkg; `cargo xtask setup` installs it)");
    assert!(
        field.status.success(),
        "dpkg-deb: {}",
        String::from_utf8_lossy(&field.stderr)
    );
    let control = String::from_utf8(field.stdout).unwrap();
    assert!(
        control.contains(&format!("Version: {version}\n")),
        "deb control:\n{control}"
    );
    assert!(
        control.contains("libwebkit2gtk-4.1-0"),
        "deb control:\n{control}"
    );

    // The server archive holds the binary, LICENSE, the example config and the operations
    // guides under one folder.
    let archive = artifacts
        .iter()
        .find(|a| a["kind"] == "server-archive")
        .unwrap()["file"]
        .as_str()
        .unwrap();
    let listing = Command::new("tar")
        .args(["-tvzf", archive])
        .current_dir(first.path())
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8(listing.stdout).unwrap();
    let top = archive.trim_end_matches(".tar.gz");
    for entry in [
        "app-web",
        "LICENSE",
        "app-web.example.env",
        "docs/",
        "docs/deploy.md",
        "docs/backups.md",
        "docs/nginx-and-tls.md",
    ] {
        assert!(
            listing.contains(&format!("{top}/{entry}\n")),
            "{entry} missing from:\n{listing}"
        );
    }
    assert!(
        listing.contains("-rwxr-xr-x root/root"),
        "the binary is 0755 root/root:\n{listing}"
    );

    // The staged files are gone: nothing but the artifacts and their two lists remain.
    let leftovers: Vec<String> = std::fs::read_dir(first.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "dist left {leftovers:?} behind");

    // `verify` agrees, and notices tampering.
    let verified = xtask(&["verify", first.path().to_str().unwrap()]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    std::fs::write(first.path().join(deb), b"not a deb").unwrap();
    let tampered = xtask(&["verify", first.path().to_str().unwrap()]);
    assert!(!tampered.status.success(), "verify accepted a tampered deb");
    assert!(String::from_utf8_lossy(&tampered.stderr).contains(deb));

    // A second run from the same commit gives a byte-identical server archive.
    let second = tempfile::tempdir().unwrap();
    let again = dist_into(second.path());
    assert_eq!(again["commit"], manifest["commit"]);
    let (first_archive, second_archive) = (first.path().join(archive), second.path().join(archive));
    if sha256(&first_archive) != sha256(&second_archive) {
        // Kept for a look with `tar -tvz --full-time` or diffoscope.
        let kept = (first.keep(), second.keep());
        panic!(
            "two dist runs gave different server archives; both kept: {} and {}",
            kept.0.join(archive).display(),
            kept.1.join(archive).display()
        );
    }
}

#[test]
fn server_archive_timestamps_are_the_source_date() {
    let out = tempfile::tempdir().unwrap();
    let manifest = dist_into(out.path());
    let source_date = manifest["source_date_epoch"].as_u64().unwrap();
    let commit_time = Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(project_root())
        .output()
        .unwrap();
    let commit_time: u64 = String::from_utf8(commit_time.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        source_date, commit_time,
        "without SOURCE_DATE_EPOCH the commit time is used"
    );

    let archive = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "server-archive")
        .unwrap()["file"]
        .as_str()
        .unwrap()
        .to_owned();
    let listing = Command::new("tar")
        .args([
            "--list",
            "--verbose",
            "--full-time",
            "--utc",
            "-zf",
            &archive,
        ])
        .current_dir(out.path())
        .output()
        .unwrap();
    let listing = String::from_utf8(listing.stdout).unwrap();
    let date = Command::new("date")
        .args([
            "--utc",
            "-d",
            &format!("@{source_date}"),
            "+%Y-%m-%d %H:%M:%S",
        ])
        .output()
        .unwrap();
    let date = String::from_utf8(date.stdout).unwrap().trim().to_owned();
    assert!(!listing.is_empty());
    for line in listing.lines() {
        assert!(line.contains(&date), "entry not dated {date}: {line}");
    }
}

#[test]
fn an_unsupported_target_is_refused_before_building() {
    let out = tempfile::tempdir().unwrap();
    let output = xtask(&[
        "dist",
        "--target",
        "sparc64-unknown-openbsd",
        "--out",
        out.path().to_str().unwrap(),
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"sparc64-unknown-openbsd\" is not supported"),
        "{stderr}"
    );
    assert!(
        stderr.contains("x86_64-unknown-linux-gnu"),
        "the error lists the supported targets: {stderr}"
    );
    assert_eq!(
        std::fs::read_dir(out.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}
