//! The memory check, correct inside a container.
//!
//! The limit comes from, in order: the ECS task metadata endpoint v4 (`Limits.Memory`;
//! on Fargate with only a task-level limit the container cgroup shows none and
//! `/proc/meminfo` shows the micro-VM), the cgroup (`memory.max` in v2,
//! `memory.limit_in_bytes` in v1; "no limit" values count as none), the host's total.
//! Use is the cgroup's working set (usage minus `inactive_file`, which the kernel
//! reclaims before it kills anything), else this process's RSS.
//!
//! The endpoint is read through [`aws::ecs`] (one bounded GET, lenient parsing).
//!
//! It reports; it never frees or limits anything.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use aws::ecs::{Endpoint, MetadataError};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};
use tokio::time::Instant;

use crate::cache::Cached;
use crate::config::MemoryConfig;
use crate::report::{MemoryReading, Status};

const MIB: u64 = 1024 * 1024;
/// Limits at or above 1 EiB mean "no limit": cgroup v1 writes 2^63 rounded down to a
/// page (9223372036854771712) when none is set.
const NO_LIMIT_FROM: u64 = 1 << 60;
/// How long one reading is reused; reading it costs a few file reads.
const CACHE: Duration = Duration::from_secs(1);
/// The metadata endpoint is link-local and answers in milliseconds; do not let it hold
/// up an answer to the ALB.
const METADATA_TIMEOUT: Duration = Duration::from_millis(500);
/// After a failed metadata request, use the cgroup's figures this long before asking
/// again.
const METADATA_RETRY: Duration = Duration::from_secs(60);

pub(crate) struct MemoryCheck {
    /// `$ECS_CONTAINER_METADATA_URI_V4`, whose `/task` document has the task's limit.
    endpoint: Option<Endpoint>,
    /// `/sys/fs/cgroup`, or a fake tree in tests.
    cgroup_root: PathBuf,
    /// This process's cgroup paths, from `/proc/self/cgroup`.
    own: OwnCgroup,
    /// Use above this percentage of the limit is degraded.
    degraded_percent: u8,
    /// The task's limit never changes while it runs, so it is asked for once.
    metadata: Mutex<MetadataLimit>,
    /// For the host total and the RSS; `None` where sysinfo does not work.
    system: Mutex<Option<System>>,
    /// One reading per [`CACHE`], shared by concurrent requests.
    cache: Cached<Option<MemoryReading>>,
}

#[derive(Debug, Clone, Copy)]
enum MetadataLimit {
    NotAsked,
    /// The answer; `None` when the task has no task-level limit (EC2 launch type).
    Known(Option<u64>),
    FailedAt(Instant),
}

/// The cgroup paths of this process, relative to each hierarchy's root.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct OwnCgroup {
    unified: Option<String>,
    memory_v1: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

/// The directory of the cgroup whose figures apply to this process.
#[derive(Debug)]
struct Cgroup {
    version: Version,
    dir: PathBuf,
}

impl MemoryCheck {
    pub(crate) fn new(config: &MemoryConfig) -> Self {
        let endpoint = config
            .metadata_uri
            .as_ref()
            .and_then(|uri| Endpoint::from_uri(uri).ok());
        let own = own_cgroup();
        MemoryCheck {
            endpoint,
            cgroup_root: config.cgroup_root.clone(),
            own,
            degraded_percent: config.degraded_percent,
            metadata: Mutex::new(MetadataLimit::NotAsked),
            system: Mutex::new(System::new().ok()),
            cache: Cached::new(CACHE),
        }
    }

    /// The reading, or `None` when neither a limit nor a use can be found (then the
    /// check is left out of the answer).
    pub(crate) async fn check(&self) -> Option<MemoryReading> {
        self.cache.get(|| self.sample()).await
    }

    async fn sample(&self) -> Option<MemoryReading> {
        let cgroup = Cgroup::find(&self.cgroup_root, &self.own);
        let limit = match self.metadata_limit().await {
            Some(bytes) => Some(bytes),
            None => cgroup.as_ref().and_then(Cgroup::limit),
        };
        let total = limit.or_else(|| self.host_total())?;
        let used = cgroup
            .as_ref()
            .and_then(Cgroup::working_set)
            .or_else(|| self.process_rss())?;
        Some(reading(used, total, self.degraded_percent))
    }

    async fn metadata_limit(&self) -> Option<u64> {
        let endpoint = self.endpoint.as_ref()?;
        match *self.metadata.lock().unwrap_or_else(|p| p.into_inner()) {
            MetadataLimit::Known(limit) => return limit,
            MetadataLimit::FailedAt(at) if at.elapsed() < METADATA_RETRY => return None,
            MetadataLimit::FailedAt(_) | MetadataLimit::NotAsked => {}
        }
        let state = match endpoint.task(METADATA_TIMEOUT).await {
            Ok(task) => {
                let limit = task.memory_limit();
                tracing::info!(
                    limit_mib = limit.map(|b| b / MIB),
                    "Read the task's memory limit from the ECS task metadata endpoint."
                );
                MetadataLimit::Known(limit)
            }
            Err(MetadataError::Status { status, .. }) => {
                tracing::warn!(%status, "The ECS task metadata endpoint refused; using the cgroup's memory limit for now.");
                MetadataLimit::FailedAt(Instant::now())
            }
            Err(error @ MetadataError::NotJson) => {
                tracing::warn!(%error, "The ECS task metadata endpoint answered with something that is not a task document; using the cgroup's memory limit for now.");
                MetadataLimit::FailedAt(Instant::now())
            }
            Err(error) => {
                tracing::warn!(%error, "The ECS task metadata endpoint did not answer; using the cgroup's memory limit for now.");
                MetadataLimit::FailedAt(Instant::now())
            }
        };
        *self.metadata.lock().unwrap_or_else(|p| p.into_inner()) = state;
        match state {
            MetadataLimit::Known(limit) => limit,
            _ => None,
        }
    }

    fn host_total(&self) -> Option<u64> {
        let mut system = self.system.lock().unwrap_or_else(|p| p.into_inner());
        let system = system.as_mut()?;
        system.refresh_memory();
        Some(system.total_memory()).filter(|t| *t > 0)
    }

    fn process_rss(&self) -> Option<u64> {
        let pid = sysinfo::get_current_pid().ok()?;
        let mut system = self.system.lock().unwrap_or_else(|p| p.into_inner());
        let system = system.as_mut()?;
        system.refresh_processes_specifics(
            ProcessesToUpdate::Some(&[pid]),
            false,
            ProcessRefreshKind::nothing().with_memory(),
        );
        system.process(pid).map(|p| p.memory())
    }
}

impl Cgroup {
    /// The v2 hierarchy when `root` is one, else v1's `memory` controller. Inside a
    /// container `root` is the container's own cgroup; on a host, this process's cgroup
    /// below `root` is used when it exists.
    fn find(root: &Path, own: &OwnCgroup) -> Option<Cgroup> {
        if root.join("cgroup.controllers").exists() || root.join("memory.max").exists() {
            return Some(Cgroup {
                version: Version::V2,
                dir: nested(root, own.unified.as_deref()),
            });
        }
        let v1 = root.join("memory");
        if v1.join("memory.limit_in_bytes").exists() || v1.join("memory.usage_in_bytes").exists() {
            return Some(Cgroup {
                version: Version::V1,
                dir: nested(&v1, own.memory_v1.as_deref()),
            });
        }
        None
    }

    fn limit(&self) -> Option<u64> {
        let file = match self.version {
            Version::V2 => "memory.max",
            Version::V1 => "memory.limit_in_bytes",
        };
        parse_limit(&self.read(file)?)
    }

    fn working_set(&self) -> Option<u64> {
        let (usage_file, inactive_keys): (_, &[&str]) = match self.version {
            Version::V2 => ("memory.current", &["inactive_file"]),
            Version::V1 => (
                "memory.usage_in_bytes",
                &["total_inactive_file", "inactive_file"],
            ),
        };
        let usage = self.read(usage_file)?.trim().parse::<u64>().ok()?;
        let stat = self.read("memory.stat").unwrap_or_default();
        let inactive = inactive_keys
            .iter()
            .find_map(|key| stat_value(&stat, key))
            .unwrap_or(0);
        Some(usage.saturating_sub(inactive))
    }

    fn read(&self, file: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(file)).ok()
    }
}

/// This process's memory limit as its cgroup sets it (`memory.max`, or
/// `memory.limit_in_bytes` in v1), when it sets one: a few file reads, no network.
/// On Fargate with only a task-level limit the container's cgroup shows none; the task
/// metadata's `Limits.Memory` has it.
pub fn cgroup_limit(cgroup_root: &Path) -> Option<u64> {
    Cgroup::find(cgroup_root, &own_cgroup())?.limit()
}

/// This process's cgroup paths, from `/proc/self/cgroup` (none when it cannot be read).
fn own_cgroup() -> OwnCgroup {
    std::fs::read_to_string("/proc/self/cgroup")
        .map(|text| parse_own_cgroup(&text))
        .unwrap_or_default()
}

/// `base/own` when that directory exists, else `base`.
fn nested(base: &Path, own: Option<&str>) -> PathBuf {
    match own.map(|p| p.trim_start_matches('/')) {
        Some(relative) if !relative.is_empty() && base.join(relative).is_dir() => {
            base.join(relative)
        }
        _ => base.to_path_buf(),
    }
}

/// Reads `/proc/self/cgroup`: `0::/path` (v2) and `N:memory:/path` or
/// `N:cpu,memory:/path` (v1).
fn parse_own_cgroup(text: &str) -> OwnCgroup {
    let mut own = OwnCgroup::default();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if id == "0" && controllers.is_empty() {
            own.unified = Some(path.to_string());
        } else if controllers.split(',').any(|c| c == "memory") {
            own.memory_v1 = Some(path.to_string());
        }
    }
    own
}

/// A limit file's content in bytes; `None` for "no limit".
fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse::<u64>()
        .ok()
        .filter(|bytes| *bytes > 0 && *bytes < NO_LIMIT_FROM)
}

/// A value of `memory.stat` (`key value` lines).
fn stat_value(stat: &str, key: &str) -> Option<u64> {
    stat.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key {
            v.trim().parse().ok()
        } else {
            None
        }
    })
}

/// The figures in MiB and the verdict: above `degraded_percent` of `total` is degraded.
fn reading(used: u64, total: u64, degraded_percent: u8) -> MemoryReading {
    let (used128, total128) = (u128::from(used), u128::from(total.max(1)));
    let percentage = ((used128 * 100 + total128 / 2) / total128) as u64;
    let status = if used128 * 100 > total128 * u128::from(degraded_percent) {
        Status::Degraded
    } else {
        Status::Healthy
    };
    MemoryReading {
        used: (used + MIB / 2) / MIB,
        total: (total + MIB / 2) / MIB,
        percentage,
        status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_limit_values_count_as_none() {
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit("0"), None);
        assert_eq!(parse_limit("garbage"), None);
        assert_eq!(parse_limit("536870912\n"), Some(512 * MIB));
    }

    #[test]
    fn reads_memory_stat_values() {
        let stat = "anon 1000\nfile 2000\ninactive_anon 10\nactive_file 5\ninactive_file 1500\ntotal_inactive_file 1700\n";
        assert_eq!(stat_value(stat, "inactive_file"), Some(1500));
        assert_eq!(stat_value(stat, "total_inactive_file"), Some(1700));
        assert_eq!(stat_value(stat, "inactive"), None);
    }

    #[test]
    fn reads_own_cgroup_paths() {
        let v1 = "9:name=systemd:/\n4:memory:/ecs/task/abc\n1:cpu,cpuacct:/ecs\n0::/\n";
        assert_eq!(
            parse_own_cgroup(v1),
            OwnCgroup {
                unified: Some("/".into()),
                memory_v1: Some("/ecs/task/abc".into()),
            }
        );
        assert_eq!(
            parse_own_cgroup("0::/system.slice/app.service\n")
                .unified
                .as_deref(),
            Some("/system.slice/app.service")
        );
    }

    #[test]
    fn figures_are_mib_and_whole_percent() {
        let r = reading(256 * MIB, 512 * MIB, 90);
        assert_eq!(
            (r.used, r.total, r.percentage, r.status),
            (256, 512, 50, Status::Healthy)
        );
        let r = reading(461 * MIB, 512 * MIB, 90);
        assert_eq!((r.percentage, r.status), (90, Status::Degraded));
        let r = reading(460 * MIB, 512 * MIB, 90);
        assert_eq!((r.percentage, r.status), (90, Status::Healthy));
    }
}
