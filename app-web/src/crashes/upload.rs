//! Reading a crash upload: the `crash-upload` crate does it (apart from app-web, so its fuzz
//! target builds quickly); here its refusals become API errors.

pub use crash_upload::{CrashMetadata, CrashUpload, UploadError};

use crate::error::ApiError;

impl From<UploadError> for ApiError {
    fn from(err: UploadError) -> Self {
        match err {
            UploadError::BadRequest { field, message } => ApiError::BadRequest {
                field: Some(field),
                message,
            },
            UploadError::TooLarge(message) => ApiError::PayloadTooLarge(message),
        }
    }
}

/// Reads and checks an upload (see [`crash_upload::parse`]).
pub async fn parse(
    content_type: Option<&str>,
    body: bytes::Bytes,
    max_minidump_bytes: u64,
) -> Result<CrashUpload, ApiError> {
    Ok(crash_upload::parse(content_type, body, max_minidump_bytes).await?)
}
