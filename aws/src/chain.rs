//! An error and the errors that caused it, on one line: `outer: cause: root cause`.
//!
//! Layered errors often repeat their cause in their own message (hyper's "error trying
//! to connect: tcp connect error: …" over "tcp connect error: …"), so a part already
//! said by an earlier one is left out: each thing is said once.
//!
//! What it is not: a redactor. It prints what the errors say; callers pass only errors
//! whose text may be shown (the SDK's never hold a request or response body).

use std::error::Error;
use std::fmt;

/// Displays an error and its sources, joined with `": "`, each part once; `unknown
/// error` when every part is empty.
#[derive(Clone, Copy)]
pub struct Chain<'a>(pub &'a (dyn Error + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut said: Vec<String> = Vec::new();
        let mut next = Some(self.0);
        while let Some(e) = next {
            let text = e.to_string();
            if !text.is_empty() && !said.iter().any(|s| s.contains(&text)) {
                if !said.is_empty() {
                    f.write_str(": ")?;
                }
                f.write_str(&text)?;
                said.push(text);
            }
            next = e.source();
        }
        if said.is_empty() {
            f.write_str("unknown error")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The first error of `err`'s chain (itself included) that is a `T`.
pub fn find<'a, T: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a T> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        // An `io::Error` that carries another error answers `source()` with that
        // error's cause, not the error itself (a TLS library's, inside a connector's
        // `io::Error`): look at the one it carries.
        next = match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(carried) => Some(carried as &(dyn Error + 'static)),
            None => e.source(),
        };
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error with a text and an optional cause.
    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl fmt::Display for Layer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
    }

    impl Error for Layer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// An error of another type over a [`Layer`].
    #[derive(Debug)]
    struct Outer(Layer);

    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer")
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    fn chain(parts: &[&'static str]) -> Layer {
        let mut err: Option<Box<Layer>> = None;
        for part in parts.iter().rev() {
            err = Some(Box::new(Layer(part, err)));
        }
        *err.expect("at least one part")
    }

    #[test]
    fn parts_are_joined_and_each_is_said_once() {
        let e = chain(&["dispatch failure", "io error", "connection refused"]);
        assert_eq!(
            Chain(&e).to_string(),
            "dispatch failure: io error: connection refused"
        );
        // The same text twice in a row (a wrapper that repeats its cause).
        let e = chain(&["timeout", "timeout", "after 4s"]);
        assert_eq!(Chain(&e).to_string(), "timeout: after 4s");
        // A cause already contained in its wrapper's message.
        let e = chain(&[
            "error trying to connect: tcp connect error: refused",
            "tcp connect error: refused",
            "refused",
        ]);
        assert_eq!(
            Chain(&e).to_string(),
            "error trying to connect: tcp connect error: refused"
        );
        // Empty parts are skipped; nothing at all says so.
        let e = chain(&["", "root"]);
        assert_eq!(Chain(&e).to_string(), "root");
        assert_eq!(Chain(&chain(&[""])).to_string(), "unknown error");
    }

    #[test]
    fn find_looks_down_the_chain() {
        let e = chain(&["a", "b"]);
        assert_eq!(find::<Layer>(&e).map(|l| l.0), Some("a"));
        assert!(find::<std::io::Error>(&e).is_none());
        let outer = Outer(chain(&["inner", "root"]));
        assert_eq!(find::<Layer>(&outer).map(|l| l.0), Some("inner"));
        assert_eq!(Chain(&outer).to_string(), "outer: inner: root");
    }

    #[test]
    fn find_looks_inside_an_io_error_at_the_error_it_carries() {
        // `io::Error::source` gives the carried error's cause, skipping the error.
        let io = std::io::Error::other(chain(&["carried", "cause"]));
        assert_eq!(find::<Layer>(&io).map(|l| l.0), Some("carried"));
        // Before, the walk went from the `io::Error` to "cause" and missed it.
        assert_eq!(io.source().map(|e| e.to_string()).as_deref(), Some("cause"));
    }
}
