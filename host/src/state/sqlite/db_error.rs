//! Turning `rusqlite` errors into [`StateError`]s, with what the store was doing.

use rusqlite::ErrorCode;

use crate::state::StateError;

/// Adds context to a `rusqlite` result and classifies its error.
pub(super) trait DbContext<T> {
    /// Maps the error to a [`StateError`], saying what the store was doing.
    fn context(self, doing: &str) -> Result<T, StateError>;
}

impl<T> DbContext<T> for Result<T, rusqlite::Error> {
    fn context(self, doing: &str) -> Result<T, StateError> {
        self.map_err(|err| classify(err, doing))
    }
}

/// Busy and constraint failures get their own variants: the caller may wait, or fix its input.
/// Values that cannot be read back are corruption, not a failing database.
pub(super) fn classify(err: rusqlite::Error, doing: &str) -> StateError {
    let context = doing.to_string();
    match &err {
        rusqlite::Error::SqliteFailure(code, message) => match code.code {
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => StateError::Busy { context },
            ErrorCode::ConstraintViolation => StateError::Constraint {
                context,
                message: message.clone().unwrap_or_else(|| code.to_string()),
            },
            _ => StateError::Backend {
                context,
                source: Box::new(err),
            },
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..) => StateError::Corrupt {
            what: context,
            source: Box::new(err),
        },
        _ => StateError::Backend {
            context,
            source: Box::new(err),
        },
    }
}
