//! The update server's HTTP API: the check the desktop app's updater makes, and the admin API
//! that `cargo xtask release publish` and operators use (a bearer token from a secret file).
//!
//! `GET /api/updates/{channel}/{target}/{arch}/{current_version}?bundle_type=&install_id=`
//! answers 200 with `{version, url, signature, notes, pub_date}` (the updater's format) or 204,
//! cacheable for a minute. While no newer release is part-way through its rollout the answer
//! is the same for every install and marked `public`, so nginx keeps one copy per channel,
//! platform, version and bundle type whatever the install id; otherwise it is `private`, and
//! each install gets its own.

use std::collections::BTreeMap;

use axum::Json;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use semver::Version;
use serde_json::json;
use time::OffsetDateTime;

use super::config::PublishPolicy;
use super::policy::{self, Channel, Offer};
use super::store::{self, Artifact, Publication, Published};
use crate::auth::require_admin;
use crate::error::{ApiError, read_json};
use crate::state::AppState;

/// The updater's `{{target}}` values.
pub const TARGETS: &[&str] = &["linux", "windows", "darwin"];
/// The updater's `{{arch}}` values.
pub const ARCHES: &[&str] = &["x86_64", "aarch64", "i686", "armv7"];
/// The bundle types the updater reports and installs.
pub const BUNDLE_TYPES: &[&str] = &["deb", "rpm", "appimage", "msi", "nsis", "app"];

/// How long a client or nginx may reuse an answer: a halt reaches every client within it.
const SHARED: &str = "public, max-age=60";
/// For an answer that depends on the install id: only the install itself may keep it.
const OWN: &str = "private, max-age=60";

pub fn router(state: AppState) -> Router<AppState> {
    let admin = Router::new()
        .route(
            "/api/admin/releases",
            get(list_releases).post(publish_release),
        )
        .route(
            "/api/admin/releases/{version}",
            get(get_release).patch(change_release),
        )
        .route_layer(axum::middleware::from_fn_with_state(state, require_admin));
    Router::new()
        .route(
            "/api/updates/{channel}/{target}/{arch}/{current_version}",
            get(check),
        )
        .merge(admin)
}

fn bad(field: &'static str, message: String) -> ApiError {
    ApiError::BadRequest {
        field: Some(field),
        message,
    }
}

/// Why `value` is refused for `field`, unless it is one of `allowed`.
fn unknown(field: &str, value: &str, allowed: &[&str]) -> Option<String> {
    (!allowed.contains(&value)).then(|| {
        format!(
            "unknown {field} {value:?}: use one of {}",
            allowed.join(", ")
        )
    })
}

fn one_of(field: &'static str, value: &str, allowed: &[&str]) -> Result<(), ApiError> {
    match unknown(field, value, allowed) {
        Some(message) => Err(bad(field, message)),
        None => Ok(()),
    }
}

/// A rollout percentage as stored, if `value` is one (0 to 100).
fn rollout_percent(value: i64) -> Option<u8> {
    u8::try_from(value).ok().filter(|percent| *percent <= 100)
}

#[derive(Debug, Default, PartialEq)]
struct CheckQuery {
    bundle_type: Option<String>,
    install_id: Option<String>,
}

impl CheckQuery {
    /// The update check's query: `bundle_type` and `install_id`, each at most once, and nothing
    /// else, read as sent, without percent-decoding. nginx keys its cache on the raw value of
    /// the first key spelt `bundle_type` in any case; a second spelling, an encoded spelling
    /// (`bundle%5Ftype`) or a second copy could store one bundle type's answer under another's
    /// key. Refusing all of them, and reading the raw bytes nginx reads, means every answer nginx
    /// keeps is for the value it keyed. Neither value ever needs encoding: bundle types are
    /// lower-case words and install ids letters, digits and dashes.
    fn parse(raw: Option<&str>) -> Result<Self, ApiError> {
        let mut query = Self::default();
        for pair in raw
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
        {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let slot = match key {
                "bundle_type" => &mut query.bundle_type,
                "install_id" => &mut query.install_id,
                other => {
                    return Err(bad(
                        "query",
                        format!(
                            "unknown query parameter {other:?}: an update check takes only \
                             bundle_type and install_id, spelt in lower case"
                        ),
                    ));
                }
            };
            if slot.is_some() {
                return Err(bad(
                    "query",
                    format!("the query parameter {key} is given more than once"),
                ));
            }
            *slot = Some(value.to_owned());
        }
        Ok(query)
    }
}

/// An install id as the app makes it: random, 8 to 128 letters, digits and dashes.
fn valid_install_id(id: &str) -> bool {
    (8..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

async fn check(
    State(state): State<AppState>,
    Path((channel, target, arch, current)): Path<(String, String, String, String)>,
    RawQuery(raw_query): RawQuery,
) -> Result<Response, ApiError> {
    let query = CheckQuery::parse(raw_query.as_deref())?;
    let channel: Channel = channel
        .parse()
        .map_err(|err: policy::UnknownChannel| bad("channel", err.to_string()))?;
    one_of("target", &target, TARGETS)?;
    one_of("arch", &arch, ARCHES)?;
    let current = Version::parse(current.strip_prefix('v').unwrap_or(&current)).map_err(|err| {
        bad(
            "current_version",
            format!("{current:?} is not a semantic version such as 1.2.3: {err}"),
        )
    })?;
    let bundle_type = query.bundle_type.unwrap_or_default();
    if !bundle_type.is_empty() {
        one_of("bundle_type", &bundle_type, BUNDLE_TYPES)?;
    }
    let install_id = query.install_id.filter(|id| !id.is_empty());
    if let Some(id) = &install_id
        && !valid_install_id(id)
    {
        return Err(bad(
            "install_id",
            "must be 8 to 128 letters, digits and dashes (a random id the app makes)".into(),
        ));
    }

    let offerable = state
        .releases()
        .get(state.pool()?, &target, &arch, &bundle_type)
        .await?;
    let releases = &offerable.releases;
    let (outcome, chosen) = match policy::offer(releases, channel, &current, install_id.as_deref())
    {
        Offer::Update(release) => ("update", Some(release)),
        Offer::Rollback(release) => ("rollback", Some(release)),
        Offer::Nothing => ("none", None),
    };
    let rollback = outcome == "rollback";
    metrics::counter!(
        crate::metrics::UPDATE_CHECKS,
        "channel" => channel.to_string(),
        "outcome" => outcome
    )
    .increment(1);
    let cache_control = if policy::depends_on_install(releases, channel, &current) {
        OWN
    } else {
        SHARED
    };
    let cache = [(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    )];
    let Some(release) = chosen else {
        return Ok((StatusCode::NO_CONTENT, cache).into_response());
    };
    let download = offerable
        .download(release)
        .ok_or_else(|| ApiError::Internal("the offered release has no download".into()))?;
    // `rollback` tells the app that this lower version is offered on purpose: the app installs
    // an older version only when the server marks it so.
    let body = json!({
        "version": release.version.to_string(),
        "url": download.url,
        "signature": download.signature,
        "notes": download.notes,
        "pub_date": download.pub_date,
        "rollback": rollback,
    });
    Ok((StatusCode::OK, cache, Json(body)).into_response())
}

#[derive(Debug, serde::Deserialize)]
struct PublishInput {
    version: Option<String>,
    channel: Option<String>,
    notes: Option<String>,
    pub_date: Option<String>,
    rollout_percent: Option<i64>,
    artifacts: Option<Vec<Artifact>>,
}

impl PublishInput {
    fn validate(self, policy: &PublishPolicy) -> Result<Published, ApiError> {
        let mut errors = BTreeMap::new();
        let channel = match self.channel.as_deref().unwrap_or("").parse::<Channel>() {
            Ok(channel) => Some(channel),
            Err(err) => {
                errors.insert("channel", err.to_string());
                None
            }
        };
        let version = self.version.unwrap_or_default();
        match Version::parse(&version) {
            Ok(_) if version.len() > 64 => {
                errors.insert("version", "must be at most 64 characters".into());
            }
            Err(err) => {
                errors.insert(
                    "version",
                    format!("{version:?} is not a semantic version such as 1.2.3: {err}"),
                );
            }
            Ok(parsed) if !parsed.build.is_empty() => {
                errors.insert("version", "must not carry build metadata (+...)".into());
            }
            Ok(parsed) if !parsed.pre.is_empty() && channel == Some(Channel::Stable) => {
                errors.insert(
                    "version",
                    format!("{version} is a pre-release; publish it on the beta channel"),
                );
            }
            Ok(_) => {}
        }
        let notes = self.notes.unwrap_or_default();
        if notes.chars().count() > 20_000 {
            errors.insert("notes", "must be at most 20000 characters".into());
        }
        let pub_date = match self.pub_date {
            None => Some(OffsetDateTime::now_utc()),
            Some(text) => {
                match OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339) {
                    Ok(date) => Some(date),
                    Err(err) => {
                        errors.insert(
                            "pub_date",
                            format!("{text:?} is not an RFC 3339 time: {err}"),
                        );
                        None
                    }
                }
            }
        };
        let rollout_percent = rollout_percent(self.rollout_percent.unwrap_or(100));
        if rollout_percent.is_none() {
            errors.insert("rollout_percent", "must be between 0 and 100".into());
        }
        let mut artifacts = self.artifacts.unwrap_or_default();
        if artifacts.is_empty() {
            errors.insert("artifacts", "at least one artifact is required".into());
        }
        for (index, artifact) in artifacts.iter().enumerate() {
            if let Some(problem) = artifact_problem(artifact, policy, &version) {
                errors.insert(
                    "artifacts",
                    format!(
                        "artifact {index} ({} {} {}): {problem}",
                        artifact.target, artifact.arch, artifact.bundle_type
                    ),
                );
                break;
            }
        }
        artifacts.sort();
        if artifacts.windows(2).any(|pair| {
            (&pair[0].target, &pair[0].arch, &pair[0].bundle_type)
                == (&pair[1].target, &pair[1].arch, &pair[1].bundle_type)
        }) {
            errors.insert(
                "artifacts",
                "two artifacts for the same target, arch and bundle type".into(),
            );
        }
        match (errors.is_empty(), channel, pub_date, rollout_percent) {
            (true, Some(channel), Some(pub_date), Some(rollout_percent)) => Ok(Published {
                version,
                channel,
                notes,
                pub_date,
                rollout_percent,
                halted: false,
                artifacts,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

fn artifact_problem(artifact: &Artifact, policy: &PublishPolicy, version: &str) -> Option<String> {
    if let Some(message) = unknown("target", &artifact.target, TARGETS)
        .or_else(|| unknown("arch", &artifact.arch, ARCHES))
    {
        return Some(message);
    }
    if !artifact.bundle_type.is_empty()
        && let Some(message) = unknown("bundle_type", &artifact.bundle_type, BUNDLE_TYPES)
    {
        return Some(format!("{message} or leave it empty"));
    }
    let http_allowed = policy.allow_http_downloads && artifact.url.starts_with("http://");
    if !(artifact.url.starts_with("https://") || http_allowed) {
        return Some(format!(
            "url {:?} must be https:// (the updater downloads over HTTPS only)",
            artifact.url
        ));
    }
    if artifact.signature.trim().is_empty() {
        return Some("signature is empty: sign the bundle with `cargo xtask sign`".into());
    }
    policy.signature_problem(&artifact.signature, version)
}

async fn publish_release(
    State(state): State<AppState>,
    body: Result<Json<PublishInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    let policy = state.publish_policy();
    if policy.key.is_none() {
        return Err(ApiError::Disabled(
            "publishing is off: start app-web with the product's updater public key \
             (--updater-public-key, APP_WEB_UPDATER_PUBLIC_KEY), which every artifact's \
             signature must name"
                .into(),
        ));
    }
    let release =
        read_json(body, "a release: version, channel, notes, artifacts")?.validate(policy)?;
    let pool = state.pool()?;
    let outcome = store::publish(pool, &release).await?;
    state.releases().clear();
    let stored = store::find(pool, &release.version)
        .await?
        .ok_or(ApiError::NotFound)?;
    tracing::info!(version = %release.version, channel = %release.channel, ?outcome, "release published");
    let status = match outcome {
        Publication::Created => StatusCode::CREATED,
        Publication::AlreadyPublished => StatusCode::OK,
    };
    Ok((status, Json(stored)).into_response())
}

async fn list_releases(State(state): State<AppState>) -> Result<Json<Vec<Published>>, ApiError> {
    Ok(Json(store::list(state.pool()?).await?))
}

async fn get_release(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> Result<Json<Published>, ApiError> {
    store::find(state.pool()?, &version)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound)
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutChange {
    rollout_percent: Option<i64>,
    halted: Option<bool>,
}

/// Raises or lowers the rollout, halts or resumes a release.
async fn change_release(
    State(state): State<AppState>,
    Path(version): Path<String>,
    body: Result<Json<RolloutChange>, JsonRejection>,
) -> Result<Json<Published>, ApiError> {
    let change = read_json(body, "an object with rollout_percent and/or halted")?;
    if change.rollout_percent.is_none() && change.halted.is_none() {
        return Err(bad(
            "rollout_percent",
            "give rollout_percent (0 to 100), halted (true or false), or both".into(),
        ));
    }
    let percent = change
        .rollout_percent
        .map(|value| {
            rollout_percent(value)
                .ok_or_else(|| ApiError::invalid("rollout_percent", "must be between 0 and 100"))
        })
        .transpose()?;
    let changed = store::change_rollout(state.pool()?, &version, percent, change.halted)
        .await?
        .ok_or(ApiError::NotFound)?;
    state.releases().clear();
    tracing::info!(
        version = %version,
        rollout_percent = changed.rollout_percent,
        halted = changed.halted,
        "rollout changed"
    );
    Ok(Json(changed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(version: &str, channel: &str) -> PublishInput {
        PublishInput {
            version: Some(version.into()),
            channel: Some(channel.into()),
            notes: None,
            pub_date: None,
            rollout_percent: None,
            artifacts: Some(vec![Artifact {
                target: "linux".into(),
                arch: "x86_64".into(),
                bundle_type: "deb".into(),
                url: "https://downloads.test/app_1.0.0_amd64.deb".into(),
                signature: "c2lnbmF0dXJl".into(),
            }]),
        }
    }

    fn no_key() -> PublishPolicy {
        PublishPolicy {
            key: None,
            allow_http_downloads: false,
        }
    }

    /// A Tauri-format key pair: the policy holding its public key, and a signer of data for a
    /// version.
    fn keyed() -> (PublishPolicy, impl Fn(&str) -> String) {
        use base64::Engine;
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let public =
            base64::engine::general_purpose::STANDARD.encode(pair.pk.to_box().unwrap().to_string());
        let policy = PublishPolicy::from_config(&super::super::config::UpdatesConfig {
            updater_public_key: Some(public),
            allow_http_downloads: false,
        })
        .unwrap();
        let sign = move |version: &str| {
            let signature = minisign::sign(
                None,
                &pair.sk,
                std::io::Cursor::new(b"bundle"),
                Some(&format!("timestamp:1\tfile:app.deb\tversion:{version}")),
                Some("signature from tauri secret key"),
            )
            .unwrap();
            base64::engine::general_purpose::STANDARD.encode(signature.to_string())
        };
        (policy, sign)
    }

    #[test]
    fn publishing_refuses_plain_http_and_signatures_not_by_the_updater_key() {
        let (policy, sign) = keyed();
        let (_, other_key) = keyed();
        let with = |url: &str, signature: String| {
            let mut release = input("1.0.0", "stable");
            let artifact = &mut release.artifacts.as_mut().unwrap()[0];
            artifact.url = url.into();
            artifact.signature = signature;
            release
        };
        let https = "https://downloads.test/app_1.0.0_amd64.deb";
        assert!(with(https, sign("1.0.0")).validate(&policy).is_ok());

        let errors = fields(
            with("http://downloads.test/app_1.0.0_amd64.deb", sign("1.0.0"))
                .validate(&policy)
                .unwrap_err(),
        );
        assert!(
            errors["artifacts"].contains("artifact 0 (linux x86_64 deb)")
                && errors["artifacts"].contains("must be https://"),
            "{errors:?}"
        );
        let forged = PublishPolicy::key_id_only_forgery(&sign("1.0.0"));
        let errors = fields(with(https, forged).validate(&policy).unwrap_err());
        assert!(
            errors["artifacts"].contains("not one the updater key made"),
            "{errors:?}"
        );
        let errors = fields(
            with(https, other_key("1.0.0"))
                .validate(&policy)
                .unwrap_err(),
        );
        assert!(
            errors["artifacts"].contains("another key than the updater public key"),
            "{errors:?}"
        );
        let errors = fields(
            with(https, "c2lnbmF0dXJl".into())
                .validate(&policy)
                .unwrap_err(),
        );
        assert!(
            errors["artifacts"].contains("not a minisign signature"),
            "{errors:?}"
        );
        let errors = fields(
            with(https, "not base64!".into())
                .validate(&policy)
                .unwrap_err(),
        );
        assert!(errors["artifacts"].contains("not base64"), "{errors:?}");
        let errors = fields(with(https, sign("0.9.0")).validate(&policy).unwrap_err());
        assert!(
            errors["artifacts"].contains("made for version 0.9.0, not 1.0.0"),
            "{errors:?}"
        );
        // Tests on loopback may allow plain HTTP explicitly.
        let loopback = PublishPolicy {
            allow_http_downloads: true,
            ..policy
        };
        assert!(
            with("http://127.0.0.1:9/app.deb", sign("1.0.0"))
                .validate(&loopback)
                .is_ok()
        );
        // A key that is not one is refused at start.
        let bad = PublishPolicy::from_config(&super::super::config::UpdatesConfig {
            updater_public_key: Some("bm90IGEga2V5".into()),
            allow_http_downloads: false,
        });
        assert!(bad.is_err());
    }

    #[test]
    fn the_check_query_takes_each_known_key_once_and_nothing_else() {
        assert_eq!(
            CheckQuery::parse(Some("bundle_type=deb&install_id=abcdefgh12")).unwrap(),
            CheckQuery {
                bundle_type: Some("deb".into()),
                install_id: Some("abcdefgh12".into()),
            }
        );
        assert_eq!(CheckQuery::parse(None).unwrap(), CheckQuery::default());
        for (query, named) in [
            (
                "BUNDLE_TYPE=deb&bundle_type=rpm",
                "unknown query parameter \"BUNDLE_TYPE\"",
            ),
            (
                "bundle_type=deb&bundle_type=rpm",
                "bundle_type is given more than once",
            ),
            (
                "bundle%5Ftype=deb&bundle_type=rpm",
                "unknown query parameter \"bundle%5Ftype\"",
            ),
            (
                "bundle%5Ftype=appimage",
                "unknown query parameter \"bundle%5Ftype\"",
            ),
            (
                "install_id=a&install_id=b",
                "install_id is given more than once",
            ),
            ("target=windows", "unknown query parameter \"target\""),
        ] {
            match CheckQuery::parse(Some(query)) {
                Err(ApiError::BadRequest { message, .. }) => {
                    assert!(message.contains(named), "{query}: {message}")
                }
                other => panic!("{query}: {other:?}"),
            }
        }
    }

    fn fields(err: ApiError) -> BTreeMap<&'static str, String> {
        match err {
            ApiError::Validation(fields) => fields,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_valid_release_passes_and_bad_fields_are_named() {
        assert!(input("1.0.0", "stable").validate(&no_key()).is_ok());
        assert!(input("1.1.0-beta.1", "beta").validate(&no_key()).is_ok());
        let errors = fields(
            input("1.1.0-beta.1", "stable")
                .validate(&no_key())
                .unwrap_err(),
        );
        assert!(errors["version"].contains("beta channel"), "{errors:?}");
        let long = format!("1.0.0-{}", "a".repeat(64));
        let errors = fields(input(&long, "beta").validate(&no_key()).unwrap_err());
        assert!(errors["version"].contains("at most 64"), "{errors:?}");
        let errors = fields(input("one", "nightly").validate(&no_key()).unwrap_err());
        assert!(errors.contains_key("version") && errors.contains_key("channel"));

        let mut bad_artifact = input("1.0.0", "stable");
        bad_artifact.artifacts.as_mut().unwrap()[0].arch = "sparc".into();
        let errors = fields(bad_artifact.validate(&no_key()).unwrap_err());
        assert!(
            errors["artifacts"].contains("unknown arch \"sparc\""),
            "{errors:?}"
        );

        let mut twice = input("1.0.0", "stable");
        let copy = twice.artifacts.as_ref().unwrap()[0].clone();
        twice.artifacts.as_mut().unwrap().push(copy);
        let errors = fields(twice.validate(&no_key()).unwrap_err());
        assert!(errors["artifacts"].contains("same target"), "{errors:?}");

        let mut percent = input("1.0.0", "stable");
        percent.rollout_percent = Some(101);
        assert!(fields(percent.validate(&no_key()).unwrap_err()).contains_key("rollout_percent"));
    }

    #[test]
    fn install_ids_are_random_tokens() {
        assert!(valid_install_id("5f0c7c1e-8a1b-4f7e-9d3a-0b6e2a1c9d44"));
        assert!(!valid_install_id("short"));
        assert!(!valid_install_id("has spaces in it"));
        assert!(!valid_install_id(&"x".repeat(129)));
    }
}
