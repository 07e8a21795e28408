//! Parameter Store as a [`super::Fetch`] source, in as few requests as the service
//! allows: parameters of one region go to GetParameters up to 10 names at a time, and a
//! path is read with GetParametersByPath (recursive) in pages of 10, each page retried
//! on its own. SecureStrings are always decrypted. One client per region. Each value
//! keeps its type's verdict (`is_secure`): a `SecureString` is a secret, a `String`
//! or `StringList` is configuration.
//!
//! Why batching matters here more than for Secrets Manager: GetParameter,
//! GetParameters and GetParametersByPath share one quota of 40 requests/s per account
//! and region by default, so a fleet starting together throttles on request count.
//!
//! What it is not: names and references are parsed in [`super::parameter`]; which
//! variable a parameter becomes is decided in [`super::plan`].

use std::collections::{BTreeMap, BTreeSet};

use aws::sdk::SdkConfig;
use aws_sdk_ssm::types::{Parameter, ParameterType};
use aws_sdk_ssm::Client;

use super::key::Key;
use super::parameter::{ParameterKey, PathKey};
use super::sdk::{fetch_error, ByRegion};
use super::source::{Deadline, Entry, FetchError, FetchErrorKind, Value};
use super::value::SecretString;
use super::wrong_store;

/// AWS GetParameters: "Names: Array Members: Minimum number of 1 item. Maximum number
/// of 10 items."
pub const GET_PARAMETERS_MAX_NAMES: usize = 10;
/// AWS GetParametersByPath: "MaxResults: Valid Range: Minimum value of 1. Maximum value
/// of 10."
pub const GET_PARAMETERS_BY_PATH_MAX_RESULTS: i32 = 10;

/// Parameter Store clients, by region.
pub struct ParameterStore {
    clients: ByRegion<Client>,
}

/// Groups parameters into GetParameters requests: one region per request, at most
/// [`GET_PARAMETERS_MAX_NAMES`] names, and never two keys that may name the same
/// parameter (`ssm:/a:1` and `ssm:/a:2`, or a name and its ARN): the answer says which
/// parameter each value is, and not always with which selector, so such keys go to
/// different requests.
pub fn batches(keys: impl IntoIterator<Item = ParameterKey>) -> Vec<Vec<ParameterKey>> {
    let mut batches: Vec<Vec<ParameterKey>> = Vec::new();
    // Per region, the open batches (indices into `batches`) and the bare names in each.
    let mut open: BTreeMap<Option<String>, Vec<(usize, BTreeSet<String>)>> = BTreeMap::new();
    for key in keys {
        let bare = key.bare_name().to_owned();
        let region = open.entry(key.region.clone()).or_default();
        let slot = region.iter_mut().find(|(i, names)| {
            batches[*i].len() < GET_PARAMETERS_MAX_NAMES && !names.contains(&bare)
        });
        match slot {
            Some((i, names)) => {
                names.insert(bare);
                batches[*i].push(key);
            }
            None => {
                region.push((batches.len(), BTreeSet::from([bare])));
                batches.push(vec![key]);
            }
        }
    }
    batches
}

impl ParameterStore {
    pub fn new(base: &SdkConfig) -> ParameterStore {
        ParameterStore {
            clients: ByRegion::new(base, Client::new),
        }
    }

    /// One attempt at a batch from [`batches`]: a path alone, or parameters of one
    /// region.
    pub async fn fetch(&self, keys: &[Key], deadline: &Deadline) -> Vec<Result<Value, FetchError>> {
        if let [Key::ParameterPath(path)] = keys {
            return vec![self.path(path, deadline).await.map(Value::Tree)];
        }
        let mut params = Vec::with_capacity(keys.len());
        for key in keys {
            match key {
                Key::Parameter(p) => params.push(p),
                other => return keys.iter().map(|_| Err(wrong_store(other))).collect(),
            }
        }
        let outcomes = self.parameters(&params).await;
        outcomes.into_iter().map(|o| o.map(Value::Text)).collect()
    }

    /// One GetParameters request for up to 10 parameters of one region. When the whole
    /// request fails for a reason that is not transient (access denied on one name, a
    /// version that does not exist), each parameter is asked for alone, so the error
    /// names the right one.
    async fn parameters(&self, keys: &[&ParameterKey]) -> Vec<Result<Entry, FetchError>> {
        match self.get_parameters(keys).await {
            Ok(outcomes) => outcomes,
            Err(e) if e.kind == FetchErrorKind::Transient || keys.len() == 1 => {
                keys.iter().map(|_| Err(e.clone())).collect()
            }
            Err(_) => {
                let mut outcomes = Vec::with_capacity(keys.len());
                for key in keys {
                    let outcome = match self.get_parameters(&[key]).await {
                        Ok(mut one) => one.pop().unwrap_or_else(|| Err(no_answer())),
                        Err(e) => Err(e),
                    };
                    outcomes.push(outcome);
                }
                outcomes
            }
        }
    }

    async fn get_parameters(
        &self,
        keys: &[&ParameterKey],
    ) -> Result<Vec<Result<Entry, FetchError>>, FetchError> {
        // `batches` keeps to the limit; the service would refuse the whole request.
        assert!(
            keys.len() <= GET_PARAMETERS_MAX_NAMES,
            "GetParameters takes at most {GET_PARAMETERS_MAX_NAMES} names"
        );
        let region = keys.first().and_then(|k| k.region.as_deref());
        let output = self
            .clients
            .get(region)
            .get_parameters()
            .set_names(Some(keys.iter().map(|k| k.request_name()).collect()))
            .with_decryption(true)
            .send()
            .await
            .map_err(fetch_error)?;
        let invalid = output.invalid_parameters();
        let found = output.parameters();
        Ok(keys
            .iter()
            .map(|key| {
                if let Some(p) = found.iter().find(|p| answers(key, p)) {
                    return Ok(entry(p));
                }
                let request = key.request_name();
                if invalid.contains(&request) {
                    Err(FetchError::new(
                        FetchErrorKind::NotFound,
                        match &key.selector {
                            Some(_) => "GetParameters lists it as invalid (no such parameter, or no such version or label)",
                            None => "GetParameters lists it as invalid (no such parameter)",
                        },
                    ))
                } else {
                    Err(no_answer())
                }
            })
            .collect())
    }

    /// Every parameter under the path, page by page until there is no next page. A
    /// throttled page is retried alone; the pages before it are kept.
    async fn path(
        &self,
        key: &PathKey,
        deadline: &Deadline,
    ) -> Result<BTreeMap<String, Entry>, FetchError> {
        let client = self.clients.get(key.region.as_deref());
        let mut tree = BTreeMap::new();
        let mut next_token: Option<String> = None;
        for page_number in 1u32.. {
            let what = format!("page {page_number} of parameter path {key}");
            let page = deadline
                .retry(&what, || {
                    let request = client
                        .get_parameters_by_path()
                        .path(&key.path)
                        .recursive(true)
                        .with_decryption(true)
                        .max_results(GET_PARAMETERS_BY_PATH_MAX_RESULTS)
                        .set_next_token(next_token.clone());
                    async move { request.send().await.map_err(fetch_error) }
                })
                .await?;
            for p in page.parameters() {
                if let Some(name) = p.name() {
                    tree.insert(name.to_owned(), entry(p));
                }
            }
            match page.next_token() {
                Some(t) if !t.is_empty() => next_token = Some(t.to_owned()),
                _ => break,
            }
        }
        Ok(tree)
    }
}

/// A parameter's value, with whether its type makes it a secret.
fn entry(p: &Parameter) -> Entry {
    Entry {
        value: SecretString::new(p.value().unwrap_or_default()),
        secure: is_secure(p.r#type()),
    }
}

/// Whether a parameter of this type is a secret: a `SecureString` is, `String` and
/// `StringList` are configuration. A type the answer leaves out, or one this SDK does
/// not know, counts as secret: redacting configuration costs a readable log line,
/// printing a secret cannot be undone.
fn is_secure(kind: Option<&ParameterType>) -> bool {
    !matches!(
        kind,
        Some(ParameterType::String | ParameterType::StringList)
    )
}

/// Whether `p` is the answer for `key`: the same name (or ARN), and, when the answer
/// says which selector or version it is, that one.
fn answers(key: &ParameterKey, p: &Parameter) -> bool {
    let same_parameter = if key.name.starts_with("arn:") {
        p.arn() == Some(key.name.as_str())
    } else {
        p.name() == Some(key.name.as_str())
    };
    let selector_ok = match (p.selector(), &key.selector) {
        (Some(given), Some(asked)) => given.trim_start_matches(':') == asked,
        (Some(given), None) => given.is_empty(),
        (None, _) => true,
    };
    let version_ok = match (key.version(), p.version()) {
        (Some(asked), given) if given != 0 => asked == given,
        _ => true,
    };
    same_parameter && selector_ok && version_ok
}

fn no_answer() -> FetchError {
    FetchError::new(
        FetchErrorKind::Invalid,
        "GetParameters answered without it (neither a value nor listed as invalid)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::parameter;

    #[test]
    fn string_parameters_are_configuration_and_secure_strings_are_secrets() {
        let typed = |kind: Option<ParameterType>| {
            entry(
                &Parameter::builder()
                    .name("/app/A")
                    .value("value-1")
                    .set_type(kind)
                    .build(),
            )
        };
        assert!(!typed(Some(ParameterType::String)).secure);
        assert!(!typed(Some(ParameterType::StringList)).secure);
        assert!(typed(Some(ParameterType::SecureString)).secure);
        // Unknown or left out: redacted, to be safe.
        assert!(typed(Some(ParameterType::from("FutureType"))).secure);
        assert!(typed(None).secure);
        assert_eq!(typed(None).value.expose(), "value-1");
    }

    #[test]
    fn keys_that_may_name_one_parameter_go_to_different_requests() {
        let key = |r: &str| parameter::parse(r).unwrap();
        let keys = vec![
            key("ssm:/app/TOKEN"),
            key("ssm:/app/TOKEN:1"),
            key("ssm:/app/TOKEN:stable"),
            key("ssm:/app/OTHER"),
        ];
        let batches = batches(keys);
        assert_eq!(batches.len(), 3, "{batches:?}");
        for batch in &batches {
            let names: BTreeSet<_> = batch.iter().map(|p| p.bare_name().to_owned()).collect();
            assert_eq!(names.len(), batch.len(), "{batch:?}");
        }
    }

    #[test]
    fn an_answer_matches_by_name_or_arn_and_by_version() {
        let arn = "arn:aws:ssm:us-east-1:1:parameter/app/A";
        let p = Parameter::builder()
            .name("/app/A")
            .arn(arn)
            .version(2)
            .value("v")
            .build();
        let key = |r: &str| parameter::parse(r).unwrap();
        assert!(answers(&key("ssm:/app/A"), &p));
        assert!(answers(&key(arn), &p));
        assert!(answers(&key("ssm:/app/A:2"), &p));
        assert!(!answers(&key("ssm:/app/A:1"), &p));
        assert!(answers(&key("ssm:/app/A:stable"), &p));
        assert!(!answers(&key("ssm:/app/B"), &p));
        let with_selector = Parameter::builder()
            .name("/app/A")
            .selector(":stable")
            .build();
        assert!(answers(&key("ssm:/app/A:stable"), &with_selector));
        assert!(!answers(&key("ssm:/app/A:old"), &with_selector));
        assert!(!answers(&key("ssm:/app/A"), &with_selector));
    }
}
