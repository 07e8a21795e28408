//! The trigger automaton as the walk reads it: a compact copy of aho-corasick's DFA.
//!
//! aho-corasick's DFA gives every state a row of a power of two of byte classes, with
//! `u32` state ids: for the built-in trigger words, 478 states × 128 × 4 bytes, 245 KB
//! held for the agent's life. The walk needs three things from it: the next state, whether
//! a state is a match, and which words a match state ends. [`Table`] keeps only the
//! states reachable from the start, a row of the real number of byte classes each, and
//! ids that are the row's offset (no multiplication per byte), in `u16` when they fit
//! (50 KB for the built-in words), `u32` otherwise; match states come first, so "is a
//! match" is one comparison.

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

/// The automaton with ids of type `I`.
#[derive(Debug)]
pub(super) struct Rows<I> {
    /// The byte class of each byte.
    classes: [u8; 256],
    /// One row per state, one entry per class: the next state.
    next: Vec<I>,
    start: I,
    /// Ids below this are match states.
    match_end: usize,
    /// For the match state of row `r` (`r` = id / row length), its words are
    /// `words[ends[r]..ends[r + 1]]`.
    ends: Vec<u32>,
    words: Vec<u32>,
    row: usize,
}

impl<I: Id> Rows<I> {
    #[inline(always)]
    pub(super) fn start(&self) -> I {
        self.start
    }

    /// The state after `byte` from `state`. Indexed, not `get`: every id in the table
    /// is the offset of a whole row ([`fill`] builds them so, and `is_a_faithful_copy`
    /// in the tests walks every state), so the index is in bounds, and the bounds check
    /// is a branch that is never taken rather than a select on the walk's chain of
    /// loads.
    #[inline(always)]
    pub(super) fn next(&self, state: I, byte: u8) -> I {
        self.next[state.index() + usize::from(self.classes[usize::from(byte)])]
    }

    #[inline(always)]
    pub(super) fn is_match(&self, state: I) -> bool {
        state.index() < self.match_end
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

    #[cfg(test)]
    fn memory(&self) -> usize {
        self.next.len() * std::mem::size_of::<I>() + (self.ends.len() + self.words.len()) * 4
    }
}

/// The trigger automaton, with `u16` ids when they fit.
#[derive(Debug)]
pub(super) enum Table {
    Small(Rows<u16>),
    Large(Rows<u32>),
}

impl Table {
    /// The states of `dfa`, the automaton of `words`, reachable from its unanchored
    /// start, with its matches. `None` only when the table's ids would not fit in `u32`,
    /// which no list of words the DFA itself can hold reaches.
    ///
    /// Built when the app starts, beside it, so it does little: a byte that is in no
    /// word takes every state back to the start (there is no word it can continue or
    /// begin), so all such bytes are one class, and every byte of a word is a class of
    /// its own; the states are found walking one byte per class, and numbered in a map
    /// with a multiplicative hash (SipHash costs more than the rest of the build).
    pub(super) fn from_dfa(dfa: &DFA, words: &[String]) -> Option<Table> {
        let mut in_a_word = [false; 256];
        for b in words.iter().flat_map(|w| w.bytes()) {
            in_a_word[usize::from(b)] = true;
        }
        let mut class_bytes = [0u8; 256];
        let mut first_byte: Vec<u8> = Vec::new();
        if let Some(other) = (0..=255u8).find(|&b| !in_a_word[usize::from(b)]) {
            first_byte.push(other);
        }
        for b in 0..=255u8 {
            if in_a_word[usize::from(b)] {
                class_bytes[usize::from(b)] = u8::try_from(first_byte.len()).ok()?;
                first_byte.push(b);
            }
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

    /// Bytes held by the table.
    #[cfg(test)]
    pub(super) fn memory(&self) -> usize {
        match self {
            Table::Small(r) => r.memory(),
            Table::Large(r) => r.memory(),
        }
    }
}

/// What [`Table::from_dfa`] found, to fill [`Rows`] of either id type from.
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
    fn fill<I: Id>(&self) -> Option<Rows<I>> {
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
        Some(Rows {
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
