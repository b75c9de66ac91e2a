//! The notes API: create, get, list newest first with cursor pagination, update and delete,
//! stored in PostgreSQL with single notes and list pages cached in Redis.

use std::collections::BTreeMap;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::error::{ApiError, read_json};
use crate::state::AppState;

pub const MAX_TITLE_CHARS: usize = 200;
pub const MAX_BODY_CHARS: usize = 10_000;
pub const DEFAULT_PAGE_SIZE: i64 = 20;
pub const MAX_PAGE_SIZE: i64 = 100;

#[derive(Debug, Clone, Serialize, Deserialize, sqlx::FromRow)]
pub struct Note {
    pub id: Uuid,
    pub title: String,
    pub body: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What a client sends to create or replace a note.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteInput {
    pub title: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
}

/// A valid note input.
struct ValidNote {
    title: String,
    body: String,
}

impl NoteInput {
    fn validate(self) -> Result<ValidNote, ApiError> {
        let mut errors = BTreeMap::new();
        let title = self.title.unwrap_or_default().trim().to_owned();
        if title.is_empty() {
            errors.insert("title", "is required".to_owned());
        } else if title.chars().count() > MAX_TITLE_CHARS {
            errors.insert(
                "title",
                format!("must be at most {MAX_TITLE_CHARS} characters"),
            );
        }
        let body = self.body.unwrap_or_default();
        if body.chars().count() > MAX_BODY_CHARS {
            errors.insert(
                "body",
                format!("must be at most {MAX_BODY_CHARS} characters"),
            );
        }
        if errors.is_empty() {
            Ok(ValidNote { title, body })
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct NotePage {
    pub items: Vec<Note>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The keyset position after a note: its creation time in microseconds and its id.
fn encode_cursor(note: &Note) -> String {
    let micros = note.created_at.unix_timestamp_nanos() / 1_000;
    format!("{micros}_{}", note.id)
}

fn decode_cursor(cursor: &str) -> Result<(OffsetDateTime, Uuid), ApiError> {
    let invalid = || ApiError::invalid("cursor", "is not a cursor this API returned");
    let (micros, id) = cursor.split_once('_').ok_or_else(invalid)?;
    let micros: i128 = micros.parse().map_err(|_| invalid())?;
    let at = OffsetDateTime::from_unix_timestamp_nanos(micros * 1_000).map_err(|_| invalid())?;
    let id = Uuid::parse_str(id).map_err(|_| invalid())?;
    Ok((at, id))
}

fn parse_id(id: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(id).map_err(|_| ApiError::BadRequest {
        field: Some("id"),
        message: format!("{id:?} is not a note id (a UUID)"),
    })
}

/// What a note's body must be, for the 400 a malformed one gets.
const NOTE_BODY: &str = "a JSON object with `title` and optional `body`";

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/notes", get(list_notes).post(create_note))
        .route(
            "/api/notes/{id}",
            get(get_note).put(update_note).delete(delete_note),
        )
}

fn note_key(id: Uuid) -> String {
    format!("app-web:note:{id}")
}

/// The cache key of a list page. Pages carry the list generation, which every write bumps,
/// so a write retires all cached pages at once without scanning for them.
fn page_key(generation: &str, limit: i64, cursor: Option<&str>) -> String {
    format!(
        "app-web:notes:{generation}:{limit}:{}",
        cursor.unwrap_or("-")
    )
}

const GENERATION_KEY: &str = "app-web:notes:generation";

async fn create_note(
    State(state): State<AppState>,
    body: Result<Json<NoteInput>, JsonRejection>,
) -> Result<Response, ApiError> {
    let note = read_json(body, NOTE_BODY)?.validate()?;
    let note: Note = sqlx::query_as(
        "INSERT INTO notes (id, title, body) VALUES ($1, $2, $3) \
         RETURNING id, title, body, created_at, updated_at",
    )
    .bind(Uuid::new_v4())
    .bind(&note.title)
    .bind(&note.body)
    .fetch_one(state.pool()?)
    .await?;
    state.cache().retire_pages(GENERATION_KEY).await;
    let location = format!("/api/notes/{}", note.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(note),
    )
        .into_response())
}

async fn get_note(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Note>, ApiError> {
    let id = parse_id(&id)?;
    let key = note_key(id);
    if let Some(note) = state.cache().lookup::<Note>(&key).await {
        return Ok(Json(note));
    }
    let note: Option<Note> =
        sqlx::query_as("SELECT id, title, body, created_at, updated_at FROM notes WHERE id = $1")
            .bind(id)
            .fetch_optional(state.pool()?)
            .await?;
    let note = note.ok_or(ApiError::NotFound)?;
    state.cache().store(&key, &note).await;
    Ok(Json(note))
}

async fn list_notes(
    State(state): State<AppState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<NotePage>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadRequest {
        field: None,
        message: format!(
            "the query takes `limit` (1 to {MAX_PAGE_SIZE}) and `cursor`: {}",
            rejection.body_text()
        ),
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            format!("must be between 1 and {MAX_PAGE_SIZE}"),
        ));
    }
    let after = query.cursor.as_deref().map(decode_cursor).transpose()?;

    let generation = state.cache().generation(GENERATION_KEY).await;
    let key = generation
        .as_deref()
        .map(|generation| page_key(generation, limit, query.cursor.as_deref()));
    if let Some(key) = &key
        && let Some(page) = state.cache().lookup::<NotePage>(key).await
    {
        return Ok(Json(page));
    }

    // One row more than the page tells whether another page follows.
    let mut items: Vec<Note> = match after {
        None => {
            sqlx::query_as(
                "SELECT id, title, body, created_at, updated_at FROM notes \
                 ORDER BY created_at DESC, id DESC LIMIT $1",
            )
            .bind(limit + 1)
            .fetch_all(state.pool()?)
            .await?
        }
        Some((at, id)) => {
            sqlx::query_as(
                "SELECT id, title, body, created_at, updated_at FROM notes \
                 WHERE (created_at, id) < ($1, $2) \
                 ORDER BY created_at DESC, id DESC LIMIT $3",
            )
            .bind(at)
            .bind(id)
            .bind(limit + 1)
            .fetch_all(state.pool()?)
            .await?
        }
    };
    let more = items.len() as i64 > limit;
    items.truncate(limit as usize);
    let next_cursor = if more {
        items.last().map(encode_cursor)
    } else {
        None
    };
    let page = NotePage { items, next_cursor };
    if let Some(key) = &key {
        state.cache().store(key, &page).await;
    }
    Ok(Json(page))
}

async fn update_note(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<NoteInput>, JsonRejection>,
) -> Result<Json<Note>, ApiError> {
    let id = parse_id(&id)?;
    let note = read_json(body, NOTE_BODY)?.validate()?;
    let note: Option<Note> = sqlx::query_as(
        "UPDATE notes SET title = $2, body = $3, updated_at = now() WHERE id = $1 \
         RETURNING id, title, body, created_at, updated_at",
    )
    .bind(id)
    .bind(&note.title)
    .bind(&note.body)
    .fetch_optional(state.pool()?)
    .await?;
    let note = note.ok_or(ApiError::NotFound)?;
    state.cache().forget(&note_key(id)).await;
    state.cache().retire_pages(GENERATION_KEY).await;
    Ok(Json(note))
}

async fn delete_note(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&id)?;
    let deleted = sqlx::query("DELETE FROM notes WHERE id = $1")
        .bind(id)
        .execute(state.pool()?)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(ApiError::NotFound);
    }
    state.cache().forget(&note_key(id)).await;
    state.cache().retire_pages(GENERATION_KEY).await;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let note = Note {
            id: Uuid::new_v4(),
            title: "t".into(),
            body: String::new(),
            created_at: OffsetDateTime::from_unix_timestamp_nanos(1_764_000_000_123_456_000)
                .unwrap(),
            updated_at: OffsetDateTime::now_utc(),
        };
        let (at, id) = decode_cursor(&encode_cursor(&note)).unwrap();
        assert_eq!((at, id), (note.created_at, note.id));
        assert!(decode_cursor("garbage").is_err());
        assert!(decode_cursor("12_not-a-uuid").is_err());
    }

    #[test]
    fn validation_names_each_bad_field() {
        let input = NoteInput {
            title: Some("   ".into()),
            body: Some("x".repeat(MAX_BODY_CHARS + 1)),
        };
        let Err(ApiError::Validation(fields)) = input.validate() else {
            panic!("expected a validation error")
        };
        assert_eq!(
            fields.keys().copied().collect::<Vec<_>>(),
            vec!["body", "title"]
        );
        let long_title = NoteInput {
            title: Some("é".repeat(MAX_TITLE_CHARS)),
            body: None,
        };
        assert!(
            long_title.validate().is_ok(),
            "the limit counts characters, not bytes"
        );
    }
}
