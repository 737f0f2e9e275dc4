//! Runs external programs (`ip`, `nft`, `wg`, `ping`, ...) with a deadline: output is
//! captured by reader threads, a late command is killed, and nothing waits forever.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// Default deadline of a configuration command (`ip`, `nft`, `wg`).
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);
/// At most this much of a command's output is kept (the rest is read and dropped).
const MAX_CAPTURE: usize = 16 << 20;
/// After the command exits, how long its output pipes may stay open (a daemonised
/// grandchild can hold them) before the readers are abandoned.
const READER_GRACE: Duration = Duration::from_secs(2);

/// What a finished (or stopped) command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdOutput {
    /// Exit code; None when killed by a signal (including the deadline).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    /// The deadline passed and the command was killed.
    pub timed_out: bool,
}

impl CmdOutput {
    /// Exit code 0 and not timed out.
    pub fn success(&self) -> bool {
        self.code == Some(0) && !self.timed_out
    }
}

/// One command line to run.
#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    timeout: Duration,
    /// Whether stdout may be quoted in errors (false for `wg genkey` and friends).
    show_stdout: bool,
}

impl Cmd {
    pub(crate) fn new<I, S>(args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            args: args.into_iter().map(|a| a.as_ref().to_os_string()).collect(),
            stdin: None,
            timeout: DEFAULT_TIMEOUT,
            show_stdout: true,
        }
    }

    /// `ip netns exec NETNS args...`
    pub(crate) fn in_netns<I, S>(netns: &str, args: I) -> Cmd
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut all: Vec<OsString> = vec!["ip".into(), "netns".into(), "exec".into(), netns.into()];
        all.extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        Cmd::new(all)
    }

    pub(crate) fn stdin(mut self, data: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(data.into());
        self
    }

    pub(crate) fn timeout(mut self, timeout: Duration) -> Cmd {
        self.timeout = timeout;
        self
    }

    /// The output carries secrets (a private key): never quote it in errors.
    pub(crate) fn secret_output(mut self) -> Cmd {
        self.show_stdout = false;
        self
    }

    /// The command line as a user would type it (for messages).
    pub(crate) fn display(&self) -> String {
        self.args.iter().map(|a| a.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
    }

    /// Runs the command and returns what it produced, whatever its exit status; errors only
    /// when it cannot be started.
    pub(crate) fn output(&self) -> Result<CmdOutput> {
        let Some((prog, rest)) = self.args.split_first() else {
            return Err(LabError::Spawn {
                cmd: String::new(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "empty command"),
            });
        };
        let mut command = Command::new(prog);
        command
            .args(rest)
            .stdin(if self.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Own process group: a Ctrl-C at the terminal reaches netsleuth, which then
            // tears the lab down in order, instead of killing a half-done `ip` call.
            .process_group(0);
        let mut child = command.spawn().map_err(|source| LabError::Spawn { cmd: self.display(), source })?;
        if let (Some(data), Some(mut pipe)) = (self.stdin.clone(), child.stdin.take()) {
            // A writer thread: a command that does not read its input must not block us.
            thread::spawn(move || {
                let _ = pipe.write_all(&data);
            });
        }
        let out_rx = spawn_reader(child.stdout.take());
        let err_rx = spawn_reader(child.stderr.take());
        let (code, timed_out) = wait_deadline(&mut child, self.timeout);
        let stdout = out_rx.recv_timeout(READER_GRACE).unwrap_or_default();
        let stderr = err_rx.recv_timeout(READER_GRACE).unwrap_or_default();
        Ok(CmdOutput {
            code,
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            timed_out,
        })
    }

    /// Runs the command and requires success; returns its standard output.
    pub(crate) fn run(&self) -> Result<String> {
        let out = self.output()?;
        if out.timed_out {
            return Err(LabError::Timeout { cmd: self.display(), secs: self.timeout.as_secs_f64() });
        }
        if out.code != Some(0) {
            let mut stderr = out.stderr.trim().to_string();
            if stderr.is_empty() && self.show_stdout {
                stderr = out.stdout.trim().to_string();
            }
            return Err(LabError::Command {
                cmd: self.display(),
                status: out.code.map_or_else(|| "killed by a signal".to_string(), |c| format!("exit {c}")),
                stderr: truncate(&stderr, 2000),
            });
        }
        Ok(out.stdout)
    }
}

/// Waits for `child` until `timeout`; kills it when late. Returns (exit code, timed out).
fn wait_deadline(child: &mut Child, timeout: Duration) -> (Option<i32>, bool) {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return (status.code(), false),
            Ok(None) => {}
            Err(_) => break,
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(25));
    }
    let _ = child.kill();
    // After SIGKILL the wait returns promptly.
    let code = child.wait().ok().and_then(|s| s.code());
    (code, true)
}

fn spawn_reader<R: Read + Send + 'static>(pipe: Option<R>) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    match pipe {
        Some(mut pipe) => {
            thread::spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = MAX_CAPTURE.saturating_sub(kept.len());
                            kept.extend_from_slice(buf.get(..n.min(room)).unwrap_or(&[]));
                        }
                    }
                }
                let _ = tx.send(kept);
            });
        }
        None => {
            let _ = tx.send(Vec::new());
        }
    }
    rx
}

/// At most `max` bytes of `s`, cut at a character boundary, with a marker when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{} …", s.get(..end).unwrap_or(""))
}

/// Whether `program` is found in PATH (or is an existing path).
pub(crate) fn have_program(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    let Some(path) = std::env::var_os("PATH") else { return false };
    std::env::split_paths(&path).any(|dir| dir.join(program).is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_status() {
        let out = Cmd::new(["sh", "-c", "echo out; echo err >&2; exit 3"]).output().expect("sh runs");
        assert_eq!(out.code, Some(3));
        assert_eq!(out.stdout, "out\n");
        assert_eq!(out.stderr, "err\n");
        assert!(!out.success());
        let err = Cmd::new(["sh", "-c", "echo boom >&2; exit 1"]).run().expect_err("fails");
        assert!(err.to_string().contains("boom") && err.to_string().contains("exit 1"), "{err}");
    }

    #[test]
    fn a_late_command_is_killed() {
        let start = Instant::now();
        let out = Cmd::new(["sleep", "5"]).timeout(Duration::from_millis(200)).output().expect("sleep runs");
        assert!(out.timed_out);
        assert!(start.elapsed() < Duration::from_secs(3), "{:?}", start.elapsed());
        let err = Cmd::new(["sleep", "5"]).timeout(Duration::from_millis(100)).run().expect_err("late");
        assert!(matches!(err, LabError::Timeout { .. }), "{err}");
    }

    #[test]
    fn stdin_reaches_the_command_and_secrets_stay_out_of_errors() {
        let out = Cmd::new(["cat"]).stdin("hello").output().expect("cat runs");
        assert_eq!(out.stdout, "hello");
        let err = Cmd::new(["sh", "-c", "cat; exit 1"]).stdin("SECRETKEY").secret_output().run().expect_err("fails");
        assert!(!err.to_string().contains("SECRETKEY"), "{err}");
        let err = Cmd::new(["sh", "-c", "cat; exit 1"]).stdin("shown").run().expect_err("fails");
        assert!(err.to_string().contains("shown"), "{err}");
    }

    #[test]
    fn truncation_respects_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("ééé", 3), "é …");
        assert!(have_program("sh"));
        assert!(!have_program("netsleuth-no-such-program"));
    }
}
