//! A private X display for desktop tests: Xvfb on the first free display number, listening on
//! no TCP port, and xdotool to find windows by title.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;

pub struct Xvfb {
    server: Child,
    display: String,
}

impl Xvfb {
    pub fn start() -> anyhow::Result<Self> {
        let number = (100..200)
            .find(|n| {
                !PathBuf::from(format!("/tmp/.X{n}-lock")).exists()
                    && !PathBuf::from(format!("/tmp/.X11-unix/X{n}")).exists()
            })
            .context("no free X display number between 100 and 199")?;
        let display = format!(":{number}");
        let server = Command::new("Xvfb")
            .args([&display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("start Xvfb (package xvfb; `cargo xtask setup` installs it)")?;
        let mut xvfb = Self { server, display };
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
        super::wait_until_up(
            &mut xvfb.server,
            Duration::from_secs(10),
            "Xvfb's socket",
            || socket.exists(),
        )?;
        Ok(xvfb)
    }

    /// The `DISPLAY` value.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Ids of the windows whose title is exactly `title`.
    pub fn windows_titled(&self, title: &str) -> anyhow::Result<Vec<String>> {
        let output = self
            .xdotool(&["search", "--name", &format!("^{title}$")])
            .context("run xdotool (package xdotool; `cargo xtask setup` installs it)")?;
        Ok(output.lines().map(str::to_owned).collect())
    }

    /// The process that owns `window`.
    pub fn window_pid(&self, window: &str) -> anyhow::Result<u32> {
        let output = self.xdotool(&["getwindowpid", window])?;
        output
            .trim()
            .parse()
            .with_context(|| format!("xdotool named no process for window {window}: {output:?}"))
    }

    fn xdotool(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = Command::new("xdotool")
            .args(args)
            .env("DISPLAY", &self.display)
            .output()?;
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
