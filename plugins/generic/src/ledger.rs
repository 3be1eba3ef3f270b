//! The sink's idempotency ledger: a sidecar `<file>.posbridge-ledger` with one NDJSON line
//! `{"end": N, "keys": [...]}` per acknowledged batch, appended and fsynced after the data.
//!
//! The last complete line's `end` is the length of the data file that has been acknowledged;
//! anything beyond it was written by a batch that was never acknowledged. Its `start` and
//! digest of the bytes `start..end` the batch wrote let the sink tell its own output from a
//! file that was replaced, truncated or rewritten since (see `sink::Output::open`). The digest
//! is `xxh3` (XXH3-128, hex): it guards against accidents, not adversaries, and costs a
//! tenth of SHA-256 per batch. Ledgers written before keep their `sha256`, which is still
//! checked; a plugin of that time reads an `xxh3` line as one without a digest (no check).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::xxh3_128;

use crate::durable;
use crate::error::FileError;
use crate::key_filter::KeyFilter;

/// The suffix of a ledger next to its data file.
pub const LEDGER_SUFFIX: &str = ".posbridge-ledger";

/// The ledger path of a data file.
pub fn ledger_path(data: &Path) -> PathBuf {
    let mut s = data.as_os_str().to_owned();
    s.push(LEDGER_SUFFIX);
    PathBuf::from(s)
}

/// One acknowledged batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    /// The data file's length after the batch.
    pub end: u64,
    /// The idempotency keys of the records the batch wrote.
    pub keys: Vec<String>,
    /// Where the bytes the batch wrote begin (absent in ledgers written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    /// SHA-256 (hex) of the data file's bytes `start..end` as the batch wrote them, in
    /// ledgers written before `xxh3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// XXH3-128 (hex) of the data file's bytes `start..end` as the batch wrote them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xxh3: Option<String>,
}

impl LedgerEntry {
    /// The entry of a batch that wrote `bytes` at `start`.
    pub fn written(start: u64, bytes: &[u8], keys: Vec<String>) -> Self {
        Self {
            end: start + bytes.len() as u64,
            keys,
            start: Some(start),
            sha256: None,
            xxh3: Some(xxh3_hex(bytes)),
        }
    }

    /// Whether `bytes` are what the batch wrote, by the digest its line has; `None` when the
    /// line has none (a ledger written before digests were kept).
    pub fn digest_matches(&self, bytes: &[u8]) -> Option<bool> {
        match (&self.xxh3, &self.sha256) {
            (Some(x), _) => Some(xxh3_hex(bytes) == *x),
            (None, Some(sha)) => Some(hex::encode(Sha256::digest(bytes)) == *sha),
            (None, None) => None,
        }
    }

    /// Whether the line has a digest of its bytes.
    pub fn has_digest(&self) -> bool {
        self.xxh3.is_some() || self.sha256.is_some()
    }
}

fn xxh3_hex(bytes: &[u8]) -> String {
    format!("{:032x}", xxh3_128(bytes))
}

/// What replaying a ledger found.
#[derive(Debug, Default)]
pub struct Replay {
    /// Every key written so far, as a filter (a "maybe" is settled by [`Ledger::written_among`]).
    pub keys: KeyFilter,
    /// The acknowledged data length, `None` when the ledger has no complete line yet.
    pub committed_end: Option<u64>,
    /// The last complete entry.
    pub last: Option<LedgerEntry>,
    /// Bytes of a torn last line that were cut off.
    pub torn_bytes: u64,
}

/// An open ledger, positioned for appending.
#[derive(Debug)]
pub struct Ledger {
    path: PathBuf,
    file: File,
    /// Where the next [`Ledger::written_among`] begins: the start of the line in which the last
    /// one found a key.
    resume_at: u64,
    /// Lines the last [`Ledger::written_among`] read (for its tests).
    last_pass_lines: u64,
}

/// A ledger line's keys, borrowed from the line where they need no unescaping.
#[derive(Deserialize)]
struct LineKeys<'a> {
    #[serde(borrow)]
    keys: Vec<Cow<'a, str>>,
}

impl Ledger {
    /// Opens (creating) the ledger, cuts a torn last line (a batch killed before its ledger
    /// line was complete was never acknowledged) and replays the rest.
    pub fn open(path: &Path) -> Result<(Ledger, Replay), FileError> {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(FileError::io_at("open ledger", path))?;
        if !existed {
            durable::sync_parent(path)?;
        }
        let mut replay = Replay::default();
        let mut reader = BufReader::new(&file);
        let mut line = Vec::new();
        let mut good_len = 0u64;
        let mut line_no = 0u64;
        loop {
            line.clear();
            let n = reader
                .read_until(b'\n', &mut line)
                .map_err(FileError::io_at("read ledger", path))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            if line.last() != Some(&b'\n') {
                replay.torn_bytes = n as u64;
                break;
            }
            let entry: LedgerEntry =
                serde_json::from_slice(&line).map_err(|e| FileError::BadRecord {
                    file: path.to_path_buf(),
                    line: line_no,
                    message: format!("ledger line is not {{\"end\": N, \"keys\": [...]}}: {e}"),
                })?;
            if replay.committed_end.is_some_and(|prev| entry.end < prev) {
                return Err(FileError::Inconsistent {
                    file: path.to_path_buf(),
                    message: format!("line {line_no}: end {} goes backwards", entry.end),
                });
            }
            replay.committed_end = Some(entry.end);
            for key in &entry.keys {
                replay.keys.insert(key);
            }
            replay.last = Some(entry);
            good_len += n as u64;
        }
        drop(reader);
        if replay.torn_bytes > 0 {
            file.set_len(good_len)
                .map_err(FileError::io_at("truncate ledger", path))?;
            file.sync_data()
                .map_err(FileError::io_at("sync ledger", path))?;
        }
        Ok((
            Ledger {
                path: path.to_path_buf(),
                file,
                resume_at: 0,
                last_pass_lines: 0,
            },
            replay,
        ))
    }

    /// Moves this ledger aside as `<ledger>.stale-<unix seconds>` (kept for inspection) and
    /// opens a fresh one in its place; returns where the old one went.
    pub fn set_aside(self) -> Result<(Ledger, Replay, PathBuf), FileError> {
        let Ledger { path, file, .. } = self;
        drop(file);
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut stale = path.as_os_str().to_owned();
        stale.push(format!(".stale-{secs}"));
        let stale = PathBuf::from(stale);
        std::fs::rename(&path, &stale).map_err(FileError::io_at("set aside ledger", &path))?;
        durable::sync_parent(&path)?;
        let (ledger, replay) = Ledger::open(&path)?;
        Ok((ledger, replay, stale))
    }

    /// Which of `candidates` a complete line of the ledger names: the exact answer behind the
    /// filter's "maybe". Each line's keys are read where they lie in the line (no copy unless
    /// escaped) and looked up among the candidates; the pass ends as soon as every candidate
    /// was found. It begins at the line where the last pass found its last key and wraps
    /// around to the start: a run into an output whose ledger holds its keys already (the
    /// host's state lost, a re-run over the same input) asks for them in the order they were
    /// written, so a batch finds its keys a line or two on. Searching the whole file for each
    /// candidate took 28.9 s for such a run of 100,000 sales, against 0.9 s for the first run.
    pub fn written_among(&mut self, candidates: &[&str]) -> Result<HashSet<String>, FileError> {
        let mut found = HashSet::new();
        self.last_pass_lines = 0;
        if candidates.is_empty() {
            return Ok(found);
        }
        let wanted: HashSet<&str> = candidates.iter().copied().collect();
        let mut file =
            File::open(&self.path).map_err(FileError::io_at("open ledger", &self.path))?;
        let len = file
            .metadata()
            .map_err(FileError::io_at("stat ledger", &self.path))?
            .len();
        let resume = self.resume_at.min(len);
        // From the resume point to the end, then from the start through the line the resume
        // point lies in (read whole even if the point were not at a line's start).
        for (from, until) in [(resume, len), (0, resume)] {
            file.seek(SeekFrom::Start(from))
                .map_err(FileError::io_at("read ledger", &self.path))?;
            let mut reader = BufReader::with_capacity(256 * 1024, &file);
            let mut line = Vec::new();
            let mut at = from;
            while at < until {
                line.clear();
                let n = reader
                    .read_until(b'\n', &mut line)
                    .map_err(FileError::io_at("read ledger", &self.path))?;
                if n == 0 || line.last() != Some(&b'\n') {
                    break;
                }
                self.last_pass_lines += 1;
                // Every line was checked when the ledger was opened or written here; one that
                // does not read (a piece of a line) names no key.
                if let Ok(entry) = serde_json::from_slice::<LineKeys<'_>>(&line) {
                    let before = found.len();
                    for key in &entry.keys {
                        if wanted.contains(key.as_ref()) {
                            found.insert(key.to_string());
                        }
                    }
                    if found.len() > before {
                        self.resume_at = at;
                    }
                    if found.len() == wanted.len() {
                        return Ok(found);
                    }
                }
                at += n as u64;
            }
        }
        Ok(found)
    }

    /// Lines the last [`Ledger::written_among`] read.
    #[cfg(test)]
    fn last_pass_lines(&self) -> u64 {
        self.last_pass_lines
    }

    /// Appends one entry as a single write and fsyncs it; only then is the batch acknowledged.
    pub fn append(&mut self, entry: &LedgerEntry) -> Result<(), FileError> {
        let mut line = serde_json::to_vec(entry)
            .map_err(|e| FileError::BadRequest(format!("ledger entry: {e}")))?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .map_err(FileError::io_at("append to ledger", &self.path))?;
        self.file
            .sync_data()
            .map_err(FileError::io_at("sync ledger", &self.path))
    }
}

/// The acknowledged length of `data` according to its ledger, reading only the ledger's tail;
/// `None` when there is no ledger or no complete line in it. Sources use it so that they never
/// hand out a tail a sink may still cut off.
pub fn committed_end(data: &Path) -> Result<Option<u64>, FileError> {
    let path = ledger_path(data);
    let mut file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(FileError::io("open ledger", &path, e)),
    };
    let len = file
        .metadata()
        .map_err(FileError::io_at("stat ledger", &path))?
        .len();
    let mut window: u64 = 64 * 1024;
    loop {
        let start = len.saturating_sub(window);
        let mut tail = Vec::with_capacity((len - start) as usize);
        file.seek(SeekFrom::Start(start))
            .and_then(|_| (&mut file).take(len - start).read_to_end(&mut tail))
            .map_err(FileError::io_at("read ledger", &path))?;
        // A last line without its newline is torn: it was never acknowledged.
        let Some(last_nl) = tail.iter().rposition(|b| *b == b'\n') else {
            if start == 0 {
                return Ok(None);
            }
            window *= 4;
            continue;
        };
        let line_start = match tail[..last_nl].iter().rposition(|b| *b == b'\n') {
            Some(p) => p + 1,
            None if start == 0 => 0,
            None => {
                window *= 4;
                continue;
            }
        };
        let entry: LedgerEntry =
            serde_json::from_slice(&tail[line_start..last_nl]).map_err(|e| {
                FileError::Inconsistent {
                    file: path.clone(),
                    message: format!("last ledger line does not parse: {e}"),
                }
            })?;
        return Ok(Some(entry.end));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_checked_by_the_digest_its_line_has() {
        let entry = LedgerEntry::written(7, b"{\"id\":1}\n", vec!["k".into()]);
        assert_eq!(entry.end, 7 + 9);
        assert!(entry.xxh3.is_some() && entry.sha256.is_none());
        assert_eq!(entry.digest_matches(b"{\"id\":1}\n"), Some(true));
        assert_eq!(entry.digest_matches(b"{\"id\":2}\n"), Some(false));
        // A line written before `xxh3`, as that version spelled it: its SHA-256 still counts.
        let legacy: LedgerEntry = serde_json::from_str(
            "{\"end\":3,\"keys\":[],\"start\":0,\"sha256\":\
             \"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}",
        )
        .unwrap();
        assert_eq!(legacy.digest_matches(b"abc"), Some(true));
        assert_eq!(legacy.digest_matches(b"abd"), Some(false));
        let bare: LedgerEntry = serde_json::from_str("{\"end\":3,\"keys\":[]}").unwrap();
        assert!(!bare.has_digest());
        assert_eq!(bare.digest_matches(b"abc"), None);
        // New lines are spelled with `xxh3` only.
        let line = serde_json::to_string(&entry).unwrap();
        assert!(
            line.contains("\"xxh3\":\"") && !line.contains("sha256"),
            "{line}"
        );
    }

    #[test]
    fn torn_last_line_is_cut_and_the_rest_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("out.ndjson");
        let path = ledger_path(&data);
        std::fs::write(
            &path,
            "{\"end\":0,\"keys\":[]}\n{\"end\":10,\"keys\":[\"a\",\"b\"]}\n{\"end\":20,\"ke",
        )
        .unwrap();
        assert_eq!(committed_end(&data).unwrap(), Some(10));
        let (mut ledger, replay) = Ledger::open(&path).unwrap();
        assert_eq!(replay.committed_end, Some(10));
        assert_eq!(replay.torn_bytes, "{\"end\":20,\"ke".len() as u64);
        assert!(replay.keys.might_contain("a") && replay.keys.might_contain("b"));
        assert_eq!(
            ledger.written_among(&["a", "b", "x", "keys"]).unwrap(),
            HashSet::from(["a".to_string(), "b".to_string()])
        );
        ledger
            .append(&LedgerEntry {
                end: 30,
                keys: vec!["c".into()],
                start: None,
                sha256: None,
                xxh3: None,
            })
            .unwrap();
        assert_eq!(committed_end(&data).unwrap(), Some(30));
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 3);
        assert!(text.ends_with("{\"end\":30,\"keys\":[\"c\"]}\n"));
    }

    #[test]
    fn committed_end_reads_long_lines_from_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("out.csv");
        assert_eq!(committed_end(&data).unwrap(), None);
        let keys: Vec<String> = (0..20_000).map(|i| format!("key-{i}")).collect();
        let mut text = serde_json::to_string(&LedgerEntry {
            end: 5,
            keys: keys.clone(),
            start: None,
            sha256: None,
            xxh3: None,
        })
        .unwrap();
        text.push('\n');
        text.push_str(&serde_json::to_string(&LedgerEntry::written(70, b"1234567", keys)).unwrap());
        text.push('\n');
        assert!(text.len() > 4 * 64 * 1024);
        std::fs::write(ledger_path(&data), text).unwrap();
        assert_eq!(committed_end(&data).unwrap(), Some(77));
    }

    fn entry(end: u64, keys: Vec<String>) -> LedgerEntry {
        LedgerEntry {
            end,
            keys,
            start: None,
            sha256: None,
            xxh3: None,
        }
    }

    /// A run whose keys the ledger holds already (the host's state lost) asks for them in the
    /// order they were written: each look-up reads on from where the last one found its keys,
    /// not the whole file, and wraps around to the start for keys written before that point.
    #[test]
    fn look_ups_resume_where_the_last_one_found_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(&dir.path().join("out.ndjson"));
        let (mut ledger, _) = Ledger::open(&path).unwrap();
        let batch = |b: u64| (0..100).map(|i| format!("k-{b}-{i}")).collect::<Vec<_>>();
        for b in 0..50 {
            ledger.append(&entry((b + 1) * 10, batch(b))).unwrap();
        }
        for b in 0..50 {
            let keys = batch(b);
            let asked: Vec<&str> = keys.iter().map(String::as_str).collect();
            assert_eq!(
                ledger.written_among(&asked).unwrap().len(),
                100,
                "batch {b}"
            );
            assert!(
                ledger.last_pass_lines() <= 2,
                "batch {b}: {} lines read",
                ledger.last_pass_lines()
            );
        }
        // Written before the line the last look-up stopped at: found after the wrap.
        let early = batch(3);
        let found = ledger
            .written_among(&[early[0].as_str(), early[99].as_str()])
            .unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(
            ledger.last_pass_lines(),
            1 + 4,
            "line 49 (the last), then lines 0 to 3"
        );
        // A key the ledger does not hold (a false "maybe" of the filter) is looked for in every
        // line, and is not found.
        let found = ledger.written_among(&["k-7-1", "absent"]).unwrap();
        assert_eq!(found, HashSet::from(["k-7-1".to_string()]));
        assert_eq!(ledger.last_pass_lines(), 50);
        assert!(ledger.written_among(&[]).unwrap().is_empty());
    }

    /// A resume point inside a line (the file changed under the ledger) still finds that
    /// line's keys: the pass from the start reads the line it lies in whole.
    #[test]
    fn a_resume_point_inside_a_line_still_finds_its_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(&dir.path().join("out.ndjson"));
        let (mut ledger, _) = Ledger::open(&path).unwrap();
        for (end, key) in [(1, "a"), (2, "b"), (3, "c")] {
            ledger.append(&entry(end, vec![key.to_string()])).unwrap();
        }
        let first_line = std::fs::read_to_string(&path).unwrap().find('\n').unwrap() as u64;
        ledger.resume_at = first_line + 5;
        assert_eq!(
            ledger.written_among(&["b"]).unwrap(),
            HashSet::from(["b".to_string()])
        );
    }

    /// Keys that a ledger line spells with escapes are found as the keys they are; a value of
    /// another member is not a key.
    #[test]
    fn escaped_keys_are_found_and_other_members_are_not_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = ledger_path(&dir.path().join("out.ndjson"));
        std::fs::write(
            &path,
            "{\"end\":1,\"keys\":[\"a\\\"b\",\"\\u00e9t\\u00e9\"],\"xxh3\":\"k\"}\n",
        )
        .unwrap();
        let (mut ledger, _) = Ledger::open(&path).unwrap();
        assert_eq!(
            ledger.written_among(&["a\"b", "été", "k", "end"]).unwrap(),
            HashSet::from(["a\"b".to_string(), "été".to_string()])
        );
    }
}
