//! The curl examples of `docs/http-api.md` run as written: every `sh` block of its "Examples"
//! section, in order, in one bash script, against the real `posbridge serve` (with `posbridge`
//! on the PATH and the simulators the text names).

use std::process::Command;
use std::sync::Arc;

use posbridge_e2e::{posbridge_bin, workspace_root, ServeProcess};
use posbridge_sandbox::stripe::StripeSimulator;
use posbridge_sandbox::{build_simulator, start, Faults, SandboxOptions};

/// The `sh` blocks between `## Examples` and the next `## ` heading.
fn example_blocks(markdown: &str) -> Vec<String> {
    let section = markdown
        .split("\n## Examples\n")
        .nth(1)
        .expect("docs/http-api.md has an Examples section");
    let section = section.split("\n## ").next().unwrap_or(section);
    let mut blocks = Vec::new();
    let mut rest = section;
    while let Some(at) = rest.find("```sh\n") {
        let body = &rest[at + 6..];
        let end = body.find("\n```").expect("closed block");
        blocks.push(body[..end].to_string());
        rest = &body[end + 4..];
    }
    blocks
}

#[test]
fn the_curl_examples_of_the_http_api_page_run_as_written() {
    let doc = std::fs::read_to_string(workspace_root().join("docs/http-api.md")).unwrap();
    let blocks = example_blocks(&doc);
    assert!(blocks.len() >= 2, "{blocks:?}");
    let kassandro = start(
        build_simulator(&SandboxOptions {
            vendor: "kassandro".into(),
            stores: 1,
            registers_per_store: 1,
            days: 2,
            sales_per_day: 10,
            ..SandboxOptions::default()
        })
        .unwrap(),
        0,
        Faults::default(),
    )
    .unwrap();
    let stripe_sim = Arc::new(StripeSimulator::from_options(&SandboxOptions {
        vendor: "stripe".into(),
        ..SandboxOptions::default()
    }));
    let stripe = start(stripe_sim.clone(), 0, Faults::default()).unwrap();
    let kassandro_key = kassandro
        .credentials
        .iter()
        .find(|(k, _)| k == "api_key")
        .unwrap()
        .1
        .clone();

    let payments_before = stripe_sim.payment_intents().len();
    let dir = tempfile::tempdir().unwrap();
    let serve = ServeProcess::start(dir.path(), &[]);
    let bin_dir = posbridge_bin().parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(blocks.join("\n"))
        .current_dir(dir.path())
        .env("PATH", path)
        .env("POSBRIDGE_URL", &serve.base_url)
        .env("POSBRIDGE_PLUGIN_DIR", posbridge_e2e::plugin_dir())
        .env("KASSANDRO_URL", &kassandro.base_url)
        .env("KASSANDRO_API_KEY", kassandro_key)
        .env("STRIPE_URL", &stripe.base_url)
        .env("STRIPE_SECRET_KEY", stripe_sim.secret_key())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the examples failed:\nstdout:\n{stdout}\nstderr:\n{stderr}\nserver:\n{}",
        serve.stderr()
    );
    // What the examples answered, in order: the store, the export, the sync, the payment.
    assert!(stdout.contains(r#""storeId":"berlin-01""#), "{stdout}");
    assert!(stdout.contains(r#""totalTransactions":0"#), "{stdout}");
    assert!(stdout.contains(r#""system":"kassandro""#), "{stdout}");
    assert!(stdout.contains("posbridge_http_requests_total"), "{stdout}");
    assert_eq!(
        stripe_sim.payment_intents().len(),
        payments_before + 1,
        "one payment: {stdout}"
    );
    assert!(dir.path().join("openapi.json").exists());
}
