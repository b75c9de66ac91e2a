//! The user's consent to crash reports and usage analytics, and where both are sent.
//!
//! Both are off until the user says yes: the app asks once (`asked` stays false until the user
//! answers), and the answer can be changed at any time in the Privacy panel. Consent lives in
//! `privacy.json` in the app's settings folder, written through a temporary file; the crash
//! monitor reads the same file before it uploads anything.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// What the user agreed to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Consent {
    /// The user has answered the question (whatever the answer).
    pub asked: bool,
    pub crash_reports: bool,
    pub analytics: bool,
}

impl Consent {
    /// The consent in `file`; no file, or one that cannot be read, means no consent.
    pub fn load(file: &Path) -> Self {
        match std::fs::read_to_string(file) {
            Ok(text) => serde_json::from_str(&text).unwrap_or_else(|err| {
                eprintln!(
                    "app-desktop: {} is not valid ({err}); sending nothing until you answer again",
                    file.display()
                );
                Self::default()
            }),
            Err(_) => Self::default(),
        }
    }

    pub fn save(&self, file: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|err| err.to_string())?;
        crate::settings::replace_file(file, text.as_bytes())
    }
}

/// The server crash reports and events go to: `plugins.telemetry.server` in tauri.conf.json
/// (`cargo xtask bundle --config` sets it per build), None when the build names none.
pub fn server<R: tauri::Runtime>(app: &tauri::AppHandle<R>) -> Option<String> {
    // Test builds can be pointed elsewhere per run, so one build serves every test.
    #[cfg(feature = "test-hooks")]
    if let Ok(server) = std::env::var(crate::test_hooks::SERVER_VARIABLE) {
        return Some(server);
    }
    app.config()
        .plugins
        .0
        .get("telemetry")
        .and_then(|telemetry| telemetry.get("server"))
        .and_then(|server| server.as_str())
        .map(|server| server.trim_end_matches('/').to_owned())
        .filter(|server| server.starts_with("http://") || server.starts_with("https://"))
}

/// An HTTP client for uploads: a hanging server costs a minute at most. TLS through rustls
/// with ring, installed as the process's provider on first use.
pub fn http_client() -> Result<reqwest::blocking::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .user_agent(concat!("app-desktop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|err| format!("set up HTTP: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_file_or_a_bad_one_means_no_consent() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("privacy.json");
        assert_eq!(Consent::load(&file), Consent::default());
        std::fs::write(&file, "{not json").unwrap();
        assert_eq!(Consent::load(&file), Consent::default());
        let yes = Consent {
            asked: true,
            crash_reports: true,
            analytics: false,
        };
        yes.save(&file).unwrap();
        assert_eq!(Consent::load(&file), yes);
    }
}
