//! Secrets into the app's environment: find the references, fetch each secret once,
//! place the values, fail closed.
//!
//! The pipeline, one module each: [`reference`] and [`parameter`] (what a reference
//! says) → [`plan`] (which keys to fetch, and later where each value goes) → [`source`]
//! (fetch every key concurrently, in as few requests as the store allows, retried,
//! under one deadline, through a [`Fetch`] source: [`secretsmanager`], [`ssm`]) →
//! [`plan::Plan::apply`] (the app's environment, or every reason it cannot start).
//! [`value`] holds the values in types that never print; [`sdk`] is what both AWS
//! stores share.
//!
//! A new store adds a [`Key`] variant, a reference parser and a [`Fetch`]
//! implementation, and a branch in [`Sources`]; the rest is shared.

pub mod database;
pub mod parameter;
pub mod plan;
pub mod reference;
pub mod sdk;
pub mod secretsmanager;
pub mod source;
pub mod ssm;
pub mod value;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

pub use plan::{ChildEnv, DatabaseSettings, Failure, Plan, Resolved, SecretError, SecretSettings};
pub use reference::Key;
pub use source::{Deadline, Fetch, FetchError, FetchErrorKind, Value};
pub use value::{Loaded, SecretString, Secrets};

/// Every store the agent reads, behind one [`Fetch`].
pub struct Sources {
    secrets_manager: secretsmanager::SecretsManager,
    parameter_store: ssm::ParameterStore,
}

impl Sources {
    /// Loads the AWS SDK configuration. Only called when there is something to fetch,
    /// so an app without references starts without touching the SDK.
    pub async fn from_env() -> Sources {
        let config = sdk::config_from_env().await;
        Sources {
            secrets_manager: secretsmanager::SecretsManager::new(config.clone()),
            parameter_store: ssm::ParameterStore::new(config),
        }
    }
}

impl Fetch for Sources {
    /// Parameters are batched for GetParameters; secrets and paths are read alone.
    fn batches(&self, keys: BTreeSet<Key>) -> Vec<Vec<Key>> {
        ssm::batches(keys)
    }

    async fn fetch(&self, keys: &[Key], deadline: &Deadline) -> Vec<Result<Value, FetchError>> {
        match keys.first() {
            Some(Key::SecretsManager(_)) => self.secrets_manager.fetch(keys).await,
            Some(Key::Parameter(_) | Key::ParameterPath(_)) => {
                self.parameter_store.fetch(keys, deadline).await
            }
            None => Vec::new(),
        }
    }
}

/// The error for a key handed to a store that does not hold it (a bug in [`Sources`]).
fn wrong_store(key: &Key) -> FetchError {
    FetchError::new(
        FetchErrorKind::Invalid,
        format!(
            "was sent to the wrong store (a bug in the agent): {} {key}",
            key.noun()
        ),
    )
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
