//! app-desktop in a real window on a private Xvfb display: the window opens, the shared UI
//! loads under the app's Content-Security-Policy, and its script reads the version through
//! Tauri's API and puts it in the window title.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An Xvfb server on the first free display number, listening on no TCP port.
struct Xvfb {
    _server: KillOnDrop,
    display: String,
}

impl Xvfb {
    fn start() -> Self {
        let number = (100..200)
            .find(|n| {
                !PathBuf::from(format!("/tmp/.X{n}-lock")).exists()
                    && !PathBuf::from(format!("/tmp/.X11-unix/X{n}")).exists()
            })
            .expect("a free X display number between 100 and 199");
        let display = format!(":{number}");
        let server = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start Xvfb (package xvfb; `cargo xtask setup` installs it)");
        let server = KillOnDrop(server);
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        wait_for(Duration::from_secs(10), "Xvfb's socket", || {
            socket.exists().then_some(())
        });
        Self {
            _server: server,
            display,
        }
    }
}

fn wait_for<T>(limit: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = probe() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting for {what} after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Ids of the windows whose title is exactly `title`.
fn windows_titled(display: &str, title: &str) -> Vec<String> {
    let output = Command::new("xdotool")
        .args(["search", "--name", &format!("^{title}$")])
        .env("DISPLAY", display)
        .output()
        .expect("run xdotool (package xdotool; `cargo xtask setup` installs it)");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// How many distinct colours a screenshot of `window` holds: one for an empty window, many
/// once text is drawn.
fn colours_in(display: &str, window: &str) -> usize {
    let shot = tempfile::Builder::new().suffix(".png").tempfile().unwrap();
    let import = Command::new("import")
        .args(["-window", window, shot.path().to_str().unwrap()])
        .env("DISPLAY", display)
        .output()
        .expect("run import (package imagemagick; `cargo xtask setup` installs it)");
    if !import.status.success() {
        return 0;
    }
    let identify = Command::new("identify")
        .args(["-format", "%k", shot.path().to_str().unwrap()])
        .output()
        .unwrap();
    String::from_utf8_lossy(&identify.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn the_window_shows_the_ui_and_the_version() {
    let xvfb = Xvfb::start();
    let app = Command::new(env!("CARGO_BIN_EXE_app-desktop"))
        .env("DISPLAY", &xvfb.display)
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
            windows_titled(&xvfb.display, &title).into_iter().next()
        },
    );
    let colours = wait_for(Duration::from_secs(30), "the UI to be drawn", || {
        let colours = colours_in(&xvfb.display, &window);
        (colours > 16).then_some(colours)
    });
    assert!(colours > 16, "the window looks empty ({colours} colours)");
    assert!(
        app.0.try_wait().unwrap().is_none(),
        "app-desktop is still running"
    );
}
