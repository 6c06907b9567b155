//! Registration with the tunnel server: the HTTP request that creates a
//! tunnel and the answer that says where to connect.

use std::time::Duration;

use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::TunnelConfig;

/// Limits of the registration request.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Most connections kept open, whatever the server allows.
const MAX_CONNECTIONS: usize = 32;

/// A tunnel the server created for us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The tunnel id, the first label of the public host name.
    pub id: String,
    /// The public URL visitors open.
    pub url: String,
    /// Where the pool connects: the answer's `ip`, else the server's host.
    pub remote_host: String,
    pub remote_port: u16,
    /// How many connections to keep open (`max_conn_count`, at least 1).
    pub connections: usize,
}

/// Why a registration failed; every case is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    #[error("tunnel server unreachable: {0}")]
    Unreachable(#[source] reqwest::Error),
    #[error("tunnel server refused the registration ({status}): {message}")]
    Refused { status: StatusCode, message: String },
    #[error("tunnel server sent an invalid answer: {0}")]
    InvalidAnswer(String),
}

/// The JSON answer of a LocalTunnel server.
#[derive(Debug, Deserialize)]
struct Answer {
    id: String,
    port: u16,
    url: String,
    #[serde(default)]
    max_conn_count: Option<usize>,
    #[serde(default)]
    ip: Option<String>,
}

/// The body of a refusal, when the server explains itself.
#[derive(Debug, Deserialize)]
struct Refusal {
    message: String,
}

/// The HTTP client used to register; TLS through rustls with ring.
pub(crate) fn http_client() -> reqwest::Result<reqwest::Client> {
    // The first provider installed wins; another one already there is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("dispatch-gateway/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(REQUEST_TIMEOUT)
        .build()
}

/// `GET <server>/<subdomain>`, or `GET <server>/?new` for any id.
pub(crate) fn registration_url(config: &TunnelConfig) -> Url {
    let mut url = config.server().clone();
    url.set_query(None);
    url.set_fragment(None);
    let base = url.path().trim_end_matches('/').to_owned();
    match config.subdomain() {
        Some(subdomain) => url.set_path(&format!("{base}/{subdomain}")),
        None => {
            url.set_path(&format!("{base}/"));
            url.set_query(Some("new"));
        }
    }
    url
}

/// Asks the server for a tunnel.
pub(crate) async fn register(
    client: &reqwest::Client,
    config: &TunnelConfig,
) -> Result<Registration, RegistrationError> {
    let url = registration_url(config);
    tracing::debug!(%url, "registering the tunnel");
    let response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(RegistrationError::Unreachable)?;
    let status = response.status();
    let body = response
        .bytes()
        .await
        .map_err(RegistrationError::Unreachable)?;
    if !status.is_success() {
        let message = serde_json::from_slice::<Refusal>(&body)
            .map(|refusal| refusal.message)
            .unwrap_or_else(|_| "no explanation given".to_owned());
        return Err(RegistrationError::Refused { status, message });
    }
    let answer: Answer = serde_json::from_slice(&body).map_err(|error| {
        RegistrationError::InvalidAnswer(format!("not the expected JSON: {error}"))
    })?;
    answer.into_registration(config)
}

impl Answer {
    fn into_registration(self, config: &TunnelConfig) -> Result<Registration, RegistrationError> {
        let public = Url::parse(&self.url)
            .map_err(|_| RegistrationError::InvalidAnswer(format!("bad url {:?}", self.url)))?;
        if !matches!(public.scheme(), "http" | "https") {
            return Err(RegistrationError::InvalidAnswer(format!(
                "url {:?} is not http(s)",
                self.url
            )));
        }
        if self.port == 0 {
            return Err(RegistrationError::InvalidAnswer("port 0".to_owned()));
        }
        let remote_host = match self.ip.filter(|ip| !ip.is_empty()) {
            Some(ip) => ip,
            None => host_of(config.server()),
        };
        Ok(Registration {
            id: self.id,
            url: self.url,
            remote_host,
            remote_port: self.port,
            connections: self.max_conn_count.unwrap_or(1).clamp(1, MAX_CONNECTIONS),
        })
    }
}

/// The server's host name or address, without IPv6 brackets.
fn host_of(server: &Url) -> String {
    let host = server.host_str().unwrap_or_default();
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(server: &str, subdomain: Option<&str>) -> TunnelConfig {
        let subdomain = subdomain.map(|s| s.parse().unwrap());
        let local = super::super::Destination::dial("127.0.0.1:3000".parse().unwrap());
        TunnelConfig::new(server, subdomain, local).unwrap()
    }

    #[test]
    fn asks_for_a_new_tunnel_or_a_subdomain() {
        let url = registration_url(&config("https://localtunnel.me", None));
        assert_eq!(url.as_str(), "https://localtunnel.me/?new");
        let url = registration_url(&config("http://127.0.0.1:9000/", Some("my-dispatch")));
        assert_eq!(url.as_str(), "http://127.0.0.1:9000/my-dispatch");
        let url = registration_url(&config("http://lt.example/base/", None));
        assert_eq!(url.as_str(), "http://lt.example/base/?new");
    }

    #[test]
    fn answer_gives_where_to_connect() {
        let config = config("http://[::1]:9000", None);
        let answer: Answer = serde_json::from_str(
            r#"{"id":"abcd","port":4321,"max_conn_count":10,"url":"http://abcd.lt.test"}"#,
        )
        .unwrap();
        let registration = answer.into_registration(&config).unwrap();
        assert_eq!(registration.remote_host, "::1");
        assert_eq!(registration.remote_port, 4321);
        assert_eq!(registration.connections, 10);

        let answer: Answer = serde_json::from_str(
            r#"{"id":"abcd","ip":"10.1.2.3","port":4321,"url":"https://abcd.lt.test"}"#,
        )
        .unwrap();
        let registration = answer.into_registration(&config).unwrap();
        assert_eq!(registration.remote_host, "10.1.2.3");
        assert_eq!(registration.connections, 1);
    }

    #[test]
    fn answer_with_a_non_http_url_is_refused() {
        let config = config("http://127.0.0.1:9000", None);
        let answer: Answer =
            serde_json::from_str(r#"{"id":"x","port":1,"url":"javascript:alert(1)"}"#).unwrap();
        assert!(matches!(
            answer.into_registration(&config),
            Err(RegistrationError::InvalidAnswer(_))
        ));
    }
}
