//! What a connector declares about itself: identity, streams, actions, config schema, secrets,
//! egress and rate limit. The host reads it before anything else.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A connector's self-description.
///
/// ```
/// use posbridge_plugin_api::{Manifest, StreamDecl};
/// let m = Manifest::new("demo", "0.1.0", "ACME", "A demo connector")
///     .stream(StreamDecl::read_write("sales"))
///     .egress_host("api.acme.example");
/// assert_eq!(m.kinds(), vec!["source", "sink"]);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The connector's name, as pipelines refer to it: lowercase ASCII letters, digits, `-`, `_`.
    pub name: String,
    /// The connector's own version.
    pub version: String,
    /// Who publishes it.
    pub vendor: String,
    /// One line on what it connects.
    pub description: String,
    /// The plugin interface the library was built against (filled by the SDK).
    #[serde(default)]
    pub interface_version: String,
    /// The streams it reads and/or writes.
    #[serde(default)]
    pub streams: Vec<StreamDecl>,
    /// Its named actions.
    #[serde(default)]
    pub actions: Vec<ActionDecl>,
    /// JSON Schema (draft 2020-12) of the config (filled by the SDK from the config type).
    #[serde(default)]
    pub config_schema: Value,
    /// Config fields (dotted paths) holding secrets; the host redacts their values everywhere.
    /// The SDK adds every property marked `"x-secret": true` or `"writeOnly": true` in the schema.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Hosts the connector may call.
    #[serde(default)]
    pub egress_hosts: Vec<String>,
    /// Config fields holding a base URL whose host is allowed too (e.g. `base_url` for a sandbox).
    #[serde(default)]
    pub egress_config_fields: Vec<String>,
    /// The vendor's documented rate limit per account, if any.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// The version of the config's shape (filled by the SDK from `Connector::CONFIG_VERSION`);
    /// 1 when absent (a library older than interface 1.1).
    #[serde(default = "first_version")]
    pub config_version: u32,
    /// The version of the cursors' shape (filled by the SDK from `Connector::CURSOR_VERSION`);
    /// 1 when absent.
    #[serde(default = "first_version")]
    pub cursor_version: u32,
}

fn first_version() -> u32 {
    1
}

impl Manifest {
    /// A manifest with identity only; add streams, actions and the rest with the builder methods.
    pub fn new(name: &str, version: &str, vendor: &str, description: &str) -> Self {
        Self {
            name: name.into(),
            version: version.into(),
            vendor: vendor.into(),
            description: description.into(),
            interface_version: String::new(),
            streams: Vec::new(),
            actions: Vec::new(),
            config_schema: Value::Null,
            secrets: Vec::new(),
            egress_hosts: Vec::new(),
            egress_config_fields: Vec::new(),
            rate_limit: None,
            config_version: 1,
            cursor_version: 1,
        }
    }

    /// Declares a stream.
    pub fn stream(mut self, s: StreamDecl) -> Self {
        self.streams.push(s);
        self
    }

    /// Declares an action (the connector implements it in [`crate::Actions`]).
    pub fn action(mut self, name: &str, description: &str) -> Self {
        self.actions.push(ActionDecl {
            name: name.into(),
            description: description.into(),
        });
        self
    }

    /// Allows requests to a host (exact, or `*.domain` for the domain and its subdomains).
    pub fn egress_host(mut self, host: &str) -> Self {
        self.egress_hosts.push(host.into());
        self
    }

    /// Allows requests to the host of the URL in this config field (dotted path).
    pub fn egress_config_field(mut self, field: &str) -> Self {
        self.egress_config_fields.push(field.into());
        self
    }

    /// Declares the vendor's limit: at most `requests` per `per_seconds` per account.
    pub fn rate_limit(mut self, requests: u32, per_seconds: u32) -> Self {
        self.rate_limit = Some(RateLimit {
            requests,
            per_seconds,
        });
        self
    }

    /// `source`, `sink` and/or `actions`, from the declared streams and actions.
    pub fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.streams.iter().any(|s| s.read) {
            k.push("source");
        }
        if self.streams.iter().any(|s| s.write) {
            k.push("sink");
        }
        if !self.actions.is_empty() {
            k.push("actions");
        }
        k
    }

    /// The declared stream with this name.
    pub fn find_stream(&self, name: &str) -> Option<&StreamDecl> {
        self.streams.iter().find(|s| s.name == name)
    }

    /// Checks what the host relies on; returns every problem found.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        let valid_name = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            p.push(format!(
                "name {:?} must be non-empty lowercase ASCII letters, digits, '-' or '_'",
                self.name
            ));
        }
        if self.version.is_empty() {
            p.push("version is empty".into());
        }
        if self.streams.is_empty() && self.actions.is_empty() {
            p.push("declares neither streams nor actions".into());
        }
        if !self.config_schema.is_object() {
            p.push("config_schema is not a JSON Schema object".into());
        }
        if self.config_version == 0 || self.cursor_version == 0 {
            p.push("config_version and cursor_version start at 1".into());
        }
        if let Some(r) = &self.rate_limit {
            if r.requests == 0 || r.per_seconds == 0 {
                p.push("rate_limit must allow at least 1 request per at least 1 second".into());
            }
        }
        p
    }
}

/// A stream the connector reads and/or writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamDecl {
    /// The stream's name (a canonical one such as `sales`, or the connector's own).
    pub name: String,
    /// Whether the connector reads it.
    pub read: bool,
    /// Whether the connector writes it.
    pub write: bool,
    /// JSON Schema of one record; the canonical schema for canonical streams.
    #[serde(default)]
    pub schema: Value,
}

impl StreamDecl {
    fn with(name: &str, read: bool, write: bool) -> Self {
        Self {
            name: name.into(),
            read,
            write,
            schema: crate::model::stream_schema(name).unwrap_or(Value::Null),
        }
    }
    /// A stream the connector reads.
    pub fn read(name: &str) -> Self {
        Self::with(name, true, false)
    }
    /// A stream the connector writes.
    pub fn write(name: &str) -> Self {
        Self::with(name, false, true)
    }
    /// A stream the connector reads and writes.
    pub fn read_write(name: &str) -> Self {
        Self::with(name, true, true)
    }
}

/// A named operation (e.g. `process_payment`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionDecl {
    /// The action's name, e.g. `process_payment`.
    pub name: String,
    /// What it does.
    pub description: String,
}

/// `requests` per `per_seconds`, per connector account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RateLimit {
    /// At most this many requests …
    pub requests: u32,
    /// … in any window of this many seconds.
    pub per_seconds: u32,
}

/// Collects the dotted paths of properties marked secret in a JSON Schema.
pub fn secret_paths(schema: &Value) -> Vec<String> {
    config_properties(schema)
        .into_iter()
        .filter(|p| p.secret)
        .map(|p| p.path)
        .collect()
}

/// One property of a config schema, as [`config_properties`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProperty {
    /// Dotted path from the config's root, e.g. `auth.token`.
    pub path: String,
    /// Marked secret (`"x-secret": true` or `"writeOnly": true`): the host redacts its value.
    pub secret: bool,
    /// A choice among listed values (`enum`, `const`, or a `oneOf`/`anyOf` of those): a
    /// setting, never a credential, whatever its name.
    pub choice: bool,
}

/// Every property of a JSON Schema, following local `$ref`s and `allOf`/`anyOf`/`oneOf`,
/// sorted by path (each path once).
///
/// ```
/// use posbridge_plugin_api::{config_properties, serde_json::json};
/// let schema = json!({"properties": {
///     "token": {"type": "string", "x-secret": true},
///     "mode": {"enum": ["a", "b"]}
/// }});
/// let props = config_properties(&schema);
/// assert_eq!(props[0].path, "mode");
/// assert!(props[0].choice && !props[0].secret);
/// assert!(props[1].secret);
/// ```
pub fn config_properties(schema: &Value) -> Vec<SchemaProperty> {
    fn is_choice(root: &Value, node: &Value) -> bool {
        let node = resolve_ref(root, node);
        node.get("enum").is_some()
            || node.get("const").is_some()
            || ["oneOf", "anyOf"].iter().any(|k| {
                node.get(*k)
                    .and_then(Value::as_array)
                    .is_some_and(|alts| !alts.is_empty() && alts.iter().all(|a| is_choice(root, a)))
            })
    }
    fn walk(root: &Value, node: &Value, prefix: &str, out: &mut Vec<SchemaProperty>, depth: usize) {
        if depth > 16 {
            return;
        }
        let node = resolve_ref(root, node);
        if let Some(props) = node.get("properties").and_then(Value::as_object) {
            for (k, v) in props {
                let path = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                let v2 = resolve_ref(root, v);
                let marked = |x: &Value| {
                    x.get("x-secret").and_then(Value::as_bool) == Some(true)
                        || x.get("writeOnly").and_then(Value::as_bool) == Some(true)
                };
                out.push(SchemaProperty {
                    path: path.clone(),
                    secret: marked(v) || marked(v2),
                    choice: is_choice(root, v),
                });
                walk(root, v2, &path, out, depth + 1);
            }
        }
        for key in ["allOf", "anyOf", "oneOf"] {
            if let Some(items) = node.get(key).and_then(Value::as_array) {
                for i in items {
                    walk(root, i, prefix, out, depth + 1);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(schema, schema, "", &mut out, 0);
    out.sort_by(|a, b| a.path.cmp(&b.path).then(b.secret.cmp(&a.secret)));
    // A path reached twice (e.g. through two `allOf` parts) is secret or a choice if either says so.
    out.dedup_by(|later, kept| {
        if later.path == kept.path {
            kept.secret |= later.secret;
            kept.choice |= later.choice;
            true
        } else {
            false
        }
    });
    out
}

fn resolve_ref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(r) if r.starts_with("#/") => root.pointer(&r[1..]).unwrap_or(node),
        _ => node,
    }
}
