//! `cargo xtask notify --text ...`: a chat message through an incoming webhook, for the release
//! workflow's outcome. Optional: without a webhook URL it says so and succeeds.

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::{flags, step};

impl flags::Notify {
    pub fn run(self, sh: &Shell) -> anyhow::Result<()> {
        let Some(url) = self.webhook_url.filter(|url| !url.trim().is_empty()) else {
            eprintln!("xtask: APP_CHAT_WEBHOOK_URL is not set; no chat message sent");
            return Ok(());
        };
        anyhow::ensure!(
            url.starts_with("https://") || url.starts_with("http://"),
            "the webhook URL must be an http:// or https:// URL"
        );
        let body = serde_json::json!({ "text": self.text }).to_string();
        // The URL is a secret: it reaches curl through a config file, not the command line.
        let scratch = tempfile::tempdir()?;
        let config = scratch.path().join("curl.conf");
        crate::atomic_file::write(
            &config,
            format!(
                "url = \"{}\"\n",
                url.replace('\\', "\\\\").replace('"', "\\\"")
            )
            .as_bytes(),
            0o600,
        )?;
        step::run("post to the chat webhook", || {
            step::captured(cmd!(
                sh,
                "curl --silent --show-error --fail-with-body --max-time 30 --config {config} --header content-type:application/json --data {body}"
            ))
            .context("the chat webhook refused the message")
            .map(drop)
        })
    }
}
