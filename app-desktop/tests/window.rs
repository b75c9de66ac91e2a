//! app-desktop in a real window on a private Xvfb display: the window opens, the shared UI
//! loads under the app's Content-Security-Policy, its script reads the version through Tauri's
//! API and puts it in the window title, and the desktop-only panels (Updates, Privacy) are
//! drawn: the window's lower part, empty when only the page's head is shown, holds text.

use std::process::{Command, Stdio};
use std::time::Duration;

use local_servers::{KillOnDrop, Xvfb};

fn wait_for<T>(limit: Duration, what: &str, probe: impl FnMut() -> Option<T>) -> T {
    local_servers::wait_for_value(limit, what, probe).unwrap_or_else(|err| panic!("{err:#}"))
}

/// How many distinct colours a screenshot of `window` holds: one for an empty window, many
/// once text is drawn.
fn colours_in(display: &str, window: &str) -> usize {
    colours_in_region(display, window, None)
}

/// The same for one region of the screenshot, in ImageMagick's crop geometry under south
/// gravity (e.g. `100%x25%+0+0`: the bottom quarter).
fn colours_in_region(display: &str, window: &str, bottom: Option<&str>) -> usize {
    let shot = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    let import = Command::new("import")
        .args(["-window", window, shot.path().to_str().unwrap()])
        .env("DISPLAY", display)
        .output()
        .expect("run import (package imagemagick; `cargo xtask setup` installs it)");
    if !import.status.success() {
        return 0;
    }
    let mut identify = Command::new("convert");
    identify.arg(shot.path());
    if let Some(region) = bottom {
        identify.args(["-gravity", "south", "-crop", region, "+repage"]);
    }
    let identify = identify.args(["-format", "%k", "info:"]).output().unwrap();
    String::from_utf8_lossy(&identify.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn the_window_shows_the_ui_and_the_version() {
    let xvfb = Xvfb::start().expect("start Xvfb");
    let app = Command::new(env!("CARGO_BIN_EXE_app-desktop"))
        .env("DISPLAY", xvfb.display())
        // Xvfb has no GPU; software rendering keeps WebKit from probing for one.
        .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start app-desktop");
    let mut app = KillOnDrop(app);

    // app.js sets this title only after Tauri's API has answered with the version.
    let title = format!("App {}", env!("CARGO_PKG_VERSION"));
    let window = wait_for(
        Duration::from_secs(60),
        &format!("a window titled {title:?}"),
        || {
            assert!(
                app.0.try_wait().unwrap().is_none(),
                "app-desktop exited before its window showed the version"
            );
            xvfb.windows_titled(&title).unwrap().into_iter().next()
        },
    );
    // Settled: three screenshots half a second apart agree. What is then on screen is judged
    // below, so a window that settles blank or half drawn fails naming what it shows.
    let mut seen: Vec<usize> = Vec::new();
    wait_for(Duration::from_secs(30), "the window to settle", || {
        seen.push(colours_in(xvfb.display(), &window));
        std::thread::sleep(Duration::from_millis(500));
        let last = &seen[seen.len().saturating_sub(3)..];
        (last.len() == 3 && last[0] > 0 && last.iter().all(|count| *count == last[0])).then_some(())
    });
    let colours = colours_in(xvfb.display(), &window);
    assert!(
        colours > 16,
        "the window shows no text, only {colours} colours"
    );
    // The page's head alone (title, mode, version) sits in the middle of the window; the
    // Updates and Privacy panels below it fill the window down to its bottom quarter.
    let bottom = colours_in_region(xvfb.display(), &window, Some("100%x25%+0+0"));
    assert!(
        bottom > 8,
        "the window's bottom quarter is empty ({bottom} colours): the desktop panels are not drawn"
    );
    assert!(
        app.0.try_wait().unwrap().is_none(),
        "app-desktop is still running"
    );
}
