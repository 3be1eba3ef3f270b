//! [`OpenApiChecker`]: checks that a served OpenAPI 3.1 document is well formed, and that live
//! answers validate against the schemas it declares for their path, method and status (JSON
//! Schema 2020-12, the dialect of OpenAPI 3.1, with the document's components for `$ref`s).

use serde_json::{json, Value};

/// A parsed OpenAPI document.
pub struct OpenApiChecker {
    pub doc: Value,
}

impl OpenApiChecker {
    /// Checks the document; panics listing every problem.
    pub fn new(doc: Value) -> Self {
        let problems = document_problems(&doc);
        assert!(
            problems.is_empty(),
            "invalid OpenAPI document:\n{}",
            problems.join("\n")
        );
        Self { doc }
    }

    /// The schema declared for `method path` answering `status` with JSON.
    pub fn response_schema(&self, method: &str, path: &str, status: u16) -> Result<Value, String> {
        let op = self.doc["paths"]
            .get(path)
            .and_then(|p| p.get(method.to_ascii_lowercase()))
            .ok_or_else(|| format!("{method} {path} is not in the document"))?;
        let response = op["responses"]
            .get(status.to_string())
            .or_else(|| op["responses"].get("default"))
            .ok_or_else(|| format!("{method} {path} declares no {status} answer"))?;
        response["content"]["application/json"]["schema"]
            .as_object()
            .map(|s| Value::Object(s.clone()))
            .ok_or_else(|| format!("{method} {path} {status} declares no JSON schema"))
    }

    /// Validates a live answer; `Err` lists what does not match.
    pub fn validate(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), String> {
        let schema = self.response_schema(method, path, status)?;
        let root = json!({"allOf": [schema], "components": self.doc["components"].clone()});
        let validator = jsonschema::draft202012::new(&root)
            .map_err(|e| format!("{method} {path} {status}: schema does not compile: {e}"))?;
        let errors: Vec<String> = validator
            .iter_errors(body)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "{method} {path} {status} does not match the document:\n{}\nbody: {body}",
                errors.join("\n")
            ))
        }
    }

    /// [`OpenApiChecker::validate`], panicking on a mismatch.
    pub fn assert_valid(&self, method: &str, path: &str, status: u16, body: &Value) {
        if let Err(e) = self.validate(method, path, status, body) {
            panic!("{e}");
        }
    }
}

/// What is wrong with an OpenAPI 3.1 document (empty if nothing).
pub fn document_problems(doc: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if !doc["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1."))
    {
        p.push(format!("openapi is {}, not 3.1.x", doc["openapi"]));
    }
    for field in ["title", "version"] {
        if !doc["info"][field].is_string() {
            p.push(format!("info.{field} is missing"));
        }
    }
    match doc["paths"].as_object() {
        None => p.push("paths is missing".into()),
        Some(paths) => {
            for (path, item) in paths {
                if !path.starts_with('/') {
                    p.push(format!("path {path:?} does not start with '/'"));
                }
                for (method, op) in item.as_object().into_iter().flatten() {
                    let known = [
                        "get", "put", "post", "delete", "options", "head", "patch", "trace",
                    ];
                    if known.contains(&method.as_str()) && !op["responses"].is_object() {
                        p.push(format!("{method} {path} has no responses"));
                    }
                }
            }
        }
    }
    let mut refs = Vec::new();
    collect_refs(doc, &mut refs);
    for r in refs {
        match r.strip_prefix('#') {
            Some(pointer) if doc.pointer(pointer).is_some() => {}
            _ => p.push(format!("$ref {r:?} does not resolve")),
        }
    }
    for (name, schema) in doc["components"]["schemas"]
        .as_object()
        .into_iter()
        .flatten()
    {
        let root = json!({"allOf": [schema], "components": doc["components"].clone()});
        if let Err(e) = jsonschema::draft202012::new(&root) {
            p.push(format!("schema {name} does not compile: {e}"));
        }
    }
    p
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.push(r.clone());
            }
            m.values().for_each(|x| collect_refs(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| collect_refs(x, out)),
        _ => {}
    }
}
