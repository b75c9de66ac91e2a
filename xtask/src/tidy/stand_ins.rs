//! The stand-ins (`cargo xtask docker stand-ins`) held to the compose file: every third-party
//! image compose.yaml pins has a stand-in or is named as not packaged by Debian, and what each
//! stand-in says it honours of the official image's contract covers every setting compose gives
//! the service that the image itself reads.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::{project_root, read};
use crate::docker::stand_ins::{
    DEBIAN_SLIM, NOT_PACKAGED, STAND_INS, base_image_default, missing_dockerfiles, pinned_images,
};

fn compose() -> Yaml {
    let text = read("docker/compose.yaml").expect("read docker/compose.yaml");
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

/// The text of every file under the project folders `service` mounts (`./x` or `../x`).
fn mounted_project_files(service: &Yaml) -> String {
    let mut text = String::new();
    for volume in service["volumes"].as_vec().into_iter().flatten() {
        let Some(source) = volume.as_str().and_then(|spec| spec.split(':').next()) else {
            continue;
        };
        if !(source.starts_with("./") || source.starts_with("../")) {
            continue;
        }
        let path = project_root().join("docker").join(source);
        append_files(&path, &mut text);
    }
    text
}

fn append_files(path: &Path, text: &mut String) {
    if path.is_dir() {
        for entry in std::fs::read_dir(path).unwrap() {
            append_files(&entry.unwrap().path(), text);
        }
    } else if let Ok(content) = std::fs::read_to_string(path) {
        text.push_str(&content);
    }
}

/// The keys of a service's `environment` mapping.
fn environment_keys(service: &Yaml) -> Vec<String> {
    service["environment"]
        .as_hash()
        .map(|hash| {
            hash.keys()
                .filter_map(|key| key.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn yaml_text(node: &Yaml) -> String {
    match node {
        Yaml::String(text) => text.clone(),
        Yaml::Array(items) => items.iter().map(yaml_text).collect::<Vec<_>>().join(" "),
        _ => String::new(),
    }
}

#[test]
fn every_pinned_third_party_image_has_a_stand_in_or_is_named_as_not_packaged() {
    let compose = compose();
    let pinned = pinned_images(&read("docker/compose.yaml").unwrap()).unwrap();
    let services = compose["services"].as_hash().unwrap();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let image = pinned.get(name).map(String::as_str).unwrap_or("");
        let third_party = !image.is_empty()
            && !image.starts_with("${")
            && matches!(service["build"], Yaml::BadValue);
        let stood_in = STAND_INS.iter().any(|stand_in| stand_in.service == name);
        let not_packaged = NOT_PACKAGED.iter().any(|(service, _)| *service == name);
        assert_eq!(
            third_party,
            stood_in || not_packaged,
            "{name} ({image}): a third-party image needs a stand-in in xtask/src/docker/stand_ins.rs or a place in NOT_PACKAGED, and nothing else does"
        );
        assert!(!(stood_in && not_packaged), "{name} is listed twice");
        if not_packaged {
            let profiles = yaml_text(&service["profiles"]);
            assert!(
                !profiles.split(' ').any(|profile| profile == "metrics"),
                "{name} has no stand-in, so the metrics profile the tests run must leave it out"
            );
        }
    }
    let missing = missing_dockerfiles(&project_root().join("docker/stand-ins"));
    assert!(missing.is_empty(), "docker/stand-ins lacks {missing:?}");
    let nginx = read("docker/nginx.Dockerfile").unwrap();
    let slim = base_image_default(&nginx).expect("nginx.Dockerfile's BASE_IMAGE default");
    assert!(slim.starts_with("debian:bookworm-"), "{slim}");
}

#[test]
fn each_stand_in_covers_what_compose_asks_of_its_image() {
    let compose = compose();
    let mut listing = String::new();
    for stand_in in std::iter::once(&DEBIAN_SLIM).chain(STAND_INS) {
        let dockerfile = read(&format!("docker/stand-ins/{}", stand_in.dockerfile)).unwrap();
        assert!(
            dockerfile.contains("\nARG BASE_IMAGE\n") && dockerfile.contains("FROM ${BASE_IMAGE}"),
            "{}: builds on the base `cargo xtask docker stand-ins` passes, with no default",
            stand_in.dockerfile
        );
        listing.push_str(&format!(
            "\n{} ({}):\n",
            stand_in.service, stand_in.dockerfile
        ));
        for item in stand_in.environment.iter().chain(stand_in.contract) {
            listing.push_str(&format!("  - {item}\n"));
        }
        if stand_in.dockerfile == DEBIAN_SLIM.dockerfile {
            continue;
        }
        let service = &compose["services"][stand_in.service];
        let entrypoint = read(&format!(
            "docker/stand-ins/{}-entrypoint.sh",
            stand_in.service
        ))
        .unwrap_or_default();
        // Every variable the stand-in claims is one compose sets, and the stand-in mentions it.
        let keys = environment_keys(service);
        for variable in stand_in.environment {
            assert!(
                keys.iter().any(|key| key == variable),
                "{}: {variable} is listed but compose does not set it",
                stand_in.service
            );
            assert!(
                dockerfile.contains(variable) || entrypoint.contains(variable),
                "{}: {variable} is listed but neither {} nor its entrypoint mentions it",
                stand_in.service,
                stand_in.dockerfile
            );
        }
        // Every variable compose sets is the image's (listed) or read by the project's own
        // files: the service's command or the folders it mounts.
        let own = format!(
            "{} {} {}",
            yaml_text(&service["entrypoint"]),
            yaml_text(&service["command"]),
            mounted_project_files(service)
        );
        for key in keys {
            assert!(
                stand_in.environment.contains(&key.as_str()) || own.contains(&key),
                "{}: compose sets {key}, which no project file reads, so the image must: list it in the stand-in's environment and honour it",
                stand_in.service
            );
        }
    }
    for (service, reason) in NOT_PACKAGED {
        listing.push_str(&format!("\n{service}: no stand-in ({reason})\n"));
    }
    eprintln!("the stand-ins and what they honour:{listing}");
}
