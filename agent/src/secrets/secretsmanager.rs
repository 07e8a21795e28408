//! Secrets Manager as a [`super::Fetch`] source: GetSecretValue, one client per region (an
//! ARN reference is read in the ARN's region), errors sorted into retry classes
//! by [`super::sdk`].
//!
//! Why not BatchGetSecretValue: its quota is 100 requests/s per region against about
//! 10,000 for GetSecretValue, and a fleet starting together would throttle on it.

use aws::sdk::SdkConfig;
use aws_sdk_secretsmanager::Client;

use super::key::Key;
use super::reference::SmKey;
use super::sdk::{fetch_error, ByRegion};
use super::source::{FetchError, FetchErrorKind, Value};
use super::value::SecretString;
use super::wrong_store;

/// Secrets Manager clients, by region.
pub struct SecretsManager {
    clients: ByRegion<Client>,
}

impl SecretsManager {
    pub fn new(base: &SdkConfig) -> SecretsManager {
        SecretsManager {
            clients: ByRegion::new(base, Client::new),
        }
    }
}

impl SecretsManager {
    /// Reads each key with its own GetSecretValue ([`super::Sources`] hands them over
    /// one at a time).
    pub async fn fetch(&self, keys: &[Key]) -> Vec<Result<Value, FetchError>> {
        let mut outcomes = Vec::with_capacity(keys.len());
        for key in keys {
            let outcome = match key {
                Key::SecretsManager(k) => self.get(k).await.map(Value::secret),
                other => Err(wrong_store(other)),
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn get(&self, k: &SmKey) -> Result<SecretString, FetchError> {
        let client = self.clients.get(k.region.as_deref());
        let answer = client
            .get_secret_value()
            .secret_id(&k.secret_id)
            .set_version_stage(k.version_stage.clone())
            .set_version_id(k.version_id.clone())
            .send()
            .await;
        let output = answer.map_err(fetch_error)?;
        if let Some(text) = output.secret_string {
            return Ok(SecretString::new(text));
        }
        match output.secret_binary {
            Some(blob) => String::from_utf8(blob.into_inner())
                .map(SecretString::new)
                .map_err(|_| {
                    FetchError::new(
                        FetchErrorKind::Invalid,
                        "has a SecretBinary that is not valid UTF-8, which an environment variable cannot hold",
                    )
                }),
            None => Err(FetchError::new(
                FetchErrorKind::Invalid,
                "has neither SecretString nor SecretBinary",
            )),
        }
    }
}
