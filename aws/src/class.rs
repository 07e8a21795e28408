//! What a failed AWS call means for the caller, in one table: the service's error code
//! decides ([`Class::of_code`]), else the HTTP status ([`Class::of_status`]); with the
//! `sdk` feature, [`classify`] reads any SDK error (the answer, a timeout, a connection
//! that failed, credentials that could not be found) into a [`Failure`] that is safe to
//! print.
//!
//! Every caller maps the class onto its own consequences: the agent's secret stores
//! onto `FetchErrorKind` (retry under the deadline, or an exit code), the log shipper
//! onto `FailureKind` (retry with backoff, wait for a person, or drop the batch).
//!
//! What it is not: a retry loop, and not a reader of error messages — the message is
//! carried for people to read, never matched to decide a class.

/// What a failure calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// It may pass by itself: a 5xx, a timeout, a connection that failed or broke, an
    /// answer cut short, credentials that expired (the SDK fetches new ones: those
    /// from the ECS container endpoint rotate) or a clock the SDK corrects.
    Retryable,
    /// The service asks the caller to slow down (a quota): retry, with backoff.
    Throttled,
    /// The caller may not: access denied, credentials unknown or badly signed, or no
    /// credentials configured at all. A person must grant or configure something.
    AccessDenied,
    /// KMS would not decrypt the value: the key's policy, a disabled or missing key.
    Decryption,
    /// What the request names does not exist (secret, parameter, version, log group).
    NotFound,
    /// The service refused the request as such (a bad parameter, a value it cannot
    /// take) or the SDK could not build it: sent again, it fails again.
    Invalid,
    /// The endpoint's TLS certificate was not accepted: the container's CA bundle lacks
    /// its issuer (an image without one, a proxy that inspects TLS), or the certificate
    /// is expired or for another name. No retry changes the bundle.
    Untrusted,
}

/// Error codes, by class. Sources: the AWS SDK's own retry classifier (throttling and
/// transient codes), the API references of Secrets Manager, Systems Manager and
/// CloudWatch Logs, and the common errors of every AWS query/JSON API.
const THROTTLED: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    // Not `LimitExceededException`: CloudWatch Logs answers it when an account has as
    // many log groups as it may, which no retry heals (it falls to the status: Invalid).
    "SlowDown",
];
const RETRYABLE: &[&str] = &[
    "InternalFailure",
    "InternalError",
    "InternalServerError",
    "InternalServiceError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
    // CloudWatch Logs: another call changed the same resource at the same time.
    "OperationAbortedException",
    // Temporary credentials ran out: the SDK's provider fetches new ones (those from
    // the ECS container credentials endpoint rotate while the task runs).
    "ExpiredToken",
    "ExpiredTokenException",
    // The request's signing time was off: the SDK measures the skew and corrects it.
    "RequestExpired",
    "RequestTimeTooSkewed",
];
const ACCESS_DENIED: &[&str] = &[
    "AccessDenied",
    "AccessDeniedException",
    "AuthFailure",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "NotAuthorized",
];
const DECRYPTION: &[&str] = &[
    "DecryptionFailure",
    "InvalidKeyId",
    "KMSAccessDeniedException",
    "KMSDisabledException",
    "KMSInvalidStateException",
    "KMSNotFoundException",
];
const NOT_FOUND: &[&str] = &[
    "ResourceNotFoundException",
    "ParameterNotFound",
    "ParameterVersionNotFound",
];

impl Class {
    /// The class of an answer with this error code and HTTP status: the code when it
    /// is one the table knows, else the status; [`Class::Invalid`] with neither.
    pub fn of(code: Option<&str>, status: Option<u16>) -> Class {
        code.and_then(Class::of_code)
            .or_else(|| status.map(Class::of_status))
            .unwrap_or(Class::Invalid)
    }

    /// The class of an error code, when the table knows it.
    pub fn of_code(code: &str) -> Option<Class> {
        let tables = [
            (THROTTLED, Class::Throttled),
            (RETRYABLE, Class::Retryable),
            (ACCESS_DENIED, Class::AccessDenied),
            (DECRYPTION, Class::Decryption),
            (NOT_FOUND, Class::NotFound),
        ];
        tables
            .into_iter()
            .find(|(codes, _)| codes.contains(&code))
            .map(|(_, class)| class)
    }

    /// The class of an HTTP status without a code the table knows.
    pub fn of_status(status: u16) -> Class {
        match status {
            429 => Class::Throttled,
            408 | 500.. => Class::Retryable,
            401 | 403 => Class::AccessDenied,
            404 => Class::NotFound,
            _ => Class::Invalid,
        }
    }

    /// Whether the same call may succeed later without anybody changing anything.
    pub fn is_retryable(self) -> bool {
        matches!(self, Class::Retryable | Class::Throttled)
    }
}

#[cfg(feature = "sdk")]
pub use self::sdk::{classify, Failure, HttpResponse, ProvideErrorMetadata, SdkError};

#[cfg(feature = "sdk")]
mod sdk {
    use std::error::Error;

    pub use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
    pub use aws_smithy_runtime_api::client::result::SdkError;
    pub use aws_smithy_types::error::metadata::ProvideErrorMetadata;

    use aws_credential_types::provider::error::CredentialsError;
    use aws_smithy_runtime_api::client::result::ConnectorError;

    use super::Class;
    use crate::chain::{self, Chain};

    /// A classified SDK error. `detail` is one line built from the error code, the
    /// service's message, the HTTP status and the transport's errors: never from a
    /// response body, which could hold a secret value the SDK failed to parse.
    #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
    #[error("{detail}")]
    pub struct Failure {
        pub class: Class,
        /// The service's error code (`ThrottlingException`), when it answered with one.
        pub code: Option<String>,
        /// The HTTP status, when there was an answer.
        pub status: Option<u16>,
        /// The service's message, when it sent one.
        pub message: Option<String>,
        /// What happened, in one line: `ThrottlingException: Rate exceeded (HTTP 400)`,
        /// `the request could not be sent: io error: …`.
        pub detail: String,
    }

    /// Sorts any SDK error into a [`Class`], with a detail that is safe to print.
    pub fn classify<E>(err: &SdkError<E, HttpResponse>) -> Failure
    where
        E: ProvideErrorMetadata + Error + 'static,
    {
        let status = err.raw_response().map(|r| r.status().as_u16());
        let (class, detail) = match err {
            SdkError::ServiceError(ctx) => {
                let code = ctx.err().code();
                let mut detail = code.unwrap_or("unknown error").to_owned();
                if let Some(m) = ctx.err().message().filter(|m| !m.is_empty()) {
                    detail.push_str(": ");
                    detail.push_str(m);
                }
                if let Some(s) = status {
                    detail.push_str(&format!(" (HTTP {s})"));
                }
                (Class::of(code, status), detail)
            }
            // The source is left out: a parser's error may quote the body.
            SdkError::ResponseError(_) => {
                let detail = match status {
                    Some(s) => format!("the response could not be read (HTTP {s})"),
                    None => "the response could not be read".to_owned(),
                };
                // An answer cut short, or garbled on the way, may read next time; a
                // refusal we cannot read is still a refusal.
                let class = match status.map(|s| (s, Class::of_status(s))) {
                    Some((400..=499, class)) if !class.is_retryable() => class,
                    _ => Class::Retryable,
                };
                (class, detail)
            }
            SdkError::TimeoutError(_) => (
                Class::Retryable,
                format!("the request timed out: {}", sources(err)),
            ),
            SdkError::DispatchFailure(ctx) if untrusted(ctx.as_connector_error()) => (
                Class::Untrusted,
                format!(
                    "the request could not be sent: {}{UNTRUSTED_FIX}",
                    sources(err)
                ),
            ),
            SdkError::DispatchFailure(ctx) => {
                let mut detail = format!("the request could not be sent: {}", sources(err));
                // No credentials provider in the chain found anything, or the one that
                // would has a setting it cannot use (a container credentials URI that
                // is not a URI, or not on loopback): waiting will not help. (One that is
                // configured and failing, like a container endpoint not up yet, is
                // retried.)
                let credentials = ctx
                    .as_connector_error()
                    .and_then(|c| chain::find::<CredentialsError>(c));
                let class = match credentials {
                    Some(CredentialsError::CredentialsNotLoaded(_)) => Class::AccessDenied,
                    Some(CredentialsError::InvalidConfiguration(_)) => {
                        detail.push_str(CREDENTIALS_FIX);
                        Class::Invalid
                    }
                    _ => Class::Retryable,
                };
                (class, detail)
            }
            _ => (
                Class::Invalid,
                format!("the request could not be made: {}", sources(err)),
            ),
        };
        Failure {
            class,
            code: err.code().map(str::to_owned),
            status,
            message: err.message().map(str::to_owned),
            detail,
        }
    }

    /// What to do about credentials settings the SDK's provider cannot use.
    const CREDENTIALS_FIX: &str = " — fix the credentials setting it names (in ECS, \
        AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is set by ECS itself: leave it unset in the \
        task definition)";

    /// Whether a connection failed because the TLS library did not accept the
    /// endpoint's certificate.
    fn untrusted(connector: Option<&ConnectorError>) -> bool {
        connector.is_some_and(|c| {
            matches!(
                chain::find::<rustls::Error>(c),
                Some(rustls::Error::InvalidCertificate(_))
            )
        })
    }

    /// What to do about [`Class::Untrusted`], after the TLS library's words.
    const UNTRUSTED_FIX: &str = " (the endpoint's TLS certificate is not trusted by this \
        container's CA bundle: the image needs one, /etc/ssl/certs/ca-certificates.crt, \
        copied from deckhand's image or installed with the ca-certificates package, or \
        SSL_CERT_FILE set to one; behind a proxy that inspects TLS, its CA must be in it)";

    /// The chain below the SDK error itself (whose own text is only its variant's name).
    fn sources<E, R>(err: &SdkError<E, R>) -> String
    where
        E: Error + 'static,
        R: std::fmt::Debug,
    {
        match err.source() {
            Some(source) => Chain(source).to_string(),
            None => "unknown error".to_owned(),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        use aws_smithy_types::body::SdkBody;
        use aws_smithy_types::error::ErrorMetadata;

        type Error = SdkError<ErrorMetadata, HttpResponse>;

        fn response(status: u16) -> HttpResponse {
            HttpResponse::new(status.try_into().unwrap(), SdkBody::empty())
        }

        fn service(code: &str, message: &str, status: u16) -> Error {
            let meta = ErrorMetadata::builder().code(code).message(message).build();
            SdkError::service_error(meta, response(status))
        }

        #[test]
        fn a_service_error_is_classified_by_code_and_described_without_its_body() {
            let f = classify(&service("ThrottlingException", "Rate exceeded", 400));
            assert_eq!(f.class, Class::Throttled);
            assert_eq!(f.code.as_deref(), Some("ThrottlingException"));
            assert_eq!(f.status, Some(400));
            assert_eq!(f.message.as_deref(), Some("Rate exceeded"));
            assert_eq!(f.detail, "ThrottlingException: Rate exceeded (HTTP 400)");
            assert_eq!(f.to_string(), f.detail);

            let f = classify(&service("SomethingNew", "", 503));
            assert_eq!(f.class, Class::Retryable);
            assert_eq!(f.detail, "SomethingNew (HTTP 503)");

            let meta = ErrorMetadata::builder().build();
            let f = classify(&Error::service_error(meta, response(404)));
            assert_eq!(f.class, Class::NotFound);
            assert_eq!(f.detail, "unknown error (HTTP 404)");
        }

        #[test]
        fn transport_failures_are_retried_unless_the_credentials_settings_cannot_work() {
            let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
            let f = classify(&Error::dispatch_failure(ConnectorError::io(refused.into())));
            assert_eq!(f.class, Class::Retryable);
            assert_eq!(f.detail, "the request could not be sent: io error: refused");
            assert_eq!((f.code, f.status), (None, None));

            let f = classify(&Error::timeout_error("attempt timeout after 4s"));
            assert_eq!(f.class, Class::Retryable);
            assert_eq!(f.detail, "the request timed out: attempt timeout after 4s");

            let none = CredentialsError::not_loaded("no providers in chain provided credentials");
            let f = classify(&Error::dispatch_failure(ConnectorError::other(
                none.into(),
                None,
            )));
            assert_eq!(f.class, Class::AccessDenied, "{}", f.detail);
            assert!(f.detail.contains("no providers in chain"), "{}", f.detail);

            // A provider that is configured and failing (the container endpoint not up
            // yet) may work on the next attempt.
            let failing = CredentialsError::provider_error("connection refused");
            let f = classify(&Error::dispatch_failure(ConnectorError::other(
                failing.into(),
                None,
            )));
            assert_eq!(f.class, Class::Retryable);

            // A provider that cannot use its own setting never will.
            let invalid = CredentialsError::invalid_configuration(
                "invalid relative URI for ECS provider (invalid uri character): not a path",
            );
            let f = classify(&Error::dispatch_failure(ConnectorError::other(
                invalid.into(),
                None,
            )));
            assert_eq!(f.class, Class::Invalid, "{}", f.detail);
            assert!(f.detail.contains("invalid relative URI"), "{}", f.detail);
            assert!(f.detail.ends_with(CREDENTIALS_FIX), "{}", f.detail);
        }

        #[test]
        fn a_certificate_not_trusted_is_not_retried_and_says_what_the_image_needs() {
            // As the SDK's connector reports it: the TLS library's error inside an
            // `io::Error`, inside the connector's.
            for problem in [
                rustls::CertificateError::UnknownIssuer,
                rustls::CertificateError::Expired,
                rustls::CertificateError::NotValidForName,
            ] {
                let tls = rustls::Error::InvalidCertificate(problem);
                let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
                let f = classify(&Error::dispatch_failure(ConnectorError::io(io.into())));
                assert_eq!(f.class, Class::Untrusted, "{}", f.detail);
                assert!(!f.class.is_retryable());
                assert!(
                    f.detail.contains("invalid peer certificate"),
                    "{}",
                    f.detail
                );
                assert!(f.detail.contains("CA bundle"), "{}", f.detail);
            }
            // Another TLS failure (the server speaks no TLS, say) may be the network's.
            let io = std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType),
            );
            let f = classify(&Error::dispatch_failure(ConnectorError::io(io.into())));
            assert_eq!(f.class, Class::Retryable, "{}", f.detail);
        }

        #[test]
        fn an_unreadable_answer_is_retried_unless_it_was_a_refusal() {
            let f = classify(&Error::response_error("unexpected token", response(200)));
            assert_eq!(f.class, Class::Retryable);
            assert_eq!(f.detail, "the response could not be read (HTTP 200)");
            assert!(
                !f.detail.contains("token"),
                "the parser's error may quote the body"
            );
            let f = classify(&Error::response_error("x", response(502)));
            assert_eq!(f.class, Class::Retryable);
            let f = classify(&Error::response_error("x", response(429)));
            assert_eq!(f.class, Class::Retryable);
            let f = classify(&Error::response_error("x", response(400)));
            assert_eq!(f.class, Class::Invalid);
            let f = classify(&Error::response_error("x", response(403)));
            assert_eq!(f.class, Class::AccessDenied);
        }

        #[test]
        fn a_request_that_cannot_be_built_is_invalid() {
            let f = classify(&Error::construction_failure("missing field `name`"));
            assert_eq!(f.class, Class::Invalid);
            assert_eq!(
                f.detail,
                "the request could not be made: missing field `name`"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_decide_before_statuses() {
        use Class::*;
        // Each with HTTP 400, so that only the code decides.
        let table = [
            ("ThrottlingException", Throttled),
            ("Throttling", Throttled),
            ("TooManyRequestsException", Throttled),
            ("RequestLimitExceeded", Throttled),
            ("LimitExceededException", Invalid),
            ("InternalServiceError", Retryable),
            ("InternalServerError", Retryable),
            ("InternalFailure", Retryable),
            ("ServiceUnavailable", Retryable),
            ("ServiceUnavailableException", Retryable),
            ("RequestTimeout", Retryable),
            ("RequestTimeoutException", Retryable),
            ("OperationAbortedException", Retryable),
            ("ExpiredTokenException", Retryable),
            ("ExpiredToken", Retryable),
            ("RequestExpired", Retryable),
            ("AccessDeniedException", AccessDenied),
            ("AccessDenied", AccessDenied),
            ("UnrecognizedClientException", AccessDenied),
            ("InvalidClientTokenId", AccessDenied),
            ("InvalidSignatureException", AccessDenied),
            ("SignatureDoesNotMatch", AccessDenied),
            ("IncompleteSignature", AccessDenied),
            ("MissingAuthenticationToken", AccessDenied),
            ("NotAuthorized", AccessDenied),
            ("DecryptionFailure", Decryption),
            ("InvalidKeyId", Decryption),
            ("KMSAccessDeniedException", Decryption),
            ("ResourceNotFoundException", NotFound),
            ("ParameterNotFound", NotFound),
            ("ParameterVersionNotFound", NotFound),
            // Refusals of the request itself.
            ("InvalidParameterException", Invalid),
            ("InvalidRequestException", Invalid),
            ("ValidationException", Invalid),
            ("DataAlreadyAcceptedException", Invalid),
            ("SerializationException", Invalid),
        ];
        for (code, class) in table {
            assert_eq!(Class::of(Some(code), Some(400)), class, "{code}");
        }
        // moto answers a missing secret with 404.
        assert_eq!(
            Class::of(Some("ResourceNotFoundException"), Some(404)),
            NotFound
        );
        // A known code wins over the status.
        assert_eq!(
            Class::of(Some("AccessDeniedException"), Some(500)),
            AccessDenied
        );
        // No code appears in two tables.
        let all = [THROTTLED, RETRYABLE, ACCESS_DENIED, DECRYPTION, NOT_FOUND].concat();
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len());
    }

    #[test]
    fn statuses_decide_for_unknown_codes() {
        use Class::*;
        let of = |status| Class::of(Some("SomethingNew"), Some(status));
        assert_eq!(of(500), Retryable);
        assert_eq!(of(503), Retryable);
        assert_eq!(of(599), Retryable);
        assert_eq!(of(408), Retryable);
        assert_eq!(of(429), Throttled);
        assert_eq!(of(401), AccessDenied);
        assert_eq!(of(403), AccessDenied);
        assert_eq!(of(404), NotFound);
        assert_eq!(of(400), Invalid);
        assert_eq!(of(413), Invalid);
        assert_eq!(Class::of(None, Some(400)), Invalid);
        assert_eq!(Class::of(None, None), Invalid);
        assert!(Retryable.is_retryable() && Throttled.is_retryable());
        assert!(!AccessDenied.is_retryable() && !Invalid.is_retryable());
    }
}
