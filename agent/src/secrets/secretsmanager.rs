//! Secrets Manager as a [`super::Fetch`] source: GetSecretValue, one client per region (an
//! ARN reference is read in the ARN's region), errors sorted into retry classes
//! by [`super::sdk`].
//!
//! Why not BatchGetSecretValue: its quota is 100 requests/s per region against about
//! 10,000 for GetSecretValue, and a fleet starting together would throttle on it.

use std::collections::HashMap;
use std::sync::Mutex;

use aws_config::{Region, SdkConfig};
use aws_sdk_secretsmanager::Client;

use super::reference::{Key, SmKey};
use super::sdk::classify;
use super::source::{FetchError, FetchErrorKind, Value};
use super::value::SecretString;
use super::wrong_store;

/// Secrets Manager clients, by region.
pub struct SecretsManager {
    base: SdkConfig,
    /// `None`: the default region of `base`.
    clients: Mutex<HashMap<Option<String>, Client>>,
}

impl SecretsManager {
    pub fn new(base: SdkConfig) -> SecretsManager {
        SecretsManager {
            base,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, region: Option<&str>) -> Client {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients
            .entry(region.map(str::to_owned))
            .or_insert_with(|| {
                let mut config = aws_sdk_secretsmanager::config::Builder::from(&self.base);
                if let Some(r) = region {
                    config = config.region(Region::new(r.to_owned()));
                }
                Client::from_conf(config.build())
            })
            .clone()
    }
}

impl SecretsManager {
    /// Reads each key with its own GetSecretValue ([`super::Sources`] hands them over
    /// one at a time).
    pub async fn fetch(&self, keys: &[Key]) -> Vec<Result<Value, FetchError>> {
        let mut outcomes = Vec::with_capacity(keys.len());
        for key in keys {
            let outcome = match key {
                Key::SecretsManager(k) => self.get(k).await.map(Value::Text),
                other => Err(wrong_store(other)),
            };
            outcomes.push(outcome);
        }
        outcomes
    }

    async fn get(&self, k: &SmKey) -> Result<SecretString, FetchError> {
        let client = self.client(k.region.as_deref());
        let answer = client
            .get_secret_value()
            .secret_id(&k.secret_id)
            .set_version_stage(k.version_stage.clone())
            .set_version_id(k.version_id.clone())
            .send()
            .await;
        let output = answer.map_err(classify)?;
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
