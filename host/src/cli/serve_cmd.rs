//! `posbridge serve`: the HTTP API (see [`crate::serve`] and `docs/http-api.md`).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::GlobalArgs;
use crate::serve::app::ServeSettings;
use crate::serve::master_key::MasterKey;
use crate::serve::server::{open_app, serve, termination_signal};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (`host:port`); port 0 picks a free port, printed at start.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    pub listen: String,
    /// State store (default `sqlite:posbridge.db`).
    #[arg(long, value_name = "SPEC", env = "POSBRIDGE_STATE")]
    pub state: Option<String>,
    /// File holding the master key (64 hex characters); default: $POSBRIDGE_MASTER_KEY.
    #[arg(long, value_name = "FILE")]
    pub master_key_file: Option<PathBuf>,
    /// The largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_body_bytes: usize,
    /// Requests per second per API key; past it, 429 with Retry-After. 0: no limit.
    #[arg(long, default_value_t = 50, value_name = "N")]
    pub rate_limit: u32,
    /// Requests a key may send at once before --rate-limit applies (default: --rate-limit).
    #[arg(long, value_name = "N")]
    pub rate_limit_burst: Option<u32>,
    /// Seconds a request may take before it is answered 503 `timeout`.
    #[arg(long, default_value_t = 30, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub request_timeout_secs: u64,
    /// Seconds a sync call (syncPOS, pushToERP, …) waits for its run before answering 202 with
    /// the run id to poll (kept below --request-timeout-secs).
    #[arg(long, default_value_t = 20, value_name = "SECS")]
    pub job_wait_secs: u64,
}

/// Runs the server until SIGTERM or Ctrl-C.
pub fn run(g: &GlobalArgs, a: &ServeArgs) -> anyhow::Result<i32> {
    let key = match MasterKey::load(a.master_key_file.as_deref()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("error: posbridge serve refuses to start: {e}");
            return Ok(2);
        }
    };
    let settings = ServeSettings {
        max_body_bytes: a.max_body_bytes,
        rate_limit_per_sec: a.rate_limit,
        rate_limit_burst: a.rate_limit_burst.unwrap_or(a.rate_limit),
        request_timeout: Duration::from_secs(a.request_timeout_secs),
        job_wait: Duration::from_secs(
            a.job_wait_secs
                .min(a.request_timeout_secs.saturating_sub(1)),
        ),
    };
    let app = open_app(
        a.state.as_deref(),
        &key,
        g.plugin_dirs(),
        g.load_registry(),
        settings,
    )?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("posbridge-serve")
        .enable_all()
        .build()?;
    rt.block_on(async {
        // Before the announcement: a SIGTERM right after it must stop gracefully.
        let stop = termination_signal();
        let listener = tokio::net::TcpListener::bind(&a.listen)
            .await
            .with_context(|| format!("cannot listen on {}", a.listen))?;
        let addr = listener.local_addr()?;
        println!("listening on http://{addr}");
        std::io::stdout().flush()?;
        serve(listener, app, stop).await;
        Ok::<_, anyhow::Error>(())
    })?;
    eprintln!("posbridge serve stopped");
    Ok(0)
}
