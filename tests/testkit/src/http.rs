//! HTTP for tests: one small server loop that the stand-ins are made of, one client
//! call, a table-driven double (the ECS metadata endpoint, an app) and a CloudWatch Logs
//! double for the faults the moto server cannot produce (throttling, access denied, a
//! slow or refusing service). Not a mock framework: each double does what the tests of
//! several crates need and nothing more.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};

/// What a stand-in answers.
pub type Answer = Response<Full<Bytes>>;

/// The error of [`send`]: connecting, the exchange, or reading the body.
pub type SendError = Box<dyn std::error::Error + Send + Sync>;

/// Serves `handle` on 127.0.0.1:0 (HTTP/1.1, each connection on a task of its own) for
/// as long as the runtime lives; returns the address.
pub async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Answer> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
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

/// Sends `request` on a new connection to `addr`; the answer, its body read whole.
pub async fn send(
    addr: impl ToSocketAddrs,
    request: Request<Full<Bytes>>,
) -> Result<Response<Bytes>, SendError> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    Ok(Response::from_parts(
        parts,
        body.collect().await?.to_bytes(),
    ))
}

/// A stand-in answering each path from a table, recording the paths asked for.
pub struct Routes {
    pub addr: SocketAddr,
    /// Every path asked for, in order.
    pub asked: Arc<Mutex<Vec<String>>>,
}

impl Routes {
    /// Serves `table`: (path, status, body); any other path is a 404 with no body.
    pub async fn serve(table: Vec<(&'static str, u16, String)>) -> Routes {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = asked.clone();
        let table = Arc::new(table);
        let addr = serve(move |req: Request<Incoming>| {
            let path = req.uri().path().to_string();
            log.lock().unwrap().push(path.clone());
            let (status, body) = table
                .iter()
                .find(|(p, _, _)| *p == path)
                .map_or((404, String::new()), |(_, s, b)| (*s, b.clone()));
            let mut response = Response::new(Full::new(Bytes::from(body)));
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            async move { response }
        })
        .await;
        Routes { addr, asked }
    }
}

/// CloudWatch Logs' answer to throttling, for [`Outcome::Fail`].
pub const THROTTLING: &str = r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#;

/// What a [`LogsDouble`] does with one call.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    /// Answers 200 `{}`; a PutLogEvents call's events are kept.
    Accept,
    /// The same, this long after the call arrived: a slow service.
    AcceptAfter(Duration),
    /// Answers with this status and JSON error body (`{"__type":…,"message":…}`).
    Fail(u16, &'static str),
}

/// One call a [`LogsDouble`] answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The operation, from `X-Amz-Target`: `PutLogEvents`, `CreateLogStream`, …
    pub operation: String,
    /// The status it was answered with; 0 while it is being answered.
    pub status: u16,
}

/// A CloudWatch Logs endpoint stand-in: every call is answered as a script says, and
/// the events of accepted PutLogEvents calls are kept, as `keep` makes them (all of
/// them by default; a test that ships a million lines keeps a number per line).
pub struct LogsDouble<T = String> {
    /// `http://127.0.0.1:PORT`, for `AWS_ENDPOINT_URL` or the SDK's endpoint.
    pub url: String,
    /// What `keep` made of each accepted event's message, in arrival order.
    pub accepted: Arc<Mutex<Vec<T>>>,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl LogsDouble<String> {
    /// Answers every call as `script(operation, n)` says, `n` counting the earlier calls
    /// of that operation from 0; keeps each accepted event's message whole.
    pub async fn start<S>(script: S) -> LogsDouble<String>
    where
        S: Fn(&str, usize) -> Outcome + Send + Sync + 'static,
    {
        LogsDouble::keeping(script, |message| Some(message.to_owned())).await
    }
}

impl<T: Send + 'static> LogsDouble<T> {
    /// As [`LogsDouble::start`], keeping `keep(message)` of each accepted event (nothing
    /// where it returns `None`).
    pub async fn keeping<S, K>(script: S, keep: K) -> LogsDouble<T>
    where
        S: Fn(&str, usize) -> Outcome + Send + Sync + 'static,
        K: Fn(&str) -> Option<T> + Send + Sync + 'static,
    {
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let calls: Arc<Mutex<Vec<Call>>> = Arc::default();
        let state = Arc::new((script, keep, accepted.clone(), calls.clone()));
        let addr = serve(move |req: Request<Incoming>| {
            let state = state.clone();
            async move {
                let (script, keep, accepted, calls) = &*state;
                let operation = req
                    .headers()
                    .get("x-amz-target")
                    .and_then(|v| v.to_str().ok())
                    .map_or("", |t| t.rsplit('.').next().unwrap_or(t))
                    .to_owned();
                let body = req
                    .into_body()
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                // Recorded on arrival (status 0 until answered), so `n` counts calls
                // still in flight too.
                let (index, n) = {
                    let mut calls = calls.lock().unwrap();
                    let n = calls.iter().filter(|c| c.operation == operation).count();
                    calls.push(Call {
                        operation: operation.clone(),
                        status: 0,
                    });
                    (calls.len() - 1, n)
                };
                let (status, reply) = match script(&operation, n) {
                    Outcome::Fail(status, reply) => (status, reply),
                    outcome => {
                        if let Outcome::AcceptAfter(delay) = outcome {
                            tokio::time::sleep(delay).await;
                        }
                        if operation == "PutLogEvents" {
                            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            let mut accepted = accepted.lock().unwrap();
                            for e in v["logEvents"].as_array().unwrap() {
                                accepted.extend(keep(e["message"].as_str().unwrap()));
                            }
                        }
                        (200, "{}")
                    }
                };
                calls.lock().unwrap()[index].status = status;
                Response::builder()
                    .status(status)
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(Full::new(Bytes::from_static(reply.as_bytes())))
                    .unwrap()
            }
        })
        .await;
        LogsDouble {
            url: format!("http://{addr}"),
            accepted,
            calls,
        }
    }

    /// Every call answered so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}
