//! A minimal HTTP/1.1 GET over plain TCP, for the three places this crate is a client:
//! `probe`, the app check and the ECS task metadata endpoint. All three talk to
//! loopback or link-local addresses, so there is no TLS, no pooling and no redirects.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Bodies larger than this are refused: a task metadata document is a few KiB.
const MAX_BODY: usize = 1024 * 1024;

/// Why a GET produced no answer.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GetError {
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    #[error("the answer could not be read: {0}")]
    Body(String),
    #[error("the URL has no host")]
    NoHost,
}

/// GETs `uri` (http only) and returns the status and the body, all within `timeout`.
pub(crate) async fn get(uri: &Uri, timeout: Duration) -> Result<(StatusCode, Bytes), GetError> {
    tokio::time::timeout(timeout, get_unbounded(uri))
        .await
        .unwrap_or(Err(GetError::Timeout(timeout)))
}

async fn get_unbounded(uri: &Uri) -> Result<(StatusCode, Bytes), GetError> {
    let host = uri.host().ok_or(GetError::NoHost)?;
    // `Uri::host` keeps the brackets of an IPv6 literal; the socket address wants none.
    let host_bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let authority = uri
        .authority()
        .map_or_else(|| host.to_string(), |a| a.to_string());
    let stream = TcpStream::connect((host_bare, port))
        .await
        .map_err(|source| GetError::Connect {
            authority: authority.clone(),
            source,
        })?;
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // The connection task ends when the answer is read or the request is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let request = Request::get(path)
        .header(hyper::header::HOST, authority)
        .header(
            hyper::header::USER_AGENT,
            concat!("deckhand-healthcheck/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| GetError::Body(e.to_string()))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_BODY)
        .collect()
        .await
        .map_err(|e| GetError::Body(e.to_string()))?
        .to_bytes();
    Ok((status, body))
}
