//! Privacy-respecting usage analytics: batches of events from the desktop app (after the user
//! said yes) and the web UI (unless the browser sends Do Not Track or Global Privacy Control),
//! stored without client addresses, user agents or device ids; unique users counted through a
//! salted hash whose salt changes every day; raw events purged after a retention period, daily
//! sums kept.

pub mod api;
pub mod config;
pub mod events;
pub mod retention;
