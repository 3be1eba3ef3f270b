//! `posbridge plugins list` and `posbridge plugins inspect`.

use serde_json::json;

use super::output::table;
use super::GlobalArgs;
use crate::redact::REDACTED;

pub fn list(g: &GlobalArgs, as_json: bool) -> anyhow::Result<i32> {
    let reg = g.load_registry();
    if as_json {
        let plugins: Vec<_> = reg
            .entries()
            .map(|e| {
                let m = &e.manifest;
                json!({
                    "name": m.name, "version": m.version, "vendor": m.vendor,
                    "kinds": m.kinds(),
                    "streams": m.streams.iter().map(|s| &s.name).collect::<Vec<_>>(),
                    "file": e.file,
                })
            })
            .collect();
        let out = json!({ "plugins": plugins, "skipped": reg.skipped() });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = reg
        .entries()
        .map(|e| {
            let m = &e.manifest;
            vec![
                m.name.clone(),
                m.version.clone(),
                m.vendor.clone(),
                m.kinds().join(","),
                m.streams
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(","),
                e.file.display().to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        println!(
            "no connectors found in: {}",
            g.plugin_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
    } else {
        print!(
            "{}",
            table(
                &["NAME", "VERSION", "VENDOR", "KINDS", "STREAMS", "FILE"],
                &rows
            )
        );
    }
    Ok(0)
}

pub fn inspect(g: &GlobalArgs, name: &str, as_json: bool) -> anyhow::Result<i32> {
    let reg = g.load_registry();
    let entry = reg.entry(name)?;
    let m = &entry.manifest;
    // Manifests carry no secret values, but a connector might put an example or default in
    // its schema: blank the schema's defaults/examples of secret fields.
    let mut schema = m.config_schema.clone();
    for p in &m.secrets {
        redact_schema_defaults(&mut schema, p);
    }
    if as_json {
        let mut v = serde_json::to_value(m.as_ref())?;
        v["config_schema"] = schema;
        v["kinds"] = json!(m.kinds());
        v["file"] = json!(entry.file);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!("{} {} ({})", m.name, m.version, m.vendor);
    println!("{}", m.description);
    println!("file:              {}", entry.file.display());
    println!("interface version: {}", m.interface_version);
    println!("kinds:             {}", m.kinds().join(", "));
    println!("streams:");
    for s in &m.streams {
        let rw = match (s.read, s.write) {
            (true, true) => "read, write",
            (true, false) => "read",
            _ => "write",
        };
        println!("  {:<22} {rw}", s.name);
    }
    if !m.actions.is_empty() {
        println!("actions:");
        for a in &m.actions {
            println!("  {:<22} {}", a.name, a.description);
        }
    }
    println!(
        "secrets:           {}",
        if m.secrets.is_empty() {
            "-".into()
        } else {
            m.secrets.join(", ")
        }
    );
    println!(
        "egress hosts:      {}",
        if m.egress_hosts.is_empty() {
            "-".into()
        } else {
            m.egress_hosts.join(", ")
        }
    );
    if let Some(r) = m.rate_limit {
        println!(
            "rate limit:        {} requests per {} s",
            r.requests, r.per_seconds
        );
    }
    println!("config schema:\n{}", serde_json::to_string_pretty(&schema)?);
    Ok(0)
}

fn redact_schema_defaults(schema: &mut serde_json::Value, path: &str) {
    let mut node = Some(&mut *schema);
    for part in path.split('.') {
        node = node
            .and_then(|n| n.get_mut("properties"))
            .and_then(|p| p.get_mut(part));
    }
    if let Some(obj) = node.and_then(|n| n.as_object_mut()) {
        for key in ["default", "examples", "example"] {
            if obj.contains_key(key) {
                obj.insert(key.into(), json!(REDACTED));
            }
        }
    }
}
