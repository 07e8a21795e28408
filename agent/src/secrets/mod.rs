//! Secrets into the app's environment: find the references, fetch each secret once,
//! place the values, fail closed.
//!
//! The pipeline, one module each: [`reference`] and [`parameter`] (what a reference
//! says) → [`plan`] (which keys to fetch, and later where each value goes) → [`source`]
//! (fetch every key concurrently, in as few requests as the store allows, retried,
//! under one deadline, through a [`Fetch`] source: [`secretsmanager`], [`ssm`]) →
//! [`plan::Plan::apply`] (the app's environment, or every reason it cannot start).
//! [`value`] holds the values in types that never print; [`sdk`] is what both AWS
//! stores share (the SDK's configuration and the classification of its errors are the
//! workspace's, in [`aws`]).
//!
//! [`key`] is what every store fetches by.
//!
//! A new store adds a [`Key`] variant, a reference parser and a [`Fetch`]
//! implementation, and a branch in [`Sources`]; the rest is shared.

pub mod database;
pub mod key;
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

pub use key::Key;
pub use plan::{ChildEnv, DatabaseSettings, Failure, Plan, Resolved, SecretError, SecretSettings};
pub use source::{Deadline, Fetch, FetchError, FetchErrorKind, Value};
pub use value::{Loaded, SecretString, Secrets};

/// Every store the agent reads, behind one [`Fetch`].
pub struct Sources {
    secrets_manager: secretsmanager::SecretsManager,
    parameter_store: ssm::ParameterStore,
}

impl Sources {
    /// Both stores on the agent's one SDK configuration ([`aws::sdk::Shared`]: made only
    /// when there is something to fetch, so an app without references starts without
    /// touching the SDK).
    pub fn new(config: &aws::sdk::SdkConfig) -> Sources {
        Sources {
            secrets_manager: secretsmanager::SecretsManager::new(config),
            parameter_store: ssm::ParameterStore::new(config),
        }
    }
}

impl Fetch for Sources {
    fn batches(&self, keys: BTreeSet<Key>) -> Vec<Vec<Key>> {
        batches(keys)
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

/// Groups keys into requests, each store's rule: parameters are batched for
/// GetParameters ([`ssm::batches`]); secrets and paths are read alone.
pub fn batches(keys: impl IntoIterator<Item = Key>) -> Vec<Vec<Key>> {
    let mut alone = Vec::new();
    let mut parameters = Vec::new();
    for key in keys {
        match key {
            Key::Parameter(p) => parameters.push(p),
            other => alone.push(vec![other]),
        }
    }
    let batched = ssm::batches(parameters)
        .into_iter()
        .map(|batch| batch.into_iter().map(Key::Parameter).collect());
    batched.chain(alone).collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_share_requests_and_secrets_and_paths_are_read_alone() {
        let param = |r: &str| Key::Parameter(parameter::parse(r).unwrap());
        let mut keys: Vec<Key> = (0..23)
            .map(|i| param(&format!("ssm:/app/P{i:02}")))
            .collect();
        keys.push(param("arn:aws:ssm:us-west-2:1:parameter/app/WEST"));
        keys.push(Key::ParameterPath(
            parameter::parse_path("/app/").unwrap().key,
        ));
        keys.push(reference::parse_secret_id("sm-secret").unwrap());
        let batches = batches(keys);
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        assert_eq!(sizes, [10, 10, 3, 1, 1, 1], "{batches:?}");
        assert!(batches
            .iter()
            .all(|b| b.len() <= ssm::GET_PARAMETERS_MAX_NAMES));
        for batch in &batches {
            let regions: BTreeSet<_> = batch
                .iter()
                .map(|k| match k {
                    Key::Parameter(p) => p.region.clone(),
                    _ => Some("alone".into()),
                })
                .collect();
            assert_eq!(regions.len(), 1, "{batch:?}");
        }
    }
}
