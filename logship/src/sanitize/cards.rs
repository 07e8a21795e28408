//! Payment card numbers: 13–19 digits (single spaces or dashes allowed between them),
//! not part of a longer word or number, with a card network's prefix and length, and a
//! valid Luhn check digit. Request ids, timestamps and hashes fail one of these.
//!
//! Two passes, both linear. The first ([`may_hold`]) reads the text 64 bytes at a time
//! as bit masks and says whether anywhere 13 digits stand with nothing but single
//! spaces or dashes between them; most lines have no such run (a timestamp has 10 or
//! 14 digits, but its `:` and `T` break it), and are done. Only a text with one gets the
//! second pass, which reads each candidate once (at most 19 digits and their
//! separators) and resumes after it. Whether a number sits in a JSON string or is a
//! bare value is the parent's business when it applies the cut.
//!
//! The first pass's masks serve the hex search of loaded secrets too ([`super::hex`]):
//! one more mask, hex digits, spaces and commas, tells whether a run long enough to
//! hold a secret's hex or its list of bytes stands anywhere, so that no other pass
//! reads every byte for it.
//!
//! The masks are made 32 bytes at a time by AVX2 where the CPU has it, chosen at run
//! time as [`super::prefilter`] chooses its pass; that call is this module's only
//! `unsafe`. Elsewhere SSE2 makes them 16 at a time (every x86-64 CPU has it), and
//! other targets in plain Rust.
//!
//! Not here: any other kind of number.

#![allow(unsafe_code)]

use super::{Cut, Detector, Scan};

/// The most digits a card number has.
const MAX_DIGITS: usize = 19;
/// The fewest.
const MIN_DIGITS: usize = 13;

/// The card numbers of the scan's text from its head. The same pass of block masks
/// tells, with `hex_min`, whether that text has a run of hex digits, spaces and commas
/// of `hex_min` bytes or more (where a loaded secret printed as hex or as a list of
/// bytes could stand: [`super::hex`]): the return value.
pub(super) fn find(scan: &mut Scan, hex_min: Option<usize>) -> bool {
    let from = scan.bytes().get(scan.head..).unwrap_or_default();
    scan.work += from.len();
    let gate = gate(from, hex_min);
    if gate.card {
        find_all(scan);
    }
    gate.hex
}

/// The candidate pass: every run of digits is read and checked.
fn find_all(scan: &mut Scan) {
    let bytes = scan.bytes();
    let mut i = 0;
    while i < bytes.len() {
        // Skip to the next digit; most bytes are not digits.
        match next_digit(&bytes[i..]) {
            Some(k) => i += k,
            None => break,
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
        let mut digits = [0u8; MAX_DIGITS];
        let mut n = 0;
        let mut j = i;
        let mut last_digit_end = i;
        while j < bytes.len() {
            let b = bytes[j];
            if b.is_ascii_digit() {
                if n == MAX_DIGITS {
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
        if (MIN_DIGITS..=MAX_DIGITS).contains(&n)
            && !longer
            && card_network(&digits[..n])
            && luhn(&digits[..n])
        {
            scan.push(Cut::new(start, end, Detector::Card));
        }
        i = end.max(i + 1);
    }
    scan.work += bytes.len();
}

/// Whether `bytes` may hold a card number: false only when no [`MIN_DIGITS`] digits
/// stand in a run of digits and single separators (what [`find_all`] reads as one
/// candidate).
///
/// The text is read as 64-byte blocks turned into bit masks (digits, separators), and
/// each block is looked at together with the one before it, as one 128-bit window: a
/// candidate of at most [`MAX_DIGITS`] digits and their separators spans at most 37
/// bytes, so some window holds all of it. In a window, a separator counts when a digit
/// stands on either side; the runs of 13 bits or more are found with four shifts, and
/// only for those (rare) are the digits counted.
#[cfg(test)]
pub(super) fn may_hold(bytes: &[u8]) -> bool {
    gate(bytes, None).card
}

/// What one pass of block masks over a text found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Gate {
    /// It may hold a card number ([`may_hold`]).
    card: bool,
    /// It holds a run of hex digits, spaces and commas of the length asked for.
    hex: bool,
}

/// [`may_hold`], and with `hex_min` whether a run of hex digits, spaces and commas of
/// that many bytes or more stands in `bytes` ([`HexRun`]), from the same masks.
/// Without `hex_min` the pass ends at the first card candidate.
///
/// With AVX2 (asked of the CPU once, as for [`super::prefilter`]) the masks are made 32
/// bytes at a time, half the instructions of SSE2's 16: this pass reads every byte of
/// every text, about a tenth of the pipeline's instructions on the corpus before.
fn gate(bytes: &[u8], hex_min: Option<usize>) -> Gate {
    #[cfg(target_arch = "x86_64")]
    if super::prefilter::avx2() {
        // SAFETY: the CPU has AVX2 and POPCNT, all `gate_avx2` is compiled for beyond
        // x86-64's baseline.
        return unsafe { gate_avx2(bytes, hex_min) };
    }
    gate_with(bytes, hex_min, Masks::of)
}

/// [`gate`] with the masks made by AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,popcnt")]
fn gate_avx2(bytes: &[u8], hex_min: Option<usize>) -> Gate {
    gate_with(bytes, hex_min, |block| Masks::of_avx2(block))
}

/// [`gate`], each block's masks made by `of`.
#[inline(always)]
fn gate_with(bytes: &[u8], hex_min: Option<usize>, of: impl Fn(&[u8; 64]) -> Masks) -> Gate {
    let mut found = Gate::default();
    let mut hex = hex_min.map(HexRun::new);
    let mut before = Masks::default();
    let mut blocks = bytes.chunks_exact(64);
    for block in &mut blocks {
        let Ok(block) = <&[u8; 64]>::try_from(block) else {
            break;
        };
        let now = of(block);
        found.card = found.card || before.then(now).may_hold();
        if let Some(run) = &mut hex {
            run.push(now.hex);
        }
        found.hex = hex.as_ref().is_some_and(|run| run.found);
        if found.card && (hex.is_none() || found.hex) {
            return found;
        }
        before = now;
    }
    let rest = blocks.remainder().len();
    if rest == 0 {
        return found;
    }
    // The last part of a block: the text's last 64 bytes, shifted so that its first
    // byte is bit 0 (copied into a block of zeros when the text is shorter).
    let last = match bytes
        .len()
        .checked_sub(64)
        .and_then(|from| <&[u8; 64]>::try_from(&bytes[from..]).ok())
    {
        Some(block) => of(block).shifted(64 - rest),
        None => {
            let mut block = [0u8; 64];
            block[..rest].copy_from_slice(&bytes[..rest]);
            of(&block)
        }
    };
    found.card = found.card || before.then(last).may_hold();
    if let Some(run) = &mut hex {
        run.push(last.hex);
        found.hex = run.found;
    }
    found
}

/// Whether a run of `min` or more set bits stands in the masks pushed, in the order of
/// the text: a run inside a block by shifts, one across blocks by the set bits it
/// carries from the block before.
#[derive(Debug)]
struct HexRun {
    min: usize,
    /// The set bits at the top of the blocks so far (the run the next block may go on).
    carry: usize,
    found: bool,
}

impl HexRun {
    fn new(min: usize) -> HexRun {
        HexRun {
            min: min.max(1),
            carry: 0,
            found: false,
        }
    }

    fn push(&mut self, bits: u64) {
        if self.found {
            return;
        }
        let low = bits.trailing_ones() as usize;
        if low == 64 {
            self.carry += 64;
            self.found = self.carry >= self.min;
            return;
        }
        // A block with fewer set bits than a run needs holds none inside it (most
        // blocks of prose: its spaces and the letters a–f).
        self.found = self.carry + low >= self.min
            || (bits.count_ones() as usize >= self.min && has_run(bits, self.min));
        self.carry = bits.leading_ones() as usize;
    }
}

/// Whether `bits` holds `min` (1 to 64) or more set bits in a row.
fn has_run(bits: u64, min: usize) -> bool {
    if min == 0 || min > 64 {
        return false;
    }
    // Bit `k` of `run`: bits `k..k + len` of `bits` are all set.
    let mut run = bits;
    let mut len = 1;
    while len * 2 <= min {
        run &= run >> len;
        len *= 2;
    }
    run &= run >> (min - len);
    run != 0
}

/// The bytes [`Masks::of`] and [`Masks::of_avx2`] compare every byte with, in this
/// order: `b - b'0' + 0x80` as a signed byte is below `0x80 + 10` for a digit only (the
/// shift, ten); a space, a dash, a comma; the same test for `a`–`f` of a byte made
/// lower case (`| 0x20`: the case bit, the shift, six).
const SPLATS: [u8; 8] = [
    0x80 - b'0',
    0x80 + 10,
    b' ',
    b'-',
    b',',
    0x20,
    0x80 - b'a',
    0x80 + 6,
];

/// Bit `k` of each mask stands for byte `k` of a block.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Masks {
    digits: u64,
    separators: u64,
    /// Hex digits in either case, spaces and commas ([`super::hex`]).
    hex: u64,
}

impl Masks {
    /// The masks of a block of 64 bytes (`block` is never shorter): SSE2 compares and
    /// `movemask` on x86-64, where SSE2 is always there.
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; 64]) -> Masks {
        use safe_arch::{
            add_i8_m128i, bitor_m128i, cmp_eq_mask_i8_m128i, cmp_lt_mask_i8_m128i,
            load_unaligned_m128i, move_mask_i8_m128i, set_splat_i8_m128i,
        };
        let [shift, ten, space, dash, comma, lower, letter, six] =
            SPLATS.map(|b| set_splat_i8_m128i(b as i8));
        let mut m = Masks::default();
        for (k, sixteen) in block.chunks_exact(16).take(4).enumerate() {
            let mut lane = [0u8; 16];
            lane.copy_from_slice(sixteen);
            let v = load_unaligned_m128i(&lane);
            let digits = cmp_lt_mask_i8_m128i(add_i8_m128i(v, shift), ten);
            let spaces = cmp_eq_mask_i8_m128i(v, space);
            let separators = bitor_m128i(spaces, cmp_eq_mask_i8_m128i(v, dash));
            let letters = cmp_lt_mask_i8_m128i(add_i8_m128i(bitor_m128i(v, lower), letter), six);
            let hex = bitor_m128i(
                bitor_m128i(digits, letters),
                bitor_m128i(spaces, cmp_eq_mask_i8_m128i(v, comma)),
            );
            // `movemask` sets the low 16 bits only.
            m.digits |= u64::from(move_mask_i8_m128i(digits) as u16) << (16 * k);
            m.separators |= u64::from(move_mask_i8_m128i(separators) as u16) << (16 * k);
            m.hex |= u64::from(move_mask_i8_m128i(hex) as u16) << (16 * k);
        }
        m
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; 64]) -> Masks {
        Masks::portable(block)
    }

    /// [`Masks::of`] by AVX2: 32 bytes a compare. Each half is put together from four
    /// words read by safe code (the compiler makes one load of them).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    #[inline]
    fn of_avx2(block: &[u8; 64]) -> Masks {
        use std::arch::x86_64::{
            __m256i, _mm256_add_epi8, _mm256_cmpeq_epi8, _mm256_cmpgt_epi8, _mm256_movemask_epi8,
            _mm256_or_si256, _mm256_set1_epi8, _mm256_setr_epi64x,
        };
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&block[at..at + 8]);
            i64::from_le_bytes(w)
        };
        let half = |at: usize| -> __m256i {
            _mm256_setr_epi64x(word(at), word(at + 8), word(at + 16), word(at + 24))
        };
        let [shift, ten, space, dash, comma, lower, letter, six] =
            SPLATS.map(|b| _mm256_set1_epi8(b as i8));
        let mut m = Masks::default();
        for k in 0..2 {
            let v = half(32 * k);
            let digits = _mm256_cmpgt_epi8(ten, _mm256_add_epi8(v, shift));
            let spaces = _mm256_cmpeq_epi8(v, space);
            let separators = _mm256_or_si256(spaces, _mm256_cmpeq_epi8(v, dash));
            let letters =
                _mm256_cmpgt_epi8(six, _mm256_add_epi8(_mm256_or_si256(v, lower), letter));
            let hex = _mm256_or_si256(
                _mm256_or_si256(digits, letters),
                _mm256_or_si256(spaces, _mm256_cmpeq_epi8(v, comma)),
            );
            let at = 32 * k;
            m.digits |= u64::from(_mm256_movemask_epi8(digits) as u32) << at;
            m.separators |= u64::from(_mm256_movemask_epi8(separators) as u32) << at;
            m.hex |= u64::from(_mm256_movemask_epi8(hex) as u32) << at;
        }
        m
    }

    /// The same masks in plain Rust: a flag byte per byte, which the compiler turns
    /// into vector compares, packed eight flags at a time by one multiplication.
    #[cfg_attr(target_arch = "x86_64", allow(dead_code))]
    fn portable(block: &[u8]) -> Masks {
        let mut digits = [0u8; 64];
        let mut separators = [0u8; 64];
        let mut hex = [0u8; 64];
        for (((&b, d), s), h) in block
            .iter()
            .zip(&mut digits)
            .zip(&mut separators)
            .zip(&mut hex)
        {
            *d = if b.is_ascii_digit() { 0x80 } else { 0 };
            *s = if matches!(b, b' ' | b'-') { 0x80 } else { 0 };
            *h = if super::hex::in_run(b) { 0x80 } else { 0 };
        }
        Masks {
            digits: pack(&digits),
            separators: pack(&separators),
            hex: pack(&hex),
        }
    }

    /// The masks of the block's last `64 - by` bytes, as the first.
    fn shifted(self, by: usize) -> Masks {
        let shift = |mask: u64| mask.checked_shr(by as u32).unwrap_or(0);
        Masks {
            digits: shift(self.digits),
            separators: shift(self.separators),
            hex: shift(self.hex),
        }
    }

    /// The window of this block followed by `next`.
    fn then(self, next: Masks) -> Window {
        Window {
            digits: u128::from(self.digits) | u128::from(next.digits) << 64,
            separators: u128::from(self.separators) | u128::from(next.separators) << 64,
        }
    }
}

/// Sets bit `k` of the result for each of the 64 flags whose high bit is set.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn pack(flags: &[u8; 64]) -> u64 {
    let mut mask = 0;
    for (k, eight) in flags.chunks_exact(8).enumerate() {
        let mut word = [0u8; 8];
        word.copy_from_slice(eight);
        // Bit 7 of byte j lands on bit 56 + j; nothing else reaches the top byte.
        let high = u64::from_le_bytes(word) & 0x8080_8080_8080_8080;
        mask |= (high.wrapping_mul(0x0002_0408_1020_4081) >> 56) << (8 * k);
    }
    mask
}

/// Two blocks' masks.
struct Window {
    digits: u128,
    separators: u128,
}

impl Window {
    fn may_hold(&self) -> bool {
        let d = self.digits;
        // Most windows (prose, a timestamp's first half) have too few digits at all.
        if d.count_ones() < MIN_DIGITS as u32 {
            return false;
        }
        let run = d | (self.separators & (d << 1) & (d >> 1));
        // Bit k of `long`: bits k..k + 13 of `run` are all set.
        let two = run & (run >> 1);
        let four = two & (two >> 2);
        let eight = four & (four >> 4);
        let long = eight & (eight >> 5);
        if long == 0 {
            return false;
        }
        // Only the runs of 13 bits or more: where one starts, its bit of `long` is set.
        let mut starts = run & !(run << 1) & long;
        while starts != 0 {
            let at = starts.trailing_zeros();
            let len = (run >> at).trailing_ones();
            let bits = u128::MAX.checked_shr(128 - len).unwrap_or(0) << at;
            if (d & bits).count_ones() >= MIN_DIGITS as u32 {
                return true;
            }
            starts &= starts - 1;
        }
        false
    }
}

/// Offset of the first ASCII digit in `buf`. Digits often come close together
/// (`10:30:01`): a short look by hand first. Then whole chunks without one are passed
/// over with a branch-free test per chunk (which the compiler vectorizes), and the
/// digit is looked for byte by byte.
fn next_digit(buf: &[u8]) -> Option<usize> {
    const NEAR: usize = 4;
    let near = buf.len().min(NEAR);
    if let Some(k) = buf[..near].iter().position(u8::is_ascii_digit) {
        return Some(k);
    }
    next_digit_far(&buf[near..]).map(|k| near + k)
}

/// [`next_digit`] past the first few bytes.
fn next_digit_far(buf: &[u8]) -> Option<usize> {
    const CHUNK: usize = 16;
    let mut at = 0;
    for chunk in buf.chunks_exact(CHUNK) {
        if chunk.iter().fold(false, |any, b| any | b.is_ascii_digit()) {
            break;
        }
        at += CHUNK;
    }
    buf[at..]
        .iter()
        .position(u8::is_ascii_digit)
        .map(|k| at + k)
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
    if n < 4 {
        return false;
    }
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
    use super::super::Mode;
    use super::*;
    use proptest::prelude::*;

    /// The cuts of the candidate pass alone, ungated.
    fn cuts(text: &str) -> usize {
        let mut scan = Scan::new(text, Mode::Text);
        find_all(&mut scan);
        scan.cuts.len()
    }

    #[test]
    fn masks_keep_the_order_of_the_bytes() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut block = [0u8; 64];
            for b in &mut block {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                *b = b"0123456789 -a.\x80\xffFgG@`\xc1\xe6,"[(x % 24) as usize];
            }
            let m = Masks::of(&block);
            assert_eq!(m, Masks::portable(&block));
            #[cfg(target_arch = "x86_64")]
            if super::super::prefilter::avx2() {
                // SAFETY: the CPU has AVX2.
                assert_eq!(m, unsafe { Masks::of_avx2(&block) });
            }
            for (k, b) in block.iter().enumerate() {
                assert_eq!(m.digits >> k & 1 == 1, b.is_ascii_digit(), "{k}");
                assert_eq!(m.separators >> k & 1 == 1, matches!(b, b' ' | b'-'), "{k}");
                assert_eq!(
                    m.hex >> k & 1 == 1,
                    b.is_ascii_hexdigit() || matches!(b, b' ' | b','),
                    "{k}"
                );
            }
        }
    }

    #[test]
    fn the_gate_passes_runs_of_13_digits_only() {
        for line in [
            "2026-11-22 10:30:01 INFO  [http] retry latency",
            r#"{"time": "2026-11-22T10:30:02.677Z", "reqId": "3eabedcbbaa80dd4", "latencyMs": 168}"#,
            "ids 123456789012  1-2-3-4-5-6-7-8-9-0-1-2 and 12  345678901234",
            "",
        ] {
            assert!(!may_hold(line.as_bytes()), "{line}");
        }
        for line in [
            "4111 1111 1111 1111",
            "1-2-3-4-5-6-7-8-9-0-1-2-3",
            "ts 1795417380506",
            &format!("{}card 5500-0000-0000-0004 ok", "x".repeat(57)),
        ] {
            assert!(may_hold(line.as_bytes()), "{line}");
        }
    }

    /// Whether a run of digits and separators with a digit on each side holds 13
    /// digits, a byte at a time: the reference for the gate.
    fn has_card_run(bytes: &[u8]) -> bool {
        let digit = |k: usize| bytes.get(k).is_some_and(u8::is_ascii_digit);
        let mut digits = 0;
        for (k, b) in bytes.iter().enumerate() {
            if b.is_ascii_digit() {
                digits += 1;
            } else if !(matches!(b, b' ' | b'-') && k > 0 && digit(k - 1) && digit(k + 1)) {
                digits = 0;
            }
            if digits >= MIN_DIGITS {
                return true;
            }
        }
        false
    }

    /// Valid card numbers of several networks and lengths.
    const CARDS: [&str; 6] = [
        "4111111111111111",
        "5500000000000004",
        "340000000000009",
        "6011000000000004",
        "30569309025904",
        "4222222222222",
    ];

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

        /// The gate never turns away a text the candidate pass finds a card in: a card
        /// with any separators at any offset, among any bytes of the kinds it reads.
        #[test]
        fn the_gate_lets_every_card_through(
            before in "[0-9 .a-]{0,150}",
            card in 0..CARDS.len(),
            seps in proptest::collection::vec(prop_oneof![Just(""), Just(" "), Just("-")], 19),
            after in "[0-9 .a-]{0,80}",
        ) {
            let mut text = before;
            text.push(' ');
            for (k, digit) in CARDS[card].chars().enumerate() {
                if k > 0 {
                    text.push_str(seps[k]);
                }
                text.push(digit);
            }
            text.push(' ');
            text.push_str(&after);
            prop_assert!(cuts(&text) == 0 || may_hold(text.as_bytes()), "{text:?}");
            prop_assert!(may_hold(text.as_bytes()), "{text:?}");
        }

        #[test]
        fn the_gate_is_never_wrong_on_digit_soup(text in "[0-9 .a-]{0,300}") {
            prop_assert!(cuts(&text) == 0 || may_hold(text.as_bytes()), "{text:?}");
        }

        /// The gate says exactly whether some run of digits and single separators
        /// holds 13 digits: runs inside a block, across one or several blocks' edges,
        /// at the text's start and end, separators on a block's first and last byte.
        #[test]
        fn the_gate_is_the_run_of_digits_read_a_byte_at_a_time(
            text in prop_oneof![
                "[0-9 -]{0,400}",
                "[0-9 .a-]{0,300}",
                "([0-9]{1,20}[ -]{1,2}){0,30}",
                "(x{0,70}[0-9]{1,14}[ -]?){0,12}",
                // Separators on and around the blocks' edges (bytes 63, 64, 127, 128).
                "x{50,66}([0-9]{1,3}[ -]){1,8}[0-9]{0,14}",
                "x{115,130}([0-9]{1,3}[ -]){1,8}[0-9]{0,14}",
            ]
        ) {
            prop_assert_eq!(may_hold(text.as_bytes()), has_card_run(text.as_bytes()), "{:?}", text);
            // The masks by SSE2 (a CPU without AVX2) give the same.
            prop_assert_eq!(gate_with(text.as_bytes(), None, Masks::of), gate(text.as_bytes(), None));
        }

        /// The same pass says whether a run of hex digits, spaces and commas of `min`
        /// bytes or more stands anywhere, exactly (runs inside a block, across blocks,
        /// at the text's end), and still finds the card candidates.
        #[test]
        fn the_gate_finds_hex_runs_exactly(
            text in super::super::hex::hexish_text(700),
            min in 1usize..200,
        ) {
            let mut any = false;
            super::super::hex::runs(&text, min, |_, _| any = true);
            let found = gate(&text, Some(min));
            prop_assert_eq!(gate_with(&text, Some(min), Masks::of), found);
            prop_assert_eq!(found.hex, any);
            prop_assert_eq!(found.card, may_hold(&text));
        }
    }

    #[test]
    fn runs_of_set_bits_are_found_by_shifts() {
        assert!(has_run(0b0111_1110, 6) && !has_run(0b0111_1110, 7));
        assert!(has_run(u64::MAX, 64) && !has_run(u64::MAX << 1, 64));
        assert!(has_run(0xf000_0000_0000_0000, 4) && !has_run(0xf000_0000_0000_0000, 5));
        assert!(!has_run(0, 1) && !has_run(u64::MAX, 65));
    }

    #[test]
    fn luhn_and_networks() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<u8>>();
        assert!(luhn(&d("4111111111111111")) && card_network(&d("4111111111111111")));
        assert!(!luhn(&d("4111111111111112")));
        assert!(!card_network(&d("8000000000000009")));
        assert!(card_network(&d("340000000000009")));
    }
}
