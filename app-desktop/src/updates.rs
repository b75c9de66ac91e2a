//! The in-app updater: Tauri's updater plugin pointed at the update server for the chosen
//! channel, with this install's random id so staged rollouts can bucket it. It checks at start
//! (when the user left automatic checks on) and on demand, shows the release notes, downloads
//! with progress, verifies the signature against the public key built into the app, installs
//! and restarts.
//!
//! The app installs a newer version, or an older one only when the server marks the offer as a
//! rollback (`"rollback": true`, which it sends for a halted release), and never a version below
//! [`MINIMUM_VERSION`], built into the app: whoever controls the update server or its admin
//! token cannot push an old, validly signed, vulnerable build as a plain update, nor anything
//! older than the minimum even as a rollback. The signature names the version it was made for,
//! and the app refuses an update whose signed version differs from the announced one, so an old
//! bundle cannot be passed off as a new release.

use std::path::PathBuf;
use std::sync::Mutex;

use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime, State};
use tauri_plugin_updater::{Update, UpdaterExt};

use crate::settings::{self, Settings};

/// Where the settings and the install id live, what the user chose, and the update found by the
/// last check.
pub struct Updates {
    settings_file: PathBuf,
    install_id_file: PathBuf,
    settings: Mutex<Settings>,
    found: Mutex<Option<Update>>,
}

/// What the Updates panel shows.
#[derive(Serialize)]
pub struct Status {
    settings: Settings,
    install_id: String,
    /// Why updates are off in this build, when they are.
    disabled: Option<String>,
    available: Option<Offer>,
}

/// An update the server offered.
#[derive(Serialize, Clone)]
pub struct Offer {
    version: String,
    current_version: String,
    notes: Option<String>,
    date: Option<String>,
}

impl From<&Update> for Offer {
    fn from(update: &Update) -> Self {
        Self {
            version: update.version.clone(),
            current_version: update.current_version.clone(),
            notes: update.body.clone(),
            date: update.date.map(|date| date.to_string()),
        }
    }
}

/// Download progress, sent to the window as `update-progress` events.
#[derive(Serialize, Clone)]
struct Progress {
    downloaded: u64,
    total: Option<u64>,
}

/// The oldest version this build ever installs, even as a rollback: a release that fixes a
/// security hole raises it (APP_DESKTOP_MINIMUM_VERSION when building, which `cargo xtask
/// dist` checks and the release workflow takes from a repository variable), so no later offer
/// can take an install back below the fix. Unset or empty: no floor below the rules of
/// [`judge`] (0.0.0).
pub const MINIMUM_VERSION: &str = match option_env!("APP_DESKTOP_MINIMUM_VERSION") {
    Some(version) if !version.is_empty() => version,
    _ => "0.0.0",
};

/// What the app does with an offered version.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Install,
    Refuse(String),
}

/// Whether to install `offered` while running `current`: a newer version, or an older one the
/// server marked as a rollback, and never one below `minimum`.
pub fn judge(
    current: &semver::Version,
    offered: &semver::Version,
    marked_rollback: bool,
    minimum: &semver::Version,
) -> Verdict {
    if offered < minimum {
        return Verdict::Refuse(format!(
            "{offered} is below {minimum}, the oldest version this build installs"
        ));
    }
    match offered.cmp(current) {
        std::cmp::Ordering::Greater => Verdict::Install,
        std::cmp::Ordering::Equal => Verdict::Refuse(format!("{offered} is already running")),
        std::cmp::Ordering::Less if marked_rollback => Verdict::Install,
        std::cmp::Ordering::Less => Verdict::Refuse(format!(
            "{offered} is older than the running {current} and the server did not mark it as a rollback"
        )),
    }
}

/// The minimum as a version. `cargo xtask dist` refuses to build with one that does not
/// parse; should one get through anyway, the running version is the floor, so nothing older
/// is ever installed.
fn minimum_version() -> semver::Version {
    semver::Version::parse(MINIMUM_VERSION)
        .or_else(|_| semver::Version::parse(env!("CARGO_PKG_VERSION")))
        .expect("the package version is a semantic version")
}

/// The updater plugin: it reports any other version at or above the minimum, and [`check`]
/// then judges the offer with the server's rollback mark (see the module notes).
pub fn plugin<R: Runtime>() -> tauri::plugin::TauriPlugin<R, tauri_plugin_updater::Config> {
    let minimum = minimum_version();
    tauri_plugin_updater::Builder::new()
        .default_version_comparator(move |current, release| {
            release.version != current && release.version >= minimum
        })
        .build()
}

/// Loads the settings and, when automatic checks are on, checks in the background; with
/// automatic installs on, an update found is installed and the app restarts into it. Returns
/// the channel the app follows.
pub fn start<R: Runtime>(app: &AppHandle<R>) -> Result<settings::Channel, String> {
    let (config_dir, data_dir) = crate::settings::app_dirs(app)?;
    let settings_file = config_dir.join("settings.json");
    let settings = Settings::load(&settings_file).unwrap_or_else(|err| {
        eprintln!("app-desktop: {err}; using the default settings");
        Settings::default()
    });
    let automatic = (settings.auto_check, settings.auto_install);
    let channel = settings.channel;
    app.manage(Updates {
        settings_file,
        install_id_file: data_dir.join("install-id"),
        settings: Mutex::new(settings),
        found: Mutex::new(None),
    });
    if automatic.0 && disabled_reason(app).is_none() {
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            let outcome = match check(&app).await {
                Ok(Some(_)) if automatic.1 => install(&app).await,
                Ok(_) => Ok(()),
                Err(err) => Err(err),
            };
            if let Err(err) = outcome {
                eprintln!("app-desktop: {err}");
            }
        });
    }
    Ok(channel)
}

/// Why this build cannot update, if it cannot: no public key or no endpoint configured.
fn disabled_reason<R: Runtime>(app: &AppHandle<R>) -> Option<String> {
    let config = updater_config(app);
    let pubkey = config.get("pubkey").and_then(|key| key.as_str());
    if pubkey.is_none_or(|key| key.trim().is_empty()) {
        return Some(
            "this build has no updater public key (set TAURI_SIGNING_PUBLIC_KEY when building)"
                .to_owned(),
        );
    }
    if endpoint_templates(app).is_empty() {
        return Some("this build names no update server".to_owned());
    }
    None
}

fn updater_config<R: Runtime>(app: &AppHandle<R>) -> serde_json::Value {
    app.config()
        .plugins
        .0
        .get("updater")
        .cloned()
        .unwrap_or_default()
}

fn endpoint_templates<R: Runtime>(app: &AppHandle<R>) -> Vec<String> {
    updater_config(app)
        .get("endpoints")
        .and_then(|endpoints| endpoints.as_array())
        .map(|endpoints| {
            endpoints
                .iter()
                .filter_map(|endpoint| endpoint.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The configured endpoints with this install's channel and id filled in; the plugin fills in
/// the target, architecture, version and bundle type. Like the plugin, it replaces both the
/// plain placeholder (in a query) and its percent-encoded form (in a path).
fn endpoints(
    templates: &[String],
    channel: &str,
    install_id: &str,
) -> Result<Vec<url::Url>, String> {
    templates
        .iter()
        .map(|template| {
            let mut url = template.clone();
            for (name, value) in [("channel", channel), ("install_id", install_id)] {
                url = url
                    .replace(&format!("{{{{{name}}}}}"), value)
                    .replace(&format!("%7B%7B{name}%7D%7D"), value);
            }
            url.parse()
                .map_err(|err| format!("the update endpoint {url} is not a URL: {err}"))
        })
        .collect()
}

/// Asks the update server for an update on the chosen channel and remembers what it offers.
async fn check<R: Runtime>(app: &AppHandle<R>) -> Result<Option<Offer>, String> {
    let state = app.state::<Updates>();
    let channel = state.settings.lock().expect("settings lock").channel;
    let install_id = settings::install_id(&state.install_id_file)?;
    let urls = endpoints(&endpoint_templates(app), channel.as_str(), &install_id)?;
    let updater = app
        .updater_builder()
        .endpoints(urls)
        .and_then(|builder| builder.build())
        .map_err(|err| format!("set up the updater: {err}"))?;
    let mut update = updater
        .check()
        .await
        .map_err(|err| format!("update check on {} failed: {err}", channel.as_str()))?;
    if let Some(offered) = &update {
        let verdict = match (
            semver::Version::parse(&offered.current_version),
            semver::Version::parse(&offered.version),
        ) {
            (Ok(current), Ok(version)) => judge(
                &current,
                &version,
                offered.raw_json.get("rollback") == Some(&serde_json::Value::Bool(true)),
                &minimum_version(),
            ),
            _ => Verdict::Refuse(format!("{} is not a semantic version", offered.version)),
        };
        if let Verdict::Refuse(reason) = verdict {
            eprintln!(
                "app-desktop: refused the offer of {} on {}: {reason}",
                offered.version,
                channel.as_str()
            );
            update = None;
        }
    }
    let offer = update.as_ref().map(Offer::from);
    match &offer {
        Some(offer) => eprintln!(
            "app-desktop: update {} offered on {} (running {})",
            offer.version,
            channel.as_str(),
            offer.current_version
        ),
        None => eprintln!("app-desktop: no update on {}", channel.as_str()),
    }
    *state.found.lock().expect("update lock") = update;
    if let Some(offer) = &offer {
        let _ = app.emit("update-available", offer.clone());
    }
    Ok(offer)
}

/// Downloads, verifies and installs the update the last check found, then restarts into it.
/// A bundle whose signature does not verify is refused and the running version stays.
async fn install<R: Runtime>(app: &AppHandle<R>) -> Result<(), String> {
    let update = app
        .state::<Updates>()
        .found
        .lock()
        .expect("update lock")
        .take()
        .ok_or("no update to install: check for one first")?;
    let mut downloaded = 0u64;
    eprintln!("app-desktop: downloading {}", update.version);
    let outcome = update
        .download_and_install(
            |chunk, total| {
                downloaded += chunk as u64;
                let _ = app.emit("update-progress", Progress { downloaded, total });
            },
            || eprintln!("app-desktop: downloaded; verifying and installing"),
        )
        .await;
    if let Err(err) = outcome {
        return Err(format!("update to {} refused: {err}", update.version));
    }
    eprintln!("app-desktop: installed {}; restarting", update.version);
    crate::telemetry::track(
        app,
        "update_installed",
        serde_json::json!({ "version": update.version }),
    );
    crate::telemetry::finish(app, std::time::Duration::from_secs(3));
    app.restart()
}

#[tauri::command]
pub fn update_status(app: AppHandle, state: State<'_, Updates>) -> Result<Status, String> {
    Ok(Status {
        settings: state.settings.lock().expect("settings lock").clone(),
        install_id: settings::install_id(&state.install_id_file)?,
        disabled: disabled_reason(&app),
        available: state
            .found
            .lock()
            .expect("update lock")
            .as_ref()
            .map(Offer::from),
    })
}

#[tauri::command]
pub fn save_settings(settings: Settings, state: State<'_, Updates>) -> Result<(), String> {
    settings.save(&state.settings_file)?;
    *state.settings.lock().expect("settings lock") = settings;
    Ok(())
}

#[tauri::command]
pub fn reset_install_id(state: State<'_, Updates>) -> Result<String, String> {
    settings::reset_install_id(&state.install_id_file)
}

#[tauri::command]
pub async fn check_for_update(app: AppHandle) -> Result<Option<Offer>, String> {
    if let Some(reason) = disabled_reason(&app) {
        return Err(format!("updates are off: {reason}"));
    }
    check(&app).await
}

#[tauri::command]
pub async fn install_update(app: AppHandle) -> Result<(), String> {
    install(&app).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(text: &str) -> semver::Version {
        semver::Version::parse(text).unwrap()
    }

    #[test]
    fn only_newer_versions_install_and_older_ones_only_as_marked_rollbacks_above_the_minimum() {
        let minimum = v("1.0.0");
        let current = v("1.4.0");
        assert_eq!(
            judge(&current, &v("1.5.0"), false, &minimum),
            Verdict::Install
        );
        assert_eq!(
            judge(&current, &v("1.5.0-beta.1"), false, &minimum),
            Verdict::Install
        );
        let Verdict::Refuse(reason) = judge(&current, &v("1.3.0"), false, &minimum) else {
            panic!("a plain older release was accepted");
        };
        assert!(reason.contains("did not mark it as a rollback"), "{reason}");
        assert_eq!(
            judge(&current, &v("1.3.0"), true, &minimum),
            Verdict::Install
        );
        let Verdict::Refuse(reason) = judge(&current, &v("0.9.0"), true, &minimum) else {
            panic!("a rollback below the minimum was accepted");
        };
        assert!(reason.contains("below 1.0.0"), "{reason}");
        assert!(matches!(
            judge(&current, &v("1.4.0"), false, &minimum),
            Verdict::Refuse(_)
        ));
        // A pre-release of the running version is older than it.
        assert!(matches!(
            judge(&current, &v("1.4.0-rc.1"), false, &minimum),
            Verdict::Refuse(_)
        ));
        // The built-in minimum parses.
        assert!(minimum_version() <= v(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    fn endpoints_get_the_channel_and_install_id() {
        let templates = [
            "https://app.example.org/api/updates/{{channel}}/{{target}}/{{arch}}/{{current_version}}?bundle_type={{bundle_type}}&install_id={{install_id}}"
                .parse::<url::Url>()
                .unwrap()
                .to_string(),
        ];
        let urls = endpoints(&templates, "beta", "0123abcd0123abcd0123abcd0123abcd").unwrap();
        let url = urls[0].to_string();
        assert!(
            url.starts_with("https://app.example.org/api/updates/beta/"),
            "{url}"
        );
        assert!(
            url.ends_with("&install_id=0123abcd0123abcd0123abcd0123abcd"),
            "{url}"
        );
        // The plugin's own placeholders are left for it.
        assert!(url.contains("%7B%7Btarget%7D%7D"), "{url}");
    }
}
