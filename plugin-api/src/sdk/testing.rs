//! A host double for connector unit tests (feature `testing`): every HTTP request goes to a
//! closure that plays the vendor, and is recorded, so a test can script failures (record 3 of
//! 6 gets a 503) and count what a connector sent. The plugin state lives in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec, Tuple2};

use crate::abi::{FfiError, FfiHttpRequest, FfiHttpResponse, HostFfi, HostFfi_TO};
use crate::{ConnectorError, Host, HttpRequest, HttpResponse};

type Vendor = dyn Fn(&HttpRequest) -> Result<HttpResponse, ConnectorError> + Send + Sync;

/// The host capabilities with a scripted vendor behind `http`.
#[derive(Clone)]
pub struct ScriptedHost {
    vendor: Arc<Vendor>,
    requests: Arc<Mutex<Vec<HttpRequest>>>,
    logs: Arc<Mutex<Vec<String>>>,
    state: Arc<Mutex<HashMap<String, String>>>,
    now_millis: i64,
}

impl ScriptedHost {
    /// A host whose HTTP requests are answered by `vendor`.
    pub fn new(
        vendor: impl Fn(&HttpRequest) -> Result<HttpResponse, ConnectorError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            vendor: Arc::new(vendor),
            requests: Arc::default(),
            logs: Arc::default(),
            state: Arc::default(),
            now_millis: 1_700_000_000_000,
        }
    }

    /// The [`Host`] a connector is opened with.
    pub fn host(&self) -> Host {
        Host::from_ffi(HostFfi_TO::from_value(self.clone(), TD_Opaque))
    }

    /// Every request sent so far, in order.
    pub fn requests(&self) -> Vec<HttpRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How many requests were sent so far.
    pub fn request_count(&self) -> usize {
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The log lines (`level message fields`) emitted so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// An answer with this status, headers and body, as a vendor would send it.
pub fn response(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        body: body.as_bytes().to_vec(),
    }
}

/// A JSON answer with this status.
pub fn json_response(status: u16, body: &serde_json::Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    }
}

impl HostFfi for ScriptedHost {
    fn http(&self, request: FfiHttpRequest) -> RResult<FfiHttpResponse, FfiError> {
        let req = HttpRequest {
            method: request.method.into_string(),
            url: request.url.into_string(),
            headers: request
                .headers
                .into_iter()
                .map(|Tuple2(k, v)| (k.into_string(), v.into_string()))
                .collect(),
            body: request.body.into_vec(),
            timeout: None,
        };
        self.requests
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(req.clone());
        match (self.vendor)(&req) {
            Ok(resp) => RResult::ROk(FfiHttpResponse {
                status: resp.status,
                headers: resp
                    .headers
                    .into_iter()
                    .map(|(k, v)| Tuple2(RString::from(k), RString::from(v)))
                    .collect::<RVec<_>>(),
                body: RVec::from(resp.body),
            }),
            Err(e) => RResult::RErr(e.into()),
        }
    }
    fn log(&self, level: u8, _target: RStr<'_>, message: RStr<'_>, fields_json: RStr<'_>) {
        self.logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{level} {message} {fields_json}"));
    }
    fn now_millis(&self) -> i64 {
        self.now_millis
    }
    fn is_cancelled(&self) -> bool {
        false
    }
    fn state_get(&self, key: RStr<'_>) -> ROption<RString> {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.get(key.as_str()).cloned().map(RString::from).into()
    }
    fn state_put(&self, key: RStr<'_>, value: RStr<'_>) {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key.to_string(), value.to_string());
    }
}
