//! The typed error of the hub's store and exports. The HTTP layer maps the variants to status
//! codes (404, 400, 409, 500); messages name no SQL.

use std::error::Error as StdError;

/// What went wrong reading or writing the hub.
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// Nothing matches, e.g. an unknown receipt id.
    #[error("{0}")]
    NotFound(String),
    /// A request value is wrong: which field, and why.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A vendor receipt number names several sales of the store.
    #[error("receipt number {receipt:?} is ambiguous in store {store:?}: it names the sales {}; ask by one of these ids", ids.join(", "))]
    Ambiguous {
        store: String,
        receipt: String,
        ids: Vec<String>,
    },
    /// The database failed, or a stored row cannot be read back.
    #[error("hub storage failed while {context}: {source}")]
    Storage {
        context: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The response could not be written to its destination (e.g. the client went away).
    #[error("cannot write the export: {0}")]
    Output(#[from] std::io::Error),
}

impl HubError {
    /// An [`HubError::Invalid`] for `field`.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }

    pub(crate) fn storage(context: &str, source: impl StdError + Send + Sync + 'static) -> Self {
        Self::Storage {
            context: context.to_string(),
            source: Box::new(source),
        }
    }
}

/// Adds what the hub was doing to a database error.
pub(crate) trait StorageContext<T> {
    fn doing(self, context: &str) -> Result<T, HubError>;
}

impl<T, E: StdError + Send + Sync + 'static> StorageContext<T> for Result<T, E> {
    fn doing(self, context: &str) -> Result<T, HubError> {
        self.map_err(|e| HubError::storage(context, e))
    }
}
