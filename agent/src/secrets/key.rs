//! What one fetch returns, whatever the store: a [`Key`] names a Secrets Manager secret
//! (with stage and version), a Parameter Store parameter, or a parameter path.
//! References that differ only in their JSON key share a key, so each is fetched once.
//!
//! What it is not: parsing (in [`super::reference`] and [`super::parameter`]) or
//! grouping keys into requests (each store's rule, put together in [`super::Sources`]).

use std::fmt;

use super::parameter::{ParameterKey, PathKey};
use super::reference::SmKey;

/// What one fetch returns: references that differ only in their JSON key share it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Key {
    SecretsManager(SmKey),
    /// One Parameter Store parameter: its value.
    Parameter(ParameterKey),
    /// Every parameter under a path: their names and values.
    ParameterPath(PathKey),
}

impl Key {
    /// The region the key names; `None`: the default region (`AWS_REGION`).
    pub fn region(&self) -> Option<&str> {
        match self {
            Key::SecretsManager(k) => k.region.as_deref(),
            Key::Parameter(k) => k.region.as_deref(),
            Key::ParameterPath(k) => k.region.as_deref(),
        }
    }

    /// What the key names, for messages: `secret "…"`, `parameter "…"`.
    pub fn noun(&self) -> &'static str {
        match self {
            Key::SecretsManager(_) => "secret",
            Key::Parameter(_) => "parameter",
            Key::ParameterPath(_) => "parameter path",
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::SecretsManager(k) => {
                write!(f, "{}", k.secret_id)?;
                if let Some(s) = &k.version_stage {
                    write!(f, " (stage {s})")?;
                }
                if let Some(v) = &k.version_id {
                    write!(f, " (version {v})")?;
                }
                Ok(())
            }
            Key::Parameter(k) => k.fmt(f),
            Key::ParameterPath(k) => k.fmt(f),
        }
    }
}
