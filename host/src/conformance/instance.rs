//! Opening the library under test the way the registry does — the host's loader, config
//! validation, egress rules, rate limit and HTTP gateway — but with a tap on the capabilities:
//! the suite sees the plugin's log lines and requests exactly as the plugin sent them, before
//! the host redacts anything, and gets the plugin's errors unredacted.

use std::sync::{Arc, Mutex};

use abi_stable::sabi_trait::TD_Opaque;
use abi_stable::std_types::{ROption, RResult, RStr, RString};
use posbridge_plugin_api::abi::{FfiError, FfiHttpRequest, FfiHttpResponse, HostFfi, HostFfi_TO};
use posbridge_plugin_api::{ConnectorError, Manifest};
use serde_json::Value;

use crate::http_gateway::{EgressPolicy, HttpGateway};
use crate::plugins::{
    validate_config, ConfigViolation, ConnectorHandle, LibraryModule, PluginHost,
};
use crate::rate_limit::limiter_for;
use crate::redact::Redactor;
use crate::runtime::CancelFlag;

/// What the plugin sent through its capabilities, as it sent it.
#[derive(Debug, Default)]
pub struct Tap {
    /// Log lines: `message fields`.
    pub logs: Vec<String>,
    /// Requests: method, URL and headers.
    pub requests: Vec<TappedRequest>,
}

/// One HTTP request of the plugin.
#[derive(Debug, Clone)]
pub struct TappedRequest {
    /// `GET`, `POST`, …
    pub method: String,
    /// The whole URL.
    pub url: String,
    /// Header names and values.
    pub headers: Vec<(String, String)>,
}

/// The host's capabilities with a tap in front.
struct TapHost {
    inner: PluginHost,
    tap: Arc<Mutex<Tap>>,
}

impl TapHost {
    fn tap(&self) -> std::sync::MutexGuard<'_, Tap> {
        self.tap.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl HostFfi for TapHost {
    fn http(&self, request: FfiHttpRequest) -> RResult<FfiHttpResponse, FfiError> {
        self.tap().requests.push(TappedRequest {
            method: request.method.to_string(),
            url: request.url.to_string(),
            headers: request
                .headers
                .iter()
                .map(|t| (t.0.to_string(), t.1.to_string()))
                .collect(),
        });
        self.inner.http(request)
    }
    fn log(&self, level: u8, target: RStr<'_>, message: RStr<'_>, fields_json: RStr<'_>) {
        self.tap()
            .logs
            .push(format!("{} {}", message.as_str(), fields_json.as_str()));
        self.inner.log(level, target, message, fields_json)
    }
    fn now_millis(&self) -> i64 {
        self.inner.now_millis()
    }
    fn is_cancelled(&self) -> bool {
        self.inner.is_cancelled()
    }
    fn state_get(&self, key: RStr<'_>) -> ROption<RString> {
        self.inner.state_get(key)
    }
    fn state_put(&self, key: RStr<'_>, value: RStr<'_>) {
        self.inner.state_put(key, value)
    }
}

/// Why an instance could not be opened.
#[derive(Debug)]
pub enum OpenFailure {
    /// The config breaks the manifest's schema.
    Schema(Vec<ConfigViolation>),
    /// The connector refused to open.
    Plugin(ConnectorError),
}

/// Opens instances of one loaded library; every instance shares one tap and one plugin
/// key-value store (as two pipelines on one account would).
pub struct Opener {
    pub(crate) module: LibraryModule,
    pub(crate) manifest: Arc<Manifest>,
    pub(crate) tap: Arc<Mutex<Tap>>,
    pub(crate) kv: Arc<dyn crate::plugins::KvStore>,
}

impl Opener {
    /// Validates `config` against the schema and opens an instance, or says why not.
    pub fn open(&self, config: &Value) -> Result<ConnectorHandle, OpenFailure> {
        let violations = validate_config(&self.manifest.config_schema, config);
        if !violations.is_empty() {
            return Err(OpenFailure::Schema(violations));
        }
        self.open_unchecked(config).map_err(OpenFailure::Plugin)
    }

    /// Opens an instance without validating the config first.
    pub fn open_unchecked(&self, config: &Value) -> Result<ConnectorHandle, ConnectorError> {
        let name = self.manifest.name.clone();
        let mut hosts = self.manifest.egress_hosts.clone();
        for field in &self.manifest.egress_config_fields {
            let node = field.split('.').try_fold(config, |n, p| n.get(p));
            if let Some(h) = node
                .and_then(Value::as_str)
                .and_then(|u| reqwest::Url::parse(u).ok())
                .and_then(|u| u.host_str().map(str::to_string))
            {
                hosts.push(h);
            }
        }
        let limiter = self
            .manifest
            .rate_limit
            .map(|l| limiter_for(&format!("{name}:conformance"), l));
        // No redaction anywhere: the suite judges what the plugin itself lets out.
        let none = Redactor::default();
        let host = TapHost {
            inner: PluginHost {
                connector: name.clone(),
                kv_namespace: format!("{name}:conformance"),
                gateway: HttpGateway::new(&name, EgressPolicy::new(hosts), limiter, none.clone()),
                redactor: none.clone(),
                cancel: CancelFlag::new(),
                kv: self.kv.clone(),
            },
            tap: self.tap.clone(),
        };
        let config_json = config.to_string();
        let inner = (self.module.instantiate())(
            RStr::from(config_json.as_str()),
            HostFfi_TO::from_value(host, TD_Opaque),
        )
        .into_result()
        .map_err(ConnectorError::from)?;
        Ok(ConnectorHandle {
            name,
            manifest: self.manifest.clone(),
            inner: Arc::new(inner),
            redactor: none,
        })
    }
}
