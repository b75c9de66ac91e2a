//! The largest request body each group of routes takes. nginx/nginx.conf.template sets the same
//! limit on the location in front of each group (a test reads the template and holds the two
//! equal), so an oversized body stops at the edge and never reaches app-web. The crash upload and
//! symbol limits are settings (APP_WEB_CRASH_MAX_MIB, APP_WEB_SYMBOLS_MAX_MIB) that compose hands
//! to both from one .env variable.

/// The JSON API: notes, update checks, the admin API's releases and analytics (nginx's `/api/`).
pub const API_BYTES: usize = 64 * 1024;

/// `POST /api/events`: one analytics batch.
pub const EVENTS_BYTES: usize = 256 * 1024;

/// The UI's pages and assets, which take no body (GET only).
pub const PAGES_BYTES: usize = 16 * 1024;

/// MiB as bytes, for the limits set in MiB.
pub const fn mib(count: u64) -> u64 {
    count.saturating_mul(1024 * 1024)
}
