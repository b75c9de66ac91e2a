//! HTTP requests through ureq, the one HTTP client xtask has: the smoke checks, the admin API
//! (symbols, releases) and GitHub's API. Certificates are checked against the machine's trust
//! store (rustls-platform-verifier) unless a CA file is given; secrets go into request headers in
//! memory, never onto a command line. The proxy variables are honoured unless a client talks to
//! its hosts directly, as ureq reads them: `ALL_PROXY`, then `HTTPS_PROXY`, then `HTTP_PROXY`
//! (upper or lower case) whatever the URL's scheme, and `NO_PROXY` as exact host names or
//! `.domain` suffixes (no CIDR ranges, unlike curl).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// The most of an answer's body that is read.
const BODY_LIMIT: u64 = 64 << 20;

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
    /// Bytes, with their content type.
    Bytes(&'b [u8], &'b str),
    /// A file's bytes, with their content type.
    File(&'b Path, &'b str),
}

/// A host name and port answered with a fixed address instead of the resolver's (as curl's
/// `--resolve HOST:PORT:ADDRESS`), for a site that DNS does not name yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolve {
    pub host: String,
    pub port: u16,
    pub address: IpAddr,
}

impl std::str::FromStr for Resolve {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let usage = || format!("{text:?} is not HOST:PORT:ADDRESS, e.g. app.test:443:127.0.0.1");
        let (host, rest) = text.split_once(':').ok_or_else(usage)?;
        let (port, address) = rest.split_once(':').ok_or_else(usage)?;
        let address = address.trim_start_matches('[').trim_end_matches(']');
        Ok(Self {
            host: host.to_ascii_lowercase(),
            port: port.parse().map_err(|_| usage())?,
            address: address.parse().map_err(|_| usage())?,
        })
    }
}

/// The resolver with the `Resolve` entries in front of it.
#[derive(Debug)]
struct Overrides {
    entries: Vec<Resolve>,
    fallback: DefaultResolver,
}

impl Resolver for Overrides {
    fn resolve(
        &self,
        uri: &ureq::http::Uri,
        config: &ureq::config::Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default().to_ascii_lowercase();
        let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
            Some("https") => 443,
            _ => 80,
        });
        match self
            .entries
            .iter()
            .find(|entry| entry.host == host && entry.port == port)
        {
            Some(entry) => {
                let mut found = self.empty();
                found.push(SocketAddr::new(entry.address, port));
                Ok(found)
            }
            None => self.fallback.resolve(uri, config, timeout),
        }
    }
}

/// A client: its time limit per request, proxy, trust, address overrides and the headers every
/// request carries.
pub struct Client {
    max_time: Duration,
    proxy: bool,
    roots: RootCerts,
    resolve: Vec<Resolve>,
    headers: Vec<(String, String)>,
    agent: ureq::Agent,
}

impl Client {
    /// A client whose requests may take `max_time_secs` each.
    pub fn new(max_time_secs: u64) -> Self {
        let mut client = Self {
            max_time: Duration::from_secs(max_time_secs),
            proxy: true,
            roots: RootCerts::PlatformVerifier,
            resolve: Vec::new(),
            headers: Vec::new(),
            agent: ureq::Agent::new_with_defaults(),
        };
        client.agent = client.build();
        client
    }

    fn build(&self) -> ureq::Agent {
        let mut config = ureq::Agent::config_builder()
            .timeout_global(Some(self.max_time))
            // Answers are answers, whatever their status; redirects are not followed.
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .tls_config(TlsConfig::builder().root_certs(self.roots.clone()).build());
        if !self.proxy {
            config = config.proxy(None);
        }
        ureq::Agent::with_parts(
            config.build(),
            DefaultConnector::default(),
            Overrides {
                entries: self.resolve.clone(),
                fallback: DefaultResolver::default(),
            },
        )
    }

    /// Talks to every host directly, whatever the proxy variables say (loopback, the
    /// project's own servers).
    pub fn without_proxy(mut self) -> Self {
        self.proxy = false;
        self.agent = self.build();
        self
    }

    /// Trusts only the certificates in the PEM file `cacert` (a test or staging CA).
    pub fn trusting(mut self, cacert: &Path) -> anyhow::Result<Self> {
        let pem = std::fs::read(cacert).with_context(|| format!("read {}", cacert.display()))?;
        let certificates: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
            .filter_map(|item| match item {
                Ok(PemItem::Certificate(certificate)) => Some(Ok(certificate)),
                Ok(_) => None,
                Err(err) => Some(Err(err)),
            })
            .collect::<Result<_, _>>()
            .with_context(|| format!("{} is not a PEM file", cacert.display()))?;
        anyhow::ensure!(
            !certificates.is_empty(),
            "{} holds no PEM certificate",
            cacert.display()
        );
        self.roots = RootCerts::new_with_certs(&certificates);
        self.agent = self.build();
        Ok(self)
    }

    /// Answers these host names with fixed addresses.
    pub fn resolving(mut self, entries: &[Resolve]) -> Self {
        self.resolve = entries.to_vec();
        self.agent = self.build();
        self
    }

    /// Sends `name: value` with every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A request with an optional JSON body. Transport failures are errors, HTTP errors are
    /// answers.
    pub fn request(&self, method: &str, url: &str, json: Option<&str>) -> anyhow::Result<Answer> {
        self.send(method, url, json.map_or(Body::None, Body::Json))
    }

    /// A request with `body`.
    pub fn send(&self, method: &str, url: &str, body: Body<'_>) -> anyhow::Result<Answer> {
        let read;
        let (bytes, content_type): (&[u8], Option<&str>) = match body {
            Body::None => (&[], None),
            Body::Json(text) => (text.as_bytes(), Some("application/json")),
            Body::Bytes(bytes, content_type) => (bytes, Some(content_type)),
            Body::File(file, content_type) => {
                read = std::fs::read(file).with_context(|| format!("read {}", file.display()))?;
                (&read, Some(content_type))
            }
        };
        let mut request = ureq::http::Request::builder().method(method).uri(url);
        for (name, value) in &self.headers {
            request = request.header(name, value);
        }
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let request = request
            .body(bytes)
            .with_context(|| format!("{method} {url}: not a valid request"))?;
        let mut response = self
            .agent
            .run(request)
            .with_context(|| format!("{method} {url}"))?;
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .with_context(|| format!("{method} {url}: read the answer"))?;
        Ok(Answer {
            status: response.status().as_u16(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::Resolve;

    #[test]
    fn resolve_entries_are_host_port_and_address() {
        let entry: Resolve = "App.test:443:127.0.0.1".parse().unwrap();
        assert_eq!(
            entry,
            Resolve {
                host: "app.test".into(),
                port: 443,
                address: "127.0.0.1".parse().unwrap()
            }
        );
        let v6: Resolve = "app.test:8443:[::1]".parse().unwrap();
        assert_eq!(v6.address, "::1".parse::<std::net::IpAddr>().unwrap());
        for bad in [
            "app.test",
            "app.test:443",
            "app.test:x:127.0.0.1",
            "a:1:nope",
        ] {
            let err = bad.parse::<Resolve>().unwrap_err();
            assert!(err.contains("HOST:PORT:ADDRESS"), "{err}");
        }
    }
}
