//! One command run: its own process group, a timeout, a graceful stop, and the
//! tail of its output.
//!
//! Every command is the leader of a new process group, so everything it starts
//! (a shell's children, a build's compilers, a `sleep &`) can be signalled at
//! once. A command is stopped with SIGTERM to the group and, if the group is
//! still there after the grace period, SIGKILL. When the command itself exits,
//! whatever it left running in its group is killed too: a job never leaves
//! orphans behind. (The leader is examined with `waitid(WNOWAIT)` and only
//! reaped after that kill, so the group id cannot be reused by an unrelated
//! process in between.)
//!
//! Output is read by two threads that keep the last [`TAIL_BYTES`] of each
//! stream (and, for `watch-files`, copy it through to the terminal). A
//! process that left the group (`setsid`) but kept the output open would hold
//! them for ever: once the command is done they read on for [`OUTPUT_GRACE`]
//! at most, and the run ends with what they have.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, kill_process_group};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

/// How much of each output stream is kept with a run.
pub const TAIL_BYTES: usize = 64 * 1024;
/// How long the output is read after the command's group is gone.
pub const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// How a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Ending {
    Exited {
        code: i32,
    },
    /// Killed by a signal it did not ask for.
    Signaled {
        signal: i32,
    },
    /// Ran past the job's timeout; its group was stopped.
    TimedOut {
        after_ms: u64,
    },
    /// Stopped on purpose: the job restarted for newer changes, or the host stopped.
    Stopped {
        why: String,
    },
    /// Could not be started at all (no such program, no permission, bad workdir).
    SpawnFailed {
        error: String,
    },
}

impl Ending {
    pub fn succeeded(&self) -> bool {
        matches!(self, Ending::Exited { code: 0 })
    }
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited { code } => write!(f, "exit {code}"),
            Ending::Signaled { signal } => write!(f, "killed by signal {signal}"),
            Ending::TimedOut { after_ms } => {
                write!(f, "timed out after {}", humantime::format_duration(Duration::from_millis(*after_ms)))
            }
            Ending::Stopped { why } => write!(f, "stopped: {why}"),
            Ending::SpawnFailed { error } => write!(f, "could not start: {error}"),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub argv: Vec<String>,
    pub workdir: PathBuf,
    pub env: Vec<(String, String)>,
    /// Written to the command's stdin, then closed; `None` gives it /dev/null.
    pub stdin: Option<Vec<u8>>,
    /// Copy the output through to this process's stdout and stderr.
    pub echo: bool,
}

/// A run's end: how, and the tails of stdout and stderr.
#[derive(Debug, Clone)]
pub struct Ran {
    pub outcome: Ending,
    pub stdout: String,
    pub stderr: String,
}

struct Finished {
    status: std::io::Result<ExitStatus>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// A started command.
pub struct Running {
    pid: Pid,
    done: oneshot::Receiver<Finished>,
}

/// Starts `invocation` as the leader of a new process group.
pub fn spawn(invocation: &Invocation) -> std::io::Result<Running> {
    use std::os::unix::process::CommandExt;
    let mut command = std::process::Command::new(&invocation.argv[0]);
    command
        .args(&invocation.argv[1..])
        .current_dir(&invocation.workdir)
        .envs(invocation.env.iter().map(|(k, v)| (k, v)))
        .process_group(0)
        .stdin(if invocation.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn()?;
    let pid = Pid::from_raw(child.id() as i32).expect("a child's PID is positive");
    if let (Some(mut pipe), Some(input)) = (child.stdin.take(), invocation.stdin.clone()) {
        // A command that does not read its input must not block anyone.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&input);
        });
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (ended_tx, ended) = std::sync::mpsc::channel();
    let echo = |out: Echo| invocation.echo.then_some(out);
    let stdout = child.stdout.take().expect("piped");
    let stdout = reader(stdout, echo(Box::new(std::io::stdout())), stop.clone(), ended_tx.clone());
    let stderr = child.stderr.take().expect("piped");
    let stderr = reader(stderr, echo(Box::new(std::io::stderr())), stop.clone(), ended_tx);
    let (done_tx, done) = oneshot::channel();
    std::thread::Builder::new().name("watch-command".into()).spawn(move || {
        // Wait for the leader without reaping it, kill what it left in its group,
        // then reap it: the group id stays ours until then.
        let options = WaitIdOptions::EXITED | WaitIdOptions::NOWAIT;
        while let Err(rustix::io::Errno::INTR) = rustix::process::waitid(WaitId::Pid(pid), options) {}
        let _ = kill_process_group(pid, Signal::KILL);
        let status = child.wait();
        // Both readers end at the end of their output, or are told to after the grace.
        let deadline = Instant::now() + OUTPUT_GRACE;
        for _ in 0..2 {
            if ended.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
                stop.store(true, Ordering::Relaxed);
                break;
            }
        }
        let stdout = stdout.join().unwrap_or_default();
        let stderr = stderr.join().unwrap_or_default();
        let _ = done_tx.send(Finished { status, stdout, stderr });
    })?;
    Ok(Running { pid, done })
}

type Echo = Box<dyn Write + Send>;

/// How often a reader looks whether it was told to stop.
const READ_POLL: Duration = Duration::from_millis(100);

fn reader(
    mut pipe: impl Read + AsFd + Send + 'static,
    mut echo: Option<Echo>,
    stop: Arc<AtomicBool>,
    ended: std::sync::mpsc::Sender<()>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut tail = Vec::new();
        let mut buf = [0u8; 8192];
        let wait = rustix::event::Timespec::try_from(READ_POLL).expect("a short time");
        while !stop.load(Ordering::Relaxed) {
            let mut fds = [rustix::event::PollFd::new(&pipe, rustix::event::PollFlags::IN)];
            match rustix::event::poll(&mut fds, Some(&wait)) {
                Ok(0) | Err(rustix::io::Errno::INTR) => continue,
                Ok(_) => {}
                Err(_) => break,
            }
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if let Some(out) = echo.as_mut() {
                        let _ = out.write_all(&buf[..n]).and_then(|()| out.flush());
                    }
                    tail.extend_from_slice(&buf[..n]);
                    if tail.len() > 2 * TAIL_BYTES {
                        tail.drain(..tail.len() - TAIL_BYTES);
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = ended.send(());
        if tail.len() > TAIL_BYTES {
            tail.drain(..tail.len() - TAIL_BYTES);
        }
        tail
    })
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get() as u32
    }

    /// Waits for the command to end, stopping its group when `timeout` passes or
    /// when `stop` says why (a restart, the host stopping).
    pub async fn wait(mut self, timeout: Option<Duration>, grace: Duration, stop: oneshot::Receiver<String>) -> Ran {
        let expired = async {
            match timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let mut stop = stop;
        let forced = tokio::select! {
            finished = &mut self.done => return ran(finished, None),
            () = expired => Ending::TimedOut { after_ms: timeout.map_or(0, |t| t.as_millis() as u64) },
            Ok(why) = &mut stop => Ending::Stopped { why },
        };
        let _ = kill_process_group(self.pid, Signal::TERM);
        let finished = match tokio::time::timeout(grace, &mut self.done).await {
            Ok(finished) => finished,
            Err(_) => {
                let _ = kill_process_group(self.pid, Signal::KILL);
                self.done.await
            }
        };
        ran(finished, Some(forced))
    }
}

fn ran(finished: Result<Finished, oneshot::error::RecvError>, forced: Option<Ending>) -> Ran {
    use std::os::unix::process::ExitStatusExt;
    let Ok(finished) = finished else {
        let outcome = Ending::SpawnFailed { error: "the command's waiter thread died".into() };
        return Ran { outcome, stdout: String::new(), stderr: String::new() };
    };
    let outcome = forced.unwrap_or_else(|| match &finished.status {
        Ok(status) => match (status.code(), status.signal()) {
            (Some(code), _) => Ending::Exited { code },
            (None, Some(signal)) => Ending::Signaled { signal },
            (None, None) => Ending::Exited { code: -1 },
        },
        Err(e) => Ending::SpawnFailed { error: e.to_string() },
    });
    Ran {
        outcome,
        stdout: String::from_utf8_lossy(&finished.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&finished.stderr).into_owned(),
    }
}

/// Runs `invocation` to the end.
#[cfg(test)]
pub async fn run(invocation: &Invocation, timeout: Option<Duration>, grace: Duration) -> Ran {
    match spawn(invocation) {
        Ok(running) => running.wait(timeout, grace, oneshot::channel().1).await,
        Err(e) => Ran {
            outcome: Ending::SpawnFailed { error: format!("{}: {e}", invocation.argv[0]) },
            stdout: String::new(),
            stderr: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Invocation {
        Invocation {
            argv: vec!["sh".into(), "-c".into(), script.into()],
            workdir: std::env::temp_dir(),
            env: vec![("WATCH_TEST".into(), "yes".into())],
            stdin: None,
            echo: false,
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
    }

    #[test]
    fn exit_codes_signals_and_output_are_recorded() {
        let ran = block_on(run(&sh("echo out; echo \"$WATCH_TEST\" >&2; exit 3"), None, Duration::from_secs(1)));
        assert_eq!(
            (ran.outcome, ran.stdout.as_str(), ran.stderr.as_str()),
            (Ending::Exited { code: 3 }, "out\n", "yes\n")
        );
        let ran = block_on(run(&sh("kill -SEGV $$"), None, Duration::from_secs(1)));
        assert_eq!(ran.outcome, Ending::Signaled { signal: 11 });
        let mut missing = sh("");
        missing.argv = vec!["/nonexistent/program".into()];
        let ran = block_on(run(&missing, None, Duration::from_secs(1)));
        assert!(ran.outcome.to_string().starts_with("could not start: /nonexistent/program: "), "{}", ran.outcome);
    }

    #[test]
    fn only_the_tail_of_a_flood_is_kept() {
        let ran = block_on(run(&sh("head -c 300000 /dev/zero | tr '\\0' a; echo END"), None, Duration::from_secs(1)));
        assert_eq!(ran.stdout.len(), TAIL_BYTES);
        assert!(ran.stdout.ends_with("aEND\n"));
    }

    #[test]
    fn a_process_that_leaves_the_group_with_the_output_open_does_not_hold_the_run() {
        // `setsid` puts the sleep out of the group's reach; it keeps stdout open.
        // The shell goes on once the sleep leads a session of its own.
        let script =
            "setsid sleep 300 & until [ \"$(ps -o sid= -p $! | tr -d ' ')\" = \"$!\" ]; do :; done; echo started";
        let ran = block_on(run(&sh(script), None, Duration::from_secs(1)));
        assert_eq!((ran.outcome, ran.stdout.as_str()), (Ending::Exited { code: 0 }, "started\n"));
        let _ = std::process::Command::new("pkill").args(["-f", "^sleep 300$"]).status();
    }

    #[test]
    fn stdin_is_written_and_a_timeout_kills_the_group() {
        let mut cat = sh("cat");
        cat.stdin = Some(b"{\"paths\":[]}".to_vec());
        assert_eq!(block_on(run(&cat, None, Duration::from_secs(1))).stdout, "{\"paths\":[]}");
        // The shell ignores SIGTERM, so the grace period ends in SIGKILL.
        let started = std::time::Instant::now();
        let ran = block_on(run(
            &sh("trap '' TERM; sleep 30 & wait"),
            Some(Duration::from_millis(100)),
            Duration::from_millis(100),
        ));
        assert_eq!(ran.outcome, Ending::TimedOut { after_ms: 100 });
        assert!(started.elapsed() < Duration::from_secs(10), "the background sleep did not hold the run open");
    }
}
