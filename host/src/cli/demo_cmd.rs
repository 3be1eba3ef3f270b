//! `posbridge demo`: the whole job on local simulators, no setup.
//!
//! The demo is a list of steps, one function each, run in order by [`run`]:
//!
//! 1. [`prepare_dir`]: wipe and create the demo folder (only one an earlier demo wrote);
//! 2. [`start_simulators`]: the POS simulators, in-process on 127.0.0.1, with data that
//!    ends yesterday so the connectors' "today"-relative windows cover it;
//! 3. [`start_books`]: the bookkeeping simulators (sevDesk, lexoffice), and [`route_books`]:
//!    each register's closures go to the first book that can book all its sales;
//! 4. [`write_pipelines`]: one pipeline file per vendor (vendor → NDJSON file, per sale), the
//!    daily summary (all those files → one `closures` file) and one per vendor and book (the
//!    routed registers' sales → daily closures booked as vouchers);
//! 5. [`run_pipelines`]: each file through the real runner, state in `DIR/posbridge.db`; the
//!    booking inputs are split off the vendors' files ([`write_booking_inputs`]) in between;
//! 6. [`psp::run`]: stripe holds the POS's card payments; one more card payment and a partial
//!    refund go through the stripe plugin's actions, and its streams are read back;
//! 7. [`reconcile`]: per vendor, business day, tax rate and payment method, the simulators'
//!    sales against the files, the closures, the books and the PSP, with exact decimal sums,
//!    ending in one verdict line.
//!
//! A new vendor is one entry in [`VENDORS`]; a new kind of step is one more function and one
//! more line in [`run`].

mod books;
mod psp;
mod reconciliation;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use chrono::{Days, NaiveDate};
use clap::Args;
use posbridge_plugin_api::model::{Closure, Sale};
use posbridge_sandbox::{build_simulator, start, RunningSandbox, SandboxOptions};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

use self::books::{Book, BookMapping, RunningBook};
use self::reconciliation::{
    carries_all, carries_booked, carries_card_charges, closure_sums, print_checks, print_rows,
    rows, sale_sums, verdict, Column, Row, Sums, VendorSides,
};
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
/// Registers per store: one keeps the closures few, so booking them in lexoffice (2 requests
/// per second) stays quick.
const REGISTERS_PER_STORE: u32 = 1;

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
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sales_per_day: u32,
    /// Business days of data, ending yesterday (each is one closure per register to book).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=366))]
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
    fn books_dir(&self) -> PathBuf {
        self.root.join("books")
    }
    fn booking_input(&self, vendor: &str, book: Book) -> PathBuf {
        self.books_dir()
            .join(format!("{}.ndjson", booking_name(vendor, book)))
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
    let books = start_books(&reg, &dir, g);
    let routes = route_books(&running, &books);
    let mapping = BookMapping::new(&payment_methods(&running));
    let steps = write_pipelines(&running, &books, &routes, &mapping, &dir, window)?;
    let state: Arc<dyn StateStore> = Arc::from(open_state(Some(&dir.state_spec()))?);
    let (moving, booking): (Vec<_>, Vec<_>) = steps.into_iter().partition(|s| s.route.is_none());
    let (mut reports, _) = run_pipelines(&reg, &moving, &routes, &books, &mapping, state.clone())?;
    write_booking_inputs(&routes, &books, &dir)?;
    let (more, booked) = run_pipelines(&reg, &booking, &routes, &books, &mapping, state)?;
    reports.extend(more);
    print_moves(&reports);
    let psp = take_card_payments(&reg, &running, &routes, g)?;
    print_where_to_look(&dir);
    let rows = reconcile(&running, &routes, &books, &dir, &booked, psp.as_ref())?;
    print_rows(&rows);
    let checks = psp.map(|p| p.checks).unwrap_or_default();
    if !checks.is_empty() {
        print_checks(
            "PSP (stripe, read back through the plugin): the demo's card payment and refund, and the account:",
            &checks,
        );
    }
    println!();
    let runs_ok = reports.iter().all(|r| r.status == RunStatus::Succeeded);
    let reconciled = rows.iter().all(Row::matches) && checks.iter().all(|c| c.matches());
    // The verdict is the last line, for people and scripts alike.
    println!(
        "{}",
        verdict(&rows, &checks, &sides(&books, !checks.is_empty()))
    );
    Ok(if runs_ok && reconciled { 0 } else { 1 })
}

/// What the totals were checked across, for the verdict.
fn sides(books: &[RunningBook], psp: bool) -> String {
    let names: Vec<&str> = books.iter().map(|b| b.book.name()).collect();
    format!(
        "files, closures, books: {}, PSP: {}",
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(" + ")
        },
        if psp { psp::STRIPE } else { "none" }
    )
}

/// The plugin folders, for "not loaded" messages.
fn plugin_dirs(g: &GlobalArgs) -> String {
    g.plugin_dirs()
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The vendors to run: the chosen ones (default all) whose connector is loaded. A vendor
/// without its connector is reported and skipped; the file connector is required.
fn choose_vendors(
    reg: &Registry,
    chosen: &[String],
    g: &GlobalArgs,
) -> anyhow::Result<Vec<&'static DemoVendor>> {
    let dirs = || plugin_dirs(g);
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
    std::fs::create_dir_all(d.books_dir())?;
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
         VENDOR-to-BOOK.yaml  pipeline: books/VENDOR-to-BOOK.ndjson -> daily closures booked as vouchers in BOOK\n\
         books/               the sales of the registers each book books, split off sales/VENDOR.ndjson\n\
         sales/               the sales as the connectors read them (canonical JSON, one per line)\n\
         closures.ndjson      the daily closures\n\
         keys/                kenzup's DEMO key pair (for local testing only)\n\
         posbridge.db         the state: cursors, the exactly-once ledger, runs, dead letters\n\
         \n\
         Which book receives which closures: each register's closures go to the first book that\n\
         can book every sale of the register, so nothing is booked twice:\n\
         \n\
         \x20 1. sevdesk   - tax rule 1 takes EUR sales at 0, 7 and 19 % only: the German registers;\n\
         \x20 2. lexoffice - any EUR sale with a tax breakdown: the Austrian registers (10, 13, 20 %);\n\
         \x20 -  neither  - kenzup exports MAD amounts without a tax breakdown: not booked.\n\
         \n\
         So kassandro (Austria) books in lexoffice, oktopos's German store in sevdesk and its\n\
         Austrian store in lexoffice. A book whose connector is not loaded is skipped and the\n\
         next one tried. lexoffice allows 2 requests per second, so only daily closures are\n\
         booked, never single sales.\n\
         \n\
         Stripe (the PSP) holds the card payments of the POS sales (each with the sale's id); the\n\
         demo also takes one card payment of {} EUR and refunds part of it through the stripe\n\
         connector, then reads payments, refunds and balance transactions back.\n\
         \n\
         The simulators stopped with the demo. Each VENDOR.yaml names the `posbridge sandbox`\n\
         command that serves the same data on the same port again. Run a pipeline with\n\
         \n\
         \x20 posbridge run {} --state {}\n\
         \n\
         A second run moves nothing new: the ledger and the cursors remember what was delivered.\n",
        psp::DEMO_PAYMENT,
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
            registers_per_store: REGISTERS_PER_STORE,
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

/// Step 3: starts the simulator of every book whose connector is loaded (else says so).
fn start_books(reg: &Registry, dir: &DemoDir, g: &GlobalArgs) -> Vec<RunningBook> {
    let mut out = Vec::new();
    for book in Book::ALL {
        if reg.get(book.name()).is_none() {
            println!(
                "skipping {}: its connector is not loaded (looked in: {})",
                book.name(),
                plugin_dirs(g)
            );
            continue;
        }
        match RunningBook::start(book, &dir.keys_dir()) {
            Ok(b) => {
                println!("{} simulator on {}", book.name(), b.base_url());
                out.push(b);
            }
            Err(e) => println!(
                "skipping {}: its simulator cannot start: {e:#}",
                book.name()
            ),
        }
    }
    out
}

/// A store and register.
type Register = (String, String);

/// One share of a vendor's registers and the book that books their closures.
struct Route {
    vendor: &'static str,
    registers: BTreeSet<Register>,
    /// Index into the running books; `None`: no running book can book them.
    book: Option<usize>,
}

impl Route {
    fn has(&self, store: &str, register: &str) -> bool {
        self.registers
            .contains(&(store.to_string(), register.to_string()))
    }
}

/// Routes each register of each vendor to the first running book that can book every sale of
/// the register; the registers no book can take are reported and not booked.
fn route_books(running: &[RunningVendor], books: &[RunningBook]) -> Vec<Route> {
    let mut routes = Vec::new();
    for r in running {
        let mut per_register: BTreeMap<Register, Vec<Sale>> = BTreeMap::new();
        for s in r.sandbox.sim.canonical_sales() {
            per_register
                .entry((s.store_id.clone(), s.register_id.clone()))
                .or_default()
                .push(s);
        }
        let mut shares: BTreeMap<Option<usize>, BTreeSet<Register>> = BTreeMap::new();
        for (register, sales) in per_register {
            let mut refusals = Vec::new();
            let book =
                books
                    .iter()
                    .position(|b| match sales.iter().find_map(|s| b.book.refuses(s)) {
                        Some(why) => {
                            refusals.push(format!("{}: {why}", b.book.name()));
                            false
                        }
                        None => true,
                    });
            if book.is_none() {
                println!(
                    "not booking {} register {}/{}: {}",
                    r.vendor.name,
                    register.0,
                    register.1,
                    if refusals.is_empty() {
                        "no book runs".to_string()
                    } else {
                        refusals.join("; ")
                    }
                );
            }
            shares.entry(book).or_default().insert(register);
        }
        for (book, registers) in shares {
            routes.push(Route {
                vendor: r.vendor.name,
                registers,
                book,
            });
        }
    }
    routes
}

/// Every payment method of the POS sales (the books' mappings must cover each).
fn payment_methods(running: &[RunningVendor]) -> BTreeSet<String> {
    running
        .iter()
        .flat_map(|r| r.sandbox.sim.canonical_sales())
        .flat_map(|s| s.payments.into_iter().map(|p| p.method))
        .collect()
}

/// A pipeline file to run, and the route when it books closures.
struct PipelineStep {
    file: PathBuf,
    /// Index into the routes.
    route: Option<usize>,
}

/// Step 4: writes the pipeline files, in the order they must run (vendors, the daily
/// summary, then the bookings).
fn write_pipelines(
    running: &[RunningVendor],
    books: &[RunningBook],
    routes: &[Route],
    mapping: &BookMapping,
    dir: &DemoDir,
    window: Window,
) -> anyhow::Result<Vec<PipelineStep>> {
    let write = |name: &str, text: String| -> anyhow::Result<PathBuf> {
        let path = dir.pipeline(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        Ok(path)
    };
    let mut steps = Vec::new();
    for r in running {
        let file = write(r.vendor.name, vendor_pipeline(r, dir, window)?)?;
        steps.push(PipelineStep { file, route: None });
    }
    let file = write(DAILY_SUMMARY, daily_summary_pipeline(dir))?;
    steps.push(PipelineStep { file, route: None });
    for (i, route) in routes.iter().enumerate() {
        let Some(b) = route.book else { continue };
        let name = booking_name(route.vendor, books[b].book);
        let file = write(&name, book_pipeline(route.vendor, &books[b], mapping, dir)?)?;
        steps.push(PipelineStep {
            file,
            route: Some(i),
        });
    }
    Ok(steps)
}

/// Splits each booked route's sales off its vendor's file (as the vendor pipeline wrote it)
/// into the booking pipeline's input.
fn write_booking_inputs(
    routes: &[Route],
    books: &[RunningBook],
    dir: &DemoDir,
) -> anyhow::Result<()> {
    for route in routes {
        let Some(b) = route.book else { continue };
        let sales: Vec<Sale> = read_ndjson(&dir.sales_file(route.vendor))?;
        let mut text = String::new();
        for s in sales
            .iter()
            .filter(|s| route.has(&s.store_id, &s.register_id))
        {
            text.push_str(&serde_json::to_string(s)?);
            text.push('\n');
        }
        let path = dir.booking_input(route.vendor, books[b].book);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// The name of the pipeline (and file) that books a vendor's closures in a book.
fn booking_name(vendor: &str, book: Book) -> String {
    format!("{vendor}-to-{}", book.name())
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

/// The pipeline that books one vendor's sales file as daily closures in a book.
fn book_pipeline(
    vendor: &str,
    book: &RunningBook,
    mapping: &BookMapping,
    dir: &DemoDir,
) -> anyhow::Result<String> {
    let name = book.book.name();
    Ok(format!(
        "# posbridge demo: {vendor}'s sales, summed into one closure per business day and\n\
         # register, booked as vouchers in {name}: the registers routed to {name} (README.txt).\n\
         # The {name} simulator ran inside `posbridge demo` and kept its vouchers in memory;\n\
         # `posbridge sandbox --vendor {name}` serves an empty one.\n\
         name: {pipeline}\n\
         source:\n\
         \x20 connector: {FILE_CONNECTOR}\n\
         \x20 streams: [sales]\n\
         \x20 config:\n{source}\
         sink:\n\
         \x20 connector: {name}\n\
         \x20 mode: daily_summary\n\
         \x20 config:\n{sink}\
         # Canonical keys -> {name} ids (docs/connectors/{name}.md, \"Mapping\").\n\
         mapping:\n{mapping}",
        pipeline = booking_name(vendor, book.book),
        source = yaml_fields(
            &json!({"path": dir.booking_input(vendor, book.book), "format": "ndjson"}),
            4
        ),
        sink = yaml_fields(&book.sink_config()?, 4),
        mapping = yaml_fields(&mapping.for_book(book.book), 2),
    ))
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

/// What each booking pipeline stored in its book, as sums, by route.
type Booked = BTreeMap<usize, Sums>;

/// Step 5: parses, validates and runs each pipeline file with the real runner, in order. The
/// vouchers a booking pipeline adds to its book simulator are its vendor's.
fn run_pipelines(
    reg: &Registry,
    steps: &[PipelineStep],
    routes: &[Route],
    books: &[RunningBook],
    mapping: &BookMapping,
    state: Arc<dyn StateStore>,
) -> anyhow::Result<(Vec<RunReport>, Booked)> {
    let mut reports = Vec::new();
    let mut booked = Booked::new();
    for step in steps {
        let (def, text) = read_pipeline(&step.file)?;
        let errs = def.validate(reg, &text);
        if !errs.is_empty() {
            let list: Vec<String> = errs.iter().map(ToString::to_string).collect();
            anyhow::bail!(
                "the demo wrote an invalid pipeline:\n  {}",
                list.join("\n  ")
            );
        }
        println!("running {} ...", def.name);
        let book = step.route.and_then(|r| routes[r].book).map(|b| &books[b]);
        let before = book.map(RunningBook::voucher_count);
        reports.push(execute(&def, reg, state.clone(), false, false, None, None)?);
        if let (Some(r), Some(book), Some(before)) = (step.route, book, before) {
            booked.insert(r, book.sums_since(before, mapping)?);
        }
    }
    Ok((reports, booked))
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

/// Step 6: the PSP, when the stripe connector is loaded (else says so and skips it).
fn take_card_payments(
    reg: &Registry,
    running: &[RunningVendor],
    routes: &[Route],
    g: &GlobalArgs,
) -> anyhow::Result<Option<psp::PspOutcome>> {
    if reg.get(psp::STRIPE).is_none() {
        println!(
            "skipping {}: its connector is not loaded (looked in: {})",
            psp::STRIPE,
            plugin_dirs(g)
        );
        return Ok(None);
    }
    println!();
    let pos: Vec<Vec<Sale>> = routes.iter().map(|r| route_sales(running, r)).collect();
    psp::run(reg, &pos).map(Some)
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

/// The simulator's sales of a route's registers.
fn route_sales(running: &[RunningVendor], route: &Route) -> Vec<Sale> {
    running
        .iter()
        .filter(|r| r.vendor.name == route.vendor)
        .flat_map(|r| r.sandbox.sim.canonical_sales())
        .filter(|s| route.has(&s.store_id, &s.register_id))
        .collect()
}

/// Step 7: per vendor and book (the registers of a route), the simulators' sales against the
/// files written, the closures, what the book stored and what the PSP charged.
fn reconcile(
    running: &[RunningVendor],
    routes: &[Route],
    books: &[RunningBook],
    dir: &DemoDir,
    booked: &Booked,
    psp: Option<&psp::PspOutcome>,
) -> anyhow::Result<Vec<Row>> {
    let closures: Vec<Closure> = read_ndjson(&dir.closures_file())?;
    let mut out = Vec::new();
    for (i, route) in routes.iter().enumerate() {
        let name = route.vendor;
        let written: Vec<Sale> = read_ndjson(&dir.sales_file(name))?;
        let book = route.book.map(|b| books[b].book);
        let sides =
            VendorSides {
                vendor: name.to_string(),
                book: book.map(|b| b.name().to_string()),
                source: sale_sums(&route_sales(running, route)),
                file: Some(Column {
                    sums: sale_sums(
                        written
                            .iter()
                            .filter(|s| route.has(&s.store_id, &s.register_id)),
                    ),
                    carries: carries_all,
                }),
                closures: Some(Column {
                    sums: closure_sums(closures.iter().filter(|c| {
                        c.source_system == name && route.has(&c.store_id, &c.register_id)
                    })),
                    carries: carries_booked,
                }),
                books: book.map(|b| Column {
                    sums: booked.get(&i).cloned().unwrap_or_default(),
                    carries: b.carries(),
                }),
                psp: psp.map(|p| Column {
                    sums: p.card_charged.get(i).cloned().unwrap_or_default(),
                    carries: carries_card_charges,
                }),
            };
        out.extend(rows(&sides));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
