//! `posbridge demo`: the whole job on local simulators, no setup.
//!
//! The demo is a list of steps, one function each, run in order by [`run`]:
//!
//! 1. [`prepare_dir`]: wipe and create the demo folder (only one an earlier demo wrote);
//! 2. [`start_simulators`]: the vendor simulators, in-process on 127.0.0.1, with data that
//!    ends yesterday so the connectors' "today"-relative windows cover it;
//! 3. [`write_pipelines`]: one pipeline file per vendor (vendor → NDJSON file, per sale) and the
//!    daily summary (all those files → one `closures` file);
//! 4. [`run_pipelines`]: each file through the real runner, state in `DIR/posbridge.db`;
//! 5. [`reconcile`]: per vendor, tax rate and payment method, the simulators' sales against the
//!    files and the closures, with exact decimal sums.
//!
//! A new vendor is one entry in [`VENDORS`]; a new kind of step is one more function and one
//! more line in [`run`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{Days, NaiveDate};
use clap::Args;
use posbridge_plugin_api::model::{Closure, Decimal, Sale};
use posbridge_sandbox::{build_simulator, start, RunningSandbox, SandboxOptions};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use super::run_cmd::execute;
use super::GlobalArgs;
use crate::pipeline::{read_pipeline, RunReport};
use crate::plugins::Registry;
use crate::state::{open_state, RunStatus, StateStore};

/// The file that marks a folder as a demo folder, so `--dir` never wipes anything else.
const MARKER_FILE: &str = "README.txt";
/// The first line of [`MARKER_FILE`].
const MARKER_LINE: &str = "posbridge demo folder";
/// The connector every demo pipeline writes with.
const FILE_CONNECTOR: &str = "generic";
/// The name of the daily-summary pipeline (and of its file, plus `.yaml`).
const DAILY_SUMMARY: &str = "daily-summary";

/// `posbridge demo` options.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// The demo folder. It is wiped at start, so it must be empty, missing, or a folder an
    /// earlier demo wrote.
    #[arg(long, value_name = "DIR", default_value = "posbridge-demo")]
    pub dir: PathBuf,
    /// The vendors to simulate, comma-separated (default: all).
    #[arg(
        long,
        value_name = "LIST",
        value_delimiter = ',',
        value_parser = clap::builder::PossibleValuesParser::new(VENDORS.iter().map(|v| v.name))
    )]
    pub vendors: Vec<String>,
    /// Receipts per register and business day.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sales_per_day: u32,
    /// Business days of data, ending yesterday.
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Seed of the data generator (same seed, same sales).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
}

/// A vendor the demo can simulate and read.
pub struct DemoVendor {
    /// Simulator and connector name (they are the same for every vendor).
    pub name: &'static str,
    /// The connector config that reads everything the running simulator serves, i.e. exactly
    /// its `canonical_sales()` (see each vendor's `docs/connectors/NAME.md`).
    pub source_config: fn(&RunningSandbox) -> anyhow::Result<Value>,
}

/// Every vendor of the demo, in the order the demo runs them.
pub const VENDORS: &[DemoVendor] = &[
    DemoVendor {
        name: "kassandro",
        source_config: kassandro_config,
    },
    DemoVendor {
        name: "oktopos",
        source_config: oktopos_config,
    },
    DemoVendor {
        name: "kenzup",
        source_config: kenzup_config,
    },
];

/// One value the simulator printed for the user, by the start of its name.
fn credential(sb: &RunningSandbox, name: &str) -> anyhow::Result<String> {
    sb.credentials
        .iter()
        .find(|(k, _)| k.starts_with(name))
        .map(|(_, v)| v.clone())
        .with_context(|| format!("the {} simulator gives no {name}", sb.vendor))
}

/// Kassandro: the account API key reads every register of the account.
fn kassandro_config(sb: &RunningSandbox) -> anyhow::Result<Value> {
    Ok(json!({
        "base_url": sb.base_url,
        "api_key": credential(sb, "api_key")?,
    }))
}

/// OktoPOS: every cash register the simulator serves, with the store id its canonical view uses.
fn oktopos_config(sb: &RunningSandbox) -> anyhow::Result<Value> {
    let registers = sb
        .sim
        .canonical_sales()
        .iter()
        .map(|s| s.register_id.parse::<u64>())
        .collect::<Result<BTreeSet<u64>, _>>()
        .context("an oktopos cash register id is not an integer")?;
    Ok(json!({
        "base_url": sb.base_url,
        "token": credential(sb, "token")?,
        "cash_register": registers,
        "store_id": "default",
    }))
}

/// Kenzup: the demo key pair the simulator wrote, referenced (not copied) from the pipeline.
fn kenzup_config(sb: &RunningSandbox) -> anyhow::Result<Value> {
    let shops: Vec<String> = credential(sb, "shop_uuids")?
        .split(',')
        .map(str::to_string)
        .collect();
    Ok(json!({
        "base_url": sb.base_url,
        "client_id": credential(sb, "client_id")?,
        "private_key_pem": format!("${{file:{}}}", credential(sb, "private_key_file")?),
        "shop_uuids": shops,
    }))
}

/// The folder layout of a demo.
struct DemoDir {
    root: PathBuf,
}

impl DemoDir {
    fn pipeline(&self, name: &str) -> PathBuf {
        self.root.join(format!("{name}.yaml"))
    }
    fn sales_dir(&self) -> PathBuf {
        self.root.join("sales")
    }
    fn sales_file(&self, vendor: &str) -> PathBuf {
        self.sales_dir().join(format!("{vendor}.ndjson"))
    }
    fn closures_file(&self) -> PathBuf {
        self.root.join("closures.ndjson")
    }
    fn keys_dir(&self) -> PathBuf {
        self.root.join("keys")
    }
    fn state_spec(&self) -> String {
        format!("sqlite:{}", self.root.join("posbridge.db").display())
    }
}

/// A vendor simulator running for the demo.
struct RunningVendor {
    vendor: &'static DemoVendor,
    options: SandboxOptions,
    sandbox: RunningSandbox,
}

/// The data's window: the simulators generate `days` business days ending yesterday.
#[derive(Debug, Clone, Copy)]
struct Window {
    first_day: NaiveDate,
    /// What the pipelines read from (`source.start`): a day before the data, so a sale just
    /// after midnight local time, which is the day before in UTC (kenzup), is still inside.
    read_from: NaiveDate,
}

impl Window {
    /// `days` days ending yesterday by the host clock (`POSBRIDGE_NOW` pins it, as for the
    /// connectors, which take "today" from the same clock).
    fn ending_yesterday(days: u32) -> anyhow::Result<Self> {
        let now = chrono::DateTime::from_timestamp_millis(crate::runtime::now_millis())
            .context("the host clock is out of range")?;
        let first_day = now
            .date_naive()
            .checked_sub_days(Days::new(u64::from(days)))
            .context("--days reaches before the calendar")?;
        let read_from = first_day
            .pred_opt()
            .context("--days reaches before the calendar")?;
        Ok(Self {
            first_day,
            read_from,
        })
    }
}

/// Runs the demo and returns the exit code: 0 when every total reconciles, 1 otherwise.
pub fn run(g: &GlobalArgs, a: &DemoArgs) -> anyhow::Result<i32> {
    let reg = g.load_registry();
    let vendors = choose_vendors(&reg, &a.vendors, g)?;
    let dir = prepare_dir(&a.dir)?;
    let window = Window::ending_yesterday(a.days)?;
    let running = start_simulators(&vendors, a, &dir, window)?;
    let files = write_pipelines(&running, &dir, window)?;
    let state: Arc<dyn StateStore> = Arc::from(open_state(Some(&dir.state_spec()))?);
    let reports = run_pipelines(&reg, &files, state)?;
    print_moves(&reports);
    print_where_to_look(&dir);
    let rows = reconcile(&running, &dir)?;
    print_reconciliation(&rows);
    let runs_ok = reports.iter().all(|r| r.status == RunStatus::Succeeded);
    let reconciled = rows.iter().all(Row::matches);
    // The verdict is the last line, for people and scripts alike.
    println!("{}", verdict(&rows));
    Ok(if runs_ok && reconciled { 0 } else { 1 })
}

/// The vendors to run: the chosen ones (default all) whose connector is loaded. A vendor
/// without its connector is reported and skipped; the file connector is required.
fn choose_vendors(
    reg: &Registry,
    chosen: &[String],
    g: &GlobalArgs,
) -> anyhow::Result<Vec<&'static DemoVendor>> {
    let dirs = || {
        g.plugin_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if reg.get(FILE_CONNECTOR).is_none() {
        anyhow::bail!(
            "the {FILE_CONNECTOR} connector is not loaded (looked in: {}); build the plugins \
             (`cargo build --release`) or point --plugin-dir at them",
            dirs()
        );
    }
    let mut out = Vec::new();
    for v in VENDORS {
        if !chosen.is_empty() && !chosen.iter().any(|c| c == v.name) {
            continue;
        }
        if reg.get(v.name).is_none() {
            println!(
                "skipping {}: its connector is not loaded (looked in: {})",
                v.name,
                dirs()
            );
            continue;
        }
        out.push(v);
    }
    if out.is_empty() {
        anyhow::bail!("no vendor connector to run the demo with");
    }
    Ok(out)
}

/// Step 1: wipes and creates the demo folder, refusing a folder the demo did not write.
fn prepare_dir(dir: &Path) -> anyhow::Result<DemoDir> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read {}", dir.display()))?
            .next()
            .is_none();
        let marked = std::fs::read_to_string(dir.join(MARKER_FILE))
            .map(|t| t.lines().next() == Some(MARKER_LINE))
            .unwrap_or(false);
        if !empty && !marked {
            anyhow::bail!(
                "{} is not empty and not a posbridge demo folder (no {MARKER_FILE} from an \
                 earlier demo); choose another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot wipe {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let d = DemoDir {
        root: dir.canonicalize()?,
    };
    std::fs::create_dir_all(d.sales_dir())?;
    std::fs::create_dir_all(d.keys_dir())?;
    std::fs::write(d.root.join(MARKER_FILE), readme(&d))?;
    println!("demo folder: {}", d.root.display());
    Ok(d)
}

/// What the demo folder holds (also the marker that lets the next demo wipe it).
fn readme(d: &DemoDir) -> String {
    format!(
        "{MARKER_LINE}\n\
         \n\
         Written by `posbridge demo`; the next demo run in this folder wipes it.\n\
         \n\
         VENDOR.yaml          pipeline: the vendor's simulator -> sales/VENDOR.ndjson (one record per sale)\n\
         {DAILY_SUMMARY}.yaml   pipeline: every sales/*.ndjson -> closures.ndjson (one closure per day and register)\n\
         sales/               the sales as the connectors read them (canonical JSON, one per line)\n\
         closures.ndjson      the daily closures\n\
         keys/                kenzup's DEMO key pair (for local testing only)\n\
         posbridge.db         the state: cursors, the exactly-once ledger, runs, dead letters\n\
         \n\
         The simulators stopped with the demo. Each VENDOR.yaml names the `posbridge sandbox`\n\
         command that serves the same data on the same port again. Run a pipeline with\n\
         \n\
         \x20 posbridge run {} --state {}\n\
         \n\
         A second run moves nothing new: the ledger and the cursors remember what was delivered.\n",
        d.pipeline(DAILY_SUMMARY).display(),
        d.state_spec()
    )
}

/// Step 2: starts each vendor's simulator on a free port of 127.0.0.1.
fn start_simulators(
    vendors: &[&'static DemoVendor],
    a: &DemoArgs,
    dir: &DemoDir,
    window: Window,
) -> anyhow::Result<Vec<RunningVendor>> {
    let mut out = Vec::new();
    for &vendor in vendors {
        let options = SandboxOptions {
            vendor: vendor.name.to_string(),
            seed: a.seed,
            days: a.days,
            sales_per_day: a.sales_per_day,
            start: window.first_day,
            data_dir: Some(dir.keys_dir()),
            ..SandboxOptions::default()
        };
        let sim = build_simulator(&options)?;
        let sandbox = start(sim, options.port, options.faults.clone())
            .with_context(|| format!("cannot start the {} simulator", vendor.name))?;
        println!(
            "{} simulator on {}: {} sales from {} to {}",
            vendor.name,
            sandbox.base_url,
            sandbox.sim.canonical_sales().len(),
            window.first_day,
            window.first_day + Days::new(u64::from(a.days.saturating_sub(1)))
        );
        out.push(RunningVendor {
            vendor,
            options,
            sandbox,
        });
    }
    Ok(out)
}

/// Step 3: writes the pipeline files, in the order they must run (the daily summary last).
fn write_pipelines(
    running: &[RunningVendor],
    dir: &DemoDir,
    window: Window,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for r in running {
        let path = dir.pipeline(r.vendor.name);
        std::fs::write(&path, vendor_pipeline(r, dir, window)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        files.push(path);
    }
    let path = dir.pipeline(DAILY_SUMMARY);
    std::fs::write(&path, daily_summary_pipeline(dir))
        .with_context(|| format!("cannot write {}", path.display()))?;
    files.push(path);
    Ok(files)
}

/// The pipeline file of one vendor: its simulator → `sales/VENDOR.ndjson`, per sale.
fn vendor_pipeline(r: &RunningVendor, dir: &DemoDir, window: Window) -> anyhow::Result<String> {
    let name = r.vendor.name;
    let o = &r.options;
    let config = (r.vendor.source_config)(&r.sandbox)?;
    Ok(format!(
        "# posbridge demo: the {name} simulator -> a generic NDJSON file, one record per sale.\n\
         # The simulator ran inside `posbridge demo`. To run this pipeline again, serve the same\n\
         # data on the same port in another terminal:\n\
         #   posbridge sandbox --vendor {name} --port {port} --seed {seed} --days {days} --sales-per-day {spd} --start {start} --data-dir {keys}\n\
         # then: posbridge run {file} --state {state}\n\
         name: {name}-to-file\n\
         source:\n\
         \x20 connector: {name}\n\
         \x20 streams: [sales]\n\
         \x20 # First business day read; the data starts the day after.\n\
         \x20 start: {from}\n\
         \x20 config:\n{config}\
         sink:\n\
         \x20 connector: {FILE_CONNECTOR}\n\
         \x20 mode: per_sale\n\
         \x20 config:\n{sink}",
        port = r.sandbox.port(),
        seed = o.seed,
        days = o.days,
        spd = o.sales_per_day,
        start = o.start,
        keys = dir.keys_dir().display(),
        file = dir.pipeline(name).display(),
        state = dir.state_spec(),
        from = window.read_from,
        config = yaml_fields(&config, 4),
        sink = yaml_fields(
            &json!({"path": dir.sales_file(name), "format": "ndjson"}),
            4
        ),
    ))
}

/// The daily-summary pipeline: every `sales/*.ndjson` → `closures.ndjson`.
fn daily_summary_pipeline(dir: &DemoDir) -> String {
    format!(
        "# posbridge demo: every sale the vendor pipelines wrote, summed into one closure per\n\
         # business day and register (totals per tax rate and payment method).\n\
         name: {DAILY_SUMMARY}\n\
         source:\n\
         \x20 connector: {FILE_CONNECTOR}\n\
         \x20 streams: [sales]\n\
         \x20 config:\n{source}\
         sink:\n\
         \x20 connector: {FILE_CONNECTOR}\n\
         \x20 mode: daily_summary\n\
         \x20 config:\n{sink}",
        source = yaml_fields(
            &json!({"path": dir.sales_dir(), "glob": "*.ndjson", "stream": "sales"}),
            4
        ),
        sink = yaml_fields(
            &json!({"path": dir.closures_file(), "format": "ndjson", "stream": "closures"}),
            4
        ),
    )
}

/// The fields of a JSON object as YAML block lines, values in JSON syntax (which YAML reads).
fn yaml_fields(v: &Value, indent: usize) -> String {
    let mut out = String::new();
    if let Some(map) = v.as_object() {
        for (k, v) in map {
            out.push_str(&format!("{:indent$}{k}: {v}\n", ""));
        }
    }
    out
}

/// Step 4: parses, validates and runs each pipeline file with the real runner, in order.
fn run_pipelines(
    reg: &Registry,
    files: &[PathBuf],
    state: Arc<dyn StateStore>,
) -> anyhow::Result<Vec<RunReport>> {
    let mut reports = Vec::new();
    for file in files {
        let (def, text) = read_pipeline(file)?;
        let errs = def.validate(reg, &text);
        if !errs.is_empty() {
            let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "the demo wrote an invalid pipeline:\n  {}",
                list.join("\n  ")
            );
        }
        println!("running {} ...", def.name);
        reports.push(execute(&def, reg, state.clone(), false, false, None, None)?);
    }
    Ok(reports)
}

/// Prints what each pipeline moved.
fn print_moves(reports: &[RunReport]) {
    println!();
    println!("What moved:");
    for r in reports {
        let c = &r.counters;
        println!(
            "  pipeline {}: read {}, written {}, duplicates {}, dead-lettered {} ({} in {:.1} s)",
            r.pipeline,
            c.read,
            c.written,
            c.duplicates,
            c.dead_lettered,
            r.status.as_str(),
            r.duration_ms as f64 / 1000.0
        );
        if let Some(e) = &r.error {
            println!("    error: {e}");
        }
        if c.dead_lettered > 0 {
            println!("    see `posbridge dlq list --pipeline {}`", r.pipeline);
        }
    }
}

/// Tells where the files are and how to run a pipeline again.
fn print_where_to_look(dir: &DemoDir) {
    println!();
    println!(
        "Pipelines, sales, closures and state are in {} (see README.txt there); re-run one with",
        dir.root.display()
    );
    println!(
        "  posbridge run {} --state {}",
        dir.pipeline(DAILY_SUMMARY).display(),
        dir.state_spec()
    );
}

/// What one row of the reconciliation sums up, within one currency.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Measure {
    /// Gross of every revenue sale.
    Gross,
    /// The gross or the tax at one tax rate (percent, normalized).
    Rate(Decimal, RatePart),
    /// The amount paid with one method.
    Payment(String),
}

/// Which amount of a tax rate a row sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum RatePart {
    Gross,
    Tax,
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Gross => write!(f, "gross total"),
            Self::Rate(r, RatePart::Gross) => write!(f, "VAT {r}% gross"),
            Self::Rate(r, RatePart::Tax) => write!(f, "VAT {r}% tax"),
            Self::Payment(m) => write!(f, "payment {m}"),
        }
    }
}

/// Sums by currency and measure.
type Sums = BTreeMap<(String, Measure), Decimal>;

/// Sums of the revenue sales (training and null receipts are no revenue, as in closures).
fn sale_sums<'a>(sales: impl IntoIterator<Item = &'a Sale>) -> Sums {
    let mut sums = Sums::new();
    for s in sales.into_iter().filter(|s| s.kind.is_revenue()) {
        let mut add =
            |m: Measure, d: Decimal| *sums.entry((s.currency.clone(), m)).or_default() += d;
        add(Measure::Gross, s.totals.gross);
        for t in &s.taxes {
            add(Measure::Rate(t.rate.normalize(), RatePart::Gross), t.gross);
            add(Measure::Rate(t.rate.normalize(), RatePart::Tax), t.tax);
        }
        for p in &s.payments {
            add(Measure::Payment(p.method.clone()), p.amount);
        }
    }
    sums
}

/// The same sums, from closures.
fn closure_sums<'a>(closures: impl IntoIterator<Item = &'a Closure>) -> Sums {
    let mut sums = Sums::new();
    for c in closures {
        let mut add =
            |m: Measure, d: Decimal| *sums.entry((c.currency.clone(), m)).or_default() += d;
        add(Measure::Gross, c.totals.gross);
        for t in &c.taxes {
            add(Measure::Rate(t.rate.normalize(), RatePart::Gross), t.gross);
            add(Measure::Rate(t.rate.normalize(), RatePart::Tax), t.tax);
        }
        for p in &c.payments {
            add(Measure::Payment(p.method.clone()), p.amount);
        }
    }
    sums
}

/// One reconciled total: the source's sum against the file's and the closures'.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    vendor: String,
    currency: String,
    measure: Measure,
    source: Decimal,
    file: Decimal,
    closures: Decimal,
}

impl Row {
    /// Whether the file and the closures hold exactly the source's amount.
    fn matches(&self) -> bool {
        self.file == self.source && self.closures == self.source
    }
}

/// One row per (currency, measure) any side has; a side without it counts as zero.
fn rows(vendor: &str, source: &Sums, file: &Sums, closures: &Sums) -> Vec<Row> {
    let keys: BTreeSet<&(String, Measure)> = source
        .keys()
        .chain(file.keys())
        .chain(closures.keys())
        .collect();
    let get = |s: &Sums, k: &(String, Measure)| s.get(k).copied().unwrap_or_default();
    keys.into_iter()
        .map(|k| Row {
            vendor: vendor.to_string(),
            currency: k.0.clone(),
            measure: k.1.clone(),
            source: get(source, k),
            file: get(file, k),
            closures: get(closures, k),
        })
        .collect()
}

/// Reads an NDJSON file of canonical records; a file never written reads as empty.
fn read_ndjson<T: DeserializeOwned>(path: &Path) -> anyhow::Result<Vec<T>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{}, line {}", path.display(), i + 1))
        })
        .collect()
}

/// Step 5: the simulators' sales against the files written and the closures, per vendor.
fn reconcile(running: &[RunningVendor], dir: &DemoDir) -> anyhow::Result<Vec<Row>> {
    let closures: Vec<Closure> = read_ndjson(&dir.closures_file())?;
    let mut out = Vec::new();
    for r in running {
        let name = r.vendor.name;
        let source = sale_sums(&r.sandbox.sim.canonical_sales());
        let written: Vec<Sale> = read_ndjson(&dir.sales_file(name))?;
        let file = sale_sums(&written);
        let booked = closure_sums(closures.iter().filter(|c| c.source_system == name));
        out.extend(rows(name, &source, &file, &booked));
    }
    Ok(out)
}

/// Prints the reconciliation table.
fn print_reconciliation(rows: &[Row]) {
    println!();
    println!("Reconciliation (source = the simulator's sales; file = sales/VENDOR.ndjson; closures = closures.ndjson):");
    let header = ["vendor", "total", "source", "file", "closures", ""];
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.vendor.clone(),
                format!("{} ({})", r.measure, r.currency),
                r.source.to_string(),
                r.file.to_string(),
                r.closures.to_string(),
                if r.matches() { "ok" } else { "DIFFERS" }.to_string(),
            ]
        })
        .collect();
    let mut width = header.map(str::len);
    for row in &cells {
        for (w, c) in width.iter_mut().zip(row) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |c: [&str; 6]| {
        format!(
            "  {:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {:>w4$}  {}",
            c[0],
            c[1],
            c[2],
            c[3],
            c[4],
            c[5],
            w0 = width[0],
            w1 = width[1],
            w2 = width[2],
            w3 = width[3],
            w4 = width[4]
        )
        .trim_end()
        .to_string()
    };
    println!("{}", line(header));
    for row in &cells {
        println!("{}", line(row.each_ref().map(String::as_str)));
    }
    println!();
}

/// The one closing line.
fn verdict(rows: &[Row]) -> String {
    let differ = rows.iter().filter(|r| !r.matches()).count();
    if differ == 0 {
        format!("reconciled: all {} totals match to the cent", rows.len())
    } else {
        format!("NOT reconciled: {differ} of {} totals differ", rows.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use posbridge_plugin_api::model::SaleKind;

    fn sales() -> Vec<Sale> {
        let a = Sale::example();
        let mut b = Sale::example();
        b.id.push_str("-2");
        b.receipt_number.push_str("-2");
        let mut training = Sale::example();
        training.id.push_str("-t");
        training.kind = SaleKind::Training;
        vec![a, b, training]
    }

    #[test]
    fn closures_of_the_sales_reconcile_and_training_is_left_out() {
        let s = sales();
        let source = sale_sums(&s);
        let booked = closure_sums(&Closure::from_sales(&s));
        let rows = rows("demo", &source, &source, &booked);
        assert!(rows.iter().all(Row::matches), "{rows:?}");
        let gross = rows.iter().find(|r| r.measure == Measure::Gross).unwrap();
        assert_eq!(gross.source, s[0].totals.gross + s[1].totals.gross);
        assert!(rows
            .iter()
            .any(|r| matches!(r.measure, Measure::Rate(_, RatePart::Tax))));
        assert!(rows
            .iter()
            .any(|r| matches!(r.measure, Measure::Payment(_))));
        assert_eq!(
            verdict(&rows),
            format!("reconciled: all {} totals match to the cent", rows.len())
        );
    }

    #[test]
    fn a_missing_sale_is_reported_per_total() {
        let s = sales();
        let source = sale_sums(&s);
        let file = sale_sums(&s[1..]);
        let booked = closure_sums(&Closure::from_sales(&s));
        let rows = rows("demo", &source, &file, &booked);
        let differ = rows.iter().filter(|r| !r.matches()).count();
        assert!(differ > 0);
        assert_eq!(
            verdict(&rows),
            format!("NOT reconciled: {differ} of {} totals differ", rows.len())
        );
    }

    #[test]
    fn a_folder_the_demo_did_not_write_is_not_wiped() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("precious.txt"), "keep me").unwrap();
        let err = prepare_dir(tmp.path()).err().expect("refused");
        assert!(
            err.to_string().contains("not a posbridge demo folder"),
            "{err}"
        );
        assert!(tmp.path().join("precious.txt").exists());
    }

    #[test]
    fn a_demo_folder_is_wiped_and_laid_out_again() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("demo");
        let d = prepare_dir(&dir).unwrap();
        std::fs::write(d.sales_file("x"), "{}\n").unwrap();
        let d = prepare_dir(&dir).unwrap();
        assert!(!d.sales_file("x").exists());
        assert!(d.sales_dir().is_dir() && d.keys_dir().is_dir());
    }

    #[test]
    fn pipeline_files_parse_with_the_paths_and_modes_written() {
        let tmp = tempfile::tempdir().unwrap();
        let d = prepare_dir(&tmp.path().join("demo")).unwrap();
        let path = d.pipeline(DAILY_SUMMARY);
        std::fs::write(&path, daily_summary_pipeline(&d)).unwrap();
        let (def, _) = read_pipeline(&path).unwrap();
        assert_eq!(def.name, DAILY_SUMMARY);
        assert_eq!(def.sink.mode, crate::pipeline::SinkMode::DailySummary);
        assert_eq!(def.source.config["path"], json!(d.sales_dir()));
        assert_eq!(def.sink.config["path"], json!(d.closures_file()));
        assert_eq!(def.sink.config["stream"], "closures");
    }
}
