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
    /// The states of `dfa` reachable from its unanchored start, with its matches. `None`
    /// only when the table's ids would not fit in `u32`, which no list of words the
    /// DFA itself can hold reaches.
    pub(super) fn from_dfa(dfa: &DFA) -> Option<Table> {
        let start = dfa.start_state(Anchored::No).ok()?;
        // Every state reachable from the start, in the order first seen.
        let mut order = vec![start];
        let mut seen: HashMap<StateID, usize> = HashMap::from([(start, 0)]);
        let mut i = 0;
        while let Some(&s) = order.get(i) {
            for b in 0..=255u8 {
                let n = dfa.next_state(Anchored::No, s, b);
                if let std::collections::hash_map::Entry::Vacant(e) = seen.entry(n) {
                    e.insert(order.len());
                    order.push(n);
                }
            }
            i += 1;
        }
        // Byte classes: two bytes share a class when every state goes to the same
        // state on both. Refined one state at a time.
        let mut classes = [0usize; 256];
        for &s in &order {
            let mut split: HashMap<(usize, StateID), usize> = HashMap::new();
            for (b, class) in classes.iter_mut().enumerate() {
                let key = (*class, dfa.next_state(Anchored::No, s, b as u8));
                let len = split.len();
                *class = *split.entry(key).or_insert(len);
            }
        }
        let row = classes.iter().max().map_or(1, |&m| m + 1);
        let mut class_bytes = [0u8; 256];
        for (b, &c) in classes.iter().enumerate() {
            class_bytes[b] = u8::try_from(c).ok()?;
        }
        let mut first_byte = vec![0u8; row];
        for b in (0..=255u8).rev() {
            first_byte[classes[usize::from(b)]] = b;
        }
        // Match states first.
        let (mut matching, rest): (Vec<StateID>, Vec<StateID>) =
            order.iter().partition(|&&s| dfa.is_match(s));
        let match_len = matching.len();
        matching.extend(rest);
        let states = matching;
        let new_index: HashMap<StateID, usize> =
            states.iter().enumerate().map(|(i, &s)| (s, i)).collect();
        let largest = states.len().checked_mul(row)?;
        if largest <= usize::from(u16::MAX) {
            Some(Table::Small(fill(
                dfa,
                &states,
                &new_index,
                match_len,
                row,
                class_bytes,
                &first_byte,
            )?))
        } else {
            Some(Table::Large(fill(
                dfa,
                &states,
                &new_index,
                match_len,
                row,
                class_bytes,
                &first_byte,
            )?))
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

fn fill<I: Id>(
    dfa: &DFA,
    states: &[StateID],
    new_index: &HashMap<StateID, usize>,
    match_len: usize,
    row: usize,
    classes: [u8; 256],
    first_byte: &[u8],
) -> Option<Rows<I>> {
    let id = |s: StateID| new_index.get(&s).and_then(|&i| I::from_index(i * row));
    let mut next = Vec::with_capacity(states.len() * row);
    for &s in states {
        for &b in first_byte {
            next.push(id(dfa.next_state(Anchored::No, s, b))?);
        }
    }
    let mut ends = vec![0u32];
    let mut words = Vec::new();
    for &s in states.iter().take(match_len) {
        for k in 0..dfa.match_len(s) {
            words.push(dfa.match_pattern(s, k).as_u32());
        }
        ends.push(u32::try_from(words.len()).ok()?);
    }
    let start = id(dfa.start_state(Anchored::No).ok()?)?;
    Some(Rows {
        classes,
        next,
        start,
        match_end: match_len * row,
        ends,
        words,
        row,
    })
}
