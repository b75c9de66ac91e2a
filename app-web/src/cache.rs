//! Redis: the response cache and the counters behind per-client rate limits. Redis is optional
//! to serving: every call has a short timeout, and when Redis is down callers fall back to
//! PostgreSQL (and count that) instead of failing.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::Context;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::Mutex;

use crate::config::RedisConfig;

/// Why a cache call gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("no Redis is configured")]
    Disabled,
    #[error("Redis is unreachable: {0}")]
    Unavailable(String),
}

struct Connection {
    client: redis::Client,
    /// Set once the first connection succeeds; the manager then reconnects by itself.
    manager: RwLock<Option<ConnectionManager>>,
    /// Held by the one task trying to connect; it records when that try began.
    connecting: Mutex<Option<Instant>>,
}

/// A handle on Redis that reconnects on its own and never blocks a request for long.
#[derive(Clone)]
pub struct Cache {
    connection: Option<Arc<Connection>>,
    timeout: Duration,
    pub ttl: Duration,
}

/// How often a missing connection is retried; calls in between fail fast.
const RECONNECT_INTERVAL: Duration = Duration::from_secs(1);

impl Cache {
    pub fn new(config: &RedisConfig) -> anyhow::Result<Self> {
        let connection = match config.url()? {
            None => None,
            Some(url) => {
                use redis::IntoConnectionInfo;
                let mut info = url.as_str().into_connection_info().context(
                    "the Redis URL does not parse; expected redis://[:password@]host[:port][/db]",
                )?;
                if let Some(password) = crate::config::value_or_file(
                    None,
                    config.redis_password_file.as_deref(),
                    "Redis password",
                )? {
                    let settings = info.redis_settings().clone().set_password(password);
                    info = info.set_redis_settings(settings);
                }
                let client = redis::Client::open(info).context("set up the Redis client")?;
                Some(Arc::new(Connection {
                    client,
                    manager: RwLock::new(None),
                    connecting: Mutex::new(None),
                }))
            }
        };
        Ok(Self {
            connection,
            timeout: Duration::from_millis(config.redis_timeout_ms),
            ttl: Duration::from_secs(config.cache_ttl_secs),
        })
    }

    /// A cache that never holds anything, for running without Redis.
    pub fn disabled() -> Self {
        Self {
            connection: None,
            timeout: Duration::from_millis(250),
            ttl: Duration::from_secs(30),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.connection.is_some()
    }

    /// The connection manager, creating it when Redis has come (back) up.
    async fn manager(&self) -> Result<ConnectionManager, CacheError> {
        let connection = self.connection.as_ref().ok_or(CacheError::Disabled)?;
        if let Some(manager) = connection
            .manager
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Ok(manager.clone());
        }
        // One task connects at a time; the others bypass the cache rather than queue behind it.
        let Ok(mut last_attempt) = connection.connecting.try_lock() else {
            return Err(CacheError::Unavailable(
                "another request is connecting".into(),
            ));
        };
        if last_attempt.is_some_and(|at| at.elapsed() < RECONNECT_INTERVAL) {
            return Err(CacheError::Unavailable(
                "waiting before the next reconnect".into(),
            ));
        }
        *last_attempt = Some(Instant::now());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
            .set_number_of_retries(1);
        let created = tokio::time::timeout(
            self.timeout * 2,
            ConnectionManager::new_with_config(connection.client.clone(), config),
        )
        .await
        .map_err(|_| CacheError::Unavailable("connect timed out".into()))?
        .map_err(|err| CacheError::Unavailable(err.to_string()))?;
        *connection
            .manager
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(created.clone());
        Ok(created)
    }

    /// Runs one Redis call under the timeout.
    async fn call<T>(
        &self,
        operation: impl AsyncFnOnce(&mut ConnectionManager) -> redis::RedisResult<T>,
    ) -> Result<T, CacheError> {
        let mut manager = self.manager().await?;
        match tokio::time::timeout(self.timeout, operation(&mut manager)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(CacheError::Unavailable(err.to_string())),
            Err(_) => Err(CacheError::Unavailable("call timed out".into())),
        }
    }

    pub async fn get(&self, key: &str) -> Result<Option<String>, CacheError> {
        self.call(async |manager| manager.get(key).await).await
    }

    pub async fn set(&self, key: &str, value: &str) -> Result<(), CacheError> {
        let ttl = self.ttl.as_secs().max(1);
        self.call(async |manager| manager.set_ex(key, value, ttl).await)
            .await
    }

    pub async fn delete(&self, key: &str) -> Result<(), CacheError> {
        self.call(async |manager| manager.del(key).await).await
    }

    /// Increments `key`, giving it `window` to live when it is new; returns the new count.
    pub async fn count_in_window(&self, key: &str, window: Duration) -> Result<u64, CacheError> {
        let seconds = window.as_secs().max(1) as i64;
        self.call(async |manager| {
            let (count,): (u64,) = redis::pipe()
                .atomic()
                .incr(key, 1)
                .expire(key, seconds)
                .ignore()
                .query_async(manager)
                .await?;
            Ok(count)
        })
        .await
    }

    /// Readiness of Redis: `Ok` after a PING answered PONG.
    pub async fn ping(&self) -> Result<(), CacheError> {
        let pong: String = self
            .call(async |manager| redis::cmd("PING").query_async(manager).await)
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(CacheError::Unavailable(format!("PING answered {pong:?}")))
        }
    }
}

/// JSON values in the cache, counted as hits, misses and bypasses. A failing Redis never fails
/// the caller: lookups miss and writes are dropped.
impl Cache {
    pub async fn lookup<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        if !self.is_enabled() {
            return None;
        }
        match self.get(key).await {
            Ok(Some(text)) => match serde_json::from_str(&text) {
                Ok(value) => {
                    metrics::counter!(crate::metrics::CACHE_HITS).increment(1);
                    Some(value)
                }
                Err(err) => {
                    tracing::warn!(key, error = %err, "dropping a cache entry that does not parse");
                    self.forget(key).await;
                    None
                }
            },
            Ok(None) => {
                metrics::counter!(crate::metrics::CACHE_MISSES).increment(1);
                None
            }
            Err(err) => {
                self.count_bypass(&err);
                None
            }
        }
    }

    pub async fn store<T: serde::Serialize>(&self, key: &str, value: &T) {
        if !self.is_enabled() {
            return;
        }
        let Ok(text) = serde_json::to_string(value) else {
            return;
        };
        if let Err(err) = self.set(key, &text).await {
            self.count_bypass(&err);
        }
    }

    pub async fn forget(&self, key: &str) {
        if !self.is_enabled() {
            return;
        }
        if let Err(err) = self.delete(key).await {
            self.count_bypass(&err);
        }
    }

    /// The current generation of a family of entries, or `None` when Redis cannot say (then
    /// nothing of that family is cached or looked up).
    pub async fn generation(&self, key: &str) -> Option<String> {
        if !self.is_enabled() {
            return None;
        }
        match self.get(key).await {
            Ok(generation) => Some(generation.unwrap_or_else(|| "0".to_owned())),
            Err(err) => {
                self.count_bypass(&err);
                None
            }
        }
    }

    /// Moves a family of entries to a new generation, so none of the old ones is read again;
    /// they expire with their TTL.
    pub async fn retire_pages(&self, generation_key: &str) {
        if !self.is_enabled() {
            return;
        }
        let result: Result<u64, CacheError> = self
            .call(async |manager| manager.incr(generation_key, 1).await)
            .await;
        if let Err(err) = result {
            // A page cached before the write may be served until its TTL runs out.
            tracing::warn!(error = %err, "could not retire cached pages; they expire with their TTL");
            self.count_bypass(&err);
        }
    }

    fn count_bypass(&self, err: &CacheError) {
        metrics::counter!(crate::metrics::CACHE_BYPASSES).increment(1);
        tracing::debug!(error = %err, "cache bypassed");
    }
}
