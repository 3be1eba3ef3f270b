//! The `http` capability: the only way a plugin reaches the network. It enforces the declared
//! egress hosts, the per-account rate limit and timeouts, and traces every request with
//! secrets redacted.

use std::sync::Arc;
use std::time::{Duration, Instant};

use posbridge_plugin_api::ConnectorError;

use crate::rate_limit::RateLimiter;
use crate::redact::Redactor;
use crate::runtime::{io_runtime, CallScope};

/// Default per-request timeout when the plugin gives none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a body reserved up front from its `Content-Length`; a longer body grows the
/// buffer as it comes (a server's header alone never reserves more).
const MAX_BODY_RESERVED: u64 = 16 * 1024 * 1024;

/// The body, its chunks copied once into a buffer sized by `Content-Length`. (`bytes()` then
/// `to_vec()` copied a 1.4 MB page of receipts twice into fresh pages: two of the five
/// large buffers, and their page faults, per page of an HTTP source.)
async fn read_body(mut resp: reqwest::Response) -> reqwest::Result<Vec<u8>> {
    let reserved = resp.content_length().unwrap_or(0).min(MAX_BODY_RESERVED);
    let mut body = Vec::with_capacity(reserved as usize);
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A request as the gateway sees it.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub timeout: Option<Duration>,
}

/// A response as the gateway returns it.
#[derive(Debug, Clone)]
pub struct GatewayResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The hosts a connector instance may call.
#[derive(Debug, Clone, Default)]
pub struct EgressPolicy {
    hosts: Vec<String>,
}

impl EgressPolicy {
    pub fn new(hosts: Vec<String>) -> Self {
        Self {
            hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
        }
    }

    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Whether `host` is declared (exactly, or as a subdomain of a `*.domain` entry).
    pub fn allows(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.hosts.iter().any(|h| {
            h == &host
                || h.strip_prefix("*.")
                    .is_some_and(|d| host.ends_with(&format!(".{d}")) || host == d)
        })
    }
}

/// Performs plugin HTTP requests for one connector instance.
pub struct HttpGateway {
    connector: String,
    client: reqwest::Client,
    egress: EgressPolicy,
    limiter: Option<Arc<RateLimiter>>,
    redactor: Redactor,
}

impl HttpGateway {
    pub fn new(
        connector: &str,
        egress: EgressPolicy,
        limiter: Option<Arc<RateLimiter>>,
        redactor: Redactor,
    ) -> Self {
        let client = reqwest::Client::builder()
            .user_agent(concat!("posbridge/", env!("CARGO_PKG_VERSION")))
            .pool_idle_timeout(Duration::from_secs(30))
            // Redirects go back to the plugin: following them here would bypass the egress check.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("cannot build the HTTP client");
        Self {
            connector: connector.to_string(),
            client,
            egress,
            limiter,
            redactor,
        }
    }

    /// Runs the request on the I/O runtime, blocking the calling plugin thread. When the plugin
    /// call on this thread is cancelled (timeout, Ctrl-C; see [`CallScope`]), the request is
    /// aborted at once and the call gets [`ConnectorError::Cancelled`].
    pub fn execute(&self, req: GatewayRequest) -> Result<GatewayResponse, ConnectorError> {
        let call = CallScope::current();
        if call.as_ref().is_some_and(|c| c.is_cancelled()) {
            return Err(ConnectorError::Cancelled);
        }
        let url = reqwest::Url::parse(&req.url).map_err(|e| {
            ConnectorError::Config(format!(
                "invalid URL {:?}: {e}",
                self.redactor.redact(&req.url)
            ))
        })?;
        let host = url.host_str().unwrap_or_default().to_string();
        if !self.egress.allows(&host) {
            return Err(ConnectorError::Permanent(format!(
                "egress to host {host:?} is not allowed for connector {} (declared: {})",
                self.connector,
                self.egress.hosts().join(", ")
            )));
        }
        if let Some(l) = &self.limiter {
            // A call cancelled (timeout, Ctrl-C) while it waits for a slot stops waiting.
            let waited = match &call {
                Some(flag) => l
                    .acquire_cancellable(flag)
                    .map_err(|_| ConnectorError::Cancelled)?,
                None => l.acquire_blocking(),
            };
            if !waited.is_zero() {
                tracing::trace!(connector = %self.connector, waited_ms = waited.as_millis() as u64, "rate limiter delayed a request");
            }
        }
        let method = reqwest::Method::from_bytes(req.method.as_bytes())
            .map_err(|_| ConnectorError::Bug(format!("invalid HTTP method {:?}", req.method)))?;
        let mut builder = self
            .client
            .request(method, url)
            .timeout(req.timeout.unwrap_or(DEFAULT_TIMEOUT))
            .body(req.body);
        for (k, v) in &req.headers {
            builder = builder.header(k, v);
        }
        let shown_url = self.redactor.redact(&req.url);
        let started = Instant::now();
        let exchange = async move {
            let resp = builder.send().await?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect::<Vec<_>>();
            let body = read_body(resp).await?;
            Ok::<_, reqwest::Error>(GatewayResponse {
                status,
                headers,
                body,
            })
        };
        let result = io_runtime().block_on(async move {
            match call {
                Some(call) => tokio::select! {
                    r = exchange => Some(r),
                    _ = call.cancelled() => None,
                },
                None => Some(exchange.await),
            }
        });
        let Some(result) = result else {
            tracing::debug!(connector = %self.connector, method = %req.method, url = %shown_url,
                "http request aborted: the plugin call was cancelled");
            return Err(ConnectorError::Cancelled);
        };
        let elapsed = started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        // Status 0: no answer (timeout, refused connection).
        let status = result.as_ref().map_or(0, |r| r.status);
        crate::serve::metrics::record_vendor_http(&self.connector, status, elapsed);
        match result {
            Ok(resp) => {
                tracing::debug!(connector = %self.connector, method = %req.method, url = %shown_url,
                    status = resp.status, elapsed_ms, "http");
                if resp.status == 429 {
                    if let Some(l) = &self.limiter {
                        l.drain();
                    }
                }
                Ok(resp)
            }
            Err(e) => {
                let kind = if e.is_timeout() {
                    "timed out"
                } else if e.is_connect() {
                    "could not connect"
                } else {
                    "failed"
                };
                // reqwest errors may carry the URL: redact.
                let msg = self
                    .redactor
                    .redact(&format!("{} {shown_url} {kind}: {e}", req.method));
                tracing::debug!(connector = %self.connector, elapsed_ms, error = %msg, "http error");
                Err(ConnectorError::Transient(msg))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_policy_matches_hosts_and_wildcards() {
        let p = EgressPolicy::new(vec!["api.example.com".into(), "*.sevdesk.de".into()]);
        assert!(p.allows("api.example.com"));
        assert!(p.allows("my.sevdesk.de"));
        assert!(!p.allows("evil.com"));
        assert!(!p.allows("example.com"));
    }

    #[test]
    fn every_vendor_request_is_counted_by_connector_and_status() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(
                b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        });
        let gateway = HttpGateway::new(
            "metrics-test",
            EgressPolicy::new(vec!["127.0.0.1".into()]),
            None,
            Redactor::default(),
        );
        let request = |url: String| GatewayRequest {
            method: "GET".into(),
            url,
            headers: vec![],
            body: vec![],
            timeout: Some(Duration::from_secs(5)),
        };
        let answer = gateway
            .execute(request(format!("http://{addr}/x")))
            .unwrap();
        assert_eq!(answer.status, 418);
        // Nothing listens on the port any more: no answer, counted as status 0.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed_addr = closed.local_addr().unwrap();
        drop(closed);
        assert!(gateway
            .execute(request(format!("http://{closed_addr}/x")))
            .is_err());

        let text = crate::serve::metrics::global().render();
        for line in [
            "posbridge_vendor_http_requests_total{connector=\"metrics-test\",status=\"418\"} 1",
            "posbridge_vendor_http_requests_total{connector=\"metrics-test\",status=\"0\"} 1",
            "posbridge_vendor_http_request_duration_seconds_count{connector=\"metrics-test\"} 2",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
    }

    /// A body comes whole whether the server gives its length or sends it in chunks, and
    /// however its bytes are split on the wire.
    #[test]
    fn bodies_are_read_whole_with_or_without_a_length() {
        use std::io::{Read, Write};
        let body: Vec<u8> = (0..300_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let served = body.clone();
        std::thread::spawn(move || {
            for chunked in [false, true] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                if chunked {
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                        .unwrap();
                    for part in served.chunks(70_001) {
                        write!(stream, "{:x}\r\n", part.len()).unwrap();
                        stream.write_all(part).unwrap();
                        stream.write_all(b"\r\n").unwrap();
                        stream.flush().unwrap();
                    }
                    stream.write_all(b"0\r\n\r\n").unwrap();
                } else {
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        served.len()
                    )
                    .unwrap();
                    for part in served.chunks(50_000) {
                        stream.write_all(part).unwrap();
                        stream.flush().unwrap();
                    }
                }
            }
        });
        let gateway = HttpGateway::new(
            "body-test",
            EgressPolicy::new(vec!["127.0.0.1".into()]),
            None,
            Redactor::default(),
        );
        for _ in 0..2 {
            let answer = gateway
                .execute(GatewayRequest {
                    method: "GET".into(),
                    url: format!("http://{addr}/pages"),
                    headers: vec![],
                    body: vec![],
                    timeout: Some(Duration::from_secs(5)),
                })
                .unwrap();
            assert_eq!(answer.status, 200);
            assert!(answer.body == body, "{} bytes came", answer.body.len());
        }
    }
}
