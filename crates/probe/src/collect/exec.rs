//! Runs one external command with a deadline: output captured (bounded), the whole process
//! group killed on timeout, and reader threads never waited on forever, so collect cannot hang.

use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// How long to wait for the output pipes after the command ended (or was killed): a
/// grandchild that kept them open must not hold collect up.
const PIPE_GRACE: Duration = Duration::from_millis(500);

/// How a command ended.
#[derive(Debug)]
pub(crate) enum End {
    /// It exited (or was killed by a signal it did not get from us).
    Exited(std::process::ExitStatus),
    /// We killed it at the deadline.
    TimedOut,
    /// It could not be started.
    SpawnFailed(io::Error),
}

/// What one run produced.
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) started: SystemTime,
    pub(crate) duration: Duration,
    pub(crate) end: End,
    pub(crate) stdout: Vec<u8>,
    pub(crate) stderr: Vec<u8>,
    /// Standard output was longer than the limit: `stdout` holds only its start.
    pub(crate) stdout_truncated: bool,
    /// A pipe was still open after the grace period (a grandchild kept it): the captured
    /// output may be incomplete.
    pub(crate) pipes_abandoned: bool,
}

impl Run {
    /// Exit code, when the command exited normally.
    pub(crate) fn code(&self) -> Option<i32> {
        match &self.end {
            End::Exited(st) => st.code(),
            _ => None,
        }
    }

    /// The signal that ended the command, when one did.
    pub(crate) fn signal(&self) -> Option<i32> {
        match &self.end {
            End::Exited(st) => st.signal(),
            _ => None,
        }
    }
}

/// Finds `tool` in the colon-separated `path` (an absolute or relative path is taken as is).
pub(crate) fn which(tool: &str, path: &OsStr) -> Option<PathBuf> {
    if tool.contains('/') {
        let p = PathBuf::from(tool);
        return is_executable(&p).then_some(p);
    }
    std::env::split_paths(path).map(|dir| dir.join(tool)).find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs `program args…` with standard input closed, `PATH` set to `path` and the C locale
/// (stable output formats), in its own process group. At `timeout` the group is killed.
pub(crate) fn run(program: &Path, args: &[OsString], path: &OsStr, timeout: Duration, max_stdout: usize) -> Run {
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("PATH", path)
        .env("LC_ALL", "C")
        .env_remove("LANG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Own group: a timeout kills helpers the command started too.
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Run {
                started,
                duration: clock.elapsed(),
                end: End::SpawnFailed(e),
                stdout: Vec::new(),
                stderr: Vec::new(),
                stdout_truncated: false,
                pipes_abandoned: false,
            }
        }
    };
    let pgid = rustix::process::Pid::from_child(&child);
    let out_rx = child.stdout.take().map(|r| read_bounded(r, max_stdout));
    // Error messages are short; more than this is noise.
    let err_rx = child.stderr.take().map(|r| read_bounded(r, 64 * 1024));

    let deadline = clock + timeout;
    let mut pause = Duration::from_millis(1);
    let end = loop {
        match child.try_wait() {
            Ok(Some(status)) => break End::Exited(status),
            Ok(None) => {}
            Err(e) => {
                kill_group(pgid);
                let _ = child.kill();
                let _ = child.wait();
                break End::SpawnFailed(e);
            }
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(pgid);
            let _ = child.kill();
            let _ = child.wait();
            break End::TimedOut;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    };

    let mut abandoned = false;
    let mut collect = |rx: Option<mpsc::Receiver<Captured>>| -> Captured {
        let Some(rx) = rx else {
            return Captured::default();
        };
        match rx.recv_timeout(PIPE_GRACE) {
            Ok(c) => c,
            Err(_) => {
                // A grandchild holds the pipe: kill the rest of the group, try once more.
                kill_group(pgid);
                rx.recv_timeout(PIPE_GRACE).unwrap_or_else(|_| {
                    abandoned = true;
                    Captured::default()
                })
            }
        }
    };
    let out = collect(out_rx);
    let err = collect(err_rx);
    Run {
        started,
        duration: clock.elapsed(),
        end,
        stdout: out.bytes,
        stderr: err.bytes,
        stdout_truncated: out.truncated,
        pipes_abandoned: abandoned,
    }
}

fn kill_group(pid: rustix::process::Pid) {
    // ESRCH (the group is gone) is the usual, harmless answer.
    let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
}

#[derive(Debug, Default)]
struct Captured {
    bytes: Vec<u8>,
    truncated: bool,
}

/// Reads `r` to its end on a thread, keeping the first `max` bytes and draining the rest
/// (a command blocked on a full pipe would otherwise only end at the timeout).
fn read_bounded<R: Read + Send + 'static>(mut r: R, max: usize) -> mpsc::Receiver<Captured> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut captured = Captured::default();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match r.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let chunk = buf.get(..n).unwrap_or(&[]);
                    let room = max.saturating_sub(captured.bytes.len());
                    if chunk.len() > room {
                        captured.truncated = true;
                    }
                    captured.bytes.extend_from_slice(chunk.get(..room.min(chunk.len())).unwrap_or(&[]));
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // The receiver may have given up on us; nothing to do then.
        let _ = tx.send(captured);
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sys_path() -> OsString {
        OsString::from("/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
    }

    fn sh(script: &str, timeout: Duration, max: usize) -> Run {
        let sh = which("sh", &sys_path()).expect("sh is installed");
        run(&sh, &["-c".into(), script.into()], &sys_path(), timeout, max)
    }

    #[test]
    fn captures_output_and_exit_code() {
        let r = sh("echo out; echo err >&2; exit 3", Duration::from_secs(10), 1024);
        assert_eq!(r.stdout, b"out\n");
        assert_eq!(r.stderr, b"err\n");
        assert_eq!(r.code(), Some(3));
        assert!(!r.stdout_truncated && !r.pipes_abandoned);
    }

    #[test]
    fn timeout_kills_the_group_including_grandchildren() {
        let t = Instant::now();
        // The background sleep inherits the pipes: without the group kill, reading would
        // wait for it.
        let r = sh("sleep 30 & sleep 30", Duration::from_millis(300), 1024);
        assert!(matches!(r.end, End::TimedOut), "{:?}", r.end);
        assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
        assert!(!r.pipes_abandoned);
    }

    #[test]
    fn a_daemonised_grandchild_does_not_hold_us_up() {
        let t = Instant::now();
        let r = sh("sleep 30 & echo started", Duration::from_secs(10), 1024);
        assert_eq!(r.code(), Some(0));
        assert_eq!(r.stdout, b"started\n");
        assert!(t.elapsed() < Duration::from_secs(5), "took {:?}", t.elapsed());
    }

    #[test]
    fn long_output_is_truncated_not_blocking() {
        let r = sh("head -c 300000 /dev/zero", Duration::from_secs(10), 1000);
        assert_eq!(r.stdout.len(), 1000);
        assert!(r.stdout_truncated);
        assert_eq!(r.code(), Some(0));
    }

    #[test]
    fn missing_program_is_a_spawn_failure_and_which_finds_none() {
        assert_eq!(which("netsleuth-no-such-tool", &sys_path()), None);
        let r = run(Path::new("/nonexistent/tool"), &[], &sys_path(), Duration::from_secs(1), 10);
        assert!(matches!(r.end, End::SpawnFailed(_)));
        assert!(which("sh", &sys_path()).is_some());
    }
}
