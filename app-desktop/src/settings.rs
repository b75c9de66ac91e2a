//! What the user chose (update channel, automatic checks and installs) and the random install
//! id the update server buckets staged rollouts by. Both are small files in the app's own
//! folders, replaced whole through a temporary file so a crash never leaves half of one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The release channel the app follows: beta also receives a newer stable release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    #[default]
    Stable,
    Beta,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Stable => "stable",
            Channel::Beta => "beta",
        }
    }
}

/// The settings the Updates panel shows and changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub channel: Channel,
    /// Check for an update each time the app starts.
    pub auto_check: bool,
    /// Install an update found at start without asking, then restart.
    pub auto_install: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            channel: Channel::Stable,
            auto_check: true,
            auto_install: false,
        }
    }
}

impl Settings {
    /// The settings in `file`, or the defaults when there is none yet. A file that cannot be
    /// read is an error naming it, so the caller can say so and go on with the defaults.
    pub fn load(file: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(file) {
            Ok(text) => serde_json::from_str(&text).map_err(|err| {
                format!(
                    "{} is not valid settings ({err}); fix or delete it",
                    file.display()
                )
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(err) => Err(format!("read {}: {err}", file.display())),
        }
    }

    pub fn save(&self, file: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).map_err(|err| err.to_string())?;
        replace_file(file, text.as_bytes())
    }
}

/// The install id in `file`, made on first use: 32 random hex digits that say nothing about the
/// user or the machine. A file holding anything else is replaced by a new id.
pub fn install_id(file: &Path) -> Result<String, String> {
    if let Ok(text) = std::fs::read_to_string(file) {
        let id = text.trim();
        if is_install_id(id) {
            return Ok(id.to_owned());
        }
    }
    reset_install_id(file)
}

/// Replaces the install id with a new random one: the server then buckets this install afresh.
pub fn reset_install_id(file: &Path) -> Result<String, String> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    replace_file(file, format!("{id}\n").as_bytes())?;
    Ok(id)
}

fn is_install_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The app's settings folder and its data folder, as Tauri names them for this platform.
pub fn app_dirs<R: tauri::Runtime>(
    app: &tauri::AppHandle<R>,
) -> Result<(PathBuf, PathBuf), String> {
    use tauri::Manager;
    let config = app
        .path()
        .app_config_dir()
        .map_err(|err| format!("find the settings folder: {err}"))?;
    let data = app
        .path()
        .app_data_dir()
        .map_err(|err| format!("find the data folder: {err}"))?;
    Ok((config, data))
}

/// Writes `bytes` to a temporary file beside `file`, then renames it over `file`.
pub(crate) fn replace_file(file: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    std::fs::create_dir_all(&dir).map_err(|err| format!("create {}: {err}", dir.display()))?;
    let mut temporary = tempfile::NamedTempFile::new_in(&dir)
        .map_err(|err| format!("create a temporary file in {}: {err}", dir.display()))?;
    temporary
        .write_all(bytes)
        .and_then(|()| temporary.as_file().sync_all())
        .map_err(|err| format!("write {}: {err}", temporary.path().display()))?;
    temporary
        .persist(file)
        .map_err(|err| format!("replace {}: {}", file.display(), err.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_and_default_when_missing() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("nested/settings.json");
        assert_eq!(Settings::load(&file).unwrap(), Settings::default());
        let chosen = Settings {
            channel: Channel::Beta,
            auto_check: false,
            auto_install: true,
        };
        chosen.save(&file).unwrap();
        assert_eq!(Settings::load(&file).unwrap(), chosen);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("\"channel\": \"beta\""), "{text}");
    }

    #[test]
    fn a_broken_settings_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("settings.json");
        std::fs::write(&file, r#"{"channel": "nightly"}"#).unwrap();
        let err = Settings::load(&file).unwrap_err();
        assert!(err.contains("settings.json"), "{err}");
        assert!(err.contains("nightly"), "{err}");
        // Settings missing from the file take their defaults.
        std::fs::write(&file, r#"{"channel": "beta"}"#).unwrap();
        let loaded = Settings::load(&file).unwrap();
        assert_eq!(loaded.channel, Channel::Beta);
        assert!(loaded.auto_check);
    }

    #[test]
    fn the_install_id_is_random_kept_and_resettable() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("install-id");
        let first = install_id(&file).unwrap();
        assert!(is_install_id(&first), "{first}");
        assert_eq!(install_id(&file).unwrap(), first, "the id is kept");
        let reset = reset_install_id(&file).unwrap();
        assert_ne!(reset, first);
        assert_eq!(install_id(&file).unwrap(), reset);
        std::fs::write(&file, "not an id").unwrap();
        let replaced = install_id(&file).unwrap();
        assert!(is_install_id(&replaced));
        let other = install_id(&dir.path().join("other")).unwrap();
        assert_ne!(other, replaced, "two installs get two ids");
    }
}
