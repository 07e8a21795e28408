//! Process control: the one place that talks to the kernel about signals and processes.
//!
//! The agent is PID 1 of the container. PID 1 has duties no other process has: the
//! kernel drops signals sent to it unless it asks for them, and every orphan in the
//! container becomes its child and stays a zombie until it is reaped. This module does
//! both, the way tini does, and it does so **before** the async runtime starts:
//!
//! - [`ProcessControl::start`] blocks the forwarded signals and `SIGCHLD` in the calling
//!   thread, so every thread created afterwards (tokio's included) inherits the mask and
//!   no signal handler ever runs. One dedicated thread, the *reaper*, takes them with
//!   `sigwait`.
//! - The reaper owns every `waitpid`: on `SIGCHLD` it reaps every child that has exited,
//!   the app and any orphan alike, and reports each as an [`Event`]. Nothing else in the
//!   process may wait for children: `tokio::process` is not used (it reaps its own
//!   children and would steal statuses, or have them stolen), and the app is spawned
//!   with `std::process::Command`, whose `Child` is never waited on.
//! - `Command::spawn` itself may call `waitpid` on a child whose `exec` failed; the reaper
//!   and [`ProcessControl::spawn`] share a lock so the two never race for that status.
//! - When the agent is not PID 1 (run by hand, or under another init) it becomes a child
//!   subreaper (`PR_SET_CHILD_SUBREAPER`), so orphans of the app still come to it.
//!
//! What this module is not: policy. When to forward which signal, when to give up on a
//! stop and kill, what to do on exit — that is [`crate::supervise`].

// Denied in the rest of the crate. Allowed here for the one thing std cannot do safely:
// a `pre_exec` hook that clears the app's signal mask (and hands it the terminal when
// stdin is one). Each block below says why it is sound.
#![allow(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::process::{ChildStderr, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use nix::errno::Errno;
use nix::sys::signal::{self, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::launch;

/// The signals the agent passes on to the app (`SIGTERM` possibly rewritten to
/// `DECKHAND_STOP_SIGNAL` by the supervisor).
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// It called `exit(code)`.
    Code(i32),
    /// A signal killed it.
    Signaled(Signal),
}

impl ExitStatus {
    /// The agent's own exit code for this: the app's code, or 128 + n for signal n, as
    /// shells report it.
    pub fn exit_code(self) -> u8 {
        match self {
            ExitStatus::Code(c) => (c & 0xff) as u8,
            ExitStatus::Signaled(s) => 128u8.wrapping_add(s as i32 as u8),
        }
    }
}

/// What the reaper thread reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// One of [`FORWARDED`] arrived.
    Signal(Signal),
    /// A child was reaped: the app or an orphan.
    Exited {
        pid: Pid,
        status: ExitStatus,
        /// The spawn generation at the time it was reaped: a process reaped before the
        /// app of generation `g` was spawned has a smaller one, so a reused pid is never
        /// mistaken for the app's.
        generation: u64,
    },
}

/// Where the app's stdout or stderr goes. The log pipeline will use [`Output::Pipe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    /// The agent's own stream (the awslogs driver reads it).
    #[default]
    Inherit,
    /// A pipe the agent reads: [`Spawned::stdout`]/[`Spawned::stderr`].
    Pipe,
}

impl Output {
    fn stdio(self) -> Stdio {
        match self {
            Output::Inherit => Stdio::inherit(),
            Output::Pipe => Stdio::piped(),
        }
    }
}

/// What to run. `Debug` shows the variable names only: values may be secrets.
#[derive(Clone)]
pub struct ChildSpec {
    pub program: OsString,
    pub args: Vec<OsString>,
    /// The complete environment: the child inherits nothing else.
    pub env: Vec<(OsString, OsString)>,
    pub stdout: Output,
    pub stderr: Output,
}

impl std::fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChildSpec")
            .field("program", &self.program)
            .field("args", &self.args.len())
            .field("env", &self.env.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// A started app. Its exit arrives as an [`Event::Exited`] with this pid and generation.
#[derive(Debug)]
pub struct Spawned {
    /// Also its process group id: the app leads a group of its own.
    pub pid: Pid,
    pub generation: u64,
    /// Present when [`ChildSpec::stdout`] is [`Output::Pipe`]; for tokio, use
    /// `tokio::process::ChildStdout::from_std` (it does not reap anything).
    pub stdout: Option<ChildStdout>,
    pub stderr: Option<ChildStderr>,
}

/// Why process control could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot block signals for the reaper: {0}")]
    Mask(Errno),
    #[error("cannot start the reaper thread: {0}")]
    Thread(io::Error),
}

/// Signals, reaping and spawning. Create it first thing in `main`, before any other
/// thread exists.
pub struct ProcessControl {
    /// Held by the reaper while it calls `waitpid` and by `spawn` around
    /// `Command::spawn`: std may `waitpid` a child whose exec failed, and must get its
    /// status, not have it stolen.
    wait_lock: Arc<Mutex<()>>,
    /// Incremented under `wait_lock` by every spawn; see [`Event::Exited`].
    generation: Arc<AtomicU64>,
    events: mpsc::UnboundedReceiver<Event>,
    /// Whether stdin is a terminal: then the app's group gets the terminal.
    stdin_is_tty: bool,
}

impl ProcessControl {
    /// Blocks the forwarded signals and `SIGCHLD` in this thread (and so in every thread
    /// started later), becomes a child subreaper unless PID 1, and starts the reaper.
    pub fn start() -> Result<ProcessControl, StartError> {
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(s);
        }
        set.add(Signal::SIGCHLD);
        signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&set), None)
            .map_err(StartError::Mask)?;
        if nix::unistd::getpid().as_raw() != 1 {
            // Without it orphans of the app go to the real init and are reaped there;
            // only the "no process left behind" cleanup gets weaker, so go on.
            if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
                tracing::warn!(error = %e, "cannot become a child subreaper: orphans of the app will not be reaped by the agent");
            }
        }
        let wait_lock = Arc::new(Mutex::new(()));
        let generation = Arc::new(AtomicU64::new(0));
        let (tx, events) = mpsc::unbounded_channel();
        let (lock, gen) = (wait_lock.clone(), generation.clone());
        std::thread::Builder::new()
            .name("reaper".into())
            .stack_size(64 * 1024)
            .spawn(move || reaper(set, lock, gen, tx))
            .map_err(StartError::Thread)?;
        Ok(ProcessControl {
            wait_lock,
            generation,
            events,
            stdin_is_tty: io::IsTerminal::is_terminal(&io::stdin()),
        })
    }

    /// The next signal or reaped child. `None` only if the reaper thread is gone.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// Starts the app in a process group of its own (so a stop can kill everything it
    /// started), with exactly `spec.env` as its environment and the agent's stdin, no
    /// signal blocked and every forwarded signal at its default disposition.
    ///
    /// With `posix_spawn` ([`ProcessControl::spawn_posix`]): glibc starts the child with
    /// `clone(CLONE_VM | CLONE_VFORK)`, so the agent's page tables are not copied and
    /// nothing is copied on write after it, as `fork` does (about 0.4 ms of a start).
    /// Two cases take `fork` and a hook before `exec` instead
    /// ([`ProcessControl::spawn_forked`]): a terminal on stdin, which the app's group
    /// must take from the child itself, and a file `exec` refuses as not a program
    /// (`ENOEXEC`: a script without `#!`), which `execvp` runs through `/bin/sh` — unless
    /// it is a binary ([`launch::looks_binary`]: a program for another CPU), which is
    /// refused with `ENOEXEC` as `bash` refuses it, not handed to `sh` to fail on as a
    /// script (`Syntax error: "(" unexpected`, exit 2).
    /// With a terminal, where `exec` is tried in the child only, a program for another
    /// CPU is refused before it, from its ELF header ([`launch::runs_here`]).
    pub fn spawn(&self, spec: ChildSpec) -> io::Result<Spawned> {
        if !self.stdin_is_tty {
            match self.spawn_posix(&spec) {
                Err(e)
                    if e.raw_os_error() == Some(Errno::ENOEXEC as i32)
                        && !program_head(&spec.program, &spec.env)
                            .is_some_and(|head| launch::looks_binary(&head)) => {}
                other => return other,
            }
        } else if program_head(&spec.program, &spec.env).is_some_and(|h| !launch::runs_here(&h)) {
            return Err(io::Error::from_raw_os_error(Errno::ENOEXEC as i32));
        }
        self.spawn_forked(spec)
    }

    /// [`ProcessControl::spawn`] through `posix_spawn`, whose attributes do what the
    /// hook of [`ProcessControl::spawn_forked`] does: an empty signal mask, the default
    /// disposition of every forwarded signal (and of `SIGPIPE`, which the Rust runtime
    /// ignores in the agent), and a process group of its own. The program is found on
    /// the app's `PATH` here ([`find_program`]), as `execvp` would find it.
    fn spawn_posix(&self, spec: &ChildSpec) -> io::Result<Spawned> {
        use nix::spawn::{PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
        let path = find_program(&spec.program, &spec.env)?;
        let argv = std::iter::once(&spec.program)
            .chain(&spec.args)
            .map(|a| c_string(a.as_bytes().to_vec()))
            .collect::<io::Result<Vec<_>>>()?;
        let envp = spec
            .env
            .iter()
            .map(|(k, v)| c_string([k.as_bytes(), b"=", v.as_bytes()].concat()))
            .collect::<io::Result<Vec<_>>>()?;
        let mut actions = PosixSpawnFileActions::init()?;
        let stdout = child_pipe(spec.stdout, 1, &mut actions)?;
        let stderr = child_pipe(spec.stderr, 2, &mut actions)?;
        let mut attr = PosixSpawnAttr::init()?;
        attr.set_pgroup(Pid::from_raw(0))?;
        attr.set_sigmask(&SigSet::empty())?;
        let mut defaults = SigSet::empty();
        for sig in FORWARDED.into_iter().chain([Signal::SIGPIPE]) {
            defaults.add(sig);
        }
        attr.set_sigdefault(&defaults)?;
        attr.set_flags(
            PosixSpawnFlags::POSIX_SPAWN_SETPGROUP
                | PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK
                | PosixSpawnFlags::POSIX_SPAWN_SETSIGDEF,
        )?;
        // glibc reaps a child whose exec failed itself: the reaper must not take it.
        let _guard = self.wait_lock.lock().unwrap_or_else(|e| e.into_inner());
        let pid = nix::spawn::posix_spawn(path.as_c_str(), &actions, &attr, &argv, &envp)?;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        // The write ends are the child's now; only the read ends stay here.
        let stdout = stdout.map(|(read, _write)| ChildStdout::from(read));
        let stderr = stderr.map(|(read, _write)| ChildStderr::from(read));
        widen(stdout.as_ref());
        widen(stderr.as_ref());
        Ok(Spawned {
            pid,
            generation,
            stdout,
            stderr,
        })
    }

    /// [`ProcessControl::spawn`] through std's `Command`: `fork`, the hook below, and
    /// `execvp`.
    fn spawn_forked(&self, spec: ChildSpec) -> io::Result<Spawned> {
        let mut cmd = Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(spec.env)
            .stdin(Stdio::inherit())
            .stdout(spec.stdout.stdio())
            .stderr(spec.stderr.stdio())
            .process_group(0);
        // Borrowed for the hook below only when there is a terminal to hand over.
        let terminal = if self.stdin_is_tty {
            // SAFETY: fd 0 is open (it was found to be a terminal at start) and the
            // agent never closes it, so the borrow is valid whenever a child is forked.
            Some(unsafe { BorrowedFd::borrow_raw(0) })
        } else {
            None
        };
        // SAFETY: the hook runs in the forked child before exec, where only
        // async-signal-safe calls are allowed: it calls sigaction, sigprocmask and
        // tcsetpgrp (an ioctl) through nix, which neither allocate nor take locks, and
        // captures only a `Copy` file descriptor. sigaction is `unsafe` for installing
        // a handler; installing SIG_DFL runs no code of ours.
        //
        // Why it exists: std does not reset the signal mask of the child, and the agent
        // blocks the forwarded signals in every thread (see the module docs), so
        // without this the app would start with SIGTERM & co. blocked and never die of
        // them. Dispositions too: a signal ignored when the agent started (a shell
        // starts background jobs with SIGINT and SIGQUIT ignored; `nohup` ignores
        // SIGHUP) would stay ignored in the app, and a shell app could not even trap
        // it. The agent decides what to forward; the app gets the default for each. With a terminal on stdin (`docker run -it`), the app's process group
        // also takes the terminal's foreground, as under a shell; SIGTTOU stays blocked
        // while it does, because a background group asking for the terminal is
        // otherwise stopped by it. A failed tcsetpgrp is ignored: the app then runs as
        // it would without -t.
        unsafe {
            cmd.pre_exec(move || {
                if let Some(fd) = terminal {
                    let mut ttou = SigSet::empty();
                    ttou.add(Signal::SIGTTOU);
                    signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&ttou), None)?;
                    let _ = nix::unistd::tcsetpgrp(fd, nix::unistd::getpgrp());
                }
                let default = signal::SigAction::new(
                    signal::SigHandler::SigDfl,
                    signal::SaFlags::empty(),
                    SigSet::empty(),
                );
                for sig in FORWARDED {
                    signal::sigaction(sig, &default)?;
                }
                signal::pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
                Ok(())
            });
        }
        let _guard = self.wait_lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut child = cmd.spawn()?;
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let pid = Pid::from_raw(child.id() as i32);
        widen(child.stdout.as_ref());
        widen(child.stderr.as_ref());
        // The `Child` is dropped without `wait`: its status belongs to the reaper.
        Ok(Spawned {
            pid,
            generation,
            stdout: child.stdout.take(),
            stderr: child.stderr.take(),
        })
    }
}

/// `bytes` as a C string; a NUL inside is refused as std's `Command` refuses it.
fn c_string(bytes: Vec<u8>) -> io::Result<std::ffi::CString> {
    std::ffi::CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "nul byte found in provided data",
        )
    })
}

/// For [`Output::Pipe`], a pipe whose write end becomes the child's `fd` (both ends are
/// close-on-exec here; `dup2` in the child clears it on `fd`).
fn child_pipe(
    output: Output,
    fd: RawFd,
    actions: &mut nix::spawn::PosixSpawnFileActions,
) -> io::Result<Option<(OwnedFd, OwnedFd)>> {
    match output {
        Output::Inherit => Ok(None),
        Output::Pipe => {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
            actions.add_dup2(write.as_raw_fd(), fd)?;
            Ok(Some((read, write)))
        }
    }
}

/// The first [`launch::HEAD_BYTES`] bytes of the file `program` names (found as
/// [`find_program`] finds it), when it is a regular file that can be read: opened
/// without waiting ([`conventions::file::open_regular`]), so a named pipe given as the
/// command does not hold the start.
pub fn program_head(program: &OsStr, env: &[(OsString, OsString)]) -> Option<Vec<u8>> {
    use std::io::Read;
    let path = program_path(program, env)?;
    let mut head = Vec::with_capacity(launch::HEAD_BYTES);
    conventions::file::open_regular(&path)
        .ok()?
        .take(launch::HEAD_BYTES as u64)
        .read_to_end(&mut head)
        .ok()?;
    Some(head)
}

/// The file `program` names: itself when it has a `/`, else the first file of that
/// name on `env`'s `PATH` that `execvp` would run ([`find_program`]).
pub fn program_path(program: &OsStr, env: &[(OsString, OsString)]) -> Option<std::path::PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return Some(program.into());
    }
    let found = find_program(program, env).ok()?;
    Some(OsStr::from_bytes(found.as_bytes()).into())
}

/// The first file of the name `program` in the directories of `env`'s `PATH`, whatever
/// it is: when `execvp` found only files it could not run (`EACCES`), the first one it
/// tried, for the reason why. `None` when `program` has a `/` or no such file is there.
pub fn first_on_path(program: &OsStr, env: &[(OsString, OsString)]) -> Option<std::path::PathBuf> {
    if program.is_empty() || program.as_bytes().contains(&b'/') {
        return None;
    }
    on_path(program, env).find(|file| std::fs::metadata(file).is_ok())
}

/// `program` in each directory of `env`'s `PATH`, in order (glibc's `/bin:/usr/bin`
/// without one; an empty entry is the working directory).
fn on_path<'a>(
    program: &'a OsStr,
    env: &'a [(OsString, OsString)],
) -> impl Iterator<Item = std::path::PathBuf> + 'a {
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(b"/bin:/usr/bin".as_slice(), |(_, v)| v.as_bytes());
    path.split(|&b| b == b':').map(move |dir| {
        let dir = if dir.is_empty() { b".".as_slice() } else { dir };
        std::path::Path::new(OsStr::from_bytes(dir)).join(program)
    })
}

/// The file `execvp` would run for `program` with `env` as the environment: `program`
/// itself when it names a path (has a `/`), else the first executable regular file of
/// that name in the directories of `env`'s `PATH` (glibc's `/bin:/usr/bin` without
/// one; an empty entry is the working directory). Not found: `ENOENT`, or `EACCES`
/// when only files that cannot be run were, as `execvp` reports.
fn find_program(program: &OsStr, env: &[(OsString, OsString)]) -> io::Result<std::ffi::CString> {
    use nix::unistd::{access, AccessFlags};
    let name = program.as_bytes();
    if name.contains(&b'/') {
        return c_string(name.to_vec());
    }
    if name.is_empty() {
        return Err(io::Error::from_raw_os_error(Errno::ENOENT as i32));
    }
    let mut denied = false;
    for file in on_path(program, env) {
        let Ok(meta) = std::fs::metadata(&file) else {
            continue;
        };
        if meta.is_file() && access(&file, AccessFlags::X_OK).is_ok() {
            return c_string(file.into_os_string().into_vec());
        }
        denied = true;
    }
    let errno = if denied { Errno::EACCES } else { Errno::ENOENT };
    Err(io::Error::from_raw_os_error(errno as i32))
}

/// Pipe capacities asked for the app's stdout and stderr, largest first: 1 MiB is
/// Linux's default ceiling for an unprivileged process (`/proc/sys/fs/pipe-max-size`).
/// Whenever the agent is busy with what it read (or gets no CPU for a moment), the app's
/// next writes wait for room in the pipe: at 20 MB/s the default 64 KiB is full in 3 ms,
/// 1 MiB in 50. Only what is written takes memory.
const PIPE_CAPACITIES: [nix::libc::c_int; 4] = [1 << 20, 1 << 19, 1 << 18, 1 << 17];

/// Makes the pipe the app writes its output into as large as the system allows. A
/// refusal (a lower `pipe-max-size`, or the user's pipe page limits) leaves it as it
/// is: the agent reads it just the same.
fn widen(pipe: Option<&impl AsFd>) {
    use nix::fcntl::{fcntl, FcntlArg};
    let Some(pipe) = pipe else { return };
    for size in PIPE_CAPACITIES {
        if fcntl(pipe.as_fd(), FcntlArg::F_SETPIPE_SZ(size)).is_ok() {
            return;
        }
    }
}

/// Sends `sig` to the process `pid`, or to its process group. A process that is already
/// gone is not an error: it may have exited a moment ago.
pub fn send(pid: Pid, sig: Signal, group: bool) {
    let result = if group {
        signal::killpg(pid, sig)
    } else {
        signal::kill(pid, sig)
    };
    match result {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            tracing::warn!(pid = pid.as_raw(), signal = %sig, error = %e, "cannot send {sig} to {pid}: {e}")
        }
    }
}

/// Linux's limit on one string of a program's arguments or environment
/// (`MAX_ARG_STRLEN`: 32 pages of 4 KiB).
pub const MAX_ARG_STRLEN: usize = 32 * 4096;

/// The room Linux gives a program's arguments and environment together, as `execve`
/// counts them (each string with its NUL, and a pointer to it): a quarter of the stack's
/// soft limit, at most three quarters of 8 MiB, at least 128 KiB.
pub fn argument_space() -> usize {
    const MOST: u64 = 6 << 20;
    const LEAST: u64 = 128 << 10;
    let stack = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_STACK)
        .map_or(8 << 20, |(soft, _)| soft);
    (stack / 4).clamp(LEAST, MOST) as usize
}

/// Whether the agent has any child at all (running, or exited and not reaped yet).
///
/// `waitid` with `WNOWAIT` only looks: it reaps nothing, so the reaper still gets every
/// status. It saves scanning `/proc` in the common case of an app that left nothing.
pub fn has_children() -> bool {
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    loop {
        match nix::sys::wait::waitid(nix::sys::wait::Id::All, flags) {
            Err(Errno::EINTR) => continue,
            Err(Errno::ECHILD) => return false,
            // Any other answer: there is someone to wait for (or we cannot tell).
            _ => return true,
        }
    }
}

/// The agent's children right now (zombies included), from `/proc`. Orphans of the app
/// are among them, because the agent is PID 1 or a subreaper.
pub fn children() -> Vec<Pid> {
    let me = std::process::id().to_string();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parent_of(&stat).map(|ppid| ppid == me))
                .unwrap_or(false)
        })
        .map(Pid::from_raw)
        .collect()
}

/// The parent pid in a `/proc/PID/stat` line: the second field after the command name,
/// which is in parentheses and may itself contain spaces and parentheses.
fn parent_of(stat: &str) -> Option<&str> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(1)
}

/// The reaper thread: takes every blocked signal with `sigwait`; on `SIGCHLD` reaps
/// every exited child.
fn reaper(
    set: SigSet,
    wait_lock: Arc<Mutex<()>>,
    generation: Arc<AtomicU64>,
    tx: mpsc::UnboundedSender<Event>,
) {
    loop {
        let sig = match set.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig != Signal::SIGCHLD {
            if tx.send(Event::Signal(sig)).is_err() {
                return;
            }
            continue;
        }
        let _guard = wait_lock.lock().unwrap_or_else(|e| e.into_inner());
        let generation = generation.load(Ordering::SeqCst);
        loop {
            let (pid, status) = match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid, ExitStatus::Code(code)),
                Ok(WaitStatus::Signaled(pid, s, _)) => (pid, ExitStatus::Signaled(s)),
                // Stops and continues are not asked for (no WUNTRACED); nothing to do.
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => continue,
                Err(Errno::EINTR) => continue,
                // ECHILD: no children at all.
                Err(_) => break,
            };
            let _ = tx.send(Event::Exited {
                pid,
                status,
                generation,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `PATH=value` as a child's environment.
    fn path_env(value: &str) -> Vec<(OsString, OsString)> {
        vec![("PATH".into(), value.into())]
    }

    #[test]
    fn the_first_file_on_path_is_found_whether_it_runs_or_not() {
        let dir = std::env::temp_dir().join(format!("dh-first-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(b.join("tool"), "echo hi\n").unwrap();
        let env = path_env(&format!("{}:{}", a.display(), b.display()));
        // Not executable: `execvp` says EACCES, and this is the file it tried.
        assert_eq!(first_on_path("tool".as_ref(), &env), Some(b.join("tool")));
        assert_eq!(program_path("tool".as_ref(), &env), None);
        assert_eq!(first_on_path("absent".as_ref(), &env), None);
        assert_eq!(first_on_path("b/tool".as_ref(), &env), None);
        assert_eq!(first_on_path("".as_ref(), &env), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_programs_head_is_read_from_a_regular_file_only() {
        let dir = std::env::temp_dir().join(format!("dh-head-{}", std::process::id()));
        // What a failed run with the same pid may have left.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("script");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(
            program_head(script.as_os_str(), &[]).as_deref(),
            Some(b"#!/bin/sh\necho hi\n".as_slice())
        );
        // A named pipe with no writer: refused at once, not waited on.
        let pipe = dir.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&pipe).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo {}", pipe.display());
        let (answer, answered) = std::sync::mpsc::channel();
        let asked = pipe.clone();
        std::thread::spawn(move || answer.send(program_head(asked.as_os_str(), &[])));
        let head = answered
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the read of a named pipe ends");
        assert_eq!(head, None);
        assert_eq!(program_head(dir.as_os_str(), &[]), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn programs_are_found_as_execvp_finds_them() {
        use std::os::unix::fs::PermissionsExt;
        let found = |program: &str, env: &[(OsString, OsString)]| {
            find_program(OsStr::new(program), env).map(|c| c.into_string().unwrap())
        };
        let errno = |r: io::Result<String>| r.unwrap_err().raw_os_error();
        let dir = testkit::temp::TempDir::new("find-program");
        let d = dir.path().display();
        let exec = dir.join("exec");
        std::fs::create_dir(&exec).unwrap();
        std::fs::write(exec.join("tool"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(exec.join("tool"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let plain = dir.join("plain");
        std::fs::create_dir(&plain).unwrap();
        std::fs::write(plain.join("tool"), "").unwrap();
        std::fs::create_dir(dir.join("tool")).unwrap();

        // A name with a slash is used as it is, found or not.
        assert_eq!(found("./x/y", &[]).unwrap(), "./x/y");
        assert_eq!(found("/nowhere/tool", &[]).unwrap(), "/nowhere/tool");
        // The first executable file, past a directory and a file that cannot run.
        let env = path_env(&format!("/nonexistent:{d}:{d}/plain:{d}/exec"));
        assert_eq!(found("tool", &env).unwrap(), format!("{d}/exec/tool"));
        // The last PATH given wins, as in an environment.
        let mut env = path_env("/nonexistent");
        env.extend(path_env(&format!("{d}/exec")));
        assert_eq!(found("tool", &env).unwrap(), format!("{d}/exec/tool"));
        // Only what cannot run: EACCES (126); nothing: ENOENT (127).
        assert_eq!(
            errno(found("tool", &path_env(&format!("{d}/plain")))),
            Some(13)
        );
        assert_eq!(errno(found("tool", &path_env(&d.to_string()))), Some(13));
        assert_eq!(errno(found("tool", &path_env("/nonexistent"))), Some(2));
        assert_eq!(errno(found("", &path_env(&format!("{d}/exec")))), Some(2));
        // No PATH: glibc's default.
        assert_eq!(found("sh", &[]).unwrap(), "/bin/sh");
        // An empty entry is the working directory (the package's, which holds a
        // Cargo.toml that cannot run).
        assert_eq!(
            errno(found("Cargo.toml", &path_env(":/nonexistent"))),
            Some(13)
        );
    }

    proptest::proptest! {
        /// Any `PATH` and any program name (NULs, empty entries, `..`, non-UTF-8 bytes)
        /// give a C string or an error, never a panic; a name with a `/` is used as it
        /// is, and a found file is in one of `PATH`'s directories.
        #[test]
        fn any_path_and_name_give_an_answer(
            path in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            name in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..16),
        ) {
            let env = vec![("PATH".into(), OsString::from_vec(path))];
            let program = OsStr::from_bytes(&name);
            if let Ok(found) = find_program(program, &env) {
                let found = found.into_bytes();
                if name.contains(&b'/') {
                    proptest::prop_assert_eq!(found, name);
                } else {
                    proptest::prop_assert!(found.ends_with(&name));
                }
            }
        }
    }

    #[test]
    fn a_nul_in_an_argument_is_refused() {
        let e = c_string(b"a\0b".to_vec()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn exit_codes_follow_the_shell_convention() {
        assert_eq!(ExitStatus::Code(0).exit_code(), 0);
        assert_eq!(ExitStatus::Code(3).exit_code(), 3);
        assert_eq!(ExitStatus::Signaled(Signal::SIGTERM).exit_code(), 143);
        assert_eq!(ExitStatus::Signaled(Signal::SIGKILL).exit_code(), 137);
    }

    #[test]
    fn the_parent_pid_is_read_past_a_command_name_with_spaces_and_parentheses() {
        assert_eq!(parent_of("42 (a b) c) S 7 42 42 0"), Some("7"));
        assert_eq!(parent_of("1 (sh) R 0 1 1"), Some("0"));
        assert_eq!(parent_of("garbage"), None);
    }
}
