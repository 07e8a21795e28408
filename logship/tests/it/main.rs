//! logship's integration tests, one binary (STYLE.md rule 9): the whole pipeline and
//! the shipper against the moto server the test services start, and against testkit's
//! CloudWatch Logs double for the faults moto cannot produce.

mod pipeline;
mod ship;

use aws_config::BehaviorVersion;
use aws_sdk_cloudwatchlogs::config::Credentials;

/// The SDK's configuration for CloudWatch Logs at `endpoint` (moto, or a double).
async fn sdk(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "test"))
        .load()
        .await
}
