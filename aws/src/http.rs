//! The workspace's one HTTP GET: HTTP/1.1 over a plain TCP connection, for the
//! endpoints inside a task — the ECS task metadata endpoint (link-local),
//! `healthcheck probe` and the app check (loopback). Every call is bounded: one timeout
//! for connecting, asking and reading, and a body of at most [`MAX_BODY`] bytes, so a
//! hostile or broken endpoint can neither hold a caller nor fill its memory.
//!
//! What it is not: a general client. No TLS (`https://` is refused), no pooling, no
//! redirects, no retries; what a status means is the caller's business.

use std::time::Duration;

use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper::body::{Body, Bytes};
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Bodies larger than this are refused: a task metadata document is a few KiB, and a
/// health check answer is read only for its status.
pub const MAX_BODY: usize = 1024 * 1024;

/// Why a GET produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum GetError {
    #[error("{0:?} is not an http:// URL (https is not supported here)")]
    NotHttp(String),
    #[error("the URL has no host")]
    NoHost,
    #[error("no answer within {}", humantime::format_duration(*.0))]
    Timeout(Duration),
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        authority: String,
        source: std::io::Error,
    },
    #[error("HTTP error: {0}")]
    Http(#[from] hyper::Error),
    #[error("the answer is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the answer could not be read: {0}")]
    Body(String),
}

/// GETs `uri` (http only) and returns the status and the body, all within `timeout`.
pub async fn get(uri: &Uri, timeout: Duration) -> Result<(StatusCode, Bytes), GetError> {
    tokio::time::timeout(timeout, get_unbounded(uri))
        .await
        .unwrap_or(Err(GetError::Timeout(timeout)))
}

async fn get_unbounded(uri: &Uri) -> Result<(StatusCode, Bytes), GetError> {
    if uri.scheme_str().is_some_and(|s| s != "http") {
        return Err(GetError::NotHttp(uri.to_string()));
    }
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
            concat!("deckhand/", env!("CARGO_PKG_VERSION")),
        )
        .body(Empty::<Bytes>::new())
        .map_err(|e| GetError::Body(e.to_string()))?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = read_body(response.into_body(), MAX_BODY).await?;
    Ok((status, body))
}

/// The whole body, or [`GetError::TooLarge`] as soon as it is known to pass `limit`
/// bytes (from its declared length, or while reading).
async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, GetError>
where
    B: Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let declared = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    if declared > limit {
        return Err(GetError::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(GetError::TooLarge { limit })
        }
        Err(e) => Err(GetError::Body(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use hyper::body::Frame;
    use proptest::prelude::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use super::*;

    /// A server that answers one request with `response` (raw HTTP) and returns what it
    /// was asked.
    async fn answer_once(response: Vec<u8>) -> (Uri, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut asked = Vec::new();
            let mut buf = [0u8; 1024];
            while !asked.ends_with(b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                asked.extend_from_slice(&buf[..n]);
            }
            let _ = socket.write_all(&response).await;
            let _ = socket.shutdown().await;
            String::from_utf8_lossy(&asked).into_owned()
        });
        let uri = format!("http://{addr}/v4/abc/task?x=1").parse().unwrap();
        (uri, task)
    }

    fn http_response(status: &str, body: &[u8]) -> Vec<u8> {
        let mut r = format!(
            "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        r.extend_from_slice(body);
        r
    }

    #[tokio::test]
    async fn gets_the_status_and_the_body() {
        let (uri, server) = answer_once(http_response("200 OK", b"{\"Limits\":{}}")).await;
        let (status, body) = get(&uri, Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, StatusCode::OK);
        assert_eq!(&body[..], b"{\"Limits\":{}}");
        let asked = server.await.unwrap();
        assert!(
            asked.starts_with("GET /v4/abc/task?x=1 HTTP/1.1\r\n"),
            "{asked}"
        );
        assert!(
            asked.to_lowercase().contains("user-agent: deckhand/"),
            "{asked}"
        );

        let (uri, _) = answer_once(http_response("503 Service Unavailable", b"")).await;
        let (status, _) = get(&uri, Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn a_body_over_the_cap_is_refused() {
        let big = vec![b'x'; MAX_BODY + 1];
        let (uri, _) = answer_once(http_response("200 OK", &big)).await;
        let err = get(&uri, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            matches!(err, GetError::TooLarge { limit: MAX_BODY }),
            "{err}"
        );
        // Without a declared length, while reading.
        let mut chunked = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
        chunked.extend_from_slice(&big);
        let (uri, _) = answer_once(chunked).await;
        let err = get(&uri, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            matches!(err, GetError::TooLarge { limit: MAX_BODY }),
            "{err}"
        );
        // Exactly the cap is fine.
        let (uri, _) = answer_once(http_response("200 OK", &big[..MAX_BODY])).await;
        let (_, body) = get(&uri, Duration::from_secs(5)).await.unwrap();
        assert_eq!(body.len(), MAX_BODY);
    }

    #[tokio::test]
    async fn no_answer_in_time_refused_connections_and_other_schemes_are_errors() {
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let uri: Uri = format!("http://{}/", silent.local_addr().unwrap())
            .parse()
            .unwrap();
        let err = get(&uri, Duration::from_millis(300)).await.unwrap_err();
        assert_eq!(err.to_string(), "no answer within 300ms");

        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let uri: Uri = format!("http://{closed}/").parse().unwrap();
        let err = get(&uri, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, GetError::Connect { .. }), "{err}");
        assert!(err.to_string().contains("refused"), "{err}");

        let uri: Uri = "https://169.254.170.2/v4".parse().unwrap();
        let err = get(&uri, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, GetError::NotHttp(_)), "{err}");
        let uri: Uri = "/no/host".parse().unwrap();
        let err = get(&uri, Duration::from_secs(5)).await.unwrap_err();
        assert!(matches!(err, GetError::NoHost), "{err}");
    }

    #[tokio::test]
    async fn an_ipv6_literal_is_connected_to_without_its_brackets() {
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            return; // No IPv6 loopback here.
        };
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let _ = socket
                .write_all(&http_response("204 No Content", b""))
                .await;
        });
        let uri: Uri = format!("http://[::1]:{port}/").parse().unwrap();
        let (status, _) = get(&uri, Duration::from_secs(5)).await.unwrap();
        assert_eq!(status, StatusCode::NO_CONTENT);
    }

    /// A body that arrives in the given chunks, with no declared length.
    struct Chunks(VecDeque<Bytes>);

    impl Body for Chunks {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            Poll::Ready(self.0.pop_front().map(|c| Ok(Frame::data(c))))
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    proptest! {
        /// The cap holds for any split of any body: whole when it fits, refused when it
        /// does not, never cut short.
        #[test]
        fn the_body_cap_holds_for_any_chunking(
            chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..64), 0..16),
            limit in 0usize..600,
        ) {
            let whole: Vec<u8> = chunks.concat();
            let streamed = Chunks(chunks.into_iter().map(Bytes::from).collect());
            // The same body with its length declared up front.
            let declared = http_body_util::Full::new(Bytes::from(whole.clone()));
            let outcomes = [
                block_on(read_body(streamed, limit)),
                block_on(read_body(declared, limit)),
            ];
            for outcome in outcomes {
                match outcome {
                    Ok(read) => {
                        prop_assert!(whole.len() <= limit);
                        prop_assert_eq!(&read[..], &whole[..]);
                    }
                    Err(GetError::TooLarge { limit: l }) => {
                        prop_assert_eq!(l, limit);
                        prop_assert!(whole.len() > limit);
                    }
                    Err(other) => prop_assert!(false, "unexpected error: {}", other),
                }
            }
        }
    }
}
