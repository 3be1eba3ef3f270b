//! A small process-wide metrics registry rendered in the Prometheus text format at `GET /metrics`.
//!
//! Any part of the host adds to it without plumbing: `metrics::global().inc_counter(…)` or
//! `.observe(…)`; families appear on first use. The helpers below name the families the server
//! promises (HTTP requests, runs, records, retries, vendor HTTP calls) so that every caller uses
//! the same names and labels.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Histogram bucket bounds, in seconds.
pub const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(String, String)>;

#[derive(Debug)]
enum Series {
    Counter(f64),
    /// Observed durations; their total is kept as a `Duration` (whole nanoseconds), so adding
    /// many small observations does not drift the way a float sum would.
    Histogram {
        counts: Vec<u64>,
        total: Duration,
        count: u64,
    },
}

#[derive(Debug)]
struct Family {
    help: String,
    kind: &'static str,
    series: BTreeMap<Labels, Series>,
}

/// Counters and histograms by name and labels.
#[derive(Debug, Default)]
pub struct Metrics {
    families: Mutex<BTreeMap<String, Family>>,
}

/// The registry of this process.
pub fn global() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(Metrics::default)
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

impl Metrics {
    fn with_series(
        &self,
        name: &str,
        help: &str,
        kind: &'static str,
        pairs: &[(&str, &str)],
        new: impl FnOnce() -> Series,
        f: impl FnOnce(&mut Series),
    ) {
        let mut families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let family = families.entry(name.to_string()).or_insert_with(|| Family {
            help: help.to_string(),
            kind,
            series: BTreeMap::new(),
        });
        if family.kind != kind {
            tracing::warn!(name, "metric used as both counter and histogram; ignored");
            return;
        }
        f(family.series.entry(labels(pairs)).or_insert_with(new));
    }

    /// Adds `by` to the counter `name` with these labels (`name` should end in `_total`).
    pub fn inc_counter(&self, name: &str, help: &str, pairs: &[(&str, &str)], by: f64) {
        self.with_series(
            name,
            help,
            "counter",
            pairs,
            || Series::Counter(0.0),
            |s| {
                if let Series::Counter(v) = s {
                    *v += by;
                }
            },
        );
    }

    /// Records one duration in seconds in the histogram `name` (buckets: [`DURATION_BUCKETS`]).
    pub fn observe(&self, name: &str, help: &str, pairs: &[(&str, &str)], value: f64) {
        self.with_series(
            name,
            help,
            "histogram",
            pairs,
            || Series::Histogram {
                counts: vec![0; DURATION_BUCKETS.len()],
                total: Duration::ZERO,
                count: 0,
            },
            |s| {
                if let Series::Histogram {
                    counts,
                    total,
                    count,
                } = s
                {
                    for (i, bound) in DURATION_BUCKETS.iter().enumerate() {
                        if value <= *bound {
                            counts[i] += 1;
                        }
                    }
                    *total += Duration::try_from_secs_f64(value).unwrap_or_default();
                    *count += 1;
                }
            },
        );
    }

    /// The Prometheus text exposition (format 0.0.4) of every family.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        for (name, family) in families.iter() {
            let _ = writeln!(out, "# HELP {name} {}", escape_help(&family.help));
            let _ = writeln!(out, "# TYPE {name} {}", family.kind);
            for (labels, series) in &family.series {
                match series {
                    Series::Counter(v) => {
                        let _ = writeln!(out, "{name}{} {v}", label_text(labels, None));
                    }
                    Series::Histogram {
                        counts,
                        total,
                        count,
                    } => {
                        for (bound, c) in DURATION_BUCKETS.iter().zip(counts) {
                            let le = bound.to_string();
                            let _ =
                                writeln!(out, "{name}_bucket{} {c}", label_text(labels, Some(&le)));
                        }
                        let _ = writeln!(
                            out,
                            "{name}_bucket{} {count}",
                            label_text(labels, Some("+Inf"))
                        );
                        let seconds = total.as_secs_f64();
                        let _ = writeln!(out, "{name}_sum{} {seconds}", label_text(labels, None));
                        let _ = writeln!(out, "{name}_count{} {count}", label_text(labels, None));
                    }
                }
            }
        }
        out
    }
}

fn escape_help(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\n', "\\n")
}

fn label_text(labels: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
    }
}

// ---- the families the server promises ----

/// One answered API request.
pub fn record_http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    let m = global();
    let status = status.to_string();
    m.inc_counter(
        "posbridge_http_requests_total",
        "HTTP requests answered by posbridge serve, by method, route and status.",
        &[("method", method), ("route", route), ("status", &status)],
        1.0,
    );
    m.observe(
        "posbridge_http_request_duration_seconds",
        "Time to answer an HTTP request of posbridge serve.",
        &[("method", method), ("route", route)],
        elapsed.as_secs_f64(),
    );
}

/// One request of a connector to its vendor (status 0: no answer, e.g. a timeout).
pub fn record_vendor_http(connector: &str, status: u16, elapsed: Duration) {
    let m = global();
    let status = status.to_string();
    m.inc_counter(
        "posbridge_vendor_http_requests_total",
        "Requests connectors sent to their vendors, by connector and status (0: no answer).",
        &[("connector", connector), ("status", &status)],
        1.0,
    );
    m.observe(
        "posbridge_vendor_http_request_duration_seconds",
        "Latency of connectors' requests to their vendors.",
        &[("connector", connector)],
        elapsed.as_secs_f64(),
    );
}

/// What one finished pipeline run did (for the runner or the scheduler to report).
#[derive(Debug, Clone, Copy, Default)]
pub struct RunCounts {
    pub read: u64,
    pub written: u64,
    pub dead_lettered: u64,
    pub retries: u64,
}

/// One finished pipeline run, with its status (`succeeded`, `failed`, …).
pub fn record_run(pipeline: &str, status: &str, counts: RunCounts) {
    let m = global();
    m.inc_counter(
        "posbridge_runs_total",
        "Finished pipeline runs, by pipeline and status.",
        &[("pipeline", pipeline), ("status", status)],
        1.0,
    );
    for (name, help, n) in [
        (
            "posbridge_records_read_total",
            "Records read from sources, by pipeline.",
            counts.read,
        ),
        (
            "posbridge_records_written_total",
            "Records written to sinks, by pipeline.",
            counts.written,
        ),
        (
            "posbridge_records_dead_lettered_total",
            "Records parked as dead letters, by pipeline.",
            counts.dead_lettered,
        ),
        (
            "posbridge_retries_total",
            "Retried connector calls, by pipeline.",
            counts.retries,
        ),
    ] {
        m.inc_counter(name, help, &[("pipeline", pipeline)], n as f64);
    }
}

/// Middleware: counts every request by method, route template (not the raw path, so ids do
/// not explode the series) and status.
pub async fn count_requests(req: Request, next: Next) -> Response {
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let started = Instant::now();
    let response = next.run(req).await;
    record_http_request(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms_in_the_text_format() {
        let m = Metrics::default();
        m.inc_counter("x_total", "X things.", &[("a", "q\"x")], 2.0);
        m.inc_counter("x_total", "X things.", &[("a", "q\"x")], 1.0);
        m.observe("d_seconds", "D.", &[], 0.02);
        m.observe("d_seconds", "D.", &[], 3.0);
        let text = m.render();
        assert!(text.contains("# TYPE x_total counter\n"), "{text}");
        assert!(text.contains("x_total{a=\"q\\\"x\"} 3\n"), "{text}");
        assert!(
            text.contains("d_seconds_bucket{le=\"0.025\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("d_seconds_bucket{le=\"5\"} 2\n"), "{text}");
        assert!(text.contains("d_seconds_bucket{le=\"+Inf\"} 2\n"), "{text}");
        assert!(text.contains("d_seconds_count 2\n"), "{text}");
        assert!(text.contains("d_seconds_sum 3.02\n"), "{text}");
    }
}
