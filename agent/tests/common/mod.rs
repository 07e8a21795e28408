//! What the agent's integration-test binaries share (`tests/agent.rs`, `tests/ssm.rs`,
//! `tests/logs.rs`):
//! running the built agent against the test services, reading what the app saw, and
//! HTTP doubles in front of moto. Each binary uses only part of it.

#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

pub const AGENT: &str = env!("CARGO_BIN_EXE_agent");

/// Longest any single agent run may take in these tests.
pub const RUN_LIMIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

pub async fn sm(region: &str) -> Client {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_owned()))
        .load()
        .await;
    Client::new(&config)
}

/// Creates a secret with a unique name; returns (name, ARN).
pub async fn create_secret(client: &Client, prefix: &str, value: &str) -> (String, String) {
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

/// A temporary directory for one test, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new() -> Scratch {
        let dir = std::env::temp_dir().join(testkit::unique_name("agent-test"));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The agent with a clean environment plus the moto variables.
pub fn agent() -> Command {
    let mut cmd = testkit::clean_command(AGENT);
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

/// An app that records its environment in `env.txt` (the marker that it ran).
pub fn app_writing_env(cmd: &mut Command, scratch: &Scratch) {
    cmd.env("OUT", scratch.path("env.txt"))
        .args(["--", "sh", "-c", "env > \"$OUT\""]);
}

/// Runs to completion with a time limit.
pub fn run(mut cmd: Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the agent");
    wait_output(child, RUN_LIMIT)
}

pub fn wait_output(mut child: Child, limit: Duration) -> Output {
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("the agent did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub async fn run_async(cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || run(cmd)).await.unwrap()
}

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
        std::fs::read_to_string(scratch.path("env.txt")).expect("the app ran and wrote env.txt");
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

pub fn var<'a>(env: &'a [(String, String)], name: &str) -> Option<&'a str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

pub fn assert_code(out: &Output, code: i32) {
    let (stdout, stderr) = text(out);
    assert_eq!(
        out.status.code(),
        Some(code),
        "exit status {:?}\nstdout: {stdout}\nstderr: {stderr}",
        out.status
    );
}

/// A fail-closed start: exit code, the message names the variable and the secret, the
/// app never ran, and no secret value is anywhere in the output.
pub fn assert_refused(out: &Output, scratch: &Scratch, code: i32, names: &[&str], values: &[&str]) {
    assert_code(out, code);
    let (stdout, stderr) = text(out);
    for n in names {
        assert!(stderr.contains(n), "stderr does not name {n}: {stderr}");
    }
    for v in values {
        assert!(
            !stdout.contains(v) && !stderr.contains(v),
            "a secret value leaked: {stderr}"
        );
    }
    assert!(!scratch.path("env.txt").exists(), "the app ran");
}

// HTTP doubles

pub type Answer = Response<Full<Bytes>>;

/// Serves `handle` on 127.0.0.1:0; returns the address.
pub async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let handle = handle.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = handle(req);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

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
    let upstream: SocketAddr = testkit::service_var("AWS_ENDPOINT_URL")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("AWS_ENDPOINT_URL is http://127.0.0.1:PORT");
    let log: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let script = Arc::new(script);
    let seen_log = log.clone();
    let addr = serve(move |req: Request<Incoming>| {
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
pub async fn forward(upstream: SocketAddr, req: Request<Full<Bytes>>) -> Answer {
    let stream = TcpStream::connect(upstream).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    Response::from_parts(parts, Full::new(body.collect().await.unwrap().to_bytes()))
}
