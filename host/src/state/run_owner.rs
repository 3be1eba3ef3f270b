//! Which process owns a run, so that a later process can tell a run still going from one whose
//! process was killed (SIGKILL, crash, power cut) and left it `running`.
//!
//! The owner is `HOST:PID:START`, where START is the process's start time in clock ticks since
//! boot (Linux `/proc/PID/stat`, field 22), so a recycled pid is not mistaken for the old process.
//! Where `/proc` is not available the owner carries no start time and liveness is unknown: such
//! runs are never marked interrupted by this module.

/// The owner string of the current process.
pub fn current_owner() -> String {
    let pid = std::process::id();
    format!(
        "{}:{pid}:{}",
        host_name(),
        process_start(pid)
            .map(|s| s.to_string())
            .unwrap_or_default()
    )
}

/// Whether the process that wrote `owner` is certainly gone: same host, and no process with its
/// pid and start time exists. `false` when it may still be running or it cannot be told.
pub fn owner_is_gone(owner: &str) -> bool {
    let mut parts = owner.rsplitn(3, ':');
    let (Some(start), Some(pid), Some(host)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if host != host_name() || start.is_empty() {
        return false;
    }
    let Ok(pid) = pid.parse::<u32>() else {
        return false;
    };
    if !std::path::Path::new("/proc/self/stat").exists() {
        return false;
    }
    match process_start(pid) {
        None => true,
        Some(s) => s.to_string() != start,
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The start time of a process in clock ticks since boot (`/proc/PID/stat`, field 22).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_current_process_is_not_gone() {
        let me = current_owner();
        assert!(!owner_is_gone(&me), "{me}");
    }

    #[test]
    fn an_ended_process_is_gone() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let owner = format!("{}:{pid}:{}", host_name(), process_start(pid).unwrap_or(1));
        child.wait().unwrap();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(owner_is_gone(&owner), "{owner}");
        }
    }

    #[test]
    fn other_hosts_and_unknown_owners_are_never_gone() {
        assert!(!owner_is_gone("some-other-host:1:1"));
        assert!(!owner_is_gone("garbage"));
        assert!(!owner_is_gone(&format!("{}:1:", host_name())));
    }
}
