//! The one HTTP client every saksi tool uses to talk to a server it does not trust: `saksi verify
//! --url`, `saksi mirror`, `saksi submit` and `log-statement`, and the engine asking witnesses to
//! cosign. Built on ureq with rustls.
//!
//! Against a hostile server it keeps these promises: every call ends within its timeout; a response
//! body larger than the caller's limit is an error, read no further; redirects are not followed (a
//! log or API that moves is news the caller should see, not follow); nothing is allocated in
//! proportion to a length the server claims; no input makes it panic. HTTPS trusts the Mozilla
//! roots, or, when `SSL_CERT_FILE` names a PEM file (as for curl and OpenSSL), the certificates in
//! it instead, so a deployment behind a private CA can be verified.

use std::time::Duration;

/// How long a call may take, connection and whole body included, unless set otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Connecting (TCP and TLS) may take at most this.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest response body read unless set otherwise: a full tile of entries is at most
/// 256 x 64 KiB; API pages are far smaller.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 17 << 20;

#[derive(Debug)]
pub enum ClientError {
    /// The URL is not http:// or https://, or does not parse.
    Url(String),
    /// `SSL_CERT_FILE` could not be read or holds no certificate.
    Certificates(String),
    /// Connecting, TLS, the request or the response failed (timeouts included).
    Transport(String),
    /// The body is longer than the limit.
    TooLarge { limit: u64 },
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Url(e) => write!(f, "bad URL: {e}"),
            ClientError::Certificates(e) => write!(f, "SSL_CERT_FILE: {e}"),
            ClientError::Transport(e) => write!(f, "{e}"),
            ClientError::TooLarge { limit } => {
                write!(f, "the response is larger than {limit} bytes")
            }
        }
    }
}

impl std::error::Error for ClientError {}

/// Retries of a GET answered "come back later" (see [`Client::get`]).
pub const MAX_GET_RETRIES: u32 = 20;
/// The longest wait a `Retry-After` may ask of a GET.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// A response: its status (any, redirects included) and its whole body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub max_response_bytes: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            timeout: DEFAULT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// A client; cheap to clone, safe to share between threads (connections are pooled).
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    max_response_bytes: u64,
}

impl Client {
    pub fn new(options: Options) -> Result<Client, ClientError> {
        let roots = match std::env::var_os("SSL_CERT_FILE") {
            Some(path) if !path.is_empty() => {
                let pem = std::fs::read(&path).map_err(|e| {
                    ClientError::Certificates(format!("{}: {e}", path.to_string_lossy()))
                })?;
                let certificates: Vec<_> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certificates.is_empty() {
                    return Err(ClientError::Certificates(format!(
                        "{} holds no PEM certificate",
                        path.to_string_lossy()
                    )));
                }
                ureq::tls::RootCerts::new_with_certs(&certificates)
            }
            _ => ureq::tls::RootCerts::WebPki,
        };
        let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(options.timeout))
            .timeout_connect(Some(options.connect_timeout))
            .max_redirects(0)
            .max_redirects_will_error(false)
            .http_status_as_error(false)
            .user_agent(concat!("saksi/", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        Ok(Client {
            agent: config.into(),
            max_response_bytes: options.max_response_bytes,
        })
    }

    /// GETs `url`. A GET is safe to repeat, so an answer asking to come back later (429 or 503
    /// with `Retry-After`, as a server's rate limit gives a verifier reading thousands of tiles)
    /// is retried after the time it names (at most [`MAX_RETRY_WAIT`]), up to [`MAX_GET_RETRIES`]
    /// times; then the last answer is returned as it is.
    pub fn get(&self, url: &str) -> Result<Response, ClientError> {
        check_url(url)?;
        let mut attempt = 0;
        loop {
            let response = self.agent.get(url).call().map_err(transport)?;
            let status = response.status().as_u16();
            let wait = response
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(|seconds| Duration::from_secs(seconds).min(MAX_RETRY_WAIT));
            match wait {
                Some(wait) if matches!(status, 429 | 503) && attempt < MAX_GET_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(wait.max(Duration::from_millis(100)));
                }
                _ => return self.read(response),
            }
        }
    }

    pub fn post(&self, url: &str, body: &[u8]) -> Result<Response, ClientError> {
        check_url(url)?;
        let response = self
            .agent
            .post(url)
            .content_type("application/octet-stream")
            .send(body)
            .map_err(transport)?;
        self.read(response)
    }

    fn read(
        &self,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> Result<Response, ClientError> {
        let status = response.status().as_u16();
        // Bounded read: stops at the limit whatever Content-Length or chunk sizes claim, and the
        // buffer grows with what actually arrives.
        let body = response
            .body_mut()
            .with_config()
            .limit(self.max_response_bytes)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(_) => ClientError::TooLarge {
                    limit: self.max_response_bytes,
                },
                e => transport(e),
            })?;
        Ok(Response { status, body })
    }
}

fn check_url(url: &str) -> Result<(), ClientError> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(ClientError::Url(format!(
            "{url:?}: only http:// and https:// URLs"
        )))
    }
}

fn transport(e: ureq::Error) -> ClientError {
    ClientError::Transport(e.to_string())
}
