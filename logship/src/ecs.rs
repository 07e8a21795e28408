//! The log context from the ECS task metadata endpoint v4, read once at start: the task
//! id, container name and task definition that name the log stream (as the awslogs
//! driver does) and are added to each event.
//!
//! What it is not: the endpoint's reader — [`aws::ecs`] fetches and parses the
//! container document (bounded, lenient); this module says which of its fields the log
//! pipeline cannot do without.

use std::time::Duration;

use aws::ecs::{Container, Endpoint, MetadataError, LABEL_FAMILY, LABEL_REVISION};

use crate::structure::Context;

/// How long the (link-local, in-task) endpoint may take.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// Why there is no log context.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("cannot read the container metadata: {0}")]
    Metadata(#[from] MetadataError),
    #[error("the container metadata has no Name or task ARN label")]
    Incomplete,
}

/// Reads `GET $ECS_CONTAINER_METADATA_URI_V4`: the container's `Name` and the task's
/// labels (`com.amazonaws.ecs.task-arn`, `…task-definition-family`, `…-version`).
pub async fn read(uri: &str) -> Result<Context, ContextError> {
    let container = Endpoint::new(uri)?.container(TIMEOUT).await?;
    context(&container)
}

/// The context of a container document.
pub fn parse(body: &[u8]) -> Result<Context, ContextError> {
    context(&Container::parse(body)?)
}

fn context(c: &Container) -> Result<Context, ContextError> {
    let (Some(task_id), Some(container_name)) = (c.task_id(), c.name.as_deref()) else {
        return Err(ContextError::Incomplete);
    };
    Ok(Context {
        task_id: task_id.to_owned(),
        container_name: container_name.to_owned(),
        task_definition: format!(
            "{}:{}",
            c.label(LABEL_FAMILY).unwrap_or_default(),
            c.label(LABEL_REVISION).unwrap_or_default()
        ),
    })
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

    #[tokio::test]
    async fn an_endpoint_that_is_not_http_is_an_error() {
        let err = read("https://169.254.170.2/v4/x").await.unwrap_err();
        assert!(matches!(err, ContextError::Metadata(_)), "{err}");
    }
}
