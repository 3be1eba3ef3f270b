//! The checks themselves. One [`Run`] opens the connector, reads and writes what the suite
//! config names, remembers every error and what went through the tap, and judges each check.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use posbridge_plugin_api::model::Sale;
use posbridge_plugin_api::{
    config_properties, ConnectorError, ReadRequest, RecordOutcome, WriteRequest,
};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::config::{StreamRead, SuiteConfig};
use super::instance::{OpenFailure, Opener};
use super::report::{Check, CheckResult, Status};
use crate::plugins::ConnectorHandle;
use crate::redact::Redactor;

const DRAFT_2020_12: &str = "https://json-schema.org/draft/2020-12/schema";

/// Config property names that hold credentials and so must be marked secret.
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "private_key",
    "access_key",
];

/// Header names that carry credentials.
const CREDENTIAL_HEADER_WORDS: &[&str] = &[
    "auth",
    "key",
    "token",
    "secret",
    "cookie",
    "password",
    "signature",
];

/// The pages of one read: records and the cursor after each page.
type Pages = Vec<(Vec<Value>, Option<Value>)>;

/// One suite run over one library.
pub struct Run<'a> {
    opener: &'a Opener,
    cfg: &'a SuiteConfig,
    /// Every error a plugin call returned: what was called, and the error.
    errors: Vec<(String, ConnectorError)>,
    /// Records read per stream (from the full reads).
    records: BTreeMap<String, Vec<Value>>,
}

/// Details collected for one check.
#[derive(Default)]
struct Verdict {
    fails: Vec<String>,
    notes: Vec<String>,
}

impl Verdict {
    fn fail(&mut self, s: impl Into<String>) {
        self.fails.push(s.into());
    }
    fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }
    fn result(self, check: Check) -> CheckResult {
        if self.fails.is_empty() {
            CheckResult {
                check,
                status: Status::Pass,
                details: self.notes,
            }
        } else {
            CheckResult {
                check,
                status: Status::Fail,
                details: self.fails,
            }
        }
    }
}

fn skip(check: Check, why: impl Into<String>) -> CheckResult {
    CheckResult {
        check,
        status: Status::Skip,
        details: vec![why.into()],
    }
}

fn fail(check: Check, why: impl Into<String>) -> CheckResult {
    CheckResult {
        check,
        status: Status::Fail,
        details: vec![why.into()],
    }
}

/// The identity of a record for gap/duplicate counting: its `id`, else its whole content.
fn record_key(r: &Value) -> String {
    posbridge_plugin_api::model::record_id(r).unwrap_or_else(|| r.to_string())
}

fn first_few(keys: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = keys.into_iter().take(3).collect();
    v.join(", ")
}

impl<'a> Run<'a> {
    /// A run of `opener`'s library with `cfg`.
    pub fn new(opener: &'a Opener, cfg: &'a SuiteConfig) -> Self {
        Self {
            opener,
            cfg,
            errors: Vec::new(),
            records: BTreeMap::new(),
        }
    }

    /// Runs every check; results in [`Check::ALL`] order.
    pub fn all(mut self) -> Vec<CheckResult> {
        let mut manifest = self.manifest_static();
        let handle = match self.opener.open(&self.cfg.config) {
            Ok(h) => h,
            Err(e) => {
                let why = match e {
                    OpenFailure::Schema(v) => format!(
                        "the suite's `config` breaks the connector's schema: {}",
                        v.iter()
                            .map(|v| v.to_string())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ),
                    OpenFailure::Plugin(e) => format!("the connector does not open: {e}"),
                };
                let mut out = vec![
                    manifest.result(Check::Manifest),
                    fail(Check::ConfigSchema, &why),
                ];
                for c in &Check::ALL[2..] {
                    out.push(fail(
                        *c,
                        "not run: the connector does not open with `config`",
                    ));
                }
                return out;
            }
        };
        let config_schema = self.config_schema();
        let bad = self.bad_handle();
        let check = self.check_credentials(&handle, &bad);
        let (resume, records) = self.reads(&handle);
        let write = self.write_idempotent(&handle);
        let typed = self.typed_errors(&handle, &bad);
        self.odd_inputs(&handle);
        let no_panic = self.no_panic();
        let secrets = self.secrets_in_logs();
        self.credential_headers(&mut manifest);
        vec![
            manifest.result(Check::Manifest),
            config_schema,
            check,
            resume,
            records,
            write,
            typed,
            no_panic,
            secrets,
        ]
    }

    /// Remembers an error a plugin call returned.
    fn seen<T>(&mut self, what: &str, r: Result<T, ConnectorError>) -> Result<T, ConnectorError> {
        if let Err(e) = &r {
            self.errors.push((what.to_string(), e.clone()));
        }
        r
    }

    fn manifest(&self) -> &posbridge_plugin_api::Manifest {
        &self.opener.manifest
    }

    // ---- manifest -------------------------------------------------------------------------

    fn manifest_static(&self) -> Verdict {
        let m = self.manifest();
        let mut v = Verdict::default();
        let schema = &m.config_schema;
        match schema.get("$schema").and_then(Value::as_str) {
            Some(DRAFT_2020_12) => {}
            other => v.fail(format!(
                "config_schema declares $schema {other:?}, not {DRAFT_2020_12:?}"
            )),
        }
        if let Err(e) = jsonschema::draft202012::new(schema) {
            v.fail(format!(
                "config_schema does not compile as JSON Schema 2020-12: {e}"
            ));
        }
        for s in &m.streams {
            if s.schema.is_object() {
                if let Err(e) = jsonschema::validator_for(&s.schema) {
                    v.fail(format!(
                        "the schema of stream {:?} does not compile: {e}",
                        s.name
                    ));
                }
            }
        }
        let props = property_paths(schema);
        let choices = choice_paths(schema);
        for secret in &m.secrets {
            let path = secret.trim_end_matches("?*");
            let exists = path.contains('*') || props.iter().any(|p| p == path);
            if !exists {
                v.fail(format!(
                    "secret {secret:?} names no property of config_schema"
                ));
            }
        }
        for p in &props {
            let last = p.rsplit('.').next().unwrap_or(p).to_ascii_lowercase();
            let credential =
                CREDENTIAL_WORDS.iter().any(|w| last.contains(w)) && !choices.contains(p);
            let marked = m
                .secrets
                .iter()
                .any(|s| s == p || p.starts_with(&format!("{s}.")));
            if credential && !marked {
                v.fail(format!(
                    "config field {p:?} looks like a credential but is not marked secret (\"x-secret\": true)"
                ));
            }
        }
        v.note(format!(
            "schema 2020-12, {} stream schema(s), secrets: {}",
            m.streams.iter().filter(|s| s.schema.is_object()).count(),
            if m.secrets.is_empty() {
                "none".into()
            } else {
                m.secrets.join(", ")
            }
        ));
        v
    }

    /// A header the connector sent whose name says credential (`Authorization`, `X-Api-Key`,
    /// …) must not carry, as its credential, the value of a config field not marked secret.
    fn credential_headers(&self, v: &mut Verdict) {
        let m = self.manifest();
        let mut plain = Vec::new();
        collect_plain_strings(&self.cfg.config, "", &m.secrets, &mut plain);
        let tap = self.opener.tap.lock().unwrap_or_else(|p| p.into_inner());
        let mut reported = BTreeSet::new();
        for r in &tap.requests {
            for (name, value) in &r.headers {
                let lname = name.to_ascii_lowercase();
                if !CREDENTIAL_HEADER_WORDS.iter().any(|w| lname.contains(w)) {
                    continue;
                }
                // The credential itself, after a scheme word such as `Bearer`.
                let credential = value.rsplit(' ').next().unwrap_or(value);
                for (path, s) in &plain {
                    if credential == s && reported.insert(path.clone()) {
                        v.fail(format!(
                            "config field {path:?} is sent as the credential of the {name} header ({} {}) but is not marked secret",
                            r.method, r.url
                        ));
                    }
                }
            }
        }
    }

    // ---- config schema --------------------------------------------------------------------

    fn config_schema(&mut self) -> CheckResult {
        let mut v = Verdict::default();
        let Some(obj) = self.cfg.config.as_object() else {
            return fail(Check::ConfigSchema, "the suite's `config` is not an object");
        };
        let mut required = 0;
        for field in obj.keys() {
            let mut without = self.cfg.config.clone();
            without.as_object_mut().map(|o| o.remove(field));
            match self.opener.open(&without) {
                Err(OpenFailure::Schema(_)) => required += 1,
                Ok(_) => {}
                Err(OpenFailure::Plugin(ConnectorError::Config(m))) => v.fail(format!(
                    "without {field:?} the config passes the schema but the connector refuses it ({m}): \
                     the schema must list {field:?} under \"required\""
                )),
                Err(OpenFailure::Plugin(e)) => {
                    let e = self.seen("open", Err::<(), _>(e)).unwrap_err();
                    v.fail(format!("without {field:?} the connector fails to open: {e}"));
                }
            }
        }
        if let Some(bad) = &self.cfg.bad_config {
            if let Err(OpenFailure::Schema(vs)) = self.opener.open(bad) {
                v.fail(format!(
                    "the suite's `bad_config` breaks the schema (it should differ in credentials only): {}",
                    vs.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("; ")
                ));
            }
        }
        v.note(format!(
            "{} field(s) of the config; {required} of them required by the schema, the rest optional to the connector too",
            obj.len()
        ));
        v.result(Check::ConfigSchema)
    }

    fn bad_handle(&mut self) -> Option<ConnectorHandle> {
        let bad = self.cfg.bad_config.as_ref()?;
        match self.opener.open(bad) {
            Ok(h) => Some(h),
            Err(OpenFailure::Plugin(e)) => {
                let _ = self.seen("open with bad_config", Err::<(), _>(e));
                None
            }
            Err(OpenFailure::Schema(_)) => None,
        }
    }

    /// Why a check needing bad credentials cannot run: skip without credentials, else fail.
    fn without_bad_config(&self, check: Check) -> CheckResult {
        if self.cfg.bad_config.is_none()
            && !holds_secret_values(&self.cfg.config, &self.manifest().secrets)
        {
            // A connector whose credentials belong to a mode this config does not use (generic
            // reading a file has none; its HTTP mode has a token) has nothing to refuse.
            skip(
                check,
                "the config holds no credentials (no secret field set)",
            )
        } else if self.cfg.bad_config.is_none() {
            fail(
                check,
                "the connector has credentials: give `bad_config` in the suite config",
            )
        } else {
            fail(
                check,
                "the connector does not open with `bad_config` (see the other checks)",
            )
        }
    }

    // ---- check ----------------------------------------------------------------------------

    fn check_credentials(
        &mut self,
        good: &ConnectorHandle,
        bad: &Option<ConnectorHandle>,
    ) -> CheckResult {
        let mut v = Verdict::default();
        match self.seen("check", good.check()) {
            Ok(r) if r.ok => {}
            Ok(r) => v.fail(format!(
                "check fails with the working config: {}",
                r.message
            )),
            Err(e) => v.fail(format!("check fails with the working config: {e}")),
        }
        let Some(bad) = bad else {
            let mut r = self.without_bad_config(Check::CheckBadCredentials);
            if r.status == Status::Skip && !v.fails.is_empty() {
                r = v.result(Check::CheckBadCredentials);
            }
            return r;
        };
        match self.seen("check with bad_config", bad.check()) {
            Ok(r) if r.ok => v.fail(format!(
                "check passes with bad credentials ({}): it must make a real call",
                r.message
            )),
            Ok(r) => v.note(format!(
                "bad credentials: check answers not ok ({})",
                r.message
            )),
            Err(e @ (ConnectorError::Auth(_) | ConnectorError::Config(_))) => {
                v.note(format!("bad credentials: {} error", e.kind_name()))
            }
            Err(e) => v.fail(format!(
                "check with bad credentials fails with a {} error, not auth: {e}",
                e.kind_name()
            )),
        }
        v.result(Check::CheckBadCredentials)
    }

    // ---- reads ----------------------------------------------------------------------------

    fn streams(&self) -> Vec<StreamRead> {
        if !self.cfg.streams.is_empty() {
            return self.cfg.streams.clone();
        }
        self.manifest()
            .streams
            .iter()
            .filter(|s| s.read)
            .map(|s| StreamRead {
                stream: s.name.clone(),
                page_size: 5,
                from: None,
                to: None,
            })
            .collect()
    }

    fn request(sr: &StreamRead, cursor: Option<Value>) -> ReadRequest {
        ReadRequest {
            stream: sr.stream.clone(),
            cursor,
            page_size: sr.page_size,
            from: sr.from,
            to: sr.to,
            ..Default::default()
        }
    }

    /// Reads from `cursor` until `has_more` is false.
    fn read_from(
        &mut self,
        h: &ConnectorHandle,
        sr: &StreamRead,
        cursor: Option<Value>,
    ) -> Result<Pages, String> {
        let mut pages = Vec::new();
        let mut cursor = cursor;
        loop {
            if pages.len() >= self.cfg.max_pages {
                return Err(format!(
                    "stream {:?}: still has more after {} pages (raise `max_pages` or give a smaller range)",
                    sr.stream, self.cfg.max_pages
                ));
            }
            let what = format!("read {}", sr.stream);
            let page = self
                .seen(&what, h.read(&Self::request(sr, cursor.clone())))
                .map_err(|e| format!("stream {:?}: read fails: {e}", sr.stream))?;
            let more = page.has_more;
            if more && page.cursor.is_none() {
                return Err(format!(
                    "stream {:?}: a page says has_more but gives no cursor",
                    sr.stream
                ));
            }
            cursor = page.cursor.clone();
            pages.push((page.records, page.cursor));
            if !more {
                return Ok(pages);
            }
        }
    }

    fn reads(&mut self, h: &ConnectorHandle) -> (CheckResult, CheckResult) {
        let streams = self.streams();
        if streams.is_empty() {
            let why = "the connector reads no stream";
            return (skip(Check::Resume, why), skip(Check::Records, why));
        }
        let mut resume = Verdict::default();
        for sr in &streams {
            let full = match self.read_from(h, sr, None) {
                Ok(p) => p,
                Err(e) => {
                    resume.fail(e);
                    continue;
                }
            };
            let all: Vec<Value> = full.iter().flat_map(|(r, _)| r.clone()).collect();
            self.resume_stream(h, sr, &full, &mut resume);
            resume.note(format!(
                "{}: {} record(s) in {} page(s), resumed from {} cursor(s)",
                sr.stream,
                all.len(),
                full.len(),
                resume_points(&full, self.cfg.max_resume_points).len()
            ));
            self.records
                .entry(sr.stream.clone())
                .or_default()
                .extend(all);
        }
        if !resume.fails.is_empty() {
            resume.notes.clear();
        } else {
            resume.notes = vec![resume.notes.join("; ")];
        }
        (resume.result(Check::Resume), self.records_check())
    }

    fn resume_stream(
        &mut self,
        h: &ConnectorHandle,
        sr: &StreamRead,
        full: &Pages,
        v: &mut Verdict,
    ) {
        let expected: BTreeSet<String> = full
            .iter()
            .flat_map(|(r, _)| r.iter().map(record_key))
            .collect();
        let twice = duplicates(full.iter().flat_map(|(r, _)| r.iter().map(record_key)));
        if !twice.is_empty() {
            v.fail(format!(
                "stream {:?}: a read from the start gives {} record(s) twice (e.g. {})",
                sr.stream,
                twice.len(),
                first_few(twice)
            ));
        }
        for i in resume_points(full, self.cfg.max_resume_points) {
            let cursor = full[i].1.clone();
            let rest = match self.read_from(h, sr, cursor.clone()) {
                Ok(p) => p,
                Err(e) => {
                    v.fail(format!("resuming after page {}: {e}", i + 1));
                    continue;
                }
            };
            let combined: Vec<String> = full[..=i]
                .iter()
                .chain(rest.iter())
                .flat_map(|(r, _)| r.iter().map(record_key))
                .collect();
            let got: BTreeSet<&String> = combined.iter().collect();
            let lost: Vec<String> = expected
                .iter()
                .filter(|k| !got.contains(k))
                .cloned()
                .collect();
            let cursor_text = cursor.map(|c| c.to_string()).unwrap_or_default();
            if !lost.is_empty() {
                v.fail(format!(
                    "stream {:?}: resuming after page {} from cursor {cursor_text} loses {} record(s) (e.g. {})",
                    sr.stream,
                    i + 1,
                    lost.len(),
                    first_few(lost)
                ));
            }
            let mut twice = duplicates(combined.into_iter());
            if i + 1 == full.len() {
                // The cursor a finished read ends with is where the next run starts. Sources
                // may re-read there (inclusive time bounds, catalogue streams read whole):
                // the host's ledger skips a record that comes back unchanged, so only a
                // record that comes back different counts.
                let content: HashMap<String, &Value> = full
                    .iter()
                    .flat_map(|(r, _)| r.iter().map(|x| (record_key(x), x)))
                    .collect();
                let again: Vec<&Value> = rest.iter().flat_map(|(r, _)| r.iter()).collect();
                twice.retain(|k| {
                    again
                        .iter()
                        .any(|r| record_key(r) == *k && content.get(k).is_some_and(|c| *c != *r))
                });
            }
            if !twice.is_empty() {
                v.fail(format!(
                    "stream {:?}: resuming after page {} from cursor {cursor_text} reads {} record(s) twice (e.g. {})",
                    sr.stream,
                    i + 1,
                    twice.len(),
                    first_few(twice)
                ));
            }
        }
    }

    fn records_check(&self) -> CheckResult {
        let mut v = Verdict::default();
        let total: usize = self.records.values().map(Vec::len).sum();
        if total == 0 && !self.records.is_empty() {
            v.fail("no stream gave a record: give `streams` (and a config) that reach data");
        }
        for (stream, records) in &self.records {
            let schema = self.manifest().find_stream(stream).map(|s| &s.schema);
            let validator = match schema.filter(|s| s.is_object()) {
                // A schema that does not compile is reported by the manifest check.
                Some(s) => jsonschema::validator_for(s).ok(),
                None => None,
            };
            let mut bad = 0;
            for r in records {
                let mut problems = Vec::new();
                if let Some(val) = &validator {
                    problems.extend(
                        val.iter_errors(r)
                            .take(3)
                            .map(|e| format!("at {:?}: {e}", e.instance_path().to_string())),
                    );
                }
                if stream == "sales" && problems.is_empty() {
                    match serde_json::from_value::<Sale>(r.clone()) {
                        Ok(sale) => problems.extend(sale.validate().iter().map(|x| x.to_string())),
                        Err(e) => problems.push(format!("not a canonical sale: {e}")),
                    }
                }
                if !problems.is_empty() {
                    bad += 1;
                    if bad <= 5 {
                        v.fail(format!(
                            "stream {stream:?}, record {}: {}",
                            record_key(r),
                            problems.join("; ")
                        ));
                    }
                }
            }
            if bad > 5 {
                v.fail(format!("stream {stream:?}: {bad} invalid records in all"));
            }
            v.note(format!(
                "{stream}: {} record(s){}",
                records.len(),
                if validator.is_some() {
                    " valid against the stream schema"
                } else {
                    " (no schema declared)"
                }
            ));
        }
        if v.fails.is_empty() {
            v.notes = vec![v.notes.join("; ")];
        }
        v.result(Check::Records)
    }

    // ---- write ----------------------------------------------------------------------------

    fn writable(&self) -> bool {
        self.manifest().streams.iter().any(|s| s.write)
    }

    fn write_request(&self, keys: Vec<String>) -> Option<WriteRequest> {
        let w = self.cfg.write.as_ref()?;
        Some(WriteRequest {
            stream: w.stream.clone(),
            mode: w.mode.clone(),
            mapping: w.mapping.clone(),
            idempotency_keys: keys,
            lines_checked: false,
        })
    }

    /// Writes the batch, sending records answered `retry` again a few times.
    fn write_once(
        &mut self,
        h: &ConnectorHandle,
        records: &[Value],
        keys: &[String],
    ) -> Result<Vec<RecordOutcome>, String> {
        let mut outcomes: Vec<Option<RecordOutcome>> = vec![None; records.len()];
        for _round in 0..5 {
            let todo: Vec<usize> = (0..records.len())
                .filter(|i| outcomes[*i].as_ref().is_none_or(RecordOutcome::is_retry))
                .collect();
            if todo.is_empty() {
                break;
            }
            let req = self
                .write_request(todo.iter().map(|i| keys[*i].clone()).collect())
                .expect("write config present");
            let batch: Vec<Value> = todo.iter().map(|i| records[*i].clone()).collect();
            let answer = self
                .seen("write", h.write(&req, &batch))
                .map_err(|e| format!("write fails: {e}"))?;
            let mut wait = Duration::from_millis(100);
            for (i, o) in todo.iter().zip(answer) {
                if let RecordOutcome::Retry {
                    retry_after_ms: Some(ms),
                    ..
                } = &o
                {
                    wait = wait.max(Duration::from_millis(*ms).min(Duration::from_secs(2)));
                }
                outcomes[*i] = Some(o);
            }
            if outcomes
                .iter()
                .any(|o| o.as_ref().is_some_and(RecordOutcome::is_retry))
            {
                std::thread::sleep(wait);
            }
        }
        Ok(outcomes
            .into_iter()
            .map(|o| o.expect("every record answered"))
            .collect())
    }

    fn write_idempotent(&mut self, h: &ConnectorHandle) -> CheckResult {
        if !self.writable() {
            return skip(Check::WriteIdempotent, "the connector writes no stream");
        }
        let Some(w) = self.cfg.write.clone() else {
            return fail(
                Check::WriteIdempotent,
                "the connector is a sink: give `write` (stream, records) in the suite config",
            );
        };
        if w.records.is_empty() {
            return fail(Check::WriteIdempotent, "`write` has no records");
        }
        let keys: Vec<String> = w
            .records
            .iter()
            .map(|r| idempotency_key(&w.stream, r))
            .collect();
        let mut v = Verdict::default();
        let first = match self.write_once(h, &w.records, &keys) {
            Ok(o) => o,
            Err(e) => return fail(Check::WriteIdempotent, e),
        };
        for (r, o) in w.records.iter().zip(&first) {
            match o {
                RecordOutcome::Written { .. } | RecordOutcome::Duplicate { .. } => {}
                other => v.fail(format!(
                    "record {} is not written the first time: {other:?} (give a batch the sink accepts)",
                    record_key(r)
                )),
            }
        }
        let second = match self.write_once(h, &w.records, &keys) {
            Ok(o) => o,
            Err(e) => return fail(Check::WriteIdempotent, format!("the second time: {e}")),
        };
        for ((r, a), b) in w.records.iter().zip(&first).zip(&second) {
            let same_copy = match (a, b) {
                (_, RecordOutcome::Duplicate { .. }) => true,
                (
                    RecordOutcome::Written {
                        external_id: Some(x),
                    }
                    | RecordOutcome::Duplicate {
                        external_id: Some(x),
                    },
                    RecordOutcome::Written {
                        external_id: Some(y),
                    },
                ) => x == y,
                _ => false,
            };
            if !same_copy {
                v.fail(format!(
                    "record {} written again with the same idempotency key: first {a:?}, then {b:?}",
                    record_key(r)
                ));
            }
        }
        v.note(format!(
            "{} record(s) of {:?} written twice, stored once",
            w.records.len(),
            w.stream
        ));
        v.result(Check::WriteIdempotent)
    }

    // ---- typed errors ---------------------------------------------------------------------

    fn typed_errors(
        &mut self,
        good: &ConnectorHandle,
        bad: &Option<ConnectorHandle>,
    ) -> CheckResult {
        let mut v = Verdict::default();
        let unknown = ReadRequest {
            stream: "conformance-no-such-stream".into(),
            page_size: 1,
            ..Default::default()
        };
        if !self.streams().is_empty() {
            if let Err(e @ ConnectorError::Bug(_)) =
                self.seen("read of an unknown stream", good.read(&unknown))
            {
                v.fail(format!(
                    "a read of an unknown stream is a bug error, not config/permanent: {e}"
                ));
            }
        }
        match bad {
            Some(bad) => {
                if let Some(sr) = self.streams().first().cloned() {
                    match self.seen("read with bad_config", bad.read(&Self::request(&sr, None))) {
                        Ok(_) => v.fail(format!(
                            "a read of {:?} with bad credentials succeeds",
                            sr.stream
                        )),
                        Err(ConnectorError::Auth(_) | ConnectorError::Config(_)) => {}
                        Err(e) => v.fail(format!(
                            "a read with bad credentials fails with a {} error, not auth: {e}",
                            e.kind_name()
                        )),
                    }
                }
                if let Some(w) = self.cfg.write.clone().filter(|_| self.writable()) {
                    let batch: Vec<Value> = w.records.iter().take(1).cloned().collect();
                    let keys = batch
                        .iter()
                        .map(|r| idempotency_key(&w.stream, r))
                        .collect();
                    let req = self.write_request(keys).expect("write config present");
                    match self.seen("write with bad_config", bad.write(&req, &batch)) {
                        Err(ConnectorError::Auth(_) | ConnectorError::Config(_)) => {}
                        Err(e) => v.fail(format!(
                            "a write with bad credentials fails with a {} error, not auth: {e}",
                            e.kind_name()
                        )),
                        Ok(o) => v.fail(format!(
                            "a write with bad credentials answers {o:?} instead of an auth error"
                        )),
                    }
                }
            }
            None => {
                let r = self.without_bad_config(Check::TypedErrors);
                if r.status == Status::Fail || v.fails.is_empty() {
                    return r;
                }
            }
        }
        let bugs: Vec<String> = self
            .errors
            .iter()
            .filter(|(_, e)| matches!(e, ConnectorError::Bug(m) if !m.contains("panicked in")))
            .map(|(what, e)| format!("{what}: {e}"))
            .collect();
        for b in bugs.into_iter().take(5) {
            v.fail(format!("a call ended in a bug error: {b}"));
        }
        v.note("bad credentials give auth errors; no call ended in a bug error");
        v.result(Check::TypedErrors)
    }

    // ---- panics ---------------------------------------------------------------------------

    /// Inputs a host may send that a connector must survive: a one-record page, a record
    /// that is not what the stream expects.
    fn odd_inputs(&mut self, h: &ConnectorHandle) {
        if let Some(sr) = self.streams().first().cloned() {
            let one = StreamRead { page_size: 1, ..sr };
            let _ = self.seen("read with page_size 1", h.read(&Self::request(&one, None)));
        }
        if self.writable() {
            if let Some(req) = self.write_request(vec!["conformance-empty-record".into()]) {
                let _ = self.seen(
                    "write of an empty record",
                    h.write(&req, &[Value::Object(Default::default())]),
                );
            }
        }
    }

    fn no_panic(&self) -> CheckResult {
        let mut v = Verdict::default();
        for (what, e) in &self.errors {
            if matches!(e, ConnectorError::Bug(m) if m.contains("panicked in")) {
                v.fail(format!("{what} panicked: {e}"));
            }
        }
        v.note(format!(
            "{} error(s) seen, none a panic (odd inputs included: a one-record page, an empty record)",
            self.errors.len()
        ));
        v.result(Check::NoPanic)
    }

    // ---- secrets --------------------------------------------------------------------------

    fn secrets_in_logs(&self) -> CheckResult {
        let secrets = &self.manifest().secrets;
        let configs: Vec<&Value> = std::iter::once(&self.cfg.config)
            .chain(self.cfg.bad_config.as_ref())
            .collect();
        // A redactor per config: a text it changes holds one of that config's secrets.
        let redactors: Vec<Redactor> = configs
            .iter()
            .map(|c| Redactor::from_config(c, secrets))
            .filter(|r| {
                configs
                    .iter()
                    .any(|c| r.redact(&c.to_string()) != c.to_string())
            })
            .collect();
        if redactors.is_empty() {
            return skip(
                Check::SecretsInLogs,
                "the config holds no secret value (4 characters or more)",
            );
        }
        let leaks = |text: &str| redactors.iter().any(|r| r.redact(text) != text);
        let blank = |text: &str| redactors.iter().fold(text.to_string(), |t, r| r.redact(&t));
        let mut v = Verdict::default();
        let tap = self.opener.tap.lock().unwrap_or_else(|p| p.into_inner());
        for line in &tap.logs {
            if leaks(line) {
                v.fail(format!("a log line holds a secret: {}", blank(line)));
            }
        }
        for (what, e) in &self.errors {
            let text = e.to_string();
            if leaks(&text) {
                v.fail(format!(
                    "the error of {what} holds a secret: {}",
                    blank(&text)
                ));
            }
        }
        v.note(format!(
            "{} log line(s) and {} error(s) hold no secret value",
            tap.logs.len(),
            self.errors.len()
        ));
        v.result(Check::SecretsInLogs)
    }
}

/// Which pages to resume after: up to `max` cursors spread over the read, the last included.
fn resume_points(full: &Pages, max: usize) -> Vec<usize> {
    let with_cursor: Vec<usize> = (0..full.len()).filter(|i| full[*i].1.is_some()).collect();
    let n = with_cursor.len();
    if n <= max {
        return with_cursor;
    }
    if max <= 1 {
        return with_cursor[n - max..].to_vec();
    }
    let mut picked: Vec<usize> = (0..max)
        .map(|k| with_cursor[k * (n - 1) / (max - 1)])
        .collect();
    picked.dedup();
    picked
}

fn duplicates(keys: impl Iterator<Item = String>) -> Vec<String> {
    let mut count: HashMap<String, usize> = HashMap::new();
    for k in keys {
        *count.entry(k).or_default() += 1;
    }
    let mut twice: Vec<String> = count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(k, _)| k)
        .collect();
    twice.sort();
    twice
}

fn idempotency_key(stream: &str, record: &Value) -> String {
    let mut h = Sha256::new();
    h.update(b"conformance\0");
    h.update(stream.as_bytes());
    h.update([0]);
    h.update(record_key(record).as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Dotted paths of every property in a schema (following local `$ref`s).
fn property_paths(schema: &Value) -> Vec<String> {
    config_properties(schema)
        .into_iter()
        .map(|p| p.path)
        .collect()
}

/// The config properties that hold a choice among listed values: settings, never credentials.
fn choice_paths(schema: &Value) -> Vec<String> {
    config_properties(schema)
        .into_iter()
        .filter(|p| p.choice)
        .map(|p| p.path)
        .collect()
}

/// Whether `config` sets any of the secret fields (paths as the manifest lists them), read the
/// way the host's redaction reads them.
fn holds_secret_values(config: &Value, secrets: &[String]) -> bool {
    !Redactor::from_config(config, secrets).is_empty()
}

/// String values (4 characters or more) of the config outside the secret paths, with their paths.
fn collect_plain_strings(
    v: &Value,
    prefix: &str,
    secrets: &[String],
    out: &mut Vec<(String, String)>,
) {
    if secrets.iter().any(|s| s == prefix) {
        return;
    }
    match v {
        Value::String(s) if s.len() >= 4 => out.push((prefix.to_string(), s.clone())),
        Value::Object(o) => {
            for (k, x) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                collect_plain_strings(x, &p, secrets, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pages(n: usize) -> Pages {
        (0..n)
            .map(|i| (vec![json!({"id": i})], Some(json!({"offset": i + 1}))))
            .collect()
    }

    #[test]
    fn resume_points_spread_over_the_read_and_include_the_last() {
        assert_eq!(resume_points(&pages(3), 8), vec![0, 1, 2]);
        let p = resume_points(&pages(20), 4);
        assert_eq!(p.first(), Some(&0));
        assert_eq!(p.last(), Some(&19));
        assert_eq!(p.len(), 4);
        let mut no_cursor = pages(3);
        no_cursor[2].1 = None;
        assert_eq!(resume_points(&no_cursor, 8), vec![0, 1]);
    }

    #[test]
    fn duplicates_are_the_keys_seen_more_than_once() {
        let keys = ["a", "b", "a", "c", "b"].map(String::from);
        assert_eq!(duplicates(keys.into_iter()), vec!["a", "b"]);
    }

    #[test]
    fn only_a_config_that_sets_a_secret_field_holds_credentials() {
        let secrets = vec!["auth.token".to_string(), "api_key".to_string()];
        assert!(!holds_secret_values(&json!({"path": "x.ndjson"}), &secrets));
        assert!(!holds_secret_values(&json!({"auth": null}), &secrets));
        assert!(holds_secret_values(
            &json!({"auth": {"token": "t0ken"}}),
            &secrets
        ));
        assert!(holds_secret_values(
            &json!({"api_key": "k3y-value"}),
            &secrets
        ));
    }

    #[test]
    fn a_property_choosing_among_listed_values_is_a_setting_not_a_credential() {
        let schema = json!({
            "properties": {
                "untyped_token": {"$ref": "#/$defs/Untyped"},
                "mode": {"enum": ["a", "b"]},
                "api_token": {"type": "string"}
            },
            "$defs": {"Untyped": {"oneOf": [{"const": "account"}, {"const": "register"}]}}
        });
        assert_eq!(choice_paths(&schema), vec!["mode", "untyped_token"]);
    }

    #[test]
    fn property_paths_follow_refs_and_plain_strings_leave_secrets_out() {
        let schema = json!({
            "properties": {"auth": {"$ref": "#/$defs/Auth"}, "base_url": {"type": "string"}},
            "$defs": {"Auth": {"properties": {"token": {"type": "string"}}}}
        });
        assert_eq!(
            property_paths(&schema),
            vec!["auth", "auth.token", "base_url"]
        );
        let mut out = Vec::new();
        let cfg =
            json!({"auth": {"token": "s3cret", "user": "alice"}, "base_url": "http://x", "n": 1});
        collect_plain_strings(&cfg, "", &["auth.token".into()], &mut out);
        assert_eq!(
            out,
            vec![
                ("auth.user".to_string(), "alice".to_string()),
                ("base_url".into(), "http://x".into())
            ]
        );
    }

    #[test]
    fn record_keys_use_the_id_or_the_content() {
        assert_eq!(record_key(&json!({"id": "s1", "x": 1})), "s1");
        assert_eq!(record_key(&json!({"x": 1})), r#"{"x":1}"#);
    }
}
