//! Event batches: what a batch may hold, the daily salt, the user hash, and storing a batch.
//!
//! A batch comes from one session of one app: `{app, session_id, app_version, os, locale,
//! events: [{name, occurred_at?, props?}]}`. The session id is random per run of the app; there
//! is no device id. The client's address and user agent only feed the hash and are dropped.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;

use crate::error::ApiError;

/// Most events one batch may carry.
pub const MAX_EVENTS_PER_BATCH: usize = 200;
/// Apps that send events: the desktop app and the web UI.
pub const APPS: &[&str] = &["app-desktop", "app-web"];
/// Most properties one event may carry, and the longest text value.
pub const MAX_PROPS: usize = 16;
pub const MAX_PROP_CHARS: usize = 128;

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    pub app: String,
    pub session_id: String,
    #[serde(default)]
    pub app_version: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub locale: String,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Event {
    pub name: String,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub occurred_at: Option<OffsetDateTime>,
    #[serde(default)]
    pub props: serde_json::Map<String, serde_json::Value>,
}

pub use crash_upload::check_session_id;

fn bad(field: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest {
        field: Some(field),
        message: message.into(),
    }
}

/// A name of lower-case letters, digits, dots and underscores, starting with a letter.
fn event_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'))
}

fn short_word(value: &str, max: usize) -> bool {
    value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'))
}

impl Batch {
    /// Checks every field; the error names the first one that is wrong.
    pub fn check(&self) -> Result<(), ApiError> {
        if !APPS.contains(&self.app.as_str()) {
            return Err(bad(
                "app",
                format!("unknown app {:?}: use one of {}", self.app, APPS.join(", ")),
            ));
        }
        check_session_id(&self.session_id).map_err(|message| bad("session_id", message))?;
        if !short_word(&self.app_version, 64) {
            return Err(bad(
                "app_version",
                "at most 64 letters, digits, dots, dashes and pluses",
            ));
        }
        if !short_word(&self.os, 32) {
            return Err(bad("os", "at most 32 letters, digits, dots and dashes"));
        }
        if !short_word(&self.locale, 35) {
            return Err(bad(
                "locale",
                "a language tag such as en-GB, at most 35 characters",
            ));
        }
        if self.events.is_empty() || self.events.len() > MAX_EVENTS_PER_BATCH {
            return Err(bad(
                "events",
                format!(
                    "send 1 to {MAX_EVENTS_PER_BATCH} events per batch, not {}",
                    self.events.len()
                ),
            ));
        }
        for (index, event) in self.events.iter().enumerate() {
            if !event_name(&event.name) {
                return Err(bad(
                    "events",
                    format!(
                        "event {index}: name {:?} must be 1 to 64 lower-case letters, digits, dots and underscores, starting with a letter",
                        event.name
                    ),
                ));
            }
            if event.props.len() > MAX_PROPS {
                return Err(bad(
                    "events",
                    format!("event {index}: at most {MAX_PROPS} properties"),
                ));
            }
            for (key, value) in &event.props {
                let fits = match value {
                    serde_json::Value::String(text) => text.chars().count() <= MAX_PROP_CHARS,
                    serde_json::Value::Number(_) | serde_json::Value::Bool(_) => true,
                    _ => false,
                };
                if !event_name(key) || !fits {
                    return Err(bad(
                        "events",
                        format!(
                            "event {index}: property {key:?} must have a lower-case name and a text (at most {MAX_PROP_CHARS} characters), number or true/false value"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// SHA-256 over the day's salt, the client's address, its user agent and the app: the same
/// person in the same app hashes alike for one day only.
pub fn user_hash(salt: &[u8], address: Option<IpAddr>, user_agent: &str, app: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    for part in [
        address.map(|a| a.to_string()).unwrap_or_default().as_str(),
        user_agent,
        app,
    ] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hasher.finalize().into()
}

/// Today's salt (UTC), made on first use; salts of earlier days are deleted in the same
/// statement, so no hash of an earlier day can be made again.
pub async fn todays_salt(pool: &PgPool) -> Result<Vec<u8>, sqlx::Error> {
    let fresh: [u8; 32] = rand::random();
    let (salt,): (Vec<u8>,) = sqlx::query_as(
        "WITH today AS (SELECT (now() AT TIME ZONE 'UTC')::date AS day), \
         old AS (DELETE FROM analytics_salts WHERE day < (SELECT day FROM today)), \
         new AS (INSERT INTO analytics_salts (day, salt) SELECT day, $1 FROM today \
                 ON CONFLICT (day) DO NOTHING RETURNING salt) \
         SELECT salt FROM new UNION ALL \
         SELECT salt FROM analytics_salts WHERE day = (SELECT day FROM today)",
    )
    .bind(fresh.as_slice())
    .fetch_one(pool)
    .await?;
    Ok(salt)
}

/// Stores a checked batch in one statement; returns how many events were stored.
pub async fn store(pool: &PgPool, batch: &Batch, user_hash: &[u8]) -> Result<u64, sqlx::Error> {
    let occurred: Vec<Option<OffsetDateTime>> =
        batch.events.iter().map(|event| event.occurred_at).collect();
    let names: Vec<&str> = batch
        .events
        .iter()
        .map(|event| event.name.as_str())
        .collect();
    let props: Vec<sqlx::types::Json<&serde_json::Map<String, serde_json::Value>>> = batch
        .events
        .iter()
        .map(|event| sqlx::types::Json(&event.props))
        .collect();
    let result = sqlx::query(
        "INSERT INTO analytics_events \
         (occurred_at, name, props, app, session_id, user_hash, app_version, os, locale) \
         SELECT o, n, p, $4, $5, $6, $7, $8, $9 \
         FROM UNNEST($1::timestamptz[], $2::text[], $3::jsonb[]) AS t(o, n, p)",
    )
    .bind(&occurred)
    .bind(&names)
    .bind(&props)
    .bind(&batch.app)
    .bind(&batch.session_id)
    .bind(user_hash)
    .bind(&batch.app_version)
    .bind(&batch.os)
    .bind(&batch.locale)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch() -> Batch {
        serde_json::from_value(serde_json::json!({
            "app": "app-desktop",
            "session_id": "0123456789abcdef0123456789abcdef",
            "app_version": "1.2.3",
            "os": "linux",
            "locale": "en-GB",
            "events": [{"name": "app_started"}, {"name": "feature_used", "props": {"feature": "notes"}}]
        }))
        .unwrap()
    }

    fn field(err: ApiError) -> &'static str {
        match err {
            ApiError::BadRequest { field, .. } => field.unwrap(),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn every_field_is_checked() {
        batch().check().unwrap();
        type Change = fn(&mut Batch);
        let cases: [(&str, Change); 8] = [
            ("app", |b| b.app = "other".into()),
            ("session_id", |b| b.session_id = "short".into()),
            ("app_version", |b| b.app_version = "1 2".into()),
            ("os", |b| b.os = "x".repeat(40)),
            ("locale", |b| b.locale = "en GB".into()),
            ("events", |b| b.events.clear()),
            ("events", |b| b.events[0].name = "App Started".into()),
            ("events", |b| {
                b.events[1]
                    .props
                    .insert("nested".into(), serde_json::json!({"a": 1}));
            }),
        ];
        for (expected, change) in cases {
            let mut changed = batch();
            change(&mut changed);
            assert_eq!(field(changed.check().unwrap_err()), expected);
        }
    }

    #[test]
    fn the_hash_depends_on_every_part_and_the_salt() {
        let address = Some("127.0.0.1".parse().unwrap());
        let base = user_hash(b"salt-a", address, "agent", "app-desktop");
        assert_eq!(base, user_hash(b"salt-a", address, "agent", "app-desktop"));
        assert_ne!(base, user_hash(b"salt-b", address, "agent", "app-desktop"));
        assert_ne!(base, user_hash(b"salt-a", None, "agent", "app-desktop"));
        assert_ne!(base, user_hash(b"salt-a", address, "agent2", "app-desktop"));
        assert_ne!(base, user_hash(b"salt-a", address, "agent", "app-web"));
    }
}
