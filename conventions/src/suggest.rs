//! "Did you mean …?": the name among known ones that a mistyped name is closest to, for
//! messages about a setting nobody reads (`DECKHAND_ENV_SECRET` for
//! `DECKHAND_ENV_SECRETS`).
//!
//! The distance is Damerau–Levenshtein in its "optimal string alignment" form: one
//! insertion, deletion, substitution or swap of two neighbours is one edit, counted over
//! characters, ignoring ASCII case (an environment variable in the wrong case is the
//! commonest slip of all). A name is close enough when at most a third of its length
//! (at least one character) has to change, the rule rustc uses for its suggestions.
//!
//! What it is not: a fuzzy search. The names compared are outside text (anything in
//! the environment): the work is linear in the mistyped name's length times the known
//! name's, in linear space, and a name whose length alone rules it out is not compared.

/// The name of `known` closest to `name`, when one is close enough (see the module
/// docs); the first of equally close ones. An exact match (ignoring case) is returned
/// too: the caller decides what a difference in case means.
pub fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = max_distance(name);
    let mut best: Option<(usize, &str)> = None;
    for candidate in known {
        let bound = best.map_or(limit, |(d, _)| d.saturating_sub(1).min(limit));
        if let Some(d) = distance_within(name, candidate, bound) {
            if best.is_none_or(|(b, _)| d < b) {
                best = Some((d, candidate));
            }
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// How many edits a name of this length may be away from a suggestion: a third of its
/// characters, at least one.
pub fn max_distance(name: &str) -> usize {
    name.chars().count().max(3) / 3
}

/// The number of edits (insert, delete, substitute, swap two neighbours; ASCII case
/// ignored) that turn `a` into `b`.
pub fn distance(a: &str, b: &str) -> usize {
    let (a, b) = (folded(a), folded(b));
    osa(&a, &b, usize::MAX).unwrap_or(usize::MAX)
}

/// [`distance`], when it is at most `bound`; `None` as soon as it cannot be.
fn distance_within(a: &str, b: &str, bound: usize) -> Option<usize> {
    // Every edit changes the length by at most one: no need to look closer.
    let (la, lb) = (a.chars().count(), b.chars().count());
    if la.abs_diff(lb) > bound {
        return None;
    }
    osa(&folded(a), &folded(b), bound)
}

fn folded(s: &str) -> Vec<char> {
    s.chars().map(|c| c.to_ascii_lowercase()).collect()
}

/// Optimal string alignment distance, three rows at a time; `None` once every entry of
/// a row exceeds `bound` (the distance only grows from there).
fn osa(a: &[char], b: &[char], bound: usize) -> Option<usize> {
    let n = b.len();
    let mut before: Vec<usize> = vec![0; n + 1];
    let mut previous: Vec<usize> = (0..=n).collect();
    let mut current: Vec<usize> = vec![0; n + 1];
    for i in 1..=a.len() {
        current[0] = i;
        let mut row_min = current[0];
        for j in 1..=n {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (previous[j] + 1)
                .min(current[j - 1] + 1)
                .min(previous[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(before[j - 2] + 1);
            }
            current[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > bound {
            return None;
        }
        std::mem::swap(&mut before, &mut previous);
        std::mem::swap(&mut previous, &mut current);
    }
    let d = previous[n];
    (d <= bound).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SETTINGS: &[&str] = &[
        "ENV_SECRETS",
        "ENV_PARAMETERS",
        "ENV_PARAMETERS_KEEP_CASE",
        "STOP_TIMEOUT",
        "STOP_SIGNAL",
        "SECRETS_TIMEOUT",
        "LOG_FULL",
        "LOG_FLUSH",
    ];

    #[test]
    fn the_usual_slips_find_their_name() {
        let near = |n| closest(n, SETTINGS.iter().copied());
        assert_eq!(near("ENV_SECRET"), Some("ENV_SECRETS"));
        assert_eq!(near("ENV_SERCETS"), Some("ENV_SECRETS"));
        assert_eq!(near("env_secrets"), Some("ENV_SECRETS"));
        assert_eq!(near("ENV_PARAMETER"), Some("ENV_PARAMETERS"));
        assert_eq!(near("STOP_TIMOUT"), Some("STOP_TIMEOUT"));
        assert_eq!(near("SECRET_TIMEOUT"), Some("SECRETS_TIMEOUT"));
        assert_eq!(near("LOG_FLUSHH"), Some("LOG_FLUSH"));
        // Nothing is near: no suggestion rather than a wild one.
        assert_eq!(near("DATABASE"), None);
        assert_eq!(near("X"), None);
        assert_eq!(near(""), None);
    }

    #[test]
    fn distances() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", ""), 3);
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("ca", "abc"), 3);
        assert_eq!(distance("ABC", "abc"), 0);
        assert_eq!(distance("é", "e"), 1);
    }

    #[test]
    fn the_first_of_equally_close_names_wins() {
        assert_eq!(
            closest("LOG_FUL", ["LOG_FULL", "LOG_FUEL"]),
            Some("LOG_FULL")
        );
        assert_eq!(
            closest("LOG_FUL", ["LOG_FUEL", "LOG_FULL"]),
            Some("LOG_FUEL")
        );
    }

    #[test]
    fn a_long_name_is_not_compared_when_its_length_rules_it_out() {
        let long = "A".repeat(1_000_000);
        assert_eq!(closest(&long, SETTINGS.iter().copied()), None);
    }

    fn word() -> impl Strategy<Value = String> {
        "[A-Za-z_é]{0,12}"
    }

    /// One edit of `s` at `at`: 0 insert, 1 delete, 2 substitute, 3 swap neighbours.
    fn edit(s: &str, kind: u8, at: usize, c: char) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        let at = at % (chars.len() + 1);
        match kind % 4 {
            0 => chars.insert(at, c),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            2 if at < chars.len() => chars[at] = c,
            3 if at + 1 < chars.len() => chars.swap(at, at + 1),
            _ => {}
        }
        chars.into_iter().collect()
    }

    proptest! {
        #[test]
        fn distance_is_symmetric_and_bounded(a in word(), b in word()) {
            let d = distance(&a, &b);
            prop_assert_eq!(d, distance(&b, &a));
            let (la, lb) = (a.chars().count(), b.chars().count());
            prop_assert!(d >= la.abs_diff(lb));
            prop_assert!(d <= la.max(lb));
            prop_assert_eq!(d == 0, a.eq_ignore_ascii_case(&b));
        }

        #[test]
        fn one_edit_is_at_most_distance_one(s in word(), kind in 0u8..4, at in 0usize..16, c in "[A-Z_]") {
            let c = c.chars().next().unwrap();
            prop_assert!(distance(&s, &edit(&s, kind, at, c)) <= 1);
        }

        #[test]
        fn the_bounded_distance_agrees_with_the_full_one(a in word(), b in word(), bound in 0usize..6) {
            let full = distance(&a, &b);
            let within = distance_within(&a, &b, bound);
            prop_assert_eq!(within, (full <= bound).then_some(full));
        }

        #[test]
        fn a_suggestion_is_always_within_the_limit_and_the_closest(name in word(), known in proptest::collection::vec(word(), 0..8)) {
            let found = closest(&name, known.iter().map(String::as_str));
            let best = known.iter().map(|k| distance(&name, k)).min();
            match found {
                Some(k) => {
                    let d = distance(&name, k);
                    prop_assert!(d <= max_distance(&name));
                    prop_assert_eq!(Some(d), best);
                }
                None => prop_assert!(best.is_none_or(|b| b > max_distance(&name))),
            }
        }
    }
}
