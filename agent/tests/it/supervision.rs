//! The agent as the app's supervisor, with PID namespaces from `unshare`: signals
//! forwarded and rewritten, the stop timeout, exit codes, orphans reaped, leftovers
//! ended, stdin passed through.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// Starts `cmd` with the app `script` by `start` ([`Running::start`], or
/// [`Running::start_in_namespace`] for an [`agent_as_pid1`]) and waits until the app has
/// touched `$DIR/ready`.
fn start_until_ready(
    mut cmd: Command,
    scratch: &Scratch,
    script: &str,
    start: fn(Command) -> Running,
) -> Running {
    shell_app(&mut cmd, scratch, script);
    let running = start(cmd);
    wait_for_file(&scratch.join("ready"));
    running
}

#[test]
fn the_app_starts_with_no_signal_blocked() {
    let mut cmd = agent();
    cmd.args(["--", "grep", "^SigBlk", "/proc/self/status"]);
    let out = run(cmd);
    assert_code(&out, 0);
    assert_eq!(
        text(&out).0.split_whitespace().nth(1),
        Some("0000000000000000")
    );
}

/// A file in `dir` named `name`, with `text` and the mode `mode`.
fn file_in(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// The agent with `dir` first on the app's `PATH`.
fn agent_with_path(dir: &std::path::Path) -> Command {
    let mut cmd = agent();
    cmd.env(
        "PATH",
        format!("{}:/usr/local/bin:/usr/bin:/bin", dir.display()),
    );
    cmd
}

/// The app is found on its `PATH` as `execvp` finds it (the first executable file, not
/// a directory or a file that cannot run), and keeps the name it was given as argv[0].
#[test]
fn the_app_is_found_on_its_path_and_keeps_its_name() {
    let (first, second) = (scratch(), scratch());
    // Earlier entries that cannot run are passed over.
    std::fs::create_dir(first.join("dh-found")).unwrap();
    file_in(
        second.path(),
        "dh-found",
        "#!/bin/sh\necho \"second $1\"\n",
        0o755,
    );
    let mut cmd = agent();
    cmd.env(
        "PATH",
        format!(
            "{}::{}:/usr/bin:/bin",
            first.path().display(),
            second.path().display()
        ),
    )
    .args(["--", "dh-found", "arg"]);
    let out = run(cmd);
    assert_code(&out, 0);
    assert_eq!(text(&out).0, "second arg\n");

    // `sh -c` without a command name sets `$0` to its argv[0].
    let mut cmd = agent();
    cmd.args(["--", "sh", "-c", "echo \"$0\""]);
    let out = run(cmd);
    assert_code(&out, 0);
    assert_eq!(text(&out).0, "sh\n");
}

/// As a shell reports them: 127 when nothing of that name is on the `PATH`, 126 when
/// only a file that cannot run is; the app never ran, and the agent says why.
#[test]
fn a_program_not_found_exits_127_and_one_that_cannot_run_126() {
    let dir = scratch();
    let mut cmd = agent_with_path(dir.path());
    cmd.args(["--", "dh-nowhere-to-be-found"]);
    let out = run(cmd);
    assert_code(&out, 127);
    assert!(
        text(&out).1.contains("cannot run dh-nowhere-to-be-found"),
        "{}",
        text(&out).1
    );

    file_in(dir.path(), "dh-not-executable", "echo ran\n", 0o644);
    let mut cmd = agent_with_path(dir.path());
    cmd.args(["--", "dh-not-executable"]);
    let out = run(cmd);
    assert_code(&out, 126);
    assert!(!text(&out).0.contains("ran"), "{}", text(&out).0);

    let path = dir.join("dh-not-executable");
    let mut cmd = agent();
    cmd.arg("--").arg(&path);
    assert_code(&run(cmd), 126);
}

/// The mistakes an image carries most often are named, not left at the kernel's one
/// word: a program for the other CPU (which `sh` used to be handed as a script: `Syntax
/// error`, exit 2), a `#!` interpreter the image lacks, Windows line endings, a
/// directory, a file without the execute bit, an empty command.
#[test]
fn a_file_that_cannot_start_says_why() {
    let dir = scratch();
    // `cmd` run with `program` as the command: exits `code`, and says `why`.
    let told = |mut cmd: Command, program: &std::ffi::OsStr, code: i32, why: &str| {
        cmd.arg("--").arg(program);
        let out = run(cmd);
        assert_code(&out, code);
        let (stdout, stderr) = text(&out);
        assert!(stdout.is_empty(), "it ran: {stdout}");
        assert!(stderr.contains(why), "{program:?}: no {why:?} in {stderr}");
    };
    let said = |program: &std::ffi::OsStr, code: i32, why: &str| told(agent(), program, code, why);

    let (path, name) = foreign_program(dir.path());
    said(
        path.as_os_str(),
        126,
        &format!("Exec format error (os error 8): it is a program for {name}, and this machine is"),
    );

    let missing = file_in(
        dir.path(),
        "dh-missing",
        "#!/nonexistent/dh-shell -e\necho ran\n",
        0o755,
    );
    said(
        missing.as_os_str(),
        127,
        "its #! line names the interpreter /nonexistent/dh-shell, which is not in the image",
    );
    let crlf = file_in(dir.path(), "dh-crlf", "#!/bin/sh\r\necho ran\r\n", 0o755);
    said(
        crlf.as_os_str(),
        127,
        "the script has Windows line endings (CRLF)",
    );
    said(
        dir.path().as_os_str(),
        126,
        "it is a directory, not a program",
    );
    let plain = file_in(dir.path(), "dh-plain", "echo ran\n", 0o644);
    said(
        plain.as_os_str(),
        126,
        "the file is not executable (mode 0644)",
    );
    // By name, when the only file of that name on PATH cannot run: which file, and why.
    told(
        agent_with_path(dir.path()),
        "dh-plain".as_ref(),
        126,
        &format!(
            "on PATH it is {}: the file is not executable (mode 0644)",
            plain.display()
        ),
    );
    said("".as_ref(), 127, "the command's first word is empty");
}

/// A script without `#!` is not a program to `exec` (`ENOEXEC`); `execvp`, and so the
/// agent, runs it through `/bin/sh`, by path or by name.
#[test]
fn a_script_without_an_interpreter_line_runs_through_sh() {
    let dir = scratch();
    let path = file_in(
        dir.path(),
        "dh-plain-script",
        "echo \"plain $1\"\nexit 3\n",
        0o755,
    );
    let mut cmd = agent_with_path(dir.path());
    cmd.args(["--", "dh-plain-script", "by-name"]);
    let out = run(cmd);
    assert_code(&out, 3);
    assert_eq!(text(&out).0, "plain by-name\n");

    let mut cmd = agent();
    cmd.arg("--").arg(&path).arg("by-path");
    let out = run(cmd);
    assert_code(&out, 3);
    assert_eq!(text(&out).0, "plain by-path\n");
}

#[test]
fn as_pid1_sigterm_is_forwarded_and_the_app_exit_code_returned() {
    let scratch = scratch();
    let agent = start_until_ready(
        agent_as_pid1(),
        &scratch,
        r#"echo $PPID > "$DIR/app-parent"; trap 'touch "$DIR/got-term"; exit 7' TERM; touch "$DIR/ready"; while :; do sleep 0.05; done"#,
        Running::start_in_namespace,
    );
    let parent = std::fs::read_to_string(scratch.join("app-parent")).unwrap();
    assert_eq!(
        parent.trim(),
        "1",
        "the agent is PID 1 and the app's parent"
    );
    agent.signal("TERM");
    let out = agent.wait();
    assert_code(&out, 7);
    assert!(scratch.join("got-term").exists());
}

#[test]
fn an_app_ignoring_sigterm_is_killed_after_the_stop_timeout() {
    let scratch = scratch();
    let mut cmd = agent_as_pid1();
    cmd.env("DECKHAND_STOP_TIMEOUT", "1s");
    let agent = start_until_ready(
        cmd,
        &scratch,
        r#"trap '' TERM; touch "$DIR/ready"; while :; do sleep 0.05; done"#,
        Running::start_in_namespace,
    );
    let sent = Instant::now();
    agent.signal("TERM");
    let out = agent.wait();
    let took = sent.elapsed();
    assert_code(&out, 128 + 9);
    assert!(took >= Duration::from_secs(1), "killed too early: {took:?}");
    assert!(took < Duration::from_secs(10), "killed too late: {took:?}");
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("did not exit within the stop timeout"),
        "{stderr}"
    );
}

#[test]
fn as_pid1_orphaned_grandchildren_are_reaped() {
    let scratch = scratch();
    let mut cmd = agent_as_pid1();
    // Three grandchildren are orphaned at once (their parent subshell exits) and exit
    // after recording their pid. The app then waits, with a deadline, for each pid to
    // disappear from /proc: a zombie nobody reaps would stay there.
    shell_app(
        &mut cmd,
        &scratch,
        r#"
        for i in 1 2 3; do ( sh -c 'echo $$ > "$DIR/orphan.$0"' $i & ); done
        n=0; while [ ! -s "$DIR/orphan.1" ] || [ ! -s "$DIR/orphan.2" ] || [ ! -s "$DIR/orphan.3" ]; do
          n=$((n+1)); [ $n -gt 200 ] && exit 10; sleep 0.02; done
        n=0; for i in 1 2 3; do p=$(cat "$DIR/orphan.$i");
          while [ -e "/proc/$p" ]; do n=$((n+1)); [ $n -gt 250 ] && { grep State "/proc/$p/status" > "$DIR/zombie"; exit 11; }; sleep 0.02; done; done
        ps -eo stat= > "$DIR/states"
        exit 0
        "#,
    );
    // Run to the end: the app may finish before the agent could be found in the
    // namespace, and nothing here signals it.
    let out = run(cmd);
    let zombie = std::fs::read_to_string(scratch.join("zombie")).unwrap_or_default();
    assert_code(&out, 0);
    assert!(zombie.is_empty(), "{zombie}");
    let states = std::fs::read_to_string(scratch.join("states")).unwrap();
    assert!(
        !states.lines().any(|s| s.starts_with('Z')),
        "<defunct> left: {states}"
    );
}

#[test]
fn as_pid1_a_signal_death_exits_128_plus_n() {
    let mut cmd = agent_as_pid1();
    cmd.args(["--", "sh", "-c", "kill -USR1 $$"]);
    let out = run(cmd);
    assert_code(&out, 128 + 10);
}

#[test]
fn without_pid1_processes_left_behind_are_ended_and_reaped() {
    let scratch = scratch();
    let mut cmd = agent();
    // One leftover in the app's group, one that left it with setsid.
    shell_app(
        &mut cmd,
        &scratch,
        r#"sleep 300 & echo $! > "$DIR/in-group"; setsid sleep 300 & echo $! > "$DIR/own-session"; exit 3"#,
    );
    let started = Instant::now();
    let out = run(cmd);
    assert_code(&out, 3);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for f in ["in-group", "own-session"] {
        let pid = pid_in(&scratch.join(f));
        assert!(!is_there(pid), "{f} process {pid} is still there");
    }
}

/// The pid the app wrote to `file`.
fn pid_in(file: &std::path::Path) -> i32 {
    std::fs::read_to_string(file)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Whether process `pid` exists (a zombie does).
fn is_there(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn a_leftover_ignoring_sigterm_is_killed_and_the_agent_says_so() {
    let scratch = scratch();
    let mut cmd = agent();
    // The leftover ignores SIGTERM; the app exits once it has written its pid.
    shell_app(
        &mut cmd,
        &scratch,
        r#"sh -c 'trap "" TERM; echo $$ > "$DIR/stubborn.tmp"; mv "$DIR/stubborn.tmp" "$DIR/stubborn"; while :; do sleep 0.05; done' &
           while [ ! -e "$DIR/stubborn" ]; do sleep 0.01; done; exit 0"#,
    );
    let started = Instant::now();
    let out = run(cmd);
    let took = started.elapsed();
    assert_code(&out, 0);
    assert!(took >= Duration::from_secs(2), "killed too early: {took:?}");
    assert!(took < Duration::from_secs(10), "killed too late: {took:?}");
    let pid = pid_in(&scratch.join("stubborn"));
    assert!(!is_there(pid), "the leftover {pid} is still there");
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("did not exit within 2 s of SIGTERM; sending them SIGKILL")
            && stderr.contains(&pid.to_string()),
        "{stderr}"
    );
}

#[test]
fn the_stop_signal_is_rewritten_and_stdin_is_passed_through() {
    let scratch = scratch();
    let mut cmd = agent();
    cmd.env("DECKHAND_STOP_SIGNAL", "SIGQUIT");
    let running = start_until_ready(
        cmd,
        &scratch,
        r#"trap 'exit 5' QUIT; trap 'exit 6' TERM; touch "$DIR/ready"; while :; do sleep 0.05; done"#,
        Running::start,
    );
    running.signal("TERM");
    assert_code(&running.wait(), 5);

    let mut cmd = agent();
    cmd.args(["--", "cat"]);
    let out = Running::feeding(cmd, b"through the agent\n").wait();
    assert_code(&out, 0);
    assert_eq!(text(&out).0, "through the agent\n");
}

/// A shell starts background jobs with SIGINT and SIGQUIT ignored, and an ignored signal
/// stays ignored across exec: an agent started so must still give its app the default
/// disposition of every signal it forwards (a shell app could not even trap it
/// otherwise). Found when the whole test command ran as a background job.
#[test]
fn signals_ignored_when_the_agent_started_are_not_ignored_in_the_app() {
    let scratch = scratch();
    let mut cmd = testkit::clean_command("sh");
    cmd.envs(testkit::aws_env())
        .env("DIR", scratch.path())
        .env("AGENT", AGENT)
        .env("DECKHAND_STOP_SIGNAL", "SIGQUIT")
        .args([
            "-c",
            r#"trap '' INT QUIT HUP; exec "$AGENT" -- sh -c 'trap "exit 5" QUIT; trap "exit 6" TERM; touch "$DIR/ready"; while :; do sleep 0.05; done'"#,
        ]);
    let running = Running::start(cmd);
    wait_for_file(&scratch.join("ready"));
    running.signal("TERM");
    assert_code(&running.wait(), 5);
}

#[test]
fn other_signals_are_forwarded_to_the_app_or_its_group() {
    let scratch = scratch();
    let mut cmd = agent();
    cmd.env("DECKHAND_SIGNAL_GROUP", "true");
    // The grandchild gets USR2 only when signals go to the whole group.
    let agent = start_until_ready(
        cmd,
        &scratch,
        r#"sh -c 'trap "touch \"$DIR/grandchild-usr2\"; exit 0" USR2; touch "$DIR/gc-ready"; while :; do sleep 0.05; done' &
               trap 'touch "$DIR/hup"' HUP; trap 'touch "$DIR/usr2"' USR2; trap 'exit 0' TERM
               touch "$DIR/ready"; while :; do sleep 0.05; done"#,
        Running::start,
    );
    wait_for_file(&scratch.join("gc-ready"));
    agent.signal("USR2");
    wait_for_file(&scratch.join("usr2"));
    wait_for_file(&scratch.join("grandchild-usr2"));
    agent.signal("HUP");
    wait_for_file(&scratch.join("hup"));
    agent.signal("TERM");
    assert_code(&agent.wait(), 0);
}

/// The resident KiB of the agent's own read-only pages that hold no copy of its own:
/// what the hand-back after the start drops.
fn droppable_kib(pid: i32) -> u64 {
    let exe = std::fs::canonicalize(AGENT).unwrap();
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    agent::memory::parse_smaps(&smaps)
        .iter()
        .filter(|m| {
            std::path::Path::new(&m.path) == exe && !m.writable && m.anonymous_kib == Some(0)
        })
        .filter_map(|m| m.rss_kib)
        .sum()
}

#[test]
fn once_the_start_has_settled_the_pages_only_it_used_leave_the_agents_memory() {
    let scratch = scratch();
    let mut cmd = bare_agent();
    cmd.env("DECKHAND_AGENT_LOG_LEVEL", "debug");
    shell_app(
        &mut cmd,
        &scratch,
        r#"trap 'exit 0' TERM; touch "$DIR/ready"; sleep 600 & wait"#,
    );
    let agent = Running::start(cmd);
    // The hand-back waits for a quiet second after the app starts. Watched from the
    // spawn on, so that the most resident is seen before it however slow the machine:
    // nothing else takes an idle process's code pages away (the kernel only under
    // memory pressure). What the idle agent maps back depends on the build and the
    // machine's load (a debug build's idle code is spread over 6-7 MiB): at least a
    // quarter, and 1 MiB, must go.
    let (mut most, mut now) = (0, 0);
    let dropped = testkit::wait_until(Duration::from_secs(20), || {
        now = droppable_kib(agent.pid());
        most = most.max(now);
        scratch.join("ready").exists() && now * 4 < most * 3 && most - now >= 1024
    });
    assert!(
        dropped,
        "the agent's code pages stayed: {now} KiB resident, {most} KiB at most"
    );
    agent.signal("TERM");
    let out = agent.wait();
    assert_code(&out, 0);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("the start is over: handed back"),
        "{stderr}"
    );
}
