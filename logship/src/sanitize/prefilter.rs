//! Where a trigger word may start: a pass of 32 bytes at a time that lets the walk of
//! the trigger automaton skip the stretches of a text no word starts in.
//!
//! The walk ([`super::walk`]) is a table load per byte whose address depends on the
//! load before it: about 2 cycles a byte in four lanes, the largest part of the
//! pipeline. In an app's log most bytes start no word (the corpus has a word every 230
//! bytes), so this pass marks each byte whose next three bytes may begin one, and the
//! walk starts only there. The test is Teddy's (Hyperscan's, and aho-corasick's packed
//! searcher's): the words' first three bytes ("heads") are put in 8 buckets, and a
//! table per byte position maps each nibble of a byte to the buckets with that nibble
//! there; a position is marked when some bucket has both of the byte's nibbles at each
//! of the three. It may mark too much (a bucket of `sec` and `pas` takes `pes` too),
//! never too little: a word's start is always marked. Words are matched in any ASCII
//! casing, so the heads and the text are read with bit 5 set ([`fold`]); a word shorter
//! than three bytes takes any byte after its end, and a byte past the text's end is
//! read as 0. Which head goes in which bucket decides how much is marked besides the
//! words: [`assign`], by a model of log text, not by any one log.
//!
//! `vpshufb`, the byte shuffle the test is made of, is AVX2 (32 bytes) or SSSE3 (16):
//! not in x86-64's baseline, so the pass is chosen at run time, as memchr, aho-corasick
//! and simdutf8 choose theirs. That takes `unsafe`, here only: a function compiled for
//! AVX2 is called after the standard library has found that the CPU has it, and it
//! loads each 32 bytes of the text from an array of exactly that size, which safe code
//! cut and bounds-checked. Without AVX2 (an older CPU, or not x86-64: Graviton) there is
//! no prefilter, and the walk reads every byte in lanes as before.
//!
//! Not here: what the walk does at a mark (it walks the automaton from there until no
//! word is in progress: [`super::walk`]), or when a piece is better walked in lanes
//! ([`Prefilter::sparse`]).

#![allow(unsafe_code)]

/// How many bytes the test looks at from each position.
const SPAN: usize = 3;
/// Teddy's buckets: one bit of a byte each.
const BUCKETS: usize = 8;
/// How many bytes of a piece make a mark worth skipping to: with more marks than one
/// every this many bytes, the piece is walked in lanes. A walk from a mark reads the
/// word or the part of one there, a byte at a time and about three times as slowly as
/// a byte in the lanes.
const SPARSE: usize = 16;

/// The nibble tables of the words' first bytes.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Prefilter {
    /// `lo[j][n]`: the buckets with a word whose byte `j` ([`fold`]ed) has `n` as its
    /// low nibble.
    lo: [[u8; 16]; SPAN],
    /// `hi[j][n]`: the same for the high nibble.
    hi: [[u8; 16]; SPAN],
    /// A piece with more marks than one per this many bytes is walked in lanes
    /// ([`SPARSE`]; 0 in tests that walk every piece from its marks).
    sparse: usize,
}

impl std::fmt::Debug for Prefilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prefilter")
            .field("usable", &self.usable())
            .finish()
    }
}

/// The built-in trigger words' tables: [`Prefilter::new`] of them, which places 31
/// heads in 8 buckets by trying moves (a few hundred thousand steps, too many for the
/// agent's start); `the_built_in_prefilter_is_current` in the tests holds them to it.
const BUILTIN: ([[u8; 16]; SPAN], [[u8; 16]; SPAN]) = (
    [
        [38, 44, 65, 27, 8, 32, 0, 128, 10, 0, 64, 0, 0, 0, 16, 0],
        [20, 66, 20, 4, 0, 98, 0, 34, 128, 168, 0, 5, 128, 0, 0, 74],
        [
            129, 65, 129, 199, 161, 145, 1, 1, 3, 5, 41, 9, 1, 17, 3, 201,
        ],
    ],
    [
        [0, 0, 0, 64, 0, 0, 252, 47, 0, 0, 0, 0, 0, 0, 0, 0],
        [0, 0, 64, 0, 0, 0, 207, 52, 0, 0, 0, 0, 0, 0, 0, 0],
        [1, 1, 67, 1, 1, 1, 255, 235, 1, 1, 1, 1, 1, 1, 1, 1],
    ],
);

impl Prefilter {
    /// The prefilter of the built-in trigger words, as generated.
    pub(super) fn builtin() -> Prefilter {
        Prefilter {
            lo: BUILTIN.0,
            hi: BUILTIN.1,
            sparse: SPARSE,
        }
    }

    /// The prefilter of `words` (matched in any ASCII casing). `None` for an empty
    /// word (it would start everywhere).
    pub(super) fn new<S: AsRef<[u8]>>(words: &[S]) -> Option<Prefilter> {
        // In order, and each once: the same words make the same filter whatever their
        // order (and a long list of extra key names is not compared pair by pair).
        let mut set = std::collections::BTreeSet::new();
        for word in words {
            let word = word.as_ref();
            if word.is_empty() {
                return None;
            }
            set.insert(
                word.iter()
                    .take(SPAN)
                    .map(|&b| fold(b))
                    .collect::<Vec<u8>>(),
            );
        }
        // A head that begins with another takes nothing the other does not (`sk` takes
        // any byte after it, so `sk_` and `sk-` too).
        let covered =
            |h: &Vec<u8>| (1..h.len()).any(|n| h.get(..n).is_some_and(|p| set.contains(p)));
        let mut heads: Vec<Vec<u8>> = set.iter().filter(|h| !covered(h)).cloned().collect();
        // The short heads first, each the likelier first: a bucket of its own is where
        // they cost least, while there are empty ones.
        heads.sort_by(|a, b| {
            let chance = |h: &Vec<u8>| Nibbles::of(h).chance();
            a.len().cmp(&b.len()).then(chance(b).total_cmp(&chance(a)))
        });
        let buckets = assign(&heads);
        let mut filter = Prefilter {
            lo: [[0; 16]; SPAN],
            hi: [[0; 16]; SPAN],
            sparse: SPARSE,
        };
        for (head, &k) in heads.iter().zip(&buckets) {
            let bit = 1u8 << k;
            for j in 0..SPAN {
                match head.get(j) {
                    Some(&b) => {
                        filter.lo[j][usize::from(b & 15)] |= bit;
                        filter.hi[j][usize::from(b >> 4)] |= bit;
                    }
                    // A short word: any byte after it.
                    None => {
                        for n in 0..16 {
                            filter.lo[j][n] |= bit;
                            filter.hi[j][n] |= bit;
                        }
                    }
                }
            }
        }
        Some(filter)
    }

    /// The same filter, which has every piece walked from its marks however many (for
    /// the tests and the fuzz target `trigger_walk`).
    pub(super) fn always(mut self) -> Prefilter {
        self.sparse = 0;
        self
    }

    /// The Rust source of [`BUILTIN`] for these tables.
    #[cfg(test)]
    pub(super) fn source(&self) -> String {
        let rows = |t: &[[u8; 16]; SPAN]| {
            t.iter()
                .map(|r| format!("        {r:?},\n"))
                .collect::<String>()
        };
        format!(
            "(\n    [\n{}    ],\n    [\n{}    ],\n)",
            rows(&self.lo),
            rows(&self.hi)
        )
    }

    /// Whether [`Prefilter::mark`] runs at the speed it is for: AVX2 on this CPU (the
    /// standard library asks the CPU once).
    pub(super) fn usable(&self) -> bool {
        avx2()
    }

    /// Marks the positions of `range` in `bytes` where a word may start, in `marks`
    /// (bit `p - range.start`), when they are few enough to skip to; `false` (and
    /// `marks` left as it may be) when the piece is better walked in lanes.
    pub(super) fn sparse(
        &self,
        bytes: &[u8],
        range: std::ops::Range<usize>,
        marks: &mut [u64],
    ) -> bool {
        let len = range.len();
        let count = self.mark(bytes, range, marks);
        count * self.sparse <= len
    }

    /// Sets bit `p - range.start` of `marks` for each `p` in `range` where a word may
    /// start, and clears the others; returns how many it set. `marks` has a bit for
    /// each position of `range` (fewer: the rest are not looked at). Bytes past the end
    /// of `bytes` are taken as 0: a word that starts there cannot end in the text, and a
    /// word shorter than three bytes takes any byte after it.
    pub(super) fn mark(
        &self,
        bytes: &[u8],
        range: std::ops::Range<usize>,
        marks: &mut [u64],
    ) -> usize {
        let range = range.start
            ..range
                .end
                .min(bytes.len())
                .min(range.start + marks.len() * 64);
        #[cfg(target_arch = "x86_64")]
        if avx2() {
            // SAFETY: the CPU has AVX2 and POPCNT, which is all `mark_avx2` is compiled
            // for beyond x86-64's baseline.
            return unsafe { self.mark_avx2(bytes, range, marks) };
        }
        let used = range.len().div_ceil(64);
        marks.iter_mut().take(used).for_each(|m| *m = 0);
        let mut count = 0;
        for p in range.clone() {
            if self.may_start(bytes, p) {
                if let Some(m) = marks.get_mut((p - range.start) / 64) {
                    *m |= 1 << ((p - range.start) % 64);
                    count += 1;
                }
            }
        }
        count
    }

    /// The test at one position, a byte at a time: what [`Prefilter::mark_avx2`] does
    /// for 32.
    pub(super) fn may_start(&self, bytes: &[u8], p: usize) -> bool {
        let mut buckets = u8::MAX;
        for j in 0..SPAN {
            let b = fold(bytes.get(p + j).copied().unwrap_or(0));
            buckets &= self.lo[j][usize::from(b & 15)] & self.hi[j][usize::from(b >> 4)];
        }
        buckets != 0
    }

    /// [`Prefilter::mark`], 32 positions at a time.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,popcnt")]
    fn mark_avx2(&self, bytes: &[u8], range: std::ops::Range<usize>, marks: &mut [u64]) -> usize {
        use std::arch::x86_64::{
            __m256i, _mm256_and_si256, _mm256_broadcastsi128_si256, _mm256_cmpeq_epi8,
            _mm256_loadu_si256, _mm256_movemask_epi8, _mm256_or_si256, _mm256_set1_epi8,
            _mm256_setzero_si256, _mm256_shuffle_epi8, _mm256_srli_epi16, _mm_loadu_si128,
        };
        // SAFETY (both loads): each reads exactly the array it is given, whose size is
        // the vector's.
        let load = |a: &[u8; 32]| -> __m256i { unsafe { _mm256_loadu_si256(a.as_ptr().cast()) } };
        let table = |t: &[u8; 16]| -> __m256i {
            _mm256_broadcastsi128_si256(unsafe { _mm_loadu_si128(t.as_ptr().cast()) })
        };
        let lo = [table(&self.lo[0]), table(&self.lo[1]), table(&self.lo[2])];
        let hi = [table(&self.hi[0]), table(&self.hi[1]), table(&self.hi[2])];
        let nibble = _mm256_set1_epi8(0x0f);
        let case = _mm256_set1_epi8(0x20);
        // Bit `k`: a word may start at `block[k]` (the block's bytes from `k` on).
        let test = |block: &[u8; BLOCK]| -> u32 {
            let mut buckets = _mm256_set1_epi8(-1);
            for j in 0..SPAN {
                let Some(v) = block
                    .get(j..j + 32)
                    .and_then(|s| <&[u8; 32]>::try_from(s).ok())
                else {
                    continue;
                };
                let v = _mm256_or_si256(load(v), case);
                let l = _mm256_shuffle_epi8(lo[j], _mm256_and_si256(v, nibble));
                let h =
                    _mm256_shuffle_epi8(hi[j], _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
                buckets = _mm256_and_si256(buckets, _mm256_and_si256(l, h));
            }
            !(_mm256_movemask_epi8(_mm256_cmpeq_epi8(buckets, _mm256_setzero_si256())) as u32)
        };
        let mut count = 0;
        let mut p = range.start;
        while p < range.end {
            let found = match bytes
                .get(p..p + BLOCK)
                .and_then(|s| <&[u8; BLOCK]>::try_from(s).ok())
            {
                Some(block) => test(block),
                None => {
                    // The text's last bytes, and zeros after them.
                    let mut block = [0u8; BLOCK];
                    let rest = bytes.get(p..).unwrap_or_default();
                    let n = rest.len().min(BLOCK);
                    block[..n].copy_from_slice(&rest[..n]);
                    test(&block)
                }
            };
            let keep = range.end - p;
            let found = if keep < 32 {
                found & ((1 << keep) - 1)
            } else {
                found
            };
            // A word's first half is written over (its second half cleared with it), its
            // second half added: no word of `marks` needs clearing first.
            let at = p - range.start;
            if let Some(m) = marks.get_mut(at / 64) {
                if at.is_multiple_of(64) {
                    *m = u64::from(found);
                } else {
                    *m |= u64::from(found) << 32;
                }
            }
            count += found.count_ones() as usize;
            p += 32;
        }
        count
    }
}

/// A byte as the test reads it: with bit 5 set, which makes an ASCII letter lower case
/// (the automaton matches words in any ASCII casing) and leaves every byte that equals
/// another in some casing equal to it: exact, and one instruction for 32 bytes. Other
/// bytes fold onto one another too (`@` and `` ` ``, `_` and DEL): marks only.
fn fold(b: u8) -> u8 {
    b | 0x20
}

/// The bytes one test of 32 positions reads.
const BLOCK: usize = 32 + SPAN - 1;

/// Has the standard library find out what the CPU has, now (see [`super::ask_the_cpu`]).
pub(super) fn ask_the_cpu() {
    let _ = avx2();
}

#[cfg(target_arch = "x86_64")]
pub(super) fn avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("popcnt")
}

#[cfg(not(target_arch = "x86_64"))]
pub(super) fn avx2() -> bool {
    false
}

/// A bucket for each head, so that the positions of an ordinary text the buckets mark
/// besides the heads' own are few. A bucket marks every byte whose nibbles are among its
/// heads' at each position, so heads that share nibbles share a bucket well (`sec` and
/// `ses`), and heads that do not mark much that is neither (`sec` and `pas` mark `pes`
/// and `sas`). The cost of a bucket is the chance that three bytes of a text pass it,
/// by a model of log text ([`frequency`]); heads are placed one by one where they add
/// least, then moved while a move lowers the total (a few rounds: each move lowers it,
/// and the rounds are bounded for long lists of extra key names). Fixed by the words
/// alone: the same words always make the same filter.
fn assign(heads: &[Vec<u8>]) -> Vec<usize> {
    let nibbles: Vec<Nibbles> = heads.iter().map(|h| Nibbles::of(h)).collect();
    let chance = |u: Option<Nibbles>| u.map_or(0.0, |u| u.chance());
    let with = |u: Option<Nibbles>, n: Nibbles| Some(u.map_or(n, |u| u.or(n)));
    let mut unions: [Option<Nibbles>; BUCKETS] = [None; BUCKETS];
    let mut buckets: Vec<usize> = Vec::with_capacity(heads.len());
    for &n in &nibbles {
        let added = |k: usize| chance(with(unions[k], n)) - chance(unions[k]);
        let k = (0..BUCKETS)
            .min_by(|&a, &b| added(a).total_cmp(&added(b)))
            .unwrap_or(0);
        unions[k] = with(unions[k], n);
        buckets.push(k);
    }
    if heads.len() > MOVES_MAX {
        return buckets;
    }
    for _ in 0..4 {
        let mut moved = false;
        for h in 0..heads.len() {
            let from = buckets[h];
            let rest = (0..heads.len())
                .filter(|&o| o != h && buckets[o] == from)
                .fold(None, |u, o| with(u, nibbles[o]));
            let left = chance(rest) - chance(unions[from]);
            let delta = |k: usize| left + chance(with(unions[k], nibbles[h])) - chance(unions[k]);
            let best = (0..BUCKETS)
                .filter(|&k| k != from)
                .min_by(|&a, &b| delta(a).total_cmp(&delta(b)));
            if let Some(k) = best.filter(|&k| delta(k) < -1e-12) {
                unions[from] = rest;
                unions[k] = with(unions[k], nibbles[h]);
                buckets[h] = k;
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    buckets
}

/// Above this many heads (extra key names), the buckets are as first placed: each
/// round of moves costs a pass over the heads for each.
const MOVES_MAX: usize = 256;

/// The nibbles a bucket takes at each of the [`SPAN`] positions: bit `n` of `lo` for
/// low nibble `n`.
#[derive(Clone, Copy)]
struct Nibbles([(u16, u16); SPAN]);

impl Nibbles {
    fn of(head: &[u8]) -> Nibbles {
        Nibbles(std::array::from_fn(|j| match head.get(j) {
            Some(&b) => (1 << (b & 15), 1 << (b >> 4)),
            None => (u16::MAX, u16::MAX),
        }))
    }

    fn or(self, other: Nibbles) -> Nibbles {
        Nibbles(std::array::from_fn(|j| {
            (self.0[j].0 | other.0[j].0, self.0[j].1 | other.0[j].1)
        }))
    }

    /// The chance that three bytes of log text pass: at each position, the sum of
    /// [`frequency`] over the bytes whose two nibbles are taken.
    fn chance(&self) -> f64 {
        let mut chance = 1.0;
        for &(lo, hi) in &self.0 {
            let mut p = 0.0;
            for h in (0..16u8).filter(|h| hi & (1 << h) != 0) {
                for l in (0..16u8).filter(|l| lo & (1 << l) != 0) {
                    p += frequency((h << 4) | l);
                }
            }
            chance *= p;
        }
        chance
    }
}

/// How often a byte that folds to `b` ([`fold`]) is in log text, roughly (parts of 1):
/// English letters by their frequency in English text, spaces, digits and punctuation.
/// Only the order of magnitude matters: it tells common bytes from rare ones.
fn frequency(b: u8) -> f64 {
    const LETTERS: [f64; 26] = [
        8.2, 1.5, 2.8, 4.3, 12.7, 2.2, 2.0, 6.1, 7.0, 0.15, 0.77, 4.0, 2.4, 6.7, 7.5, 1.9, 0.1,
        6.0, 6.3, 9.1, 2.8, 1.0, 2.4, 0.15, 2.0, 0.07,
    ];
    let percent = match b {
        b'a'..=b'z' => LETTERS[usize::from(b - b'a')],
        b' ' => 15.0,
        b'0'..=b'9' => 1.0,
        0x21..=0x7e => 0.5,
        _ => 0.05,
    };
    percent / 100.0
}
