//! The one leak assertion: no secret value anywhere a program's output went (its
//! stdout and stderr, CloudWatch, a `/health` body). What counts as a place and how its
//! text is decoded (JSON unescaped, say) is the caller's; this only looks and reports.

/// Asserts that none of `secrets` occurs in any of `places` — (what the place is, its
/// text) — and names the secret and the place when one does.
#[track_caller]
pub fn assert_absent<S: AsRef<str>>(places: &[(&str, &str)], secrets: impl IntoIterator<Item = S>) {
    for secret in secrets {
        let secret = secret.as_ref();
        assert!(!secret.is_empty(), "an empty secret is in every text");
        for (place, text) in places {
            assert!(
                !text.contains(secret),
                "{secret:?} leaked into {place}: {text}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_when_absent() {
        assert_absent(&[("stdout", "all fine"), ("stderr", "")], ["hunter2"]);
    }

    #[test]
    #[should_panic(expected = "\"hunter2\" leaked into stderr")]
    fn names_the_secret_and_the_place() {
        assert_absent(
            &[("stdout", "all fine"), ("stderr", "password hunter2")],
            ["s3cret", "hunter2"],
        );
    }
}
