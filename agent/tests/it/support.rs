//! What the agent's tests share: running the built agent against the test services,
//! reading what its app saw, the leak and refusal assertions, and a proxy in front of
//! moto that counts requests and injects faults. Generic pieces (temporary directories,
//! HTTP and TCP stand-ins, the leak assertion) are testkit's.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use testkit::http::Answer;
pub use testkit::temp::TempDir as Scratch;

pub const AGENT: &str = env!("CARGO_BIN_EXE_agent");

/// Longest any single agent run may take, unless a test says otherwise.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

/// Longest an agent run of the log pipeline's and start-up's tests may take (shipping,
/// migrations and the stop's flush take their time).
pub const LOG_RUN_LIMIT: Duration = Duration::from_secs(60);

/// The tests that time one agent against a deadline hold this shared; the 50-agent
/// test holds it alone. Fifty agents starting on 2 cores starve any other agent of CPU
/// for seconds (measured: 0.9 s from the secrets deadline starting to the request being
/// sent), which would turn a measurement of the deadline into one of the load. Every
/// module's tests run in this one binary: a new test of any module that times an agent
/// that closely holds it too.
pub static TIMING: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

// ---------------------------------------------------------------------------------
// AWS
// ---------------------------------------------------------------------------------

/// The SDK's configuration for the moto server (the services' variables are in this
/// process's environment) in `region`.
pub async fn sdk_config(region: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await
}

pub async fn sm(region: &str) -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config(region).await)
}

pub async fn ssm(region: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(&sdk_config(region).await)
}

/// Creates a secret with a unique name under `prefix`; returns (name, ARN).
pub async fn create_secret(
    client: &aws_sdk_secretsmanager::Client,
    prefix: &str,
    value: &str,
) -> (String, String) {
    let name = format!("{}/{}", prefix, testkit::unique_name("agent"));
    let out = client
        .create_secret()
        .name(&name)
        .secret_string(value)
        .send()
        .await
        .expect("create the secret in moto");
    (name, out.arn.expect("an ARN"))
}

// ---------------------------------------------------------------------------------
// Running the agent
// ---------------------------------------------------------------------------------

/// A scratch directory for one test, removed when dropped.
pub fn scratch() -> Scratch {
    Scratch::new("agent-test")
}

/// The agent with nothing but `PATH`, `HOME` and `LANG` in its environment.
pub fn bare_agent() -> Command {
    testkit::clean_command(AGENT)
}

/// The agent with a clean environment plus the moto variables.
pub fn agent() -> Command {
    let mut cmd = bare_agent();
    cmd.envs(testkit::aws_env());
    cmd
}

/// The same, as PID 1 of a new PID namespace (with its own /proc).
pub fn agent_as_pid1() -> Command {
    let mut cmd = testkit::clean_command("unshare");
    cmd.args(["--pid", "--fork", "--mount-proc", AGENT]);
    cmd.envs(testkit::aws_env());
    cmd
}

/// Gives the agent the app `sh -c script`, with `$DIR` the scratch directory.
pub fn shell_app(cmd: &mut Command, scratch: &Scratch, script: &str) {
    cmd.env("DIR", scratch.path())
        .args(["--", "sh", "-c", script]);
}

/// An app that records its environment in `env.txt` (the marker that it ran).
pub fn app_writing_env(cmd: &mut Command, scratch: &Scratch) {
    cmd.env("OUT", scratch.join("env.txt"))
        .args(["--", "sh", "-c", "env > \"$OUT\""]);
}

/// A started agent whose stdout and stderr are read as they come (a full pipe must
/// never stall it); stopped, with its PID namespace if any, when a test ends early.
pub struct Running {
    child: Option<Child>,
    /// The agent's pid as seen from here (inside `unshare`, the agent's, not unshare's).
    pid: i32,
    out: Option<JoinHandle<(Vec<u8>, Vec<u8>)>>,
}

impl Running {
    /// Starts `cmd` with no stdin.
    pub fn start(mut cmd: Command) -> Running {
        cmd.stdin(Stdio::null());
        Running::spawn(cmd)
    }

    /// Starts `cmd` (an [`agent_as_pid1`]) and finds the agent inside the namespace.
    pub fn start_in_namespace(cmd: Command) -> Running {
        let mut running = Running::start(cmd);
        let outer = running.child.as_ref().unwrap().id();
        let mut found = None;
        assert!(
            testkit::wait_until(Duration::from_secs(10), || {
                found = child_of(outer);
                found.is_some()
            }),
            "unshare started no child"
        );
        running.pid = found.unwrap();
        running
    }

    /// Starts `cmd` with `input` on its stdin, which is then closed.
    pub fn feeding(mut cmd: Command, input: &[u8]) -> Running {
        use std::io::Write;
        cmd.stdin(Stdio::piped());
        let mut running = Running::spawn(cmd);
        let mut stdin = running.child.as_mut().unwrap().stdin.take().unwrap();
        stdin.write_all(input).unwrap();
        running
    }

    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the agent");
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let out = std::thread::spawn(move || {
            let err = std::thread::spawn(move || {
                let mut b = Vec::new();
                let _ = stderr.read_to_end(&mut b);
                b
            });
            let mut o = Vec::new();
            let _ = stdout.read_to_end(&mut o);
            (o, err.join().unwrap())
        });
        Running {
            pid: child.id() as i32,
            child: Some(child),
            out: Some(out),
        }
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends the agent `signal` (`TERM`, `HUP`, …).
    pub fn signal(&self, signal: &str) {
        kill(self.pid, signal);
    }

    /// Waits for the exit, [`RUN_LIMIT`] at most.
    pub fn wait(self) -> Output {
        self.wait_within(RUN_LIMIT)
    }

    /// Waits up to `limit` for the exit; past it, kills the agent (inside its namespace
    /// too, which ends the namespace) and fails.
    pub fn wait_within(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().unwrap();
        let exited = testkit::wait_until(limit, || child.try_wait().unwrap().is_some());
        if !exited {
            let _ = Command::new("kill")
                .args(["-9", &self.pid.to_string()])
                .status();
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        let (stdout, stderr) = self.out.take().unwrap().join().unwrap();
        assert!(
            exited,
            "the agent did not exit within {limit:?}; stderr: {}",
            String::from_utf8_lossy(&stderr)
        );
        Output {
            status,
            stdout,
            stderr,
        }
    }
}

impl Drop for Running {
    /// A test that failed early: SIGTERM first, so the agent stops its app (SIGKILL
    /// would leave the app running), then SIGKILL (to the agent inside a namespace too,
    /// which ends the namespace).
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &self.pid.to_string()])
                .status();
            let exited = testkit::wait_until(Duration::from_secs(10), || {
                child.try_wait().ok().flatten().is_some()
            });
            if !exited {
                let _ = Command::new("kill")
                    .args(["-9", &self.pid.to_string()])
                    .status();
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

/// Runs to completion within [`RUN_LIMIT`].
pub fn run(cmd: Command) -> Output {
    Running::start(cmd).wait()
}

/// Runs to completion within `limit`.
pub fn run_within(cmd: Command, limit: Duration) -> Output {
    Running::start(cmd).wait_within(limit)
}

pub async fn run_async(cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || run(cmd)).await.unwrap()
}

/// A finished run of the agent whose app records its environment (the proof of what
/// the app saw, or by its absence that it never ran).
pub struct AppRun {
    pub out: Output,
    scratch: Scratch,
}

/// Runs `cmd` to completion with an app that records its environment.
pub async fn run_app(mut cmd: Command) -> AppRun {
    let scratch = scratch();
    app_writing_env(&mut cmd, &scratch);
    AppRun {
        out: run_async(cmd).await,
        scratch,
    }
}

impl AppRun {
    /// Asserts that the agent exited 0; returns the environment the app saw.
    pub fn assert_started(&self) -> Vec<(String, String)> {
        assert_code(&self.out, 0);
        app_env(&self.scratch)
    }

    /// Asserts a fail-closed start: see [`assert_refused`].
    pub fn assert_refused(&self, code: i32, names: &[&str], values: &[&str]) {
        assert_refused(&self.out, &self.scratch, code, names, values);
    }
}

/// The pid, outside the namespace, of the agent that `unshare --fork` started.
fn child_of(parent: u32) -> Option<i32> {
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok())
        .find_map(|e| {
            let pid: i32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            (ppid == parent).then_some(pid)
        })
}

pub fn kill(pid: i32, signal: &str) {
    let ok = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal} {pid}");
}

pub fn wait_for_file(path: &Path) {
    assert!(
        testkit::wait_until(Duration::from_secs(15), || path.exists()),
        "{} did not appear",
        path.display()
    );
}

/// Asserts that the agent's `--help` exits 0 and names every one of `needles`.
#[track_caller]
pub fn assert_help_names(needles: &[&str]) {
    let out = Command::new(AGENT).arg("--help").output().unwrap();
    assert_code(&out, 0);
    let help = text(&out).0;
    for needle in needles {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
}

/// GET `url` (`http://IP:PORT/path`) on a new connection: the status and the JSON body;
/// `None` while nothing answers there (or the body is not JSON).
pub async fn get_json(url: String) -> Option<(u16, serde_json::Value)> {
    let addr = url
        .trim_start_matches("http://")
        .split('/')
        .next()?
        .to_owned();
    let req = Request::get(url.as_str())
        .header("host", "localhost")
        .body(Full::default())
        .ok()?;
    let resp = testkit::http::send(addr, req).await.ok()?;
    Some((
        resp.status().as_u16(),
        serde_json::from_slice(resp.body()).ok()?,
    ))
}

/// The lines of a file an app appends to (none while it does not exist).
pub fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

// ---------------------------------------------------------------------------------
// Reading and asserting what came out
// ---------------------------------------------------------------------------------

/// stdout and stderr, decoded: the app's lines come back as the JSON events of the log
/// pipeline (the line is the `message`), the agent's own as JSON objects (rendered as
/// `message key=value…`, every string unescaped, so a leaked value cannot hide behind
/// JSON escaping).
pub fn text(out: &Output) -> (String, String) {
    (decode(&out.stdout, false), decode(&out.stderr, true))
}

fn decode(raw: &[u8], fields: bool) -> String {
    let mut text = String::new();
    for line in String::from_utf8_lossy(raw).lines() {
        match serde_json::from_str::<serde_json::Value>(line) {
            Ok(serde_json::Value::Object(map)) => {
                if let Some(m) = map.get("message").and_then(|m| m.as_str()) {
                    text.push_str(m);
                }
                for (k, v) in map.iter().filter(|(k, _)| fields && *k != "message") {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                    text.push_str(&format!(" {k}={v}"));
                }
            }
            _ => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

/// The app's recorded environment as `NAME=value` lines.
pub fn app_env(scratch: &Scratch) -> Vec<(String, String)> {
    let text =
        std::fs::read_to_string(scratch.join("env.txt")).expect("the app ran and wrote env.txt");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[track_caller]
pub fn assert_code(out: &Output, code: i32) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
}

/// Asserts that no secret value is in the agent's output, decoded (see [`text`]).
#[track_caller]
pub fn assert_no_leak<S: AsRef<str>>(out: &Output, values: impl IntoIterator<Item = S>) {
    let (stdout, stderr) = text(out);
    testkit::leaks::assert_absent(&[("stdout", &stdout), ("stderr", &stderr)], values);
}

/// A fail-closed start: exit code, the message names the variable and the secret, the
/// app never ran, and no secret value is anywhere in the output.
#[track_caller]
pub fn assert_refused(out: &Output, scratch: &Scratch, code: i32, names: &[&str], values: &[&str]) {
    assert_code(out, code);
    let (_, stderr) = text(out);
    for n in names {
        assert!(stderr.contains(n), "stderr does not name {n}: {stderr}");
    }
    assert_no_leak(out, values);
    assert!(!scratch.join("env.txt").exists(), "the app ran");
}

// ---------------------------------------------------------------------------------
// A proxy in front of moto
// ---------------------------------------------------------------------------------

/// One request the [`proxy`] saw: its `X-Amz-Target` (e.g.
/// `AmazonSSM.GetParametersByPath`) and its JSON body.
#[derive(Debug, Clone)]
pub struct Seen {
    pub target: String,
    pub body: serde_json::Value,
}

/// An injected error answer: status, error type, message.
pub type Fault = (u16, &'static str, String);

/// What a [`scripted_proxy`] does with one request.
#[derive(Debug, Clone)]
pub enum Action {
    /// Pass it to moto and return moto's answer.
    Forward,
    /// Answer with this error instead of forwarding.
    Fail(Fault),
    /// Pass it to moto, then hold moto's answer back until then: a slow endpoint.
    DelayUntil(tokio::time::Instant),
}

/// A proxy in front of moto: `fault(n, &seen)` decides, for the n-th request (from 0),
/// whether to answer with an error instead of forwarding. Returns its URL and every
/// request it saw, in order.
pub async fn proxy<F>(fault: F) -> (String, Arc<Mutex<Vec<Seen>>>)
where
    F: Fn(usize, &Seen) -> Option<Fault> + Send + Sync + 'static,
{
    scripted_proxy(move |n, seen| fault(n, seen).map_or(Action::Forward, Action::Fail)).await
}

/// A proxy in front of moto that answers every Secrets Manager request `delay` after it
/// arrived (moto's own time included; anything else is forwarded at once). Returns its
/// URL and when each Secrets Manager request arrived.
pub async fn delaying_proxy(delay: Duration) -> (String, Arc<Mutex<Vec<Instant>>>) {
    let arrivals: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let log = arrivals.clone();
    let (url, _) = scripted_proxy(move |_, seen| {
        if seen.target.starts_with("secretsmanager.") {
            log.lock().unwrap().push(Instant::now());
            Action::DelayUntil(tokio::time::Instant::now() + delay)
        } else {
            Action::Forward
        }
    })
    .await;
    (url, arrivals)
}

/// The proxy the others are made of: `script(n, &seen)` decides what happens to the
/// n-th request (from 0). Returns its URL and every request it saw, in order.
pub async fn scripted_proxy<F>(script: F) -> (String, Arc<Mutex<Vec<Seen>>>)
where
    F: Fn(usize, &Seen) -> Action + Send + Sync + 'static,
{
    let upstream = testkit::net::moto_addr();
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let script = Arc::new(script);
    let seen_log = log.clone();
    let addr = testkit::http::serve(move |req: Request<Incoming>| {
        let script = script.clone();
        let log = seen_log.clone();
        async move {
            let (parts, body) = req.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let seen = Seen {
                target: parts
                    .headers
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned(),
                body: serde_json::from_slice(&body).unwrap_or_default(),
            };
            let n = {
                let mut log = log.lock().unwrap();
                log.push(seen.clone());
                log.len() - 1
            };
            let until = match script(n, &seen) {
                Action::Forward => None,
                Action::DelayUntil(until) => Some(until),
                Action::Fail((status, kind, message)) => {
                    let body = serde_json::json!({ "__type": kind, "message": message });
                    return Response::builder()
                        .status(status)
                        .header("x-amzn-errortype", kind)
                        .header("content-type", "application/x-amz-json-1.1")
                        .body(Full::new(Bytes::from(body.to_string())))
                        .unwrap();
                }
            };
            let answer = forward(upstream, Request::from_parts(parts, Full::new(body))).await;
            if let Some(until) = until {
                tokio::time::sleep_until(until).await;
            }
            answer
        }
    })
    .await;
    (format!("http://{addr}"), log)
}

/// A proxy that answers the first requests with the given faults (status, error type),
/// then forwards. Returns its URL and every request it saw.
pub async fn fault_proxy(faults: Vec<(u16, &'static str)>) -> (String, Arc<Mutex<Vec<Seen>>>) {
    proxy(move |n, _| {
        faults
            .get(n)
            .map(|(status, kind)| (*status, *kind, "injected by the test".to_owned()))
    })
    .await
}

/// Sends `req` to `upstream` and returns its answer.
async fn forward(upstream: std::net::SocketAddr, req: Request<Full<Bytes>>) -> Answer {
    let (parts, body) = testkit::http::send(upstream, req)
        .await
        .unwrap()
        .into_parts();
    Response::from_parts(parts, Full::new(body))
}

/// `/bin/true` copied into `dir` with the other CPU's machine in its ELF header (aarch64
/// on x86-64, x86-64 elsewhere), executable: what an image built for the wrong platform
/// holds. Returns its path and the other CPU's name.
pub fn foreign_program(dir: &std::path::Path) -> (std::path::PathBuf, &'static str) {
    use std::os::unix::fs::PermissionsExt;
    let mut program = std::fs::read("/bin/true").unwrap();
    let (machine, name) = if std::env::consts::ARCH == "aarch64" {
        (0x3Eu16, "x86_64")
    } else {
        (0xB7u16, "aarch64")
    };
    program[18..20].copy_from_slice(&machine.to_le_bytes());
    let path = dir.join("dh-foreign");
    std::fs::write(&path, program).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    (path, name)
}
