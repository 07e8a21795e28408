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

fn refused_for_the_certificate(got: Result<bool, String>, what: &str) {
    match got {
        Ok(ssl) => panic!("{what}: connected (ssl {ssl}), should be refused"),
        Err(e) => assert!(e.contains("certificate"), "{what}: {e}"),
    }
}

#[tokio::test]
async fn each_sslmode_encrypts_and_checks_as_libpq_does() {
    let db = testkit::TestDb::create("pgconn_tls").await;
    let ca = testkit::service_var("DECKHAND_TEST_PG_CA");
    let wrong = testkit::service_var("DECKHAND_TEST_PG_WRONG_CA");
    let server = format!("{}:{}", db.config.hosts[0], db.config.port);
    let named = TcpProxy::start(server.clone(), ProxyMode::Forward);
    let other_name = TcpProxy::start_at(Ipv4Addr::new(127, 0, 0, 2), server, ProxyMode::Forward);
    let (named, other_name) = (named.addr().to_string(), other_name.addr().to_string());

    assert_eq!(
        encrypted(&url(&db, &named, "disable", None)).await,
        Ok(false)
    );
    // The server offers TLS: `prefer` takes it, and trusts any certificate.
    assert_eq!(
        encrypted(&url(&db, &other_name, "prefer", None)).await,
        Ok(true)
    );
    // `require` without a root certificate: encrypted, any certificate.
    assert_eq!(
        encrypted(&url(&db, &other_name, "require", None)).await,
        Ok(true)
    );
    // `require` with one behaves as `verify-ca`.
    assert_eq!(
        encrypted(&url(&db, &other_name, "require", Some(&ca))).await,
        Ok(true)
    );
    refused_for_the_certificate(
        encrypted(&url(&db, &named, "require", Some(&wrong))).await,
        "require with the wrong CA",
    );
    // `verify-ca`: the chain, not the name.
    assert_eq!(
        encrypted(&url(&db, &other_name, "verify-ca", Some(&ca))).await,
        Ok(true)
    );
    refused_for_the_certificate(
        encrypted(&url(&db, &named, "verify-ca", Some(&wrong))).await,
        "verify-ca with the wrong CA",
    );
    // `verify-full`: the chain and the name.
    assert_eq!(
        encrypted(&url(&db, &named, "verify-full", Some(&ca))).await,
        Ok(true)
    );
    refused_for_the_certificate(
        encrypted(&url(&db, &other_name, "verify-full", Some(&ca))).await,
        "verify-full under a name the certificate does not hold",
    );
    refused_for_the_certificate(
        encrypted(&url(&db, &named, "verify-full", Some(&wrong))).await,
        "verify-full with the wrong CA",
    );
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
