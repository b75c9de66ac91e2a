//! Step reporting: one line per step with its duration, and the verbosity switch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(verbose: bool) {
    VERBOSE.store(verbose, Ordering::Relaxed);
}

pub fn is_verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// Makes `cmd` echo itself only under `--verbose`.
pub fn quiet(cmd: xshell::Cmd<'_>) -> xshell::Cmd<'_> {
    if is_verbose() { cmd } else { cmd.quiet() }
}

/// Runs one named step, then prints a line with its outcome and duration. Errors get the step
/// name as context, so a failure says which step broke.
pub fn run<T>(name: &str, body: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<T> {
    let started = Instant::now();
    let result = body();
    let elapsed = format_duration(started.elapsed());
    match result {
        Ok(value) => {
            eprintln!("xtask: {name}: ok in {elapsed}");
            Ok(value)
        }
        Err(err) => {
            eprintln!("xtask: {name}: FAILED after {elapsed}");
            Err(err.context(name.to_owned()))
        }
    }
}

/// Runs one external command as a named step.
pub fn run_command(name: &str, cmd: xshell::Cmd<'_>) -> anyhow::Result<()> {
    run(name, || Ok(quiet(cmd).run()?))
}

/// Runs `cmd` with its output captured: returned on success, shown in the error on failure, so
/// chatty tools stay quiet unless something goes wrong.
pub fn captured(cmd: xshell::Cmd<'_>) -> anyhow::Result<String> {
    let shown = cmd.to_string();
    let output = quiet(cmd).ignore_status().output()?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        anyhow::bail!(
            "`{shown}` failed ({}):\n{stdout}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// Like [`run`], with a spinner on a terminal for in-process work that prints nothing itself.
pub fn run_with_spinner<T>(
    name: &str,
    body: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let spinner = indicatif::ProgressBar::new_spinner().with_message(name.to_owned());
    spinner.enable_steady_tick(Duration::from_millis(120));
    run(name, || {
        let result = body();
        spinner.finish_and_clear();
        result
    })
}

pub fn format_duration(duration: Duration) -> String {
    let seconds = duration.as_secs_f64();
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        format!(
            "{}m{:02}s",
            duration.as_secs() / 60,
            duration.as_secs() % 60
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_millis(1234)), "1.2s");
        assert_eq!(format_duration(Duration::from_secs(754)), "12m34s");
    }

    #[test]
    fn a_failing_step_names_itself() {
        let err = run("build widget", || -> anyhow::Result<()> {
            anyhow::bail!("linker died")
        })
        .unwrap_err();
        assert_eq!(format!("{err:#}"), "build widget: linker died");
    }
}
