//! `dist-manifest.json`: what a dist run produced, for people, workflows and the updater.
//! Its JSON Schema is `xtask/dist-manifest.schema.json`.

use std::path::Path;

use anyhow::Context;
use serde::{Deserialize, Serialize};

use super::targets::ArtifactKind;

pub const FILE_NAME: &str = "dist-manifest.json";
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Names the command that writes this file.
    pub generated_by: String,
    pub format_version: u32,
    pub product: String,
    pub version: String,
    pub commit: String,
    pub source_date_epoch: u64,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Artifact {
    pub file: String,
    pub kind: ArtifactKind,
    pub target: String,
    pub size: u64,
    pub sha256: String,
}

impl Manifest {
    pub fn new(product: &str, version: &str, commit: &str, source_date_epoch: u64) -> Self {
        Self {
            generated_by: "cargo xtask dist".to_owned(),
            format_version: FORMAT_VERSION,
            product: product.to_owned(),
            version: version.to_owned(),
            commit: commit.to_owned(),
            source_date_epoch,
            artifacts: Vec::new(),
        }
    }

    /// The source date as RFC 3339 in UTC: the image's `created` label and the release's
    /// publication date, the same on every run from the same commit.
    pub fn source_date(&self) -> anyhow::Result<String> {
        let epoch = self.source_date_epoch;
        let time = time::OffsetDateTime::from_unix_timestamp(epoch as i64)
            .with_context(|| format!("{epoch} is not a representable Unix time"))?;
        Ok(time.format(&time::format_description::well_known::Rfc3339)?)
    }

    pub fn to_json(&self) -> anyhow::Result<String> {
        let mut text = serde_json::to_string_pretty(self).context("serialise the manifest")?;
        text.push('\n');
        Ok(text)
    }

    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid dist manifest", path.display()))
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;

    pub fn sample() -> Manifest {
        let mut manifest = Manifest::new(
            "app",
            "1.2.3",
            "0123456789abcdef0123456789abcdef01234567",
            1_700_000_000,
        );
        manifest.artifacts.push(Artifact {
            file: "app-web-1.2.3-x86_64-unknown-linux-gnu.tar.gz".into(),
            kind: ArtifactKind::ServerArchive,
            target: "x86_64-unknown-linux-gnu".into(),
            size: 4_321_000,
            sha256: "ab".repeat(32),
        });
        manifest.artifacts.push(Artifact {
            file: "app-desktop_1.2.3_amd64.deb".into(),
            kind: ArtifactKind::Deb,
            target: "x86_64-unknown-linux-gnu".into(),
            size: 3_210_000,
            sha256: "cd".repeat(32),
        });
        manifest
    }

    fn schema() -> jsonschema::Validator {
        let path = crate::path::manifest_schema();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|err| panic!("read {}: {err}", path.display()));
        let schema: serde_json::Value = serde_json::from_str(&text).expect("the schema is JSON");
        jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema")
    }

    /// Every error the schema finds in `value`, as text.
    pub fn schema_errors(value: &serde_json::Value) -> Vec<String> {
        schema()
            .iter_errors(value)
            .map(|err| format!("{} at {}", err, err.instance_path()))
            .collect()
    }

    #[test]
    fn the_source_date_is_rfc3339_utc() {
        assert_eq!(sample().source_date().unwrap(), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn a_written_manifest_matches_the_schema() {
        let value: serde_json::Value = serde_json::from_str(&sample().to_json().unwrap()).unwrap();
        assert_eq!(schema_errors(&value), Vec::<String>::new());
    }

    #[test]
    fn the_schema_rejects_what_the_format_forbids() {
        let good: serde_json::Value = serde_json::from_str(&sample().to_json().unwrap()).unwrap();
        let mut unknown_kind = good.clone();
        unknown_kind["artifacts"][0]["kind"] = "tarball".into();
        let mut short_digest = good.clone();
        short_digest["artifacts"][1]["sha256"] = "abc".into();
        let mut no_version = good.clone();
        no_version.as_object_mut().unwrap().remove("version");
        let mut extra_field = good;
        extra_field["surprise"] = true.into();
        for (what, value) in [
            ("unknown kind", unknown_kind),
            ("short digest", short_digest),
            ("missing version", no_version),
            ("unknown field", extra_field),
        ] {
            assert!(
                !schema_errors(&value).is_empty(),
                "the schema accepted a manifest with a {what}"
            );
        }
    }

    #[test]
    fn every_artifact_kind_is_in_the_schema() {
        for kind in <ArtifactKind as clap::ValueEnum>::value_variants() {
            let mut manifest = sample();
            manifest.artifacts[0].kind = *kind;
            let value = serde_json::to_value(&manifest).unwrap();
            assert_eq!(schema_errors(&value), Vec::<String>::new(), "kind {kind}");
        }
    }

    #[test]
    fn reading_gives_back_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        std::fs::write(&path, sample().to_json().unwrap()).unwrap();
        assert_eq!(Manifest::read(&path).unwrap(), sample());
    }
}
