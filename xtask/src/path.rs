//! Every path xtask touches, rooted at the workspace root rather than the caller's directory.

use std::path::{Path, PathBuf};

/// The workspace root: the parent of the xtask crate.
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives one level below the workspace root")
        .to_path_buf()
}

pub fn workspace_manifest() -> PathBuf {
    project_root().join("Cargo.toml")
}

/// Cargo's target folder; `CARGO_TARGET_DIR` moves it, as it does for cargo itself.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// Where `cargo xtask dist` writes by default.
pub fn dist_dir() -> PathBuf {
    target_dir().join("dist")
}

/// Where cargo puts release binaries for `target` when it is passed as `--target`.
pub fn release_dir(target: &str) -> PathBuf {
    target_dir().join(target).join("release")
}

pub fn desktop_dir() -> PathBuf {
    project_root().join("app-desktop")
}

pub fn docker_dir() -> PathBuf {
    project_root().join("docker")
}

pub fn runtime_dockerfile() -> PathBuf {
    docker_dir().join("app-web.Dockerfile")
}

/// The Grafana dashboards `cargo xtask dashboards` writes.
pub fn dashboards_dir() -> PathBuf {
    docker_dir().join("grafana/dashboards")
}

pub fn nginx_dir() -> PathBuf {
    project_root().join("nginx")
}

/// `file` with `suffix` added to its whole name: `app.deb` and `.sig` make `app.deb.sig`.
pub fn with_suffix(file: &Path, suffix: &str) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

pub fn license() -> PathBuf {
    project_root().join("LICENSE")
}

pub fn web_example_config() -> PathBuf {
    project_root().join("app-web").join("app-web.example.env")
}

#[cfg(test)]
pub fn ci_script() -> PathBuf {
    project_root().join(".ci").join("run")
}

#[cfg(test)]
pub fn manifest_schema() -> PathBuf {
    project_root()
        .join("xtask")
        .join("dist-manifest.schema.json")
}
