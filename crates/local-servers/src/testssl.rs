//! testssl.sh 3.2 (Debian 13's package, in the chroot of [`crate::debian_chroot`]) against a
//! TLS server on 127.0.0.1, with its findings as JSON. Debian 12's testssl.sh 3.0 does not
//! grade servers.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

/// Runs testssl.sh against `host` (sent as SNI and Host) at 127.0.0.1:`port`, trusting
/// `ca_file` in addition to the usual roots, and returns its flat JSON output.
pub fn run(cache: &Path, host: &str, port: u16, ca_file: &Path) -> anyhow::Result<String> {
    let root = crate::debian_chroot::trixie_tools(cache)?;
    let (work, inside) = crate::debian_chroot::work_dir(&root, "local-testssl-")?;
    std::fs::copy(ca_file, work.path().join("ca.pem"))
        .with_context(|| format!("copy {}", ca_file.display()))?;
    // In a mount and pid namespace of its own with a fresh /proc, which testssl.sh reads:
    // without it, it misses the TLS 1.3 signature algorithms. Nothing stays mounted after.
    let output = Command::new("unshare")
        .args(["--mount", "--pid", "--fork"])
        .arg(format!("--mount-proc={}", root.join("proc").display()))
        .arg("chroot")
        .arg(&root)
        .args(["testssl", "--quiet", "--color", "0", "--warnings", "off"])
        .args(["--ip", "127.0.0.1"])
        .arg("--add-ca")
        .arg(inside.join("ca.pem"))
        .arg("--jsonfile")
        .arg(inside.join("result.json"))
        .arg(format!("{host}:{port}"))
        .output()
        .context("run testssl.sh in its chroot (needs root)")?;
    let json = std::fs::read_to_string(work.path().join("result.json")).with_context(|| {
        format!(
            "testssl.sh wrote no JSON (exit {}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    Ok(json)
}
