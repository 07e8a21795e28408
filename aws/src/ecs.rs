//! The ECS task metadata endpoint v4: ECS gives each container its address in
//! `ECS_CONTAINER_METADATA_URI_V4`; `GET $URI` describes the container (its `Name`,
//! the task's ARN and task definition in its `Labels`), `GET $URI/task` the task
//! (`TaskARN`, `Family`, `Revision`, `LaunchType`, `Limits: {"CPU": 0.25, "Memory": 512}`
//! in MiB).
//!
//! The documents are outside input: they are read through the bounded
//! [`crate::http::get`] and parsed leniently — a field that is missing or of another
//! type reads as absent, and only a body that is not a JSON object is an error. Each
//! caller decides which fields it cannot do without.
//!
//! What it is not: a cache (callers read once, or keep what they read) or a source of
//! settings (the caller reads the variable through its [`conventions::Env`]).

use std::collections::BTreeMap;
use std::time::Duration;

use conventions::Env;
use hyper::{StatusCode, Uri};
use serde_json::{Map, Value};

use crate::http::{self, GetError};

/// The variable ECS sets in every container of a task (platform 1.4.0 and later).
pub const METADATA_URI_VAR: &str = "ECS_CONTAINER_METADATA_URI_V4";

/// The endpoint's address, when the program runs in an ECS task.
pub fn metadata_uri(env: &impl Env) -> Option<String> {
    env.var(METADATA_URI_VAR)
}

/// The endpoint of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `$ECS_CONTAINER_METADATA_URI_V4`, without a trailing `/`.
    base: String,
}

/// Why the metadata could not be read.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("{0:?} is not an http:// URL with a host")]
    NotAnEndpoint(String),
    #[error("{uri}: {source}")]
    Get { uri: String, source: GetError },
    #[error("{uri} answered HTTP {status}")]
    Status { uri: String, status: StatusCode },
    #[error("the metadata is not a JSON object")]
    NotJson,
}

impl Endpoint {
    /// The endpoint at `uri`, which must be an `http://` URL with a host.
    pub fn new(uri: &str) -> Result<Endpoint, MetadataError> {
        let parsed: Uri = uri
            .trim()
            .parse()
            .map_err(|_| MetadataError::NotAnEndpoint(uri.to_owned()))?;
        Endpoint::from_uri(&parsed)
    }

    /// As [`Endpoint::new`], from a parsed URI.
    pub fn from_uri(uri: &Uri) -> Result<Endpoint, MetadataError> {
        if uri.scheme_str() != Some("http") || uri.host().is_none_or(|h| h.is_empty()) {
            return Err(MetadataError::NotAnEndpoint(uri.to_string()));
        }
        Ok(Endpoint {
            base: uri.to_string().trim_end_matches('/').to_owned(),
        })
    }

    /// `GET $URI`: this container.
    pub async fn container(&self, timeout: Duration) -> Result<Container, MetadataError> {
        let body = self.get(&self.base, timeout).await?;
        Container::parse(&body)
    }

    /// `GET $URI/task`: the task.
    pub async fn task(&self, timeout: Duration) -> Result<Task, MetadataError> {
        let body = self.get(&format!("{}/task", self.base), timeout).await?;
        Task::parse(&body)
    }

    async fn get(&self, uri: &str, timeout: Duration) -> Result<Vec<u8>, MetadataError> {
        let parsed: Uri = uri
            .parse()
            .map_err(|_| MetadataError::NotAnEndpoint(uri.to_owned()))?;
        let (status, body) =
            http::get(&parsed, timeout)
                .await
                .map_err(|source| MetadataError::Get {
                    uri: uri.to_owned(),
                    source,
                })?;
        if !status.is_success() {
            return Err(MetadataError::Status {
                uri: uri.to_owned(),
                status,
            });
        }
        Ok(body.to_vec())
    }
}

/// Label of a container's task ARN.
pub const LABEL_TASK_ARN: &str = "com.amazonaws.ecs.task-arn";
/// Label of the task definition's family.
pub const LABEL_FAMILY: &str = "com.amazonaws.ecs.task-definition-family";
/// Label of the task definition's revision.
pub const LABEL_REVISION: &str = "com.amazonaws.ecs.task-definition-version";

/// What `GET $URI` says about this container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Container {
    /// `Name`: the container's name in the task definition.
    pub name: Option<String>,
    /// `Labels` whose values are strings (the task ARN, the task definition).
    pub labels: BTreeMap<String, String>,
}

impl Container {
    /// Reads a container document.
    pub fn parse(body: &[u8]) -> Result<Container, MetadataError> {
        let doc = object(body)?;
        let labels = doc
            .get("Labels")
            .and_then(Value::as_object)
            .map(|labels| {
                labels
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Container {
            name: text(&doc, "Name"),
            labels,
        })
    }

    /// A label's value.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }

    /// The task's id: the last path part of its ARN label.
    pub fn task_id(&self) -> Option<&str> {
        self.label(LABEL_TASK_ARN).and_then(task_id)
    }
}

/// What `GET $URI/task` says about the task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Task {
    /// `TaskARN`.
    pub task_arn: Option<String>,
    /// `Family` of the task definition.
    pub family: Option<String>,
    /// `Revision` of the task definition.
    pub revision: Option<String>,
    /// `Limits.Memory`: the task-level memory limit in MiB (none on EC2 without one).
    pub memory_mib: Option<f64>,
    /// `Limits.CPU`: vCPUs.
    pub cpu: Option<f64>,
    /// `LaunchType`: `FARGATE`, `EC2` or `EXTERNAL` (as given: outside text). Limits
    /// differ by it (a container's `stopTimeout` is at most 120 s only on Fargate).
    pub launch_type: Option<String>,
}

/// The `LaunchType` of a task on Fargate.
pub const LAUNCH_TYPE_FARGATE: &str = "FARGATE";

const MIB: u64 = 1024 * 1024;

impl Task {
    /// Reads a task document.
    pub fn parse(body: &[u8]) -> Result<Task, MetadataError> {
        let doc = object(body)?;
        let limit = |name: &str| doc.get("Limits")?.get(name)?.as_f64();
        Ok(Task {
            task_arn: text(&doc, "TaskARN"),
            family: text(&doc, "Family"),
            revision: text(&doc, "Revision"),
            memory_mib: limit("Memory"),
            cpu: limit("CPU"),
            launch_type: text(&doc, "LaunchType"),
        })
    }

    /// Whether the task metadata says the task runs on Fargate.
    pub fn on_fargate(&self) -> bool {
        self.launch_type.as_deref() == Some(LAUNCH_TYPE_FARGATE)
    }

    /// The task's memory limit in bytes, when it has one.
    pub fn memory_limit(&self) -> Option<u64> {
        let mib = self.memory_mib?;
        if mib.is_finite() && mib > 0.0 {
            // MiB values are whole numbers; rounding only guards against 511.99999.
            Some((mib.round() as u64).saturating_mul(MIB)).filter(|b| *b > 0)
        } else {
            None
        }
    }

    /// The task's id: the last path part of its ARN.
    pub fn task_id(&self) -> Option<&str> {
        self.task_arn.as_deref().and_then(task_id)
    }
}

/// The last path part of a task ARN (`arn:aws:ecs:…:task/CLUSTER/ID` → `ID`).
fn task_id(arn: &str) -> Option<&str> {
    arn.rsplit('/').next().filter(|id| !id.is_empty())
}

fn object(body: &[u8]) -> Result<Map<String, Value>, MetadataError> {
    match serde_json::from_slice(body) {
        Ok(Value::Object(doc)) => Ok(doc),
        _ => Err(MetadataError::NotJson),
    }
}

fn text(doc: &Map<String, Value>, key: &str) -> Option<String> {
    doc.get(key)?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    /// Shaped like a real v4 task response (trimmed).
    const TASK: &str = r#"{
        "Cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
        "TaskARN": "arn:aws:ecs:us-east-1:123456789012:task/prod/cd189a933e5849daa93386466019ab50",
        "Family": "streamline-web",
        "Revision": "42",
        "Limits": {"CPU": 0.25, "Memory": 512},
        "LaunchType": "FARGATE",
        "Containers": []
    }"#;

    #[test]
    fn reads_the_task() {
        let t = Task::parse(TASK.as_bytes()).unwrap();
        assert_eq!(t.task_id(), Some("cd189a933e5849daa93386466019ab50"));
        assert_eq!(t.family.as_deref(), Some("streamline-web"));
        assert_eq!(t.revision.as_deref(), Some("42"));
        assert_eq!(t.cpu, Some(0.25));
        assert_eq!(t.memory_limit(), Some(512 * MIB));
        assert_eq!(t.launch_type.as_deref(), Some("FARGATE"));
        assert!(t.on_fargate());
    }

    #[test]
    fn reads_the_launch_type_leniently() {
        let launch = |body: &[u8]| Task::parse(body).unwrap();
        let ec2 = launch(br#"{"LaunchType":"EC2"}"#);
        assert_eq!(ec2.launch_type.as_deref(), Some("EC2"));
        assert!(!ec2.on_fargate());
        assert_eq!(
            launch(br#"{"LaunchType":"EXTERNAL"}"#)
                .launch_type
                .as_deref(),
            Some("EXTERNAL")
        );
        // Missing, empty or not a string: absent, and not Fargate.
        for body in [&b"{}"[..], br#"{"LaunchType":""}"#, br#"{"LaunchType":7}"#] {
            let t = launch(body);
            assert_eq!(t.launch_type, None, "{}", String::from_utf8_lossy(body));
            assert!(!t.on_fargate());
        }
        // As written: `fargate` is not a launch type ECS reports.
        assert!(!launch(br#"{"LaunchType":"fargate"}"#).on_fargate());
    }

    #[test]
    fn reads_the_task_limit_from_metadata() {
        let limit = |body: &[u8]| Task::parse(body).ok().and_then(|t| t.memory_limit());
        let body = br#"{"TaskARN":"arn:aws:ecs:us-east-1:1:task/c/abc","Limits":{"CPU":0.25,"Memory":512}}"#;
        assert_eq!(limit(body), Some(512 * MIB));
        assert_eq!(limit(br#"{"Limits":{"CPU":2}}"#), None);
        assert_eq!(limit(b"not json"), None);
        assert!(Task::parse(b"not json").is_err());
        assert_eq!(
            limit(br#"{"Limits":{"Memory":511.99999}}"#),
            Some(512 * MIB)
        );
        assert_eq!(limit(br#"{"Limits":{"Memory":0}}"#), None);
        assert_eq!(limit(br#"{"Limits":{"Memory":-1}}"#), None);
        assert_eq!(limit(br#"{"Limits":{"Memory":"512"}}"#), None);
    }

    #[test]
    fn reads_the_container_leniently() {
        let c = Container::parse(
            br#"{"Name":"web","Labels":{"com.amazonaws.ecs.task-arn":"arn:aws:ecs:r:1:task/c/abc","n":3}}"#,
        )
        .unwrap();
        assert_eq!(c.name.as_deref(), Some("web"));
        assert_eq!(c.task_id(), Some("abc"));
        assert_eq!(c.label("n"), None, "a label that is not a string is absent");
        assert_eq!(Container::parse(b"{}").unwrap(), Container::default());
        assert_eq!(
            Container::parse(br#"{"Name":7,"Labels":[]}"#).unwrap(),
            Container::default()
        );
        for not_an_object in [&b"not json"[..], b"[]", b"3", b"\"x\"", b""] {
            assert!(matches!(
                Container::parse(not_an_object),
                Err(MetadataError::NotJson)
            ));
        }
    }

    #[test]
    fn an_endpoint_is_an_http_url_with_a_host() {
        let e = Endpoint::new("http://169.254.170.2/v4/abc/").unwrap();
        assert_eq!(e.base, "http://169.254.170.2/v4/abc");
        for bad in ["https://169.254.170.2/v4", "/v4/abc", "", "not a url"] {
            assert!(Endpoint::new(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_address_comes_from_the_callers_environment() {
        let env: HashMap<String, String> = [(
            METADATA_URI_VAR.to_owned(),
            "http://169.254.170.2/v4/x".to_owned(),
        )]
        .into();
        assert_eq!(
            metadata_uri(&env).as_deref(),
            Some("http://169.254.170.2/v4/x")
        );
        assert_eq!(metadata_uri(&HashMap::<String, String>::new()), None);
    }

    #[tokio::test]
    async fn reads_both_documents_from_the_endpoint() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut buf = vec![0u8; 4096];
                let n = socket.read(&mut buf).await.unwrap();
                let asked = String::from_utf8_lossy(&buf[..n]).into_owned();
                let (status, body) = if asked.starts_with("GET /v4/abc/task ") {
                    ("200 OK", TASK.to_owned())
                } else if asked.starts_with("GET /v4/abc ") {
                    ("200 OK", r#"{"Name":"web"}"#.to_owned())
                } else {
                    ("404 Not Found", String::new())
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
            }
        });
        let timeout = Duration::from_secs(5);
        let e = Endpoint::new(&format!("http://{addr}/v4/abc")).unwrap();
        assert_eq!(
            e.container(timeout).await.unwrap().name.as_deref(),
            Some("web")
        );
        assert_eq!(
            e.task(timeout).await.unwrap().memory_limit(),
            Some(512 * MIB)
        );
        let missing = Endpoint::new(&format!("http://{addr}/v4/gone")).unwrap();
        let err = missing.task(timeout).await.unwrap_err();
        assert!(
            matches!(err, MetadataError::Status { status, .. } if status == StatusCode::NOT_FOUND),
            "{err}"
        );
    }

    proptest! {
        /// Any body: parsed or refused, never a panic.
        #[test]
        fn any_body_is_read_or_refused(body in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = Container::parse(&body);
            if let Ok(t) = Task::parse(&body) {
                let _ = (t.memory_limit(), t.task_id(), t.on_fargate());
            }
        }

        /// Whatever the values, the fields read back as written, and a memory limit is
        /// positive bytes or absent.
        #[test]
        fn documents_read_back_what_they_hold(
            name in any::<String>(),
            cluster in "[a-zA-Z0-9_-]{0,12}",
            id in "[a-f0-9]{0,32}",
            memory in prop_oneof![any::<f64>().prop_map(|m| json!(m)), any::<i64>().prop_map(|m| json!(m)), Just(json!(null)), Just(json!("512"))],
            launch_type in any::<String>(),
        ) {
            let arn = format!("arn:aws:ecs:us-east-1:1:task/{cluster}/{id}");
            let container = json!({"Name": name, "Labels": {LABEL_TASK_ARN: arn}});
            let c = Container::parse(container.to_string().as_bytes()).unwrap();
            prop_assert_eq!(c.name.as_deref(), Some(name.as_str()).filter(|n| !n.is_empty()));
            prop_assert_eq!(c.task_id(), Some(id.as_str()).filter(|i| !i.is_empty()));
            let task = json!({"TaskARN": arn, "Limits": {"Memory": memory}, "LaunchType": launch_type});
            let t = Task::parse(task.to_string().as_bytes()).unwrap();
            prop_assert_eq!(t.task_id(), c.task_id());
            prop_assert_eq!(t.launch_type.as_deref(), Some(launch_type.as_str()).filter(|l| !l.is_empty()));
            prop_assert_eq!(t.on_fargate(), launch_type == LAUNCH_TYPE_FARGATE);
            match t.memory_limit() {
                Some(bytes) => {
                    prop_assert!(bytes > 0);
                    prop_assert!(t.memory_mib.is_some_and(|m| m.is_finite() && m > 0.0));
                }
                None => prop_assert!(!t.memory_mib.is_some_and(|m| m.is_finite() && m.round() > 0.0)),
            }
        }
    }
}
