//! Secrets Manager as a [`Fetch`] source: GetSecretValue, one client per region (an
//! ARN reference is read in the ARN's region), errors sorted into retry classes.
//!
//! Why not BatchGetSecretValue: its quota is 100 requests/s per region against about
//! 10,000 for GetSecretValue, and a fleet starting together would throttle on it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::Client;

use super::reference::Key;
use super::source::{Fetch, FetchError, FetchErrorKind};
use super::value::SecretString;

/// Longest wait for a TCP/TLS connection to the endpoint before trying again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one GetSecretValue attempt; the overall deadline bounds the rest.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// How the SDK says that no credentials provider in the chain is configured (as
/// opposed to one that is configured and failing, which is retried).
const NO_CREDENTIALS: &str = "no credentials found in chain";

/// Secrets Manager clients, by region.
pub struct SecretsManager {
    base: SdkConfig,
    /// `None`: the default region of `base`.
    clients: Mutex<HashMap<Option<String>, Client>>,
}

impl SecretsManager {
    /// Loads the SDK's default configuration (region, credentials chain incl. the ECS
    /// container credentials endpoint, `AWS_ENDPOINT_URL`). The SDK's own retries are
    /// off: [`super::source`] retries, under the one deadline.
    pub async fn from_env() -> SecretsManager {
        let base = aws_config::defaults(BehaviorVersion::latest())
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                    .build(),
            )
            .load()
            .await;
        SecretsManager::new(base)
    }

    pub fn new(base: SdkConfig) -> SecretsManager {
        SecretsManager {
            base,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: Option<&str>) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.map(str::to_owned))
            .or_insert_with(|| {
                let mut config = aws_sdk_secretsmanager::config::Builder::from(&self.base);
                if let Some(r) = region {
                    config = config.region(Region::new(r.to_owned()));
                }
                Client::from_conf(config.build())
            })
            .clone()
    }
}

impl Fetch for SecretsManager {
    async fn fetch(&self, key: &Key) -> Result<SecretString, FetchError> {
        let Key::SecretsManager(k) = key;
        let client = self.client(k.region.as_deref());
        let answer = client
            .get_secret_value()
            .secret_id(&k.secret_id)
            .set_version_stage(k.version_stage.clone())
            .set_version_id(k.version_id.clone())
            .send()
            .await;
        let output = answer.map_err(classify)?;
        if let Some(text) = output.secret_string {
            return Ok(SecretString::new(text));
        }
        match output.secret_binary {
            Some(blob) => String::from_utf8(blob.into_inner())
                .map(SecretString::new)
                .map_err(|_| {
                    FetchError::new(
                        FetchErrorKind::Invalid,
                        "has a SecretBinary that is not valid UTF-8, which an environment variable cannot hold",
                    )
                }),
            None => Err(FetchError::new(
                FetchErrorKind::Invalid,
                "has neither SecretString nor SecretBinary",
            )),
        }
    }
}

/// Sorts an SDK error into a retry class by its error code, else its HTTP status.
///
/// The detail is built from the error code, message and status only: never from the
/// raw response, whose body could be a secret value the SDK failed to parse.
fn classify<E, R>(err: SdkError<E, R>) -> FetchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + HttpStatus,
{
    match &err {
        SdkError::ServiceError(ctx) => {
            let status = ctx.raw().status();
            let code = ctx.err().code();
            let detail = format!(
                "{}: {} (HTTP {status})",
                code.unwrap_or("unknown error"),
                ctx.err().message().unwrap_or("no message"),
            );
            FetchError::new(kind_of(code, status), detail)
        }
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status();
            let kind = if status >= 500 || status == 429 {
                FetchErrorKind::Transient
            } else {
                FetchErrorKind::Invalid
            };
            FetchError::new(
                kind,
                format!("the response could not be read (HTTP {status})"),
            )
        }
        // Timeouts, refused or reset connections, DNS, and credentials that could not
        // be fetched yet: all may pass; the deadline decides.
        SdkError::TimeoutError(_) => {
            FetchError::new(FetchErrorKind::Transient, "the request timed out")
        }
        SdkError::DispatchFailure(e) => {
            let detail = format!(
                "the request could not be sent: {}",
                chain(
                    e.as_connector_error()
                        .map(|c| c as &(dyn std::error::Error + 'static))
                )
            );
            // The credentials chain found nothing at all: waiting will not help.
            let kind = if detail.contains(NO_CREDENTIALS) {
                FetchErrorKind::Invalid
            } else {
                FetchErrorKind::Transient
            };
            FetchError::new(kind, detail)
        }
        _ => FetchError::new(
            FetchErrorKind::Invalid,
            format!(
                "the request could not be made: {}",
                chain(std::error::Error::source(&err))
            ),
        ),
    }
}

/// An error and its sources, as one line.
fn chain(err: Option<&(dyn std::error::Error + 'static)>) -> String {
    let mut parts = Vec::new();
    let mut next = err;
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        next = e.source();
    }
    if parts.is_empty() {
        "unknown error".into()
    } else {
        parts.join(": ")
    }
}

fn kind_of(code: Option<&str>, status: u16) -> FetchErrorKind {
    match code {
        Some("ResourceNotFoundException") => FetchErrorKind::NotFound,
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "InvalidSignatureException"
            | "IncompleteSignature",
        ) => FetchErrorKind::AccessDenied,
        Some("DecryptionFailure") => FetchErrorKind::Decryption,
        Some(
            "ThrottlingException"
            | "Throttling"
            | "TooManyRequestsException"
            | "RequestLimitExceeded"
            | "InternalServiceError"
            | "InternalFailure"
            | "ServiceUnavailable"
            | "RequestTimeout"
            | "RequestTimeoutException",
        ) => FetchErrorKind::Transient,
        _ if status >= 500 || status == 429 => FetchErrorKind::Transient,
        _ if status == 404 => FetchErrorKind::NotFound,
        _ if status == 403 => FetchErrorKind::AccessDenied,
        _ => FetchErrorKind::Invalid,
    }
}

/// The HTTP status of a raw response, whatever its type.
trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_secretsmanager::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_decide_retrying() {
        use FetchErrorKind::*;
        assert_eq!(kind_of(Some("ThrottlingException"), 400), Transient);
        assert_eq!(kind_of(Some("InternalServiceError"), 500), Transient);
        assert_eq!(kind_of(None, 503), Transient);
        assert_eq!(kind_of(None, 429), Transient);
        assert_eq!(kind_of(Some("ResourceNotFoundException"), 400), NotFound);
        // moto answers a missing secret with 404.
        assert_eq!(kind_of(Some("ResourceNotFoundException"), 404), NotFound);
        assert_eq!(kind_of(Some("AccessDeniedException"), 400), AccessDenied);
        assert_eq!(kind_of(Some("DecryptionFailure"), 400), Decryption);
        assert_eq!(kind_of(Some("InvalidRequestException"), 400), Invalid);
    }
}
