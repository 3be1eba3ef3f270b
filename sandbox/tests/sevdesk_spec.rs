//! The sevDesk spec compiled into the simulator (`sandbox/specs/sevdesk-openapi.trimmed.yaml`):
//! it is self-contained and holds the operations the simulator serves, and — when the vendor's
//! full file lies beside the repository (`../shared/specs/sevdesk-openapi.yaml`) — it is exactly
//! the cut of that file its header describes. On a clean clone the last check prints that it
//! was skipped.
//!
//! `POSBRIDGE_WRITE_SPEC=1 cargo test -p posbridge-sandbox --test sevdesk_spec` rewrites the
//! embedded file from the full one (the header below, then the cut as JSON).

use std::collections::BTreeSet;
use std::path::Path;

use posbridge_sandbox::sevdesk::{
    parse_spec, vendor_spec_or_report_skip, SpecValidator, EMBEDDED_SPEC, VALIDATED_OPERATIONS,
};
use serde_json::{json, Map, Value};

const HEADER: &str = "\
# sevDesk API v1: the part of sevDesk's public OpenAPI 3.0 description (`sevdesk-openapi.yaml`,
# \"sevdesk API\" 2.0.0, the community-corrected copy kept beside the repository in
# ../shared/specs/) that the sevDesk simulator validates request bodies with.
#
# How it was cut: the operations of VALIDATED_OPERATIONS in sandbox/src/sevdesk.rs
# (POST /Voucher/Factory/saveVoucher, PUT /Voucher/{voucherId}/bookAmount), copied whole, and
# every component they reference through $ref, transitively; `openapi` and info's title and
# version kept; everything else (other paths, tags, the long introduction) left out. Nothing is
# edited. The body is JSON, which YAML reads as it is.
#
# sandbox/tests/sevdesk_spec.rs recomputes the cut from the full file whenever that file lies
# beside the repository and fails if they differ; it rewrote this file with
#   POSBRIDGE_WRITE_SPEC=1 cargo test -p posbridge-sandbox --test sevdesk_spec
";

/// Every `$ref` string inside a value.
fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, child) in o {
                match (k.as_str(), child) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|c| refs(c, out)),
        _ => {}
    }
}

/// `#/components/<kind>/<name>` → (kind, name).
fn component(r: &str) -> (String, String) {
    let rest = r
        .strip_prefix("#/components/")
        .unwrap_or_else(|| panic!("{r} is not a reference into the components"));
    let (kind, name) = rest
        .split_once('/')
        .unwrap_or_else(|| panic!("{r} names no component"));
    (kind.to_string(), name.to_string())
}

/// The cut the embedded file's header describes.
fn cut(full: &Value) -> Value {
    let mut paths = Map::new();
    let mut todo = Vec::new();
    for (method, template) in VALIDATED_OPERATIONS {
        let method = method.to_ascii_lowercase();
        let op = full["paths"][*template][&method].clone();
        assert!(!op.is_null(), "{method} {template} is not in the full spec");
        todo.push(op.clone());
        paths
            .entry(template.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("a path item is an object")
            .insert(method, op);
    }
    let mut seen = BTreeSet::new();
    let mut components = Map::new();
    while let Some(v) = todo.pop() {
        let mut found = Vec::new();
        refs(&v, &mut found);
        for r in found {
            let (kind, name) = component(&r);
            if !seen.insert((kind.clone(), name.clone())) {
                continue;
            }
            let target = full["components"][&kind][&name].clone();
            assert!(!target.is_null(), "{r} does not resolve in the full spec");
            todo.push(target.clone());
            components
                .entry(kind)
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .expect("a component kind is an object")
                .insert(name, target);
        }
    }
    json!({
        "openapi": full["openapi"],
        "info": {"title": full["info"]["title"], "version": full["info"]["version"]},
        "paths": paths,
        "components": components,
    })
}

fn embedded() -> Value {
    parse_spec(EMBEDDED_SPEC).expect("the embedded spec parses")
}

#[test]
fn the_embedded_spec_is_self_contained() {
    let spec = embedded();
    let mut found = Vec::new();
    refs(&spec, &mut found);
    assert!(!found.is_empty(), "the voucher schemas use references");
    for r in found {
        let (kind, name) = component(&r);
        assert!(
            !spec["components"][&kind][&name].is_null(),
            "{r} does not resolve inside the embedded spec"
        );
    }
}

#[test]
fn the_embedded_spec_holds_exactly_the_operations_the_simulator_serves() {
    let mut got = SpecValidator::embedded().operations();
    got.sort();
    let mut want: Vec<(String, String)> = VALIDATED_OPERATIONS
        .iter()
        .map(|(m, t)| (m.to_string(), t.to_string()))
        .collect();
    want.sort();
    assert_eq!(got, want);
}

#[test]
fn the_embedded_spec_is_the_described_cut_of_the_vendor_file() {
    let Some(path) =
        vendor_spec_or_report_skip("the embedded cut is not compared with the vendor's file")
    else {
        return;
    };
    let text = std::fs::read_to_string(&path).expect("the full spec is readable");
    let full = parse_spec(&text).expect("the full spec parses");
    let expected = cut(&full);
    if std::env::var_os("POSBRIDGE_WRITE_SPEC").is_some() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("specs/sevdesk-openapi.trimmed.yaml");
        let body = serde_json::to_string_pretty(&expected).expect("JSON");
        std::fs::write(&file, format!("{HEADER}{body}\n")).expect("the cut is written");
        eprintln!("wrote {}", file.display());
        return;
    }
    assert!(
        embedded() == expected,
        "sandbox/specs/sevdesk-openapi.trimmed.yaml differs from the cut of {}; \
         rewrite it with POSBRIDGE_WRITE_SPEC=1 cargo test -p posbridge-sandbox --test sevdesk_spec",
        path.display()
    );
    assert!(
        EMBEDDED_SPEC.starts_with(HEADER),
        "the embedded spec's header says where it comes from and how it was cut"
    );
}
