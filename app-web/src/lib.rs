//! app-web: the application's web service, an axum server that serves the shared UI and its API.

pub mod analytics;
pub mod auth;
pub mod backup;
pub mod body_limits;
pub mod cache;
pub mod cli;
pub mod config;
pub mod crashes;
pub mod db;
pub mod error;
pub mod health;
pub mod healthcheck;
pub mod metrics;
pub mod notes;
pub mod observe;
pub mod rate_limit;
pub mod router;
pub mod server;
pub mod shutdown;
pub mod startup;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod ui;
pub mod updates;
