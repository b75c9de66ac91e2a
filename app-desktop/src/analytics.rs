//! Usage analytics, only with the user's consent: events (app started, update installed,
//! feature used) with a random id for this run of the app and coarse properties (version, OS,
//! locale), no device id. Events wait in a queue file in the app's data folder and go to
//! app-web (`POST /api/events`) in batches from a background thread. Without consent nothing is
//! queued or sent; withdrawing consent deletes the queue.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Most events in one batch (app-web takes up to 200).
const BATCH: usize = 50;
/// How long events wait before the sender looks again.
const INTERVAL: Duration = Duration::from_secs(30);
/// Most events kept while the server cannot be reached; the oldest go first.
const MAX_QUEUED: usize = 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub name: String,
    pub occurred_at: String,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub props: serde_json::Map<String, serde_json::Value>,
}

struct Inner {
    queue: Vec<Event>,
    enabled: bool,
    /// Set when the app is ending: the sender sends what is left once and stops.
    stopping: bool,
}

/// The analytics client; one per app run.
pub struct Analytics {
    session_id: String,
    queue_file: PathBuf,
    server: Option<String>,
    inner: Mutex<Inner>,
    wake: Condvar,
}

impl Analytics {
    /// The client, with the queue a previous run left when consent is given, else none.
    pub fn new(queue_file: PathBuf, server: Option<String>, enabled: bool) -> Arc<Self> {
        let queue = if enabled {
            std::fs::read_to_string(&queue_file)
                .ok()
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or_default()
        } else {
            let _ = std::fs::remove_file(&queue_file);
            Vec::new()
        };
        Arc::new(Self {
            session_id: uuid::Uuid::new_v4().simple().to_string(),
            queue_file,
            server,
            inner: Mutex::new(Inner {
                queue,
                enabled,
                stopping: false,
            }),
            wake: Condvar::new(),
        })
    }

    /// The random id of this run, also sent with crash reports for crash-free session rates.
    pub fn session_id(&self) -> &str {
        &self.session_id
    }

    /// Queues an event, if the user agreed to analytics.
    pub fn track(&self, name: &str, props: serde_json::Map<String, serde_json::Value>) {
        let mut inner = self.inner.lock().expect("analytics lock");
        if !inner.enabled {
            return;
        }
        inner.queue.push(Event {
            name: name.to_owned(),
            occurred_at: now(),
            props,
        });
        if inner.queue.len() > MAX_QUEUED {
            let excess = inner.queue.len() - MAX_QUEUED;
            inner.queue.drain(..excess);
        }
        self.persist(&inner.queue);
        if inner.queue.len() >= BATCH {
            self.wake.notify_all();
        }
    }

    /// Turns analytics on or off; off deletes the queue, in memory and on disk.
    pub fn set_enabled(&self, enabled: bool) {
        let mut inner = self.inner.lock().expect("analytics lock");
        inner.enabled = enabled;
        if !enabled {
            inner.queue.clear();
            let _ = std::fs::remove_file(&self.queue_file);
        }
    }

    pub fn queued(&self) -> usize {
        self.inner.lock().expect("analytics lock").queue.len()
    }

    fn persist(&self, queue: &[Event]) {
        let written = serde_json::to_vec(queue)
            .map_err(|err| err.to_string())
            .and_then(|bytes| crate::settings::replace_file(&self.queue_file, &bytes));
        if let Err(err) = written {
            eprintln!("app-desktop: analytics queue not saved: {err}");
        }
    }

    /// Sends what is queued now and stops the sender, waiting at most `timeout`.
    pub fn finish(&self, timeout: Duration) {
        self.inner.lock().expect("analytics lock").stopping = true;
        self.wake.notify_all();
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline && self.queued() > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the background sender: a batch now, then every [`INTERVAL`] or when a batch is
    /// full, until [`Analytics::finish`].
    pub fn spawn_sender(self: &Arc<Self>, app_version: String) {
        let Some(server) = self.server.clone() else {
            return;
        };
        let analytics = Arc::clone(self);
        std::thread::spawn(move || {
            let client = match crate::privacy::http_client() {
                Ok(client) => client,
                Err(err) => {
                    eprintln!("app-desktop: {err}");
                    return;
                }
            };
            loop {
                let (batch, stopping) = {
                    let inner = analytics.inner.lock().expect("analytics lock");
                    let count = inner.queue.len().min(BATCH);
                    (inner.queue[..count].to_vec(), inner.stopping)
                };
                if !batch.is_empty() {
                    match analytics.send(&client, &server, &app_version, &batch) {
                        Ok(()) => {
                            let mut inner = analytics.inner.lock().expect("analytics lock");
                            let sent = batch.len().min(inner.queue.len());
                            if inner.queue[..sent] == batch[..sent] {
                                inner.queue.drain(..sent);
                            }
                            analytics.persist(&inner.queue);
                            continue;
                        }
                        Err(err) => eprintln!("app-desktop: analytics not sent yet: {err}"),
                    }
                }
                if stopping {
                    return;
                }
                // Here either nothing was queued or the send failed. After a failure the
                // sender waits the whole interval: a full queue would otherwise wake it at
                // once, again and again, against a server that is down.
                let failed = !batch.is_empty();
                let inner = analytics.inner.lock().expect("analytics lock");
                let _ = analytics
                    .wake
                    .wait_timeout_while(inner, INTERVAL, |inner| {
                        !inner.stopping && (failed || inner.queue.len() < BATCH)
                    })
                    .expect("analytics lock");
            }
        });
    }

    fn send(
        &self,
        client: &reqwest::blocking::Client,
        server: &str,
        app_version: &str,
        events: &[Event],
    ) -> Result<(), String> {
        let batch = serde_json::json!({
            "app": "app-desktop",
            "session_id": self.session_id,
            "app_version": app_version,
            "os": std::env::consts::OS,
            "locale": locale(),
            "events": events,
        });
        let answer = client
            .post(format!("{server}/api/events"))
            .json(&batch)
            .send()
            .map_err(|err| err.to_string())?;
        if answer.status().is_success() {
            Ok(())
        } else {
            Err(format!("{}", answer.status()))
        }
    }
}

fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The user's language tag, coarse: `en-GB`, not more.
fn locale() -> String {
    coarse_tag(&sys_locale::get_locale().unwrap_or_default())
}

/// A locale as the system names it (`en_GB.UTF-8`, `fr_FR@euro`, `de-DE`) cut down to its
/// language tag: no encoding, no modifier, at most 35 characters.
fn coarse_tag(raw: &str) -> String {
    raw.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(35)
        .collect::<String>()
        .replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_consent_nothing_is_queued_and_withdrawing_deletes_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("analytics-queue.json");
        let off = Analytics::new(file.clone(), None, false);
        off.track("app_started", Default::default());
        assert_eq!(off.queued(), 0);
        assert!(!file.exists());

        let on = Analytics::new(file.clone(), None, true);
        on.track("app_started", Default::default());
        on.track("feature_used", Default::default());
        assert_eq!(on.queued(), 2);
        assert!(file.exists(), "the queue is kept on disk");
        // A later run picks the queue up.
        assert_eq!(Analytics::new(file.clone(), None, true).queued(), 2);
        on.set_enabled(false);
        assert_eq!(on.queued(), 0);
        assert!(!file.exists(), "withdrawing consent deletes the queue");
        assert_ne!(
            Analytics::new(file.clone(), None, true).session_id(),
            on.session_id(),
            "a new id each run"
        );
    }

    #[test]
    fn a_full_queue_waits_the_interval_after_a_failed_send() {
        // A server that takes each connection and drops it: every send fails at once.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let server = format!("http://{}", listener.local_addr().unwrap());
        let attempts = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = Arc::clone(&attempts);
        std::thread::spawn(move || {
            for connection in listener.incoming() {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drop(connection);
            }
        });
        let dir = tempfile::tempdir().unwrap();
        let analytics = Analytics::new(dir.path().join("queue.json"), Some(server), true);
        for _ in 0..BATCH + 10 {
            analytics.track("feature_used", Default::default());
        }
        analytics.spawn_sender("1.0.0".into());
        std::thread::sleep(Duration::from_secs(2));
        let seen = attempts.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            (1..=2).contains(&seen),
            "{seen} connections in 2 s: after a failure the sender must wait {INTERVAL:?}"
        );
        assert_eq!(analytics.queued(), BATCH + 10, "nothing was lost");
    }

    #[test]
    fn the_locale_is_cut_down_to_a_plain_language_tag() {
        for (raw, tag) in [
            ("en_GB.UTF-8", "en-GB"),
            ("fr_FR@euro", "fr-FR"),
            ("de-DE", "de-DE"),
            ("C", "C"),
            ("", ""),
            ("zh-Hant-TW", "zh-Hant-TW"),
        ] {
            assert_eq!(coarse_tag(raw), tag, "{raw:?}");
        }
        assert_eq!(coarse_tag(&"x".repeat(100)).len(), 35);
    }
}
