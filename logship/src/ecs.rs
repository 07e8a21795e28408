//! The ECS task metadata endpoint v4, read once at start: the task id, container name
//! and task definition that name the log stream (as the awslogs driver does) and are
//! added to each event.

use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;

use crate::structure::Context;

/// How long the (link-local, in-task) endpoint may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Reads `GET $ECS_CONTAINER_METADATA_URI_V4`: the container's `Name` and the task's
/// labels (`com.amazonaws.ecs.task-arn`, `…task-definition-family`, `…-version`).
pub async fn read(uri: &str) -> Result<Context, String> {
    let body = tokio::time::timeout(TIMEOUT, get(uri))
        .await
        .map_err(|_| format!("no answer from {uri} within {TIMEOUT:?}"))??;
    parse(&body)
}

pub fn parse(body: &[u8]) -> Result<Context, String> {
    let v: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| format!("the container metadata is not JSON: {e}"))?;
    let label = |k: &str| v["Labels"][k].as_str().unwrap_or_default().to_owned();
    let arn = label("com.amazonaws.ecs.task-arn");
    let task_id = arn.rsplit('/').next().unwrap_or_default().to_owned();
    let container_name = v["Name"].as_str().unwrap_or_default().to_owned();
    if task_id.is_empty() || container_name.is_empty() {
        return Err("the container metadata has no Name or task ARN label".into());
    }
    Ok(Context {
        task_id,
        container_name,
        task_definition: format!(
            "{}:{}",
            label("com.amazonaws.ecs.task-definition-family"),
            label("com.amazonaws.ecs.task-definition-version")
        ),
    })
}

async fn get(uri: &str) -> Result<Vec<u8>, String> {
    let url: hyper::Uri = uri
        .parse()
        .map_err(|e| format!("{uri:?} is not a URL: {e}"))?;
    if url.scheme_str() != Some("http") {
        return Err(format!("{uri:?} is not an http:// URL"));
    }
    let host = url
        .host()
        .ok_or_else(|| format!("{uri:?} has no host"))?
        .to_owned();
    let port = url.port_u16().unwrap_or(80);
    let stream = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::get(url.path_and_query().map_or("/", |p| p.as_str()))
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("{uri} answered {}", response.status()));
    }
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes()
        .to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like a real v4 container response (trimmed).
    const SAMPLE: &str = r#"{
        "DockerId": "cd189a933e5849daa93386466019ab50-2495160603",
        "Name": "web",
        "DockerName": "web",
        "Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/streamline:1.4.2",
        "Labels": {
            "com.amazonaws.ecs.cluster": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
            "com.amazonaws.ecs.container-name": "web",
            "com.amazonaws.ecs.task-arn": "arn:aws:ecs:us-east-1:123456789012:task/prod/cd189a933e5849daa93386466019ab50",
            "com.amazonaws.ecs.task-definition-family": "streamline-web",
            "com.amazonaws.ecs.task-definition-version": "42"
        },
        "Limits": {"CPU": 2},
        "LaunchType": "FARGATE"
    }"#;

    #[test]
    fn task_id_container_and_definition() {
        let c = parse(SAMPLE.as_bytes()).unwrap();
        assert_eq!(c.task_id, "cd189a933e5849daa93386466019ab50");
        assert_eq!(c.container_name, "web");
        assert_eq!(c.task_definition, "streamline-web:42");
    }

    #[test]
    fn incomplete_metadata_is_an_error() {
        assert!(parse(b"{}").is_err());
        assert!(parse(b"not json").is_err());
    }
}
