//! `posbridge webhooks serve`: an HTTP receiver that verifies deliveries with a connector
//! action and appends each verified event once to an NDJSON file (see [`crate::webhooks`]).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::GlobalArgs;
use crate::plugins::OpenOptions;
use crate::webhooks::{router, ConnectionLimits, ConnectorVerifier, EventLog, ReceiverSettings};

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Listen for webhook deliveries: verify each with the connector, append the event to --out.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The connector that verifies deliveries, e.g. `stripe`.
    #[arg(long)]
    pub connector: String,
    /// Its config, as a JSON or YAML file (holds the webhook signing secret).
    #[arg(long, value_name = "FILE.json|yaml")]
    pub config: PathBuf,
    /// Address to listen on (`host:port`); port 0 picks a free port, printed at start.
    #[arg(long, default_value = "127.0.0.1:8787", value_name = "ADDR")]
    pub listen: String,
    /// The URL path that accepts POSTed deliveries.
    #[arg(long, default_value = "/webhooks/stripe")]
    pub path: String,
    /// NDJSON file the verified events are appended to; created if missing, and the event ids
    /// already in it are not appended again.
    #[arg(long, value_name = "events.ndjson")]
    pub out: PathBuf,
    /// The connector action that verifies a delivery; it gets `{"payload", "signature_header"}`
    /// and returns the event.
    #[arg(long, default_value = "verify_webhook")]
    pub action: String,
    /// The request header that carries the signature.
    #[arg(long, default_value = "Stripe-Signature", value_name = "NAME")]
    pub signature_header: String,
    /// Seconds a client has to send its request line and headers (after connecting, or after
    /// its previous response); slower connections are closed.
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,
    /// Connections served at once; more wait in the listen backlog until one closes.
    #[arg(long, default_value_t = 256, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub max_connections: u64,
}

/// Dispatches `posbridge webhooks …`.
pub fn run(g: &GlobalArgs, c: &WebhooksCommand) -> anyhow::Result<i32> {
    match c {
        WebhooksCommand::Serve(a) => serve(g, a),
    }
}

fn serve(g: &GlobalArgs, a: &ServeArgs) -> anyhow::Result<i32> {
    let settings = ReceiverSettings::new(&a.path, &a.signature_header)?;
    let config = crate::pipeline::load_config_file(&a.config)?;
    let reg = g.load_registry();
    let opts = OpenOptions::default();
    let cancel = opts.cancel.clone();
    let handle = reg
        .open(&a.connector, &config, opts)
        .with_context(|| format!("cannot open connector {}", a.connector))?;
    let actions: Vec<&str> = handle
        .manifest()
        .actions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    if !actions.contains(&a.action.as_str()) {
        anyhow::bail!(
            "connector {} has no action {:?} (it has: {})",
            a.connector,
            a.action,
            if actions.is_empty() {
                "none".to_string()
            } else {
                actions.join(", ")
            }
        );
    }
    let log = EventLog::open(&a.out)?;
    tracing::info!(file = %log.path().display(), events = log.ids(), "event file opened");
    let app = router(
        settings,
        Arc::new(ConnectorVerifier::new(handle, a.action.clone())),
        log,
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}{}", a.path);
        std::io::stdout().flush()?;
        let limits = ConnectionLimits {
            header_read_timeout: Duration::from_secs(a.header_timeout_secs),
            max_connections: a.max_connections as usize,
        };
        crate::webhooks::serve(listener, app, limits, async move {
            let _ = tokio::signal::ctrl_c().await;
            cancel.cancel();
            tracing::info!("stopping the webhook receiver");
        })
        .await;
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(0)
}
