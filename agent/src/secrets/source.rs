//! Fetching: the [`Fetch`] trait a secret store implements (Secrets Manager today,
//! Parameter Store next), and the part every store shares — one request per distinct
//! [`Key`], all at once, retried with jittered exponential backoff while the error is
//! transient, all inside one deadline.
//!
//! What it is not: it does not know about variables or JSON; [`super::plan`] turns the
//! fetched values into the app's environment.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;

use super::reference::Key;
use super::value::SecretString;

/// First retry delay; doubled after each attempt.
const BACKOFF_BASE: Duration = Duration::from_millis(50);
/// Longest retry delay: with a 10 s deadline that still leaves several attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);

/// A secret store.
pub trait Fetch: Send + Sync + 'static {
    /// One attempt at reading `key`. Retrying is the caller's job.
    fn fetch(&self, key: &Key) -> impl Future<Output = Result<SecretString, FetchError>> + Send;
}

/// What went wrong, in the classes that decide retrying and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// No such secret, stage or version.
    NotFound,
    /// The task role may not read it (or the credentials are not valid).
    AccessDenied,
    /// KMS refused to decrypt it (`kms:Decrypt` on a customer-managed key).
    Decryption,
    /// The request or the value is not usable (e.g. SecretBinary that is not UTF-8).
    Invalid,
    /// Throttling, a 5xx, a timeout, a connection failure: worth another attempt.
    Transient,
    /// The deadline passed while the error was still transient.
    TimedOut,
}

/// A failed fetch. `detail` comes from the service or the transport and never holds a
/// secret value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchError {
    pub kind: FetchErrorKind,
    pub detail: String,
}

impl FetchError {
    pub fn new(kind: FetchErrorKind, detail: impl Into<String>) -> Self {
        FetchError {
            kind,
            detail: detail.into(),
        }
    }
}

/// The outcome of fetching every key.
pub type Fetched = HashMap<Key, Result<SecretString, FetchError>>;

/// Fetches each distinct key once, concurrently, each retried until `timeout` after the
/// call. Returns an outcome for every key.
pub async fn fetch_all<F: Fetch>(
    source: &Arc<F>,
    keys: BTreeSet<Key>,
    timeout: Duration,
) -> Fetched {
    let deadline = Instant::now() + timeout;
    let mut tasks = JoinSet::new();
    for key in keys {
        let source = source.clone();
        tasks.spawn(async move {
            let result = fetch_with_retry(&*source, &key, deadline, timeout).await;
            (key, result)
        });
    }
    let mut fetched = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((key, result)) => {
                fetched.insert(key, result);
            }
            // A panicking fetch is a bug; the key then has no outcome and the plan
            // reports it as not fetched, so the app still never starts without it.
            Err(e) => tracing::error!(error = %e, "a secret fetch task failed: {e}"),
        }
    }
    fetched
}

async fn fetch_with_retry<F: Fetch>(
    source: &F,
    key: &Key,
    deadline: Instant,
    timeout: Duration,
) -> Result<SecretString, FetchError> {
    let mut last: Option<FetchError> = None;
    let timed_out = |last: Option<FetchError>| {
        let why = last.map_or_else(
            || "no answer".to_owned(),
            |e| format!("last error: {}", e.detail),
        );
        FetchError::new(
            FetchErrorKind::TimedOut,
            format!(
                "could not be fetched within {} ({why})",
                humantime::format_duration(timeout)
            ),
        )
    };
    for attempt in 0u32.. {
        match tokio::time::timeout_at(deadline, source.fetch(key)).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) if e.kind == FetchErrorKind::Transient => {
                tracing::debug!(secret = %key, attempt, error = %e.detail, "retrying a secret fetch");
                last = Some(e);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => return Err(timed_out(last)),
        }
        let delay = backoff(attempt);
        if Instant::now() + delay >= deadline {
            tokio::time::sleep_until(deadline).await;
            return Err(timed_out(last));
        }
        tokio::time::sleep(delay).await;
    }
    Err(timed_out(last))
}

/// "Equal jitter": half the exponential delay fixed, half random, so a fleet of tasks
/// starting together spreads out without any one of them waiting needlessly long.
pub fn backoff(attempt: u32) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(16));
    let cap = exp.min(BACKOFF_MAX);
    let half = cap / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::secrets::reference::parse_secret_id;
    use std::sync::Mutex;

    /// A store in memory: per key, a list of answers to give in turn (the last one
    /// repeats), and a log of the keys asked for.
    #[derive(Default)]
    pub struct Fake {
        pub answers: Mutex<HashMap<String, Vec<Result<String, FetchError>>>>,
        pub asked: Mutex<Vec<String>>,
    }

    impl Fake {
        pub fn with(entries: &[(&str, &str)]) -> Self {
            let fake = Fake::default();
            for (k, v) in entries {
                fake.answer(k, vec![Ok((*v).to_owned())]);
            }
            fake
        }

        pub fn answer(&self, key: &str, answers: Vec<Result<String, FetchError>>) {
            self.answers.lock().unwrap().insert(key.to_owned(), answers);
        }
    }

    impl Fetch for Fake {
        async fn fetch(&self, key: &Key) -> Result<SecretString, FetchError> {
            let name = key.to_string();
            self.asked.lock().unwrap().push(name.clone());
            let mut answers = self.answers.lock().unwrap();
            let Some(list) = answers.get_mut(&name) else {
                return Err(FetchError::new(FetchErrorKind::NotFound, "not found"));
            };
            let answer = if list.len() > 1 {
                list.remove(0)
            } else {
                list[0].clone()
            };
            answer.map(SecretString::new)
        }
    }

    fn transient() -> Result<String, FetchError> {
        Err(FetchError::new(
            FetchErrorKind::Transient,
            "ThrottlingException",
        ))
    }

    fn keys(names: &[&str]) -> BTreeSet<Key> {
        names.iter().map(|n| parse_secret_id(n).unwrap()).collect()
    }

    #[tokio::test]
    async fn each_key_is_fetched_once_and_transient_errors_are_retried() {
        let fake = Arc::new(Fake::with(&[("a", "1")]));
        fake.answer("b", vec![transient(), transient(), Ok("2".into())]);
        let got = fetch_all(&fake, keys(&["a", "b", "a"]), Duration::from_secs(5)).await;
        assert_eq!(
            got[&parse_secret_id("a").unwrap()]
                .as_ref()
                .unwrap()
                .expose(),
            "1"
        );
        assert_eq!(
            got[&parse_secret_id("b").unwrap()]
                .as_ref()
                .unwrap()
                .expose(),
            "2"
        );
        let asked = fake.asked.lock().unwrap();
        assert_eq!(asked.iter().filter(|k| *k == "a").count(), 1);
        assert_eq!(asked.iter().filter(|k| *k == "b").count(), 3);
    }

    #[tokio::test]
    async fn a_permanent_error_is_not_retried() {
        let fake = Arc::new(Fake::default());
        let got = fetch_all(&fake, keys(&["gone"]), Duration::from_secs(5)).await;
        let err = got[&parse_secret_id("gone").unwrap()].as_ref().unwrap_err();
        assert_eq!(err.kind, FetchErrorKind::NotFound);
        assert_eq!(fake.asked.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn retrying_stops_at_the_deadline_with_the_last_error() {
        let fake = Arc::new(Fake::default());
        fake.answer("slow", vec![transient()]);
        let started = std::time::Instant::now();
        let got = fetch_all(&fake, keys(&["slow"]), Duration::from_millis(400)).await;
        let err = got[&parse_secret_id("slow").unwrap()].as_ref().unwrap_err();
        assert_eq!(err.kind, FetchErrorKind::TimedOut);
        assert!(err.detail.contains("ThrottlingException"), "{}", err.detail);
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 0..40 {
            let d = backoff(attempt);
            assert!(d <= BACKOFF_MAX, "{d:?}");
            let exp = BACKOFF_BASE
                .saturating_mul(1 << attempt.min(16))
                .min(BACKOFF_MAX);
            assert!(d >= exp / 2, "{attempt}: {d:?}");
        }
    }
}
