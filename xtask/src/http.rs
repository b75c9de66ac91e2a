//! HTTP requests through curl, the one way xtask talks HTTP: the smoke checks, the admin API
//! (symbols, releases) and GitHub's API. curl uses the machine's trust store and resolver, and
//! secrets reach it in files (`--header @file`), never on its command line.

use std::path::Path;

use anyhow::Context;
use xshell::{Shell, cmd};

use crate::step;

/// One answer: its status, headers (names in lower case) and body.
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// What a request sends.
pub enum Body<'b> {
    None,
    /// JSON text.
    Json(&'b str),
    /// A file's bytes, with their content type.
    File(&'b Path, &'b str),
}

/// curl with the options every request of one client shares (time limit, proxy, trust, the
/// headers file).
pub struct Client<'a> {
    sh: &'a Shell,
    options: Vec<String>,
}

impl<'a> Client<'a> {
    /// A client whose requests may take `max_time_secs` each.
    pub fn new(sh: &'a Shell, max_time_secs: u32) -> Self {
        Self {
            sh,
            options: vec!["--max-time".into(), max_time_secs.to_string()],
        }
    }

    /// Talks to every host directly, whatever the proxy variables say (loopback, the
    /// project's own servers).
    pub fn without_proxy(mut self) -> Self {
        self.options.extend(["--noproxy".into(), "*".into()]);
        self
    }

    /// Sends the headers in `file` (one `Name: value` a line) with every request.
    pub fn with_headers_file(mut self, file: &Path) -> Self {
        self.options
            .extend(["--header".into(), format!("@{}", file.display())]);
        self
    }

    /// Adds curl options of its own (`--cacert`, `--resolve`, ...).
    pub fn with_options(mut self, options: impl IntoIterator<Item = String>) -> Self {
        self.options.extend(options);
        self
    }

    /// A request with an optional JSON body. Transport failures are errors, HTTP errors are
    /// answers.
    pub fn request(&self, method: &str, url: &str, json: Option<&str>) -> anyhow::Result<Answer> {
        let body = json.map_or(Body::None, Body::Json);
        self.send(method, url, body, &[])
    }

    /// A request with `body` and `extra` curl options for this one request.
    pub fn send(
        &self,
        method: &str,
        url: &str,
        body: Body<'_>,
        extra: &[&str],
    ) -> anyhow::Result<Answer> {
        let data: Vec<String> = match body {
            Body::None => Vec::new(),
            Body::Json(text) => vec![
                "--header".into(),
                "content-type: application/json".into(),
                "--data".into(),
                text.into(),
            ],
            Body::File(file, content_type) => vec![
                "--header".into(),
                format!("content-type: {content_type}"),
                "--data-binary".into(),
                format!("@{}", file.display()),
            ],
        };
        let options = &self.options;
        let write_out = "\n%{http_code}";
        let output = step::captured(cmd!(
            self.sh,
            "curl --silent --show-error --dump-header - --request {method} {options...} {extra...} {data...} --write-out {write_out} {url}"
        ))
        .with_context(|| format!("{method} {url}"))?;
        let (rest, status) = output
            .rsplit_once('\n')
            .context("curl printed no status line")?;
        let (head, body) = final_head(rest);
        let headers = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
            .collect();
        Ok(Answer {
            status: status.trim().parse().context("curl printed no status")?,
            headers,
            body: body.to_owned(),
        })
    }
}

/// The final answer's header block and the body, past any interim `1xx` answers (a large
/// upload gets `100 Continue` first).
fn final_head(mut text: &str) -> (&str, &str) {
    loop {
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text, ""));
        let interim = head
            .split_whitespace()
            .nth(1)
            .is_some_and(|code| code.starts_with('1'));
        if !interim || body.is_empty() {
            return (head, body);
        }
        text = body;
    }
}

#[cfg(test)]
mod tests {
    use super::final_head;

    #[test]
    fn interim_answers_are_skipped() {
        let text = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nx-a: 1\r\n\r\n{\"ok\":1}";
        assert_eq!(
            final_head(text),
            ("HTTP/1.1 201 Created\r\nx-a: 1", "{\"ok\":1}")
        );
        assert_eq!(final_head("HTTP/2 200\r\n\r\nbody"), ("HTTP/2 200", "body"));
    }
}
