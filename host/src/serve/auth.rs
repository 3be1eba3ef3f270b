//! Who is calling: the [`Caller`] extractor checks `Authorization: Bearer pbk_…`, applies the
//! key's rate limit, and tells handlers what the key may see.
//!
//! A store key sees its own store only. Asking about any other store is 403 with one fixed
//! message, whether that store exists or not, so a key learns nothing about other stores.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::api_key::{parse_key, secret_matches, Role};
use super::app::AppState;
use super::db::StoreRecord;
use super::envelope::ApiError;

/// The one answer for "not your store", existing or not.
pub const NO_ACCESS_TO_STORE: &str = "this API key has no access to that store";

/// An authenticated API key.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's public id.
    pub key_id: String,
    pub role: Role,
    /// The store of a store key.
    pub store: Option<String>,
}

impl Caller {
    /// Whether this is an admin key.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// 403 unless this is an admin key.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden("this operation needs an admin API key"))
        }
    }

    /// Whether the key may see `store_id` (an admin sees all), without asking the database.
    pub fn may_see(&self, store_id: &str) -> bool {
        self.is_admin() || self.store.as_deref() == Some(store_id)
    }

    /// The store `store_id` if this key may see it: 403 [`NO_ACCESS_TO_STORE`] for another
    /// store of a store key (checked before looking it up), 404 for an unknown store otherwise.
    pub async fn store(&self, app: &AppState, store_id: &str) -> Result<StoreRecord, ApiError> {
        if !self.may_see(store_id) {
            return Err(ApiError::forbidden(NO_ACCESS_TO_STORE));
        }
        let id = store_id.to_string();
        app.blocking(move |a| {
            a.db.store(&id)?
                .ok_or_else(|| ApiError::not_found(format!("no store {id:?}")))
        })
        .await
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing API key: send Authorization: Bearer <key>")
            })?
            .to_str()
            .map_err(|_| ApiError::unauthorized("invalid or revoked API key"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("missing API key: send Authorization: Bearer <key>")
            })?
            .trim();
        let invalid = || ApiError::unauthorized("invalid or revoked API key");
        let presented = parse_key(token).ok_or_else(invalid)?;
        let (id, secret) = (presented.id.to_string(), presented.secret.to_string());
        let record = app.blocking(move |a| Ok(a.db.key(&id)?)).await?;
        let record = match record {
            Some(r) if !r.revoked && secret_matches(&secret, &r.secret_hash) => r,
            _ => return Err(invalid()),
        };
        if let Err(wait) = app.rate_limiter.check(&record.id) {
            return Err(ApiError::rate_limited(
                wait.as_secs_f64().ceil().max(1.0) as u64
            ));
        }
        Ok(Caller {
            key_id: record.id,
            role: record.role,
            store: record.store,
        })
    }
}
