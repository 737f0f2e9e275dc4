//! Small helper for the few read-only commands diagnose runs (`ip route get`, `ip neigh`,
//! `wg show`, `swanctl --list-sas`): bounded in time and output, never a hang.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Largest output kept from one command.
const MAX_OUTPUT: usize = 4 << 20;

/// What a command produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Output {
    pub(crate) ok: bool,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

/// Runs `program args` with a time limit; Err with a readable reason when it cannot be
/// started or exceeds the limit (the process is killed).
pub(crate) fn run(program: &str, args: &[&str], timeout: Duration) -> Result<Output, String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("LC_ALL", "C")
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let readers: Vec<_> = [
        child.stdout.take().map(|o| Box::new(o) as Box<dyn Read + Send>),
        child.stderr.take().map(|o| Box::new(o) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .map(|r| {
        thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(MAX_OUTPUT as u64).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    })
    .collect();
    let end = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < end => thread::sleep(Duration::from_millis(3)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{program} {} did not finish within {timeout:?}", args.join(" ")));
            }
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    };
    let mut outs = readers.into_iter().map(|h| h.join().unwrap_or_default());
    let stdout = outs.next().unwrap_or_default();
    let stderr = outs.next().unwrap_or_default();
    Ok(Output { ok: status.success(), stdout, stderr })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_and_times_out() {
        let o = run("sh", &["-c", "echo hi; echo err >&2; exit 3"], Duration::from_secs(5)).expect("runs");
        assert!(!o.ok);
        assert_eq!(o.stdout, "hi\n");
        assert_eq!(o.stderr, "err\n");
        let t = Instant::now();
        let e = run("sleep", &["5"], Duration::from_millis(100)).expect_err("times out");
        assert!(e.contains("did not finish"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(run("/nonexistent/tool", &[], Duration::from_secs(1)).is_err());
    }
}
