//! `cargo xtask notify` against a webhook server on loopback: the message arrives as
//! `{"text": ...}`, a refusal fails the command, and without a URL nothing is sent.

use e2e::tools as support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Output};

use support::assert_success;

/// Answers one request with `status` and returns what it received.
fn webhook(status: &'static str) -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/team", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while let Ok(read) = stream.read(&mut buffer) {
            if read == 0 {
                break;
            }
            received.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&received);
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let length = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|value| value.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                if body.len() >= length {
                    break;
                }
            }
        }
        let _ = stream.write_all(
            format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
                .as_bytes(),
        );
        String::from_utf8_lossy(&received).into_owned()
    });
    (url, handle)
}

fn notify(url: Option<&str>, text: &str) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    command.args(["notify", "--text", text]);
    command.env_remove("APP_CHAT_WEBHOOK_URL");
    if let Some(url) = url {
        command.env("APP_CHAT_WEBHOOK_URL", url);
    }
    command.env("NO_PROXY", "127.0.0.1");
    command.output().unwrap()
}

#[test]
fn messages_reach_the_webhook_and_refusals_fail() {
    let (url, server) = webhook("200 OK");
    let sent = notify(Some(&url), "Release v1.2.3: production success");
    assert_success(&sent, "xtask notify");
    let request = server.join().unwrap();
    assert!(request.starts_with("POST /hooks/team "), "{request}");
    let body = request.split_once("\r\n\r\n").unwrap().1;
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"text": "Release v1.2.3: production success"})
    );
    assert!(
        !String::from_utf8_lossy(&sent.stderr).contains(&url),
        "the webhook URL is a secret and is not printed"
    );

    let (url, server) = webhook("500 Internal Server Error");
    let refused = notify(Some(&url), "hello");
    server.join().unwrap();
    assert!(!refused.status.success(), "a refused message fails");

    let skipped = notify(None, "hello");
    assert_success(&skipped, "xtask notify without a webhook");
    assert!(String::from_utf8_lossy(&skipped.stderr).contains("no chat message sent"));
}
