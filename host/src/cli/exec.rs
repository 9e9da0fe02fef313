//! `monitor exec RUN[/NODE] -- CMD ARGS...`: a command as a progress node, with
//! what its whole process tree used.
//!
//! The command runs as this process's child, in the same process group and
//! terminal, with its own standard streams: its output is its own. This process
//! makes itself the *subreaper* of everything below it, so a grandchild whose
//! parent ends (a daemon that calls `setsid` and forks) is adopted here rather
//! than by init: the kernel's account of it (`getrusage(RUSAGE_CHILDREN)`)
//! reaches this process when it is reaped, and sampling counts it meanwhile
//! ([`crate::sampler::follow`]). The node's figures are the larger of the two
//! for each field. The node ends with the command: a process of its tree still
//! running then (a daemon it left behind) is not waited for, and counts up to the
//! last sample.
//!
//! Signals: Ctrl-C, Ctrl-\ and a hang-up come from the terminal to the whole
//! foreground group, so the command has them already; the same signals sent to
//! this process by another one (`kill`), and SIGTERM, are passed on, once, to the
//! command and every other process below this one (a shell's children stop with
//! the shell); one that comes before the command starts waits for it. Once the
//! end is recorded, this process exits with the command's status, or dies of the
//! signal that ended it (128 + N for one that would dump a core).
//!
//! Every report connects anew, to the running host or else the database, so
//! the database is never held while the command runs and a host started
//! meanwhile gets the next report.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt as _;
use std::sync::mpsc;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::UsageError;
use crate::error::CommandResult;
use crate::paths::DataDir;
use crate::progress::{Node, NodePath, Op, Resources, Update};
use crate::sampler::ProcessSampler;
use crate::sampler::follow::{Follow, Table};

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// The node the command is: a run (`nightly-7`) or a node in one (`nightly-7/build`).
    node: String,
    /// Units of work in all, when known (the command or another reporter advances them).
    #[arg(long, allow_negative_numbers = true)]
    total: Option<f64>,
    /// How often to sample the command's processes, like 1s or 500ms.
    #[arg(long, default_value = "5s", value_parser = interval)]
    every: Duration,
    /// Print nothing of its own, not even a warning that progress could not be recorded.
    #[arg(long, short)]
    quiet: bool,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<OsString>,
}

fn interval(text: &str) -> Result<Duration, String> {
    let every =
        humantime::parse_duration(text).map_err(|e| format!("'{text}' is not a duration ({e}); write 5s or 500ms"))?;
    if every < Duration::from_millis(100) {
        return Err(format!("'{text}' is too often; sample at most every 100ms"));
    }
    Ok(every)
}

/// Runs the command as the node; returns the exit status to leave with.
pub fn run(data: &DataDir, args: ExecArgs) -> CommandResult<i32> {
    let path = NodePath::parse(&args.node).map_err(|e| UsageError(e.to_string()))?;
    let program = &args.command[0];
    let shown: Vec<String> = args.command.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    let mut start = Update::new(Op::Start { total: args.total, weight: None })
        .with_metadata(json!({ "command": crate::text::line(&shown.join(" "), 256) }));
    start.message = Some(String::new());
    // Bad input is refused before anything runs.
    Node::new(path.clone(), 0).apply(start.clone(), 0).map_err(|e| UsageError(format!("{path}: {e}")))?;
    // Signals are caught from here on, so one sent while the start is reported waits for the command.
    let signals = Forwarder::install()?;
    let reporter = Reporter { data: data.clone(), path, quiet: args.quiet, warned: Default::default() };
    reporter.send(&start);

    become_subreaper();
    let child = match std::process::Command::new(program).args(&args.command[1..]).spawn() {
        Ok(child) => child,
        Err(e) => {
            let problem = format!("cannot run '{}': {e}", program.to_string_lossy());
            reporter.send_last(&Update::new(Op::Fail).with_message(problem.clone()));
            eprintln!("monitor: {problem}; check the command's name and that it is on PATH");
            // As `env` and the shells say it: 127 for a command not found, 126 for one that cannot run.
            return Ok(if e.kind() == std::io::ErrorKind::NotFound { 127 } else { 126 });
        }
    };
    let pid = child.id();
    signals.forward_to(pid);

    let (stop, stopped) = mpsc::channel::<()>();
    let sampling = {
        let reporter = reporter.clone();
        std::thread::spawn(move || sample(&reporter, pid, args.every, &stopped))
    };
    let status = wait_for(pid);
    signals.forward_to(0);
    let _ = stop.send(());
    let mut used = sampling.join().unwrap_or_default();
    used.merge_max(&children_usage());
    used.at_rest();

    let (op, message) = match (status.code(), status.signal()) {
        (Some(0), _) => (Op::Finish, String::new()),
        (Some(code), _) => (Op::Fail, format!("exit status {code}")),
        (None, Some(signal @ (libc::SIGINT | libc::SIGTERM | libc::SIGHUP))) => {
            (Op::Cancel, format!("stopped by {}", signal_name(signal)))
        }
        (None, signal) => (Op::Fail, format!("killed by {}", signal_name(signal.unwrap_or(0)))),
    };
    let mut end = Update::new(op).with_message(message);
    end.metadata = Some(json!({ "exit_code": status.code(), "signal": status.signal() }));
    end.resources = Some(used);
    reporter.send_last(&end);
    if let Some(signal @ (libc::SIGINT | libc::SIGTERM | libc::SIGHUP | libc::SIGPIPE | libc::SIGKILL)) =
        status.signal()
    {
        // Ended by the same signal, not an exit status: a shell running a script stops on
        // a Ctrl-C only when its command died of it.
        let _ = signal_hook::low_level::emulate_default_handler(signal);
    }
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Sends the tree's figures each time they change, until told to stop; the last figures.
fn sample(reporter: &Reporter, pid: u32, every: Duration, stop: &mpsc::Receiver<()>) -> Resources {
    let mut processes = ProcessSampler::new();
    let mut follow = Follow::born(pid, std::process::id());
    let mut sent = None;
    // The first look comes soon, so a short command has figures while it runs.
    let mut wait = every.min(Duration::from_secs(1));
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(wait) {
        wait = every;
        let table = processes.sample_counters();
        let now = follow.observe(&Table::new(&table), crate::sampler::now_ms());
        if sent != Some(now) {
            let mut update = Update::new(Op::Resources);
            update.resources = Some(now);
            reporter.send(&update);
            sent = Some(now);
        }
    }
    follow.resources()
}

/// Reaps children until `pid` ends (adopted ones too, which would stay zombies); its status.
fn wait_for(pid: u32) -> std::process::ExitStatus {
    loop {
        let mut status = 0;
        // SAFETY: plain call; `status` outlives it.
        let reaped = unsafe { libc::waitpid(-1, &mut status, 0) };
        if reaped == pid as i32 {
            return std::process::ExitStatus::from_raw(status);
        }
        if reaped < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            // No child left to wait for: cannot happen before `pid` is reaped.
            return std::process::ExitStatus::from_raw(1 << 8);
        }
    }
}

/// What the kernel counted for every process this one reaped, and those they reaped.
fn children_usage() -> Resources {
    // SAFETY: `usage` is a plain struct the call fills.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Resources {
        cpu_secs: secs(usage.ru_utime) + secs(usage.ru_stime),
        // The largest of the reaped processes' own peaks, in KiB.
        rss_peak_bytes: (usage.ru_maxrss.max(0) as u64) * 1024,
        // In 512-byte blocks, the unit of the kernel's I/O accounting.
        read_bytes: usage.ru_inblock.max(0) as u64 * 512,
        written_bytes: usage.ru_oublock.max(0) as u64 * 512,
        ..Default::default()
    }
}

/// Every process below `root`, by parent links as they stand now.
fn descendants(root: u32) -> Vec<u32> {
    let table = ProcessSampler::new().sample_counters();
    let mut out = Vec::new();
    let mut stack = vec![root];
    while let Some(parent) = stack.pop() {
        for p in table.iter().filter(|p| p.parent == Some(parent) && p.pid != root) {
            out.push(p.pid);
            stack.push(p.pid);
        }
    }
    out
}

#[cfg(target_os = "linux")]
fn become_subreaper() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes one integer argument.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

#[cfg(not(target_os = "linux"))]
fn become_subreaper() {}

fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        libc::SIGHUP => "SIGHUP",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGPIPE => "SIGPIPE",
        _ => return format!("signal {signal}"),
    };
    name.to_string()
}

/// Passes signals sent to this process on to the command.
struct Forwarder {
    /// The command's PID (0 before it starts and once it has been reaped), and the
    /// signals that came before it started.
    target: std::sync::Arc<std::sync::Mutex<(u32, Vec<i32>)>>,
}

impl Forwarder {
    /// Catches the signals from now on; those that come before the command starts are
    /// passed on once [`Forwarder::forward_to`] names it.
    fn install() -> std::io::Result<Forwarder> {
        use signal_hook::iterator::SignalsInfo;
        use signal_hook::iterator::exfiltrator::origin::WithOrigin;
        use signal_hook::low_level::siginfo::Cause;
        let target = std::sync::Arc::new(std::sync::Mutex::new((0, Vec::new())));
        let mut signals = SignalsInfo::<WithOrigin>::new([libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT])?;
        let to = target.clone();
        std::thread::spawn(move || {
            for origin in signals.forever() {
                // The terminal sends its signals to the command as well: passing them on would double them.
                if matches!(origin.cause, Cause::Kernel) && origin.signal != libc::SIGTERM {
                    continue;
                }
                let mut target = to.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                match target.0 {
                    0 => target.1.push(origin.signal),
                    pid => pass_on(pid, origin.signal),
                }
            }
        });
        Ok(Forwarder { target })
    }

    /// From now on signals go to `pid` (none with 0), and those that waited go now.
    fn forward_to(&self, pid: u32) {
        let mut target = self.target.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        target.0 = pid;
        if pid > 0 {
            for signal in std::mem::take(&mut target.1) {
                pass_on(pid, signal);
            }
        }
    }
}

/// `signal` to the command, then once to every other process below this one: a
/// shell's children, and daemons adopted here, stop with it.
fn pass_on(command: u32, signal: i32) {
    let others = descendants(std::process::id()).into_iter().filter(|pid| *pid != command);
    for pid in std::iter::once(command).chain(others) {
        // SAFETY: kill has no memory effects.
        unsafe { libc::kill(pid as i32, signal) };
    }
}

/// Reports to the node, anew each time; a failure is said once and the command goes on.
#[derive(Clone)]
struct Reporter {
    data: DataDir,
    path: NodePath,
    quiet: bool,
    warned: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// How long the last report keeps trying while another command holds the database.
const LAST_REPORT_TRIES: Duration = Duration::from_secs(10);

impl Reporter {
    fn try_send(&self, update: &Update) -> CommandResult<Node> {
        crate::client::connect(&self.data, None).and_then(|client| client.progress(&self.path, update))
    }

    /// The end of the command: worth waiting a moment for a database another command holds.
    fn send_last(&self, update: &Update) {
        let deadline = std::time::Instant::now() + LAST_REPORT_TRIES;
        loop {
            match self.try_send(update) {
                Err(e) if e.kind() == crate::error::ErrorKind::Unavailable && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                Ok(_) => return,
                Err(_) => return self.send(update),
            }
        }
    }

    fn send(&self, update: &Update) {
        let sent = self.try_send(update);
        if let Err(e) = sent
            && !self.quiet
            && !self.warned.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            eprintln!("monitor exec: cannot record {}: {e} (the command goes on)", self.path);
        }
    }
}
