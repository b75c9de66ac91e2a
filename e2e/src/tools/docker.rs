//! Docker helpers for the image and deploy tests: the client, the test base image, and images
//! removed on drop.

use std::path::Path;
use std::process::{Command, Output};

use local_servers::docker_client;

use super::{assert_success, xtask};

pub const BASE_IMAGE: &str = "app-base/debian-cc:bookworm";

pub fn docker(args: &[&str]) -> Output {
    Command::new(docker_client())
        .args(args)
        .output()
        .expect("run the docker client")
}

pub fn docker_text(args: &[&str]) -> String {
    let output = docker(args);
    assert_success(&output, &format!("docker {}", args.join(" ")));
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Removes the images named on drop, so a failed test leaves nothing behind.
pub struct Images(pub Vec<String>);

impl Drop for Images {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = docker(&["rmi", "--force", image]);
        }
    }
}

pub fn make_base() {
    assert_success(
        &xtask(&["docker", "base", "--tag", BASE_IMAGE]),
        "xtask docker base",
    );
}

/// `cargo xtask docker build` of the app-web image from `dist` on the test base.
pub fn build_image(dist: &Path, repository: &str) {
    let built = xtask(&[
        "docker",
        "build",
        "--dist",
        dist.to_str().unwrap(),
        "--base-image",
        BASE_IMAGE,
        "--repository",
        repository,
    ]);
    assert_success(&built, "xtask docker build");
}
