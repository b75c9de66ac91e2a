//! Crash reports and analytics in the running app: the crash monitor and handler started at
//! launch (reports are always kept locally, sent only with consent), the analytics client, and
//! the commands behind the Privacy panel.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tauri::{AppHandle, Manager, Runtime, State};

use crate::analytics::Analytics;
use crate::crashes::{self, MonitorArgs, Queued, Retries};
use crate::privacy::{self, Consent};

pub struct Telemetry {
    consent_file: PathBuf,
    consent: Mutex<Consent>,
    queue: PathBuf,
    server: Option<String>,
    analytics: Arc<Analytics>,
    _crash_guard: Option<crashes::Guard>,
}

/// Starts crash capture and analytics. A crash handler that cannot start is reported and the
/// app runs on without it.
pub fn start<R: Runtime>(app: &AppHandle<R>, channel: &str) -> Result<(), String> {
    let (config_dir, data_dir) = crate::settings::app_dirs(app)?;
    let consent_file = config_dir.join("privacy.json");
    let consent = Consent::load(&consent_file);
    let server = privacy::server(app);
    let queue = data_dir.join("crash-reports");
    let analytics = Analytics::new(
        data_dir.join("analytics-queue.json"),
        server.clone(),
        consent.analytics,
    );
    let version = app.package_info().version.to_string();
    let metadata = serde_json::json!({
        "product": "app-desktop",
        "version": version,
        "channel": channel,
        "os": std::env::consts::OS,
        "arch": std::env::consts::ARCH,
        "session_id": analytics.session_id(),
    });
    let crash_guard = match crashes::start(MonitorArgs {
        socket: data_dir.join(format!("crash-monitor-{}.sock", std::process::id())),
        queue: queue.clone(),
        consent_file: consent_file.clone(),
        server: server.clone().unwrap_or_default(),
        metadata: metadata.to_string(),
    }) {
        Ok(guard) => Some(guard),
        Err(err) => {
            eprintln!("app-desktop: crash reports are off for this run: {err}");
            None
        }
    };
    analytics.track("app_started", serde_json::Map::new());
    analytics.spawn_sender(version);
    if consent.crash_reports {
        send_crash_reports(&queue, server.clone());
    }
    app.manage(Telemetry {
        consent_file,
        consent: Mutex::new(consent),
        queue,
        server,
        analytics,
        _crash_guard: crash_guard,
    });
    Ok(())
}

/// Queues an event (if the user agreed to analytics).
pub fn track<R: Runtime>(app: &AppHandle<R>, name: &str, props: serde_json::Value) {
    if let Some(telemetry) = app.try_state::<Telemetry>() {
        let props = match props {
            serde_json::Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        telemetry.analytics.track(name, props);
    }
}

/// Sends the queued events before the app ends, waiting at most `timeout`.
pub fn finish<R: Runtime>(app: &AppHandle<R>, timeout: Duration) {
    if let Some(telemetry) = app.try_state::<Telemetry>() {
        telemetry.analytics.finish(timeout);
    }
}

#[derive(Serialize)]
pub struct PrivacyStatus {
    consent: Consent,
    server: Option<String>,
    queued_events: usize,
    crash_reports: Vec<Queued>,
}

#[tauri::command]
pub fn privacy_status(state: State<'_, Telemetry>) -> PrivacyStatus {
    PrivacyStatus {
        consent: *state.consent.lock().expect("consent lock"),
        server: state.server.clone(),
        queued_events: state.analytics.queued(),
        crash_reports: crashes::list(&state.queue)
            .into_iter()
            .map(|(queued, _)| queued)
            .collect(),
    }
}

/// Records the user's answer. Saying yes to crash reports sends the queued ones; saying no to
/// analytics deletes the queued events.
#[tauri::command]
pub fn save_consent(
    crash_reports: bool,
    analytics: bool,
    state: State<'_, Telemetry>,
) -> Result<(), String> {
    let consent = Consent {
        asked: true,
        crash_reports,
        analytics,
    };
    consent.save(&state.consent_file)?;
    *state.consent.lock().expect("consent lock") = consent;
    state.analytics.set_enabled(analytics);
    if crash_reports {
        send_crash_reports(&state.queue, state.server.clone());
    }
    Ok(())
}

/// Uploads the queued crash reports from a thread of their own, with the background retries;
/// nothing when the build names no server.
fn send_crash_reports(queue: &Path, server: Option<String>) {
    if let Some(server) = server {
        let queue = queue.to_owned();
        std::thread::spawn(move || crashes::upload_queue(&queue, &server, Retries::Background));
    }
}

#[tauri::command]
pub fn delete_crash_report(id: String, state: State<'_, Telemetry>) -> Result<(), String> {
    crashes::delete(&state.queue, &id)
}

/// The UI reports a feature being used (a name of lower-case letters and underscores).
#[tauri::command]
pub fn track_feature(feature: String, state: State<'_, Telemetry>) -> Result<(), String> {
    if feature.is_empty()
        || feature.len() > 64
        || !feature
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(format!("{feature:?} is not a feature name"));
    }
    let mut props = serde_json::Map::new();
    props.insert("feature".into(), feature.into());
    state.analytics.track("feature_used", props);
    Ok(())
}
