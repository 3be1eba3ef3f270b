//! End-to-end tests of the Kassandro connector, loaded as a plugin, against its simulator.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Barrier, Mutex};

use posbridge::plugins::{ConnectorHandle, KvStore, OpenOptions};
use posbridge_plugin_api::model::{Attachment, Sale, SaleKind};
use posbridge_plugin_api::{ConnectorError, ReadRequest, RecordOutcome, WriteRequest};
use posbridge_sandbox::kassandro::KassandroSimulator;
use posbridge_sandbox::{
    build_simulator, start, Country, Dataset, Faults, GenSpec, RunningSandbox, SandboxOptions,
    Simulator,
};
use serde_json::{json, Value};

fn options() -> SandboxOptions {
    SandboxOptions {
        vendor: "kassandro".into(),
        stores: 3,
        registers_per_store: 2,
        days: 3,
        sales_per_day: 25,
        ..SandboxOptions::default()
    }
}

fn sandbox(opts: &SandboxOptions, faults: Faults) -> RunningSandbox {
    start(build_simulator(opts).expect("simulator"), 0, faults).expect("sandbox starts")
}

fn api_key(sb: &RunningSandbox) -> String {
    sb.credentials
        .iter()
        .find(|(k, _)| k == "api_key")
        .expect("api_key")
        .1
        .clone()
}

fn config(sb: &RunningSandbox, page_size: u32) -> Value {
    json!({
        "base_url": sb.base_url,
        "api_key": api_key(sb),
        "cash_register_id": 1,
        "page_size": page_size,
        "overlap_days": 1,
        "start_date": "2026-01-05",
    })
}

fn open(config: &Value) -> ConnectorHandle {
    posbridge_e2e::registry()
        .open("kassandro", config, OpenOptions::default())
        .expect("kassandro opens")
}

fn request(cursor: Option<Value>, to: &str) -> ReadRequest {
    ReadRequest {
        stream: "sales".into(),
        cursor,
        page_size: 1000,
        from: Some("2026-01-05".parse().unwrap()),
        to: Some(to.parse().unwrap()),
        ..Default::default()
    }
}

/// Reads until `has_more` is false; returns the sales, the page count and the last cursor.
fn read_all(
    handle: &ConnectorHandle,
    cursor: Option<Value>,
    to: &str,
) -> (Vec<Sale>, usize, Option<Value>) {
    posbridge_e2e::read_all_sales(handle, cursor, |c| request(c, to))
}

use posbridge_e2e::sales_by_id as by_id;

fn assert_same_sales(read: Vec<Sale>, expected: Vec<Sale>) {
    let (read, expected) = (by_id(read), by_id(expected));
    assert_eq!(
        read.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (id, sale) in &read {
        let want = &expected[id];
        assert_eq!(sale, want, "sale {id} differs");
        // Instants compare equal across offsets: the local offset must match too.
        assert_eq!(
            sale.timestamp.offset(),
            want.timestamp.offset(),
            "sale {id} offset"
        );
        let violations = sale.validate();
        assert!(
            violations.is_empty(),
            "sale {id} does not reconcile: {violations:?}"
        );
    }
}

#[test]
fn the_whole_data_set_reads_as_the_simulators_canonical_sales() {
    let sb = sandbox(&options(), Faults::default());
    let expected = sb.sim.canonical_sales();
    let stores: BTreeSet<&str> = expected.iter().map(|s| s.store_id.as_str()).collect();
    let registers: BTreeSet<&str> = expected.iter().map(|s| s.register_id.as_str()).collect();
    assert_eq!(
        (stores.len(), registers.len()),
        (3, 6),
        "several stores and registers"
    );
    let total = expected.len();
    assert_eq!(total, 450);
    // Many small pages, and page sizes just under, at and just over the number of receipts.
    for (page_size, pages_wanted) in [(7, total.div_ceil(7)), (449, 2), (450, 1), (451, 1)] {
        let handle = open(&config(&sb, page_size as u32));
        let (sales, pages, cursor) = read_all(&handle, None, "2026-01-07");
        assert_eq!(pages, pages_wanted, "page size {page_size}");
        assert_eq!(
            cursor,
            Some(
                json!({"version": 2, "partitions": {"receipts": {"synced_through": "2026-01-07"}}})
            )
        );
        assert_same_sales(sales, expected.clone());
    }
    // The kinds the vendor format carries all come through.
    let kinds: BTreeSet<String> = expected.iter().map(|s| format!("{:?}", s.kind)).collect();
    for k in [SaleKind::Sale, SaleKind::Refund, SaleKind::Cancellation] {
        assert!(kinds.contains(&format!("{k:?}")), "{kinds:?}");
    }
}

#[test]
fn the_requests_follow_the_documented_spelling() {
    let sb = sandbox(&options(), Faults::default());
    let handle = open(&config(&sb, 200));
    read_all(&handle, None, "2026-01-07");
    let reqs = sb.requests();
    let count = reqs
        .iter()
        .find(|r| r.path == "/v1.0/receipts/count")
        .expect("count asked");
    assert_eq!(
        count.query.as_deref(),
        Some("dateFrom=2026-01-05T00:00:00&dateTo=2026-01-07T23:59:59")
    );
    let list = reqs
        .iter()
        .find(|r| r.path == "/v1.0/receipts")
        .expect("receipts listed");
    assert_eq!(
        list.query.as_deref(),
        Some("datefrom=2026-01-05&dateto=2026-01-07&limit=200&offset=0&withitems=true")
    );
    assert!(list.headers.iter().any(|(k, _)| k == "kassandro-token"));
    // One account token, reused: created once, never again.
    assert_eq!(
        reqs.iter()
            .filter(|r| r.path == "/v1.0/createtoken")
            .count(),
        1
    );
}

#[test]
fn an_incremental_read_from_the_saved_cursor_finds_the_new_receipts() {
    let opts = options();
    let sb = sandbox(&opts, Faults::default());
    let handle = open(&config(&sb, 60));
    let (first, _, cursor) = read_all(&handle, None, "2026-01-08");
    assert_eq!(first.len(), sb.sim.canonical_sales().len());

    // One more day of receipts appears (2026-01-08).
    let mut data = opts.dataset(Country::At);
    sb.sim.add_sales(data.extend_days(1));
    let before: BTreeSet<String> = first.iter().map(|s| s.id.clone()).collect();
    let added: BTreeSet<String> = sb
        .sim
        .canonical_sales()
        .into_iter()
        .map(|s| s.id)
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(added.len(), 6 * 25);

    let (second, _, _) = read_all(&handle, cursor, "2026-01-08");
    let second_ids: BTreeSet<String> = second.iter().map(|s| s.id.clone()).collect();
    assert!(added.is_subset(&second_ids), "every new receipt is read");
    // Only the overlap (one day before the last synced day, 2026-01-08) is read again.
    let reread: Vec<_> = second
        .iter()
        .filter(|s| before.contains(&s.id))
        .map(|s| s.business_day)
        .collect();
    assert!(
        reread.iter().all(|d| *d >= "2026-01-07".parse().unwrap()),
        "re-read from {reread:?}"
    );
}

#[test]
fn a_wrong_api_key_is_a_clear_auth_error_without_retries() {
    let sb = sandbox(&options(), Faults::default());
    let mut cfg = config(&sb, 50);
    cfg["api_key"] = json!("not-the-key");
    let handle = open(&cfg);
    sb.clear_requests();
    match handle.check() {
        Err(ConnectorError::Auth(m)) => assert!(
            m.contains("kassandro") && m.contains("Invalid API key."),
            "{m}"
        ),
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert_eq!(sb.requests().len(), 1, "check made one request");
    assert!(matches!(
        handle.read(&request(None, "2026-01-07")),
        Err(ConnectorError::Auth(_))
    ));
    assert_eq!(
        sb.requests().len(),
        2,
        "read made one request, no retry loop"
    );
}

#[test]
fn check_accepts_the_right_key() {
    let sb = sandbox(&options(), Faults::default());
    let report = open(&config(&sb, 50)).check().expect("check passes");
    assert!(
        report.ok && report.message.contains("6 cash register"),
        "{report:?}"
    );
}

/// Writes a pipeline file and runs `posbridge run` with the host clock pinned to `now`.
fn run(dir: &Path, name: &str, pipeline: Value, now: &str) {
    let yaml = dir.join(format!("{name}.yaml"));
    std::fs::write(&yaml, serde_json::to_string_pretty(&pipeline).unwrap()).unwrap(); // JSON is YAML
    let state = format!("sqlite:{}", dir.join("state.sqlite").display());
    let result = posbridge_e2e::posbridge()
        .env("POSBRIDGE_NOW", now)
        .arg("run")
        .arg(&yaml)
        .args(["--state", &state])
        .output()
        .expect("posbridge runs");
    assert!(
        result.status.success(),
        "posbridge run failed: {}\n{}",
        String::from_utf8_lossy(&result.stdout),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Runs kassandro → generic; returns the sale ids written to the file.
fn run_to_file(sb: &RunningSandbox, dir: &Path, name: &str, now: &str) -> Vec<String> {
    run_to_file_in_pages_of(sb, dir, name, now, 40)
}

/// [`run_to_file`], reading `page_size` receipts a page.
fn run_to_file_in_pages_of(
    sb: &RunningSandbox,
    dir: &Path,
    name: &str,
    now: &str,
    page_size: u32,
) -> Vec<String> {
    let out = dir.join(format!("{name}.ndjson"));
    let pipeline = json!({
        "name": "kassandro-to-file",
        "source": {"connector": "kassandro", "config": config(sb, page_size), "streams": ["sales"]},
        "sink": {"connector": "generic", "config": {"path": out, "format": "ndjson"}},
    });
    run(dir, name, pipeline, now);
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l).expect("ndjson")["id"]
                .as_str()
                .expect("id")
                .to_string()
        })
        .collect()
}

#[test]
fn the_pipeline_to_generic_delivers_every_sale_once_and_then_only_new_ones() {
    let opts = options();
    let sb = sandbox(&opts, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let ids = run_to_file(&sb, dir.path(), "first", "2026-01-07T21:00:00+01:00");
    let expected: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), expected.len(), "no duplicates");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);

    let mut data = opts.dataset(Country::At);
    sb.sim.add_sales(data.extend_days(1));
    let added: BTreeSet<String> = sb
        .sim
        .canonical_sales()
        .into_iter()
        .map(|s| s.id)
        .filter(|id| !expected.contains(id))
        .collect();
    let second = run_to_file(&sb, dir.path(), "second", "2026-01-08T21:00:00+01:00");
    assert_eq!(
        second.into_iter().collect::<BTreeSet<_>>(),
        added,
        "the second run delivers only the new receipts"
    );
}

/// A page the host is done with carries the next batch to the sink (`page_buffers`); here the
/// page is the kassandro library's and the sink the generic one's, which must hand it back to
/// its owner to be freed rather than keep it. Pages of 1,000 receipts are well above the size
/// worth keeping (64 KiB).
#[test]
fn big_pages_of_one_library_reach_another_librarys_sink_once_each() {
    let opts = SandboxOptions {
        sales_per_day: 60,
        ..options()
    };
    let sb = sandbox(&opts, Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let ids = run_to_file_in_pages_of(&sb, dir.path(), "big", "2026-01-07T21:00:00+01:00", 1000);
    let expected: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), expected.len(), "no duplicates");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    let bytes = std::fs::metadata(dir.path().join("big.ndjson"))
        .unwrap()
        .len();
    assert!(
        bytes > 4 * 64 * 1024,
        "pages above the kept minimum: {bytes} bytes in all"
    );
}

#[test]
fn faults_are_survived_without_duplicates() {
    let faults = Faults {
        error_rate: 0.10,
        rate_limit_rate: 0.05,
        retry_after_secs: 1,
        drop_rate: 0.05,
        seed: 11,
        ..Faults::default()
    };
    let sb = sandbox(&options(), faults);
    let dir = tempfile::tempdir().unwrap();
    let ids = run_to_file(&sb, dir.path(), "faulty", "2026-01-07T21:00:00+01:00");
    let expected: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), expected.len(), "no duplicates, nothing lost");
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), expected);
    assert!(
        sb.requests().iter().any(|r| r.fault.is_some()),
        "faults were injected"
    );
}

#[test]
fn expired_tokens_are_renewed() {
    let faults = Faults {
        expire_token_after: Some(5),
        ..Faults::default()
    };
    let sb = sandbox(&options(), faults);
    let (sales, _, _) = read_all(&open(&config(&sb, 20)), None, "2026-01-07");
    assert_eq!(sales.len(), sb.sim.canonical_sales().len());
    let created = sb
        .requests()
        .iter()
        .filter(|r| r.path == "/v1.0/createtoken")
        .count();
    assert!(
        created > 1,
        "the token expired and was created again ({created})"
    );
    // Once per refusal: every 401 led to exactly one new token, never two.
    let refused = sb.requests().iter().filter(|r| r.status == 401).count();
    assert_eq!(created, 1 + refused, "one renewal per refusal");
}

/// Generated Austrian sales the simulator does not hold, to write into it.
fn sales_to_write(n: usize) -> Vec<Sale> {
    let ds = Dataset::generate(GenSpec {
        seed: 99,
        country: Country::At,
        days: 2,
        sales_per_day: 20,
        ..GenSpec::default()
    });
    ds.sales
        .into_iter()
        .filter(|s| {
            matches!(
                s.kind,
                SaleKind::Sale | SaleKind::Refund | SaleKind::NullReceipt
            )
        })
        .take(n)
        .collect()
}

fn write(handle: &ConnectorHandle, sales: &[Sale], keys: &[String]) -> Vec<RecordOutcome> {
    let req = WriteRequest {
        stream: "sales".into(),
        idempotency_keys: keys.to_vec(),
        ..WriteRequest::default()
    };
    let records: Vec<Value> = sales
        .iter()
        .map(|s| serde_json::to_value(s).unwrap())
        .collect();
    handle.write(&req, &records).expect("batch writes")
}

/// The canonical cancellation of `sale`, as its source system would report it.
fn cancellation_of(sale: &Sale) -> Sale {
    let mut c = sale.clone();
    c.kind = SaleKind::Cancellation;
    c.receipt_number = format!("{}-storno", sale.receipt_number);
    c.id = Sale::make_id(
        &c.source_system,
        &c.store_id,
        &c.register_id,
        &c.receipt_number,
    );
    c.cancels = Some(sale.receipt_number.clone());
    c
}

fn external_id(o: &RecordOutcome) -> String {
    match o {
        RecordOutcome::Written {
            external_id: Some(id),
        }
        | RecordOutcome::Duplicate {
            external_id: Some(id),
        } => id.clone(),
        other => panic!("not written: {other:?}"),
    }
}

#[test]
fn the_sink_writes_receipts_once_cancels_and_checks_attachments() {
    let sb = sandbox(&options(), Faults::default());
    let handle = open(&config(&sb, 100));
    let before = sb.sim.canonical_sales().len();
    let sales = sales_to_write(25);
    let keys: Vec<String> = (0..sales.len()).map(|i| format!("key-{i}")).collect();

    let outcomes = write(&handle, &sales, &keys);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, RecordOutcome::Written { .. })),
        "{outcomes:?}"
    );
    let stored: BTreeMap<String, Sale> = sb
        .sim
        .canonical_sales()
        .into_iter()
        .map(|s| (s.receipt_number.clone(), s))
        .collect();
    assert_eq!(stored.len(), before + sales.len());
    for (sale, o) in sales.iter().zip(&outcomes) {
        let got = &stored[&external_id(o)];
        assert_eq!(got.register_id, "1");
        assert_eq!(got.timestamp, sale.timestamp);
        assert_eq!(got.totals.gross, sale.totals.gross, "{}", sale.id);
        assert_eq!(got.lines.len(), sale.lines.len());
        assert!(got.validate().is_empty(), "{:?}", got.validate());
    }

    // The same keys again: recognised by their customText, nothing written twice.
    let again = write(&handle, &sales, &keys);
    assert!(
        again
            .iter()
            .all(|o| matches!(o, RecordOutcome::Duplicate { .. })),
        "{again:?}"
    );
    assert_eq!(
        again.iter().map(external_id).collect::<Vec<_>>(),
        outcomes.iter().map(external_id).collect::<Vec<_>>()
    );
    assert_eq!(sb.sim.canonical_sales().len(), before + sales.len());

    // A cancellation names the SOURCE's receipt number; the sink cancels the receipt it wrote
    // for that sale (found by the sale id in its customText), once.
    let first_sale = outcomes
        .iter()
        .zip(&sales)
        .find(|(_, s)| s.kind == SaleKind::Sale)
        .unwrap();
    let target = external_id(first_sale.0);
    assert_ne!(
        first_sale.1.receipt_number, target,
        "numbers differ across systems"
    );
    let cancel = cancellation_of(first_sale.1);
    let done = write(&handle, std::slice::from_ref(&cancel), &["cancel-1".into()]);
    let number = external_id(&done[0]);
    let storno = sb
        .sim
        .canonical_sales()
        .into_iter()
        .find(|s| s.receipt_number == number)
        .unwrap();
    assert_eq!(
        (storno.kind, storno.cancels.as_deref(), storno.totals.gross),
        (
            SaleKind::Cancellation,
            Some(target.as_str()),
            -first_sale.1.totals.gross
        )
    );
    let twice = write(&handle, &[cancel], &["cancel-2".into()]);
    assert!(
        matches!(&twice[0], RecordOutcome::Rejected { reason } if reason.contains("already cancelled")),
        "{twice:?}"
    );

    // A sale and its cancellation in one batch: the cancellation finds the receipt just written.
    let pair_sale = sales_to_write(40)
        .into_iter()
        .skip(26)
        .find(|s| s.kind == SaleKind::Sale)
        .expect("a plain sale not written yet");
    let pair = write(
        &handle,
        &[pair_sale.clone(), cancellation_of(&pair_sale)],
        &["pair-sale".into(), "pair-cancel".into()],
    );
    let (pair_target, pair_storno) = (external_id(&pair[0]), external_id(&pair[1]));
    let stored = sb
        .sim
        .canonical_sales()
        .into_iter()
        .find(|s| s.receipt_number == pair_storno)
        .unwrap();
    assert_eq!(stored.cancels.as_deref(), Some(pair_target.as_str()));

    // A cancellation of a sale this sink never wrote: rejected, nothing posted.
    let mut stranger = cancellation_of(first_sale.1);
    stranger.cancels = Some("no-such-receipt".into());
    sb.clear_requests();
    let o = write(&handle, &[stranger], &["cancel-stranger".into()]);
    assert!(
        matches!(&o[0], RecordOutcome::Rejected { reason }
            if reason.contains("no-such-receipt") && reason.contains("not written by this sink")),
        "{o:?}"
    );
    assert!(
        !sb.requests().iter().any(|r| r.method == "POST"),
        "nothing was posted"
    );

    // Attachments: a file over 5 MB is refused before anything is sent; a small one is uploaded.
    // Base64 of n bytes "a" (n a multiple of 3): "aaa" is "YWFh".
    let b64 = |n: usize| {
        assert_eq!(n % 3, 0);
        "YWFh".repeat(n / 3)
    };
    let mut big = sales_to_write(26)[25].clone();
    big.attachments = vec![Attachment {
        name: "scan.pdf".into(),
        url: Some(format!(
            "data:application/pdf;base64,{}",
            b64(5 * 1024 * 1024 + 1)
        )),
        content_type: None,
    }];
    let mut small = big.clone();
    small.attachments = vec![Attachment {
        name: "bon.txt".into(),
        url: Some(format!("data:text/plain;base64,{}", b64(99))),
        content_type: None,
    }];
    sb.clear_requests();
    let o = write(&handle, &[big], &["big".into()]);
    assert!(
        matches!(&o[0], RecordOutcome::Rejected { reason } if reason.contains("5 MB")),
        "{o:?}"
    );
    assert!(
        !sb.requests().iter().any(|r| r.method == "POST"),
        "nothing was posted"
    );
    let o = write(&handle, &[small], &["small".into()]);
    let number = external_id(&o[0]);
    let stored = sb
        .sim
        .canonical_sales()
        .into_iter()
        .find(|s| s.receipt_number == number)
        .unwrap();
    assert_eq!(stored.attachments.len(), 1);
    assert!(sb
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path == "/v1.0/receiptattachment"));
}

#[test]
fn the_pipeline_from_generic_writes_an_ndjson_file_into_kassandro() {
    let sb = sandbox(&options(), Faults::default());
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sales.ndjson");
    let sales = sales_to_write(40);
    let text: String = sales
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    std::fs::write(&input, text).unwrap();
    let before: BTreeSet<String> = sb.sim.canonical_sales().into_iter().map(|s| s.id).collect();
    let pipeline = json!({
        "name": "file-to-kassandro",
        "source": {"connector": "generic", "config": {"path": input, "format": "ndjson"}, "streams": ["sales"]},
        "sink": {"connector": "kassandro", "config": config(&sb, 100)},
    });
    run(
        dir.path(),
        "to-kassandro",
        pipeline.clone(),
        "2026-01-07T21:00:00+01:00",
    );
    let after = sb.sim.canonical_sales();
    assert_eq!(
        after.len(),
        before.len() + sales.len(),
        "every sale became one receipt"
    );
    let written: Vec<&Sale> = after.iter().filter(|s| !before.contains(&s.id)).collect();
    assert!(written
        .iter()
        .all(|s| s.register_id == "1" && s.validate().is_empty()));
    let gross =
        |it: &mut dyn Iterator<Item = rust_decimal::Decimal>| it.sum::<rust_decimal::Decimal>();
    assert_eq!(
        gross(&mut written.iter().map(|s| s.totals.gross)),
        gross(&mut sales.iter().map(|s| s.totals.gross)),
        "the amounts arrived"
    );
    let stamps: BTreeSet<_> = written.iter().map(|s| s.timestamp).collect();
    assert_eq!(
        stamps,
        sales.iter().map(|s| s.timestamp).collect::<BTreeSet<_>>()
    );

    // Running the same pipeline again writes nothing new.
    run(
        dir.path(),
        "to-kassandro-again",
        pipeline,
        "2026-01-07T21:05:00+01:00",
    );
    assert_eq!(sb.sim.canonical_sales().len(), before.len() + sales.len());
}

/// Host state of one connector instance (a pipeline's own plugin state).
#[derive(Default)]
struct SeparateKv(Mutex<HashMap<(String, String), String>>);

impl KvStore for SeparateKv {
    fn get(&self, namespace: &str, key: &str) -> Option<String> {
        let map = self.0.lock().unwrap();
        map.get(&(namespace.to_string(), key.to_string())).cloned()
    }
    fn put(&self, namespace: &str, key: &str, value: &str) {
        let mut map = self.0.lock().unwrap();
        map.insert((namespace.to_string(), key.to_string()), value.to_string());
    }
}

#[test]
fn two_connectors_starting_together_share_the_one_token_of_each_kind() {
    // Every answer is delayed, so both instances ask `gettoken` before either creates: the
    // second `createtoken` is refused ("Token already exists.", HTTP 200 with the error body in
    // this variant). A few rounds, in case the
    // threads did not meet in one.
    let faults = Faults {
        latency_ms: 300,
        ..Faults::default()
    };
    let to_write = sales_to_write(2);
    let mut raced = BTreeSet::new();
    for _round in 0..3 {
        // The document draws the refusal without a status: here it comes as a 2xx error body,
        // and token answers as bare objects.
        let variant = Variant {
            create_refusal_status: 200,
            bare_token_answers: true,
            ..Variant::default()
        };
        let sim = KassandroSimulator::with_variant(
            "kassandro-demo-key".into(),
            &small_options().dataset(Country::At),
            variant,
        );
        let sb = start(Arc::new(sim), 0, faults.clone()).expect("sandbox starts");
        let cfg = config(&sb, 1000);
        let barrier = Arc::new(Barrier::new(2));
        let threads: Vec<_> = to_write
            .iter()
            .enumerate()
            .map(|(i, sale)| {
                let (cfg, barrier, sale) = (cfg.clone(), barrier.clone(), sale.clone());
                std::thread::spawn(move || {
                    let opts = OpenOptions {
                        kv: Arc::new(SeparateKv::default()),
                        ..OpenOptions::default()
                    };
                    let handle = posbridge_e2e::registry()
                        .open("kassandro", &cfg, opts)
                        .expect("kassandro opens");
                    barrier.wait();
                    let report = handle.check();
                    let page = handle.read(&request(None, "2026-01-05"));
                    // Both write at once: the cash-register token races the same way.
                    barrier.wait();
                    let written = write(&handle, &[sale], &[format!("race-{i}")]);
                    (report, page, written)
                })
            })
            .collect();
        for t in threads {
            let (report, page, written) = t.join().expect("thread");
            let report = report.expect("check succeeds");
            assert!(report.ok, "{report:?}");
            assert!(!page.expect("read succeeds").records.is_empty());
            assert!(
                matches!(&written[0], RecordOutcome::Written { .. }),
                "{written:?}"
            );
        }
        for (kind, query) in [
            ("account", "type=account"),
            ("cash register", "type=cashregister"),
        ] {
            let statuses: Vec<u16> = sb
                .requests()
                .iter()
                .filter(|r| r.path == "/v1.0/createtoken")
                .filter(|r| r.query.as_deref().unwrap_or("").starts_with(query))
                .map(|r| r.status)
                .collect();
            // The simulator creates one per key and refuses the rest; each instance asked once.
            assert!(
                !statuses.is_empty() && statuses.len() <= 2,
                "{kind}: {statuses:?}"
            );
            if statuses.len() > 1 {
                raced.insert(kind);
            }
        }
        if raced.len() == 2 {
            break;
        }
    }
    assert_eq!(
        raced.len(),
        2,
        "the instances never raced for a token; only {raced:?}"
    );
}

#[test]
fn the_pipeline_from_generic_cancels_the_receipt_it_wrote_for_the_cancelled_sale() {
    let opts = options();
    let sim = Arc::new(KassandroSimulator::new(
        "kassandro-demo-key".into(),
        &opts.dataset(Country::At),
    ));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    // A generated cancellation and the sale it cancels (same store and register).
    let ds = Dataset::generate(GenSpec {
        seed: 7,
        country: Country::At,
        days: 2,
        sales_per_day: 60,
        ..GenSpec::default()
    });
    let cancellation = ds
        .sales
        .iter()
        .find(|s| s.kind == SaleKind::Cancellation)
        .expect("the data has a cancellation")
        .clone();
    let cancelled = ds
        .sales
        .iter()
        .find(|s| {
            Some(&s.receipt_number) == cancellation.cancels.as_ref()
                && (&s.store_id, &s.register_id)
                    == (&cancellation.store_id, &cancellation.register_id)
        })
        .expect("the cancelled sale")
        .clone();
    let other = ds
        .sales
        .iter()
        .find(|s| s.kind == SaleKind::Sale && s.id != cancelled.id)
        .unwrap()
        .clone();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("sales.ndjson");
    let text: String = [&other, &cancelled, &cancellation]
        .iter()
        .map(|s| serde_json::to_string(s).unwrap() + "\n")
        .collect();
    std::fs::write(&input, text).unwrap();
    let stornos_before = sim
        .canonical_sales()
        .iter()
        .filter(|s| s.kind == SaleKind::Cancellation)
        .count();
    let pipeline = json!({
        "name": "file-to-kassandro",
        "source": {"connector": "generic", "config": {"path": input, "format": "ndjson"}, "streams": ["sales"]},
        "sink": {"connector": "kassandro", "config": config(&sb, 100)},
    });
    run(dir.path(), "cancel", pipeline, "2026-01-07T21:00:00+01:00");

    // The receipt this sink wrote for the cancelled sale, by the sale id in its customText.
    let sale_id_of = |number: &str| {
        let receipt = sim.receipt_json(number).expect("stored receipt");
        receipt["customText"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["label"] == "posbridge-id")
            .and_then(|t| t["value"].as_str().map(str::to_string))
    };
    let after = sim.canonical_sales();
    let target = after
        .iter()
        .find(|s| sale_id_of(&s.receipt_number).as_deref() == Some(cancelled.id.as_str()))
        .expect("the cancelled sale was written");
    assert_ne!(target.receipt_number, cancelled.receipt_number);
    let stornos: Vec<&Sale> = after
        .iter()
        .filter(|s| s.kind == SaleKind::Cancellation)
        .collect();
    assert_eq!(
        stornos.len(),
        stornos_before + 1,
        "one cancellation was written"
    );
    let storno = stornos
        .iter()
        .find(|s| s.cancels.as_deref() == Some(target.receipt_number.as_str()))
        .expect("the storno cancels the target receipt of the cancelled sale");
    assert_eq!(storno.totals.gross, -cancelled.totals.gross);
    assert_eq!(storno.register_id, "1");
}

// ---------------------------------------------------------------------------------------------
// The readings of what the document leaves open: each simulator variant, read and written.

use posbridge_sandbox::kassandro::{GetTokenAnswer, PaymentNames, Variant};
use rust_decimal::Decimal;

/// A small data set: 2 stores × 1 register × 2 days × 15 receipts.
fn small_options() -> SandboxOptions {
    SandboxOptions {
        vendor: "kassandro".into(),
        stores: 2,
        registers_per_store: 1,
        days: 2,
        sales_per_day: 15,
        ..SandboxOptions::default()
    }
}

fn variant_sandbox(variant: Variant) -> (Arc<KassandroSimulator>, RunningSandbox) {
    let sim = Arc::new(KassandroSimulator::with_variant(
        "kassandro-demo-key".into(),
        &small_options().dataset(Country::At),
        variant,
    ));
    let sb = start(sim.clone(), 0, Faults::default()).expect("sandbox starts");
    (sim, sb)
}

fn requests_to(sb: &RunningSandbox, path: &str) -> Vec<u16> {
    sb.requests()
        .iter()
        .filter(|r| r.path == format!("/v1.0/{path}"))
        .map(|r| r.status)
        .collect()
}

/// Σ gross and Σ payments of sales.
fn money(sales: &[Sale]) -> (Decimal, Decimal) {
    (
        sales.iter().map(|s| s.totals.gross).sum(),
        sales
            .iter()
            .flat_map(|s| &s.payments)
            .map(|p| p.amount)
            .sum(),
    )
}

#[test]
fn every_reading_of_the_document_reads_as_its_canonical_sales_and_reconciles_with_the_generator() {
    let generated = small_options().dataset(Country::At).sales;
    let (gross, _) = money(&generated);
    let variants = [
        (
            "gettoken as the document's token answer, an error when none, bare objects, 409",
            Variant {
                get_token: GetTokenAnswer::TokenField,
                gettoken_error_when_none: true,
                bare_token_answers: true,
                create_refusal_status: 409,
                ..Variant::default()
            },
            json!({}),
        ),
        (
            "the document's receipt: no VAT amounts, percentage discounts, RKSV code, bare registers, English names",
            Variant {
                without_vat_amounts: true,
                percentage_discounts: true,
                signature_as_code: true,
                register_store: Some("wien".into()),
                payment_names: PaymentNames::English,
                ..Variant::default()
            },
            json!({"default_store_id": "wien"}),
        ),
        (
            "payment codes; the first token expires once and stays listed",
            Variant {
                payment_names: PaymentNames::Codes,
                expire_first_token_after: Some(3),
                expired_tokens_stay: true,
                ..Variant::default()
            },
            json!({}),
        ),
    ];
    for (name, variant, extra) in variants {
        let (sim, sb) = variant_sandbox(variant.clone());
        let mut cfg = config(&sb, 7);
        cfg.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let handle = open(&cfg);
        let (sales, _, _) = read_all(&handle, None, "2026-01-07");
        let expected = sim.canonical_sales();
        assert_eq!(sales.len(), generated.len(), "{name}");
        // Amounts to the cent: against the simulator's projection and the generator's totals.
        assert_same_sales(sales.clone(), expected);
        let (read_gross, read_paid) = money(&sales);
        assert_eq!((read_gross, read_paid), (gross, gross), "{name}");

        let methods = handle
            .read(&ReadRequest {
                stream: "payment_methods".into(),
                ..ReadRequest::default()
            })
            .unwrap();
        let canonical: BTreeSet<&str> = methods
            .records
            .iter()
            .filter_map(|m| m["method"].as_str())
            .collect();
        assert_eq!(
            canonical,
            BTreeSet::from(["card", "cash", "invoice", "voucher"]),
            "{name}"
        );
        let registers = handle
            .read(&ReadRequest {
                stream: "registers".into(),
                ..ReadRequest::default()
            })
            .unwrap();
        if let Some(store) = &variant.register_store {
            assert!(
                registers.records.iter().all(|r| r["store_id"] == *store),
                "{name}: {:?}",
                registers.records
            );
        }

        if variant.expire_first_token_after.is_some() {
            // One refusal, one renewal: the stale token deleted, one more created.
            let refused = sb.requests().iter().filter(|r| r.status == 401).count();
            assert_eq!(refused, 1, "{name}");
            assert_eq!(requests_to(&sb, "deletetoken"), vec![200], "{name}");
            assert_eq!(requests_to(&sb, "createtoken"), vec![200, 200], "{name}");
        }
        if variant.gettoken_error_when_none {
            assert_eq!(requests_to(&sb, "gettoken")[0], 404, "{name}");
            assert_eq!(requests_to(&sb, "createtoken"), vec![200], "{name}");
        }
    }
}

#[test]
fn the_sink_writes_each_registers_own_payment_names_and_refuses_what_it_cannot_name() {
    let sales = sales_to_write(12);
    for (names, own) in [
        (
            PaymentNames::English,
            ["Cash", "Credit card", "Gift voucher", "On account"],
        ),
        (
            PaymentNames::Codes,
            ["CASH", "EC_CARD", "GIFT_CARD", "INVOICE"],
        ),
    ] {
        let (sim, sb) = variant_sandbox(Variant {
            payment_names: names,
            without_vat_amounts: true,
            ..Variant::default()
        });
        let handle = open(&config(&sb, 100));
        let keys: Vec<String> = (0..sales.len()).map(|i| format!("{names:?}-{i}")).collect();
        let outcomes = write(&handle, &sales, &keys);
        for (sale, o) in sales.iter().zip(&outcomes) {
            let number = external_id(o);
            let receipt = sim.receipt_json(&number).expect("stored");
            let method = receipt["paymentMethod"].as_str().unwrap();
            assert!(own.contains(&method), "{names:?}: {method}");
            let stored = sim
                .canonical_sales()
                .into_iter()
                .find(|s| s.receipt_number == number)
                .unwrap();
            assert_eq!(stored.totals.gross, sale.totals.gross);
            let paid = |s: &Sale| -> BTreeMap<String, Decimal> {
                s.payments.iter().fold(BTreeMap::new(), |mut m, p| {
                    *m.entry(p.method.clone()).or_default() += p.amount;
                    m
                })
            };
            if sale.payments.len() == 1 {
                assert_eq!(paid(&stored), paid(sale), "{names:?}");
            }
            assert!(stored.validate().is_empty(), "{:?}", stored.validate());
        }

        // A method the register cannot name is dead-lettered, naming it; nothing is posted.
        let mut paypal = sales_to_write(13)[12].clone();
        for p in &mut paypal.payments {
            p.method = "paypal".into();
        }
        sb.clear_requests();
        let o = write(&handle, &[paypal], &["paypal".into()]);
        assert!(
            matches!(&o[0], RecordOutcome::Rejected { reason } if reason.contains("\"paypal\"")),
            "{o:?}"
        );
        assert!(!sb.requests().iter().any(|r| r.method == "POST"));
    }

    // The configured table: a name the register offers is written, one it lacks is refused.
    let (sim, sb) = variant_sandbox(Variant {
        payment_names: PaymentNames::Codes,
        ..Variant::default()
    });
    let card = sales_to_write(40)
        .into_iter()
        .find(|s| s.payments.len() == 1 && s.payments[0].method == "card")
        .expect("a card sale");
    let mut cfg = config(&sb, 100);
    cfg["payment_methods"] = json!({"card": "ec_card"});
    let o = write(&open(&cfg), std::slice::from_ref(&card), &["card-1".into()]);
    let receipt = sim.receipt_json(&external_id(&o[0])).unwrap();
    assert_eq!(receipt["paymentMethod"], "EC_CARD");
    cfg["payment_methods"] = json!({"card": "Bankomat"});
    let o = write(&open(&cfg), &[card], &["card-2".into()]);
    assert!(
        matches!(&o[0], RecordOutcome::Rejected { reason } if reason.contains("Bankomat")),
        "{o:?}"
    );
}

/// Every check of the config is in its schema: the host refuses bad values before `open`,
/// each by its JSON path.
#[test]
fn config_values_the_schema_refuses_are_named_by_their_json_path() {
    posbridge_e2e::assert_config_refused_at(
        "kassandro",
        &json!({"api_key": " ", "base_url": "devapi.kassandro.at", "page_size": 1001,
            "default_store_id": "", "register_stores": {"graz": "s1"},
            "payment_methods": {"card": " "}}),
        &[
            "$.api_key",
            "$.base_url",
            "$.page_size",
            "$.default_store_id",
            "$.register_stores",
            "$.payment_methods.card",
        ],
    );
}

#[test]
fn a_refused_createtoken_is_recovered_by_taking_the_existing_token_from_gettoken() {
    // Another client of the key creates the account token just before this connector's first
    // `createtoken`, which is refused (409): the connector must take that token via `gettoken`.
    let (sim, sb) = variant_sandbox(Variant {
        another_client_creates_first: true,
        gettoken_error_when_none: true,
        create_refusal_status: 409,
        ..Variant::default()
    });
    let (sales, _, _) = read_all(&open(&config(&sb, 7)), None, "2026-01-07");
    let generated = small_options().dataset(Country::At).sales;
    assert_eq!(money(&sales), money(&generated), "to the cent");
    assert_same_sales(sales, sim.canonical_sales());
    // None listed, creation refused, the existing one listed and used: no second creation.
    assert_eq!(requests_to(&sb, "gettoken"), vec![404, 200]);
    assert_eq!(requests_to(&sb, "createtoken"), vec![409]);
    assert!(requests_to(&sb, "deletetoken").is_empty());
    assert!(sb.requests().iter().all(|r| r.status != 401));
}
