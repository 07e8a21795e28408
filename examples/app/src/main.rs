//! `example-app`: the kind of web app deckhand runs, for the examples and the demo.
//!
//! - Serves HTTP on `PORT` (default 3000): `GET /` counts the rows of the `users` table
//!   the example migrations create; `GET /api/health` answers 200 once started.
//! - Reads the database URL from `DATABASE_URL`, or the variable named by
//!   `APP_DATABASE_URL_VAR` (one reference deployment uses `POSTGRES_URL`).
//! - Logs JSON lines and text lines on stdout and stderr; at start it prints its
//!   database password and a card number, as careless apps do, so the agent's redaction
//!   can be seen.
//! - `APP_DATABASE=none`: an app without PostgreSQL (one reference deployment keeps its
//!   data in DynamoDB); `GET /` then answers without touching a database.
//! - `APP_LEAK_VARS=A,B`: also prints those variables' values at start (an app that dumps
//!   its configuration), for the examples to show that the agent redacts them.
//! - Waits `APP_START_DELAY_MS` before listening (slow starters), and on SIGTERM keeps
//!   serving in-flight requests for `APP_STOP_DELAY_MS` before exiting 0.

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use pgconn::{PgConfig, ProcessEnv};
use tokio::signal::unix::{signal, SignalKind};

fn ms_var(name: &str, default: u64) -> Duration {
    Duration::from_millis(
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default),
    )
}

fn log_json(level: &str, msg: &str, extra: serde_json::Value) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut line = serde_json::json!({"level": level, "time": now, "msg": msg});
    if let (Some(obj), serde_json::Value::Object(more)) = (line.as_object_mut(), extra) {
        obj.extend(more);
    }
    println!("{line}");
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let url_var = std::env::var("APP_DATABASE_URL_VAR").unwrap_or_else(|_| "DATABASE_URL".into());
    let no_database = std::env::var("APP_DATABASE").is_ok_and(|v| v == "none");
    let db = match PgConfig::from_env_named(&ProcessEnv, &url_var) {
        _ if no_database => None,
        Ok(Some(db)) => Some(db.with_default_application_name("example-app")),
        Ok(None) => {
            eprintln!("ERROR {url_var} is not set");
            std::process::exit(78);
        }
        Err(e) => {
            eprintln!("ERROR {e}");
            std::process::exit(78);
        }
    };
    log_json(
        "info",
        "starting",
        serde_json::json!({"pid": std::process::id()}),
    );
    // The careless lines every team has somewhere: the agent must redact them.
    if let Some(db) = &db {
        println!(
            "connecting to {} with password {} (test card 4111 1111 1111 1111)",
            db,
            db.password.as_ref().map_or("", |p| p.expose())
        );
    } else {
        println!("no database; payment test card 4111 1111 1111 1111");
    }
    for name in std::env::var("APP_LEAK_VARS")
        .unwrap_or_default()
        .split(',')
    {
        if let Ok(value) = std::env::var(name.trim()) {
            println!("config {}={value}", name.trim());
        }
    }
    tokio::time::sleep(ms_var("APP_START_DELAY_MS", 0)).await;

    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", port))
        .await
        .unwrap_or_else(|e| {
            eprintln!("ERROR cannot listen on port {port}: {e}");
            std::process::exit(1)
        });
    log_json("info", "listening", serde_json::json!({"port": port}));

    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let db = db.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(req, db.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            _ = term.recv() => break,
        }
    }
    let delay = ms_var("APP_STOP_DELAY_MS", 500);
    log_json(
        "info",
        "SIGTERM received, finishing in-flight requests",
        serde_json::json!({"delay_ms": delay.as_millis() as u64}),
    );
    tokio::time::sleep(delay).await;
    eprintln!("INFO stopped cleanly");
}

async fn handle(
    req: Request<Incoming>,
    db: Option<PgConfig>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match req.uri().path() {
        "/api/health" | "/health" => (StatusCode::OK, r#"{"status":"ok"}"#.to_owned()),
        "/" if db.is_none() => (StatusCode::OK, r#"{"database":"none"}"#.to_owned()),
        "/" => match count_users(db.as_ref().expect("checked above")).await {
            Ok(n) => {
                log_json(
                    "info",
                    "request handled",
                    serde_json::json!({"path": "/", "users": n}),
                );
                (StatusCode::OK, format!("{{\"users\":{n}}}"))
            }
            Err(e) => {
                eprintln!("ERROR query failed: {e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    r#"{"error":"database"}"#.to_owned(),
                )
            }
        },
        _ => (StatusCode::NOT_FOUND, r#"{"error":"not found"}"#.to_owned()),
    };
    Ok(Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .expect("static response"))
}

async fn count_users(db: &PgConfig) -> Result<i64, String> {
    let client = db.connect().await.map_err(|e| e.to_string())?;
    client
        .query_one("SELECT count(*) FROM users", &[])
        .await
        .map(|row| row.get(0))
        .map_err(|e| pgconn::describe(&e))
}
