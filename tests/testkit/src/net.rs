//! Addresses and a TCP stand-in: a port nothing listens on, the moto server's address,
//! and a proxy that takes a service down, freezes it or restarts it under a test. For
//! HTTP doubles see [`crate::http`].

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// An address on 127.0.0.1 that nothing listens on: a stopped server, or a free port to
/// hand to a server under test. (Bound to port 0 and released at once; nothing else
/// binds it in the meantime unless it asks for that port.)
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("the bound address")
}

/// The moto server's address, from `AWS_ENDPOINT_URL` (`http://127.0.0.1:PORT`).
pub fn moto_addr() -> SocketAddr {
    crate::service_var("AWS_ENDPOINT_URL")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("AWS_ENDPOINT_URL is http://127.0.0.1:PORT")
}

/// What a [`TcpProxy`] does with connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyMode {
    /// Bytes flow both ways.
    Forward,
    /// Bytes flow both ways until the client sends a read that holds this text (a
    /// query's, say: a query message is small and comes in one read); that read still
    /// reaches the server, then the proxy is [`ProxyMode::Hung`]. A freeze at a
    /// statement the server is running, without a race against it.
    HangAfter(&'static str),
    /// A server that is down: new connections are closed at once, open ones are cut.
    Down,
    /// A frozen server: connections stay open, but no byte moves either way (bytes
    /// already read are held, and an end of stream is not passed on either).
    Hung,
}

#[derive(Debug, Clone, Copy)]
struct ProxyState {
    mode: ProxyMode,
    /// Bumped to cut every open connection once (a restart); each connection remembers
    /// the value it was opened under.
    cuts: u64,
    /// The test is over: the accept loop ends.
    shutdown: bool,
}

impl ProxyState {
    /// Whether a connection opened under `cuts` must be closed now.
    fn cut(&self, cuts: u64) -> bool {
        self.mode == ProxyMode::Down || self.cuts != cuts || self.shutdown
    }

    /// Whether bytes move.
    fn flows(&self) -> bool {
        matches!(self.mode, ProxyMode::Forward | ProxyMode::HangAfter(_))
    }
}

/// A TCP proxy on 127.0.0.1 (or another loopback address; port 0) in front of a
/// service, switched between the faults of [`ProxyMode`] by the test. It runs on a
/// thread and runtime of its own, so a test's blocking waits (for a process, say) never
/// stall it. Dropping it stops it.
pub struct TcpProxy {
    addr: SocketAddr,
    /// The service's address, as given.
    upstream: String,
    state: Arc<watch::Sender<ProxyState>>,
    /// Connections accepted so far, whatever the mode: the connection attempts.
    accepted: Arc<AtomicU32>,
    /// Reads of the clients' bytes passed on to the service ([`TcpProxy::sends`]).
    sends: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// Starts forwarding to `upstream` (`host:port`) in `mode`.
    pub fn start(upstream: impl Into<String>, mode: ProxyMode) -> TcpProxy {
        TcpProxy::start_at(Ipv4Addr::LOCALHOST, upstream, mode)
    }

    /// [`TcpProxy::start`] listening on another loopback address (`127.0.0.2`, say: a
    /// name the server's certificate does not hold).
    pub fn start_at(ip: Ipv4Addr, upstream: impl Into<String>, mode: ProxyMode) -> TcpProxy {
        let upstream = upstream.into();
        let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (state, _) = watch::channel(ProxyState {
            mode,
            cuts: 0,
            shutdown: false,
        });
        let state = Arc::new(state);
        let accepted = Arc::new(AtomicU32::new(0));
        let sends = Arc::new(AtomicU32::new(0));
        let (to, shared) = (upstream.clone(), state.clone());
        let counts = (accepted.clone(), sends.clone());
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(accept_loop(listener, to, shared, counts));
        });
        TcpProxy {
            addr,
            upstream,
            state,
            accepted,
            sends,
            thread: Some(thread),
        }
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The service's address, as given to [`TcpProxy::start`].
    pub fn upstream(&self) -> &str {
        &self.upstream
    }

    pub fn set(&self, mode: ProxyMode) {
        self.state.send_modify(|s| s.mode = mode);
    }

    /// The mode now ([`ProxyMode::HangAfter`] turns into [`ProxyMode::Hung`] by itself).
    pub fn mode(&self) -> ProxyMode {
        self.state.borrow().mode
    }

    /// Cuts every open connection once; new ones are forwarded (a server restart).
    pub fn restart(&self) {
        self.state.send_modify(|s| s.cuts += 1);
    }

    /// Connections accepted so far, whatever the mode.
    pub fn accepted(&self) -> u32 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Reads of the clients' bytes passed on to the service so far, over all
    /// connections. A client that sends a request and waits for its answer before the
    /// next one (a PostgreSQL client's round trip) makes one read per round trip: a
    /// small write arrives in one read, and the next cannot join it, as it is sent only
    /// once the answer came back through the proxy.
    pub fn sends(&self) -> u32 {
        self.sends.load(Ordering::SeqCst)
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.state.send_modify(|s| s.shutdown = true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(
    listener: std::net::TcpListener,
    upstream: String,
    state: Arc<watch::Sender<ProxyState>>,
    (accepted, sends): (Arc<AtomicU32>, Arc<AtomicU32>),
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    let mut rx = state.subscribe();
    loop {
        let socket = tokio::select! {
            r = listener.accept() => match r {
                Ok((socket, _)) => socket,
                Err(_) => continue,
            },
            r = rx.changed() => {
                if r.is_err() || rx.borrow().shutdown {
                    return;
                }
                continue;
            }
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let now = *rx.borrow();
        if now.mode == ProxyMode::Down {
            continue; // dropped: closed at once
        }
        tokio::spawn(forward(
            socket,
            upstream.clone(),
            state.clone(),
            now.cuts,
            sends.clone(),
        ));
    }
}

/// Forwards one connection until either side ends it or the proxy cuts it; dropping
/// the four halves closes both connections.
async fn forward(
    client: TcpStream,
    upstream: String,
    state: Arc<watch::Sender<ProxyState>>,
    cuts: u64,
    sends: Arc<AtomicU32>,
) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, state.subscribe(), cuts, Some((&state, &sends))) => {}
        () = pump(server_read, client_write, state.subscribe(), cuts, None) => {}
    }
}

/// Moves bytes from `from` to `to` while the proxy lets them flow. `client` is given on
/// the client's side: the proxy's state, where [`ProxyMode::HangAfter`] looks, and the
/// count of reads passed on.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut rx: watch::Receiver<ProxyState>,
    cuts: u64,
    client: Option<(&watch::Sender<ProxyState>, &AtomicU32)>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // A frozen server takes nothing in: wait until bytes may flow again.
        match rx.wait_for(|s| s.cut(cuts) || s.flows()).await {
            Ok(s) if !s.cut(cuts) => {}
            _ => return,
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = rx.wait_for(|s| s.cut(cuts) || !s.flows()) => continue,
        };
        let read = &buf[..n];
        let last = client.is_some_and(|(state, _)| {
            state.send_if_modified(|s| match s.mode {
                ProxyMode::HangAfter(text)
                    if read
                        .windows(text.len().max(1))
                        .any(|w| w == text.as_bytes()) =>
                {
                    s.mode = ProxyMode::Hung;
                    true
                }
                _ => false,
            })
        });
        // Bytes read just as the proxy froze are held until it thaws; the read that
        // froze it goes on.
        if !last {
            match rx.wait_for(|s| s.cut(cuts) || s.flows()).await {
                Ok(s) if !s.cut(cuts) => {}
                _ => return,
            }
        }
        if to.write_all(read).await.is_err() {
            return;
        }
        if let Some((_, sends)) = client {
            sends.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// A TLS front on 127.0.0.1 (port 0) for a plain-TCP service: it takes TLS with the
/// services' server certificate (for `localhost` and `127.0.0.1`, signed by the test
/// CA) and passes the bytes on to `upstream` in the clear. The AWS emulator speaks
/// HTTP; AWS speaks HTTPS: a client sent through this front makes the real client's
/// handshake and certificate check. Dropping it stops it.
pub struct TlsFront {
    addr: SocketAddr,
    /// Handshakes completed so far.
    handshakes: Arc<AtomicU32>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl TlsFront {
    /// Starts a front for `upstream` with the services' certificate and key
    /// (`$DECKHAND_TEST_SERVICES_DIR/tls/server.crt` and `server.key`).
    pub fn start(upstream: SocketAddr) -> TlsFront {
        let tls =
            std::path::PathBuf::from(crate::service_var("DECKHAND_TEST_SERVICES_DIR")).join("tls");
        let pem = |name: &str| std::fs::read(tls.join(name)).expect("the services' TLS files");
        let chain: Vec<_> = rustls_pemfile::certs(&mut pem("server.crt").as_slice())
            .collect::<Result<_, _>>()
            .expect("the server certificate");
        let key = rustls_pemfile::private_key(&mut pem("server.key").as_slice())
            .expect("the server key")
            .expect("a key in server.key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("the certificate and its key");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the bound address");
        let handshakes = Arc::new(AtomicU32::new(0));
        let counted = handshakes.clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("the front's runtime")
                .block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("the listener");
                    let accepting = async {
                        while let Ok((client, _)) = listener.accept().await {
                            let (acceptor, counted) = (acceptor.clone(), counted.clone());
                            tokio::spawn(async move {
                                let Ok(mut client) = acceptor.accept(client).await else {
                                    return;
                                };
                                counted.fetch_add(1, Ordering::SeqCst);
                                if let Ok(mut service) = TcpStream::connect(upstream).await {
                                    let _ =
                                        tokio::io::copy_bidirectional(&mut client, &mut service)
                                            .await;
                                }
                            });
                        }
                    };
                    tokio::select! {
                        _ = accepting => {}
                        _ = stopped => {}
                    }
                });
        });
        TlsFront {
            addr,
            handshakes,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where clients connect: use `https://localhost:PORT` (the certificate's name).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Handshakes completed so far.
    pub fn handshakes(&self) -> u32 {
        self.handshakes.load(Ordering::SeqCst)
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncReadExt;

    /// An upstream that echoes each read back and reports it on `seen`.
    async fn echo() -> (SocketAddr, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, seen) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        let _ = tx.send(buf[..n].to_vec());
                        if socket.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        (addr, seen)
    }

    async fn read_some(client: &mut TcpStream) -> Vec<u8> {
        let mut buf = [0u8; 1024];
        let n = client.read(&mut buf).await.unwrap();
        buf[..n].to_vec()
    }

    #[tokio::test]
    async fn hang_after_passes_the_read_that_holds_the_text_then_holds_everything() {
        let (upstream, mut seen) = echo().await;
        let proxy = TcpProxy::start(upstream.to_string(), ProxyMode::HangAfter("stop"));
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();

        client.write_all(b"hello").await.unwrap();
        assert_eq!(seen.recv().await.unwrap(), b"hello");
        assert_eq!(read_some(&mut client).await, b"hello");
        assert_eq!(proxy.mode(), ProxyMode::HangAfter("stop"));

        client.write_all(b"please stop now").await.unwrap();
        // The read that holds the text reaches the server...
        assert_eq!(seen.recv().await.unwrap(), b"please stop now");
        assert_eq!(proxy.mode(), ProxyMode::Hung);
        // ...and its answer is held while the proxy is hung (a slower machine only
        // waits longer here), then passed on once it thaws.
        let mut buf = [0u8; 1024];
        let held = tokio::time::timeout(Duration::from_millis(300), client.read(&mut buf)).await;
        assert!(
            held.is_err(),
            "an answer went through a hung proxy: {held:?}"
        );
        proxy.set(ProxyMode::Forward);
        assert_eq!(read_some(&mut client).await, b"please stop now");
    }

    #[tokio::test]
    async fn sends_counts_each_request_a_client_waits_on() {
        let (upstream, mut seen) = echo().await;
        let proxy = TcpProxy::start(upstream.to_string(), ProxyMode::Forward);
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(proxy.sends(), 0);
        for (n, request) in [&b"one"[..], b"two", b"three"].into_iter().enumerate() {
            client.write_all(request).await.unwrap();
            assert_eq!(seen.recv().await.unwrap(), request);
            assert_eq!(read_some(&mut client).await, request);
            // Counted once the bytes were passed on, which the echo's answer follows.
            assert_eq!(proxy.sends(), n as u32 + 1);
        }
    }
}
