//! How credentials travel with a request: a header of any name, a bearer token, HTTP Basic,
//! a query parameter, or a signature computed per request (HMAC, RSA) by a [`RequestSigner`].

use std::fmt;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::url::percent_encode;
use crate::{ConnectorError, HttpRequest};

/// Signs a request just before it is sent (HMAC or RSA schemes): adds headers, query
/// parameters, whatever the vendor's scheme says. `now` is the host's clock, for timestamps.
///
/// ```
/// use std::sync::Arc;
/// use posbridge_plugin_api::rest::{Auth, RequestSigner};
/// use posbridge_plugin_api::{chrono, ConnectorError, HttpRequest};
///
/// /// A made-up scheme: the timestamp and a digest of method, URL and timestamp.
/// struct Stamp { key: String }
///
/// impl RequestSigner for Stamp {
///     fn sign(&self, req: &mut HttpRequest, now: chrono::DateTime<chrono::Utc>) -> Result<(), ConnectorError> {
///         let ts = now.timestamp().to_string();
///         let digest = format!("{}:{}:{}:{}", self.key.len(), req.method, req.url, ts); // a real signer hashes here
///         req.headers.push(("X-Timestamp".into(), ts));
///         req.headers.push(("X-Signature".into(), digest));
///         Ok(())
///     }
/// }
///
/// let auth = Auth::Signed(Arc::new(Stamp { key: "k3y-secret".into() }));
/// let mut req = HttpRequest::get("https://api.example.com/v1/items");
/// auth.apply(&mut req, "2026-03-01T12:00:00Z".parse().unwrap()).unwrap();
/// assert_eq!(req.headers[0], ("X-Timestamp".to_string(), "1772366400".to_string()));
/// ```
pub trait RequestSigner: Send + Sync {
    /// Adds the signature to `request`; `now` is the host's clock.
    fn sign(&self, request: &mut HttpRequest, now: DateTime<Utc>) -> Result<(), ConnectorError>;
}

/// Credentials and where they go.
///
/// ```
/// use posbridge_plugin_api::rest::Auth;
/// use posbridge_plugin_api::HttpRequest;
/// let auth = Auth::from_spec("header:X-Api-Key", "s3cret").unwrap();
/// let mut req = HttpRequest::get("https://api.example.com/v1/items");
/// auth.apply(&mut req, Default::default()).unwrap();
/// assert_eq!(req.headers, vec![("X-Api-Key".to_string(), "s3cret".to_string())]);
/// ```
#[derive(Clone, Default)]
pub enum Auth {
    /// Nothing is added.
    #[default]
    None,
    /// `NAME: value`.
    Header {
        /// The header's name.
        name: String,
        /// Its value, the credential.
        value: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic base64(user:pass)`.
    Basic {
        /// The user name.
        user: String,
        /// The password.
        pass: String,
    },
    /// `?NAME=value` appended to the URL.
    Query {
        /// The parameter's name.
        name: String,
        /// Its value, the credential.
        value: String,
    },
    /// A per-request signature.
    Signed(Arc<dyn RequestSigner>),
}

/// Why an auth spec string cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("auth {0:?} is not `header:NAME`, `bearer`, `basic` or `query:NAME`")]
pub struct AuthSpecError(pub String);

/// A JSON Schema `pattern` for the spec strings [`Auth::from_spec`] reads, for a config field's
/// `#[schemars(regex(pattern = AUTH_SPEC_PATTERN))]`.
pub const AUTH_SPEC_PATTERN: &str =
    r"^(bearer|basic|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|query:\S+)$";

/// An RFC 9110 `token`: the characters a header name may have.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Auth {
    /// Reads a placement spec and puts `secret` there: `header:NAME`, `bearer`, `query:NAME`,
    /// or `basic` (where `secret` is `user:pass`).
    ///
    /// ```
    /// use posbridge_plugin_api::rest::Auth;
    /// assert!(matches!(Auth::from_spec("bearer", "t"), Ok(Auth::Bearer(t)) if t == "t"));
    /// assert!(matches!(Auth::from_spec("basic", "me:pw"), Ok(Auth::Basic { user, pass }) if user == "me" && pass == "pw"));
    /// assert!(Auth::from_spec("cookie:x", "t").is_err());
    /// ```
    pub fn from_spec(spec: &str, secret: &str) -> Result<Self, AuthSpecError> {
        let err = || AuthSpecError(spec.to_string());
        match spec {
            "bearer" => return Ok(Self::Bearer(secret.into())),
            "basic" => {
                let (user, pass) = secret.split_once(':').unwrap_or((secret, ""));
                return Ok(Self::Basic {
                    user: user.into(),
                    pass: pass.into(),
                });
            }
            _ => {}
        }
        match spec.split_once(':') {
            Some(("header", name)) if is_header_name(name) => Ok(Self::Header {
                name: name.into(),
                value: secret.into(),
            }),
            Some(("query", name)) if !name.is_empty() && !name.contains(char::is_whitespace) => {
                Ok(Self::Query {
                    name: name.into(),
                    value: secret.into(),
                })
            }
            _ => Err(err()),
        }
    }

    /// Adds the credentials to a request.
    pub fn apply(&self, req: &mut HttpRequest, now: DateTime<Utc>) -> Result<(), ConnectorError> {
        match self {
            Self::None => {}
            Self::Header { name, value } => req.headers.push((name.clone(), value.clone())),
            Self::Bearer(token) => req
                .headers
                .push(("Authorization".into(), format!("Bearer {token}"))),
            Self::Basic { user, pass } => req.headers.push((
                "Authorization".into(),
                format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())),
            )),
            Self::Query { name, value } => {
                let sep = if req.url.contains('?') { '&' } else { '?' };
                req.url = format!(
                    "{}{sep}{}={}",
                    req.url,
                    percent_encode(name),
                    percent_encode(value)
                );
            }
            Self::Signed(signer) => signer.sign(req, now)?,
        }
        Ok(())
    }
}

impl fmt::Display for Auth {
    /// Where the credentials go, for error messages (never the secret itself).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::None => f.write_str("without credentials"),
            Self::Header { name, .. } => write!(f, "in the `{name}` header"),
            Self::Bearer(_) => f.write_str("as a bearer token"),
            Self::Basic { .. } => f.write_str("as HTTP Basic credentials"),
            Self::Query { name, .. } => write!(f, "as the `{name}` query parameter"),
            Self::Signed(_) => f.write_str("as a request signature"),
        }
    }
}

impl fmt::Debug for Auth {
    /// Like `Display`: secrets never reach a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Auth({self})")
    }
}

/// Standard base64 with padding (RFC 4648), for Basic credentials.
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(auth: &Auth) -> HttpRequest {
        let mut r = HttpRequest::get("http://h/x");
        auth.apply(&mut r, DateTime::default()).unwrap();
        r
    }

    #[test]
    fn specs_parse_and_nonsense_is_refused() {
        assert!(matches!(
            Auth::from_spec("header:api_key", "t"),
            Ok(Auth::Header { name, value }) if name == "api_key" && value == "t"
        ));
        assert!(matches!(
            Auth::from_spec("query:key", "t"),
            Ok(Auth::Query { name, .. }) if name == "key"
        ));
        for bad in [
            "",
            "Bearer",
            "header:",
            "header:has space",
            "query:",
            "cookie:x",
        ] {
            assert_eq!(
                Auth::from_spec(bad, "t").unwrap_err(),
                AuthSpecError(bad.into()),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn every_placement_puts_the_secret_where_it_says() {
        let h = applied(&Auth::from_spec("header:X-Okto-Token", "t").unwrap());
        assert_eq!(h.headers, vec![("X-Okto-Token".into(), "t".into())]);
        let b = applied(&Auth::Bearer("t".into()));
        assert_eq!(b.headers, vec![("Authorization".into(), "Bearer t".into())]);
        // RFC 7617's example.
        let basic = applied(&Auth::from_spec("basic", "Aladdin:open sesame").unwrap());
        assert_eq!(
            basic.headers,
            vec![(
                "Authorization".into(),
                "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==".into()
            )]
        );
        let q = applied(&Auth::from_spec("query:api_key", "a b&c").unwrap());
        assert_eq!(q.url, "http://h/x?api_key=a%20b%26c");
        assert!(q.headers.is_empty());
        assert!(applied(&Auth::None).headers.is_empty());
    }

    #[test]
    fn a_signer_sees_the_request_and_the_clock() {
        struct Stamp;
        impl RequestSigner for Stamp {
            fn sign(&self, r: &mut HttpRequest, now: DateTime<Utc>) -> Result<(), ConnectorError> {
                let sig = format!("{} {} {}", r.method, r.url, now.timestamp());
                r.headers.push(("X-Sig".into(), sig));
                Ok(())
            }
        }
        let mut r = HttpRequest::get("http://h/x");
        Auth::Signed(Arc::new(Stamp))
            .apply(&mut r, DateTime::from_timestamp(42, 0).unwrap())
            .unwrap();
        assert_eq!(
            r.headers,
            vec![("X-Sig".into(), "GET http://h/x 42".into())]
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_and_display() {
        let a = Auth::from_spec("header:k", "s3cret").unwrap();
        assert!(!format!("{a:?} {a}").contains("s3cret"));
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
    }
}
