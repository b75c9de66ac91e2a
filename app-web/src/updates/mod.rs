//! The desktop app's update server: which release a client is offered ([`policy`]: channels,
//! staged rollout, halts and rollback), where releases are kept ([`store`]), and the HTTP API
//! for update checks and publishing ([`api`]).

pub mod api;
pub mod config;
pub mod policy;
pub mod store;
