//! Processes the lab starts, identified by pid *and* start time (so a recycled pid is never
//! killed), and stopped with bounded waits: SIGTERM, then SIGKILL.

use std::thread;
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};
use serde::{Deserialize, Serialize};

/// A process: its pid and its start time in clock ticks since boot (field 22 of
/// /proc/PID/stat), which together identify it even after the pid is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcRef {
    pub pid: u32,
    pub start_time: u64,
}

/// The state letter and start time of a pid, from /proc/PID/stat.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: fields after it start
    // after the last ')'.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 3.. follow; the start time is field 22, i.e. the 20th after the state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

impl ProcRef {
    /// The process with this pid as it runs now.
    pub fn of(pid: u32) -> Option<ProcRef> {
        stat(pid).map(|(_, start_time)| ProcRef { pid, start_time })
    }

    /// Whether this very process still runs (a zombie counts as gone).
    pub fn alive(&self) -> bool {
        matches!(stat(self.pid), Some((state, start)) if start == self.start_time && state != 'Z' && state != 'X')
    }

    fn signal(&self, sig: Signal) {
        let Some(pid) = i32::try_from(self.pid).ok().and_then(Pid::from_raw) else { return };
        if self.alive() {
            let _ = kill_process(pid, sig);
        }
    }

    /// SIGTERM, up to `grace` for it to exit, then SIGKILL and up to one more second.
    /// Returns whether the process is gone.
    pub fn terminate(&self, grace: Duration) -> bool {
        if !self.alive() {
            return true;
        }
        self.signal(Signal::TERM);
        if wait_gone(self, grace) {
            return true;
        }
        self.signal(Signal::KILL);
        wait_gone(self, Duration::from_secs(1))
    }
}

fn wait_gone(p: &ProcRef, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if !p.alive() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// The command line of a pid, arguments joined by spaces ("" when unreadable).
pub(crate) fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| b.split(|c| *c == 0).map(|a| String::from_utf8_lossy(a).into_owned()).collect::<Vec<_>>().join(" "))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Every pid on the machine (from /proc).
pub(crate) fn all_pids() -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect()
}

/// Whether the current user is root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn a_child_is_found_and_terminated() {
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep runs");
        let p = ProcRef::of(child.id()).expect("running child has a stat");
        assert!(p.alive());
        // A different start time is a different process: never signalled.
        let other = ProcRef { pid: p.pid, start_time: p.start_time + 1 };
        assert!(!other.alive());
        assert!(other.terminate(Duration::from_millis(10)), "nothing to do for a process that is gone");
        assert!(p.alive(), "the real process was not touched");
        // Reap in a thread so that the zombie state is seen as gone either way.
        let t = thread::spawn(move || child.wait());
        assert!(p.terminate(Duration::from_secs(2)));
        assert!(t.join().expect("waiter").is_ok());
        assert!(!p.alive());
        assert!(cmdline(std::process::id()).len() > 1);
        assert!(all_pids().contains(&std::process::id()));
    }
}
