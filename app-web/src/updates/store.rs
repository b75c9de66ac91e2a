//! Releases and their artifacts in PostgreSQL (migrations/…_create_releases.sql): publishing,
//! rollout changes, and the releases an update check chooses among.

use std::sync::Arc;
use std::time::Duration;

use semver::Version;
use sqlx::PgPool;
use time::OffsetDateTime;

use super::policy::{Channel, Release, RolloutState};
use crate::error::ApiError;

/// What an update check answers with for one release.
#[derive(Debug, Clone)]
pub struct Download {
    pub notes: String,
    /// RFC 3339, as the updater reads it.
    pub pub_date: String,
    pub url: String,
    pub signature: String,
}

/// The releases with an artifact for one platform, as the offer rules see them, and each
/// one's download at the same index.
#[derive(Debug, Default)]
pub struct Offerable {
    pub releases: Vec<Release>,
    pub downloads: Vec<Download>,
}

impl Offerable {
    /// The download of `release`, one of [`Offerable::releases`].
    pub fn download(&self, release: &Release) -> Option<&Download> {
        self.releases
            .iter()
            .position(|candidate| candidate.version == release.version)
            .map(|index| &self.downloads[index])
    }
}

/// One downloadable bundle of a release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    pub target: String,
    pub arch: String,
    #[serde(default)]
    pub bundle_type: String,
    pub url: String,
    pub signature: String,
}

/// A release as published, with its current rollout.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Published {
    pub version: String,
    pub channel: Channel,
    pub notes: String,
    #[serde(with = "time::serde::rfc3339")]
    pub pub_date: OffsetDateTime,
    pub rollout_percent: u8,
    pub halted: bool,
    pub artifacts: Vec<Artifact>,
}

#[derive(sqlx::FromRow)]
struct ReleaseRow {
    version: String,
    channel: String,
    notes: String,
    pub_date: OffsetDateTime,
    rollout_percent: i16,
    halted: bool,
}

impl ReleaseRow {
    /// The release as the offer rules see it.
    fn policy_release(&self) -> Result<Release, ApiError> {
        Ok(Release {
            version: Version::parse(&self.version).map_err(|err| {
                ApiError::Internal(format!("stored version {}: {err}", self.version))
            })?,
            channel: channel(&self.channel)?,
            rollout_percent: percent(self.rollout_percent),
            state: if self.halted {
                RolloutState::Halted
            } else {
                RolloutState::Active
            },
        })
    }
}

fn channel(name: &str) -> Result<Channel, ApiError> {
    name.parse()
        .map_err(|err: super::policy::UnknownChannel| ApiError::Internal(err.to_string()))
}

fn percent(value: i16) -> u8 {
    u8::try_from(value.clamp(0, 100)).unwrap_or(100)
}

/// The releases with an artifact for the platform, each with the artifact that fits the
/// requested bundle type best: that type exactly, else one for any type. Without a requested
/// type, any artifact for the platform.
pub async fn offerable(
    pool: &PgPool,
    target: &str,
    arch: &str,
    bundle_type: &str,
) -> Result<Offerable, ApiError> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        release: ReleaseRow,
        url: String,
        signature: String,
    }
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT DISTINCT ON (r.version) r.version, r.channel, r.notes, r.pub_date, \
                r.rollout_percent, r.halted, a.url, a.signature \
         FROM releases r JOIN release_artifacts a USING (version) \
         WHERE a.target = $1 AND a.arch = $2 \
           AND ($3 = '' OR a.bundle_type = $3 OR a.bundle_type = '') \
         ORDER BY r.version, (a.bundle_type = $3) DESC, (a.bundle_type = '') DESC, a.bundle_type",
    )
    .bind(target)
    .bind(arch)
    .bind(bundle_type)
    .fetch_all(pool)
    .await?;
    let mut offerable = Offerable::default();
    for row in rows {
        offerable.releases.push(row.release.policy_release()?);
        offerable.downloads.push(Download {
            pub_date: row
                .release
                .pub_date
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|err| ApiError::Internal(err.to_string()))?,
            notes: row.release.notes,
            url: row.url,
            signature: row.signature,
        });
    }
    Ok(offerable)
}

/// [`offerable`] per platform and bundle type, kept for a second: a busy fleet's checks then
/// cost one query per second per platform. Changes made through this replica clear it at once;
/// those made through another show within the second.
#[derive(Clone)]
pub struct OfferableCache(moka::sync::Cache<(String, String, String), Arc<Offerable>>);

impl Default for OfferableCache {
    fn default() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(1024)
                .time_to_live(Duration::from_secs(1))
                .build(),
        )
    }
}

impl OfferableCache {
    pub async fn get(
        &self,
        pool: &PgPool,
        target: &str,
        arch: &str,
        bundle_type: &str,
    ) -> Result<Arc<Offerable>, ApiError> {
        let key = (target.to_owned(), arch.to_owned(), bundle_type.to_owned());
        if let Some(found) = self.0.get(&key) {
            return Ok(found);
        }
        let loaded = Arc::new(offerable(pool, target, arch, bundle_type).await?);
        self.0.insert(key, Arc::clone(&loaded));
        Ok(loaded)
    }

    pub fn clear(&self) {
        self.0.invalidate_all();
    }
}

/// What [`publish`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Publication {
    Created,
    /// The same release was already there (a re-run of a publish job).
    AlreadyPublished,
}

/// Stores `release` with its artifacts in one transaction. Publishing the same release again
/// changes nothing; a different release under a published version is a conflict.
pub async fn publish(pool: &PgPool, release: &Published) -> Result<Publication, ApiError> {
    let mut transaction = pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO releases (version, channel, notes, pub_date, rollout_percent, halted) \
         VALUES ($1, $2, $3, $4, $5, false) ON CONFLICT (version) DO NOTHING",
    )
    .bind(&release.version)
    .bind(release.channel.to_string())
    .bind(&release.notes)
    .bind(release.pub_date)
    .bind(i16::from(release.rollout_percent))
    .execute(&mut *transaction)
    .await?
    .rows_affected();
    if inserted == 0 {
        transaction.rollback().await?;
        let existing = find(pool, &release.version)
            .await?
            .ok_or_else(|| ApiError::Conflict(format!("{} is being published", release.version)))?;
        let mut wanted = release.artifacts.clone();
        wanted.sort();
        let same = existing.channel == release.channel
            && existing.notes == release.notes
            && existing.artifacts == wanted;
        return if same {
            Ok(Publication::AlreadyPublished)
        } else {
            Err(ApiError::Conflict(format!(
                "{} is already published with other notes, channel or artifacts; publish a new version instead",
                release.version
            )))
        };
    }
    for artifact in &release.artifacts {
        sqlx::query(
            "INSERT INTO release_artifacts (version, target, arch, bundle_type, url, signature) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&release.version)
        .bind(&artifact.target)
        .bind(&artifact.arch)
        .bind(&artifact.bundle_type)
        .bind(&artifact.url)
        .bind(&artifact.signature)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(Publication::Created)
}

/// The published release `version`, if there is one.
pub async fn find(pool: &PgPool, version: &str) -> Result<Option<Published>, ApiError> {
    let row: Option<ReleaseRow> = sqlx::query_as(
        "SELECT version, channel, notes, pub_date, rollout_percent, halted \
         FROM releases WHERE version = $1",
    )
    .bind(version)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => Ok(Some(with_artifacts(pool, row).await?)),
        None => Ok(None),
    }
}

/// Every published release, newest publication first.
pub async fn list(pool: &PgPool) -> Result<Vec<Published>, ApiError> {
    let rows: Vec<ReleaseRow> = sqlx::query_as(
        "SELECT version, channel, notes, pub_date, rollout_percent, halted \
         FROM releases ORDER BY pub_date DESC, version DESC",
    )
    .fetch_all(pool)
    .await?;
    let mut releases = Vec::with_capacity(rows.len());
    for row in rows {
        releases.push(with_artifacts(pool, row).await?);
    }
    Ok(releases)
}

async fn with_artifacts(pool: &PgPool, row: ReleaseRow) -> Result<Published, ApiError> {
    let artifacts: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT target, arch, bundle_type, url, signature FROM release_artifacts \
         WHERE version = $1 ORDER BY target, arch, bundle_type, url, signature",
    )
    .bind(&row.version)
    .fetch_all(pool)
    .await?;
    let mut artifacts: Vec<Artifact> = artifacts
        .into_iter()
        .map(|(target, arch, bundle_type, url, signature)| Artifact {
            target,
            arch,
            bundle_type,
            url,
            signature,
        })
        .collect();
    artifacts.sort();
    Ok(Published {
        channel: channel(&row.channel)?,
        version: row.version,
        notes: row.notes,
        pub_date: row.pub_date,
        rollout_percent: percent(row.rollout_percent),
        halted: row.halted,
        artifacts,
    })
}

/// Sets the rollout percentage and/or the halt of `version`; `None` when it is not published.
pub async fn change_rollout(
    pool: &PgPool,
    version: &str,
    rollout_percent: Option<u8>,
    halted: Option<bool>,
) -> Result<Option<Published>, ApiError> {
    let changed = sqlx::query(
        "UPDATE releases SET rollout_percent = COALESCE($2, rollout_percent), \
                halted = COALESCE($3, halted), updated_at = now() \
         WHERE version = $1",
    )
    .bind(version)
    .bind(rollout_percent.map(i16::from))
    .bind(halted)
    .execute(pool)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(None);
    }
    find(pool, version).await
}
