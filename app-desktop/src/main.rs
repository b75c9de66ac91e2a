//! app-desktop: the application's desktop mode, a Tauri window showing the shared UI, kept up
//! to date by the updater (`updates.rs`).

// A release build on Windows must not open a console window beside the app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod settings;
mod updates;

fn main() -> std::process::ExitCode {
    let app = tauri::Builder::default()
        .plugin(updates::plugin())
        .setup(|app| {
            updates::start(app.handle())?;
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            updates::update_status,
            updates::save_settings,
            updates::reset_install_id,
            updates::check_for_update,
            updates::install_update,
        ]);
    match app.run(context()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: run the desktop app: {err}");
            std::process::ExitCode::FAILURE
        }
    }
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
