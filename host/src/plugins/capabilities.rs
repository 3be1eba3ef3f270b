//! The host side of the capability interface: what a plugin gets when it calls back.
//! Every method runs host code only and never unwinds into the plugin.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use abi_stable::std_types::{ROption, RResult, RStr, RString, RVec, Tuple2};
use posbridge_plugin_api::abi::{FfiError, FfiHttpRequest, FfiHttpResponse, HostFfi};
use posbridge_plugin_api::ConnectorError;

use crate::http_gateway::{GatewayRequest, HttpGateway};
use crate::redact::Redactor;
use crate::runtime::{now_millis, CallScope, CancelFlag};

/// Where plugin key-value state lives (the state store in production, memory in tests).
pub trait KvStore: Send + Sync {
    fn get(&self, namespace: &str, key: &str) -> Option<String>;
    fn put(&self, namespace: &str, key: &str, value: &str);
}

/// A process-local key-value store.
#[derive(Default)]
pub struct MemoryKv(Mutex<HashMap<(String, String), String>>);

impl KvStore for MemoryKv {
    fn get(&self, namespace: &str, key: &str) -> Option<String> {
        self.0
            .lock()
            .ok()?
            .get(&(namespace.to_string(), key.to_string()))
            .cloned()
    }
    fn put(&self, namespace: &str, key: &str, value: &str) {
        if let Ok(mut m) = self.0.lock() {
            m.insert((namespace.to_string(), key.to_string()), value.to_string());
        }
    }
}

/// The capabilities handed to one connector instance.
pub struct PluginHost {
    pub(crate) connector: String,
    /// Where this instance's key-value state lives: the connector and its account.
    pub(crate) kv_namespace: String,
    pub(crate) gateway: HttpGateway,
    pub(crate) redactor: Redactor,
    pub(crate) cancel: CancelFlag,
    pub(crate) kv: Arc<dyn KvStore>,
}

fn host_guard<T>(f: impl FnOnce() -> T, fallback: T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

impl HostFfi for PluginHost {
    fn http(&self, request: FfiHttpRequest) -> RResult<FfiHttpResponse, FfiError> {
        // A request from a thread the plugin started itself (a page read ahead) comes outside
        // any call's scope: the run's flag (Ctrl-C) still stops it.
        let _scope = CallScope::current()
            .is_none()
            .then(|| CallScope::enter(self.cancel.clone()));
        let run = || {
            let req = GatewayRequest {
                method: request.method.into_string(),
                url: request.url.into_string(),
                headers: request
                    .headers
                    .into_iter()
                    .map(|Tuple2(k, v)| (k.into_string(), v.into_string()))
                    .collect(),
                body: request.body.into_vec(),
                timeout: (request.timeout_ms > 0)
                    .then(|| Duration::from_millis(request.timeout_ms)),
            };
            match self.gateway.execute(req) {
                Ok(resp) => RResult::ROk(FfiHttpResponse {
                    status: resp.status,
                    headers: resp
                        .headers
                        .into_iter()
                        .map(|(k, v)| Tuple2(RString::from(k), RString::from(v)))
                        .collect::<RVec<_>>(),
                    body: RVec::from(resp.body),
                }),
                Err(e) => RResult::RErr(FfiError::from(e)),
            }
        };
        host_guard(
            run,
            RResult::RErr(ConnectorError::Bug("the host failed while serving http".into()).into()),
        )
    }

    fn log(&self, level: u8, _target: RStr<'_>, message: RStr<'_>, fields_json: RStr<'_>) {
        host_guard(
            || {
                let msg = self.redactor.redact(message.as_str());
                let fields = self.redactor.redact(fields_json.as_str());
                let plugin = self.connector.as_str();
                match level {
                    1 => tracing::error!(plugin, fields = %fields, "{msg}"),
                    2 => tracing::warn!(plugin, fields = %fields, "{msg}"),
                    3 => tracing::info!(plugin, fields = %fields, "{msg}"),
                    4 => tracing::debug!(plugin, fields = %fields, "{msg}"),
                    _ => tracing::trace!(plugin, fields = %fields, "{msg}"),
                }
            },
            (),
        )
    }

    fn now_millis(&self) -> i64 {
        now_millis()
    }

    fn is_cancelled(&self) -> bool {
        // The run's flag (Ctrl-C) or this call's own (timed out).
        self.cancel.is_cancelled() || CallScope::current().is_some_and(|c| c.is_cancelled())
    }

    fn state_get(&self, key: RStr<'_>) -> ROption<RString> {
        host_guard(
            || match self.kv.get(&self.kv_namespace, key.as_str()) {
                Some(v) => ROption::RSome(RString::from(v)),
                None => ROption::RNone,
            },
            ROption::RNone,
        )
    }

    fn state_put(&self, key: RStr<'_>, value: RStr<'_>) {
        host_guard(
            || {
                self.kv
                    .put(&self.kv_namespace, key.as_str(), value.as_str())
            },
            (),
        )
    }
}

#[cfg(test)]
mod tests {
    use abi_stable::std_types::RVec;

    use super::*;
    use crate::http_gateway::EgressPolicy;

    fn host(cancel: CancelFlag) -> PluginHost {
        PluginHost {
            connector: "test".into(),
            kv_namespace: "test".into(),
            gateway: HttpGateway::new(
                "test",
                EgressPolicy::new(vec!["127.0.0.1".into()]),
                None,
                Redactor::new(vec![]),
            ),
            redactor: Redactor::new(vec![]),
            cancel,
            kv: Arc::new(MemoryKv::default()),
        }
    }

    fn get(url: &str) -> FfiHttpRequest {
        FfiHttpRequest {
            method: "GET".into(),
            url: url.into(),
            headers: RVec::new(),
            body: RVec::new(),
            timeout_ms: 1_000,
        }
    }

    #[test]
    fn a_request_from_a_thread_the_plugin_started_is_stopped_by_the_runs_flag() {
        let run = CancelFlag::new();
        run.cancel();
        let host = host(run);
        // A thread of the plugin's own: no plugin call is in scope on it. Nothing listens on
        // port 9, so only the run's flag can answer `Cancelled` before connecting.
        let answer = std::thread::scope(|s| {
            s.spawn(|| host.http(get("http://127.0.0.1:9/receipts")).into_result())
                .join()
                .unwrap()
        });
        let err = ConnectorError::from(answer.unwrap_err());
        assert!(matches!(err, ConnectorError::Cancelled), "{err:?}");
    }

    #[test]
    fn a_request_within_a_plugin_call_follows_that_calls_flag() {
        let host = host(CancelFlag::new());
        let call = CancelFlag::new();
        call.cancel();
        let _scope = CallScope::enter(call);
        let err = ConnectorError::from(host.http(get("http://127.0.0.1:9/x")).unwrap_err());
        assert!(matches!(err, ConnectorError::Cancelled), "{err:?}");
    }
}
