//! The one place where anything is redacted. Every event passes through here before a
//! byte of it leaves the agent (CloudWatch, or the agent's own stdout/stderr).
//!
//! Input is one event as JSON object text (the `structure` stage's output); output is
//! the same text with secrets and sensitive values replaced by `[REDACTED]`, still
//! valid JSON. What is redacted:
//!
//! 1. every secret value the agent loaded, as it appears in the JSON text: raw (JSON-
//!    escaped), doubly JSON-escaped (a JSON document logged as a string), base64
//!    (standard and URL-safe, with and without padding) and URL-encoded;
//! 2. built-in detectors: values of sensitive keys in JSON objects at any depth and in
//!    `key=value` / `key: value` text, `Bearer`/`Basic` credentials, JWTs, AWS access
//!    key ids and secret keys, PEM private-key blocks, URL passwords, and payment card
//!    numbers that pass the Luhn check and have a card network's prefix and length;
//! 3. extra patterns and key names from configuration.
//!
//! The fast path: one Aho-Corasick pass over the secret needles, one over the detectors'
//! trigger words (each hit confirmed by a look at the bytes around it), and one byte
//! scan for long digit runs. A line with nothing to redact is returned borrowed: not
//! copied, not allocated. Regexes run only on lines a trigger confirmed.
//!
//! Not here: deciding what a secret is (the agent loads them) or where events go.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use std::sync::{Arc, Mutex, OnceLock, RwLock};

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use base64::Engine;
use regex::Regex;

use crate::structure::json_string;

/// Secrets shorter than this are not redacted: a 3-character value would redact half
/// the log. The agent reports their names at start.
pub const MIN_SECRET_LEN: usize = 6;
const REDACTED: &str = "[REDACTED]";

/// Sensitive key names (matched case-insensitively, anywhere in a key).
const KEY_STEMS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "authorization",
    "cookie",
    "session",
    "private_key",
    "private-key",
    "privatekey",
    "credential",
];

/// The sanitizer in use, replaced as a whole when the agent loads more secrets (a
/// rotation): events take the current one per batch.
#[derive(Debug)]
pub struct Current {
    sanitizer: RwLock<Arc<Sanitizer>>,
    /// What the sanitizer was built from, every secret loaded so far included.
    config: Mutex<Config>,
}

impl Current {
    pub fn new(sanitizer: Sanitizer, config: Config) -> Current {
        Current {
            sanitizer: RwLock::new(Arc::new(sanitizer)),
            config: Mutex::new(config),
        }
    }

    pub fn get(&self) -> Arc<Sanitizer> {
        self.sanitizer
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Redacts `secrets` too from now on (those already known are ignored). Returns the
    /// names of new ones too short to redact.
    pub fn add_secrets(&self, secrets: impl IntoIterator<Item = KnownSecret>) -> Vec<String> {
        let mut config = self.config.lock().unwrap_or_else(|e| e.into_inner());
        let before = config.secrets.len();
        for secret in secrets {
            if !config
                .secrets
                .iter()
                .any(|k| k.name == secret.name && k.value == secret.value)
            {
                config.secrets.push(secret);
            }
        }
        if config.secrets.len() == before {
            return Vec::new();
        }
        // The patterns compiled before: only the secrets changed.
        let Ok((next, skipped)) = Sanitizer::new(config.clone()) else {
            return Vec::new();
        };
        let mut current = self.sanitizer.write().unwrap_or_else(|e| e.into_inner());
        next.carry_counts(&current);
        *current = Arc::new(next);
        skipped
    }
}

/// A secret value the agent loaded, with the variable it went into. `Debug` shows the
/// name only.
#[derive(Clone)]
pub struct KnownSecret {
    name: String,
    value: String,
}

impl KnownSecret {
    pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
        KnownSecret {
            name: name.into(),
            value: value.into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for KnownSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KnownSecret({}: [redacted])", self.name)
    }
}

/// What the sanitizer is built from.
#[derive(Debug, Default, Clone)]
pub struct Config {
    pub secrets: Vec<KnownSecret>,
    /// DECKHAND_REDACT_NAME: `[REDACTED:DATABASE_URL]` instead of `[REDACTED]`.
    pub redact_name: bool,
    /// DECKHAND_REDACT_PATTERNS: extra regular expressions; each match is redacted.
    pub extra_patterns: Vec<String>,
    /// DECKHAND_REDACT_KEYS: extra sensitive key names.
    pub extra_keys: Vec<String>,
}

/// A configured pattern that does not compile.
#[derive(Debug, thiserror::Error)]
#[error("DECKHAND_REDACT_PATTERNS={pattern:?} is not valid: {reason}")]
pub struct ConfigError {
    pub pattern: String,
    pub reason: String,
}

/// The detectors, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Detector {
    Secret,
    SensitiveKey,
    Bearer,
    Jwt,
    AwsAccessKeyId,
    AwsSecretKey,
    PrivateKey,
    UrlPassword,
    Card,
    CustomPattern,
}

const DETECTORS: [(Detector, &str); 10] = [
    (Detector::Secret, "secret"),
    (Detector::SensitiveKey, "sensitive_key"),
    (Detector::Bearer, "bearer"),
    (Detector::Jwt, "jwt"),
    (Detector::AwsAccessKeyId, "aws_access_key_id"),
    (Detector::AwsSecretKey, "aws_secret_key"),
    (Detector::PrivateKey, "private_key"),
    (Detector::UrlPassword, "url_password"),
    (Detector::Card, "card"),
    (Detector::CustomPattern, "custom_pattern"),
];

/// What an Aho-Corasick trigger word may start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Key,
    Bearer,
    Basic,
    Jwt,
    AwsKeyId,
    AwsSecret,
    Pem,
    Url,
}

/// A pattern of the matcher: a secret form (index into the labels) or a trigger word.
#[derive(Debug, Clone, Copy)]
enum Hit {
    Secret(usize),
    Trigger(Trigger),
}

/// Which slow-path detectors a line needs.
#[derive(Debug, Default)]
struct Need {
    text_kv: bool,
    bearer: bool,
    jwt: bool,
    aws_key_id: bool,
    aws_secret: bool,
    pem: bool,
    url: bool,
}

/// One replacement: bytes `start..end` become `with`.
#[derive(Debug)]
struct Cut {
    start: usize,
    end: usize,
    with: String,
    detector: Detector,
}

pub struct Sanitizer {
    /// One automaton over every secret form and every trigger word: one pass per event.
    matcher: AhoCorasick,
    /// What each of the matcher's patterns is.
    hits: Vec<Hit>,
    /// Replacement text for each secret needle.
    secret_labels: Vec<String>,
    /// The detectors' regexes, compiled the first time a line needs them: most
    /// processes never print a JWT or a PEM block, and compiling all of them costs
    /// milliseconds at start and memory for as long as the agent runs.
    text_kv: Lazy,
    bearer: Lazy,
    jwt: Lazy,
    aws_key_id: Lazy,
    aws_secret: Lazy,
    pem: Lazy,
    url: Lazy,
    custom: Vec<Regex>,
    counts: [AtomicU64; DETECTORS.len()],
}

/// A built-in regex, compiled the first time it is needed.
struct Lazy {
    pattern: String,
    regex: OnceLock<Regex>,
}

impl Lazy {
    fn new(pattern: impl Into<String>) -> Lazy {
        Lazy {
            pattern: pattern.into(),
            regex: OnceLock::new(),
        }
    }

    fn get(&self) -> &Regex {
        self.regex
            .get_or_init(|| Regex::new(&self.pattern).expect("built-in pattern"))
    }
}

impl fmt::Debug for Sanitizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sanitizer")
            .field("secret_forms", &self.secret_labels.len())
            .field("patterns", &self.hits.len())
            .field("custom_patterns", &self.custom.len())
            .finish_non_exhaustive()
    }
}

impl Sanitizer {
    /// Builds the matchers. Returns the names of secrets skipped for being shorter than
    /// [`MIN_SECRET_LEN`].
    pub fn new(config: Config) -> Result<(Sanitizer, Vec<String>), ConfigError> {
        let mut skipped = Vec::new();
        let mut needles: Vec<String> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        for secret in &config.secrets {
            if secret.value.chars().count() < MIN_SECRET_LEN {
                if !secret.value.is_empty() {
                    skipped.push(secret.name.clone());
                }
                continue;
            }
            let label = if config.redact_name {
                format!("[REDACTED:{}]", secret.name)
            } else {
                REDACTED.to_owned()
            };
            // A secret that is a whole URL (`DATABASE_URL=secretsmanager:…`) also hides
            // its password: an app that prints the password alone must not leak it.
            let parts = std::iter::once(secret.value.clone()).chain(url_password(&secret.value));
            for part in parts {
                for form in encodings(&part) {
                    if form.len() >= MIN_SECRET_LEN && !needles.contains(&form) {
                        needles.push(form);
                        labels.push(label.clone());
                    }
                }
            }
        }
        let extra_keys: Vec<String> = config
            .extra_keys
            .iter()
            .map(|k| k.trim().to_lowercase())
            .filter(|k| !k.is_empty())
            .collect();
        // Case variants spelled out (lower, Capitalized, UPPER, camelCase) rather than a
        // case-insensitive search, which is slower: this scan reads every byte of every
        // event. `PassWord` and other odd casings are not triggers.
        let mut words: Vec<(String, Trigger)> = Vec::new();
        let mut add = |word: &str, t: Trigger| {
            for w in case_variants(word) {
                if !words.iter().any(|(x, _)| *x == w) {
                    words.push((w, t));
                }
            }
        };
        for stem in KEY_STEMS.iter().copied().chain(["apiKey", "privateKey"]) {
            add(stem, Trigger::Key);
        }
        for key in &extra_keys {
            add(key, Trigger::Key);
        }
        add("bearer", Trigger::Bearer);
        add("basic", Trigger::Basic);
        add("access_key", Trigger::AwsSecret);
        add("accessKey", Trigger::AwsSecret);
        for (w, t) in [
            ("eyJ", Trigger::Jwt),
            ("AKIA", Trigger::AwsKeyId),
            ("ASIA", Trigger::AwsKeyId),
            ("PRIVATE KEY", Trigger::Pem),
            ("://", Trigger::Url),
        ] {
            words.push((w.to_owned(), t));
        }
        // Secrets first: where a secret form and a trigger word start together, the
        // longer (leftmost-longest) wins, and a secret is redacted whole anyway.
        let mut patterns: Vec<String> = needles;
        let mut hits: Vec<Hit> = (0..patterns.len()).map(Hit::Secret).collect();
        for (w, t) in words {
            patterns.push(w);
            hits.push(Hit::Trigger(t));
        }
        let matcher = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .build(&patterns)
            .expect("literal patterns always build");

        let mut stems: Vec<String> = [
            "password",
            "passwd",
            "pwd",
            "secret",
            "token",
            "api[_-]?key",
            "apikey",
            "authorization",
            "cookie",
            "session",
            "private[_-]?key",
            "credentials?",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        stems.extend(extra_keys.iter().map(|k| regex::escape(k)));
        let text_kv = format!(
            r#"(?i)(?:{})[a-z0-9_\-]*(?:\\")?[ \t]*[=:][ \t]*(?:\\")?([^\s"\\,;&]+)"#,
            stems.join("|")
        );
        let custom = compile_patterns(&config.extra_patterns)?;
        Ok((
            Sanitizer {
                secret_labels: labels,
                hits,
                matcher,
                text_kv: Lazy::new(text_kv),
                bearer: Lazy::new(r"(?i)\b(?:bearer|basic)[ \t]+([A-Za-z0-9\-._~+/]{8,}=*)"),
                jwt: Lazy::new(r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}"),
                aws_key_id: Lazy::new(r"\b(?:AKIA|ASIA)[A-Z0-9]{16}\b"),
                aws_secret: Lazy::new(
                    r#"(?i)(?:aws_?)?secret_?access_?key(?:\\")?[ \t]*[=:][ \t]*(?:\\")?([A-Za-z0-9/+=]{40})"#,
                ),
                pem: Lazy::new(
                    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)",
                ),
                url: Lazy::new(r#"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s:/@"\\]+:([^\s@/"\\]+)@"#),
                custom,
                counts: Default::default(),
            },
            skipped,
        ))
    }

    /// One event's JSON object text in, sanitized JSON object text out; borrowed when
    /// there is nothing to redact.
    pub fn sanitize<'a>(&self, event: &'a str) -> Cow<'a, str> {
        let bytes = event.as_bytes();
        let mut cuts: Vec<Cut> = Vec::new();

        let mut need = Need::default();
        for m in self.matcher.find_iter(event) {
            let (s, e) = (m.start(), m.end());
            let trigger = match self.hits[m.pattern().as_usize()] {
                Hit::Secret(label) => {
                    // A needle starting right after an escaping backslash would leave
                    // the backslash dangling: take it along.
                    let start = if escaped_at(bytes, s) { s - 1 } else { s };
                    cuts.push(Cut {
                        start,
                        end: e,
                        with: self.secret_labels[label].clone(),
                        detector: Detector::Secret,
                    });
                    continue;
                }
                Hit::Trigger(t) => t,
            };
            match trigger {
                Trigger::Key => match key_at(bytes, s, e) {
                    KeyUse::JsonKey { value_at } => {
                        if let Some(cut) = json_value_cut(bytes, value_at) {
                            cuts.push(cut);
                        }
                    }
                    KeyUse::Assignment => need.text_kv = true,
                    KeyUse::Prose => {}
                },
                Trigger::Bearer | Trigger::Basic => {
                    need.bearer |= matches!(bytes.get(e), Some(b' ' | b'\t'));
                }
                Trigger::Jwt => need.jwt |= bytes[s..e] == *b"eyJ",
                Trigger::AwsKeyId => {
                    need.aws_key_id |= bytes[s..e] == *b"AKIA" || bytes[s..e] == *b"ASIA"
                }
                Trigger::AwsSecret => need.aws_secret = true,
                Trigger::Pem => need.pem |= bytes[s..e] == *b"PRIVATE KEY",
                Trigger::Url => need.url |= memchr::memchr(b'@', &bytes[e..]).is_some(),
            }
        }

        if need.aws_secret {
            self.regex_cuts(
                self.aws_secret.get(),
                event,
                Detector::AwsSecretKey,
                &mut cuts,
                true,
            );
        }
        if need.bearer {
            self.regex_cuts(self.bearer.get(), event, Detector::Bearer, &mut cuts, true);
        }
        if need.text_kv {
            for c in self.text_kv.get().captures_iter(event) {
                let value = c.get(1).expect("group 1");
                let v = value.as_str();
                // `arn:aws:secretsmanager:REGION:…:secret:NAME` names a secret, it is
                // not one.
                if in_arn(bytes, c.get(0).expect("group 0").start()) {
                    continue;
                }
                // "Authorization: Bearer …" is the bearer detector's.
                if v.eq_ignore_ascii_case("bearer")
                    || v.eq_ignore_ascii_case("basic")
                    || v == REDACTED
                {
                    continue;
                }
                cuts.push(Cut {
                    start: value.start(),
                    end: value.end(),
                    with: REDACTED.into(),
                    detector: Detector::SensitiveKey,
                });
            }
        }
        if need.jwt {
            self.regex_cuts(self.jwt.get(), event, Detector::Jwt, &mut cuts, false);
        }
        if need.aws_key_id {
            self.regex_cuts(
                self.aws_key_id.get(),
                event,
                Detector::AwsAccessKeyId,
                &mut cuts,
                false,
            );
        }
        if need.pem {
            for m in self.pem.get().find_iter(event) {
                // An unterminated block runs to the end of its JSON string.
                let end = if m.as_str().ends_with("-----") {
                    m.end()
                } else {
                    string_end(bytes, m.start())
                };
                cuts.push(Cut {
                    start: m.start(),
                    end,
                    with: REDACTED.into(),
                    detector: Detector::PrivateKey,
                });
            }
        }
        if need.url {
            self.regex_cuts(
                self.url.get(),
                event,
                Detector::UrlPassword,
                &mut cuts,
                true,
            );
        }
        cards(bytes, &mut cuts);
        for re in &self.custom {
            self.regex_cuts(re, event, Detector::CustomPattern, &mut cuts, false);
        }

        if cuts.is_empty() {
            return Cow::Borrowed(event);
        }
        Cow::Owned(self.apply(event, cuts))
    }

    fn regex_cuts(
        &self,
        re: &Regex,
        event: &str,
        detector: Detector,
        cuts: &mut Vec<Cut>,
        group: bool,
    ) {
        for c in re.captures_iter(event) {
            let m = if group { c.get(1) } else { c.get(0) };
            if let Some(m) = m {
                let (start, end) = if detector == Detector::CustomPattern {
                    json_safe(event.as_bytes(), m.start(), m.end())
                } else {
                    (m.start(), m.end())
                };
                cuts.push(Cut {
                    start,
                    end,
                    with: REDACTED.into(),
                    detector,
                });
            }
        }
    }

    /// Replaces the cuts (overlapping ones merged, the first one's text kept).
    fn apply(&self, event: &str, mut cuts: Vec<Cut>) -> String {
        cuts.sort_by_key(|c| (c.start, std::cmp::Reverse(c.end)));
        let mut out = String::with_capacity(event.len());
        let mut at = 0;
        let mut i = 0;
        while i < cuts.len() {
            let (start, mut end) = (cuts[i].start, cuts[i].end);
            let first = i;
            i += 1;
            while i < cuts.len() && cuts[i].start < end {
                end = end.max(cuts[i].end);
                i += 1;
            }
            if start < at {
                continue;
            }
            self.counts[DETECTORS
                .iter()
                .position(|(d, _)| *d == cuts[first].detector)
                .unwrap_or(0)]
            .fetch_add(1, Ordering::Relaxed);
            out.push_str(&event[at..start]);
            out.push_str(&cuts[first].with);
            at = end;
        }
        out.push_str(&event[at..]);
        out
    }

    /// Redactions so far, by detector.
    /// Adds `earlier`'s redaction counts to this one's (it replaces `earlier`).
    fn carry_counts(&self, earlier: &Sanitizer) {
        for (mine, theirs) in self.counts.iter().zip(&earlier.counts) {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        DETECTORS
            .iter()
            .zip(&self.counts)
            .map(|((_, name), c)| (*name, c.load(Ordering::Relaxed)))
            .collect()
    }
}

/// `word`, `Word`, `WORD` (and `word` as given, for camelCase stems).
fn case_variants(word: &str) -> Vec<String> {
    let lower = word.to_lowercase();
    let mut capital = lower.clone();
    if let Some(first) = capital.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    let mut out = vec![word.to_owned(), lower, capital, word.to_uppercase()];
    out.dedup();
    out
}

/// Compiles `DECKHAND_REDACT_PATTERNS` (empty entries skipped); the first bad one is
/// the error. The agent calls it when it reads its settings, before anything starts.
pub fn compile_patterns(patterns: &[String]) -> Result<Vec<Regex>, ConfigError> {
    patterns
        .iter()
        .filter(|p| !p.is_empty())
        .map(|pattern| {
            Regex::new(pattern).map_err(|e| ConfigError {
                pattern: pattern.clone(),
                reason: e.to_string(),
            })
        })
        .collect()
}

/// Whether byte `i` is inside an ARN (`arn:PARTITION:…`): the token around it, up to a
/// space or a quote, starts with `arn:`.
fn in_arn(bytes: &[u8], i: usize) -> bool {
    let start = bytes[..i]
        .iter()
        .rposition(|b| b.is_ascii_whitespace() || *b == b'"' || *b == b'\\' || *b == b'=')
        .map_or(0, |p| p + 1);
    bytes[start..i].starts_with(b"arn:")
}

/// The password of `scheme://user:password@host…` (percent-decoded), when there is one.
fn url_password(value: &str) -> Option<String> {
    let (scheme, rest) = value.split_once("://")?;
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
    {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    let (userinfo, _host) = authority.rsplit_once('@')?;
    let (_user, password) = userinfo.split_once(':')?;
    let decoded = percent_encoding::percent_decode_str(password)
        .decode_utf8()
        .ok()?
        .into_owned();
    (!decoded.is_empty()).then_some(decoded)
}

/// The forms a secret value takes in an event's JSON text.
fn encodings(value: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let b64_nopad = base64::engine::general_purpose::STANDARD_NO_PAD;
    let url = base64::engine::general_purpose::URL_SAFE;
    let url_nopad = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let escaped = strip_quotes(json_string(value));
    let twice = strip_quotes(json_string(&escaped));
    let percent = percent_encoding::utf8_percent_encode(value, URL_RESERVED).to_string();
    let encoded = [
        b64.encode(value),
        b64_nopad.encode(value),
        url.encode(value),
        url_nopad.encode(value),
        percent,
    ];
    // Base64 and percent forms need no JSON escaping (but '/' and the like stay as is).
    let mut forms = vec![escaped, twice];
    forms.extend(encoded.into_iter().map(|f| strip_quotes(json_string(&f))));
    forms
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const URL_RESERVED: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn strip_quotes(s: String) -> String {
    s[1..s.len() - 1].to_owned()
}

/// True if the byte at `i` follows an odd number of backslashes (is escaped).
fn escaped_at(bytes: &[u8], i: usize) -> bool {
    bytes[..i].iter().rev().take_while(|b| **b == b'\\').count() % 2 == 1
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

enum KeyUse {
    /// A JSON object key; its value starts at `value_at`.
    JsonKey { value_at: usize },
    /// `key=value`, `key: value` (or `\"key\": \"value\"`) inside text.
    Assignment,
    /// A word in prose: "reset your password".
    Prose,
}

/// Classifies a sensitive stem found at `s..e` by the bytes around it.
fn key_at(bytes: &[u8], s: usize, e: usize) -> KeyUse {
    let mut i = s;
    while i > 0 && is_key_byte(bytes[i - 1]) {
        i -= 1;
    }
    let mut j = e;
    while j < bytes.len() && is_key_byte(bytes[j]) {
        j += 1;
    }
    let skip_ws = |mut k: usize| {
        while k < bytes.len() && matches!(bytes[k], b' ' | b'\t') {
            k += 1;
        }
        k
    };
    // A structural key: `"…key…"` (quotes not escaped) then `:`.
    if i > 0 && bytes[i - 1] == b'"' && !escaped_at(bytes, i - 1) && bytes.get(j) == Some(&b'"') {
        let k = skip_ws(j + 1);
        if bytes.get(k) == Some(&b':') {
            return KeyUse::JsonKey {
                value_at: skip_ws(k + 1),
            };
        }
        return KeyUse::Prose;
    }
    let mut k = j;
    if bytes.get(k) == Some(&b'\\') && bytes.get(k + 1) == Some(&b'"') {
        k += 2;
    }
    k = skip_ws(k);
    if matches!(bytes.get(k), Some(b'=' | b':')) {
        KeyUse::Assignment
    } else {
        KeyUse::Prose
    }
}

/// The cut for a JSON value starting at `at`: a string's contents, or a whole
/// number/literal/object/array replaced by the string `"[REDACTED]"`.
fn json_value_cut(bytes: &[u8], at: usize) -> Option<Cut> {
    let first = *bytes.get(at)?;
    let (start, end, with) = match first {
        b'"' => {
            let end = string_end(bytes, at + 1);
            if end == at + 1 {
                return None; // an empty string hides nothing
            }
            (at + 1, end, REDACTED.to_owned())
        }
        b'{' | b'[' => (at, container_end(bytes, at), format!("\"{REDACTED}\"")),
        _ => {
            let mut end = at;
            while end < bytes.len()
                && !matches!(
                    bytes[end],
                    b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'
                )
            {
                end += 1;
            }
            if &bytes[at..end] == b"null" || end == at {
                return None;
            }
            (at, end, format!("\"{REDACTED}\""))
        }
    };
    Some(Cut {
        start,
        end,
        with,
        detector: Detector::SensitiveKey,
    })
}

/// Index of the closing quote of the JSON string whose contents start at `from`.
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i,
            _ => i += 1,
        }
    }
    bytes.len().saturating_sub(1).max(from)
}

/// One past the bracket closing the object or array at `at`.
fn container_end(bytes: &[u8], at: usize) -> usize {
    let mut depth = 0usize;
    let mut i = at;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => i = string_end(bytes, i + 1),
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth -= 1;
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.len()
}

/// Shrinks a custom pattern's match so it neither starts inside an escape nor ends on
/// a lone backslash, and never spans a quote (which would break the JSON).
fn json_safe(bytes: &[u8], mut start: usize, mut end: usize) -> (usize, usize) {
    if start > 0 && escaped_at(bytes, start) {
        start -= 1;
    }
    if let Some(q) = bytes[start..end].iter().position(|b| *b == b'"') {
        end = start + q;
        if end > start && escaped_at(bytes, end) {
            end -= 1;
        }
    }
    while end > start && bytes[end - 1] == b'\\' && !escaped_at(bytes, end - 1) {
        end -= 1;
    }
    (start, end)
}

/// Payment card numbers: 13–19 digits (single spaces or dashes allowed between them),
/// not part of a longer word or number, with a card network's prefix and length, and a
/// valid Luhn check digit. Request ids, timestamps and hashes fail one of these.
fn cards(bytes: &[u8], cuts: &mut Vec<Cut>) {
    let mut i = 0;
    while i < bytes.len() {
        // Skip to the next digit; most bytes are not digits.
        match bytes[i..].iter().position(u8::is_ascii_digit) {
            Some(k) => i += k,
            None => return,
        }
        let glued = i > 0
            && (bytes[i - 1].is_ascii_alphanumeric()
                || (bytes[i - 1] == b'.' && i > 1 && bytes[i - 2].is_ascii_digit()));
        if glued {
            while i < bytes.len() && bytes[i].is_ascii_alphanumeric() {
                i += 1;
            }
            continue;
        }
        let start = i;
        let mut digits = [0u8; 19];
        let mut n = 0;
        let mut j = i;
        let mut last_digit_end = i;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                if n == 19 {
                    n += 1;
                    break;
                }
                digits[n] = b - b'0';
                n += 1;
                j += 1;
                last_digit_end = j;
            } else if matches!(b, b' ' | b'-')
                && bytes.get(j + 1).is_some_and(u8::is_ascii_digit)
                && n > 0
            {
                j += 1;
            } else {
                break;
            }
        }
        let end = last_digit_end;
        let longer = bytes.get(end).is_some_and(|b| {
            b.is_ascii_alphanumeric()
                || (*b == b'.' && bytes.get(end + 1).is_some_and(u8::is_ascii_digit))
        });
        if (13..=19).contains(&n) && !longer && card_network(&digits[..n]) && luhn(&digits[..n]) {
            // A bare JSON number must become a string to stay valid JSON.
            let with = if in_string(bytes, start) {
                REDACTED.to_owned()
            } else {
                format!("\"{REDACTED}\"")
            };
            cuts.push(Cut {
                start,
                end,
                with,
                detector: Detector::Card,
            });
        }
        i = end.max(i + 1);
    }
}

/// True if byte `at` of the JSON text lies inside a string (rare calls: card hits only).
fn in_string(bytes: &[u8], at: usize) -> bool {
    let mut inside = false;
    let mut i = 0;
    while i < at {
        match bytes[i] {
            b'\\' if inside => i += 1,
            b'"' => inside = !inside,
            _ => {}
        }
        i += 1;
    }
    inside
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, d)| {
            let d = u32::from(*d);
            if k % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// Prefixes and lengths of the networks (Visa, Mastercard, Amex, Discover, JCB, Diners,
/// UnionPay, Maestro).
fn card_network(d: &[u8]) -> bool {
    let n = d.len();
    let p2 = u32::from(d[0]) * 10 + u32::from(d[1]);
    let p4 = p2 * 100 + u32::from(d[2]) * 10 + u32::from(d[3]);
    match d[0] {
        4 => matches!(n, 13 | 16 | 19),
        5 => {
            (51..=55).contains(&p2) && n == 16
                || matches!(p2, 50 | 56..=59) && (12..=19).contains(&n)
        }
        2 => (2221..=2720).contains(&p4) && n == 16,
        3 => {
            matches!(p2, 34 | 37) && n == 15
                || (3528..=3589).contains(&p4) && (16..=19).contains(&n)
                || matches!(p2, 30 | 36 | 38 | 39) && (14..=19).contains(&n)
        }
        6 => {
            (p4 == 6011 || p2 == 65 || (644..=649).contains(&(p4 / 10)) || p2 == 62)
                && (16..=19).contains(&n)
                || matches!(p2, 63 | 67) && (12..=19).contains(&n)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sanitizer(secrets: &[(&str, &str)]) -> Sanitizer {
        Sanitizer::new(Config {
            secrets: secrets
                .iter()
                .map(|(n, v)| KnownSecret::new(*n, *v))
                .collect(),
            ..Config::default()
        })
        .unwrap()
        .0
    }

    /// Wraps a text line the way `structure` does, sanitizes, checks the JSON.
    fn text(s: &Sanitizer, line: &str) -> String {
        let event = format!("{{\"level\":\"info\",\"message\":{}}}", json_string(line));
        let out = s.sanitize(&event).into_owned();
        let v: serde_json::Value =
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
        v["message"].as_str().unwrap().to_owned()
    }

    fn json(s: &Sanitizer, event: &str) -> serde_json::Value {
        let out = s.sanitize(event);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    const PW: &str = "p@ss:w/rd%?\"quoted\\";

    #[test]
    fn loaded_secrets_in_every_encoding() {
        let s = sanitizer(&[("DB_PASSWORD", PW), ("API", "sk_live_51HxYzAbCdEfGh1234")]);
        let b64 = base64::engine::general_purpose::STANDARD.encode(PW);
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(PW);
        let pct = percent_encoding::utf8_percent_encode(PW, URL_RESERVED).to_string();
        let as_json = json_string(PW);
        for line in [
            format!("raw {PW} end"),
            format!("b64 {b64} end"),
            format!("b64url {b64url} end"),
            format!("url postgres://app:{pct}@db/x end"),
            format!("logged json {{\"pw\":{as_json}}} end"),
            "key sk_live_51HxYzAbCdEfGh1234 end".to_owned(),
        ] {
            let out = text(&s, &line);
            assert!(out.contains("[REDACTED]"), "{line} -> {out}");
            assert!(
                !out.contains("sk_live") && !out.contains("w/rd") && !out.contains(&b64),
                "{out}"
            );
        }
        assert!(s.counts().iter().any(|(n, c)| *n == "secret" && *c >= 5));
    }

    #[test]
    fn every_built_in_pattern_compiles() {
        let (s, _) = Sanitizer::new(Config {
            extra_keys: vec!["ssn".into()],
            ..Config::default()
        })
        .unwrap();
        for lazy in [
            &s.text_kv,
            &s.bearer,
            &s.jwt,
            &s.aws_key_id,
            &s.aws_secret,
            &s.pem,
            &s.url,
        ] {
            lazy.get();
        }
    }

    #[test]
    fn secrets_added_later_are_redacted_and_counts_carry_over() {
        let config = Config {
            secrets: vec![KnownSecret::new("A", "first-value-1")],
            ..Config::default()
        };
        let (first, _) = Sanitizer::new(config.clone()).unwrap();
        let current = Current::new(first, config);
        assert_eq!(text(&current.get(), "x first-value-1"), "x [REDACTED]");
        assert_eq!(text(&current.get(), "y second-value-2"), "y second-value-2");
        let skipped = current.add_secrets([
            KnownSecret::new("A", "second-value-2"),
            KnownSecret::new("B", "abc"),
        ]);
        assert_eq!(skipped, ["B"]);
        let s = current.get();
        assert_eq!(text(&s, "y second-value-2"), "y [REDACTED]");
        assert_eq!(text(&s, "x first-value-1"), "x [REDACTED]");
        let secret_count =
            |s: &Sanitizer| s.counts().iter().find(|(n, _)| *n == "secret").unwrap().1;
        assert_eq!(secret_count(&s), 3);
    }

    #[test]
    fn an_arn_names_a_secret_and_is_left_alone() {
        let s = sanitizer(&[]);
        let line = "the value from secret arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf is not used";
        assert_eq!(text(&s, line), line);
        assert_eq!(text(&s, "secret: hunter2-x"), "secret: [REDACTED]");
    }

    #[test]
    fn the_password_of_a_url_secret_is_a_secret_too() {
        let s = sanitizer(&[(
            "DATABASE_URL",
            "postgres://app:s3cr%40t-pw@db.internal:5432/app",
        )]);
        assert_eq!(
            text(&s, "connecting with s3cr@t-pw"),
            "connecting with [REDACTED]"
        );
        assert_eq!(url_password("https://example.com/a:b@c"), None);
        assert_eq!(url_password("postgres://only-user@h/d"), None);
        assert_eq!(url_password("not a url"), None);
    }

    #[test]
    fn redact_name_and_short_secrets() {
        let (s, skipped) = Sanitizer::new(Config {
            secrets: vec![
                KnownSecret::new("DATABASE_URL", "hunter2-long"),
                KnownSecret::new("PIN", "1234"),
            ],
            redact_name: true,
            ..Config::default()
        })
        .unwrap();
        assert_eq!(skipped, ["PIN"]);
        assert_eq!(
            text(&s, "pw hunter2-long pin 1234"),
            "pw [REDACTED:DATABASE_URL] pin 1234"
        );
    }

    #[test]
    fn sensitive_json_keys_at_any_depth() {
        let s = sanitizer(&[]);
        let v = json(
            &s,
            r#"{"user":"ann","password":"hunter2","auth":{"api_key":12345,"Session-Token":{"a":[1,"x"]},"note":"ok"},"db_passwd":null,"pwd":""}"#,
        );
        assert_eq!(v["password"], "[REDACTED]");
        assert_eq!(v["auth"]["api_key"], "[REDACTED]");
        assert_eq!(v["auth"]["Session-Token"], "[REDACTED]");
        assert_eq!(v["auth"]["note"], "ok");
        assert_eq!(v["user"], "ann");
    }

    #[test]
    fn key_value_text_and_escaped_json_in_messages() {
        let s = sanitizer(&[]);
        assert_eq!(
            text(&s, "login password=hunter2 ok"),
            "login password=[REDACTED] ok"
        );
        assert_eq!(
            text(&s, "client_secret: abc123def, next"),
            "client_secret: [REDACTED], next"
        );
        assert_eq!(
            text(&s, r#"body {"token": "t0k3n-value"} sent"#),
            r#"body {"token": "[REDACTED]"} sent"#
        );
    }

    #[test]
    fn prose_is_left_alone() {
        let s = sanitizer(&[]);
        for line in [
            "reset your password to continue",
            "password reset email sent to ann",
            "user session cache miss",
            "Basic auth is disabled",
            "the bearer of bad news",
        ] {
            let event = format!("{{\"message\":{}}}", json_string(line));
            assert!(matches!(s.sanitize(&event), Cow::Borrowed(_)), "{line}");
        }
    }

    #[test]
    fn bearer_basic_jwt() {
        let s = sanitizer(&[]);
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.3eabedcbbaa80dd4";
        assert_eq!(
            text(&s, &format!("Authorization: Bearer {jwt}")),
            "Authorization: Bearer [REDACTED]"
        );
        assert_eq!(
            text(&s, "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l"),
            "Authorization: Basic [REDACTED]"
        );
        assert_eq!(
            text(&s, &format!("token in url ?t={jwt} end")),
            "token in url ?t=[REDACTED] end"
        );
        assert_eq!(text(&s, &format!("jwt {jwt} end")), "jwt [REDACTED] end");
    }

    #[test]
    fn aws_keys() {
        let s = sanitizer(&[]);
        let out = text(
            &s,
            "using key AKIAIOSFODNN7EXAMPLE secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        );
        assert_eq!(out, "using key [REDACTED] secret_access_key=[REDACTED]");
        assert_eq!(text(&s, "AKIA is a prefix"), "AKIA is a prefix");
    }

    #[test]
    fn pem_private_key_blocks() {
        let s = sanitizer(&[]);
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc==\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            text(&s, &format!("key:\n{pem}\ndone")),
            "key:\n[REDACTED]\ndone"
        );
        assert_eq!(
            text(&s, "-----BEGIN PRIVATE KEY-----\nMIIE cut off"),
            "[REDACTED]"
        );
    }

    #[test]
    fn url_passwords() {
        let s = sanitizer(&[]);
        assert_eq!(
            text(
                &s,
                "connecting to postgres://app:s3cr3t@db.internal:5432/shop"
            ),
            "connecting to postgres://app:[REDACTED]@db.internal:5432/shop"
        );
        assert_eq!(
            text(&s, "see https://example.com/a@b"),
            "see https://example.com/a@b"
        );
    }

    #[test]
    fn cards_need_luhn_and_a_network() {
        let s = sanitizer(&[]);
        assert_eq!(
            text(&s, "charged card 4111 1111 1111 1111 amount 5"),
            "charged card [REDACTED] amount 5"
        );
        assert_eq!(
            text(&s, "card 5500-0000-0000-0004 ok"),
            "card [REDACTED] ok"
        );
        assert_eq!(text(&s, "amex 340000000000009."), "amex [REDACTED].");
        // Fails Luhn: passes through.
        assert_eq!(
            text(&s, "card 4111 1111 1111 1112"),
            "card 4111 1111 1111 1112"
        );
        // Luhn-valid but no network prefix (epoch ms, ids).
        assert_eq!(
            text(&s, "ts 1795417380506 id 8000000000000009"),
            "ts 1795417380506 id 8000000000000009"
        );
        // Part of a longer word or number.
        assert_eq!(
            text(&s, "ref x4111111111111111 and 41111111111111110"),
            "ref x4111111111111111 and 41111111111111110"
        );
        let v = json(&s, r#"{"card":"4111111111111111","n":4111111111111111}"#);
        assert_eq!(v["card"], "[REDACTED]");
        assert_eq!(
            v["n"], "[REDACTED]",
            "a bare number becomes a string, the JSON stays valid"
        );
    }

    #[test]
    fn custom_patterns_and_keys() {
        let (s, _) = Sanitizer::new(Config {
            extra_patterns: vec![r"ORD-[0-9]{6}".into()],
            extra_keys: vec!["ssn".into()],
            ..Config::default()
        })
        .unwrap();
        assert_eq!(
            text(&s, "order ORD-123456 shipped"),
            "order [REDACTED] shipped"
        );
        assert_eq!(json(&s, r#"{"SSN":"078-05-1120"}"#)["SSN"], "[REDACTED]");
        let err = Sanitizer::new(Config {
            extra_patterns: vec!["(unclosed".into()],
            ..Config::default()
        })
        .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("DECKHAND_REDACT_PATTERNS=\"(unclosed\" is not valid"),
            "{err}"
        );
    }

    #[test]
    fn clean_lines_are_borrowed() {
        let s = sanitizer(&[("A", "Zq9-7f3c1a2b9d4e-pw")]);
        let line = r#"{"level":"info","time":"2026-11-22T10:30:02.677Z","msg":"order user latency","reqId":"3eabedcbbaa80dd4","latencyMs":168}"#;
        assert!(matches!(s.sanitize(line), Cow::Borrowed(_)));
        assert!(s.counts().iter().all(|(_, c)| *c == 0));
    }

    #[test]
    fn nothing_secret_in_debug() {
        let config = Config {
            secrets: vec![KnownSecret::new("DB", "very-secret-value")],
            ..Config::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("very-secret-value") && shown.contains("DB"),
            "{shown}"
        );
        let (s, _) = Sanitizer::new(config).unwrap();
        assert!(!format!("{s:?}").contains("very-secret"));
    }

    #[test]
    fn output_is_always_valid_json() {
        let s = sanitizer(&[("X", "ab\\cd\"ef"), ("Y", "u0041bcdef")]);
        for line in [
            "tricky ab\\cd\"ef and \\u0041bcdef and \\\\u0041bcdef",
            "unicode päss=wörd ✓ password=naïve-value",
            "password=\\\"quoted\\\" token: \"x\"",
            "-----BEGIN PRIVATE KEY-----",
        ] {
            text(&s, line);
        }
        json(
            &s,
            r#"{"password":{"nested":"}"},"token":[1,{"a":"]"}],"x":"\u0041bcdef"}"#,
        );
    }
}
