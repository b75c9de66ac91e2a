//! Rules for the Dockerfiles in docker/: base images tagged (never `latest`) and overridable,
//! no downloads piped into a shell, a non-root user in the final stage (or a `# root:` line
//! saying why not); the runtime image also has a health check and the OCI labels, and the
//! source build uses the toolchain rust-toolchain.toml pins.

use super::compose::image_has_explicit_tag;
use super::{project_root, read};

/// One instruction, with continuation lines joined.
#[derive(Debug)]
struct Instruction {
    keyword: String,
    arguments: String,
}

fn instructions(text: &str) -> Vec<Instruction> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || (trimmed.is_empty() && current.is_empty()) {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(part) => {
                current.push_str(part);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (keyword, arguments) = line.split_once(char::is_whitespace).unwrap_or((&line, ""));
            Instruction {
                keyword: keyword.to_ascii_uppercase(),
                arguments: arguments.trim().to_owned(),
            }
        })
        .collect()
}

/// Every rule the Dockerfile `text` breaks; `runtime` adds the rules for a released image.
pub fn problems(text: &str, runtime: bool) -> Vec<String> {
    let instructions = instructions(text);
    let mut problems = Vec::new();
    let mut image_args = Vec::new();
    let mut stages = Vec::new();
    let mut user_in_stage: Option<String> = None;
    for instruction in &instructions {
        let arguments = instruction.arguments.as_str();
        match instruction.keyword.as_str() {
            "ARG" => {
                // An image argument without a default must be passed, so nothing unpinned is
                // implied.
                if !arguments.contains('=') && arguments.trim().ends_with("_IMAGE") {
                    image_args.push(arguments.trim().to_owned());
                }
                if let Some((name, default)) = arguments.split_once('=')
                    && name.ends_with("_IMAGE")
                {
                    let default = default.trim_matches('"');
                    if !image_has_explicit_tag(default) {
                        problems.push(format!(
                            "ARG {name} defaults to {default:?}, which names no tag or `latest`"
                        ));
                    }
                    image_args.push(name.to_owned());
                }
            }
            "FROM" => {
                let mut words = arguments
                    .split_whitespace()
                    .filter(|word| !word.starts_with("--"));
                let image = words.next().unwrap_or("");
                let from_arg = image
                    .strip_prefix("${")
                    .and_then(|rest| rest.strip_suffix('}'))
                    .is_some_and(|name| image_args.iter().any(|arg| arg == name));
                if !from_arg
                    && !stages.iter().any(|stage| stage == image)
                    && !image_has_explicit_tag(image)
                {
                    problems.push(format!("FROM {image} is neither a tagged image, an *_IMAGE argument, nor an earlier stage"));
                }
                if let (Some(as_word), Some(stage)) = (words.next(), words.next())
                    && as_word.eq_ignore_ascii_case("as")
                {
                    stages.push(stage.to_owned());
                }
                user_in_stage = None;
            }
            "USER" => user_in_stage = Some(arguments.to_owned()),
            "ADD" if arguments.contains("://") => {
                problems.push(format!(
                    "ADD {arguments}: download in a RUN with a checksum, or vendor it"
                ));
            }
            "RUN"
                if (arguments.contains("curl") || arguments.contains("wget"))
                    && arguments.contains("| sh") =>
            {
                problems.push("a download piped into a shell".to_owned());
            }
            _ => {}
        }
    }
    // A Dockerfile may run as root when a comment line starting `# root:` says why.
    let root_explained = text
        .lines()
        .any(|line| line.trim_start().starts_with("# root:"));
    match user_in_stage.as_deref() {
        None => problems.push("the final stage sets no USER".to_owned()),
        Some(_) if root_explained => {}
        Some(user)
            if user == "root"
                || user == "0"
                || user.starts_with("0:")
                || user.starts_with("root:") =>
        {
            problems.push(format!("the final stage runs as {user}"));
        }
        Some(_) => {}
    }
    if runtime {
        if !instructions.iter().any(|instruction| {
            instruction.keyword == "HEALTHCHECK" && instruction.arguments.contains("CMD")
        }) {
            problems.push("no HEALTHCHECK CMD".to_owned());
        }
        let labels: String = instructions
            .iter()
            .filter(|instruction| instruction.keyword == "LABEL")
            .map(|instruction| instruction.arguments.as_str())
            .collect();
        for label in ["version", "revision", "created", "source"] {
            if !labels.contains(&format!("org.opencontainers.image.{label}=")) {
                problems.push(format!("no org.opencontainers.image.{label} label"));
            }
        }
    }
    problems
}

fn toolchain_channel() -> String {
    let text = read("rust-toolchain.toml").expect("read rust-toolchain.toml");
    let toolchain: toml::Table = toml::from_str(&text).unwrap();
    toolchain["toolchain"]["channel"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn dockerfiles_follow_the_rules() {
    let dir = project_root().join("docker");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if !name.ends_with(".Dockerfile") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let problems = problems(&text, name == "app-web.Dockerfile");
        assert!(
            problems.is_empty(),
            "docker/{name}:\n  {}",
            problems.join("\n  ")
        );
        checked += 1;
    }
    assert!(
        checked >= 2,
        "expected the runtime and source Dockerfiles in docker/"
    );
}

#[test]
fn the_source_build_uses_the_pinned_toolchain() {
    let text = read("docker/app-web.source.Dockerfile").expect("read the source Dockerfile");
    let channel = toolchain_channel();
    assert!(
        text.contains(&format!("ARG RUST_IMAGE=rust:{channel}-")),
        "docker/app-web.source.Dockerfile must build with rust:{channel}, the toolchain rust-toolchain.toml pins"
    );
}

#[test]
fn the_rules_catch_what_they_name() {
    let bad = "ARG BASE_IMAGE=debian:latest\nFROM ${BASE_IMAGE}\nFROM ubuntu\nADD https://example.org/x /x\nRUN curl -fsSL https://example.org/i \\\n    | sh\nUSER root\n";
    let found = problems(bad, true);
    for expected in [
        "ARG BASE_IMAGE defaults to \"debian:latest\"",
        "FROM ubuntu is neither",
        "ADD https://example.org/x /x",
        "a download piped into a shell",
        "the final stage runs as root",
        "no HEALTHCHECK CMD",
        "no org.opencontainers.image.version label",
    ] {
        assert!(
            found.iter().any(|problem| problem.starts_with(expected)),
            "missing {expected:?} in {found:#?}"
        );
    }
    let good = "ARG BASE_IMAGE=gcr.io/distroless/cc-debian12:nonroot\nFROM rust:1.95.0-bookworm AS build\nFROM ${BASE_IMAGE}\nCOPY --from=build /a /a\nUSER 65532:65532\n";
    assert_eq!(problems(good, false), Vec::<String>::new());
    assert!(
        problems("FROM ${BASE_IMAGE}\nUSER 1\n", false)[0]
            .starts_with("FROM ${BASE_IMAGE} is neither")
    );
    let required =
        "ARG APP_IMAGE\nFROM ${APP_IMAGE} AS app\nFROM debian:12\nCOPY --from=app /a /a\nUSER 1\n";
    assert_eq!(problems(required, false), Vec::<String>::new());
    let explained =
        "FROM debian:12\n# root: it binds port 1 and drops privileges itself\nUSER root\n";
    assert_eq!(problems(explained, false), Vec::<String>::new());
}
