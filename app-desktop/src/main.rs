//! app-desktop: the application's desktop mode, a Tauri window showing the shared UI, kept up
//! to date by the updater (`updates.rs`), with crash reports and analytics sent only with the
//! user's consent (`telemetry.rs`). Run with `--crash-monitor ...` it is its own crash monitor.

// A release build on Windows must not open a console window beside the app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod analytics;
mod crashes;
mod privacy;
mod settings;
mod telemetry;
#[cfg(feature = "test-hooks")]
mod test_hooks;
mod updates;

fn main() -> std::process::ExitCode {
    if let Some(args) = crashes::MonitorArgs::from_env() {
        return crashes::run_monitor(args);
    }
    let app = tauri::Builder::default()
        .plugin(updates::plugin())
        .setup(|app| {
            let channel = updates::start(app.handle())?;
            if let Err(err) = telemetry::start(app.handle(), channel.as_str()) {
                eprintln!("app-desktop: crash reports and analytics are off: {err}");
            }
            #[cfg(feature = "test-hooks")]
            test_hooks::crash_if_asked();
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            updates::update_status,
            updates::save_settings,
            updates::reset_install_id,
            updates::check_for_update,
            updates::install_update,
            telemetry::privacy_status,
            telemetry::save_consent,
            telemetry::delete_crash_report,
            telemetry::track_feature,
        ]);
    let app = match app.build(context()) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: start the desktop app: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    app.run(|app, event| {
        if let tauri::RunEvent::Exit = event {
            telemetry::finish(app, std::time::Duration::from_secs(2));
        }
    });
    std::process::ExitCode::SUCCESS
}

/// The compiled-in Tauri context: tauri.conf.json, the capabilities and the UI from `ui/`.
fn context() -> tauri::Context<tauri::Wry> {
    tauri::generate_context!()
}

#[cfg(test)]
mod tests {
    use super::context;

    #[test]
    fn version_comes_from_the_workspace() {
        let context = context();
        assert_eq!(
            context.package_info().version.to_string(),
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(
            context.config().version,
            None,
            "tauri.conf.json must not name a version"
        );
    }

    #[test]
    fn the_shared_ui_is_embedded() {
        let context = context();
        let index = context
            .assets()
            .get(&"index.html".into())
            .expect("index.html from ui/ is embedded");
        let index = String::from_utf8_lossy(&index);
        assert!(
            index.contains("<script src=\"app.js\""),
            "the shared UI page is served"
        );
        assert!(context.assets().get(&"app.js".into()).is_some());
        assert!(context.assets().get(&"app.css".into()).is_some());
    }

    #[test]
    fn the_main_window_is_configured() {
        let context = context();
        let windows = &context.config().app.windows;
        assert_eq!(windows.len(), 1);
        assert_eq!(windows[0].label, "main");
        assert!(
            context.config().app.with_global_tauri,
            "app.js reads the version through window.__TAURI__"
        );
    }
}
