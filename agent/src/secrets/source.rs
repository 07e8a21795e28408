//! Fetching: the [`Fetch`] trait a secret store implements (Secrets Manager, Parameter
//! Store), and the part every store shares — each distinct [`Key`] read once, in as few
//! requests as the store allows ([`Fetch::batches`]), all requests at once, retried with
//! jittered exponential backoff ([`conventions::Backoff`]) while the error is transient,
//! all inside one deadline.
//!
//! What it is not: it does not know about variables or JSON; [`super::plan`] turns the
//! fetched values into the app's environment.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conventions::Backoff;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::key::Key;
use super::value::SecretString;

/// Retry delays: 50 ms first, doubled after each attempt, at most 2 s — with a 10 s
/// deadline that still leaves several attempts.
const BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(2));
/// Requests in flight at once, over every store. Each is a connection of its own
/// (HTTP/1.1), with TLS buffers: hundreds of references — a task definition holds
/// as many as fit in 64 KiB — all asked at once took a connection each, and the
/// agent's memory with them (400 secrets: 25 MB at the peak against an emulator,
/// without TLS), and went past Parameter Store's shared 40 requests/s at once. A
/// batch waiting in its backoff holds no place.
pub const MAX_IN_FLIGHT: usize = 16;

/// A secret store.
pub trait Fetch: Send + Sync + 'static {
    /// Groups the keys into requests. By default every key is read alone; a store
    /// whose API reads several at once (GetParameters, 10 names) groups them.
    fn batches(&self, keys: BTreeSet<Key>) -> Vec<Vec<Key>> {
        keys.into_iter().map(|k| vec![k]).collect()
    }

    /// One attempt at reading a batch from [`Fetch::batches`]: one outcome per key, in
    /// the batch's order. Retrying a transient outcome is the caller's job — except
    /// within a key read in several requests (the pages of a parameter path), which
    /// retries each request itself until `deadline`, so a throttled page does not
    /// re-read the pages before it.
    fn fetch(
        &self,
        keys: &[Key],
        deadline: &Deadline,
    ) -> impl Future<Output = Vec<Result<Value, FetchError>>> + Send;
}

/// What one key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// A secret, or one parameter.
    Text(Entry),
    /// Every parameter under a path: full name → value (empty when there is none).
    Tree(BTreeMap<String, Entry>),
}

impl Value {
    /// A value its store calls secret (every Secrets Manager value).
    pub fn secret(value: SecretString) -> Value {
        Value::Text(Entry {
            value,
            secure: true,
        })
    }
}

/// One value as its store gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub value: SecretString,
    /// Whether the store itself calls the value secret: every Secrets Manager value and
    /// a `SecureString` parameter are; a `String` or `StringList` parameter is
    /// configuration (AWS's own line). [`super::plan`] decides redaction from it.
    pub secure: bool,
}

/// What went wrong, in the classes that decide retrying and the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchErrorKind {
    /// No such secret, parameter, stage or version.
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
pub type Fetched = HashMap<Key, Result<Value, FetchError>>;

/// The one deadline of a resolution (`DECKHAND_SECRETS_TIMEOUT` after it started), and
/// the backoff between attempts.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    at: Instant,
    /// The whole budget, for messages ("could not be fetched within 10s").
    timeout: Duration,
}

impl Deadline {
    pub fn after(timeout: Duration) -> Deadline {
        Deadline {
            at: Instant::now() + timeout,
            timeout,
        }
    }

    pub fn at(&self) -> Instant {
        self.at
    }

    /// Waits before retry `attempt` (0 for the first retry); `false` when the deadline
    /// would pass first, after waiting until it did.
    pub async fn pause(&self, attempt: u32) -> bool {
        let delay = BACKOFF.delay(attempt + 1);
        if Instant::now() + delay >= self.at {
            tokio::time::sleep_until(self.at).await;
            return false;
        }
        tokio::time::sleep(delay).await;
        true
    }

    /// The error for a key still unread at the deadline, with the last transient error.
    pub fn timed_out(&self, last: Option<&FetchError>) -> FetchError {
        let why = last.map_or_else(
            || "no answer".to_owned(),
            |e| format!("last error: {}", e.detail),
        );
        FetchError::new(
            FetchErrorKind::TimedOut,
            format!(
                "could not be fetched within {} ({why})",
                humantime::format_duration(self.timeout)
            ),
        )
    }

    /// Runs one request for `what` until it succeeds, fails for good, or the deadline
    /// passes.
    pub async fn retry<T, Fut>(
        &self,
        what: &str,
        mut attempt: impl FnMut() -> Fut,
    ) -> Result<T, FetchError>
    where
        Fut: Future<Output = Result<T, FetchError>>,
    {
        let mut last = None;
        for n in 0u32.. {
            match tokio::time::timeout_at(self.at, attempt()).await {
                Ok(Err(e)) if e.kind == FetchErrorKind::Transient => {
                    tracing::debug!(request = %what, attempt = n, error = %e.detail, "retrying a request");
                    last = Some(e);
                }
                Ok(outcome) => return outcome,
                Err(_) => return Err(self.timed_out(last.as_ref())),
            }
            if !self.pause(n).await {
                break;
            }
        }
        Err(self.timed_out(last.as_ref()))
    }
}

/// Fetches each distinct key once, in the source's batches, all concurrently, each
/// retried until `timeout` after the call. Returns an outcome for every key.
pub async fn fetch_all<F: Fetch>(
    source: &Arc<F>,
    keys: BTreeSet<Key>,
    timeout: Duration,
) -> Fetched {
    let deadline = Deadline::after(timeout);
    let places = Arc::new(tokio::sync::Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    for batch in source.batches(keys) {
        let source = source.clone();
        let places = places.clone();
        tasks.spawn(async move { fetch_with_retry(&*source, batch, &deadline, &places).await });
    }
    let mut fetched = HashMap::new();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(outcomes) => fetched.extend(outcomes),
            // A panicking fetch is a bug; its keys then have no outcome and the plan
            // reports them as not fetched, so the app still never starts without them.
            // Its message is not shown, as the panic hook shows none: it may quote a
            // value.
            Err(e) if e.is_panic() => tracing::error!(
                "a secret fetch task failed: an internal error (its details are withheld: \
                 they may quote a secret); please report it"
            ),
            Err(e) => tracing::error!(error = %e, "a secret fetch task failed: {e}"),
        }
    }
    fetched
}

/// Reads a batch; the keys whose outcome was transient are asked again (together)
/// after a backoff, until the deadline.
async fn fetch_with_retry<F: Fetch>(
    source: &F,
    mut pending: Vec<Key>,
    deadline: &Deadline,
    places: &tokio::sync::Semaphore,
) -> Vec<(Key, Result<Value, FetchError>)> {
    let mut done = Vec::new();
    let mut last: HashMap<Key, FetchError> = HashMap::new();
    for attempt in 0u32.. {
        let attempt_in_place = async {
            // Never closed: a place always comes, or the deadline first.
            let _place = places.acquire().await;
            source.fetch(&pending, deadline).await
        };
        let outcomes = match tokio::time::timeout_at(deadline.at, attempt_in_place).await {
            Ok(outcomes) => outcomes,
            Err(_) => break,
        };
        let mut again = Vec::new();
        for (key, outcome) in pending.drain(..).zip(outcomes) {
            match outcome {
                Err(e) if e.kind == FetchErrorKind::Transient => {
                    tracing::debug!(secret = %key, attempt, error = %e.detail, "retrying a secret fetch");
                    last.insert(key.clone(), e);
                    again.push(key);
                }
                outcome => done.push((key, outcome)),
            }
        }
        pending = again;
        if pending.is_empty() || !deadline.pause(attempt).await {
            break;
        }
    }
    for key in pending {
        let e = deadline.timed_out(last.get(&key));
        done.push((key, Err(e)));
    }
    done
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::secrets::reference::parse_secret_id;
    use std::sync::Mutex;

    /// A store in memory: per key, a list of answers to give in turn (the last one
    /// repeats), and a log of the keys asked for. Parameter paths answer with every
    /// entry whose name starts with the path. With `batch` set, keys are read up to
    /// that many at a time, and `requests` counts the reads.
    #[derive(Default)]
    pub struct Fake {
        pub answers: Mutex<HashMap<String, Vec<Result<String, FetchError>>>>,
        pub asked: Mutex<Vec<String>>,
        pub batch: Option<usize>,
        pub requests: Mutex<Vec<Vec<String>>>,
        /// Keys answered as `String` parameters (configuration), not as secrets.
        pub configuration: Mutex<BTreeSet<String>>,
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

        /// Answers these keys as `String` parameters: configuration, not secure.
        pub fn with_configuration(self, keys: &[&str]) -> Self {
            self.configuration
                .lock()
                .unwrap()
                .extend(keys.iter().map(|k| (*k).to_owned()));
            self
        }
    }

    impl Fake {
        fn one(&self, key: &Key) -> Result<Value, FetchError> {
            let name = key.to_string();
            self.asked.lock().unwrap().push(name.clone());
            let mut answers = self.answers.lock().unwrap();
            if let Key::ParameterPath(path) = key {
                let prefix = path.to_string();
                let tree = answers
                    .iter()
                    .filter(|(n, _)| n.starts_with(&prefix))
                    .filter_map(|(n, a)| Some((n.clone(), self.entry(n, a[0].clone().ok()?))))
                    .collect();
                return Ok(Value::Tree(tree));
            }
            let Some(list) = answers.get_mut(&name) else {
                return Err(FetchError::new(FetchErrorKind::NotFound, "not found"));
            };
            let answer = if list.len() > 1 {
                list.remove(0)
            } else {
                list[0].clone()
            };
            answer.map(|v| Value::Text(self.entry(&name, v)))
        }

        /// Every value is secure (a secret, a SecureString) unless marked configuration.
        fn entry(&self, name: &str, value: String) -> Entry {
            Entry {
                value: SecretString::new(value),
                secure: !self.configuration.lock().unwrap().contains(name),
            }
        }
    }

    impl Fetch for Fake {
        fn batches(&self, keys: BTreeSet<Key>) -> Vec<Vec<Key>> {
            let keys: Vec<Key> = keys.into_iter().collect();
            keys.chunks(self.batch.unwrap_or(1))
                .map(<[Key]>::to_vec)
                .collect()
        }

        async fn fetch(&self, keys: &[Key], _: &Deadline) -> Vec<Result<Value, FetchError>> {
            self.requests
                .lock()
                .unwrap()
                .push(keys.iter().map(Key::to_string).collect());
            keys.iter().map(|k| self.one(k)).collect()
        }
    }

    pub fn text(outcome: &Result<Value, FetchError>) -> &str {
        match outcome {
            Ok(Value::Text(v)) => v.value.expose(),
            other => panic!("not a text value: {other:?}"),
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
        assert_eq!(text(&got[&parse_secret_id("a").unwrap()]), "1");
        assert_eq!(text(&got[&parse_secret_id("b").unwrap()]), "2");
        let asked = fake.asked.lock().unwrap();
        assert_eq!(asked.iter().filter(|k| *k == "a").count(), 1);
        assert_eq!(asked.iter().filter(|k| *k == "b").count(), 3);
    }

    #[tokio::test]
    async fn in_a_batch_only_the_transient_keys_are_asked_again() {
        let mut fake = Fake::with(&[("a", "1"), ("c", "3")]);
        fake.batch = Some(10);
        fake.answer("b", vec![transient(), Ok("2".into())]);
        let fake = Arc::new(fake);
        let got = fetch_all(
            &fake,
            keys(&["a", "b", "c", "gone"]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(text(&got[&parse_secret_id("b").unwrap()]), "2");
        assert_eq!(text(&got[&parse_secret_id("c").unwrap()]), "3");
        let gone = got[&parse_secret_id("gone").unwrap()].as_ref().unwrap_err();
        assert_eq!(gone.kind, FetchErrorKind::NotFound);
        assert_eq!(
            *fake.requests.lock().unwrap(),
            [vec!["a", "b", "c", "gone"], vec!["b"]]
        );
    }

    #[tokio::test]
    async fn a_retried_request_stops_at_the_deadline_with_the_last_error() {
        let deadline = Deadline::after(Duration::from_millis(300));
        let attempts = Mutex::new(0);
        let got: Result<(), _> = deadline
            .retry("a page", || {
                *attempts.lock().unwrap() += 1;
                async {
                    Err(FetchError::new(
                        FetchErrorKind::Transient,
                        "ThrottlingException",
                    ))
                }
            })
            .await;
        let err = got.unwrap_err();
        assert_eq!(err.kind, FetchErrorKind::TimedOut);
        assert!(err.detail.contains("within 300ms"), "{}", err.detail);
        assert!(err.detail.contains("ThrottlingException"), "{}", err.detail);
        assert!(*attempts.lock().unwrap() > 1);
        let ok = Deadline::after(Duration::from_secs(1))
            .retry("a page", || async { Ok::<_, FetchError>(7) })
            .await;
        assert_eq!(ok, Ok(7));
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

    /// A store that answers every key after a short wait, and records how many
    /// requests were in flight at once, at the most.
    #[derive(Default)]
    struct Counting {
        now: std::sync::atomic::AtomicUsize,
        most: std::sync::atomic::AtomicUsize,
    }

    impl Fetch for Counting {
        fn batches(&self, keys: BTreeSet<Key>) -> Vec<Vec<Key>> {
            keys.into_iter().map(|k| vec![k]).collect()
        }

        async fn fetch(&self, keys: &[Key], _: &Deadline) -> Vec<Result<Value, FetchError>> {
            use std::sync::atomic::Ordering::SeqCst;
            let now = self.now.fetch_add(1, SeqCst) + 1;
            self.most.fetch_max(now, SeqCst);
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.now.fetch_sub(1, SeqCst);
            keys.iter()
                .map(|_| {
                    Ok(Value::Text(Entry {
                        value: SecretString::new("v"),
                        secure: true,
                    }))
                })
                .collect()
        }
    }

    #[tokio::test]
    async fn at_most_max_in_flight_requests_at_once() {
        let source = Arc::new(Counting::default());
        let names: Vec<String> = (0..100).map(|i| format!("s{i}")).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let got = fetch_all(&source, keys(&names), Duration::from_secs(30)).await;
        assert_eq!(got.values().filter(|o| o.is_ok()).count(), 100);
        // As many as allowed, never more.
        assert_eq!(
            source.most.load(std::sync::atomic::Ordering::SeqCst),
            MAX_IN_FLIGHT
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        // Deadline::pause counts retries from 0.
        for attempt in 0..40 {
            let d = BACKOFF.delay(attempt + 1);
            assert!(d <= BACKOFF.max, "{d:?}");
            let exp = BACKOFF
                .first
                .saturating_mul(1 << attempt.min(16))
                .min(BACKOFF.max);
            assert!(d >= exp / 2, "{attempt}: {d:?}");
        }
    }
}
