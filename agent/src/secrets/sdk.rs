//! What both AWS stores share: the SDK configuration (the SDK's own retries off, short
//! attempt timeouts: [`super::source`] retries, under the one deadline) and the sorting
//! of SDK errors into [`FetchErrorKind`]s.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};

use super::source::{FetchError, FetchErrorKind};

/// Longest wait for a TCP/TLS connection to the endpoint before trying again.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest wait for one request; the overall deadline bounds the rest.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(4);

/// How the SDK says that no credentials provider in the chain is configured (as
/// opposed to one that is configured and failing, which is retried).
const NO_CREDENTIALS: &str = "no credentials found in chain";

/// Loads the SDK's default configuration (region, credentials chain incl. the ECS
/// container credentials endpoint, `AWS_ENDPOINT_URL`), once for every store.
pub async fn config_from_env() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::disabled())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .operation_attempt_timeout(ATTEMPT_TIMEOUT)
                .build(),
        )
        .load()
        .await
}

/// Sorts an SDK error into a retry class by its error code, else its HTTP status.
///
/// The detail is built from the error code, message and status only: never from the
/// raw response, whose body could be a secret value the SDK failed to parse.
pub(crate) fn classify<E, R>(err: SdkError<E, R>) -> FetchError
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
            FetchError::new(kind_of(code, status, &detail), detail)
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

fn kind_of(code: Option<&str>, status: u16, detail: &str) -> FetchErrorKind {
    match code {
        // Parameter Store says a SecureString's KMS key refused with an access error
        // whose message names KMS.
        Some("AccessDeniedException") if detail.contains("KMS") || detail.contains("kms:") => {
            FetchErrorKind::Decryption
        }
        Some("ResourceNotFoundException" | "ParameterNotFound" | "ParameterVersionNotFound") => {
            FetchErrorKind::NotFound
        }
        Some(
            "AccessDeniedException"
            | "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "ExpiredTokenException"
            | "InvalidSignatureException"
            | "IncompleteSignature",
        ) => FetchErrorKind::AccessDenied,
        Some("DecryptionFailure" | "InvalidKeyId" | "KMSAccessDeniedException") => {
            FetchErrorKind::Decryption
        }
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
pub(crate) trait HttpStatus {
    fn status(&self) -> u16;
}

impl HttpStatus for aws_sdk_secretsmanager::config::http::HttpResponse {
    fn status(&self) -> u16 {
        self.status().as_u16()
    }
}

/// One client per region, built on first use from the base configuration: a reference
/// by ARN is read in the ARN's region, everything else in the default one (`None`).
pub struct ByRegion<C> {
    base: SdkConfig,
    clients: std::sync::Mutex<std::collections::HashMap<Option<String>, C>>,
}

impl<C: Clone> ByRegion<C> {
    pub fn new(base: SdkConfig) -> Self {
        ByRegion {
            base,
            clients: Default::default(),
        }
    }

    /// The client for `region`, made by `new` (e.g. `Client::new`) the first time.
    pub fn get(&self, region: Option<&str>, new: impl FnOnce(&SdkConfig) -> C) -> C {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.map(str::to_owned))
            .or_insert_with(|| match region {
                Some(r) => new(&self
                    .base
                    .to_builder()
                    .region(aws_config::Region::new(r.to_owned()))
                    .build()),
                None => new(&self.base),
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_decide_retrying() {
        use FetchErrorKind::*;
        assert_eq!(kind_of(Some("ThrottlingException"), 400, ""), Transient);
        assert_eq!(kind_of(Some("InternalServiceError"), 500, ""), Transient);
        assert_eq!(kind_of(None, 503, ""), Transient);
        assert_eq!(kind_of(None, 429, ""), Transient);
        assert_eq!(
            kind_of(Some("ResourceNotFoundException"), 400, ""),
            NotFound
        );
        // moto answers a missing secret with 404.
        assert_eq!(
            kind_of(Some("ResourceNotFoundException"), 404, ""),
            NotFound
        );
        assert_eq!(
            kind_of(Some("AccessDeniedException"), 400, ""),
            AccessDenied
        );
        assert_eq!(kind_of(Some("DecryptionFailure"), 400, ""), Decryption);
        assert_eq!(kind_of(Some("InvalidRequestException"), 400, ""), Invalid);
        // Parameter Store.
        assert_eq!(kind_of(Some("ParameterNotFound"), 400, ""), NotFound);
        assert_eq!(kind_of(Some("ParameterVersionNotFound"), 400, ""), NotFound);
        assert_eq!(
            kind_of(
                Some("AccessDeniedException"),
                400,
                "AccessDeniedException: not authorized to perform kms:Decrypt"
            ),
            Decryption
        );
        assert_eq!(kind_of(Some("InvalidKeyId"), 400, ""), Decryption);
    }
}
