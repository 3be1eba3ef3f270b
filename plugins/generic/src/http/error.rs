//! Typed errors of the HTTP transport and how they map to the host's error kinds.

use posbridge_plugin_api::ConnectorError;

/// What can go wrong reading from or writing to an HTTP endpoint.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The `http` configuration (or a request against it) does not make sense.
    #[error("{0}")]
    Config(String),
    /// The endpoint answered with a body of the wrong shape.
    #[error("{url}: {message}")]
    Response { url: String, message: String },
    /// A record could not be mapped with the field map.
    #[error("record {index} of the page: {message}")]
    Mapping { index: usize, message: String },
    /// The host sent something that cannot be right (a malformed cursor).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The host's HTTP capability failed, or the status maps to a typed error.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
}

impl From<HttpError> for ConnectorError {
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Connector(inner) => inner,
            HttpError::Config(m) => ConnectorError::Config(m),
            HttpError::BadRequest(_) => ConnectorError::Bug(e.to_string()),
            HttpError::Response { .. } | HttpError::Mapping { .. } => {
                ConnectorError::Permanent(e.to_string())
            }
        }
    }
}
