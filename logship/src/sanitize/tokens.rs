//! Credentials recognized by their shape anywhere in text, not only after a sensitive
//! key: `Bearer`/`Basic` credentials, JWTs, AWS access key ids, PEM private-key
//! blocks, URL passwords, and the well-known token formats of the services apps talk
//! to (Stripe, GitHub, GitLab, Slack, Twilio, SendGrid, Google, Azure storage, npm,
//! OpenAI, Anthropic — the shapes secret scanners such as gitleaks document).
//!
//! Each detector starts at a trigger word of the parent's automaton (a prefix such as
//! `ghp_` or `sk_live_`), checks the bytes that follow against the format (alphabet,
//! length, word boundaries), and looks no further than the token: a failed look
//! records how far it went, and a later hit before that point is skipped, so a line of
//! repeated prefixes costs one pass. Ordinary ids, UUIDs and hex hashes have none of
//! these prefixes and stay as they are.
//!
//! Not here: values found by the key before them (`keys`), loaded secrets, cards.

use super::{string_end, word_start, Cut, Detector, Mode, Scan, Trigger};

/// A well-known token format, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Stripe,
    GitHub,
    GitHubFineGrained,
    GitLab,
    Slack,
    SlackWebhook,
    Twilio,
    SendGrid,
    Google,
    AzureStorage,
    Npm,
    /// `sk-…`: OpenAI (`sk-`, `sk-proj-`) or Anthropic (`sk-ant-`).
    SkDash,
}

/// Number of [`Kind`]s (cursor slots).
pub(super) const KINDS: usize = 12;

/// The trigger words. Case-sensitive: every one of these services prints its prefix
/// in exactly this case. A Slack webhook's is the start of its host, `hooks.slack`, and
/// [`shape`] checks the rest of the URL ([`WEBHOOK_REST`]): the longest word sets how
/// many bytes each lane of the walk reads twice, and the whole prefix (25 bytes, twice
/// the next longest word) cost the pipeline about 3 % of its speed.
pub(super) const PREFIXES: &[(&str, Kind)] = &[
    ("sk_live_", Kind::Stripe),
    ("sk_test_", Kind::Stripe),
    ("rk_live_", Kind::Stripe),
    ("rk_test_", Kind::Stripe),
    ("ghp_", Kind::GitHub),
    ("gho_", Kind::GitHub),
    ("ghu_", Kind::GitHub),
    ("ghs_", Kind::GitHub),
    ("ghr_", Kind::GitHub),
    ("github_pat_", Kind::GitHubFineGrained),
    ("glpat-", Kind::GitLab),
    ("xoxa-", Kind::Slack),
    ("xoxb-", Kind::Slack),
    ("xoxp-", Kind::Slack),
    ("xoxr-", Kind::Slack),
    ("xoxs-", Kind::Slack),
    ("hooks.slack", Kind::SlackWebhook),
    ("SK", Kind::Twilio),
    ("SG.", Kind::SendGrid),
    ("AIza", Kind::Google),
    ("AccountKey=", Kind::AzureStorage),
    ("npm_", Kind::Npm),
    ("sk-", Kind::SkDash),
];

/// What follows a Slack webhook's trigger word (`hooks.slack`) in its URL.
const WEBHOOK_REST: &[u8] = b".com/services/";

/// Shortest Stripe key body after `sk_live_` (real ones are 24 or more).
const STRIPE_MIN: usize = 16;
/// GitHub classic tokens: 36 characters after the prefix.
const GITHUB_LEN: usize = 36;
/// GitHub fine-grained tokens are 82 characters after `github_pat_`; shorter ones
/// are accepted down to this.
const GITHUB_PAT_MIN: usize = 40;
/// GitLab personal access tokens: 20 characters after `glpat-`.
const GITLAB_MIN: usize = 20;
/// Slack tokens: at least this much after `xoxb-`.
const SLACK_MIN: usize = 10;
/// The secret path of a Slack webhook URL (`T…/B…/…`): at least this long.
const SLACK_WEBHOOK_MIN: usize = 20;
/// Twilio API key SIDs: `SK` and 32 lower-case hex digits.
const TWILIO_LEN: usize = 32;
/// SendGrid keys: `SG.` 22 characters `.` 43 characters.
const SENDGRID_PARTS: (usize, usize) = (22, 43);
/// Google API keys: `AIza` and 35 characters.
const GOOGLE_LEN: usize = 35;
/// Azure storage account keys are 88 base64 characters; shorter ones down to this.
const AZURE_MIN: usize = 20;
/// npm tokens: `npm_` and 36 characters.
const NPM_LEN: usize = 36;
/// OpenAI / Anthropic key bodies after `sk-`: at least this long, with a digit, an
/// upper-case and a lower-case letter (so `sk-learn-tutorial` is not one).
const SK_DASH_MIN: usize = 32;
/// Shortest `Bearer`/`Basic` credential.
const BEARER_MIN: usize = 8;
/// How far before `PRIVATE KEY` its `-----BEGIN ` may be (`ENCRYPTED `, `RSA `).
const PEM_LABEL_MAX: usize = 32;

fn alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// End of the run of `class` bytes from `from`.
fn run(bytes: &[u8], from: usize, class: fn(u8) -> bool) -> usize {
    let mut k = from;
    while k < bytes.len() && class(bytes[k]) {
        k += 1;
    }
    k
}

/// A well-known prefix at `s..e`: checks the shape after it.
pub(super) fn at_token(scan: &mut Scan, kind: Kind, s: usize, e: usize) {
    let bytes = scan.bytes();
    let slot = Trigger::Token(kind).slot();
    // Where the token (and its cut) starts, where it ends, which detector; `None` when
    // the bytes do not have the shape.
    let (found, looked) = shape(bytes, kind, s, e);
    scan.work += looked.saturating_sub(s);
    scan.seen[slot] = scan.seen[slot].max(looked);
    if let Some((start, end, detector)) = found {
        scan.push(Cut::new(start, end, detector));
        scan.taken(end);
    }
}

/// The token at `s..e` if the bytes have `kind`'s shape, and how far the look went.
fn shape(
    bytes: &[u8],
    kind: Kind,
    s: usize,
    e: usize,
) -> (Option<(usize, usize, Detector)>, usize) {
    let boundary = word_start(bytes, s);
    match kind {
        Kind::Stripe => {
            let end = run(bytes, e, alnum);
            let ok = boundary && end - e >= STRIPE_MIN;
            (ok.then_some((s, end, Detector::Stripe)), end)
        }
        Kind::GitHub | Kind::Npm => {
            let end = run(bytes, e, alnum);
            let (want, detector) = match kind {
                Kind::GitHub => (GITHUB_LEN, Detector::GitHub),
                _ => (NPM_LEN, Detector::Npm),
            };
            let ok = boundary && end - e == want && bytes.get(end) != Some(&b'_');
            (ok.then_some((s, end, detector)), end)
        }
        Kind::GitHubFineGrained => {
            let end = run(bytes, e, |b| alnum(b) || b == b'_');
            let ok = boundary && end - e >= GITHUB_PAT_MIN;
            (ok.then_some((s, end, Detector::GitHub)), end)
        }
        Kind::GitLab => {
            let end = run(bytes, e, b64url);
            let ok = boundary && end - e >= GITLAB_MIN;
            (ok.then_some((s, end, Detector::GitLab)), end)
        }
        Kind::Slack => {
            let end = run(bytes, e, |b| alnum(b) || b == b'-');
            let body = &bytes[e..end];
            let ok = boundary && body.len() >= SLACK_MIN && body.iter().any(u8::is_ascii_digit);
            (ok.then_some((s, end, Detector::Slack)), end)
        }
        Kind::SlackWebhook => {
            let Some(e) = bytes
                .get(e..)
                .filter(|rest| rest.starts_with(WEBHOOK_REST))
                .map(|_| e + WEBHOOK_REST.len())
            else {
                return (None, e);
            };
            let end = run(bytes, e, |b| b64url(b) || b == b'/' || b == b'+');
            let ok = end - e >= SLACK_WEBHOOK_MIN;
            // The host stays readable; the path is the secret.
            (ok.then_some((e, end, Detector::SlackWebhook)), end)
        }
        Kind::Twilio => {
            let end = run(bytes, e, |b| {
                b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
            });
            let ok =
                boundary && end - e == TWILIO_LEN && !bytes.get(end).copied().is_some_and(b64url);
            (ok.then_some((s, end, Detector::Twilio)), end.max(e))
        }
        Kind::SendGrid => {
            let (a, b) = SENDGRID_PARTS;
            let mid = run(bytes, e, b64url);
            let ok1 = mid - e == a && bytes.get(mid) == Some(&b'.');
            let end = if ok1 {
                run(bytes, mid + 1, b64url)
            } else {
                mid
            };
            let ok = boundary && ok1 && end - (mid + 1) == b;
            (ok.then_some((s, end, Detector::SendGrid)), end)
        }
        Kind::Google => {
            let end = run(bytes, e, b64url);
            let ok = boundary && end - e == GOOGLE_LEN;
            (ok.then_some((s, end, Detector::GoogleApiKey)), end)
        }
        Kind::AzureStorage => {
            let body = run(bytes, e, |b| alnum(b) || b == b'+' || b == b'/');
            let end = run(bytes, body, |b| b == b'=');
            let ok = body - e >= AZURE_MIN;
            // `AccountKey=` stays: the value is the secret.
            (ok.then_some((e, end, Detector::AzureStorageKey)), end)
        }
        Kind::SkDash => {
            let end = run(bytes, e, b64url);
            let body = &bytes[e..end];
            let ok = boundary
                && body.len() >= SK_DASH_MIN
                && body.iter().any(u8::is_ascii_digit)
                && body.iter().any(u8::is_ascii_uppercase)
                && body.iter().any(u8::is_ascii_lowercase);
            let detector = if body.starts_with(b"ant-") {
                Detector::Anthropic
            } else {
                Detector::OpenAi
            };
            (ok.then_some((s, end, detector)), end)
        }
    }
}

/// `Bearer`/`Basic` at `s..e`: the credential after it, 8 characters or more.
pub(super) fn at_bearer(scan: &mut Scan, s: usize, e: usize) {
    let bytes = scan.bytes();
    if !word_start(bytes, s) || !matches!(bytes.get(e), Some(b' ' | b'\t')) {
        return;
    }
    let from = run(bytes, e, |b| b == b' ' || b == b'\t');
    let body = run(bytes, from, |b| b64url(b) || b"._~+/".contains(&b));
    let end = run(bytes, body, |b| b == b'=');
    scan.work += end - s;
    scan.seen[Trigger::Bearer.slot()] = end;
    if body - from >= BEARER_MIN {
        scan.push(Cut::new(from, end, Detector::Bearer));
        scan.taken(end);
    }
}

/// `eyJ` at `s..e`: three base64url segments of 4 or more, dot-separated. A failed
/// look skips every later `eyJ` inside the first segment: it would end the same way.
pub(super) fn at_jwt(scan: &mut Scan, s: usize, e: usize) {
    let bytes = scan.bytes();
    let one = run(bytes, e, b64url);
    let mut end = one;
    let mut ok = one - e >= 4;
    for _ in 0..2 {
        if !ok || bytes.get(end) != Some(&b'.') {
            ok = false;
            break;
        }
        let next = run(bytes, end + 1, b64url);
        ok = next - (end + 1) >= 4;
        end = next;
    }
    scan.work += end - s;
    scan.seen[Trigger::Jwt.slot()] = one;
    if ok {
        scan.push(Cut::new(s, end, Detector::Jwt));
        scan.taken(end);
    }
}

/// `AKIA`/`ASIA` at `s..e`: 16 upper-case letters or digits, a whole word.
pub(super) fn at_aws_key_id(scan: &mut Scan, s: usize, e: usize) {
    let bytes = scan.bytes();
    let end = e + 16;
    let ok = word_start(bytes, s)
        && bytes.get(e..end).is_some_and(|b| {
            b.iter()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
        && !bytes
            .get(end)
            .is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    scan.work += 20;
    if ok {
        scan.push(Cut::new(s, end, Detector::AwsAccessKeyId));
        scan.taken(end);
    }
}

/// `PRIVATE KEY` at `s..e`: when it is a `-----BEGIN … PRIVATE KEY-----` line, the
/// block to its `-----END … PRIVATE KEY-----` (an unterminated block to the end of its
/// JSON string, or of the text).
pub(super) fn at_pem(scan: &mut Scan, s: usize, e: usize) {
    let bytes = scan.bytes();
    let label = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b' ';
    let floor = s
        .saturating_sub(PEM_LABEL_MAX + 11)
        .max(scan.floor(Trigger::Pem));
    let mut q = s;
    while q > floor && label(bytes[q - 1]) {
        q -= 1;
    }
    let begins = q >= 5
        && bytes.get(q - 5..q) == Some(b"-----")
        && bytes.get(q..).is_some_and(|b| b.starts_with(b"BEGIN "));
    if !begins || bytes.get(e..e + 5) != Some(b"-----") {
        scan.work += s - q;
        return;
    }
    let start = q - 5;
    let limit = match scan.mode {
        Mode::Json => string_end(bytes, e),
        Mode::Text => bytes.len(),
    };
    let mut end = limit;
    let mut from = e + 5;
    let finder = memchr::memmem::Finder::new(b"-----END ");
    while let Some(k) = finder.find(bytes.get(from..limit).unwrap_or_default()) {
        let at = from + k + 9;
        // The label run takes `RSA PRIVATE KEY` whole and stops at `-----`.
        let tail = run(bytes, at, label);
        if bytes[..tail].ends_with(b"PRIVATE KEY")
            && bytes.get(tail..).is_some_and(|b| b.starts_with(b"-----"))
        {
            end = tail + 5;
            break;
        }
        from = at;
    }
    let end = end.max(e);
    scan.work += end - start;
    scan.push(Cut::new(start, end, Detector::PrivateKey));
    scan.taken(end);
}

/// `://` at `s..e`: the password of `scheme://user:password@`.
pub(super) fn at_url(scan: &mut Scan, s: usize, e: usize) {
    let bytes = scan.bytes();
    let scheme = s
        .checked_sub(1)
        .and_then(|p| bytes.get(p))
        .is_some_and(|b| b.is_ascii_alphanumeric() || b"+.-".contains(b));
    if !scheme {
        return;
    }
    let user_end = run(bytes, e, |b| {
        !(b.is_ascii_whitespace() || b":/@\"\\".contains(&b))
    });
    scan.work += user_end - e;
    scan.seen[Trigger::Url.slot()] = user_end;
    if user_end == e || bytes.get(user_end) != Some(&b':') {
        return;
    }
    let pw_start = user_end + 1;
    let pw_end = run(bytes, pw_start, |b| {
        !(b.is_ascii_whitespace() || b"@/\"\\".contains(&b))
    });
    scan.work += pw_end - pw_start;
    scan.seen[Trigger::Url.slot()] = pw_end;
    if pw_end > pw_start && bytes.get(pw_end) == Some(&b'@') {
        scan.push(Cut::new(pw_start, pw_end, Detector::UrlPassword));
        scan.taken(pw_end);
    }
}
