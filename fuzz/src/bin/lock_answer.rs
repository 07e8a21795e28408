//! `migrate`'s lock check answered as text (the simple query protocol's, in a
//! migration's first round trip): whatever the server sends, no panic, a bounded
//! message, and the answer passes only when it is the lock holder's pid with `t`.

fn main() {
    afl::fuzz!(|data: &[u8]| {
        let text = String::from_utf8_lossy(data);
        // The first line is the pid, the second the boolean; a line that is missing is
        // a NULL. The lock holder is the pid the first line would parse to, or 812.
        let mut lines = text.split('\n');
        let (pid, holds) = (lines.next(), lines.next());
        let taken_by = match lines.next() {
            Some(other) => other.trim().parse().unwrap_or(812),
            None => pid.and_then(|p| p.parse().ok()).unwrap_or(812),
        };
        let said = migrate::judge_answer(taken_by, pid, holds);
        let passes =
            pid.and_then(|p| p.parse::<i32>().ok()) == Some(taken_by) && holds == Some("t");
        assert_eq!(
            said.is_none(),
            passes,
            "{pid:?} {holds:?} {taken_by}: {said:?}"
        );
        if let Some(said) = said {
            assert!(said.len() < 1_200, "{said}");
        }
    });
}
