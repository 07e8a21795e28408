//! Lines become events: one JSON object each, with a CloudWatch timestamp.
//!
//! A line that is a JSON object stays as the app wrote it (its fields untouched; the
//! ECS context, when configured, is appended as one more field). Any other line becomes
//! `{"timestamp", "level", "stream", "message"}`. Continuation lines (indented lines,
//! `Caused by:`, Python tracebacks, PEM blocks) join the event before them on the same
//! stream. Invalid UTF-8 and control characters are escaped, never dropped; ANSI colour
//! codes are stripped unless configured otherwise.
//!
//! Not here: redaction (`sanitize`), size limits and splitting (`batch`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

/// CloudWatch rejects events more than 2 hours in the future (PutLogEvents).
pub const MAX_FUTURE: Duration = Duration::from_secs(2 * 3600);
/// The oldest app timestamp an event keeps. CloudWatch accepts 14 days back, but an
/// app line stamped a day or more before it was written almost always carries a
/// record's own date (a `time` field of a replayed job, an order's `ts`), not the
/// line's: kept, it would file the line days back, out of "last hour" searches and out
/// of the 24 h that one PutLogEvents call may span with its neighbours.
pub const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stream {
    Stdout,
    Stderr,
    /// The agent's own diagnostics.
    Agent,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Agent => "agent",
        }
    }
}

/// One log event, ready for the sanitizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Milliseconds since the epoch: the app's own time when usable, else receive time.
    pub timestamp_ms: i64,
    /// A JSON object.
    pub json: String,
}

/// The ECS task the events come from, added to each event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    pub task_id: String,
    pub container_name: String,
    /// `family:revision`.
    pub task_definition: String,
}

/// How lines are turned into events.
#[derive(Debug, Clone)]
pub struct Options {
    /// Join continuation lines to the previous event (DECKHAND_LOG_MULTILINE).
    pub multiline: bool,
    /// Remove ANSI colour codes (else they are kept, escaped).
    pub strip_ansi: bool,
    pub context: Option<Context>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            multiline: true,
            strip_ansi: true,
            context: None,
        }
    }
}

/// Turns the lines of one stream into events. One per stream: continuation lines only
/// ever join lines of their own stream.
#[derive(Debug)]
pub struct Structurer {
    stream: Stream,
    multiline: bool,
    strip_ansi: bool,
    /// `,"ecs":{…}` ready to splice in, computed once.
    context_field: String,
    pending: Option<Pending>,
}

/// A text event that continuation lines may still join.
#[derive(Debug)]
struct Pending {
    received_ms: i64,
    message: String,
    kind: Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Plain,
    /// After `Traceback (most recent call last):` until the exception line.
    Traceback,
    /// Inside `-----BEGIN …-----` until the matching END line.
    Pem,
}

impl Structurer {
    pub fn new(stream: Stream, options: &Options) -> Self {
        let context_field = match &options.context {
            Some(c) => format!(
                ",\"ecs\":{{\"task_id\":{},\"container_name\":{},\"task_definition\":{}}}",
                json_string(&c.task_id),
                json_string(&c.container_name),
                json_string(&c.task_definition)
            ),
            None => String::new(),
        };
        Structurer {
            stream,
            multiline: options.multiline,
            strip_ansi: options.strip_ansi,
            context_field,
            pending: None,
        }
    }

    /// Takes one line (without its newline) received at `now_ms`; returns the events
    /// it completes (the pending one it does not continue, and itself if it cannot be
    /// continued). Empty lines produce nothing: the service rejects empty messages.
    pub fn push(&mut self, line: &[u8], now_ms: i64, out: &mut Vec<Event>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = decode(line, self.strip_ansi);
        if text.trim().is_empty() {
            // A blank line may sit inside a traceback or PEM block; elsewhere it ends one.
            if let Some(p) = &mut self.pending {
                if p.kind != Block::Plain {
                    return;
                }
            }
            self.flush(out);
            return;
        }
        if self.multiline {
            if let Some(p) = &mut self.pending {
                if continues(p, &text) {
                    p.message.push('\n');
                    p.message.push_str(&text);
                    update_block(p, &text);
                    return;
                }
            }
        }
        self.flush(out);
        if let Some(event) = self.json_event(&text, now_ms) {
            out.push(event);
            return;
        }
        let mut pending = Pending {
            received_ms: now_ms,
            kind: Block::Plain,
            message: text.into_owned(),
        };
        start_block(&mut pending);
        if self.multiline {
            self.pending = Some(pending);
        } else {
            out.push(self.text_event(pending));
        }
    }

    /// Emits the pending event if it has waited since `received_ms` for at least
    /// `window`: continuation lines arrive together, so a pause ends the event.
    pub fn flush_if_older(&mut self, now_ms: i64, window: Duration, out: &mut Vec<Event>) {
        if let Some(p) = &self.pending {
            if now_ms - p.received_ms >= window.as_millis() as i64 {
                self.flush(out);
            }
        }
    }

    /// Emits the pending event, if any (end of stream, shutdown).
    pub fn flush(&mut self, out: &mut Vec<Event>) {
        if let Some(p) = self.pending.take() {
            out.push(self.text_event(p));
        }
    }

    pub fn has_pending(&self) -> bool {
        self.pending.is_some()
    }

    fn json_event(&self, text: &str, now_ms: i64) -> Option<Event> {
        let trimmed = text.trim();
        if !(trimmed.starts_with('{') && trimmed.ends_with('}')) {
            return None;
        }
        let probe: Probe = serde_json::from_str(trimmed).ok()?;
        let app_ms = [
            &probe.timestamp,
            &probe.time,
            &probe.at_timestamp,
            &probe.ts,
        ]
        .into_iter()
        .flatten()
        .find_map(Stamp::epoch_ms);
        let mut json = String::with_capacity(trimmed.len() + self.context_field.len());
        json.push_str(trimmed);
        if !self.context_field.is_empty() {
            json.pop();
            let empty = json[1..].trim().is_empty();
            json.push_str(if empty {
                &self.context_field[1..]
            } else {
                &self.context_field
            });
            json.push('}');
        }
        Some(Event {
            timestamp_ms: accept_timestamp(app_ms, now_ms),
            json,
        })
    }

    fn text_event(&self, p: Pending) -> Event {
        let level = text_level(&p.message).unwrap_or(match self.stream {
            Stream::Stderr => "error",
            _ => "info",
        });
        let mut json = String::with_capacity(p.message.len() + 96 + self.context_field.len());
        json.push_str("{\"timestamp\":\"");
        push_rfc3339(&mut json, p.received_ms);
        json.push_str("\",\"level\":\"");
        json.push_str(level);
        json.push_str("\",\"stream\":\"");
        json.push_str(self.stream.as_str());
        json.push_str("\",\"message\":");
        push_json_string(&mut json, &p.message);
        json.push_str(&self.context_field);
        json.push('}');
        Event {
            timestamp_ms: p.received_ms,
            json,
        }
    }
}

/// The fields of an app's JSON line we look at; the rest is validated and skipped.
#[derive(Deserialize)]
struct Probe {
    timestamp: Option<Stamp>,
    time: Option<Stamp>,
    #[serde(rename = "@timestamp")]
    at_timestamp: Option<Stamp>,
    ts: Option<Stamp>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Stamp {
    Number(f64),
    Text(String),
    Other(serde::de::IgnoredAny),
}

impl Stamp {
    fn epoch_ms(&self) -> Option<i64> {
        match self {
            Stamp::Number(n) => epoch_number_ms(*n),
            Stamp::Text(s) => {
                parse_rfc3339_ms(s).or_else(|| s.parse().ok().and_then(epoch_number_ms))
            }
            Stamp::Other(_) => None,
        }
    }
}

/// Epoch seconds or milliseconds (or micro/nanoseconds), told apart by magnitude.
fn epoch_number_ms(n: f64) -> Option<i64> {
    if !n.is_finite() || n <= 0.0 {
        return None;
    }
    let ms = if n < 1e11 {
        n * 1e3
    } else if n < 1e14 {
        n
    } else if n < 1e17 {
        n / 1e3
    } else {
        n / 1e6
    };
    Some(ms as i64)
}

/// The app's timestamp when the service would accept it, else the receive time.
pub fn accept_timestamp(app_ms: Option<i64>, now_ms: i64) -> i64 {
    match app_ms {
        Some(t)
            if t <= now_ms + MAX_FUTURE.as_millis() as i64
                && t >= now_ms - MAX_AGE.as_millis() as i64 =>
        {
            t
        }
        _ => now_ms,
    }
}

/// Milliseconds since the epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn continues(p: &Pending, line: &str) -> bool {
    match p.kind {
        Block::Pem | Block::Traceback => true,
        Block::Plain => {
            let first = line.as_bytes()[0];
            first == b' '
                || first == b'\t'
                || line.starts_with("Caused by:")
                || line.starts_with("at ")
                || line.starts_with("...")
                || line.starts_with("-----END")
        }
    }
}

fn start_block(p: &mut Pending) {
    let t = p.message.trim_start();
    if t.starts_with("Traceback (most recent call last):") {
        p.kind = Block::Traceback;
    } else if t.starts_with("-----BEGIN ") && !t.contains("-----END ") {
        p.kind = Block::Pem;
    }
}

/// Ends a block on its last line: the exception line of a traceback (the first line
/// that is not indented), or a PEM END line.
fn update_block(p: &mut Pending, line: &str) {
    match p.kind {
        Block::Pem if line.trim_start().starts_with("-----END ") => p.kind = Block::Plain,
        Block::Traceback
            if !line.starts_with([' ', '\t'])
                && !line.starts_with("During handling")
                && !line.starts_with("The above exception")
                && !line.starts_with("Traceback") =>
        {
            p.kind = Block::Plain
        }
        _ => {}
    }
}

/// A level word near the start of a text line (`ERROR`, `[warn]`, `level=debug`).
fn text_level(message: &str) -> Option<&'static str> {
    const LEVELS: [(&str, &str); 9] = [
        ("FATAL", "fatal"),
        ("CRITICAL", "fatal"),
        ("ERROR", "error"),
        ("WARNING", "warn"),
        ("WARN", "warn"),
        ("INFO", "info"),
        ("DEBUG", "debug"),
        ("TRACE", "trace"),
        ("PANIC", "fatal"),
    ];
    let head = &message.as_bytes()[..message.len().min(64)];
    for word in head.split(|b| !b.is_ascii_alphabetic()) {
        if word.len() < 4 || word.len() > 8 {
            continue;
        }
        for (name, level) in LEVELS {
            if word.eq_ignore_ascii_case(name.as_bytes())
                && (word == name.as_bytes() || word.iter().all(u8::is_ascii_lowercase))
            {
                return Some(level);
            }
        }
    }
    None
}

/// Bytes to text: invalid UTF-8 becomes U+FFFD, ANSI escape sequences go (optionally).
fn decode(line: &[u8], strip_ansi: bool) -> std::borrow::Cow<'_, str> {
    let text = match std::str::from_utf8(line) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(line),
    };
    if strip_ansi && text.contains('\u{1b}') {
        std::borrow::Cow::Owned(strip_ansi_codes(&text))
    } else {
        text
    }
}

/// Removes CSI sequences (`ESC [ … final`) and two-byte escapes.
fn strip_ansi_codes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: until BEL or ESC \.
                chars.next();
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.peek() == Some(&'\\')) {
                        if c == '\u{1b}' {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    out
}

pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_json_string(&mut out, s);
    out
}

/// Appends `s` as a JSON string. Control characters (NUL included) become `\u00XX`,
/// U+FFFD (what invalid UTF-8 was turned into) becomes `\ufffd`, so both stay visible.
pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while let Some(k) = bytes[i..].iter().position(|b| SPECIAL[*b as usize]) {
        i += k;
        let b = bytes[i];
        let (escape, width): (Option<&str>, usize) = match b {
            b'"' => (Some("\\\""), 1),
            b'\\' => (Some("\\\\"), 1),
            b'\n' => (Some("\\n"), 1),
            b'\r' => (Some("\\r"), 1),
            b'\t' => (Some("\\t"), 1),
            0xEF if bytes.get(i + 1..i + 3) == Some(&[0xBF, 0xBD]) => (Some("\\ufffd"), 3),
            0xEF => {
                i += 1;
                continue;
            }
            _ => (None, 1),
        };
        out.push_str(&s[start..i]);
        match escape {
            Some(e) => out.push_str(e),
            None => {
                out.push_str("\\u00");
                out.push(HEX[(b >> 4) as usize] as char);
                out.push(HEX[(b & 0xf) as usize] as char);
            }
        }
        i += width;
        start = i;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Bytes that need a look when writing a JSON string: quote, backslash, controls, DEL,
/// and 0xEF (the first byte of U+FFFD).
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t[0x7f] = true;
    t[0xEF] = true;
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `2026-11-22T10:30:00.123Z`.
pub fn push_rfc3339(out: &mut String, ms: i64) {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    use std::fmt::Write;
    let _ = write!(
        out,
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    );
}

/// Parses RFC 3339 / ISO 8601 date-times (`T` or space, fraction optional, `Z` or
/// `±HH:MM`/`±HHMM`); a time without zone is taken as UTC.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = &s[r];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, mo, d, h, mi, se) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    let mut i = 19;
    let mut millis = 0;
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let frac = &s[start..i];
        if frac.is_empty() {
            return None;
        }
        millis = format!("{:0<3}", &frac[..frac.len().min(3)])
            .parse::<i64>()
            .ok()?;
    }
    let offset_s = match &s[i..] {
        "" | "Z" | "z" => 0,
        tz if tz.len() == 6 || tz.len() == 5 => {
            let sign = match tz.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = tz[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|c| c.is_ascii_digit()) {
                return None;
            }
            sign * (digits[..2].parse::<i64>().ok()? * 3600 + digits[2..].parse::<i64>().ok()? * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(y, mo, d);
    Some((days * 86_400 + h * 3600 + mi * 60 + se - offset_s) * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_000_000_000; // 2026-11-18

    fn run(stream: Stream, options: &Options, lines: &[&[u8]]) -> Vec<Event> {
        let mut s = Structurer::new(stream, options);
        let mut out = Vec::new();
        for line in lines {
            s.push(line, NOW, &mut out);
        }
        s.flush(&mut out);
        out
    }

    fn parsed(e: &Event) -> serde_json::Value {
        serde_json::from_str(&e.json).unwrap_or_else(|err| panic!("{err}: {}", e.json))
    }

    #[test]
    fn text_line_becomes_an_object() {
        let out = run(
            Stream::Stdout,
            &Options::default(),
            &[b"2026-11-22 10:30:01 WARN [http] slow upstream"],
        );
        let v = parsed(&out[0]);
        assert_eq!(
            v["message"],
            "2026-11-22 10:30:01 WARN [http] slow upstream"
        );
        assert_eq!(v["level"], "warn");
        assert_eq!(v["stream"], "stdout");
        assert_eq!(
            parse_rfc3339_ms(v["timestamp"].as_str().unwrap()),
            Some(NOW)
        );
        assert_eq!(out[0].timestamp_ms, NOW);
    }

    #[test]
    fn json_line_is_kept_as_written_with_its_timestamp() {
        let line = br#"{"level":"info","time":"2026-11-18T08:00:00.250Z","msg":"hi","n":1}"#;
        let out = run(Stream::Stdout, &Options::default(), &[line]);
        assert_eq!(out[0].json.as_bytes(), line);
        assert_eq!(
            out[0].timestamp_ms,
            parse_rfc3339_ms("2026-11-18T08:00:00.250Z").unwrap()
        );
    }

    #[test]
    fn epoch_seconds_and_millis() {
        for (field, expect) in [
            (format!("{{\"ts\":{}}}", NOW / 1000 - 60), NOW - 60_000),
            (format!("{{\"timestamp\":{}}}", NOW - 5), NOW - 5),
            (format!("{{\"@timestamp\":\"{}\"}}", NOW - 7), NOW - 7),
            (format!("{{\"ts\":{}.5}}", NOW / 1000 - 1), NOW - 500),
        ] {
            let out = run(Stream::Stdout, &Options::default(), &[field.as_bytes()]);
            assert_eq!(out[0].timestamp_ms, expect, "{field}");
        }
    }

    #[test]
    fn timestamps_outside_the_accepted_window_get_receive_time() {
        let recent = NOW - 23 * 3600 * 1000;
        assert_eq!(accept_timestamp(Some(recent), NOW), recent);
        assert_eq!(accept_timestamp(Some(NOW - 3 * 24 * 3600 * 1000), NOW), NOW);
        assert_eq!(
            accept_timestamp(Some(NOW - 15 * 24 * 3600 * 1000), NOW),
            NOW
        );
        assert_eq!(accept_timestamp(Some(NOW + 3 * 3600 * 1000), NOW), NOW);
        assert_eq!(
            accept_timestamp(Some(NOW + 3600 * 1000), NOW),
            NOW + 3600 * 1000
        );
    }

    #[test]
    fn context_is_appended() {
        let opts = Options {
            context: Some(Context {
                task_id: "abc123".into(),
                container_name: "web".into(),
                task_definition: "web:7".into(),
            }),
            ..Options::default()
        };
        let out = run(Stream::Stderr, &opts, &[b"{\"a\":1}", b"{}", b"plain"]);
        for e in &out {
            assert_eq!(parsed(e)["ecs"]["task_definition"], "web:7", "{}", e.json);
        }
        assert_eq!(parsed(&out[0])["a"], 1);
        assert_eq!(
            parsed(&out[2])["level"],
            "error",
            "unlabelled stderr text is an error"
        );
    }

    #[test]
    fn stack_traces_join_their_event() {
        let lines: &[&[u8]] = &[
            b"Error: connection reset",
            b"    at Socket.onread (node:net:1:12)",
            b"    at TCP.onStreamRead (node:internal:190:23)",
            b"next line",
            b"java.lang.IllegalStateException: boom",
            b"\tat com.example.A.run(A.java:10)",
            b"Caused by: java.io.IOException: eof",
            b"\t... 3 more",
        ];
        let out = run(Stream::Stdout, &Options::default(), lines);
        assert_eq!(out.len(), 3, "{out:#?}");
        assert!(parsed(&out[0])["message"]
            .as_str()
            .unwrap()
            .ends_with("(node:internal:190:23)"));
        assert_eq!(
            parsed(&out[2])["message"].as_str().unwrap().lines().count(),
            4
        );
    }

    #[test]
    fn python_traceback_is_one_event() {
        let lines: &[&[u8]] = &[
            b"Traceback (most recent call last):",
            b"  File \"app.py\", line 3, in <module>",
            b"    main()",
            b"ValueError: bad value",
            b"after",
        ];
        let out = run(Stream::Stderr, &Options::default(), lines);
        assert_eq!(out.len(), 2, "{out:#?}");
        assert!(parsed(&out[0])["message"]
            .as_str()
            .unwrap()
            .ends_with("ValueError: bad value"));
    }

    #[test]
    fn pem_block_is_one_event() {
        let lines: &[&[u8]] = &[
            b"-----BEGIN RSA PRIVATE KEY-----",
            b"MIIEowIBAAKCAQEA",
            b"abcdef==",
            b"-----END RSA PRIVATE KEY-----",
            b"done",
        ];
        let out = run(Stream::Stdout, &Options::default(), lines);
        assert_eq!(out.len(), 2, "{out:#?}");
    }

    #[test]
    fn multiline_off_keeps_lines_apart() {
        let opts = Options {
            multiline: false,
            ..Options::default()
        };
        let out = run(Stream::Stdout, &opts, &[b"a", b"  b"]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn empty_lines_are_never_events() {
        let out = run(Stream::Stdout, &Options::default(), &[b"", b"   ", b"\r"]);
        assert!(out.is_empty());
    }

    #[test]
    fn invalid_utf8_nul_and_controls_are_escaped_not_dropped() {
        let out = run(
            Stream::Stdout,
            &Options::default(),
            &[b"bad \xff\xfe byte, nul \x00 bell \x07 end"],
        );
        assert!(
            out[0]
                .json
                .contains("bad \\ufffd\\ufffd byte, nul \\u0000 bell \\u0007 end"),
            "{}",
            out[0].json
        );
        assert_eq!(
            parsed(&out[0])["message"],
            "bad \u{fffd}\u{fffd} byte, nul \u{0} bell \u{7} end"
        );
    }

    #[test]
    fn ansi_colours_are_stripped_or_kept() {
        let line = b"\x1b[31mred\x1b[0m text";
        let out = run(Stream::Stdout, &Options::default(), &[line]);
        assert_eq!(parsed(&out[0])["message"], "red text");
        let keep = Options {
            strip_ansi: false,
            ..Options::default()
        };
        let out = run(Stream::Stdout, &keep, &[line]);
        assert_eq!(parsed(&out[0])["message"], "\u{1b}[31mred\u{1b}[0m text");
    }

    #[test]
    fn broken_json_is_shipped_as_text() {
        let out = run(Stream::Stdout, &Options::default(), &[b"{\"a\": 1,"]);
        assert_eq!(parsed(&out[0])["message"], "{\"a\": 1,");
    }

    #[test]
    fn pause_ends_a_pending_event() {
        let mut s = Structurer::new(Stream::Stdout, &Options::default());
        let mut out = Vec::new();
        s.push(b"first", NOW, &mut out);
        s.flush_if_older(NOW + 10, Duration::from_millis(100), &mut out);
        assert!(out.is_empty());
        s.flush_if_older(NOW + 100, Duration::from_millis(100), &mut out);
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn rfc3339_round_trip_and_offsets() {
        let mut s = String::new();
        push_rfc3339(&mut s, NOW + 123);
        assert_eq!(parse_rfc3339_ms(&s), Some(NOW + 123));
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01T01:00:00+01:00"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-01 00:00:01.5"), Some(1500));
        assert_eq!(parse_rfc3339_ms("2026-02-30Tnope"), None);
        assert_eq!(
            parse_rfc3339_ms("2000-03-01T00:00:00Z"),
            Some(951_868_800_000)
        );
    }

    #[test]
    fn level_words() {
        assert_eq!(text_level("[error] x"), Some("error"));
        assert_eq!(text_level("ERROR x"), Some("error"));
        assert_eq!(text_level("informal errors"), None);
        assert_eq!(text_level("Info x"), None);
    }
}
