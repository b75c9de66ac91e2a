//! Reading a crash upload: a `multipart/form-data` body with a `metadata` part (JSON) and a
//! `minidump` part. Nothing here touches disk, the network or a database, so the fuzz target in
//! `fuzz/` drives exactly what app-web's `POST /api/crashes` runs.

use bytes::Bytes;
use time::OffsetDateTime;

/// Why an upload is refused: a 400 naming the part or field, or a 413.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadError {
    BadRequest {
        field: &'static str,
        message: String,
    },
    TooLarge(String),
}

impl std::fmt::Display for UploadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UploadError::BadRequest { field, message } => write!(f, "{field}: {message}"),
            UploadError::TooLarge(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for UploadError {}

/// Most bytes the `metadata` part may have.
pub const MAX_METADATA_BYTES: u64 = 16 * 1024;
/// Longest panic message kept, in characters.
pub const MAX_PANIC_MESSAGE_CHARS: usize = 4096;
/// Channels the desktop app reports.
pub const CHANNELS: &[&str] = &["stable", "beta"];
/// Operating systems, as Rust's `std::env::consts::OS` names them.
pub const OPERATING_SYSTEMS: &[&str] = &["linux", "windows", "macos"];
/// Architectures, as `std::env::consts::ARCH` names them.
pub const ARCHITECTURES: &[&str] = &["x86_64", "aarch64", "x86", "arm"];

/// What the app says about a crash, beside the minidump.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct CrashMetadata {
    /// Made by the app when it saved the report, so a retried upload is stored once.
    pub report_id: uuid::Uuid,
    pub product: String,
    pub version: String,
    pub channel: String,
    pub os: String,
    pub arch: String,
    /// The analytics session the crash ended (random per run; no device id).
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub panic_message: Option<String>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub crashed_at: Option<OffsetDateTime>,
}

/// A crash upload that passed every check.
#[derive(Debug)]
pub struct CrashUpload {
    pub metadata: CrashMetadata,
    pub minidump: Bytes,
}

fn bad(field: &'static str, message: impl Into<String>) -> UploadError {
    UploadError::BadRequest {
        field,
        message: message.into(),
    }
}

/// A session id as the apps make it: 16 to 64 hexadecimal digits, random per run.
pub fn check_session_id(id: &str) -> Result<(), String> {
    if (16..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(format!(
            "{:?} is not a session id: 16 to 64 hexadecimal digits, random per run",
            id.chars().take(80).collect::<String>()
        ))
    }
}

/// Reads and checks an upload. `content_type` is the request's header; `max_minidump_bytes`
/// bounds the minidump part (413 beyond it).
pub async fn parse(
    content_type: Option<&str>,
    body: Bytes,
    max_minidump_bytes: u64,
) -> Result<CrashUpload, UploadError> {
    let content_type = content_type.ok_or_else(|| {
        bad(
            "content-type",
            "send the report as multipart/form-data with `metadata` and `minidump` parts",
        )
    })?;
    let boundary = multer::parse_boundary(content_type).map_err(|err| {
        bad(
            "content-type",
            format!("{content_type:?} is not multipart/form-data with a boundary: {err}"),
        )
    })?;
    let constraints = multer::Constraints::new()
        .allowed_fields(vec!["metadata", "minidump"])
        .size_limit(
            multer::SizeLimit::new()
                .for_field("metadata", MAX_METADATA_BYTES)
                .for_field("minidump", max_minidump_bytes),
        );
    let stream = futures::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
    let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);

    let mut metadata = None;
    let mut minidump = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(err) => return Err(multipart_error(err)),
        };
        let name = field.name().unwrap_or_default().to_owned();
        let bytes = field.bytes().await.map_err(multipart_error)?;
        let slot = if name == "metadata" {
            &mut metadata
        } else {
            &mut minidump
        };
        if slot.replace(bytes).is_some() {
            return Err(bad(
                if name == "metadata" {
                    "metadata"
                } else {
                    "minidump"
                },
                format!("the `{name}` part appears twice; send it once"),
            ));
        }
    }
    let metadata = metadata.ok_or_else(|| bad("metadata", "the `metadata` part is missing"))?;
    let minidump = minidump.ok_or_else(|| bad("minidump", "the `minidump` part is missing"))?;
    let metadata: CrashMetadata = serde_json::from_slice(&metadata).map_err(|err| {
        bad(
            "metadata",
            format!("the `metadata` part is not valid: {err}"),
        )
    })?;
    check_metadata(&metadata)?;
    check_minidump(&minidump)?;
    Ok(CrashUpload { metadata, minidump })
}

fn multipart_error(err: multer::Error) -> UploadError {
    match err {
        multer::Error::FieldSizeExceeded { field_name, limit } => UploadError::TooLarge(format!(
            "the `{}` part is over its limit of {limit} bytes",
            field_name.unwrap_or_default()
        )),
        multer::Error::StreamSizeExceeded { limit } => {
            UploadError::TooLarge(format!("the body is over its limit of {limit} bytes"))
        }
        multer::Error::UnknownField { field_name } => bad(
            "multipart",
            format!(
                "unexpected part {:?}: send only `metadata` and `minidump`",
                field_name.unwrap_or_default()
            ),
        ),
        other => bad(
            "multipart",
            format!("the multipart body cannot be read: {other}"),
        ),
    }
}

fn one_of(field: &'static str, value: &str, allowed: &[&str]) -> Result<(), UploadError> {
    if allowed.contains(&value) {
        Ok(())
    } else {
        Err(bad(
            field,
            format!(
                "unknown {field} {value:?}: use one of {}",
                allowed.join(", ")
            ),
        ))
    }
}

/// A short machine name: letters, digits, dashes, dots and underscores.
fn plain_word(field: &'static str, value: &str, max: usize) -> Result<(), UploadError> {
    if (1..=max).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        Ok(())
    } else {
        Err(bad(
            field,
            format!("{value:?} must be 1 to {max} letters, digits, dashes, dots or underscores"),
        ))
    }
}

pub fn check_metadata(metadata: &CrashMetadata) -> Result<(), UploadError> {
    plain_word("product", &metadata.product, 64)?;
    semver::Version::parse(&metadata.version).map_err(|err| {
        bad(
            "version",
            format!(
                "{:?} is not a semantic version such as 1.2.3: {err}",
                metadata.version
            ),
        )
    })?;
    one_of("channel", &metadata.channel, CHANNELS)?;
    one_of("os", &metadata.os, OPERATING_SYSTEMS)?;
    one_of("arch", &metadata.arch, ARCHITECTURES)?;
    if let Some(session) = &metadata.session_id {
        check_session_id(session).map_err(|message| bad("session_id", message))?;
    }
    if let Some(message) = &metadata.panic_message
        && message.chars().count() > MAX_PANIC_MESSAGE_CHARS
    {
        return Err(bad(
            "panic_message",
            format!("longer than {MAX_PANIC_MESSAGE_CHARS} characters; send its beginning"),
        ));
    }
    Ok(())
}

/// A minidump that rust-minidump can read, with the streams symbolication needs.
pub fn check_minidump(bytes: &[u8]) -> Result<(), UploadError> {
    use minidump::{Minidump, MinidumpModuleList, MinidumpSystemInfo, MinidumpThreadList};
    let not_readable =
        |err: &dyn std::fmt::Display| bad("minidump", format!("not a readable minidump: {err}"));
    let dump = Minidump::read(bytes).map_err(|err| not_readable(&err))?;
    dump.get_stream::<MinidumpSystemInfo>()
        .map_err(|err| not_readable(&err))?;
    dump.get_stream::<MinidumpThreadList<'_>>()
        .map_err(|err| not_readable(&err))?;
    dump.get_stream::<MinidumpModuleList>()
        .map_err(|err| not_readable(&err))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata() -> serde_json::Value {
        serde_json::json!({
            "report_id": "6f1c1b5e-0c1e-4d55-9a52-4b7f7c2b6d11",
            "product": "app-desktop",
            "version": "1.4.2",
            "channel": "stable",
            "os": "linux",
            "arch": "x86_64",
            "session_id": "0123456789abcdef0123456789abcdef",
            "panic_message": null,
            "crashed_at": "2026-11-28T01:02:03Z"
        })
    }

    fn body(parts: &[(&str, &[u8])]) -> (String, Bytes) {
        let mut body = Vec::new();
        for (name, bytes) in parts {
            body.extend_from_slice(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n"
                )
                .as_bytes(),
            );
            body.extend_from_slice(bytes);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"--XyZ--\r\n");
        ("multipart/form-data; boundary=XyZ".into(), body.into())
    }

    fn field_of(err: UploadError) -> String {
        match err {
            UploadError::BadRequest { field, message } => format!("{field}: {message}"),
            UploadError::TooLarge(message) => format!("413: {message}"),
        }
    }

    async fn parse_parts(parts: &[(&str, &[u8])]) -> Result<CrashUpload, UploadError> {
        let (content_type, body) = body(parts);
        parse(Some(&content_type), body, 1024).await
    }

    #[tokio::test]
    async fn each_broken_part_is_named() {
        let good = serde_json::to_vec(&metadata()).unwrap();
        let err = parse(None, Bytes::new(), 1024).await.unwrap_err();
        assert!(field_of(err).starts_with("content-type"));
        let err = parse(Some("application/json"), Bytes::new(), 1024)
            .await
            .unwrap_err();
        assert!(field_of(err).starts_with("content-type"));
        let err = parse_parts(&[("metadata", &good)]).await.unwrap_err();
        assert!(field_of(err).starts_with("minidump: the `minidump` part is missing"));
        let err = parse_parts(&[("metadata", &good), ("minidump", b"MDMP nonsense")])
            .await
            .unwrap_err();
        assert!(field_of(err).starts_with("minidump: not a readable minidump"));
        let err = parse_parts(&[("metadata", &good), ("minidump", &[0u8; 2000])])
            .await
            .unwrap_err();
        assert!(field_of(err).starts_with("413: the `minidump` part is over its limit of 1024"));
        let err = parse_parts(&[("metadata", &good), ("extra", b"x")])
            .await
            .unwrap_err();
        assert!(field_of(err).starts_with("multipart: unexpected part \"extra\""));
        let err = parse_parts(&[("metadata", b"{"), ("minidump", b"")])
            .await
            .unwrap_err();
        assert!(field_of(err).starts_with("metadata: the `metadata` part is not valid"));
        let (content_type, body) = body(&[("metadata", &good)]);
        let truncated = body.slice(..body.len() - 12);
        let err = parse(Some(&content_type), truncated, 1024)
            .await
            .unwrap_err();
        assert!(field_of(err).starts_with("multipart: "));
    }

    #[test]
    fn metadata_fields_are_checked_one_by_one() {
        for (field, value) in [
            ("product", serde_json::json!("app desktop")),
            ("version", serde_json::json!("1.4")),
            ("channel", serde_json::json!("nightly")),
            ("os", serde_json::json!("plan9")),
            ("arch", serde_json::json!("mips")),
            ("session_id", serde_json::json!("not hex!")),
            ("panic_message", serde_json::json!("x".repeat(5000))),
        ] {
            let mut value_set = metadata();
            value_set[field] = value;
            let parsed: CrashMetadata = serde_json::from_value(value_set).unwrap();
            let err = check_metadata(&parsed).unwrap_err();
            assert!(field_of(err).starts_with(field), "{field}");
        }
        let parsed: CrashMetadata = serde_json::from_value(metadata()).unwrap();
        check_metadata(&parsed).unwrap();
    }
}
