//! Debian's Chromium, headless, visiting one page and printing the DOM once the page has
//! nothing left to do: what the browser tests read, and the console's Content-Security-Policy
//! reports. It resolves only the names the caller maps, uses no proxy and trusts only the
//! certificate whose key the caller names, so it sends no traffic anywhere else.

use std::path::Path;
use std::process::Command;

use crate::assert_success;

/// What Chromium printed: the DOM after the page settled, and its log.
pub struct Visit {
    pub dom: String,
    pub log: String,
}

impl Visit {
    /// The console's Content-Security-Policy reports in the log.
    pub fn csp_reports(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter(|line| line.contains("Content Security Policy"))
            .collect()
    }
}

/// The base64 SHA-256 of the certificate's public key, the form Chromium's
/// `--ignore-certificate-errors-spki-list` takes.
pub fn spki_hash(certificate: &Path) -> String {
    let output = Command::new("sh")
        .arg("-c")
        .arg(
            "openssl x509 -in \"$1\" -noout -pubkey | openssl pkey -pubin -outform der \
             | openssl dgst -sha256 -binary | openssl base64 -A",
        )
        .arg("sh")
        .arg(certificate)
        .output()
        .expect("run openssl");
    assert_success(&output, "openssl computing the certificate's SPKI hash");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Visits `url` with `chromium` (`Command::new("chromium")`, or one that runs it in a
/// network namespace), resolving `name` to `address` and nothing else, and trusting the
/// certificate whose key is `spki`.
pub fn visit(mut chromium: Command, url: &str, name: &str, address: &str, spki: &str) -> Visit {
    let profile = tempfile::Builder::new()
        .prefix("chromium-profile-")
        .tempdir()
        .unwrap();
    let output = chromium
        .args([
            "--headless",
            // Tests run as root, where Chromium's sandbox refuses to start.
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-extensions",
            "--disable-sync",
            "--no-proxy-server",
            "--enable-logging=stderr",
            "--v=0",
            // Virtual time runs until the page has nothing left to do (app.js's fetch included),
            // bounded at 20 s of page time.
            "--virtual-time-budget=20000",
            "--dump-dom",
        ])
        .arg(format!(
            "--host-resolver-rules=MAP {name} {address}, MAP * ~NOTFOUND"
        ))
        .arg(format!("--ignore-certificate-errors-spki-list={spki}"))
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .env_remove("DISPLAY")
        .output()
        .expect("run chromium (Debian's chromium package; `cargo xtask setup` installs it)");
    assert_success(&output, "chromium");
    Visit {
        dom: String::from_utf8(output.stdout).unwrap(),
        log: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
