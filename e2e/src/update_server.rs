//! app-web as an update server on a real PostgreSQL, with the admin API's token, and helpers
//! to publish and change releases and to check for updates.

use reqwest::StatusCode;
use serde_json::Value;

use super::{Postgres, RunningBinary, http_client};

/// An updater key pair as Tauri keeps it: the public key base64-encoded, and a signer.
pub struct UpdaterKeys {
    pub public: String,
    secret: minisign::SecretKey,
}

impl UpdaterKeys {
    pub fn generate() -> Self {
        use base64::Engine;
        let pair = minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        let public =
            base64::engine::general_purpose::STANDARD.encode(pair.pk.to_box().unwrap().to_string());
        Self {
            public,
            secret: pair.sk,
        }
    }

    /// A `.sig` file's text for `data` of release `version`, as `cargo xtask sign` writes it.
    pub fn sign(&self, data: &[u8], version: &str) -> String {
        use base64::Engine;
        let signature = minisign::sign(
            None,
            &self.secret,
            std::io::Cursor::new(data),
            Some(&format!("timestamp:1\tfile:bundle\tversion:{version}")),
            Some("signature from tauri secret key"),
        )
        .unwrap();
        base64::engine::general_purpose::STANDARD.encode(signature.to_string())
    }
}

/// The admin token the server is started with.
pub const TOKEN: &str = "admin-token-for-tests-0123456789abcdef";

pub struct UpdateServer {
    /// The updater key pair the server checks published signatures against.
    pub keys: UpdaterKeys,
    pub app: RunningBinary,
    pub postgres: Postgres,
    /// A temporary folder for the server's files (the token; crash reports when asked).
    pub folder: tempfile::TempDir,
    pub client: reqwest::Client,
}

impl UpdateServer {
    pub fn start() -> Self {
        Self::start_with(None, &[])
    }

    /// The server on its own PostgreSQL and, when given, `redis`, with `extra` flags;
    /// `{folder}` in a flag stands for [`UpdateServer::folder`].
    pub fn start_with(redis: Option<&super::Redis>, extra: &[&str]) -> Self {
        let postgres = Postgres::start().expect("start PostgreSQL");
        let folder = tempfile::tempdir().unwrap();
        let token_file = folder.path().join("admin_token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
        let folder_text = folder.path().to_str().unwrap();
        let keys = UpdaterKeys::generate();
        let mut args = vec![
            "--admin-token-file".to_owned(),
            token_file.to_str().unwrap().to_owned(),
        ];
        // A test that publishes bundles signed with a key of its own names that key instead.
        if !extra.contains(&"--updater-public-key") {
            args.extend(["--updater-public-key".to_owned(), keys.public.clone()]);
        }
        args.extend(extra.iter().map(|arg| arg.replace("{folder}", folder_text)));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let app = RunningBinary::start_on(&postgres, redis, &args);
        Self {
            keys,
            app,
            postgres,
            folder,
            client: http_client(),
        }
    }

    /// A GET of the admin API: the status and the JSON answer.
    pub async fn admin_get(&self, path: &str) -> (StatusCode, Value) {
        let answer = self
            .client
            .get(self.app.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    pub async fn publish(&self, release: &Value) -> (StatusCode, Value) {
        self.admin(
            self.client.post(self.app.url("/api/admin/releases")),
            release,
        )
        .await
    }

    pub async fn change(&self, version: &str, change: Value) -> (StatusCode, Value) {
        let url = self.app.url(&format!("/api/admin/releases/{version}"));
        self.admin(self.client.patch(url), &change).await
    }

    /// `request` to the admin API with the token and `body`: the status and the JSON answer.
    pub async fn admin(
        &self,
        request: reqwest::RequestBuilder,
        body: &Value,
    ) -> (StatusCode, Value) {
        let answer = request.bearer_auth(TOKEN).json(body).send().await.unwrap();
        let status = answer.status();
        (status, answer.json().await.unwrap_or(Value::Null))
    }

    /// An update check: the status, the headers and the JSON body (null for 204).
    pub async fn check(&self, path: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let answer = self
            .client
            .get(self.app.url(&format!("/api/updates/{path}")))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let headers = answer.headers().clone();
        (status, headers, answer.json().await.unwrap_or(Value::Null))
    }

    pub async fn offered(&self, path: &str) -> Option<String> {
        let (status, _, body) = self.check(path).await;
        assert!(
            status == StatusCode::OK || status == StatusCode::NO_CONTENT,
            "{path}: {status} {body}"
        );
        body["version"].as_str().map(String::from)
    }
}
