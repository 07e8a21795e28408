//! Addresses and a TCP stand-in: a port nothing listens on, the moto server's address,
//! and a proxy that takes a service down, freezes it or restarts it under a test. For
//! HTTP doubles see [`crate::http`].

use std::net::SocketAddr;
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
}

/// A TCP proxy on 127.0.0.1 (port 0) in front of a service, switched between the
/// faults of [`ProxyMode`] by the test. It runs on a thread and runtime of its own, so a
/// test's blocking waits (for a process, say) never stall it. Dropping it stops it.
pub struct TcpProxy {
    addr: SocketAddr,
    /// The service's address, as given.
    upstream: String,
    state: watch::Sender<ProxyState>,
    /// Connections accepted so far, whatever the mode: the connection attempts.
    accepted: Arc<AtomicU32>,
    thread: Option<JoinHandle<()>>,
}

impl TcpProxy {
    /// Starts forwarding to `upstream` (`host:port`) in `mode`.
    pub fn start(upstream: impl Into<String>, mode: ProxyMode) -> TcpProxy {
        let upstream = upstream.into();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (state, rx) = watch::channel(ProxyState {
            mode,
            cuts: 0,
            shutdown: false,
        });
        let accepted = Arc::new(AtomicU32::new(0));
        let (to, count) = (upstream.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(accept_loop(listener, to, rx, count));
        });
        TcpProxy {
            addr,
            upstream,
            state,
            accepted,
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

    /// Cuts every open connection once; new ones are forwarded (a server restart).
    pub fn restart(&self) {
        self.state.send_modify(|s| s.cuts += 1);
    }

    /// Connections accepted so far, whatever the mode.
    pub fn accepted(&self) -> u32 {
        self.accepted.load(Ordering::SeqCst)
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
    mut rx: watch::Receiver<ProxyState>,
    accepted: Arc<AtomicU32>,
) {
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
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
        let state = *rx.borrow();
        if state.mode == ProxyMode::Down {
            continue; // dropped: closed at once
        }
        tokio::spawn(forward(socket, upstream.clone(), rx.clone(), state.cuts));
    }
}

/// Forwards one connection until either side ends it or the proxy cuts it; dropping
/// the four halves closes both connections.
async fn forward(client: TcpStream, upstream: String, rx: watch::Receiver<ProxyState>, cuts: u64) {
    let Ok(server) = TcpStream::connect(&upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, rx.clone(), cuts) => {}
        () = pump(server_read, client_write, rx, cuts) => {}
    }
}

async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut rx: watch::Receiver<ProxyState>,
    cuts: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // A frozen server takes nothing in: wait until bytes may flow again.
        match rx
            .wait_for(|s| s.cut(cuts) || s.mode == ProxyMode::Forward)
            .await
        {
            Ok(s) if !s.cut(cuts) => {}
            _ => return,
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = rx.wait_for(|s| s.cut(cuts) || s.mode != ProxyMode::Forward) => continue,
        };
        // Bytes read just as the proxy froze are held until it thaws.
        match rx
            .wait_for(|s| s.cut(cuts) || s.mode == ProxyMode::Forward)
            .await
        {
            Ok(s) if !s.cut(cuts) => {}
            _ => return,
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
