//! Each `sslmode` against the test cluster's TLS, as libpq behaves: whether the session
//! is encrypted, and which certificates each mode accepts. The server's certificate is
//! for `localhost` and `127.0.0.1`; a proxy on `127.0.0.2` gives a name it does not
//! hold, and a CA that did not sign it is the wrong one.

use std::net::Ipv4Addr;

use pgconn::{PgConfig, SslMode, TlsError};
use testkit::net::{ProxyMode, TcpProxy};

/// The test database's URL with `host:port`, `sslmode` and (when given) `sslrootcert`.
fn url(db: &testkit::TestDb, at: &str, mode: &str, root: Option<&str>) -> String {
    let plain = db.config.clone();
    let base = db
        .url
        .replace(
            &format!("@{}:{}/", plain.hosts[0], plain.port),
            &format!("@{at}/"),
        )
        .replace("sslmode=disable", &format!("sslmode={mode}"));
    match root {
        Some(root) => format!("{base}&sslrootcert={root}"),
        None => base,
    }
}

/// Connects with `url` and says whether the session is encrypted, or why it failed.
async fn encrypted(url: &str) -> Result<bool, String> {
    let config = PgConfig::from_url(url).map_err(|e| e.to_string())?;
    let client = config.connect().await.map_err(|e| e.to_string())?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| e.to_string())?;
    Ok(row.get(0))
}

/// What a connection should come to.
#[derive(Debug, PartialEq)]
enum Outcome {
    Encrypted,
    Plain,
    /// Refused, with an error that names the certificate.
    Refused,
}

#[tokio::test]
async fn each_sslmode_encrypts_and_checks_as_libpq_does() {
    use Outcome::*;
    let db = testkit::TestDb::create("pgconn_tls").await;
    let ca = testkit::service_var("DECKHAND_TEST_PG_CA");
    let wrong = testkit::service_var("DECKHAND_TEST_PG_WRONG_CA");
    let server = format!("{}:{}", db.config.hosts[0], db.config.port);
    let named = TcpProxy::start(server.clone(), ProxyMode::Forward);
    let other_name = TcpProxy::start_at(Ipv4Addr::new(127, 0, 0, 2), server, ProxyMode::Forward);
    let (named, other) = (named.addr().to_string(), other_name.addr().to_string());
    let (ca, wrong) = (Some(ca.as_str()), Some(wrong.as_str()));
    let cases = [
        (&named, "disable", None, Plain),
        // The server offers TLS: `prefer` takes it, and trusts any certificate.
        (&other, "prefer", None, Encrypted),
        // `require` without a root certificate: encrypted, any certificate.
        (&other, "require", None, Encrypted),
        // `require` with one behaves as `verify-ca`.
        (&other, "require", ca, Encrypted),
        (&named, "require", wrong, Refused),
        // `verify-ca`: the chain, not the name.
        (&other, "verify-ca", ca, Encrypted),
        (&named, "verify-ca", wrong, Refused),
        // `verify-full`: the chain and the name.
        (&named, "verify-full", ca, Encrypted),
        (&other, "verify-full", ca, Refused),
        (&named, "verify-full", wrong, Refused),
    ];
    for (at, mode, root, expected) in cases {
        let got = match encrypted(&url(&db, at, mode, root)).await {
            Ok(true) => Encrypted,
            Ok(false) => Plain,
            Err(e) if e.contains("certificate") => Refused,
            Err(e) => panic!("{mode} at {at} with {root:?}: {e}"),
        };
        assert_eq!(got, expected, "{mode} at {at} with {root:?}");
    }
}

/// A configuration built in code, past `PgConfig`'s validation, that asks for a check
/// without a CA bundle: an error that says what to set, not a panic.
#[test]
fn a_verify_mode_without_a_root_certificate_is_an_error() {
    for mode in [SslMode::VerifyCa, SslMode::VerifyFull] {
        let mut config = PgConfig::from_url("postgres://u@h/d?sslmode=require").unwrap();
        config.sslmode = mode;
        config.root_cert = None;
        let err = config.tls().err().expect("refused");
        assert!(matches!(err, TlsError::NoRootCertificate { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains(&format!("sslmode={mode}")), "{text}");
        assert!(text.contains("PGSSLROOTCERT"), "{text}");
    }
}

/// aws-lc seeds its random numbers from CPU jitter besides the kernel unless it is
/// built without (`.cargo/config.toml`): 25-50 ms of CPU at each process's first
/// handshake, before `migrate`'s first query, `/health`'s first check, the agent's first
/// call to AWS. The jitter code, when built, is linked with the random numbers this
/// test draws; its functions' names are then in this (unstripped) test binary.
#[test]
fn the_tls_library_seeds_its_random_numbers_without_cpu_jitter() {
    let provider = rustls::crypto::aws_lc_rs::default_provider();
    let mut drawn = [0u8; 32];
    provider
        .secure_random
        .fill(&mut drawn)
        .expect("random bytes");
    assert_ne!(drawn, [0u8; 32]);
    let exe = std::env::current_exe().expect("this test's path");
    let binary = std::fs::read(&exe).expect("this test's binary");
    // The name looked for, spelled backwards here: as written, this very string would be
    // in the binary.
    let jitter: Vec<u8> = b"tini_yportne_tnej".iter().rev().copied().collect();
    assert!(
        memchr::memmem::find(&binary, &jitter).is_none(),
        "{} holds aws-lc's CPU jitter entropy: build with AWS_LC_SYS_NO_JITTER_ENTROPY=1 \
         (.cargo/config.toml)",
        exe.display()
    );
}

/// `PGSSLROOTCERT` (or `sslrootcert=`) at a named pipe waited for a writer for ever
/// before the first connection, and at `/dev/zero` read until memory ran out: each is
/// refused by what it is, at once, as is a file too large to be a CA bundle.
#[test]
fn a_ca_bundle_that_is_a_pipe_a_device_or_too_large_is_refused_by_name() {
    let dir = testkit::temp::TempDir::new("pgconn-bundle");
    let pipe = dir.join("pipe.pem");
    testkit::temp::fifo(&pipe);
    let huge = dir.join("huge.pem");
    std::fs::File::create(&huge)
        .and_then(|f| f.set_len(17 << 20))
        .unwrap();
    for (path, said) in [
        (
            pipe.to_str().unwrap(),
            "it is a named pipe (FIFO), not a regular file",
        ),
        ("/dev/zero", "it is a device, not a regular file"),
        (huge.to_str().unwrap(), "it is larger than 16 MiB"),
    ] {
        let url = format!("postgres://u@localhost/d?sslmode=verify-full&sslrootcert={path}");
        let (answer, answered) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let config = PgConfig::from_url(&url).expect("a valid URL");
            answer.send(config.tls().err().map(|e| e.to_string()))
        });
        let text = answered
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("the bundle's read ends")
            .expect("refused");
        assert!(
            text.contains(&format!("PGSSLROOTCERT={path:?}")) && text.contains(said),
            "{text}"
        );
    }
}
