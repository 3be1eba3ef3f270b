//! Where the token goes. The OpenAPI file names its security scheme `api_key` but not its
//! location, so the connector lets the configuration say (`auth` in `docs/connectors/oktopos.md`).

use std::fmt;
use std::str::FromStr;

use posbridge_plugin_api::url::percent_encode;
use posbridge_plugin_api::HttpRequest;

/// The default `auth`: a header named after the security scheme (what the connector always sent).
pub const DEFAULT_AUTH: &str = "header:api_key";

/// How the token is sent with every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenPlacement {
    /// `NAME: <token>`.
    Header(String),
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// `?NAME=<token>` on the URL.
    Query(String),
}

/// Why an `auth` value cannot be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("auth {0:?} is not `header:NAME`, `bearer` or `query:NAME`")]
pub struct AuthError(pub String);

/// An RFC 9110 `token`: the characters a header name may have.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl FromStr for TokenPlacement {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || AuthError(s.to_string());
        if s == "bearer" {
            return Ok(Self::Bearer);
        }
        match s.split_once(':') {
            Some((kind, name)) if kind == "header" && is_header_name(name) => {
                Ok(Self::Header(name.to_string()))
            }
            Some((kind, name))
                if kind == "query"
                    && !name.is_empty()
                    && !name.chars().any(char::is_whitespace) =>
            {
                Ok(Self::Query(name.to_string()))
            }
            _ => Err(err()),
        }
    }
}

impl fmt::Display for TokenPlacement {
    /// How an error message names the placement.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Header(name) => write!(f, "in the `{name}` header"),
            Self::Bearer => f.write_str("as a bearer token"),
            Self::Query(name) => write!(f, "as the `{name}` query parameter"),
        }
    }
}

impl TokenPlacement {
    /// A GET of `url` carrying `token`. The URL given here never holds the token, so callers
    /// can put it in error messages.
    pub fn get(&self, url: &str, token: &str) -> HttpRequest {
        match self {
            Self::Header(name) => HttpRequest::get(url).header(name, token),
            Self::Bearer => {
                HttpRequest::get(url).header("Authorization", format!("Bearer {token}"))
            }
            Self::Query(name) => {
                let sep = if url.contains('?') { '&' } else { '?' };
                HttpRequest::get(format!(
                    "{url}{sep}{}={}",
                    percent_encode(name),
                    percent_encode(token)
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_forms_parse_and_nonsense_is_refused() {
        assert_eq!(
            DEFAULT_AUTH.parse(),
            Ok(TokenPlacement::Header("api_key".into()))
        );
        assert_eq!("bearer".parse(), Ok(TokenPlacement::Bearer));
        assert_eq!(
            "query:api_key".parse(),
            Ok(TokenPlacement::Query("api_key".into()))
        );
        for bad in [
            "",
            "Bearer",
            "header:",
            "header:has space",
            "query:",
            "basic",
            "cookie:x",
        ] {
            assert_eq!(
                bad.parse::<TokenPlacement>(),
                Err(AuthError(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn each_placement_puts_the_token_where_it_says() {
        let h = TokenPlacement::Header("X-Okto-Token".into()).get("http://h/api/transactions", "t");
        assert_eq!(h.url, "http://h/api/transactions");
        assert!(h.headers.contains(&("X-Okto-Token".into(), "t".into())));
        let b = TokenPlacement::Bearer.get("http://h/x", "t");
        assert!(b
            .headers
            .contains(&("Authorization".into(), "Bearer t".into())));
        let q = TokenPlacement::Query("api_key".into()).get("http://h/x", "a b&c");
        assert_eq!(q.url, "http://h/x?api_key=a%20b%26c");
        assert!(q.headers.is_empty());
    }
}
