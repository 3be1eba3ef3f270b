//! The verdict of a suite run: one result per check, printable as a pass/fail table.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

/// The checks of the suite, in the order they are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Check {
    /// The manifest: JSON Schema 2020-12 that compiles, stream schemas, secrets marked (by
    /// name, and every credential the connector sends in a header comes from a secret field).
    Manifest,
    /// The config validates, and every field the connector needs is required by the schema.
    ConfigSchema,
    /// `check` passes with the config and fails cleanly (typed, not `Bug`) with `bad_config`.
    CheckBadCredentials,
    /// A read resumed from every cursor it emitted gives no gap and no duplicate.
    Resume,
    /// Records validate against their stream's schema; sales reconcile to the cent.
    Records,
    /// The same batch written twice is stored once (sinks).
    WriteIdempotent,
    /// Bad credentials give `Auth` errors on read and write; nothing is a `Bug`.
    TypedErrors,
    /// No call panicked (a panic caught at the boundary still fails), odd inputs included.
    NoPanic,
    /// No secret value is in a log line or an error message of the plugin.
    SecretsInLogs,
}

impl Check {
    /// Every check, in report order.
    pub const ALL: [Check; 9] = [
        Check::Manifest,
        Check::ConfigSchema,
        Check::CheckBadCredentials,
        Check::Resume,
        Check::Records,
        Check::WriteIdempotent,
        Check::TypedErrors,
        Check::NoPanic,
        Check::SecretsInLogs,
    ];

    /// The check's name as printed, e.g. `write_idempotent`.
    pub fn name(self) -> &'static str {
        match self {
            Check::Manifest => "manifest",
            Check::ConfigSchema => "config_schema",
            Check::CheckBadCredentials => "check_bad_credentials",
            Check::Resume => "resume",
            Check::Records => "records",
            Check::WriteIdempotent => "write_idempotent",
            Check::TypedErrors => "typed_errors",
            Check::NoPanic => "no_panic",
            Check::SecretsInLogs => "secrets_in_logs",
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a check passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Passed.
    Pass,
    /// Failed; the details say why.
    Fail,
    /// Does not apply to this connector (e.g. `write_idempotent` for a source only).
    Skip,
}

/// The result of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Which check.
    pub check: Check,
    /// Pass, fail or skip.
    pub status: Status,
    /// Why it failed or was skipped; what it looked at when it passed.
    pub details: Vec<String>,
}

/// The verdict of a suite run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The connector's name from its manifest.
    pub connector: String,
    /// The library file.
    pub library: PathBuf,
    /// One result per check, in [`Check::ALL`] order.
    pub results: Vec<CheckResult>,
}

impl Report {
    /// Whether no check failed.
    pub fn passed(&self) -> bool {
        self.failed().is_empty()
    }

    /// The checks that failed.
    pub fn failed(&self) -> Vec<Check> {
        self.results
            .iter()
            .filter(|r| r.status == Status::Fail)
            .map(|r| r.check)
            .collect()
    }

    /// The result of one check.
    pub fn result(&self, check: Check) -> Option<&CheckResult> {
        self.results.iter().find(|r| r.check == check)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conformance of {} ({})",
            self.connector,
            self.library.display()
        )?;
        for r in &self.results {
            let word = match r.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            writeln!(f, "  {word}  {}", r.check)?;
            // Passing checks say what they saw in one line; failures list every reason.
            let shown = if r.status == Status::Fail {
                r.details.len()
            } else {
                r.details.len().min(1)
            };
            for d in &r.details[..shown] {
                writeln!(f, "          {d}")?;
            }
        }
        let failed = self.failed();
        if failed.is_empty() {
            write!(f, "all {} checks passed", self.results.len())
        } else {
            let names: Vec<&str> = failed.iter().map(|c| c.name()).collect();
            write!(f, "{} check(s) failed: {}", failed.len(), names.join(", "))
        }
    }
}
