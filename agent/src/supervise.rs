//! Running the app: forward signals, stop it within the stop timeout, restart or signal
//! it when a secret rotates, and leave nothing behind when it exits.
//!
//! Policy only; the system calls are in [`crate::process`].
//!
//! The stop sequence, which fits inside ECS's (SIGTERM, `stopTimeout` — 30 s by default
//! — then SIGKILL):
//! 1. SIGTERM to the agent → the in-process `/health` drains (503) at once.
//! 2. With `DECKHAND_STOP_DELAY`, the app keeps running, and gets no signal, for the
//!    delay: the load balancer sees the 503 and stops routing here while the app still
//!    answers what is routed meanwhile. A second SIGTERM, or a SIGINT, ends the delay
//!    at once; any other signal is forwarded as usual. The delay is this loop's own
//!    timer: nothing here waits on logging.
//! 3. `DECKHAND_STOP_SIGNAL` to the app (its group with `DECKHAND_SIGNAL_GROUP`).
//! 4. Still running after `DECKHAND_STOP_TIMEOUT` → SIGKILL to the app's process group.
//! 5. The app exited → processes it left behind get SIGTERM, and SIGKILL after
//!    [`LEFTOVER_GRACE`].
//! 6. The agent exits with the app's code, or 128 + n.

use std::future::pending;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{OnRotate, Supervision};
use crate::exit;
use crate::process::{self, ChildSpec, Event, ProcessControl, Spawned};
use crate::secrets::{ChildEnv, Resolved, Secrets};

/// How long processes the app left behind get between SIGTERM and SIGKILL.
pub const LEFTOVER_GRACE: Duration = Duration::from_secs(2);
/// How long to wait for SIGKILLed processes to be reaped before giving up on them.
const KILL_WAIT: Duration = Duration::from_secs(2);
/// How often to look for leftover processes while waiting for them.
const LEFTOVER_POLL: Duration = Duration::from_millis(50);

/// Secret rotation while the app runs.
pub struct Rotation {
    pub on_rotate: OnRotate,
    /// Each successful refresh, changed or not.
    pub updates: mpsc::Receiver<Resolved>,
    /// The environment the app was started with.
    pub current: ChildEnv,
}

/// What the rest of the agent hears about the app's life.
pub struct Hooks<'a> {
    /// Called with every app started (the first, and each restart): takes its pipes.
    pub on_spawn: Box<dyn FnMut(&mut Spawned) + 'a>,
    /// Cancelled when SIGTERM arrives (the in-process health server starts draining).
    pub stopping: Option<healthcheck::CancellationToken>,
    /// Called with every secret loaded so far when a rotation changed some, before the
    /// app is signalled or restarted (the log sanitizer learns the new values first).
    pub on_rotated: Box<dyn FnMut(&Secrets) + 'a>,
}

impl Default for Hooks<'_> {
    fn default() -> Self {
        Hooks {
            on_spawn: Box::new(|_| {}),
            stopping: None,
            on_rotated: Box::new(|_| {}),
        }
    }
}

/// How the app ended.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// The agent's exit code.
    pub code: u8,
    /// When the stop timeout began, if a stop was asked for: SIGTERM, or with a stop
    /// delay the end of the delay (when the app got its stop signal). What is left of
    /// the stop timeout, for the last log flush, counts from it.
    pub stop_requested: Option<Instant>,
}

/// Runs the app until it exits. `secrets` gains the values of every rotation.
pub async fn supervise(
    control: &mut ProcessControl,
    mut spec: ChildSpec,
    options: &Supervision,
    mut rotation: Option<Rotation>,
    secrets: &watch::Sender<Secrets>,
    mut hooks: Hooks<'_>,
) -> Outcome {
    let mut stop_requested = None;
    let outcome = |code: u8, stop_requested| Outcome {
        code,
        stop_requested,
    };
    let mut child = match start(control, &spec, &mut hooks) {
        Ok(c) => c,
        Err(code) => return outcome(code, None),
    };
    let mut stop_at: Option<Instant> = None;
    // SIGTERM arrived: the app is being stopped for good, never restarted.
    let mut stopping = false;
    // SIGTERM arrived with a stop delay: the app gets its stop signal then.
    let mut delay_until: Option<Instant> = None;
    let mut restart_with: Option<ChildSpec> = None;
    let status = loop {
        let kill_timer = async {
            match stop_at {
                Some(t) => tokio::time::sleep_until(t).await,
                None => pending().await,
            }
        };
        let delay_timer = async {
            match delay_until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => pending().await,
            }
        };
        let update = async {
            match rotation.as_mut() {
                Some(r) => r.updates.recv().await,
                None => pending().await,
            }
        };
        tokio::select! {
            event = control.next_event() => match event {
                None => {
                    tracing::error!("the reaper thread has stopped; killing the app");
                    process::send(child.pid, Signal::SIGKILL, true);
                    return outcome(exit::SOFTWARE, stop_requested);
                }
                Some(Event::Signal(sig)) if delay_until.is_some() && matches!(sig, Signal::SIGTERM | Signal::SIGINT) => {
                    tracing::info!(received = %sig, "{sig} during the stop delay: stopping the app now");
                    delay_until = None;
                    stop_requested = Some(Instant::now());
                    stop_at = Some(send_stop(child.pid, options));
                }
                Some(Event::Signal(Signal::SIGTERM)) => {
                    stopping = true;
                    restart_with = None;
                    if let Some(token) = &hooks.stopping {
                        token.cancel();
                    }
                    stop_requested.get_or_insert_with(Instant::now);
                    // An app already being stopped (a restart after a rotation) serves
                    // nothing worth waiting for: no delay then.
                    if stop_at.is_none() && !options.stop_delay.is_zero() {
                        let delay = humantime::format_duration(options.stop_delay);
                        tracing::info!(delay = %delay, signal = %options.stop_signal, "SIGTERM: draining; the app keeps running and gets {} in {delay} (DECKHAND_STOP_DELAY)", options.stop_signal);
                        delay_until = Some(Instant::now() + options.stop_delay);
                    } else if stop_at.is_none() {
                        stop_at = Some(send_stop(child.pid, options));
                    } else {
                        tracing::debug!(sent = %options.stop_signal, "forwarding SIGTERM as the stop signal");
                        process::send(child.pid, options.stop_signal, options.signal_group);
                    }
                }
                Some(Event::Signal(sig)) => {
                    tracing::debug!(received = %sig, "forwarding a signal");
                    process::send(child.pid, sig, options.signal_group);
                }
                Some(Event::Exited { pid, status, generation })
                    if pid == child.pid && generation >= child.generation =>
                {
                    let Some(next) = restart_with.take() else {
                        break status;
                    };
                    if clean_up(control, child.pid).await {
                        stop_requested.get_or_insert_with(Instant::now);
                        break status;
                    }
                    tracing::info!("restarting the app with the rotated secrets");
                    child = match start(control, &next, &mut hooks) {
                        Ok(c) => c,
                        Err(code) => return outcome(code, stop_requested),
                    };
                    spec = next;
                    stop_at = None;
                }
                Some(Event::Exited { pid, status, .. }) => {
                    tracing::debug!(pid = pid.as_raw(), ?status, "reaped an orphan");
                }
            },
            () = delay_timer => {
                delay_until = None;
                stop_requested = Some(Instant::now());
                stop_at = Some(send_stop(child.pid, options));
            }
            () = kill_timer => {
                tracing::warn!(timeout = %humantime::format_duration(options.stop_timeout), "the app did not exit within the stop timeout; sending SIGKILL to its process group");
                process::send(child.pid, Signal::SIGKILL, true);
                process::send(child.pid, Signal::SIGKILL, false);
                stop_at = None;
            }
            update = update => match update {
                None => rotation = None,
                Some(resolved) => {
                    let Some(r) = rotation.as_mut() else { continue };
                    let changed = r.current.changed_names(&resolved.env);
                    if changed.is_empty() {
                        continue;
                    }
                    secrets.send_modify(|s| s.extend(&resolved.secrets));
                    (hooks.on_rotated)(&secrets.borrow());
                    match r.on_rotate {
                        OnRotate::Ignore => {
                            tracing::info!(?changed, "secret values changed; DECKHAND_ON_ROTATE=ignore, so the app keeps the values it started with");
                        }
                        OnRotate::Signal(sig) => {
                            tracing::info!(?changed, signal = %sig, "secret values changed; signalling the app");
                            process::send(child.pid, sig, options.signal_group);
                        }
                        OnRotate::Restart if !stopping => {
                            tracing::info!(?changed, "secret values changed; restarting the app gracefully");
                            restart_with = Some(ChildSpec { env: resolved.env.to_vec(), ..spec.clone() });
                            process::send(child.pid, options.stop_signal, options.signal_group);
                            stop_at.get_or_insert(Instant::now() + options.stop_timeout);
                        }
                        OnRotate::Restart => {}
                    }
                    r.current = resolved.env;
                }
            }
        }
    };
    if clean_up(control, child.pid).await {
        stop_requested.get_or_insert_with(Instant::now);
    }
    let code = status.exit_code();
    tracing::info!(?status, exit_code = code, "the app exited");
    outcome(code, stop_requested)
}

/// Sends the app its stop signal; returns when it gets SIGKILL.
fn send_stop(app: Pid, options: &Supervision) -> Instant {
    let timeout = humantime::format_duration(options.stop_timeout);
    tracing::info!(signal = %options.stop_signal, timeout = %timeout, "stopping the app: sent {}, SIGKILL after {timeout}", options.stop_signal);
    process::send(app, options.stop_signal, options.signal_group);
    Instant::now() + options.stop_timeout
}

fn start(control: &ProcessControl, spec: &ChildSpec, hooks: &mut Hooks) -> Result<Spawned, u8> {
    match control.spawn(spec.clone()) {
        Ok(mut child) => {
            tracing::debug!(pid = child.pid.as_raw(), "started the app");
            (hooks.on_spawn)(&mut child);
            Ok(child)
        }
        Err(e) => {
            let program = spec.program.to_string_lossy();
            let code = if e.kind() == std::io::ErrorKind::NotFound {
                exit::NOT_FOUND
            } else {
                exit::CANNOT_EXECUTE
            };
            if e.raw_os_error() == Some(nix::libc::E2BIG) {
                let why = too_large(spec, process::argument_space());
                tracing::error!(program = %program, error = %e, "cannot run {program}: {why}");
            } else if let Some(why) = not_started(spec, &e) {
                tracing::error!(program = %program, error = %e, "cannot run {program}: {e}: {why}");
            } else {
                tracing::error!(program = %program, error = %e, "cannot run {program}: {e}");
            }
            Err(code)
        }
    }
}

/// What the kernel's one word for a failed start (`e`) leaves out, from the file the
/// command names ([`launch`]): an empty command, a program for another CPU, a script
/// whose `#!` interpreter is missing or ends in a carriage return, a program whose
/// loader is missing, a directory, a file without the execute bit. `None` when none of
/// them is the case.
fn not_started(spec: &ChildSpec, e: &std::io::Error) -> Option<String> {
    use crate::launch::{machine_name, own_machine, platform, read_head, Head};
    use std::os::unix::fs::PermissionsExt;
    // A path from the file, as written: at most 200 characters of it.
    let show = |bytes: &[u8]| {
        String::from_utf8_lossy(bytes)
            .chars()
            .take(200)
            .collect::<String>()
    };
    if spec.program.is_empty() {
        return Some(
            "the command's first word is empty: look at the task definition's command \
             (or what follows `agent --`)"
                .into(),
        );
    }
    let errno = e.raw_os_error();
    if errno == Some(nix::libc::EACCES) {
        // By name, `execvp` found only files it could not run: the first one it tried.
        let (path, found) = match process::program_path(&spec.program, &spec.env) {
            Some(path) => (path, String::new()),
            None => {
                let path = process::first_on_path(&spec.program, &spec.env)?;
                let found = format!("on PATH it is {}: ", show(path.as_os_str().as_bytes()));
                (path, found)
            }
        };
        let meta = std::fs::metadata(path).ok()?;
        if meta.is_dir() {
            return Some(format!("{found}it is a directory, not a program"));
        }
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o111 == 0 {
            return Some(format!(
                "{found}the file is not executable (mode {mode:04o}): `chmod +x` it when the \
                 image is built, or run it through its interpreter (`sh FILE`)"
            ));
        }
        // /proc/self belongs to the process's effective user.
        let uid = std::fs::metadata("/proc/self").map_or_else(
            |_| "?".to_owned(),
            |m| std::os::unix::fs::MetadataExt::uid(&m).to_string(),
        );
        return Some(format!(
            "{found}the file is executable (mode {mode:04o}), but not by this user (uid \
             {uid}), or its filesystem is mounted noexec"
        ));
    }
    let head = process::program_head(&spec.program, &spec.env)?;
    match (errno, read_head(&head)) {
        (Some(nix::libc::ENOEXEC), Head::Elf { machine, .. }) if Some(machine) != own_machine() => {
            let theirs = machine_name(machine)
                .map_or_else(|| format!("ELF machine {machine:#x}"), str::to_owned);
            Some(format!(
                "it is a program for {theirs}, and this machine is {}: build the image for \
                 {} (`docker buildx build --platform {}`), or run the task on {theirs} (the \
                 task definition's runtimePlatform.cpuArchitecture)",
                std::env::consts::ARCH,
                platform(),
                platform()
            ))
        }
        (Some(nix::libc::ENOEXEC), Head::Elf { .. }) => {
            Some("it is an ELF file this machine's kernel does not run (corrupt, or built for another system)".into())
        }
        (Some(nix::libc::ENOEXEC), _) => Some(
            "it is neither a program nor a script (its first line holds a NUL byte)".into(),
        ),
        (
            Some(nix::libc::ENOENT),
            Head::Script {
                interpreter,
                carriage_return: true,
            },
        ) => Some(format!(
            "its #! line ends with a carriage return, so the interpreter asked for is \
             \"{}\\r\": the script has Windows line endings (CRLF); convert it to LF \
             (dos2unix, or `*.sh text eol=lf` in .gitattributes)",
            show(&interpreter)
        )),
        (Some(nix::libc::ENOENT), Head::Script { interpreter, .. }) => {
            let there = std::fs::metadata(std::ffi::OsStr::from_bytes(&interpreter)).is_ok();
            Some(if there {
                format!(
                    "its #! interpreter {} is there but could not be started (its own loader \
                     or libraries may be missing)",
                    show(&interpreter)
                )
            } else {
                format!(
                    "its #! line names the interpreter {}, which is not in the image: install \
                     it, or change the #! line (/bin/sh is in most images)",
                    show(&interpreter)
                )
            })
        }
        (
            Some(nix::libc::ENOENT),
            Head::Elf {
                loader: Some(loader),
                ..
            },
        ) if std::fs::metadata(std::ffi::OsStr::from_bytes(&loader)).is_err() => Some(format!(
            "it is linked for the loader {}, which is not in the image: it was built for \
             another C library or system (musl against glibc, or the reverse); build it \
             static, or on the image's own base",
            show(&loader)
        )),
        _ => None,
    }
}

/// What `E2BIG` from starting the app means, from what the app was to get: the size
/// of its arguments and environment as the kernel counts them (each string with its
/// NUL, and a pointer) against `space` ([`process::argument_space`]), a variable over
/// the limit of one string, and the variables that weigh most. Names only: the values
/// may be secrets.
fn too_large(spec: &ChildSpec, space: usize) -> String {
    const POINTER: usize = std::mem::size_of::<usize>();
    let kib = |n: usize| format!("{} KiB", n.div_ceil(1024));
    let arguments: usize = std::iter::once(&spec.program)
        .chain(&spec.args)
        .map(|a| a.len() + 1 + POINTER)
        .sum();
    let mut variables: Vec<(String, usize)> = spec
        .env
        .iter()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), k.len() + v.len() + 2))
        .collect();
    let total = arguments + variables.iter().map(|(_, n)| n + POINTER).sum::<usize>();
    variables.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut why = format!(
        "its arguments and environment are more than Linux lets a program start with \
         (E2BIG, Argument list too long): {} variable{} and {} argument{}, {} in all, \
         where Linux allows {} (a quarter of the stack's limit, `ulimit -s`)",
        variables.len(),
        if variables.len() == 1 { "" } else { "s" },
        spec.args.len() + 1,
        if spec.args.is_empty() { "" } else { "s" },
        kib(total),
        kib(space),
    );
    if let Some((name, n)) = variables.iter().find(|(_, n)| *n > process::MAX_ARG_STRLEN) {
        why.push_str(&format!(
            "; {name} alone is {}, over the {} one variable may hold",
            kib(*n),
            kib(process::MAX_ARG_STRLEN)
        ));
    }
    let largest: Vec<String> = variables
        .iter()
        .take(3)
        .map(|(name, n)| format!("{name} ({})", kib(*n)))
        .collect();
    if !largest.is_empty() {
        why.push_str(&format!("; the largest: {}", largest.join(", ")));
    }
    why.push_str(
        ". Give the app fewer or smaller values (each key of a DECKHAND_ENV_SECRETS secret \
         and each parameter of a Parameter Store path is a variable of its own), or raise \
         the stack limit (`ulimits` in the task definition)",
    );
    why
}

/// Ends whatever the app left behind: SIGTERM to its process group and to every child
/// of the agent (orphans are re-parented to it), SIGKILL after [`LEFTOVER_GRACE`].
/// Returns whether a stop signal (SIGTERM, SIGINT, SIGQUIT) arrived meanwhile.
pub async fn clean_up(control: &mut ProcessControl, group: Pid) -> bool {
    let mut stop_requested = false;
    if !process::has_children() {
        return false;
    }
    let left = process::children();
    if left.is_empty() {
        return false;
    }
    tracing::info!(
        processes = left.len(),
        "the app left processes behind; sending them SIGTERM"
    );
    process::send(group, Signal::SIGTERM, true);
    for pid in &left {
        process::send(*pid, Signal::SIGTERM, false);
    }
    let grace_end = Instant::now() + LEFTOVER_GRACE;
    while Instant::now() < grace_end {
        if process::children().is_empty() {
            return stop_requested;
        }
        stop_requested |= wait_a_little(control).await;
    }
    let give_up = Instant::now() + KILL_WAIT;
    let mut killing = false;
    loop {
        let left = process::children();
        if left.is_empty() {
            return stop_requested;
        }
        if Instant::now() >= give_up {
            tracing::warn!(
                processes = left.len(),
                "processes are still there after SIGKILL"
            );
            return stop_requested;
        }
        if killing {
            tracing::debug!(
                processes = left.len(),
                "sending SIGKILL again to the processes left behind"
            );
        } else {
            // Said once: a process killed here may have lost work it had not saved.
            tracing::warn!(
                processes = left.len(),
                pids = %pid_list(&left),
                "processes the app left behind did not exit within {} s of SIGTERM; sending them SIGKILL",
                LEFTOVER_GRACE.as_secs()
            );
            killing = true;
        }
        process::send(group, Signal::SIGKILL, true);
        for pid in &left {
            process::send(*pid, Signal::SIGKILL, false);
        }
        stop_requested |= wait_a_little(control).await;
    }
}

/// The first few of `pids`, for a message: "12, 13, 14 and 2 more".
fn pid_list(pids: &[Pid]) -> String {
    const SHOWN: usize = 5;
    let mut text = pids
        .iter()
        .take(SHOWN)
        .map(|p| p.as_raw().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if pids.len() > SHOWN {
        text.push_str(&format!(" and {} more", pids.len() - SHOWN));
    }
    text
}

/// Waits for the next event or a short while; returns whether it was a stop signal.
async fn wait_a_little(control: &mut ProcessControl) -> bool {
    tokio::select! {
        event = control.next_event() => matches!(
            event,
            Some(Event::Signal(Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT))
        ),
        () = tokio::time::sleep(LEFTOVER_POLL) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(env: &[(&str, String)]) -> ChildSpec {
        ChildSpec {
            program: "app".into(),
            args: vec!["--serve".into()],
            env: env.iter().map(|(k, v)| (k.into(), v.into())).collect(),
            stdout: process::Output::Inherit,
            stderr: process::Output::Pipe,
        }
    }

    #[test]
    fn too_large_an_environment_is_named_by_its_sizes_and_names_only() {
        let huge = "s3cr3t".repeat(30_000);
        let said = too_large(
            &spec(&[
                ("PATH", "/bin".to_owned()),
                ("DB", "p".repeat(40_000)),
                ("HUGE", huge.clone()),
                ("KEY", "k".repeat(50_000)),
            ]),
            150 << 10,
        );
        assert!(
            said.starts_with(
                "its arguments and environment are more than Linux lets a program start \
                 with (E2BIG, Argument list too long): 4 variables and 2 arguments, 264 KiB \
                 in all, where Linux allows 150 KiB"
            ),
            "{said}"
        );
        assert!(
            said.contains("; HUGE alone is 176 KiB, over the 128 KiB one variable may hold"),
            "{said}"
        );
        assert!(
            said.contains("; the largest: HUGE (176 KiB), KEY (49 KiB), DB (40 KiB). "),
            "{said}"
        );
        assert!(!said.contains("s3cr3t") && !said.contains("ppp"), "{said}");
        let one = too_large(&spec(&[("A", String::new())]), 1);
        assert!(one.contains(": 1 variable and 2 arguments"), "{one}");
    }

    #[test]
    fn a_pid_list_names_five_and_counts_the_rest() {
        let pids = |n: i32| (1..=n).map(Pid::from_raw).collect::<Vec<_>>();
        assert_eq!(pid_list(&pids(3)), "1, 2, 3");
        assert_eq!(pid_list(&pids(5)), "1, 2, 3, 4, 5");
        assert_eq!(pid_list(&pids(7)), "1, 2, 3, 4, 5 and 2 more");
    }
}
