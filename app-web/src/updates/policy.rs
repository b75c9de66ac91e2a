//! Which release an update check is offered, as pure functions over the published releases, so
//! the rules are tested apart from PostgreSQL and HTTP:
//!
//! - Channels: a stable client receives stable releases; a beta client receives beta releases
//!   and stable ones, whichever is newest.
//! - Staged rollout: each release reaches a percentage of installs. An install's bucket is a
//!   hash of its random install id and the release's version, so raising the percentage keeps
//!   every install that already had the release, and each release samples its own first
//!   installs.
//! - Halting a release stops offering it. Installs that already took it are offered a newer
//!   release when one reaches them, else the newest good release below it: the one downgrade
//!   the server ever offers.

use std::fmt;
use std::str::FromStr;

use semver::Version;
use sha2::{Digest, Sha256};

/// A release channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    Stable,
    Beta,
}

impl Channel {
    /// Whether a client on this channel receives releases published on `published`.
    pub fn receives(self, published: Channel) -> bool {
        matches!(
            (self, published),
            (_, Channel::Stable) | (Channel::Beta, Channel::Beta)
        )
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Channel::Stable => "stable",
            Channel::Beta => "beta",
        })
    }
}

/// A channel name that is neither `stable` nor `beta`.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("unknown channel {0:?}: use stable or beta")]
pub struct UnknownChannel(pub String);

impl FromStr for Channel {
    type Err = UnknownChannel;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "stable" => Ok(Channel::Stable),
            "beta" => Ok(Channel::Beta),
            other => Err(UnknownChannel(other.to_owned())),
        }
    }
}

/// Whether a release is being offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    Active,
    /// Offered to nobody; installs that took it are moved on or back.
    Halted,
}

/// A published release, as far as the offer depends on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Release {
    pub version: Version,
    pub channel: Channel,
    /// Share of installs that are offered it, 0 to 100.
    pub rollout_percent: u8,
    pub state: RolloutState,
}

/// What an update check gets.
#[derive(Debug, PartialEq)]
pub enum Offer<'a> {
    /// A newer release.
    Update(&'a Release),
    /// An older release, because the client runs a halted one.
    Rollback(&'a Release),
    /// Nothing: the client stays where it is.
    Nothing,
}

/// Buckets per install: a rollout percentage covers `percent * 100` of them.
const BUCKETS: u64 = 10_000;

/// The install's bucket for `version`, 0 to 9 999.
pub fn bucket(install_id: &str, version: &Version) -> u64 {
    let digest = Sha256::new()
        .chain_update(install_id.as_bytes())
        .chain_update([0])
        .chain_update(version.to_string().as_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % BUCKETS
}

/// Whether the install is among the release's rollout percentage. A check without an install
/// id is only offered releases that reach everyone.
pub fn in_rollout(release: &Release, install_id: Option<&str>) -> bool {
    match install_id {
        Some(id) => {
            let covered = u64::from(release.rollout_percent.min(100)) * (BUCKETS / 100);
            bucket(id, &release.version) < covered
        }
        None => release.rollout_percent >= 100,
    }
}

/// The offer for an install on `channel` running `current`, among `releases` (those with an
/// artifact for the install's platform).
pub fn offer<'a>(
    releases: &'a [Release],
    channel: Channel,
    current: &Version,
    install_id: Option<&str>,
) -> Offer<'a> {
    let receivable = offered_on(releases, channel);
    let newest = receivable
        .clone()
        .filter(|release| release.version > *current && in_rollout(release, install_id))
        .max_by(|a, b| a.version.cmp(&b.version));
    if let Some(release) = newest {
        return Offer::Update(release);
    }
    let runs_halted = releases
        .iter()
        .any(|release| release.version == *current && release.state == RolloutState::Halted);
    if runs_halted {
        let previous = receivable
            .filter(|release| release.version < *current)
            .max_by(|a, b| a.version.cmp(&b.version));
        if let Some(release) = previous {
            return Offer::Rollback(release);
        }
    }
    Offer::Nothing
}

/// Whether the offer for `current` on `channel` can differ between installs: a newer release
/// the channel receives is part-way through its rollout. When it cannot, one answer serves
/// every install and caches may share it.
pub fn depends_on_install(releases: &[Release], channel: Channel, current: &Version) -> bool {
    offered_on(releases, channel)
        .any(|release| release.version > *current && release.rollout_percent < 100)
}

/// The releases a client on `channel` may be offered: published on a channel it receives, and
/// not halted.
fn offered_on(releases: &[Release], channel: Channel) -> impl Iterator<Item = &Release> + Clone {
    releases.iter().filter(move |release| {
        channel.receives(release.channel) && release.state == RolloutState::Active
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn release(version: &str, channel: Channel, percent: u8) -> Release {
        Release {
            version: version.parse().unwrap(),
            channel,
            rollout_percent: percent,
            state: RolloutState::Active,
        }
    }

    fn version(text: &str) -> Version {
        text.parse().unwrap()
    }

    /// What a stable install at `current` is offered.
    fn on_stable(releases: &[Release], current: &str) -> Option<String> {
        offered(offer(
            releases,
            Channel::Stable,
            &version(current),
            Some("id"),
        ))
    }

    fn offered(offer: Offer<'_>) -> Option<String> {
        match offer {
            Offer::Update(release) => Some(format!("update {}", release.version)),
            Offer::Rollback(release) => Some(format!("rollback {}", release.version)),
            Offer::Nothing => None,
        }
    }

    #[test]
    fn channels_parse_and_name_the_choices_when_unknown() {
        assert_eq!("stable".parse(), Ok(Channel::Stable));
        assert_eq!("beta".parse(), Ok(Channel::Beta));
        let err = "nightly".parse::<Channel>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown channel \"nightly\": use stable or beta"
        );
    }

    #[test]
    fn stable_sees_only_stable_and_beta_sees_the_newest_of_both() {
        let releases = [
            release("1.1.0", Channel::Stable, 100),
            release("1.2.0-beta.1", Channel::Beta, 100),
        ];
        let current = version("1.0.0");
        assert_eq!(
            offered(offer(&releases, Channel::Stable, &current, Some("id"))).as_deref(),
            Some("update 1.1.0")
        );
        assert_eq!(
            offered(offer(&releases, Channel::Beta, &current, Some("id"))).as_deref(),
            Some("update 1.2.0-beta.1")
        );
        // The stable 1.2.0 is newer than its beta, and beta clients receive it.
        let releases = [
            release("1.2.0-beta.1", Channel::Beta, 100),
            release("1.2.0", Channel::Stable, 100),
        ];
        assert_eq!(
            offered(offer(
                &releases,
                Channel::Beta,
                &version("1.2.0-beta.1"),
                Some("id")
            ))
            .as_deref(),
            Some("update 1.2.0")
        );
    }

    #[test]
    fn nothing_newer_means_nothing_and_no_downgrade_is_offered() {
        let releases = [
            release("1.0.0", Channel::Stable, 100),
            release("1.1.0", Channel::Stable, 100),
        ];
        for current in ["1.1.0", "1.2.0", "2.0.0-beta.1"] {
            assert_eq!(
                offer(&releases, Channel::Beta, &version(current), Some("id")),
                Offer::Nothing,
                "{current}"
            );
        }
    }

    /// Random install ids as the desktop app makes them (UUIDv4), from a fixed seed so every
    /// run checks the same ids.
    fn install_ids(seed: u64, count: usize) -> Vec<String> {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        (0..count)
            .map(|_| {
                uuid::Builder::from_random_bytes(rng.random())
                    .into_uuid()
                    .to_string()
            })
            .collect()
    }

    #[test]
    fn ten_thousand_random_installs_land_within_two_points_of_the_rollout() {
        let ids = install_ids(1, 10_000);
        for percent in [1u8, 5, 25, 50, 90] {
            let release = release("2.0.0", Channel::Stable, percent);
            let reached = ids
                .iter()
                .filter(|id| in_rollout(&release, Some(id.as_str())))
                .count();
            let share = reached as f64 / 100.0;
            assert!(
                (share - f64::from(percent)).abs() <= 2.0,
                "{percent}% reached {share}%"
            );
        }
        let nobody = release("2.0.0", Channel::Stable, 0);
        let everybody = release("2.0.0", Channel::Stable, 100);
        for id in install_ids(2, 1000) {
            assert!(!in_rollout(&nobody, Some(&id)));
            assert!(in_rollout(&everybody, Some(&id)));
        }
    }

    #[test]
    fn only_a_partial_rollout_ahead_makes_the_offer_depend_on_the_install() {
        let mut releases = vec![
            release("1.0.0", Channel::Stable, 100),
            release("1.1.0", Channel::Stable, 100),
            release("1.2.0-beta.1", Channel::Beta, 20),
        ];
        let stable = |releases: &[Release], current: &str| {
            depends_on_install(releases, Channel::Stable, &version(current))
        };
        assert!(!stable(&releases, "1.0.0"));
        assert!(depends_on_install(
            &releases,
            Channel::Beta,
            &version("1.1.0")
        ));
        releases[1].rollout_percent = 40;
        assert!(stable(&releases, "1.0.0"));
        assert!(!stable(&releases, "1.1.0"), "nothing newer is rolling out");
        releases[1].state = RolloutState::Halted;
        assert!(
            !stable(&releases, "1.0.0"),
            "a halted release is offered to nobody"
        );
    }

    #[test]
    fn a_check_without_an_install_id_gets_only_full_rollouts() {
        let partial = release("2.0.0", Channel::Stable, 99);
        let full = release("2.0.0", Channel::Stable, 100);
        assert!(!in_rollout(&partial, None));
        assert!(in_rollout(&full, None));
    }

    #[test]
    fn raising_the_rollout_keeps_every_install_that_had_it() {
        let ids = install_ids(3, 2000);
        let mut release = release("2.0.0", Channel::Stable, 10);
        let first: Vec<&String> = ids
            .iter()
            .filter(|id| in_rollout(&release, Some(id.as_str())))
            .collect();
        release.rollout_percent = 30;
        assert!(
            first
                .iter()
                .all(|id| in_rollout(&release, Some(id.as_str())))
        );
        // Another release draws its own first installs.
        let other = Release {
            version: version("2.1.0"),
            ..release.clone()
        };
        let same = ids
            .iter()
            .filter(|id| bucket(id, &release.version) == bucket(id, &other.version))
            .count();
        assert!(
            same < 20,
            "{same} installs share their bucket across releases"
        );
    }

    #[test]
    fn a_halted_release_is_offered_to_nobody_and_its_installs_go_back_or_forward() {
        let mut releases = vec![
            release("1.0.0", Channel::Stable, 100),
            release("1.1.0", Channel::Stable, 100),
        ];
        releases[1].state = RolloutState::Halted;
        assert_eq!(on_stable(&releases, "1.0.0"), None);
        assert_eq!(
            on_stable(&releases, "1.1.0").as_deref(),
            Some("rollback 1.0.0")
        );
        // A fixed release that reaches the install moves it forward instead.
        releases.push(release("1.1.1", Channel::Stable, 100));
        assert_eq!(
            on_stable(&releases, "1.1.0").as_deref(),
            Some("update 1.1.1")
        );
        // Resumed, it is offered again.
        releases.pop();
        releases[1].state = RolloutState::Active;
        assert_eq!(
            on_stable(&releases, "1.0.0").as_deref(),
            Some("update 1.1.0")
        );
        assert_eq!(on_stable(&releases, "1.1.0"), None);
    }

    #[test]
    fn a_halted_first_release_has_nothing_to_roll_back_to() {
        let mut releases = vec![release("1.0.0", Channel::Stable, 100)];
        releases[0].state = RolloutState::Halted;
        assert_eq!(on_stable(&releases, "1.0.0"), None);
        // A beta release is never where a stable install is rolled back to.
        releases.insert(0, release("0.9.0-beta.1", Channel::Beta, 100));
        assert_eq!(on_stable(&releases, "1.0.0"), None);
    }
}
