//! Crash reports, captured out of process: at start the app runs itself again as a monitor
//! (`app-desktop --crash-monitor ...`) and attaches crash-handler, which on a crash asks the
//! monitor, over minidumper's socket, to write a minidump of the dying app. A panic first sends
//! its message to the monitor, then aborts, which crash-handler catches like any other crash.
//!
//! The monitor puts `<id>.dmp` and `<id>.json` (version, channel, OS, architecture, the session
//! id, the panic message) into the queue folder, each written under a temporary name and renamed
//! when whole, then, if the user agreed to crash reports, uploads the queue to app-web
//! (`POST /api/crashes`) with retries and backoff. What it could not send goes on the next
//! start. The Privacy panel lists the queue and deletes reports from it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::privacy::Consent;

/// The monitor's command-line flag; the rest of its arguments follow in [`MonitorArgs`] order.
pub const MONITOR_FLAG: &str = "--crash-monitor";
/// The message kind that carries a panic message to the monitor.
const PANIC_MESSAGE: u32 = 1;
/// Longest panic message kept, in characters (app-web's limit).
const MAX_PANIC_CHARS: usize = 4096;

/// What a report says besides its minidump (the upload's `metadata` part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub report_id: String,
    pub product: String,
    pub version: String,
    pub channel: String,
    pub os: String,
    pub arch: String,
    pub session_id: String,
    pub panic_message: Option<String>,
    pub crashed_at: Option<String>,
}

/// How the app starts its monitor: everything the monitor needs comes on its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorArgs {
    pub socket: PathBuf,
    pub queue: PathBuf,
    pub consent_file: PathBuf,
    /// Empty when the build names no server.
    pub server: String,
    /// [`Metadata`] without the report id, panic message and time, as JSON.
    pub metadata: String,
}

impl MonitorArgs {
    fn to_args(&self) -> Vec<std::ffi::OsString> {
        vec![
            MONITOR_FLAG.into(),
            self.socket.clone().into(),
            self.queue.clone().into(),
            self.consent_file.clone().into(),
            self.server.clone().into(),
            self.metadata.clone().into(),
        ]
    }

    /// The monitor's arguments, if this process was started as the monitor.
    pub fn from_env() -> Option<Self> {
        let mut args = std::env::args_os().skip(1);
        if args.next()? != MONITOR_FLAG {
            return None;
        }
        let mut next = || args.next().unwrap_or_default();
        Some(Self {
            socket: next().into(),
            queue: next().into(),
            consent_file: next().into(),
            server: next().to_string_lossy().into_owned(),
            metadata: next().to_string_lossy().into_owned(),
        })
    }
}

/// The crash handler and the monitor's process, kept for the app's lifetime.
pub struct Guard {
    _handler: crash_handler::CrashHandler,
    _monitor: std::process::Child,
}

/// Starts the monitor and attaches the crash handler and the panic hook.
pub fn start(args: MonitorArgs) -> Result<Guard, String> {
    std::fs::create_dir_all(&args.queue).map_err(|err| {
        format!(
            "create the crash report folder {}: {err}",
            args.queue.display()
        )
    })?;
    let _ = std::fs::remove_file(&args.socket);
    let exe = std::env::current_exe().map_err(|err| format!("find the app's own binary: {err}"))?;
    let mut monitor = std::process::Command::new(exe)
        .args(args.to_args())
        .stdin(std::process::Stdio::null())
        .spawn()
        .map_err(|err| format!("start the crash monitor: {err}"))?;
    let socket = minidumper::SocketName::Path(&args.socket);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let client = loop {
        match minidumper::Client::with_name(socket) {
            Ok(client) => break client,
            Err(err) if std::time::Instant::now() > deadline => {
                let _ = monitor.kill();
                return Err(format!("connect to the crash monitor: {err}"));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    let client = std::sync::Arc::new(client);
    let for_panics = client.clone();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = panic_text(info);
        let _ = for_panics.send_message(PANIC_MESSAGE, message.as_bytes());
        let _ = for_panics.ping();
        default_hook(info);
        // A panic is a crash: abort, and crash-handler has the monitor write the minidump.
        std::process::abort();
    }));
    // SAFETY: the closure runs in the signal (or exception) handler. It only asks the monitor
    // for a dump over the already-open socket, which minidumper's client does without
    // allocating or taking locks.
    let handler = crash_handler::CrashHandler::attach(unsafe {
        crash_handler::make_crash_event(move |context: &crash_handler::CrashContext| {
            crash_handler::CrashEventResult::Handled(client.request_dump(context).is_ok())
        })
    })
    .map_err(|err| format!("attach the crash handler: {err}"))?;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    handler.set_ptracer(Some(monitor.id()));
    Ok(Guard {
        _handler: handler,
        _monitor: monitor,
    })
}

/// "message (at file:line)", cut to app-web's limit.
fn panic_text(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let message = payload
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    let text = match info.location() {
        Some(location) => format!("{message} (at {}:{})", location.file(), location.line()),
        None => message,
    };
    text.chars().take(MAX_PANIC_CHARS).collect()
}

/// The monitor process: serves the app until it disconnects, writing a report for each crash,
/// then uploads the queue if the user agreed to crash reports.
pub fn run_monitor(args: MonitorArgs) -> std::process::ExitCode {
    let mut server = match minidumper::Server::with_name(minidumper::SocketName::Path(&args.socket))
    {
        Ok(server) => server,
        Err(err) => {
            eprintln!("app-desktop: the crash monitor cannot listen: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let handler = MonitorHandler {
        queue: args.queue.clone(),
        metadata: args.metadata.clone(),
        panic_message: Mutex::new(None),
        current: Mutex::new(None),
    };
    let shutdown = std::sync::atomic::AtomicBool::new(false);
    if let Err(err) = server.run(Box::new(handler), &shutdown, None) {
        eprintln!("app-desktop: the crash monitor stopped: {err}");
    }
    let _ = std::fs::remove_file(&args.socket);
    if !args.server.is_empty() && Consent::load(&args.consent_file).crash_reports {
        upload_queue(&args.queue, &args.server, Retries::Monitor);
    }
    std::process::ExitCode::SUCCESS
}

struct MonitorHandler {
    queue: PathBuf,
    metadata: String,
    panic_message: Mutex<Option<String>>,
    /// The report being written: its id and the temporary path of its minidump.
    current: Mutex<Option<(String, PathBuf)>>,
}

impl minidumper::ServerHandler for MonitorHandler {
    fn create_minidump_file(&self) -> Result<(std::fs::File, PathBuf), std::io::Error> {
        let id = uuid::Uuid::new_v4().to_string();
        let partial = self.queue.join(format!("{id}.dmp.partial"));
        let file = std::fs::File::create(&partial)?;
        *self.current.lock().expect("report lock") = Some((id, partial.clone()));
        Ok((file, partial))
    }

    fn on_minidump_created(
        &self,
        result: Result<minidumper::MinidumpBinary, minidumper::Error>,
    ) -> minidumper::LoopAction {
        let current = self.current.lock().expect("report lock").take();
        match (result, current) {
            (Ok(mut dump), Some((id, partial))) => {
                use std::io::Write;
                let _ = dump.file.flush();
                let _ = dump.file.sync_all();
                let panic_message = self.panic_message.lock().expect("panic lock").take();
                match self.finish_report(&id, &partial, panic_message) {
                    Ok(()) => eprintln!("app-desktop: crash report {id} saved"),
                    Err(err) => eprintln!("app-desktop: crash report {id} not saved: {err}"),
                }
            }
            (Err(err), current) => {
                eprintln!("app-desktop: the crash could not be written as a minidump: {err}");
                if let Some((_, partial)) = current {
                    let _ = std::fs::remove_file(partial);
                }
            }
            (Ok(_), None) => {}
        }
        // The app is ending; the loop stops once it disconnects.
        minidumper::LoopAction::Continue
    }

    fn on_message(&self, kind: u32, buffer: Vec<u8>) {
        if kind == PANIC_MESSAGE {
            *self.panic_message.lock().expect("panic lock") =
                Some(String::from_utf8_lossy(&buffer).into_owned());
        }
    }

    fn on_client_disconnected(&self, clients: usize) -> minidumper::LoopAction {
        if clients == 0 {
            minidumper::LoopAction::Exit
        } else {
            minidumper::LoopAction::Continue
        }
    }
}

impl MonitorHandler {
    /// The metadata next to the minidump, then the minidump under its final name: a report is
    /// listed only once both are whole.
    fn finish_report(
        &self,
        id: &str,
        partial: &Path,
        panic_message: Option<String>,
    ) -> Result<(), String> {
        let mut metadata: serde_json::Value = serde_json::from_str(&self.metadata)
            .map_err(|err| format!("the monitor's metadata is not JSON: {err}"))?;
        metadata["report_id"] = id.into();
        metadata["panic_message"] = panic_message.into();
        metadata["crashed_at"] = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .ok()
            .into();
        let text = serde_json::to_vec_pretty(&metadata).map_err(|err| err.to_string())?;
        crate::settings::replace_file(&self.queue.join(format!("{id}.json")), &text)?;
        std::fs::rename(partial, self.queue.join(format!("{id}.dmp")))
            .map_err(|err| format!("rename {}: {err}", partial.display()))
    }
}

/// A queued report, as the Privacy panel lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Queued {
    pub id: String,
    pub crashed_at: Option<String>,
    pub version: String,
    pub panic_message: Option<String>,
    pub bytes: u64,
}

/// The whole reports in `queue`, oldest first.
pub fn list(queue: &Path) -> Vec<(Queued, Metadata)> {
    let Ok(entries) = std::fs::read_dir(queue) else {
        return Vec::new();
    };
    let mut reports: Vec<(Queued, Metadata)> = entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            if path.extension()? != "dmp" {
                return None;
            }
            let text = std::fs::read_to_string(path.with_extension("json")).ok()?;
            let metadata: Metadata = serde_json::from_str(&text).ok()?;
            let queued = Queued {
                id: metadata.report_id.clone(),
                crashed_at: metadata.crashed_at.clone(),
                version: metadata.version.clone(),
                panic_message: metadata.panic_message.clone(),
                bytes: entry.metadata().ok()?.len(),
            };
            Some((queued, metadata))
        })
        .collect();
    reports.sort_by(|a, b| a.0.crashed_at.cmp(&b.0.crashed_at));
    reports
}

/// Deletes one queued report; an id that is not a report id is refused.
pub fn delete(queue: &Path, id: &str) -> Result<(), String> {
    uuid::Uuid::parse_str(id).map_err(|_| format!("{id:?} is not a crash report id"))?;
    for extension in ["dmp", "json"] {
        match std::fs::remove_file(queue.join(format!("{id}.{extension}"))) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(format!("delete crash report {id}: {err}")),
        }
    }
    Ok(())
}

/// How hard an upload tries: the monitor a little while (the app is gone), the next start in
/// the background for longer.
#[derive(Debug, Clone, Copy)]
pub enum Retries {
    Monitor,
    Background,
}

/// Uploads every queued report, each with retries and exponential backoff; sent reports (and
/// reports the server refuses as invalid) leave the queue, the rest stay for later.
pub fn upload_queue(queue: &Path, server: &str, retries: Retries) {
    use backon::{BlockingRetryable, ExponentialBuilder};
    let client = match crate::privacy::http_client() {
        Ok(client) => client,
        Err(err) => {
            eprintln!("app-desktop: {err}");
            return;
        }
    };
    let (tries, max_delay) = match retries {
        Retries::Monitor => (4, Duration::from_secs(8)),
        Retries::Background => (8, Duration::from_secs(300)),
    };
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_secs(1))
        .with_max_delay(max_delay)
        .with_max_times(tries)
        .with_jitter();
    for (queued, metadata) in list(queue) {
        let send = || upload_one(&client, server, queue, &metadata);
        match send
            .retry(backoff)
            .when(|err: &UploadError| matches!(err, UploadError::Later(_)))
            .call()
        {
            Ok(()) => {
                eprintln!("app-desktop: crash report {} sent", queued.id);
                let _ = delete(queue, &queued.id);
            }
            Err(UploadError::Refused(reason)) => {
                eprintln!(
                    "app-desktop: crash report {} refused by the server, deleted: {reason}",
                    queued.id
                );
                let _ = delete(queue, &queued.id);
            }
            Err(UploadError::Later(reason)) => {
                eprintln!(
                    "app-desktop: crash report {} not sent, kept for later: {reason}",
                    queued.id
                );
            }
        }
    }
}

#[derive(Debug)]
enum UploadError {
    /// The server will never take this report.
    Refused(String),
    /// Worth another try: no connection, a 429, a 5xx.
    Later(String),
}

fn upload_one(
    client: &reqwest::blocking::Client,
    server: &str,
    queue: &Path,
    metadata: &Metadata,
) -> Result<(), UploadError> {
    let dump = std::fs::read(queue.join(format!("{}.dmp", metadata.report_id)))
        .map_err(|err| UploadError::Refused(format!("read the minidump: {err}")))?;
    let metadata_json =
        serde_json::to_vec(metadata).map_err(|err| UploadError::Refused(err.to_string()))?;
    let form = reqwest::blocking::multipart::Form::new()
        .part(
            "metadata",
            reqwest::blocking::multipart::Part::bytes(metadata_json)
                .mime_str("application/json")
                .map_err(|err| UploadError::Refused(err.to_string()))?,
        )
        .part(
            "minidump",
            reqwest::blocking::multipart::Part::bytes(dump).file_name("minidump.dmp"),
        );
    let answer = client
        .post(format!("{server}/api/crashes"))
        .multipart(form)
        .send()
        .map_err(|err| UploadError::Later(err.to_string()))?;
    let status = answer.status();
    if status.is_success() {
        Ok(())
    } else if status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS {
        Err(UploadError::Refused(format!(
            "{status}: {}",
            answer.text().unwrap_or_default()
        )))
    } else {
        Err(UploadError::Later(status.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_report(queue: &Path, id: &str, crashed_at: &str) {
        let metadata = Metadata {
            report_id: id.to_owned(),
            product: "app-desktop".into(),
            version: "1.0.0".into(),
            channel: "stable".into(),
            os: "linux".into(),
            arch: "x86_64".into(),
            session_id: "0123456789abcdef0123456789abcdef".into(),
            panic_message: None,
            crashed_at: Some(crashed_at.into()),
        };
        std::fs::write(
            queue.join(format!("{id}.json")),
            serde_json::to_vec(&metadata).unwrap(),
        )
        .unwrap();
        std::fs::write(queue.join(format!("{id}.dmp")), b"MDMP").unwrap();
    }

    #[test]
    fn the_queue_lists_whole_reports_and_deletes_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = "6f1c1b5e-0c1e-4d55-9a52-4b7f7c2b6d11";
        let second = "6f1c1b5e-0c1e-4d55-9a52-4b7f7c2b6d12";
        queue_report(dir.path(), second, "2026-11-28T02:00:00Z");
        queue_report(dir.path(), first, "2026-11-28T01:00:00Z");
        // A minidump still being written is not a report yet.
        std::fs::write(dir.path().join("x.dmp.partial"), b"MD").unwrap();
        let ids: Vec<String> = list(dir.path()).into_iter().map(|(q, _)| q.id).collect();
        assert_eq!(ids, [first, second]);
        delete(dir.path(), first).unwrap();
        assert!(delete(dir.path(), "../settings").is_err());
        let ids: Vec<String> = list(dir.path()).into_iter().map(|(q, _)| q.id).collect();
        assert_eq!(ids, [second]);
    }

    #[test]
    fn monitor_arguments_round_trip() {
        let args = MonitorArgs {
            socket: "/run/app.sock".into(),
            queue: "/data/crash-reports".into(),
            consent_file: "/config/privacy.json".into(),
            server: String::new(),
            metadata: "{}".into(),
        };
        let text: Vec<String> = args
            .to_args()
            .into_iter()
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        assert_eq!(text[0], MONITOR_FLAG);
        assert_eq!(text.len(), 6);
    }
}
