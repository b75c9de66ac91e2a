//! app-web's own tests, as one test binary: the binary on real PostgreSQL and Redis (the notes
//! API, readiness, shutdown, logs and metrics), backups, crash reports, analytics and the
//! update server. The tests that put other components in front of it are in `e2e`.

mod analytics;
mod backup;
mod crashes;
mod data;
mod http;
mod observability;
mod updates;
