//! Linux package signatures with GnuPG: the rpm's own header signature (rpmsign), and detached
//! ASCII-armoured signatures (`<file>.asc`) over each deb and rpm and over SHA256SUMS, which
//! users check with the project's public key. The secret key comes from APP_GPG_PRIVATE_KEY
//! (the armoured key, or a path to it) and its passphrase from APP_GPG_PASSPHRASE; it is
//! imported into a throwaway GnuPG home, never the user's, which goes when the signer does.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

use crate::path::with_suffix;

pub const KEY_VARIABLE: &str = "APP_GPG_PRIVATE_KEY";
pub const PASSPHRASE_VARIABLE: &str = "APP_GPG_PASSPHRASE";

/// The suffix of a detached signature.
pub const SIGNATURE_SUFFIX: &str = ".asc";

/// A GnuPG home holding one key, in a temporary folder.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("xtask-gnupg-")
            .tempdir()
            .context("create a temporary GnuPG home")?;
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .context("make the GnuPG home private")?;
        Ok(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn gpg(&self) -> Command {
        let mut command = Command::new("gpg");
        command
            .arg("--homedir")
            .arg(self.path())
            .args(["--batch", "--no-tty", "--quiet"]);
        command
    }

    /// Imports `key` (armoured) and returns the fingerprint of its primary key.
    fn import(&self, key: &str, secret: bool) -> anyhow::Result<String> {
        run_with_input(self.gpg().arg("--import"), key.as_bytes())
            .context("gpg could not import the key")?;
        let listing = if secret {
            "--list-secret-keys"
        } else {
            "--list-keys"
        };
        let output = run(self.gpg().args(["--with-colons", listing]))?;
        output
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|field| !field.is_empty()))
            .map(str::to_owned)
            .context("the key holds no key gpg can list")
    }
}

/// Reads a key given as its armoured text or as a path to a file holding it.
fn key_text(value: &str, variable: &str) -> anyhow::Result<String> {
    let text = if value.trim_start().starts_with("-----BEGIN PGP") {
        value.to_owned()
    } else {
        std::fs::read_to_string(value.trim()).with_context(|| {
            format!("{variable} is neither an armoured PGP key nor a readable file")
        })?
    };
    anyhow::ensure!(
        text.contains("-----BEGIN PGP"),
        "{variable} does not hold an armoured PGP key (export it with `gpg --armor --export-secret-keys`)"
    );
    Ok(text)
}

/// Signs with the secret key from the environment.
pub struct Signer {
    home: Home,
    fingerprint: String,
    passphrase_file: PathBuf,
}

impl Signer {
    /// The signer for APP_GPG_PRIVATE_KEY, or `None` when it is not set.
    pub fn from_env() -> anyhow::Result<Option<Self>> {
        match std::env::var(KEY_VARIABLE) {
            Ok(key) if !key.trim().is_empty() => {
                let passphrase = std::env::var(PASSPHRASE_VARIABLE).unwrap_or_default();
                Self::new(&key_text(&key, KEY_VARIABLE)?, &passphrase).map(Some)
            }
            _ => Ok(None),
        }
    }

    fn new(key: &str, passphrase: &str) -> anyhow::Result<Self> {
        let home = Home::new()?;
        let fingerprint = home.import(key, true).with_context(|| {
            format!("import the signing key from {KEY_VARIABLE} (is it a secret key?)")
        })?;
        let passphrase_file = home.path().join("passphrase");
        crate::atomic_file::write(&passphrase_file, passphrase.as_bytes(), 0o600)?;
        let signer = Self {
            home,
            fingerprint,
            passphrase_file,
        };
        // Fail here, naming the variable, rather than at the first file.
        let probe = signer.home.path().join("probe");
        std::fs::write(&probe, b"probe").context("write a probe file")?;
        signer
            .detach_sign(&probe)
            .with_context(|| format!("sign with the key (is {PASSPHRASE_VARIABLE} right?)"))?;
        Ok(signer)
    }

    fn signing_gpg(&self) -> Command {
        let mut command = self.home.gpg();
        command
            .args(["--pinentry-mode", "loopback", "--passphrase-file"])
            .arg(&self.passphrase_file)
            .args(["--local-user", &self.fingerprint]);
        command
    }

    /// Writes `<file>.asc`, an armoured detached signature, through a temporary name.
    pub fn detach_sign(&self, file: &Path) -> anyhow::Result<PathBuf> {
        let signature = signature_path(file);
        let temporary = with_suffix(&signature, ".partial");
        let _ = std::fs::remove_file(&temporary);
        run(self
            .signing_gpg()
            .args(["--armor", "--detach-sign", "--output"])
            .arg(&temporary)
            .arg(file))
        .with_context(|| format!("sign {}", file.display()))?;
        std::fs::rename(&temporary, &signature)
            .with_context(|| format!("rename {} into place", temporary.display()))?;
        Ok(signature)
    }

    /// Adds the rpm header signature to `rpm` in place (rpmsign writes a new file and renames
    /// it over the old one).
    pub fn sign_rpm(&self, rpm: &Path) -> anyhow::Result<()> {
        let extra = format!(
            "--batch --no-tty --pinentry-mode loopback --passphrase-file {}",
            self.passphrase_file.display()
        );
        // rpm's own idea of where gpg lives differs between distributions (Debian's says gpg2).
        let gpg = which::which("gpg").context("find gpg (package gnupg)")?;
        run(Command::new("rpmsign")
            .arg("--addsign")
            .args(["--define", &format!("__gpg {}", gpg.display())])
            .args(["--define", &format!("_gpg_name {}", self.fingerprint)])
            .args([
                "--define",
                &format!("_gpg_path {}", self.home.path().display()),
            ])
            .args(["--define", &format!("_gpg_sign_cmd_extra_args {extra}")])
            .arg(rpm))
        .with_context(|| {
            format!(
                "rpmsign could not sign {} (package rpm; `cargo xtask setup` installs it)",
                rpm.display()
            )
        })?;
        Ok(())
    }
}

/// Checks signatures with a public key.
pub struct Verifier {
    home: Home,
    public_key: String,
}

impl Verifier {
    /// A verifier for `key` (armoured text or a path).
    pub fn new(key: &str) -> anyhow::Result<Self> {
        let public_key = key_text(key, "the GnuPG public key")?;
        let home = Home::new()?;
        home.import(&public_key, false)
            .context("import the GnuPG public key")?;
        Ok(Self { home, public_key })
    }

    /// Checks `<file>.asc` over `file`.
    pub fn verify_detached(&self, file: &Path) -> anyhow::Result<()> {
        let signature = signature_path(file);
        anyhow::ensure!(
            signature.is_file(),
            "{} has no detached signature ({} is missing): sign with {KEY_VARIABLE} set",
            file.display(),
            signature.display()
        );
        run(self.home.gpg().arg("--verify").arg(&signature).arg(file))
            .with_context(|| format!("the signature {} does not verify", signature.display()))?;
        Ok(())
    }

    /// Checks the rpm's own header signature with rpmkeys, against a throwaway rpm database
    /// that holds only the public key.
    pub fn verify_rpm(&self, rpm: &Path) -> anyhow::Result<()> {
        let db = self.home.path().join("rpmdb");
        if !db.exists() {
            let key = self.home.path().join("public.asc");
            std::fs::write(&key, &self.public_key).context("write the public key for rpm")?;
            run(Command::new("rpmkeys")
                .arg("--dbpath")
                .arg(&db)
                .arg("--import")
                .arg(&key))
            .context("import the public key into a scratch rpm database")?;
        }
        let output = run(Command::new("rpmkeys")
            .arg("--dbpath")
            .arg(&db)
            .arg("--checksig")
            .arg("--verbose")
            .arg(rpm))
        .with_context(|| format!("{} carries no valid rpm signature", rpm.display()))?;
        anyhow::ensure!(
            output.contains("Signature, key ID") && output.contains(": OK"),
            "{} is not signed with the key: {output}",
            rpm.display()
        );
        Ok(())
    }
}

pub fn signature_path(file: &Path) -> PathBuf {
    with_suffix(file, SIGNATURE_SUFFIX)
}

/// Runs `command`; on failure, an error with what it printed.
fn run(command: &mut Command) -> anyhow::Result<String> {
    run_with_input(command, b"")
}

fn run_with_input(command: &mut Command, input: &[u8]) -> anyhow::Result<String> {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {program} (`cargo xtask setup` installs it)"))?;
    child
        .stdin
        .take()
        .context("the child's stdin")?
        .write_all(input)
        .with_context(|| format!("write to {program}"))?;
    let output = child
        .wait_with_output()
        .with_context(|| format!("wait for {program}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(
        output.status.success(),
        "{program} failed ({}): {}{}",
        output.status,
        stdout,
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(stdout)
}
