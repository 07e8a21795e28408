//! Payment card numbers: 13–19 digits (single spaces or dashes allowed between them),
//! not part of a longer word or number, with a card network's prefix and length, and a
//! valid Luhn check digit. Request ids, timestamps and hashes fail one of these.
//!
//! One forward pass over the text: each candidate is read once (at most 19 digits and
//! their separators) and the pass resumes after it. Whether a number sits in a JSON
//! string or is a bare value is the parent's business when it applies the cut.
//!
//! Not here: any other kind of number.

use super::{Cut, Detector, Scan};

/// The most digits a card number has.
const MAX_DIGITS: usize = 19;
/// The fewest.
const MIN_DIGITS: usize = 13;

pub(super) fn find(scan: &mut Scan) {
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
    use super::*;

    #[test]
    fn luhn_and_networks() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<u8>>();
        assert!(luhn(&d("4111111111111111")) && card_network(&d("4111111111111111")));
        assert!(!luhn(&d("4111111111111112")));
        assert!(!card_network(&d("8000000000000009")));
        assert!(card_network(&d("340000000000009")));
    }
}
