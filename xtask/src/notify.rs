//! `cargo xtask notify --text ...`: a chat message through an incoming webhook, for the release
//! workflow's outcome. Optional: without a webhook URL it says so and succeeds.

use crate::{flags, step};

impl flags::Notify {
    pub fn run(self) -> anyhow::Result<()> {
        let Some(url) = self.webhook_url.filter(|url| !url.trim().is_empty()) else {
            eprintln!("xtask: APP_CHAT_WEBHOOK_URL is not set; no chat message sent");
            return Ok(());
        };
        anyhow::ensure!(
            url.starts_with("https://") || url.starts_with("http://"),
            "the webhook URL must be an http:// or https:// URL"
        );
        let body = serde_json::json!({ "text": self.text }).to_string();
        step::run("post to the chat webhook", || {
            // The URL is a secret: it stays in memory, and out of the error (only its host is named).
            let answer = crate::http::Client::new(30)
                .request("POST", &url, Some(&body))
                .map_err(|err| {
                    // ureq's own error names no URL except when the URL itself is bad; the
                    // context around it does, so only the cause is shown.
                    let reason = match err.downcast_ref::<ureq::Error>() {
                        Some(ureq::Error::BadUri(_)) | None => "not a usable URL".to_owned(),
                        Some(cause) => cause.to_string(),
                    };
                    anyhow::anyhow!(
                        "no answer from the chat webhook at {}: {reason}",
                        host(&url)
                    )
                })?;
            anyhow::ensure!(
                answer.is_success(),
                "the chat webhook at {} refused the message ({}): {}",
                host(&url),
                answer.status,
                answer.body
            );
            Ok(())
        })
    }
}

/// The host part of a URL, for messages that must not show the rest.
fn host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_host_of_the_secret_url_is_named() {
        assert_eq!(
            super::host("https://hooks.example.org/services/T0/B0/secret?x=1"),
            "hooks.example.org"
        );
        assert_eq!(
            super::host("https://user:pw@chat.test:8443/x"),
            "chat.test:8443"
        );
    }
}
