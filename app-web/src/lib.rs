//! app-web: the application's web service, an axum server that serves the shared UI and its API.

pub mod cli;
pub mod routes;
pub mod server;
pub mod telemetry;
pub mod ui;
