//! Secrets into the app's environment: find the references, fetch each secret once,
//! place the values, fail closed.
//!
//! The pipeline, one module each: [`reference`] (what a reference says) → [`plan`]
//! (which keys to fetch, and later where each value goes) → [`source`] (fetch every key
//! concurrently, retried, under one deadline, through a [`Fetch`] source such as
//! [`secretsmanager`]) → [`plan::Plan::apply`] (the app's environment, or every reason
//! it cannot start). [`value`] holds the values in types that never print.
//!
//! A new store (Parameter Store) adds a [`Key`] variant, a reference parser and a
//! [`Fetch`] implementation, and a branch in [`Sources`]; the rest is shared.

pub mod database;
pub mod plan;
pub mod reference;
pub mod secretsmanager;
pub mod source;
pub mod value;

use std::sync::Arc;
use std::time::Duration;

pub use plan::{ChildEnv, DatabaseSettings, Failure, Plan, Resolved, SecretError, SecretSettings};
pub use reference::Key;
pub use source::{Fetch, FetchError, FetchErrorKind};
pub use value::{Loaded, SecretString, Secrets};

/// Every store the agent reads, behind one [`Fetch`].
pub struct Sources {
    secrets_manager: secretsmanager::SecretsManager,
}

impl Sources {
    /// Loads the AWS SDK configuration. Only called when there is something to fetch,
    /// so an app without references starts without touching the SDK.
    pub async fn from_env() -> Sources {
        Sources {
            secrets_manager: secretsmanager::SecretsManager::from_env().await,
        }
    }
}

impl Fetch for Sources {
    async fn fetch(&self, key: &Key) -> Result<SecretString, FetchError> {
        match key {
            Key::SecretsManager(_) => self.secrets_manager.fetch(key).await,
        }
    }
}

/// A plan and where to fetch it from: resolves once at start, and again on every
/// refresh.
pub struct Resolver<F> {
    plan: Plan,
    /// `None` when the plan has no keys: nothing is ever fetched.
    source: Option<Arc<F>>,
    timeout: Duration,
}

impl<F: Fetch> Resolver<F> {
    pub fn new(plan: Plan, source: Option<Arc<F>>, timeout: Duration) -> Self {
        Resolver {
            plan,
            source,
            timeout,
        }
    }

    /// Whether there is anything to fetch (and so anything to refresh).
    pub fn fetches(&self) -> bool {
        !self.plan.keys().is_empty()
    }

    pub async fn resolve(&self) -> Result<Resolved, Failure> {
        let fetched = match &self.source {
            Some(source) => source::fetch_all(source, self.plan.keys(), self.timeout).await,
            None => Default::default(),
        };
        self.plan.apply(&fetched)
    }
}
