//! `agent import-task-definition`'s reading of a task definition (`agent::import`): the
//! input as a registered task definition and as `describe-task-definition`'s output,
//! with and without `--collapse`; and the input's lines as a container health check's
//! command. No panic on any bytes; a command that becomes the probe names a loopback URL.

use agent::import::{import, probe_url, Options};
use serde_json::{json, Value};

fn main() {
    afl::fuzz!(|data: &[u8]| {
        if let Ok(value) = serde_json::from_slice::<Value>(data) {
            let described = json!({ "taskDefinition": value.clone() });
            for collapse in [false, true] {
                let options = Options {
                    collapse,
                    ..Options::default()
                };
                let _ = import(&value, &options);
                let _ = import(&described, &options);
            }
        }
        if let Ok(text) = std::str::from_utf8(data) {
            let words: Vec<String> = text.split('\n').map(str::to_owned).collect();
            if let Some(probe) = probe_url(&words) {
                assert!(
                    probe.url.starts_with("http://127.0.0.1:"),
                    "{words:?} became {}",
                    probe.url
                );
            }
        }
    });
}
