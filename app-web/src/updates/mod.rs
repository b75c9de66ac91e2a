//! The desktop app's update server: which release a client is offered ([`policy`]: channels,
//! staged rollout, halts and rollback).

pub mod policy;
