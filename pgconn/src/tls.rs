//! rustls client settings for each `sslmode`.
//!
//! `prefer` and `require` without a root certificate encrypt but trust any certificate,
//! exactly like libpq; `verify-ca` checks the chain but not the name (RDS proxies and
//! custom DNS names); `verify-full` checks both.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{RootCert, SslMode};

/// Where Debian (and our scratch image) keep the system CA bundle.
const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The root certificate setting cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("PGSSLROOTCERT={path:?} is not valid: cannot read it ({source}); point it at a PEM CA bundle")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("PGSSLROOTCERT={path:?} is not valid: it holds no usable PEM certificate")]
    NoCertificates { path: PathBuf },
    #[error("PGSSLROOTCERT is not set: {}", no_root_advice(*mode))]
    NoRootCertificate { mode: SslMode },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// What to set when `mode` checks the certificate and no CA bundle is given: the same
/// advice from the settings' validation and from a configuration built in code.
pub(crate) fn no_root_advice(mode: SslMode) -> String {
    format!(
        "sslmode={mode} checks the server certificate against a CA bundle: set PGSSLROOTCERT \
         (or sslrootcert= in the URL) to the bundle file, e.g. RDS's global-bundle.pem, or to \
         'system' for the system CA store"
    )
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

pub(crate) fn connector(
    mode: SslMode,
    root: Option<&RootCert>,
) -> Result<MakeRustlsConnect, TlsError> {
    let provider = provider();
    let verifier: Arc<dyn ServerCertVerifier> = match (mode, root) {
        (SslMode::Disable | SslMode::Prefer, _) | (SslMode::Require, None) => {
            Arc::new(Lenient::new(None, &provider))
        }
        (SslMode::Require | SslMode::VerifyCa, Some(root)) => Arc::new(Lenient::new(
            Some(webpki(root, provider.clone())?),
            &provider,
        )),
        (SslMode::VerifyFull, Some(root)) => webpki(root, provider.clone())?,
        // `PgConfig`'s validation refuses these; a config built in code may not be.
        (SslMode::VerifyCa | SslMode::VerifyFull, None) => {
            return Err(TlsError::NoRootCertificate { mode })
        }
    };
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

fn webpki(
    root: &RootCert,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let path = match root {
        RootCert::File(p) => p.clone(),
        RootCert::System => std::env::var_os("SSL_CERT_FILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| SYSTEM_CA_BUNDLE.into()),
    };
    let mut store = RootCertStore::empty();
    for cert in read_pem(&path)? {
        // A bundle may hold a certificate rustls cannot use; the rest still count.
        let _ = store.add(cert);
    }
    if store.is_empty() {
        return Err(TlsError::NoCertificates { path });
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider)
        .build()
        .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))
}

/// The most a CA bundle file may hold: RDS's global bundle and a system's are a few
/// hundred KB; more is a setting pointed at the wrong file.
const MAX_BUNDLE_BYTES: u64 = 16 << 20;

fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    // Only a regular file: a named pipe would be waited on for ever before the first
    // connection (before the app, under the agent's DECKHAND_MIGRATE_ON_START), and
    // `/dev/zero` read until memory ran out.
    let bytes =
        conventions::file::read_regular(path, MAX_BUNDLE_BYTES, "16 MiB").map_err(|source| {
            TlsError::Read {
                path: path.to_owned(),
                source,
            }
        })?;
    Ok(rustls_pemfile::certs(&mut bytes.as_slice())
        .filter_map(Result::ok)
        .collect())
}

/// The modes that do not check the server's name: `prefer` and `require` without a root
/// certificate accept any certificate, as libpq does (encryption without authentication
/// of the server), and `verify-ca` (or `require` with one) needs its chain to lead to a
/// trusted root, whatever name it holds (RDS proxies and custom DNS names). Handshake
/// signatures are always checked, so the session key is the certificate holder's.
#[derive(Debug)]
struct Lenient {
    /// The chain's check, if any.
    chain: Option<Arc<WebPkiServerVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl Lenient {
    fn new(chain: Option<Arc<WebPkiServerVerifier>>, provider: &CryptoProvider) -> Self {
        Lenient {
            chain,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
