//! What both AWS stores share: their per-call limits, one client per region, and the
//! reading of an SDK error (classified once, by [`aws::classify`]) as a
//! [`FetchErrorKind`].
//!
//! What it is not: the SDK's configuration ([`aws::sdk`] builds it, once for the
//! agent) or a retry loop ([`super::source`] retries, under the one deadline).

use std::time::Duration;

use aws::class::{HttpResponse, ProvideErrorMetadata, SdkError};
use aws::sdk::{Region, SdkConfig, Timeouts};
use aws::Class;

use super::source::{FetchError, FetchErrorKind};

/// A secret read is small: a connection that takes longer than 2 s, or an answer that
/// takes longer than 4 s, is tried again, under the deadline.
const TIMEOUTS: Timeouts = Timeouts {
    connect: Duration::from_secs(2),
    attempt: Duration::from_secs(4),
};

/// The error of a failed SDK call, with the service's code, message and status (never
/// the raw response, whose body could be a secret value the SDK failed to parse).
pub(crate) fn fetch_error<E>(err: SdkError<E, HttpResponse>) -> FetchError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let failure = aws::classify(&err);
    FetchError::new(
        kind(failure.class, failure.message.as_deref()),
        failure.detail,
    )
}

/// What a class of failure means for a secret.
fn kind(class: Class, message: Option<&str>) -> FetchErrorKind {
    match class {
        Class::Retryable | Class::Throttled => FetchErrorKind::Transient,
        // Parameter Store says a SecureString's KMS key refused with an access error
        // whose message names KMS: the same class, a more useful hint.
        Class::AccessDenied if message.is_some_and(|m| m.contains("KMS") || m.contains("kms:")) => {
            FetchErrorKind::Decryption
        }
        Class::AccessDenied => FetchErrorKind::AccessDenied,
        Class::Decryption => FetchErrorKind::Decryption,
        Class::NotFound => FetchErrorKind::NotFound,
        // A certificate not trusted: no retry changes the CA bundle; the detail says
        // what to give the image.
        Class::Invalid | Class::Untrusted => FetchErrorKind::Invalid,
    }
}

/// One client per region, built on first use from the base configuration (with
/// [`TIMEOUTS`]): a reference by ARN is read in the ARN's region, everything else in
/// the default one (`None`).
pub struct ByRegion<C> {
    base: SdkConfig,
    /// Makes a client from a configuration (`Client::new`).
    new: fn(&SdkConfig) -> C,
    clients: std::sync::Mutex<std::collections::HashMap<Option<String>, C>>,
}

impl<C: Clone> ByRegion<C> {
    pub fn new(base: &SdkConfig, new: fn(&SdkConfig) -> C) -> Self {
        ByRegion {
            base: TIMEOUTS.apply(base),
            new,
            clients: Default::default(),
        }
    }

    /// The client for `region`, made the first time it is asked for.
    pub fn get(&self, region: Option<&str>) -> C {
        let new = self.new;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.map(str::to_owned))
            .or_insert_with(|| match region {
                Some(r) => new(&self
                    .base
                    .to_builder()
                    .region(Region::new(r.to_owned()))
                    .build()),
                None => new(&self.base),
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kind of an answer with this code, status and message.
    fn kind_of(code: Option<&str>, status: u16, message: &str) -> FetchErrorKind {
        kind(Class::of(code, Some(status)), Some(message))
    }

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
        // Credentials from the container endpoint rotate: an expired token heals.
        assert_eq!(kind_of(Some("ExpiredTokenException"), 400, ""), Transient);
    }

    #[test]
    fn a_failed_call_keeps_the_services_words() {
        use aws_sdk_secretsmanager::config::http::HttpResponse;
        use aws_sdk_secretsmanager::error::ErrorMetadata;
        let meta = ErrorMetadata::builder()
            .code("AccessDeniedException")
            .message("User is not authorized to perform kms:Decrypt")
            .build();
        let response = HttpResponse::new(400.try_into().unwrap(), "".into());
        let e = fetch_error(SdkError::service_error(meta, response));
        assert_eq!(e.kind, FetchErrorKind::Decryption);
        assert_eq!(
            e.detail,
            "AccessDeniedException: User is not authorized to perform kms:Decrypt (HTTP 400)"
        );
    }
}
