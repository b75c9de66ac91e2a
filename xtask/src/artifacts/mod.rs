//! What a build produces and how it is described: the supported targets (each with its OS),
//! the kinds of artifact, the dist manifest, SHA256SUMS, and the check that a dist folder is
//! whole. dist writes them; sign, docker, release and bench read them. This module uses none of
//! those.

pub mod checksums;
pub mod manifest;
pub mod targets;
pub mod verify;

#[cfg(test)]
mod tests {
    /// The model stays a leaf: the commands that make and read artifacts depend on it, never
    /// the other way round.
    #[test]
    fn the_artifacts_model_uses_none_of_the_commands_built_on_it() {
        let folder = crate::path::project_root().join("xtask/src/artifacts");
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for user in ["dist", "sign", "docker", "release", "bench"] {
                for pattern in [format!("crate::{user}::"), format!("crate::{{{user}")] {
                    assert!(
                        !text.contains(&pattern),
                        "{} uses {pattern}: artifacts/ must not depend on the commands built on it",
                        path.display()
                    );
                }
            }
        }
    }
}
