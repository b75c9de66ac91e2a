//! The shared UI (`ui/` at the workspace root): built into the binary, or read from a folder.

use std::borrow::Cow;
use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(rust_embed::RustEmbed)]
#[folder = "../ui"]
struct EmbeddedUi;

/// Where UI files come from.
pub enum UiSource {
    /// The copy compiled into the binary, so a release archive needs nothing beside it.
    Embedded,
    /// A folder on disk, for working on the UI without rebuilding.
    Folder(PathBuf),
}

impl UiSource {
    pub fn from_config(folder: Option<&Path>) -> anyhow::Result<Self> {
        match folder {
            None => Ok(Self::Embedded),
            Some(folder) => {
                let index = folder.join("index.html");
                anyhow::ensure!(
                    index.is_file(),
                    "UI folder {} has no index.html; point --ui-dir (APP_WEB_UI_DIR) at the ui/ folder or leave it unset to serve the built-in UI",
                    folder.display()
                );
                Ok(Self::Folder(folder.to_path_buf()))
            }
        }
    }

    /// Answers a GET for `path`: `/` means `index.html`; unknown files are 404.
    pub async fn respond(&self, path: &str, request_headers: &HeaderMap) -> Response {
        let relative = match path.trim_start_matches('/') {
            "" => "index.html",
            other => other,
        };
        // Embedded lookups are by exact name; for folders, refuse anything that could climb
        // out of the folder before touching the filesystem.
        if relative
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return StatusCode::NOT_FOUND.into_response();
        }
        let found = match self {
            Self::Embedded => EmbeddedUi::get(relative)
                .map(|file| (file.data, Some(hex_digest(&file.metadata.sha256_hash())))),
            Self::Folder(folder) => tokio::fs::read(folder.join(relative))
                .await
                .ok()
                .map(|bytes| (Cow::Owned(bytes), None)),
        };
        let Some((bytes, digest)) = found else {
            return (StatusCode::NOT_FOUND, "not found\n").into_response();
        };
        let mime = mime_guess::from_path(relative).first_or_octet_stream();
        let mut response = Response::builder()
            .header(header::CONTENT_TYPE, mime.as_ref())
            .header(header::CACHE_CONTROL, "no-cache");
        if let Some(digest) = digest {
            let etag = format!("\"{digest}\"");
            let matches = request_headers
                .get(header::IF_NONE_MATCH)
                .is_some_and(|value| value.as_bytes() == etag.as_bytes());
            if let Ok(value) = HeaderValue::from_str(&etag) {
                response = response.header(header::ETAG, value);
            }
            if matches {
                return response
                    .status(StatusCode::NOT_MODIFIED)
                    .body(Body::empty())
                    .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
            }
        }
        response
            .body(Body::from(bytes.into_owned()))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

fn hex_digest(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
