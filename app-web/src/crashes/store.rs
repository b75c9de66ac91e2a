//! Crash reports in PostgreSQL (migrations/…_create_crashes_and_analytics.sql) and their
//! minidumps on disk: saving uploads, the worker's queue, and the queries behind the admin API.

use sha2::{Digest, Sha256};
use sqlx::PgPool;
use time::OffsetDateTime;
use uuid::Uuid;

use super::Crashes;
use super::symbolicate::{Frame, Processed, group_id};
use super::upload::CrashUpload;
use crate::error::ApiError;

/// Times the worker tries a report before marking it failed.
pub const MAX_ATTEMPTS: i32 = 3;

/// Saves an upload: the minidump under a temporary name renamed to `<id>.dmp`, then its row.
/// A report id seen before is not stored again; the answer says whether this call stored it.
pub async fn save(
    pool: &PgPool,
    crashes: &Crashes,
    upload: CrashUpload,
) -> Result<(Uuid, bool), ApiError> {
    let metadata = &upload.metadata;
    let id = metadata.report_id;
    let known: Option<(Uuid,)> = sqlx::query_as("SELECT id FROM crash_reports WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    if known.is_some() {
        return Ok((id, false));
    }
    let name = format!("{id}.dmp");
    let path = crashes.minidump_path(&name);
    let sha256 = hex::encode(Sha256::digest(&upload.minidump));
    let bytes = upload.minidump.clone();
    let written = path.clone();
    tokio::task::spawn_blocking(move || super::symbols::write_replacing(&written, &bytes))
        .await
        .map_err(|err| ApiError::Internal(format!("write a minidump: {err}")))?
        .map_err(|err| ApiError::Internal(format!("write {}: {err:#}", path.display())))?;
    let inserted = sqlx::query(
        "INSERT INTO crash_reports (id, crashed_at, product, version, channel, os, arch, \
         session_id, panic_message, minidump_name, minidump_bytes, minidump_sha256) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(metadata.crashed_at)
    .bind(&metadata.product)
    .bind(&metadata.version)
    .bind(&metadata.channel)
    .bind(&metadata.os)
    .bind(&metadata.arch)
    .bind(&metadata.session_id)
    .bind(&metadata.panic_message)
    .bind(&name)
    .bind(upload.minidump.len() as i64)
    .bind(&sha256)
    .execute(pool)
    .await;
    match inserted {
        Ok(result) => Ok((id, result.rows_affected() == 1)),
        Err(err) => {
            // No row points at the file, so it must not stay either.
            let _ = std::fs::remove_file(&path);
            Err(err.into())
        }
    }
}

/// A report the worker took from the queue.
#[derive(Debug, sqlx::FromRow)]
pub struct Claimed {
    pub id: Uuid,
    pub minidump_name: String,
    pub attempts: i32,
}

/// Takes the oldest pending report (skipping those another worker holds), or one a worker
/// took more than ten minutes ago and never finished.
pub async fn claim(pool: &PgPool) -> Result<Option<Claimed>, sqlx::Error> {
    sqlx::query_as(
        "UPDATE crash_reports SET status = 'processing', attempts = attempts + 1, \
         processed_at = now() \
         WHERE id = (SELECT id FROM crash_reports \
                     WHERE status = 'pending' \
                        OR (status = 'processing' AND processed_at < now() - interval '10 minutes') \
                     ORDER BY received_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
         RETURNING id, minidump_name, attempts",
    )
    .fetch_optional(pool)
    .await
}

pub async fn finish(pool: &PgPool, id: Uuid, processed: &Processed) -> Result<(), sqlx::Error> {
    let signature = processed.signature();
    sqlx::query(
        "UPDATE crash_reports SET status = 'done', error = NULL, crash_reason = $2, \
         crash_address = $3, signature = $4, group_id = $5, stack = $6, missing_modules = $7, \
         processed_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&processed.crash_reason)
    .bind(&processed.crash_address)
    .bind(&signature)
    .bind(group_id(&signature))
    .bind(sqlx::types::Json(&processed.frames))
    .bind(&processed.missing_modules)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt: back to the queue, or `failed` after [`MAX_ATTEMPTS`].
pub async fn fail(pool: &PgPool, claimed: &Claimed, error: &str) -> Result<(), sqlx::Error> {
    let status = if claimed.attempts >= MAX_ATTEMPTS {
        "failed"
    } else {
        "pending"
    };
    sqlx::query("UPDATE crash_reports SET status = $2, error = $3 WHERE id = $1")
        .bind(claimed.id)
        .bind(status)
        .bind(error)
        .execute(pool)
        .await?;
    Ok(())
}

/// Puts reports whose crashing thread lacked symbols for `module` (`<debug file>/<debug id>`)
/// back in the queue; returns how many.
pub async fn requeue_missing(pool: &PgPool, module: &str) -> Result<u64, sqlx::Error> {
    let result = sqlx::query(
        "UPDATE crash_reports SET status = 'pending', attempts = 0 \
         WHERE $1 = ANY(missing_modules) AND status IN ('done', 'failed')",
    )
    .bind(module)
    .execute(pool)
    .await?;
    Ok(result.rows_affected())
}

/// A crash group: reports with one signature.
#[derive(Debug, serde::Serialize, sqlx::FromRow)]
pub struct Group {
    pub group_id: String,
    pub signature: String,
    pub reports: i64,
    #[serde(with = "time::serde::rfc3339")]
    pub first_seen: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_seen: OffsetDateTime,
    /// Reports per app version.
    pub versions: sqlx::types::Json<serde_json::Value>,
    /// Reports per `<os>-<arch>`.
    pub platforms: sqlx::types::Json<serde_json::Value>,
}

const GROUPS: &str = "WITH by_version AS (\
        SELECT group_id, jsonb_object_agg(version, n) AS versions FROM \
        (SELECT group_id, version, count(*) AS n FROM crash_reports WHERE status = 'done' \
         GROUP BY group_id, version) v GROUP BY group_id), \
    by_platform AS (\
        SELECT group_id, jsonb_object_agg(platform, n) AS platforms FROM \
        (SELECT group_id, os || '-' || arch AS platform, count(*) AS n FROM crash_reports \
         WHERE status = 'done' GROUP BY group_id, os || '-' || arch) p GROUP BY group_id) \
    SELECT r.group_id, min(r.signature) AS signature, count(*) AS reports, \
        min(r.received_at) AS first_seen, max(r.received_at) AS last_seen, \
        min(v.versions::text)::jsonb AS versions, min(p.platforms::text)::jsonb AS platforms \
    FROM crash_reports r JOIN by_version v USING (group_id) JOIN by_platform p USING (group_id) \
    WHERE r.status = 'done' AND ($1::text IS NULL OR r.group_id = $1) \
    GROUP BY r.group_id ORDER BY count(*) DESC, max(r.received_at) DESC LIMIT 500";

/// Every group, the most frequent first.
pub async fn groups(pool: &PgPool) -> Result<Vec<Group>, ApiError> {
    Ok(sqlx::query_as(GROUPS)
        .bind(None::<String>)
        .fetch_all(pool)
        .await?)
}

pub async fn group(pool: &PgPool, group_id: &str) -> Result<Group, ApiError> {
    sqlx::query_as(GROUPS)
        .bind(group_id)
        .fetch_optional(pool)
        .await?
        .ok_or(ApiError::NotFound)
}

/// A report as the admin API shows it.
#[derive(Debug, serde::Serialize, sqlx::FromRow)]
pub struct Report {
    pub id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub crashed_at: Option<OffsetDateTime>,
    pub product: String,
    pub version: String,
    pub channel: String,
    pub os: String,
    pub arch: String,
    pub panic_message: Option<String>,
    pub minidump_bytes: i64,
    pub minidump_sha256: String,
    pub status: String,
    pub error: Option<String>,
    pub crash_reason: Option<String>,
    pub crash_address: Option<String>,
    pub signature: Option<String>,
    pub group_id: Option<String>,
    pub missing_modules: Vec<String>,
    pub stack: Option<sqlx::types::Json<Vec<Frame>>>,
}

const REPORT_COLUMNS: &str = "id, received_at, crashed_at, product, version, channel, os, arch, \
    panic_message, minidump_bytes, minidump_sha256, status, error, crash_reason, crash_address, \
    signature, group_id, missing_modules, stack";

pub async fn report(pool: &PgPool, id: Uuid) -> Result<Report, ApiError> {
    sqlx::query_as(&format!(
        "SELECT {REPORT_COLUMNS} FROM crash_reports WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(ApiError::NotFound)
}

/// The newest reports, of one group or of all, without their stacks.
pub async fn reports(
    pool: &PgPool,
    group_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Report>, ApiError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM crash_reports WHERE ($1::text IS NULL OR group_id = $1) \
         ORDER BY received_at DESC LIMIT $2",
        REPORT_COLUMNS.replace("stack", "NULL::jsonb AS stack")
    ))
    .bind(group_id)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Crash-free sessions of one app version: the sessions that sent `app_started` (raw events,
/// and the daily sums of purged ones), and how many of them a crash report names. Sessions
/// whose user agreed to crash reports but not to analytics are not counted either way.
#[derive(Debug, serde::Serialize, sqlx::FromRow)]
pub struct VersionHealth {
    pub version: String,
    pub sessions: i64,
    pub crashed_sessions: i64,
    /// Every report of the version, whether or not its session is known.
    pub crash_reports: i64,
    /// 1 − crashed ÷ sessions; None before any session is counted.
    pub crash_free_rate: Option<f64>,
}

pub async fn versions(pool: &PgPool, product: &str) -> Result<Vec<VersionHealth>, ApiError> {
    Ok(sqlx::query_as(
        "WITH raw AS (\
            SELECT e.app_version AS version, \
                count(DISTINCT (e.received_at AT TIME ZONE 'UTC')::date || e.session_id) AS sessions, \
                count(DISTINCT (e.received_at AT TIME ZONE 'UTC')::date || e.session_id) \
                    FILTER (WHERE EXISTS (SELECT 1 FROM crash_reports c \
                                          WHERE c.product = $1 AND c.session_id = e.session_id)) \
                    AS crashed \
            FROM analytics_events e WHERE e.app = $1 AND e.name = 'app_started' \
              AND NOT EXISTS (SELECT 1 FROM analytics_rollups r \
                              WHERE r.day = (e.received_at AT TIME ZONE 'UTC')::date) \
            GROUP BY 1), \
         summed AS (\
            SELECT app_version AS version, sum(sessions)::bigint, sum(crashed_sessions)::bigint \
            FROM analytics_daily WHERE app = $1 AND name = 'app_started' GROUP BY 1), \
         sessions AS (\
            SELECT version, sum(sessions)::bigint AS sessions, sum(crashed)::bigint AS crashed \
            FROM (SELECT * FROM raw UNION ALL SELECT * FROM summed) both_kinds GROUP BY version), \
         reports AS (\
            SELECT version, count(*) AS reports FROM crash_reports WHERE product = $1 \
            GROUP BY version) \
         SELECT coalesce(s.version, r.version) AS version, coalesce(s.sessions, 0) AS sessions, \
            coalesce(s.crashed, 0) AS crashed_sessions, coalesce(r.reports, 0) AS crash_reports, \
            CASE WHEN coalesce(s.sessions, 0) > 0 \
                 THEN 1 - coalesce(s.crashed, 0)::float8 / s.sessions END AS crash_free_rate \
         FROM sessions s FULL JOIN reports r ON r.version = s.version ORDER BY 1 DESC",
    )
    .bind(product)
    .fetch_all(pool)
    .await?)
}
