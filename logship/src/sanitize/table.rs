//! The trigger automaton as the walk reads it: a compact copy of aho-corasick's DFA.
//!
//! aho-corasick's DFA gives every state a row of a power of two of byte classes, with
//! `u32` state ids: for the built-in trigger words in their case variants (before they
//! were matched in any casing), 478 states × 128 × 4 bytes, 245 KB held for the agent's
//! life. The walk needs three things from it: the next state, whether a state is a
//! match, and which words a match state ends. [`Table`] keeps only the states reachable
//! from the start, a row of the real number of byte classes each, and ids that are the
//! row's offset (no multiplication per byte), in `u16` when they fit (15 KB for the
//! built-in words: 232 states of 32 classes, a letter's two cases one class), `u32`
//! otherwise; match states come first, so "is a match" is one comparison.
//!
//! The built-in words' table is generated ahead of time ([`builtin`], checked against a
//! fresh build by a test) and is read-only data of the binary: no build at the agent's
//! start (about 3.4 M instructions, a millisecond, before the app's first line or the
//! agent's own can be sanitized), nothing of it on the heap, and its pages shared and
//! clean. Only extra key names (`DECKHAND_REDACT_KEYS`) build one at run time.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use aho_corasick::automaton::{Automaton, StateID};
use aho_corasick::dfa::DFA;
use aho_corasick::Anchored;

/// A state id: the offset of the state's row in [`Rows::next`].
pub(super) trait Id: Copy + Eq + std::fmt::Debug {
    fn index(self) -> usize;
    fn from_index(i: usize) -> Option<Self>;
}

impl Id for u16 {
    #[inline(always)]
    fn index(self) -> usize {
        usize::from(self)
    }
    fn from_index(i: usize) -> Option<Self> {
        u16::try_from(i).ok()
    }
}

impl Id for u32 {
    #[inline(always)]
    fn index(self) -> usize {
        self as usize
    }
    fn from_index(i: usize) -> Option<Self> {
        u32::try_from(i).ok()
    }
}

/// The automaton with ids of type `I`, over tables it borrows: the built-in words'
/// ([`builtin::ROWS`], in the binary's read-only data) or a [`Built`] one's.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rows<'a, I> {
    /// The byte class of each byte.
    classes: &'a [u8; 256],
    /// One row per state, one entry per class: the next state.
    next: &'a [I],
    start: I,
    /// Ids below this are match states.
    match_end: usize,
    /// For the match state of row `r` (`r` = id / row length), its words are
    /// `words[ends[r]..ends[r + 1]]`.
    ends: &'a [u32],
    words: &'a [u32],
    row: usize,
}

impl<I: Id> Rows<'_, I> {
    #[inline(always)]
    pub(super) fn start(&self) -> I {
        self.start
    }

    /// The state after `byte` from `state`.
    #[inline(always)]
    pub(super) fn next(&self, state: I, byte: u8) -> I {
        self.after(state.index(), byte)
    }

    /// [`Rows::next`] on the states' indices: the walk's lanes keep them so, with no
    /// conversion per byte.
    #[inline(always)]
    pub(super) fn step(&self, index: usize, byte: u8) -> usize {
        self.after(index, byte).index()
    }

    /// The state after `byte` from the state at `index`. Indexed, not `get`: every id in
    /// the table is the offset of a whole row ([`Shape::fill`] builds them so,
    /// `is_a_faithful_copy` in the tests walks every state, and
    /// `the_built_in_table_is_current` holds the generated table to a fresh build), so
    /// the index is in bounds, and the bounds check is a branch that is never taken
    /// rather than a select on the walk's chain of loads.
    #[inline(always)]
    fn after(&self, index: usize, byte: u8) -> I {
        self.next[index + usize::from(self.classes[usize::from(byte)])]
    }

    /// Whether the state at `index` is a match state.
    #[inline(always)]
    pub(super) fn is_match_index(&self, index: usize) -> bool {
        index < self.match_end
    }

    #[inline(always)]
    pub(super) fn is_match(&self, state: I) -> bool {
        self.is_match_index(state.index())
    }

    /// The ids of the words that end where the walk reached `state` (none unless it is a
    /// match state).
    pub(super) fn words(&self, state: I) -> &[u32] {
        let r = state.index() / self.row.max(1);
        match (self.ends.get(r), self.ends.get(r + 1)) {
            (Some(&a), Some(&b)) if self.is_match(state) => {
                self.words.get(a as usize..b as usize).unwrap_or_default()
            }
            _ => &[],
        }
    }

    /// Bytes held by the tables.
    #[cfg(test)]
    pub(super) fn memory(&self) -> usize {
        std::mem::size_of_val(self.next)
            + std::mem::size_of_val(self.ends)
            + std::mem::size_of_val(self.words)
            + self.classes.len()
    }
}

impl Rows<'_, u16> {
    /// The Rust source of `builtin.rs`: `words`, with `kinds` (each one's [`Trigger`] as
    /// a Rust expression), and these tables.
    ///
    /// [`Trigger`]: super::Trigger
    #[cfg(test)]
    pub(super) fn source(&self, words: &[String], kinds: &[String]) -> String {
        use std::fmt::Write as _;
        fn list(out: &mut String, indent: &str, items: impl Iterator<Item = String>) {
            let mut line = String::new();
            for item in items {
                if !line.is_empty() && indent.len() + line.len() + item.len() + 2 > 99 {
                    let _ = writeln!(out, "{indent}{}", line.trim_end());
                    line.clear();
                }
                line.push_str(&item);
                line.push_str(", ");
            }
            if !line.is_empty() {
                let _ = writeln!(out, "{indent}{}", line.trim_end());
            }
        }
        let mut out = String::from(
            "//! @generated by `the_built_in_table_is_current` (logship/src/sanitize/tests.rs): the\n\
             //! trigger automaton of the built-in words, copied from aho-corasick's DFA of them\n\
             //! ([`Table::from_dfa`](super::Table::from_dfa)). Do not edit. When the words change,\n\
             //! that test fails; `DECKHAND_TEST_REGENERATE=1 cargo test -p logship --lib\n\
             //! the_built_in_table_is_current` writes this file again.\n\n\
             use super::super::{tokens, Trigger};\n\
             use super::{expand, Rows};\n\n\
             /// The words, in the order of their ids.\n",
        );
        let _ = writeln!(out, "pub(super) static WORDS: [&str; {}] = [", words.len());
        list(&mut out, "    ", words.iter().map(|w| format!("{w:?}")));
        out.push_str("];\n\n/// What each word starts.\n");
        let _ = writeln!(
            out,
            "pub(super) static KINDS: [Trigger; {}] = [",
            kinds.len()
        );
        list(&mut out, "    ", kinds.iter().map(String::clone));
        out.push_str(
            "];\n\npub(super) static ROWS: Rows<'static, u16> = Rows {\n    classes: &[\n",
        );
        list(&mut out, "        ", self.classes.iter().map(u8::to_string));
        // Most of a state's row is where the start state goes (a byte that continues
        // none of its words goes where it would from the start): that row, and the
        // entries that differ from it, as (index, state).
        let start = usize::from(self.start);
        let base = self.next.get(start..start + self.row).unwrap_or_default();
        let _ = writeln!(
            out,
            "    ],\n    next: &expand::<{}>(\n        &[",
            self.next.len()
        );
        list(&mut out, "            ", base.iter().map(u16::to_string));
        out.push_str("        ],\n        &[\n");
        let differ = self
            .next
            .iter()
            .enumerate()
            .filter(|&(i, v)| base.get(i % self.row) != Some(v));
        list(
            &mut out,
            "            ",
            differ.map(|(i, v)| format!("({i}, {v})")),
        );
        out.push_str("        ],\n    ),\n");
        let _ = write!(
            out,
            "    start: {},\n    match_end: {},\n    ends: &[\n",
            self.start, self.match_end
        );
        list(&mut out, "        ", self.ends.iter().map(u32::to_string));
        out.push_str("    ],\n    words: &[\n");
        list(&mut out, "        ", self.words.iter().map(u32::to_string));
        let _ = writeln!(out, "    ],\n    row: {},\n}};", self.row);
        out
    }
}

/// The next-state table of `N` entries: `base` in every row, then each `(index, state)`
/// of `differ`. Evaluated when the binary is compiled, for the generated table.
const fn expand<const N: usize>(base: &[u16], differ: &[(usize, u16)]) -> [u16; N] {
    let mut next = [0u16; N];
    let mut i = 0;
    while i < N {
        next[i] = base[i % base.len()];
        i += 1;
    }
    let mut k = 0;
    while k < differ.len() {
        next[differ[k].0] = differ[k].1;
        k += 1;
    }
    next
}

/// The tables of an automaton built at run time (with key names from
/// `DECKHAND_REDACT_KEYS`), owned.
#[derive(Debug)]
pub(super) struct Built<I> {
    classes: [u8; 256],
    next: Vec<I>,
    start: I,
    match_end: usize,
    ends: Vec<u32>,
    words: Vec<u32>,
    row: usize,
}

impl<I: Id> Built<I> {
    pub(super) fn rows(&self) -> Rows<'_, I> {
        Rows {
            classes: &self.classes,
            next: &self.next,
            start: self.start,
            match_end: self.match_end,
            ends: &self.ends,
            words: &self.words,
            row: self.row,
        }
    }
}

// Generated: rustfmt would rewrap its lists, and the test compares it byte for byte.
#[rustfmt::skip]
mod builtin;

/// The trigger automaton: the built-in words' tables, generated ahead of time and
/// compiled into the binary, or tables built at run time, with `u16` ids when they fit.
#[derive(Debug)]
pub(super) enum Table {
    Builtin,
    Small(Built<u16>),
    Large(Built<u32>),
}

/// A [`Table`] as the walk reads it.
#[derive(Debug, Clone, Copy)]
pub(super) enum View<'a> {
    Small(Rows<'a, u16>),
    Large(Rows<'a, u32>),
}

impl Table {
    /// The generated table, when `words` are the words, in the order, it was generated
    /// from ([`builtin::WORDS`]).
    pub(super) fn builtin<'w>(words: impl IntoIterator<Item = &'w str>) -> Option<Table> {
        let same = words.into_iter().eq(builtin::WORDS.iter().copied());
        same.then_some(Table::Builtin)
    }

    /// The built-in words the generated table was made from, and what each starts:
    /// what `Triggers::words` gives without extra key names, unless the generated file
    /// is stale (which `the_built_in_table_is_current` catches).
    pub(super) fn builtin_words() -> (&'static [&'static str], &'static [super::Trigger]) {
        (&builtin::WORDS, &builtin::KINDS)
    }

    pub(super) fn view(&self) -> View<'_> {
        match self {
            Table::Builtin => View::Small(builtin::ROWS),
            Table::Small(built) => View::Small(built.rows()),
            Table::Large(built) => View::Large(built.rows()),
        }
    }

    /// The states of `dfa`, the automaton of `words`, reachable from its unanchored
    /// start, with its matches. `None` only when the table's ids would not fit in `u32`,
    /// which no list of words the DFA itself can hold reaches.
    ///
    /// `dfa` matches ASCII letters in either case (aho-corasick's
    /// `ascii_case_insensitive`): an upper-case letter goes wherever its lower case goes.
    ///
    /// Built at the agent's start with extra key names, and when the built-in table is
    /// generated, so it does little: a byte that is in no word (in either case) takes
    /// every state back to the start (there is no word it can continue or begin), so all
    /// such bytes are one class, and every byte of a word is a class of its own, shared
    /// by a letter's two cases; the states are found walking one byte per class, and
    /// numbered in a map with a multiplicative hash (SipHash costs more than the rest of
    /// the build).
    pub(super) fn from_dfa(dfa: &DFA, words: &[String]) -> Option<Table> {
        let mut in_a_word = [false; 256];
        for b in words.iter().flat_map(|w| w.bytes()) {
            in_a_word[usize::from(b.to_ascii_lowercase())] = true;
        }
        let in_a_word = |b: u8| in_a_word[usize::from(b.to_ascii_lowercase())];
        let mut class_bytes = [0u8; 256];
        let mut first_byte: Vec<u8> = Vec::new();
        if let Some(other) = (0..=255u8).find(|&b| !in_a_word(b)) {
            first_byte.push(other);
        }
        for b in (0..=255u8).filter(|b| !b.is_ascii_uppercase()) {
            if in_a_word(b) {
                class_bytes[usize::from(b)] = u8::try_from(first_byte.len()).ok()?;
                first_byte.push(b);
            }
        }
        for b in b'A'..=b'Z' {
            class_bytes[usize::from(b)] = class_bytes[usize::from(b.to_ascii_lowercase())];
        }
        let start = dfa.start_state(Anchored::No).ok()?;
        // Every state reachable from the start, in the order first seen, and its number.
        let mut order = vec![start];
        let mut number: Ids = Ids::default();
        number.insert(start, 0);
        let mut i = 0;
        while let Some(&s) = order.get(i) {
            for &b in &first_byte {
                let n = dfa.next_state(Anchored::No, s, b);
                if let std::collections::hash_map::Entry::Vacant(e) = number.entry(n) {
                    e.insert(u32::try_from(order.len()).ok()?);
                    order.push(n);
                }
            }
            i += 1;
        }
        let row = first_byte.len();
        // Match states first.
        let (mut states, rest): (Vec<StateID>, Vec<StateID>) =
            order.iter().partition(|&&s| dfa.is_match(s));
        let match_len = states.len();
        states.extend(rest);
        let mut index = Ids::default();
        for (i, &s) in states.iter().enumerate() {
            index.insert(s, u32::try_from(i).ok()?);
        }
        let largest = states.len().checked_mul(row)?;
        let shape = Shape {
            dfa,
            states: &states,
            index: &index,
            match_len,
            row,
            classes: class_bytes,
            first_byte: &first_byte,
        };
        if largest <= usize::from(u16::MAX) {
            Some(Table::Small(shape.fill()?))
        } else {
            Some(Table::Large(shape.fill()?))
        }
    }
}

/// What [`Table::from_dfa`] found, to fill a [`Built`] table of either id type from.
struct Shape<'a> {
    dfa: &'a DFA,
    /// The reachable states, match states first.
    states: &'a [StateID],
    /// By aho-corasick's id: the state's place in `states`.
    index: &'a Ids,
    match_len: usize,
    row: usize,
    classes: [u8; 256],
    /// A byte of each class.
    first_byte: &'a [u8],
}

impl Shape<'_> {
    fn fill<I: Id>(&self) -> Option<Built<I>> {
        let id = |s: StateID| {
            let i = *self.index.get(&s)?;
            I::from_index((i as usize).checked_mul(self.row)?)
        };
        let mut next = Vec::with_capacity(self.states.len() * self.row);
        for &s in self.states {
            for &b in self.first_byte {
                next.push(id(self.dfa.next_state(Anchored::No, s, b))?);
            }
        }
        let mut ends = vec![0u32];
        let mut words = Vec::new();
        for &s in self.states.iter().take(self.match_len) {
            for k in 0..self.dfa.match_len(s) {
                words.push(self.dfa.match_pattern(s, k).as_u32());
            }
            ends.push(u32::try_from(words.len()).ok()?);
        }
        Some(Built {
            classes: self.classes,
            next,
            start: id(self.dfa.start_state(Anchored::No).ok()?)?,
            match_end: self.match_len * self.row,
            ends,
            words,
            row: self.row,
        })
    }
}

/// aho-corasick's state ids to numbers of ours.
type Ids = HashMap<StateID, u32, BuildHasherDefault<IdHasher>>;

/// A multiplicative hash for state ids: they are not outside input, and the map is
/// built once.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }
}
