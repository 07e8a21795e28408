//! The one AWS layer of the toolkit: what every program that talks to AWS, or to the
//! ECS task it runs in, does the same way.
//!
//! - [`sdk`] (feature `sdk`): the SDK configuration the agent builds once and hands to
//!   the secret stores and the log shipper, and each caller's per-call limits.
//! - [`class`]: what a failed AWS call means for the caller ([`Class`]), from the
//!   service's error code and HTTP status; with `sdk`, [`classify`] for any SDK error.
//! - [`chain`]: an error and its sources on one line ([`Chain`]), for every SDK error
//!   printed.
//! - [`ecs`]: the ECS task metadata endpoint v4 (the container and the task).
//! - [`http`]: the one bounded HTTP GET (http:// only, a timeout, a capped body).
//!
//! What it is not: a retry loop (each caller retries under its own deadline, with
//! [`conventions::Backoff`]) or a client of any one service.
//!
//! `healthcheck` depends on it with `default-features = false`: the HTTP GET and the
//! metadata endpoint, without the AWS SDK.

#![forbid(unsafe_code)]

pub mod chain;
pub mod class;
pub mod ecs;
pub mod http;
#[cfg(feature = "sdk")]
pub mod sdk;

pub use chain::Chain;
pub use class::Class;
#[cfg(feature = "sdk")]
pub use class::{classify, Failure};
