//! `posbridge sandbox`: run a vendor simulator locally, or write generated sales as NDJSON.

use std::io::Write;
use std::path::PathBuf;

use chrono::NaiveDate;
use clap::{Args, Subcommand};
use posbridge_sandbox::{
    build_simulator, generate_sales, start, vendor_canonical_sales, write_ndjson, Faults,
    SandboxOptions,
};

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Write generated sales as canonical NDJSON (for a vendor: exactly what a connector reading
    /// that vendor's simulator, started with the same options, must produce).
    Generate(GenerateArgs),
}

/// The data-set options shared by serving and generating.
#[derive(Debug, Args, Clone)]
pub struct DataArgs {
    /// Seed of the generator (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Number of stores.
    #[arg(long)]
    pub stores: Option<u32>,
    /// Cash registers per store.
    #[arg(long)]
    pub registers_per_store: Option<u32>,
    /// Number of business days.
    #[arg(long)]
    pub days: Option<u32>,
    /// Receipts per register and day.
    #[arg(long)]
    pub sales_per_day: Option<u32>,
    /// First business day (YYYY-MM-DD).
    #[arg(long)]
    pub start: Option<NaiveDate>,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The vendor to simulate.
    #[arg(long, default_value = "kassandro")]
    pub vendor: String,
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    #[command(flatten)]
    pub data: DataArgs,
    /// The API key / token the simulator accepts (each vendor has a demo default).
    #[arg(long)]
    pub api_key: Option<String>,
    /// Where to write files such as kenzup's demo key pair.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Share of requests answered with a 5xx (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// Share of requests answered 429 with Retry-After (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub rate_limit_rate: f64,
    /// Retry-After of those 429s, in seconds.
    #[arg(long, default_value_t = 1)]
    pub retry_after_secs: u64,
    /// Share of connections dropped without an answer (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub drop_rate: f64,
    /// Share of 200 answers with a truncated JSON body (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub malformed_rate: f64,
    /// Tokens expire after this many requests.
    #[arg(long)]
    pub expire_token_after: Option<u64>,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A vendor (kassandro, oktopos, kenzup) whose projection to write; without it, plain
    /// canonical sales of every kind.
    #[arg(long)]
    pub vendor: Option<String>,
    /// About how many sales.
    #[arg(long, default_value_t = 1000)]
    pub sales: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Output file (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

fn options(vendor: &str, data: &DataArgs) -> SandboxOptions {
    let mut o = SandboxOptions {
        vendor: vendor.to_string(),
        seed: data.seed,
        ..Default::default()
    };
    if let Some(v) = data.stores {
        o.stores = v;
    }
    if let Some(v) = data.registers_per_store {
        o.registers_per_store = v;
    }
    if let Some(v) = data.days {
        o.days = v;
    }
    if let Some(v) = data.sales_per_day {
        o.sales_per_day = v;
    }
    if let Some(v) = data.start {
        o.start = v;
    }
    o
}

pub fn run(a: &SandboxArgs) -> anyhow::Result<i32> {
    match &a.command {
        Some(SandboxCommand::Generate(g)) => generate(g),
        None => serve(&a.serve),
    }
}

fn serve(s: &ServeArgs) -> anyhow::Result<i32> {
    let mut o = options(&s.vendor, &s.data);
    o.port = s.port;
    o.api_key = s.api_key.clone();
    o.data_dir = s
        .data_dir
        .clone()
        .or_else(|| Some(std::env::temp_dir().join(format!("posbridge-sandbox-{}", s.vendor))));
    o.faults = Faults {
        latency_ms: s.latency_ms,
        error_rate: s.error_rate,
        rate_limit_rate: s.rate_limit_rate,
        retry_after_secs: s.retry_after_secs,
        drop_rate: s.drop_rate,
        malformed_rate: s.malformed_rate,
        expire_token_after: s.expire_token_after,
        seed: s.data.seed,
    };
    let sim = build_simulator(&o)?;
    let faults = o.faults.clone();
    let running = start(sim, o.port, faults)?;
    println!(
        "{} sandbox listening on {}",
        running.vendor, running.base_url
    );
    println!("base_url: {}", running.base_url);
    for (k, v) in &running.credentials {
        println!("{k}: {v}");
    }
    println!(
        "fault knobs: GET/PUT {}/__sandbox/faults · request log: GET {}/__sandbox/requests",
        running.base_url, running.base_url
    );
    println!("press Ctrl-C to stop");
    std::io::stdout().flush()?;
    running.wait();
    Ok(0)
}

fn generate(g: &GenerateArgs) -> anyhow::Result<i32> {
    let sales = match &g.vendor {
        None => generate_sales(g.sales, g.seed),
        Some(v) => {
            let mut o = SandboxOptions {
                vendor: v.clone(),
                seed: g.seed,
                ..Default::default()
            };
            let per_day = (o.stores * o.registers_per_store * o.days).max(1) as usize;
            o.sales_per_day = g.sales.div_ceil(per_day).max(1) as u32;
            vendor_canonical_sales(&o)?
        }
    };
    match &g.out {
        Some(p) => {
            let mut f = std::io::BufWriter::new(std::fs::File::create(p)?);
            write_ndjson(&sales, &mut f)?;
            f.flush()?;
            eprintln!("wrote {} sales to {}", sales.len(), p.display());
        }
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            write_ndjson(&sales, &mut lock)?;
        }
    }
    Ok(0)
}
