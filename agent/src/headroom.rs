//! Whether the log buffers fit the container's memory. The agent and the app share
//! the container's (or the task's) memory limit: when CloudWatch Logs or stdout stall
//! for long, the agent holds up to `DECKHAND_LOG_BUFFER` of events waiting to be
//! shipped and as much for the stdout copy, and a container over its limit is killed
//! whole, the app with it. Buffers that could take more than a quarter of the limit
//! are named in a warning, with the value that would fit.
//!
//! Read a second after the start, on the log pipeline's runtime (a start is never
//! slowed by it, and an app that ends sooner needs no warning): the limit is the
//! task metadata's `Limits.Memory` (one GET of the in-task endpoint; on Fargate the
//! container's cgroup often shows none) and the cgroup's, the smaller of the two. It
//! warns; it never changes the buffer.

use std::path::Path;
use std::time::Duration;

use logship::config::{LogSettings, StdoutMode};

/// The log buffers may take at most this share of the memory limit (one part in
/// `SHARE`) before the start warns: the rest is the app's.
const SHARE: u64 = 4;

/// Where the cgroup file system is mounted in a container.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// How long after the start the limit is read.
const AFTER: Duration = Duration::from_secs(1);

/// How long the task document may take (the endpoint is in the task).
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

const MIB: u64 = 1024 * 1024;

/// The buffers the agent fills when its output stalls: `(size of each, how many)`, or
/// `None` when it keeps none (no log group and no stdout copy).
pub fn buffers(logs: &LogSettings) -> Option<(u64, u64)> {
    let copies = u64::from(logs.group.is_some()) + u64::from(logs.stdout != StdoutMode::Off);
    (copies > 0).then_some((logs.buffer_bytes as u64, copies))
}

/// Reads the memory limit and warns when the buffers could take too much of it.
pub async fn check(buffers: (u64, u64), metadata_uri: Option<String>) {
    tokio::time::sleep(AFTER).await;
    let task = match metadata_uri {
        Some(uri) => match aws::ecs::Endpoint::new(&uri) {
            Ok(endpoint) => endpoint
                .task(METADATA_TIMEOUT)
                .await
                .ok()
                .and_then(|t| t.memory_limit())
                .map(|bytes| (bytes, "the task's memory limit")),
            Err(_) => None,
        },
        None => None,
    };
    let cgroup = healthcheck::cgroup_limit(Path::new(CGROUP_ROOT))
        .map(|bytes| (bytes, "the container's memory limit"));
    let limit = [task, cgroup]
        .into_iter()
        .flatten()
        .min_by_key(|(bytes, _)| *bytes);
    if let Some(warning) = limit.and_then(|(bytes, what)| warning(buffers, bytes, what)) {
        tracing::warn!("{warning}");
    }
}

/// The warning for `buffers` (see [`buffers`]) against a limit of `limit` bytes
/// (`what` names it), or `None` when they take at most a [`SHARE`] of it.
pub fn warning((each, copies): (u64, u64), limit: u64, what: &str) -> Option<String> {
    let held = each.saturating_mul(copies);
    if held <= limit / SHARE {
        return None;
    }
    let fits = (limit / SHARE / copies.max(1) / MIB).max(1);
    let mib = |b: u64| b.div_ceil(MIB);
    let held_as = if copies > 1 {
        format!(
            "{} MiB: as much of events waiting to be shipped as for the stdout copy",
            mib(held)
        )
    } else {
        format!("{} MiB", mib(held))
    };
    Some(format!(
        "DECKHAND_LOG_BUFFER={} MiB may take more than a quarter of the memory the app and \
         the agent share: while CloudWatch Logs or stdout stall, the agent holds up to \
         {held_as}, in {} MiB ({what}), and a container over its limit is stopped whole, \
         the app with it. Set DECKHAND_LOG_BUFFER to at most {fits}MiB (when it is full, \
         DECKHAND_LOG_FULL decides: the oldest lines dropped and counted, or the app \
         made to wait)",
        mib(each),
        mib(limit),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_over_a_quarter_of_the_limit_are_named_with_what_fits() {
        // The default (64 MiB, shipped and copied to stdout) in Fargate's smallest task.
        assert_eq!(
            warning((64 * MIB, 2), 512 * MIB, "the task's memory limit"),
            None
        );
        let said = warning((64 * MIB, 2), 256 * MIB, "the task's memory limit").unwrap();
        assert!(
            said.starts_with(
                "DECKHAND_LOG_BUFFER=64 MiB may take more than a quarter of the memory the \
                 app and the agent share: while CloudWatch Logs or stdout stall, the agent \
                 holds up to 128 MiB: as much of events waiting to be shipped as for the \
                 stdout copy, in 256 MiB (the task's memory limit)"
            ),
            "{said}"
        );
        assert!(
            said.contains("Set DECKHAND_LOG_BUFFER to at most 32MiB"),
            "{said}"
        );
        // One buffer (shipping only, or the stdout copy only).
        let said = warning((200 * MIB, 1), 512 * MIB, "the container's memory limit").unwrap();
        assert!(
            said.contains("holds up to 200 MiB, in 512 MiB (the container's"),
            "{said}"
        );
        assert!(said.contains("at most 128MiB"), "{said}");
        // A limit too small for any buffer still names a setting that parses.
        let said = warning((64 * MIB, 2), 6 * MIB, "x").unwrap();
        assert!(said.contains("at most 1MiB"), "{said}");
        assert!(warning((u64::MAX, 2), u64::MAX, "x").is_some());
    }

    #[test]
    fn the_buffers_kept_are_those_of_the_outputs_on() {
        let mut logs = LogSettings {
            buffer_bytes: 8 << 20,
            ..LogSettings::default()
        };
        assert_eq!(buffers(&logs), Some((8 << 20, 1)), "stdout copy only");
        logs.group = Some("g".to_owned());
        assert_eq!(buffers(&logs), Some((8 << 20, 2)));
        logs.stdout = StdoutMode::Off;
        assert_eq!(buffers(&logs), Some((8 << 20, 1)), "shipping only");
        logs.group = None;
        assert_eq!(buffers(&logs), None);
    }
}
