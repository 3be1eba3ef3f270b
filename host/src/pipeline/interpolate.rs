//! `${env:NAME}` and `${file:PATH}` references in pipeline files, resolved before anything
//! runs. Every resolved value is treated as a secret (redacted in all output).

use serde_json::Value;

/// Replaces references in every string of `v`. Returns the resolved values (to redact) or an
/// error naming the reference and where it is (a JSON path).
pub fn interpolate(v: &mut Value, base_dir: &std::path::Path) -> Result<Vec<String>, String> {
    let mut secrets = Vec::new();
    walk(v, "$", base_dir, &mut secrets)?;
    Ok(secrets)
}

fn walk(
    v: &mut Value,
    path: &str,
    base: &std::path::Path,
    secrets: &mut Vec<String>,
) -> Result<(), String> {
    match v {
        Value::String(s) if s.contains("${") => {
            *s = resolve(s, path, base, secrets)?;
        }
        Value::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                walk(x, &format!("{path}[{i}]"), base, secrets)?;
            }
        }
        Value::Object(o) => {
            for (k, x) in o.iter_mut() {
                walk(x, &format!("{path}.{k}"), base, secrets)?;
            }
        }
        _ => {}
    }
    Ok(())
}

fn resolve(
    s: &str,
    path: &str,
    base: &std::path::Path,
    secrets: &mut Vec<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("{path}: unterminated reference in {s:?}"))?;
        let reference = &after[..end];
        let value = if let Some(name) = reference.strip_prefix("env:") {
            std::env::var(name).map_err(|_| {
                format!("{path}: environment variable {name} is not set (referenced as ${{env:{name}}})")
            })?
        } else if let Some(file) = reference.strip_prefix("file:") {
            let p = base.join(file);
            std::fs::read_to_string(&p)
                .map_err(|e| {
                    format!(
                        "{path}: cannot read {} (referenced as ${{file:{file}}}): {e}",
                        p.display()
                    )
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string()
        } else {
            return Err(format!(
                "{path}: unknown reference ${{{reference}}} (use ${{env:NAME}} or ${{file:PATH}})"
            ));
        };
        secrets.push(value.clone());
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resolves_env_and_file() {
        std::env::set_var("POSBRIDGE_TEST_SECRET", "abc123");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("key.txt"), "filesecret\n").unwrap();
        let mut v = json!({"a": "${env:POSBRIDGE_TEST_SECRET}", "b": ["x-${file:key.txt}"]});
        let s = interpolate(&mut v, dir.path()).unwrap();
        assert_eq!(v, json!({"a": "abc123", "b": ["x-filesecret"]}));
        assert_eq!(s, vec!["abc123".to_string(), "filesecret".to_string()]);
    }

    #[test]
    fn missing_env_is_named() {
        let mut v = json!({"sink": {"token": "${env:POSBRIDGE_SURELY_UNSET}"}});
        let e = interpolate(&mut v, std::path::Path::new(".")).unwrap_err();
        assert!(
            e.contains("POSBRIDGE_SURELY_UNSET") && e.contains("$.sink.token"),
            "{e}"
        );
    }
}
