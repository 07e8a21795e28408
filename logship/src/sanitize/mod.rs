//! The one place where anything is redacted. Every event passes through here before a
//! byte of it leaves the agent (CloudWatch, or the agent's own stdout/stderr).
//!
//! Input is one event as JSON object text (the `structure` stage's output); output is
//! the same text with secrets and sensitive values replaced by `[REDACTED]`, still
//! valid JSON. What is redacted:
//!
//! 1. every secret value the agent loaded, by meaning rather than spelling
//!    ([`secrets`]): raw, inside JSON strings whatever the escape style (`\uXXXX`,
//!    `\/`, `\"`, surrogate pairs) and at any nesting of escaping up to
//!    [`MAX_DECODE_DEPTH`], percent-encoded (either hex case, `+` for a space), and
//!    base64 (standard and URL-safe, with and without padding);
//! 2. built-in detectors: values of sensitive keys in JSON objects at any depth and in
//!    `key=value` / `key: value` text ([`keys`]); `Bearer`/`Basic` credentials, JWTs,
//!    AWS access key ids, PEM private-key blocks, URL passwords and the well-known
//!    token formats of Stripe, GitHub, GitLab, Slack, Twilio, SendGrid, Google, Azure
//!    storage, npm, OpenAI and Anthropic ([`tokens`]); payment card numbers ([`cards`]);
//! 3. extra patterns and key names from configuration.
//!
//! How: the detectors only *find* byte ranges ("cuts"); this module turns them into
//! valid JSON. A cut inside a string literal is widened to whole escape sequences and
//! replaced by a label holding no `"` or `\` (so it is valid at any nesting level); a
//! cut outside strings is widened to the whole bare value and becomes the string
//! `"[REDACTED]"`; overlapping cuts are merged into one covering their union.
//!
//! Every pass is linear in the event's length: a walk of one DFA over every detector's
//! trigger words (a table step per byte, from the bytes a SIMD pass marks as where a
//! word may start: [`prefilter`]), an Aho-Corasick search for the secret forms
//! (overlapping matches only looked for in windows around a hit; the capture makes it
//! once for a chunk of lines and a line in which none starts is not searched again:
//! [`Sanitizer::secret_starts`], [`NoSecret`]), a pass of 64-byte
//! bit masks that lets only a text with a run of 13 digits on to the card check, and
//! — only for string literals holding a `\` or `%` — decoding into a buffer that maps
//! back to the source, at most [`MAX_DECODE_DEPTH`] levels. Trigger
//! detectors move cursors that never go backwards: a hit inside a value already looked
//! at is skipped. Custom patterns run as one `find_iter` over the text. A line with
//! nothing to redact is returned borrowed: not copied, not allocated. The fields a
//! text event starts with are the agent's own, from a fixed vocabulary
//! ([`Sanitizer::sanitize_after`]): only the secret search reads them.
//!
//! Not here: deciding what a secret is (the agent loads them) or where events go.

mod cards;
mod hex;
mod keys;
mod prefilter;
mod secrets;
mod table;
mod tokens;

#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use aho_corasick::{dfa::DFA, MatchKind};
use conventions::Invalid;
use regex::Regex;
use smallvec::SmallVec;

use crate::json::{ceil_char_boundary, floor_char_boundary};
use prefilter::Prefilter;
use table::{Id, Rows, Table, View};

/// Secrets shorter than this are not redacted: a 3-character value would redact half
/// the log. The agent reports their names at start.
pub const MIN_SECRET_LEN: usize = 6;
/// How many levels of escaping are undone to find a loaded secret: a JSON document
/// logged as a string inside a text line inside the event is three.
pub const MAX_DECODE_DEPTH: usize = 4;
const REDACTED: &str = "[REDACTED]";
/// The shortest message [`Sanitizer::sanitize_outside`] leaves out of its search.
const SKIP_MIN: usize = 1024;

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
        // Only the secrets changed: the patterns and the trigger words are kept. Built
        // before the lock is taken (the config lock keeps rotations in order).
        let triggers = self.get().triggers.clone();
        let (next, skipped) = Sanitizer::with_triggers(&config, triggers);
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
    /// DECKHAND_REDACT_PATTERNS: extra regular expressions, compiled once when the
    /// settings are read ([`compile_patterns`]); each match is redacted.
    pub extra_patterns: Vec<Regex>,
    /// DECKHAND_REDACT_KEYS: extra sensitive key names.
    pub extra_keys: Vec<String>,
}

/// The detectors, for counting. The order is [`DETECTORS`]'s.
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
    Stripe,
    GitHub,
    GitLab,
    Slack,
    SlackWebhook,
    Twilio,
    SendGrid,
    GoogleApiKey,
    AzureStorageKey,
    Npm,
    OpenAi,
    Anthropic,
}

/// Each detector's name in the counts (the exit summary and the metrics).
const DETECTORS: [(Detector, &str); 22] = [
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
    (Detector::Stripe, "stripe"),
    (Detector::GitHub, "github"),
    (Detector::GitLab, "gitlab"),
    (Detector::Slack, "slack"),
    (Detector::SlackWebhook, "slack_webhook"),
    (Detector::Twilio, "twilio"),
    (Detector::SendGrid, "sendgrid"),
    (Detector::GoogleApiKey, "google_api_key"),
    (Detector::AzureStorageKey, "azure_storage_key"),
    (Detector::Npm, "npm"),
    (Detector::OpenAi, "openai"),
    (Detector::Anthropic, "anthropic"),
];

/// What an Aho-Corasick trigger word may start. Each kind keeps its own cursor in a
/// scan ([`Scan::seen`]), indexed by [`Trigger::slot`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trigger {
    Key,
    Bearer,
    Jwt,
    AwsKeyId,
    AwsSecret,
    Pem,
    Url,
    Token(tokens::Kind),
}

/// Cursor slots: the fixed triggers, then one per token kind.
const TRIGGER_SLOTS: usize = 7 + tokens::KINDS;

impl Trigger {
    /// The Rust expression of this value, for the generated table.
    #[cfg(test)]
    fn source(self) -> String {
        match self {
            Trigger::Token(kind) => format!("Trigger::Token(tokens::Kind::{kind:?})"),
            other => format!("Trigger::{other:?}"),
        }
    }

    /// Whether the word counts in any ASCII casing (`PassWord`, `BEARER`, `Access_KEY`):
    /// a key's name or a scheme's, which apps spell as they like. A token's prefix
    /// (`AKIA`, `ghp_`, `eyJ`) counts only as written: the automaton matches every word
    /// in any casing, and [`Sanitizer::at_trigger`] checks these.
    fn any_case(self) -> bool {
        matches!(self, Trigger::Key | Trigger::Bearer | Trigger::AwsSecret)
    }

    fn slot(self) -> usize {
        match self {
            Trigger::Key => 0,
            Trigger::Bearer => 1,
            Trigger::Jwt => 2,
            Trigger::AwsKeyId => 3,
            Trigger::AwsSecret => 4,
            Trigger::Pem => 5,
            Trigger::Url => 6,
            Trigger::Token(kind) => 7 + kind as usize,
        }
    }
}

/// Every detector's trigger words and their automaton.
///
/// The built-in words' automaton is generated ahead of time ([`Table::Builtin`]);
/// key names from `DECKHAND_REDACT_KEYS` are configuration, outside input, and with
/// them it is built at once, so that a list that cannot be searched for is refused at
/// start.
struct Triggers {
    words: Vec<String>,
    /// What each word starts, by pattern id.
    kinds: Vec<Trigger>,
    /// The longest word's length in bytes: the automaton's state at any point depends
    /// on no more than this many bytes before it.
    longest: usize,
    table: Table,
    /// Where a word may start, for the walk to skip to (`None` for an empty word).
    prefilter: Option<Prefilter>,
}

impl Triggers {
    fn new(extra_keys: &[String]) -> Result<Triggers, Invalid> {
        if extra_keys.is_empty() {
            // The agent's usual start: the built-in words as generated, nothing to
            // compute (their case variants were a third of the start's own work).
            let (words, kinds) = Table::builtin_words();
            return Ok(Triggers {
                longest: words.iter().map(|w| w.len()).max().unwrap_or(0),
                words: words.iter().map(|&w| w.to_owned()).collect(),
                kinds: kinds.to_vec(),
                table: Table::Builtin,
                prefilter: Some(Prefilter::builtin()),
            });
        }
        let words = Triggers::words(extra_keys);
        let table = match Table::builtin(words.iter().map(|(w, _)| w.as_str())) {
            Some(table) => table,
            None => Triggers::build(&words).map_err(|e| {
                Invalid::new(
                    "DECKHAND_REDACT_KEYS",
                    extra_keys.join(","),
                    format!("the key names cannot be searched for: {e}"),
                )
                .config()
            })?,
        };
        let (words, kinds): (Vec<String>, _) = words.into_iter().unzip();
        Ok(Triggers {
            longest: words.iter().map(String::len).max().unwrap_or(0),
            prefilter: Prefilter::new(&words),
            words,
            kinds,
            table,
        })
    }

    /// Every detector's trigger words, the built-in ones first, each once for its
    /// detector: a word that counts in any casing ([`Trigger::any_case`]) once in all its
    /// ASCII casings (its first spelling stands for them; a non-ASCII letter's cases stay
    /// words of their own). A word of two detectors is there for each (a key name
    /// `ghp_` leaves GitHub's tokens found).
    fn words(extra_keys: &[String]) -> Vec<(String, Trigger)> {
        let mut words: Vec<(String, Trigger)> = Vec::new();
        let mut add = |word: String, t: Trigger| {
            let same = |(x, k): &(String, Trigger)| {
                *k == t && (*x == word || (t.any_case() && x.eq_ignore_ascii_case(&word)))
            };
            if !words.iter().any(same) {
                words.push((word, t));
            }
        };
        for word in keys::key_words(extra_keys) {
            add(word, Trigger::Key);
        }
        for stem in ["bearer", "basic"] {
            for word in keys::case_variants(stem) {
                add(word, Trigger::Bearer);
            }
        }
        for stem in ["access_key", "accessKey"] {
            for word in keys::case_variants(stem) {
                add(word, Trigger::AwsSecret);
            }
        }
        for (word, t) in [
            ("eyJ", Trigger::Jwt),
            ("AKIA", Trigger::AwsKeyId),
            ("ASIA", Trigger::AwsKeyId),
            ("PRIVATE KEY", Trigger::Pem),
            ("://", Trigger::Url),
        ] {
            add(word.to_owned(), t);
        }
        for (prefix, kind) in tokens::PREFIXES {
            add((*prefix).to_owned(), Trigger::Token(*kind));
        }
        words
    }

    /// aho-corasick's DFA of `words` in any ASCII casing, copied into the walk's compact
    /// [`Table`] (the DFA itself is dropped).
    fn build(words: &[(String, Trigger)]) -> Result<Table, String> {
        let words: Vec<String> = words.iter().map(|(w, _)| w.clone()).collect();
        // No prefilter: the walk is by hand ([`walk`]), and with one the start states
        // would be special too.
        let dfa = DFA::builder()
            .match_kind(MatchKind::Standard)
            .ascii_case_insensitive(true)
            .prefilter(false)
            .build(&words)
            .map_err(|e| e.to_string())?;
        Table::from_dfa(&dfa, &words).ok_or_else(|| "the automaton has too many states".to_owned())
    }
}

/// How the scanned text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// An event's JSON text: replacements keep it valid JSON.
    Json,
    /// A raw log line ([`Sanitizer::text_spans`]): replacements only keep UTF-8.
    Text,
}

/// One replacement found by a detector: bytes `start..end` become a label.
#[derive(Debug, Clone)]
struct Cut {
    start: usize,
    end: usize,
    /// Index into [`Sanitizer::labels`] (0 is `[REDACTED]`).
    label: u32,
    detector: Detector,
    /// The cut is one whole JSON value (an object, array or bare literal after a
    /// sensitive key): replaced as is by the string `"[REDACTED]"`.
    whole: bool,
    /// Set when settled: the replacement is the label in quotes (a bare value).
    quoted: bool,
}

impl Cut {
    fn new(start: usize, end: usize, detector: Detector) -> Cut {
        Cut {
            start,
            end,
            label: 0,
            detector,
            whole: false,
            quoted: false,
        }
    }
}

/// One text's detection state: the cuts found so far and the cursors that keep every
/// detector linear.
struct Scan<'t> {
    text: &'t str,
    mode: Mode,
    cuts: Vec<Cut>,
    /// End of the last value a trigger detector redacted: a hit before it is inside a
    /// value already taken.
    done: usize,
    /// Per trigger kind ([`Trigger::slot`]): how far a look that found nothing already
    /// went. A hit before it would find nothing either.
    seen: [usize; TRIGGER_SLOTS],
    /// Bytes looked at, for the linearity test: every loop over the text adds to it.
    work: usize,
    /// The text's string literals, built on first need (decoding, settling).
    layout: Option<std::rc::Rc<Layout>>,
    /// Where the trigger walk and the card check start: the bytes before it are the
    /// agent's own ([`Sanitizer::sanitize_after`]).
    head: usize,
    /// Bytes no detector looks at: a text event's message already redacted as text
    /// ([`Sanitizer::sanitize_outside`]); empty for any other scan.
    skip: Range<usize>,
    /// No loaded secret stands as written in the text ([`NoSecret`]): that one search
    /// is not made.
    secret_free: bool,
}

impl<'t> Scan<'t> {
    fn new(text: &'t str, mode: Mode) -> Scan<'t> {
        Scan {
            text,
            mode,
            cuts: Vec::new(),
            done: 0,
            seen: [0; TRIGGER_SLOTS],
            work: 0,
            layout: None,
            head: 0,
            skip: 0..0,
            secret_free: false,
        }
    }

    /// The text before and after [`Scan::skip`], each with its offset.
    fn outside_skip(&self) -> [(usize, &'t str); 2] {
        let text = self.text;
        let (start, end) = (self.skip.start, self.skip.end);
        [
            (0, text.get(..start).unwrap_or(text)),
            (end, text.get(end..).unwrap_or_default()),
        ]
    }

    /// The text's layout, built once.
    fn layout(&mut self) -> std::rc::Rc<Layout> {
        if let Some(l) = &self.layout {
            return l.clone();
        }
        self.work += self.text.len();
        let l = std::rc::Rc::new(Layout::new(self.text.as_bytes()));
        self.layout = Some(l.clone());
        l
    }

    fn bytes(&self) -> &'t [u8] {
        self.text.as_bytes()
    }

    /// Adds a cut, folding it into the previous one when they overlap (dense runs of
    /// overlapping secret matches stay one cut).
    fn push(&mut self, cut: Cut) {
        if cut.start >= cut.end {
            return;
        }
        if let Some(last) = self.cuts.last_mut() {
            if last.detector == cut.detector
                && !last.whole
                && !cut.whole
                && cut.start < last.end
                && cut.end > last.start
            {
                last.start = last.start.min(cut.start);
                last.end = last.end.max(cut.end);
                return;
            }
        }
        self.cuts.push(cut);
    }

    /// A trigger detector redacted up to `end`.
    fn taken(&mut self, end: usize) {
        self.done = self.done.max(end);
    }

    /// Where a backward look from a hit must stop: nothing before it is new.
    fn floor(&self, trigger: Trigger) -> usize {
        self.done.max(self.seen[trigger.slot()])
    }
}

/// Where the string literals of a JSON text are, and which bytes continue an escape
/// sequence. Built in one forward pass, only when a text has something to redact or
/// decode.
struct Layout {
    lits: Vec<Lit>,
    /// Bit `i` set: byte `i` continues an escape (`\"`'s quote, `\u00e9`'s `u00e9`).
    escaped: Vec<u64>,
}

/// One string literal: `open` is its opening quote, `close` its closing quote (the
/// text's length when unterminated); the contents are `open + 1..close`.
#[derive(Debug, Clone, Copy)]
struct Lit {
    open: usize,
    close: usize,
    /// The contents hold a `\`.
    has_escape: bool,
}

impl Layout {
    fn new(bytes: &[u8]) -> Layout {
        let mut lits = Vec::new();
        let mut escaped = vec![0u64; bytes.len() / 64 + 1];
        let mut i = 0;
        while let Some(k) = memchr::memchr(b'"', bytes.get(i..).unwrap_or_default()) {
            let open = i + k;
            let mut j = open + 1;
            let mut has_escape = false;
            let close = loop {
                let Some(k) = next_quote_or_backslash(bytes.get(j..).unwrap_or_default()) else {
                    break bytes.len();
                };
                let at = j + k;
                if bytes[at] == b'"' {
                    break at;
                }
                has_escape = true;
                let len = escape_len(bytes, at);
                for p in at + 1..at + len {
                    escaped[p / 64] |= 1 << (p % 64);
                }
                j = at + len;
            };
            lits.push(Lit {
                open,
                close,
                has_escape,
            });
            i = close + 1;
        }
        Layout { lits, escaped }
    }

    /// Whether byte `p` continues an escape sequence.
    fn is_escaped(&self, p: usize) -> bool {
        self.escaped
            .get(p / 64)
            .is_some_and(|w| w & (1 << (p % 64)) != 0)
    }

    /// The string literal whose contents hold byte `p`.
    fn lit_of(&self, p: usize) -> Option<usize> {
        let n = self.lits.partition_point(|l| l.open < p);
        let i = n.checked_sub(1)?;
        (p < self.lits[i].close).then_some(i)
    }

    /// The first string literal opening at or after `p`.
    fn next_lit(&self, p: usize) -> Option<&Lit> {
        self.lits.get(self.lits.partition_point(|l| l.open < p))
    }
}

/// Offset of the first `"` or `\` in `buf`. Escapes often come close together
/// (`\"key\":\"value\"`): a short look by hand first, memchr for long runs.
fn next_quote_or_backslash(buf: &[u8]) -> Option<usize> {
    const NEAR: usize = 16;
    let near = buf.len().min(NEAR);
    if let Some(k) = buf[..near].iter().position(|b| matches!(b, b'"' | b'\\')) {
        return Some(k);
    }
    memchr::memchr2(b'"', b'\\', &buf[near..]).map(|k| near + k)
}

/// Length of the escape sequence starting with the backslash at `at` (a truncated
/// `\u12` is two bytes: `\u`).
fn escape_len(bytes: &[u8], at: usize) -> usize {
    match bytes.get(at + 1) {
        None => 1,
        Some(b'u')
            if bytes
                .get(at + 2..at + 6)
                .is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) =>
        {
            6
        }
        Some(_) => 2,
    }
}

/// A byte that is part of a bare JSON value (number, literal) rather than structure.
fn is_bare(b: u8) -> bool {
    !matches!(
        b,
        b'"' | b',' | b':' | b'{' | b'}' | b'[' | b']' | b' ' | b'\t' | b'\n' | b'\r'
    )
}

pub struct Sanitizer {
    /// Every loaded secret's forms: the needles and their labels.
    secrets: secrets::Needles,
    /// Replacement texts: `[REDACTED]` first, then one per named secret
    /// (`DECKHAND_REDACT_NAME`). None holds a `"` or `\`.
    labels: Vec<String>,
    /// One automaton over every detector's trigger words: one pass per event, walked
    /// a byte at a time ([`Sanitizer::detect`]). Shared by the sanitizers a rotation
    /// builds (only the secrets change).
    triggers: Arc<Triggers>,
    custom: Vec<Regex>,
    /// The same patterns as one set, when there are [`CUSTOM_SET_FROM`] or more: one
    /// pass says which of them match a text (most texts: none), and only those are run
    /// for their places, instead of a pass per pattern over every text.
    custom_set: Option<regex::RegexSet>,
    counts: [AtomicU64; DETECTORS.len()],
    /// This sanitizer among all built in the process, for [`NoSecret`].
    id: u64,
}

/// Gives each sanitizer its [`Sanitizer::id`].
static SANITIZERS: AtomicU64 = AtomicU64::new(1);

/// One sanitizer's word that no loaded secret stands as written in a text: the search
/// over a whole chunk of lines found none there ([`Sanitizer::secret_starts`]). Only that
/// sanitizer takes it ([`Sanitizer::redact_text_vouched`]): the secrets of another (a
/// rotation) were not looked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoSecret(u64);

/// From this many `DECKHAND_REDACT_PATTERNS` on, they are looked for as one set first.
/// Fewer are faster one by one, each with its own literal search (the bench corpus,
/// 20 MB through `agent -- cat`, CPU seconds one by one against the set: 2 patterns
/// 0.07/0.10, 8 0.10/0.13, 16 0.16/0.13, 64 0.52/0.15, 512 4.04/0.29).
const CUSTOM_SET_FROM: usize = 9;

impl fmt::Debug for Sanitizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sanitizer")
            .field("secret_forms", &self.secrets.len())
            .field("trigger_words", &self.triggers.kinds.len())
            .field("custom_patterns", &self.custom.len())
            .finish_non_exhaustive()
    }
}

impl Sanitizer {
    /// Builds the matchers. Returns the names of secrets skipped for being shorter than
    /// [`MIN_SECRET_LEN`] (a URL secret whose password is that short is named too).
    pub fn new(config: Config) -> Result<(Sanitizer, Vec<String>), Invalid> {
        let triggers = Arc::new(Triggers::new(&key_names(&config.extra_keys))?);
        Ok(Sanitizer::with_triggers(&config, triggers))
    }

    /// A sanitizer for `config`'s secrets and patterns with trigger words already
    /// built from its key names (a rotation changes only the secrets).
    fn with_triggers(config: &Config, triggers: Arc<Triggers>) -> (Sanitizer, Vec<String>) {
        let (secrets, labels, skipped) = secrets::build(&config.secrets, config.redact_name);
        let sanitizer = Sanitizer {
            secrets,
            labels,
            triggers,
            custom: config.extra_patterns.clone(),
            custom_set: (config.extra_patterns.len() >= CUSTOM_SET_FROM)
                .then(|| regex::RegexSet::new(config.extra_patterns.iter().map(Regex::as_str)))
                .and_then(Result::ok),
            counts: Default::default(),
            id: SANITIZERS.fetch_add(1, Ordering::Relaxed),
        };
        (sanitizer, skipped)
    }

    /// One event's JSON object text in, sanitized JSON object text out; borrowed when
    /// there is nothing to redact. A valid JSON event stays valid JSON.
    pub fn sanitize<'a>(&self, event: &'a str) -> Cow<'a, str> {
        self.sanitize_after(event, 0)
    }

    /// [`Sanitizer::sanitize`] for an event whose first `head` bytes the agent wrote
    /// from its own fixed vocabulary ([`Event::head`](crate::structure::Event::head)):
    /// there only loaded secrets are looked for, as they stand (a secret may equal
    /// `stdout`); the trigger words, the card check and the decoding of escaped strings
    /// start at `head`. A `head` past the end or not on a char boundary counts as 0.
    pub fn sanitize_after<'a>(&self, event: &'a str, head: usize) -> Cow<'a, str> {
        self.sanitize_after_vouched(event, head, None)
    }

    /// [`Sanitizer::sanitize_after`] of an event this sanitizer vouched for: with
    /// `Some` of its own [`NoSecret`], the loaded secrets are not looked for as they
    /// stand (only decoded, as hex, and by every other detector).
    pub fn sanitize_after_vouched<'a>(
        &self,
        event: &'a str,
        head: usize,
        vouched: Option<NoSecret>,
    ) -> Cow<'a, str> {
        let mut scan = Scan::new(event, Mode::Json);
        if event.is_char_boundary(head) {
            scan.head = head;
        }
        scan.secret_free = self.vouched(vouched, event);
        self.detect(&mut scan);
        if scan.cuts.is_empty() {
            return Cow::Borrowed(event);
        }
        let cuts = self.settle(&mut scan);
        Cow::Owned(self.apply(event, &cuts))
    }

    /// [`Sanitizer::sanitize_after`] for a text event whose message, the JSON string at
    /// `message`, was already redacted as text: no detector looks in it, and only
    /// loaded secrets (and the configured patterns) are looked for around it, in the
    /// agent's own fields. A message shorter than [`SKIP_MIN`] is searched with them
    /// (one search of a short event costs less than two of its parts), and so is any
    /// message when a loaded secret holds a `\`, which the escaping of the app's text
    /// could spell where the text did not. A range not on char boundaries or past the
    /// end counts as none, too.
    pub fn sanitize_outside<'a>(&self, event: &'a str, message: Range<usize>) -> Cow<'a, str> {
        let mut scan = Scan::new(event, Mode::Json);
        scan.head = event.len();
        if message.len() >= SKIP_MIN
            && !self.secrets.has_backslash()
            && message.start <= message.end
            && event.is_char_boundary(message.start)
            && event.is_char_boundary(message.end)
        {
            scan.skip = message;
        }
        // What `detect` runs on text its trigger walk, card check and decoding skip.
        self.secrets.find_raw(&mut scan);
        self.find_custom(&mut scan);
        if scan.cuts.is_empty() {
            return Cow::Borrowed(event);
        }
        let cuts = self.settle(&mut scan);
        Cow::Owned(self.apply(event, &cuts))
    }

    /// Whether [`Sanitizer::sanitize_outside`] could find anything in a text event's
    /// own fields around its message, whatever the event's time: `before` is what
    /// precedes the message, with a time in which each ASCII digit stands for any
    /// digit, `after` what follows it, exactly. `false` lets the structure stage vouch
    /// for every event with these fields at once ([`Event::redacted_to`]) instead of
    /// searching each one. `true` whenever patterns are configured (regular expressions
    /// are not checked against a template), or a loaded secret holds a `\` (see
    /// [`Sanitizer::sanitize_outside`]).
    ///
    /// [`Event::redacted_to`]: crate::structure::Event::redacted_to
    pub fn may_find_around(&self, before: &str, after: &str) -> bool {
        !self.custom.is_empty()
            || self.secrets.has_backslash()
            || self.secrets.may_stand_in(before.as_bytes(), true)
            || self.secrets.may_stand_in(after.as_bytes(), false)
    }

    /// The byte ranges of a raw log line (plain text, not an event's JSON) that
    /// [`Sanitizer::redact_text`] replaces: on char boundaries, sorted, merged. The
    /// capture stage uses them to cut a long line where no secret is.
    pub fn text_spans(&self, text: &str) -> Vec<Range<usize>> {
        let mut scan = Scan::new(text, Mode::Text);
        self.detect(&mut scan);
        self.settle(&mut scan)
            .into_iter()
            .map(|c| c.start..c.end)
            .collect()
    }

    /// A raw log line with every span of [`Sanitizer::text_spans`] replaced by its
    /// label; borrowed when there is nothing to redact.
    pub fn redact_text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        self.redact_text_vouched(text, None)
    }

    /// [`Sanitizer::redact_text`] of a text this sanitizer vouched for (see
    /// [`Sanitizer::sanitize_after_vouched`]).
    pub fn redact_text_vouched<'a>(
        &self,
        text: &'a str,
        vouched: Option<NoSecret>,
    ) -> Cow<'a, str> {
        let mut scan = Scan::new(text, Mode::Text);
        scan.secret_free = self.vouched(vouched, text);
        self.detect(&mut scan);
        if scan.cuts.is_empty() {
            return Cow::Borrowed(text);
        }
        let cuts = self.settle(&mut scan);
        Cow::Owned(self.apply(text, &cuts))
    }

    /// Looks for the loaded secrets as they stand in `bytes`, a chunk of lines read from
    /// the app, once for all its lines: pushes where each match of a leftmost search
    /// starts to `starts`, in order, and returns this sanitizer's [`NoSecret`] for every
    /// line of `bytes` in which none starts. `None` (nothing pushed) when that search
    /// could not be built.
    ///
    /// Why a line without a start holds no secret: a leftmost search reports, from
    /// wherever it stands, the match that starts first; no match crosses a line end, so
    /// the search stands at or before each line's start when it reaches that line, and
    /// the line's first secret would be reported. The forms of a secret that hold a line
    /// end (a multi-line value, whole) are left out of this search, since they would
    /// cross lines; they never stand within one line, and a text joined from several
    /// lines is searched for them whatever the word ([`Sanitizer::redact_text_vouched`]).
    pub fn secret_starts(&self, bytes: &[u8], starts: &mut Vec<usize>) -> Option<NoSecret> {
        self.secrets
            .starts(bytes, starts)
            .then_some(NoSecret(self.id))
    }

    /// Whether a loaded secret could stand, as the search of an event's JSON looks for
    /// it, across or after the start of `tail` in a text that ends with `tail` (the
    /// agent's own fields that close an app's JSON line): then the line's
    /// [`NoSecret`] does not hold for the event. Once per sanitizer, not per event.
    pub fn may_reach_into(&self, tail: &str) -> bool {
        self.secrets.may_reach_into(tail.as_bytes())
    }

    /// Whether `vouched` is this sanitizer's own word, and holds for `text`: not for a
    /// text with a line end when a secret's form holds one
    /// ([`Sanitizer::secret_starts`]).
    fn vouched(&self, vouched: Option<NoSecret>, text: &str) -> bool {
        vouched == Some(NoSecret(self.id))
            && !(self.secrets.newline && memchr::memchr(b'\n', text.as_bytes()).is_some())
    }

    /// The longest form of a loaded secret, in bytes (0 with none loaded). An escaped
    /// appearance in the text can be longer (up to 6 bytes per byte per level).
    pub fn longest_secret_form(&self) -> usize {
        self.secrets.longest()
    }

    /// Walks the trigger automaton over the scan's text from its head, and looks at what
    /// each trigger word may start.
    fn find_triggers<I: Id>(&self, rows: &Rows<'_, I>, scan: &mut Scan) {
        let bytes = scan.bytes();
        let head = scan.head;
        let from = bytes.get(head..).unwrap_or_default();
        let filter = self.triggers.prefilter.as_ref();
        walk(rows, from, self.triggers.longest, filter, |i, sid| {
            let e = head + i + 1;
            for &word in rows.words(sid) {
                let word = word as usize;
                let (Some(text), Some(&trigger)) =
                    (self.triggers.words.get(word), self.triggers.kinds.get(word))
                else {
                    continue;
                };
                if let Some(s) = e.checked_sub(text.len()) {
                    self.at_trigger(scan, trigger, text, s, e);
                }
            }
        });
    }

    /// Runs every detector over the scan's text; the cuts land in `scan.cuts`.
    fn detect(&self, scan: &mut Scan) {
        let bytes = scan.bytes();
        if !scan.secret_free {
            self.secrets.find_raw(scan);
        }
        scan.work += bytes.len();
        // The DFA is walked by hand rather than through `find_iter`: on a line dense
        // with trigger words, each reported match costs an iterator restart several
        // times the cost of a byte, here nothing more than the detector's own look.
        // Standard semantics: every trigger word is seen, reported where it ends, in
        // the order of the text.
        match self.triggers.table.view() {
            View::Small(rows) => self.find_triggers(&rows, scan),
            View::Large(rows) => self.find_triggers(&rows, scan),
        }
        if cards::find(scan, self.secrets.hex_shortest()) {
            self.secrets.find_hex(scan);
        }
        self.find_custom(scan);
        self.secrets.find_decoded(scan);
    }

    /// Every match of the configured patterns, around the scan's `skip`.
    fn find_custom(&self, scan: &mut Scan) {
        if self.custom.is_empty() {
            return;
        }
        let mut matched = Vec::new();
        for (from, part) in scan.outside_skip() {
            matched.clear();
            match &self.custom_set {
                Some(set) => {
                    matched.extend(set.matches(part).iter());
                    scan.work += part.len();
                }
                None => matched.extend(0..self.custom.len()),
            }
            for &i in &matched {
                for m in self.custom[i].find_iter(part) {
                    scan.push(Cut::new(
                        from + m.start(),
                        from + m.end(),
                        Detector::CustomPattern,
                    ));
                }
                scan.work += part.len();
            }
        }
    }

    /// The trigger word `word` at `s..e`, found in any ASCII casing: its detector looks
    /// at the bytes around it, unless an earlier look already went past `s`, or the
    /// word must be as written ([`Trigger::any_case`]) and is not.
    fn at_trigger(&self, scan: &mut Scan, trigger: Trigger, word: &str, s: usize, e: usize) {
        if s < scan.floor(trigger) {
            return;
        }
        match trigger {
            // The words in any casing first: the check below is then not made for them.
            Trigger::Key => keys::at_key(scan, s, e),
            Trigger::AwsSecret => keys::at_aws_secret(scan, s, e),
            Trigger::Bearer => tokens::at_bearer(scan, s, e),
            t if !t.any_case() && scan.bytes().get(s..e) != Some(word.as_bytes()) => {}
            Trigger::Jwt => tokens::at_jwt(scan, s, e),
            Trigger::AwsKeyId => tokens::at_aws_key_id(scan, s, e),
            Trigger::Pem => tokens::at_pem(scan, s, e),
            Trigger::Url => tokens::at_url(scan, s, e),
            Trigger::Token(kind) => tokens::at_token(scan, kind, s, e),
        }
    }

    /// Turns the detectors' cuts into replacements that keep the text valid: sorted,
    /// widened to escape sequences / whole bare values / char boundaries, merged.
    fn settle(&self, scan: &mut Scan) -> Vec<Cut> {
        let mut cuts = std::mem::take(&mut scan.cuts);
        let text = scan.text;
        let bytes = text.as_bytes();
        for c in &mut cuts {
            c.end = c.end.min(bytes.len());
        }
        cuts.retain(|c| c.start < c.end);
        sort_cuts(&mut cuts);
        if scan.mode == Mode::Json && !cuts.is_empty() {
            let layout = scan.layout();
            let mut legal = Vec::with_capacity(cuts.len());
            // How far bare values were already widened: nothing is widened twice.
            let mut reach = 0;
            for c in cuts {
                legalize(&layout, bytes, c, &mut reach, &mut legal, &mut scan.work);
            }
            cuts = legal;
            sort_cuts(&mut cuts);
        }
        // Merged in place: `kept` cuts at the front are settled, the rest still to
        // look at (a line of a few MiB can have a few hundred thousand cuts).
        let mut kept: usize = 0;
        for i in 0..cuts.len() {
            let Some(mut c) = cuts.get(i).cloned() else {
                break;
            };
            c.start = floor_char_boundary(text, c.start);
            c.end = ceil_char_boundary(text, c.end);
            match kept.checked_sub(1).and_then(|k| cuts.get_mut(k)) {
                Some(last) if c.start < last.end => {
                    last.end = last.end.max(c.end);
                    last.quoted |= c.quoted;
                }
                _ => {
                    if let Some(slot) = cuts.get_mut(kept) {
                        *slot = c;
                    }
                    kept += 1;
                }
            }
        }
        cuts.truncate(kept);
        cuts
    }

    /// Replaces the settled cuts and counts them, one per merged cut (by the detector
    /// of its first part).
    fn apply(&self, text: &str, cuts: &[Cut]) -> String {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for c in cuts {
            // Every cut is put on char boundaries; widening one that is not (a mistake)
            // keeps it from becoming a panic, and still redacts all of it.
            let start = floor_char_boundary(text, c.start);
            let end = ceil_char_boundary(text, c.end);
            let Some(before) = text.get(at..start) else {
                continue;
            };
            if let Some(n) = self.counts.get(c.detector as usize) {
                n.fetch_add(1, Ordering::Relaxed);
            }
            out.push_str(before);
            let label = self
                .labels
                .get(c.label as usize)
                .map_or(REDACTED, String::as_str);
            if c.quoted {
                out.push('"');
                out.push_str(label);
                out.push('"');
            } else {
                out.push_str(label);
            }
            at = end;
        }
        out.push_str(text.get(at..).unwrap_or_default());
        out
    }

    /// Adds `earlier`'s redaction counts to this one's (it replaces `earlier`).
    fn carry_counts(&self, earlier: &Sanitizer) {
        for (mine, theirs) in self.counts.iter().zip(&earlier.counts) {
            mine.fetch_add(theirs.load(Ordering::Relaxed), Ordering::Relaxed);
        }
    }

    /// Redactions so far, by detector.
    pub fn counts(&self) -> Vec<(&'static str, u64)> {
        DETECTORS
            .iter()
            .zip(&self.counts)
            .map(|((_, name), c)| (*name, c.load(Ordering::Relaxed)))
            .collect()
    }
}

/// Pieces shorter than this are walked in one lane: each lane after the first walks
/// `longest` bytes the one before it walks too.
const SPLIT_MIN: usize = 96;

/// Sorts cuts by start, the longer first at the same start. Stable: the cuts arrive as a
/// few sorted runs, which it merges in linear time; most often one, already in order,
/// which is only checked (the sort would take a buffer of their size).
fn sort_cuts(cuts: &mut [Cut]) {
    let key = |c: &Cut| (c.start, std::cmp::Reverse(c.end));
    if !cuts.is_sorted_by_key(key) {
        cuts.sort_by_key(key);
    }
}

/// A text is walked a piece of this many bytes at a time, so that the matches the
/// later lanes find before they can be reported stay few (a line of nothing but
/// two-byte trigger words has one every two bytes).
const PIECE: usize = 16 * 1024;

/// Calls `hit` with each byte of `bytes` after which the trigger automaton `dfa`,
/// walked from its start state, is in a match state, and that state, in the order of
/// the text. `longest` is the longest word's length.
///
/// With a `filter` this CPU can run, a piece of [`FILTER_MIN`] bytes or more is first
/// marked where a word may start ([`Prefilter`], 32 bytes at a time), and when the marks
/// are few, walked only from them ([`walk_marked`]): on the benchmark's corpus, 6 % of
/// its bytes. A piece with many marks is walked in lanes, as every piece is without a
/// filter.
///
/// The automaton's next state depends on the one before, a table load after a table
/// load, so a text walked byte by byte waits on each. A piece of [`SPLIT_MIN`] bytes or
/// more is walked as [`LANES`] lanes in one loop ([`lockstep`]), whose loads do not
/// wait on each other. Lane `k` reads `part + longest` bytes from `k × part`: the first
/// on from the state the text so far left, each other from the start state, and it
/// owns what it reads after its first `longest` bytes. That is exact: the state after
/// any byte depends only on the `longest` bytes up to it (it stands for the longest of
/// them that begins a word), so from there on a lane's state is the one a single walk
/// would have, and a word that ends there began inside what it read. The lanes read
/// the same number of bytes, so none walks alone while the others wait; the last lane
/// reads the few bytes a division by [`LANES`] leaves over. The first lane's matches
/// are reported as they come; the others' are held until the lanes before them are
/// reported.
fn walk<I: Id>(
    dfa: &Rows<'_, I>,
    bytes: &[u8],
    longest: usize,
    filter: Option<&Prefilter>,
    mut hit: impl FnMut(usize, I),
) {
    let start = dfa.start();
    // The matches of lanes 1.. (`later[k - 1]` lane `k`'s), not initialized when made.
    let mut later: [Later<I>; LANES - 1] = Default::default();
    // `try_with`: a walk while the thread's locals are being destroyed (a message
    // logged from a destructor) makes a buffer of its own instead of panicking there.
    let mut scratch = SCRATCH
        .try_with(std::cell::Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            Box::new(Scratch {
                found: [(0, 0, 0); FOUND],
                marks: [0; PIECE / 64],
            })
        });
    let Scratch { found, marks } = &mut *scratch;
    let mut sid = start;
    let mut at = 0;
    while at < bytes.len() {
        let end = bytes.len().min(at + PIECE);
        if let Some(filter) = filter.filter(|f| end - at >= FILTER_MIN && f.usable()) {
            if filter.sparse(bytes, at..end, marks) {
                sid = walk_marked(dfa, bytes, at..end, sid, marks, &mut hit);
                at = end;
                continue;
            }
        }
        let part = (end - at).saturating_sub(longest) / LANES;
        let len = part + longest;
        let lanes: Option<[&[u8]; LANES]> = (end - at >= SPLIT_MIN && part > 0)
            .then(|| std::array::from_fn(|k| bytes.get(at + k * part..).unwrap_or_default()))
            .filter(|lanes| lanes.iter().all(|lane| lane.len() >= len));
        let Some(lanes) = lanes else {
            sid = walk_one(dfa, bytes, at..end, sid, &mut hit);
            at = end;
            continue;
        };
        let mut states = [start.index(); LANES];
        states[0] = sid.index();
        let mut j = 0;
        while j < len {
            let n;
            (j, n) = lockstep(dfa, &lanes, len, j, &mut states, found);
            for &(i, k, state) in found.iter().take(n) {
                let Some(state) = I::from_index(state) else {
                    continue;
                };
                if k == 0 {
                    hit(at + i, state);
                } else if i >= longest {
                    if let Some(held) = later.get_mut(k - 1) {
                        held.push((at + k * part + i, state));
                    }
                }
            }
        }
        let last = &mut later[LANES - 2];
        sid = I::from_index(states[LANES - 1]).unwrap_or(start);
        sid = walk_one(
            dfa,
            bytes,
            at + (LANES - 1) * part + len..end,
            sid,
            |i, state| last.push((i, state)),
        );
        for held in &mut later {
            for (i, state) in held.drain(..) {
                hit(i, state);
            }
        }
        at = end;
    }
    // Dropped instead when the thread's locals are gone.
    let _ = SCRATCH.try_with(|kept| kept.set(Some(scratch)));
}

/// Extra sensitive key names as the trigger words take them: trimmed, lower case, none
/// empty.
fn key_names(extra_keys: &[String]) -> Vec<String> {
    extra_keys
        .iter()
        .map(|k| k.trim().to_lowercase())
        .filter(|k| !k.is_empty())
        .collect()
}

/// Asks the CPU now what the sanitizer's SIMD passes can use (the standard library
/// remembers the answer), so that the first text sanitized does not wait for it.
pub fn ask_the_cpu() {
    prefilter::ask_the_cpu();
}

/// For the fuzz target `trigger_walk` (not an API): whether the walk of the built-in
/// trigger words over `bytes`, and with `extra_keys` too, reports the matches a walk of
/// one lane reports, in lanes, from the prefilter's marks for every piece, and as
/// chosen. `None` when the key names cannot be searched for.
#[doc(hidden)]
pub fn walks_agree(bytes: &[u8], extra_keys: &[String]) -> Option<bool> {
    fn agree<I: Id>(rows: &Rows<'_, I>, triggers: &Triggers, bytes: &[u8]) -> bool {
        let mut one = Vec::new();
        walk_one(rows, bytes, 0..bytes.len(), rows.start(), |i, sid| {
            one.push((i, sid))
        });
        let marked = triggers.prefilter.as_ref().filter(|f| f.usable());
        let always = marked.map(|f| f.clone().always());
        let agrees = [None, marked, always.as_ref()].into_iter().all(|filter| {
            let mut hits = Vec::new();
            walk(rows, bytes, triggers.longest, filter, |i, sid| {
                hits.push((i, sid))
            });
            hits == one
        });
        agrees
    }
    let extra_keys = key_names(extra_keys);
    let agrees = [&[][..], &extra_keys[..]]
        .into_iter()
        .try_fold(true, |ok, keys| {
            let triggers = Triggers::new(keys).ok()?;
            Some(
                ok && match triggers.table.view() {
                    View::Small(rows) => agree(&rows, &triggers, bytes),
                    View::Large(rows) => agree(&rows, &triggers, bytes),
                },
            )
        });
    agrees
}

/// Pieces shorter than this are walked byte by byte without the prefilter: below it a
/// walk of every byte costs about what the prefilter's test (one block of 32, the
/// text's last bytes copied into zeros) and the walks from its marks cost. Above it the
/// test wins even for a short line: at 64, as it was, the corpus's lines cut to 40
/// bytes ran 8 % slower (`docs/performance-history.md`, the thirty-fifth round).
const FILTER_MIN: usize = 16;

/// Walks the bytes of `range` in `bytes` from `sid` as [`walk_one`] would, reading only
/// from each byte marked in `marks` (bit `p - range.start`: a word may start at `p`) on,
/// until no word is in progress, and first on from `sid` until then. Returns the state
/// after the last byte of the range.
///
/// That finds every match a walk of every byte finds, in the same state: every word that
/// occurs begins at a marked byte (the prefilter marks every byte at which a word's
/// first three bytes, or a shorter word, begin), and the automaton's state after a byte
/// stands for the longest of the bytes up to it that begins a word; a walk from the
/// mark goes on while that part is there, so it reads the whole word, and the longest
/// part at its end began at or after the mark (a part that began before it and went on
/// past it would have been marked, and walked from, first). Between matches, a walk's
/// state can stand for less than a walk of every byte's: one or two bytes before a mark
/// that begin a word but no word that occurs. A mark inside a walk is walked by it.
fn walk_marked<I: Id>(
    dfa: &Rows<'_, I>,
    bytes: &[u8],
    range: Range<usize>,
    sid: I,
    marks: &[u64],
    hit: &mut impl FnMut(usize, I),
) -> I {
    let start = dfa.start();
    let text = bytes.get(..range.end).unwrap_or(bytes);
    let (mut i, mut sid) = match sid == start {
        true => (range.start, sid),
        false => walk_word(dfa, text, range.start, sid, hit),
    };
    for (w, &word) in marks.iter().enumerate().take(range.len().div_ceil(64)) {
        let mut word = word;
        while word != 0 {
            let p = range.start + w * 64 + word.trailing_zeros() as usize;
            word &= word - 1;
            if p >= i {
                (i, sid) = walk_word(dfa, text, p, start, hit);
            }
        }
    }
    sid
}

/// Walks `text` from byte `from` and state `sid` until the walk is back in the start
/// state (no word in progress) or at the end; returns where it stopped and the state.
#[inline(always)]
fn walk_word<I: Id>(
    dfa: &Rows<'_, I>,
    text: &[u8],
    from: usize,
    mut sid: I,
    hit: &mut impl FnMut(usize, I),
) -> (usize, I) {
    let start = dfa.start();
    let mut i = from;
    while let Some(&b) = text.get(i) {
        sid = dfa.next(sid, b);
        if dfa.is_match(sid) {
            hit(i, sid);
        }
        i += 1;
        if sid == start {
            break;
        }
    }
    (i, sid)
}

/// [`lockstep`]'s matches: (byte, lane, state index).
type Found = [(usize, usize, usize); FOUND];

/// [`walk`]'s buffers.
struct Scratch {
    found: Found,
    /// A piece's marks of the [`Prefilter`], a bit a byte.
    marks: [u64; PIECE / 64],
}

thread_local! {
    /// [`walk`]'s buffers, kept between texts: made for each, they would be zeroed for
    /// each (the match buffer's 1.5 KB was about 2 % of the agent's samples on the
    /// corpus).
    static SCRATCH: std::cell::Cell<Option<Box<Scratch>>> = const { std::cell::Cell::new(None) };
}

/// Walks the bytes of `bytes` in `range` one at a time from `sid`, calling `hit` with
/// each byte after which the automaton is in a match state; returns the state after
/// the last.
#[inline(always)]
fn walk_one<I: Id>(
    dfa: &Rows<'_, I>,
    bytes: &[u8],
    range: Range<usize>,
    mut sid: I,
    mut hit: impl FnMut(usize, I),
) -> I {
    for (i, &b) in bytes.iter().enumerate().take(range.end).skip(range.start) {
        sid = dfa.next(sid, b);
        if dfa.is_match(sid) {
            hit(i, sid);
        }
    }
    sid
}

/// How many lanes [`walk`] walks in step. Four measured faster than three and than
/// two (`docs/performance-history.md`, the eighteenth round). A lane more is one more
/// chain of loads in flight, and seven or eight more instructions a step: with four,
/// the loop waits on its instructions more than on its loads.
const LANES: usize = 4;

/// The matches [`lockstep`] collects before it returns: (byte, lane, state index).
const FOUND: usize = 64;

/// Walks the first `len` bytes of each lane from `states` (state indices), all in
/// step, from byte `j` on, and writes each match (the byte after which a lane is in a
/// match state, the lane, the state) to `found`. Returns where it stopped (`len`, or
/// earlier when `found` has no room for another byte's matches) and how many matches
/// it wrote.
///
/// A function of its own, not inlined, and with nothing of the caller's: its loop
/// keeps every lane's state, pointer and the automaton's tables in registers (in the
/// caller's body they were reloaded from the stack for every byte).
#[inline(never)]
fn lockstep<I: Id>(
    dfa: &Rows<'_, I>,
    lanes: &[&[u8]; LANES],
    len: usize,
    mut j: usize,
    states: &mut [usize; LANES],
    found: &mut Found,
) -> (usize, usize) {
    // Each lane cut to `len` here, so that the loop's bound is every lane's.
    let mut cut = [&[][..]; LANES];
    for (c, lane) in cut.iter_mut().zip(lanes) {
        let Some(lane) = lane.get(..len) else {
            return (len, 0);
        };
        *c = lane;
    }
    let mut st = *states;
    let mut n = 0;
    while j < len {
        let mut any = false;
        for k in 0..LANES {
            st[k] = dfa.step(st[k], cut[k][j]);
            any |= dfa.is_match_index(st[k]);
        }
        j += 1;
        if any {
            for (k, &state) in st.iter().enumerate() {
                if let (true, Some(slot)) = (dfa.is_match_index(state), found.get_mut(n)) {
                    *slot = (j - 1, k, state);
                    n += 1;
                }
            }
            if n + LANES > FOUND {
                break;
            }
        }
    }
    *states = st;
    (j, n)
}

/// A later lane's matches, held until the lanes before it are reported: the first
/// few in place (most texts have none or a few), the rest on the heap.
type Later<I> = SmallVec<[(usize, I); LATER_NEAR]>;

const LATER_NEAR: usize = 8;

/// Makes one cut valid in JSON text and adds the result to `out`:
///
/// - inside one string literal: widened to whole escape sequences, replaced by the
///   bare label;
/// - across string literals (a custom pattern): clipped to the first one it touches;
/// - outside strings: a whole value from a sensitive key as is; otherwise each bare
///   value it touches, widened to the whole value (a secret inside `1234567890`
///   redacts the number), replaced by the label in quotes.
fn legalize(
    layout: &Layout,
    bytes: &[u8],
    mut c: Cut,
    reach: &mut usize,
    out: &mut Vec<Cut>,
    work: &mut usize,
) {
    let first = layout.lit_of(c.start);
    let last = layout.lit_of(c.end - 1);
    let lit = match (first, last) {
        (Some(a), Some(b)) if a == b => Some(a),
        (Some(a), _) => {
            c.end = layout.lits[a].close;
            Some(a)
        }
        (None, Some(b)) => {
            // The part before the string is structure or bare values: redact those
            // separately, the string part here.
            let open = layout.lits[b].open;
            if open > c.start {
                let mut before = c.clone();
                before.end = open;
                legalize(layout, bytes, before, reach, out, work);
            }
            c.start = open + 1;
            Some(b)
        }
        (None, None) => None,
    };
    if let Some(i) = lit {
        let l = layout.lits[i];
        while c.start > l.open + 1 && layout.is_escaped(c.start) {
            c.start -= 1;
        }
        while c.end < l.close && layout.is_escaped(c.end) {
            c.end += 1;
        }
        c.quoted = false;
        if c.start < c.end {
            out.push(c);
        }
        return;
    }
    if c.whole {
        c.quoted = true;
        *reach = (*reach).max(c.end);
        out.push(c);
        return;
    }
    // Outside strings: strings inside the range are left to their own cuts; each bare
    // value touched is redacted whole.
    let end = match layout.next_lit(c.start) {
        Some(l) if l.open < c.end => l.open,
        _ => c.end,
    };
    let mut p = c.start.max(*reach);
    while p < end {
        if !is_bare(bytes[p]) {
            p += 1;
            *work += 1;
            continue;
        }
        let mut s = p;
        while s > *reach && is_bare(bytes[s - 1]) {
            s -= 1;
        }
        let mut e = p;
        while e < bytes.len() && is_bare(bytes[e]) {
            e += 1;
        }
        *work += e - s;
        out.push(Cut {
            start: s,
            end: e,
            quoted: true,
            ..c.clone()
        });
        *reach = e;
        p = e;
    }
}

/// Compiles `DECKHAND_REDACT_PATTERNS` (empty entries skipped), once, when the settings
/// are read; the first bad one is the error, a configuration error naming it.
pub fn compile_patterns(patterns: &[String]) -> Result<Vec<Regex>, Invalid> {
    patterns
        .iter()
        .filter(|p| !p.is_empty())
        .map(|pattern| {
            Regex::new(pattern).map_err(|e| {
                Invalid::new(
                    "DECKHAND_REDACT_PATTERNS",
                    pattern.clone(),
                    format!("{e}; write a regular expression in Rust regex syntax"),
                )
                .config()
            })
        })
        .collect()
}

/// True if the byte at `p` follows an odd number of backslashes, counting back no
/// further than `floor` (a detector's cursor: what lies before it was looked at).
fn escaped_before(bytes: &[u8], p: usize, floor: usize) -> bool {
    let from = floor.min(p);
    bytes[from..p]
        .iter()
        .rev()
        .take_while(|b| **b == b'\\')
        .count()
        % 2
        == 1
}

/// Index of the closing quote of the JSON string whose contents start at `from` (the
/// text's end when there is none).
fn string_end(bytes: &[u8], from: usize) -> usize {
    let mut i = from;
    while let Some(k) = memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default()) {
        let at = i + k;
        if bytes[at] == b'"' {
            return at;
        }
        i = at + 2;
    }
    bytes.len()
}

/// Whether a token may start at `s`: the text starts there, or the byte before is not
/// a word byte, or it is the letter of an escape (`\n`, `\t`) in JSON text.
fn word_start(bytes: &[u8], s: usize) -> bool {
    match s.checked_sub(1).and_then(|p| bytes.get(p)) {
        None => true,
        Some(b) if b.is_ascii_alphanumeric() || *b == b'_' => {
            matches!(b, b'n' | b't' | b'r' | b'b' | b'f')
                && s >= 2
                && bytes[s - 2] == b'\\'
                && !escaped_before(bytes, s - 2, s.saturating_sub(64))
        }
        Some(_) => true,
    }
}
