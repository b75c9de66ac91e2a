//! The tests that cross components, as one test binary: app-web behind the project's nginx
//! (security headers, limits, TLS, the browser, the smoke check), certbot with Pebble, the
//! monitoring stack, the compose stack's servers, the desktop app against the update server
//! (updates, crash reports, analytics), the images on a Docker engine, compose, and deploys
//! over SSH.

mod acme;
mod browser;
mod compose;
mod compose_stack;
mod deploy;
mod desktop_crash;
mod desktop_update;
mod docker;
mod monitoring;
mod nginx;
mod prometheus;
mod smoke;
