//! The process table, sampled less often than the rest: refreshing it costs tens of
//! microseconds per process, so only the fields shown are read.

use std::collections::HashSet;
use std::ffi::OsString;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, Process, ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, System, Uid, UpdateKind, Users};

use super::rate::Rates;

/// One process at one sample.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    pub pid: u32,
    /// The parent's PID; `None` for the first process and where the platform does not say.
    #[serde(default)]
    pub parent: Option<u32>,
    pub name: String,
    /// The arguments joined by spaces, cut at [`COMMAND_CHARS`]; empty for kernel threads.
    pub command: String,
    /// The real user's name, or its numeric id when it has none.
    pub user: String,
    /// `running`, `sleeping`, `disk-sleep`, `stopped`, `zombie`, `idle`, ...
    pub status: String,
    /// CPU use since the previous process sample, in percent of one core.
    pub cpu_percent: f32,
    /// Resident memory.
    pub memory_bytes: u64,
    /// `None` on a process's first sample; 0 where its I/O is not readable (another
    /// user's process, without the privilege to read it).
    pub disk_read_bytes_per_second: Option<f64>,
    pub disk_write_bytes_per_second: Option<f64>,
    /// `None` where the platform does not say.
    pub threads: Option<u32>,
    /// Seconds since the Unix epoch.
    pub start_time_secs: u64,
    /// CPU time used since the process started, user and system, in milliseconds.
    #[serde(default)]
    pub cpu_ms: u64,
    /// Bytes read from and written to storage since the process started, with those of
    /// the children it has reaped (the kernel adds them); 0 where unreadable.
    #[serde(default)]
    pub read_bytes: u64,
    #[serde(default)]
    pub written_bytes: u64,
    /// When it started, in clock ticks since boot, read with the row (Linux; not
    /// shown): how a follower tells the process from an earlier one with its PID.
    #[serde(skip)]
    pub start_ticks: Option<u64>,
}

impl ProcessSample {
    /// The command cut to `max_chars`, or the name in brackets for a kernel thread, as `ps` shows it.
    pub fn display_command(&self, max_chars: usize) -> String {
        if self.command.is_empty() { format!("[{}]", self.name) } else { shorten(&self.command, max_chars) }
    }

    /// A Linux kernel thread: `kthreadd` (PID 2) and its children, which have no
    /// command line (in a container PID 2 is an ordinary process, with one). They
    /// use no memory of their own and crowd a process list.
    pub fn is_kernel_thread(&self) -> bool {
        cfg!(target_os = "linux") && self.command.is_empty() && (self.pid == KTHREADD || self.parent == Some(KTHREADD))
    }
}

/// The PID of the kernel's thread starter on Linux.
const KTHREADD: u32 = 2;

/// Enough of a command line to recognise it in a table or a filter.
pub const COMMAND_CHARS: usize = 256;

/// How a process table is ordered: most CPU or memory first, or by PID or name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SortKey {
    Cpu,
    Mem,
    Pid,
    Name,
}

impl SortKey {
    pub const ALL: [SortKey; 4] = [SortKey::Cpu, SortKey::Mem, SortKey::Pid, SortKey::Name];

    pub fn as_str(self) -> &'static str {
        match self {
            SortKey::Cpu => "cpu",
            SortKey::Mem => "mem",
            SortKey::Pid => "pid",
            SortKey::Name => "name",
        }
    }
}

/// Largest first for CPU and memory; ties, and PID order, by PID.
pub fn sort(processes: &mut [ProcessSample], key: SortKey) {
    match key {
        SortKey::Cpu => processes.sort_by(|a, b| b.cpu_percent.total_cmp(&a.cpu_percent).then(a.pid.cmp(&b.pid))),
        SortKey::Mem => processes.sort_by(|a, b| b.memory_bytes.cmp(&a.memory_bytes).then(a.pid.cmp(&b.pid))),
        SortKey::Pid => processes.sort_by_key(|p| p.pid),
        SortKey::Name => {
            processes.sort_by(|a, b| a.name.to_lowercase().cmp(&b.name.to_lowercase()).then(a.pid.cmp(&b.pid)))
        }
    }
}

/// Which processes to keep: a name or command containing some text, or a user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessFilter {
    /// Case-insensitive substring of the name or the command.
    pub name: Option<String>,
    /// A user name or numeric id, exactly.
    pub user: Option<String>,
}

impl ProcessFilter {
    /// `user:NAME` selects by user; any other text by name or command.
    pub fn parse(text: &str) -> ProcessFilter {
        match text.strip_prefix("user:") {
            Some(user) => ProcessFilter { name: None, user: Some(user.to_string()) },
            None => ProcessFilter { name: Some(text.to_string()), user: None },
        }
    }

    pub fn matches(&self, p: &ProcessSample) -> bool {
        let name_ok = self.name.as_deref().is_none_or(|text| {
            let text = text.to_lowercase();
            p.name.to_lowercase().contains(&text) || p.command.to_lowercase().contains(&text)
        });
        name_ok && self.user.as_deref().is_none_or(|user| p.user == user)
    }

    pub fn apply(&self, processes: Vec<ProcessSample>) -> Vec<ProcessSample> {
        processes.into_iter().filter(|p| self.matches(p)).collect()
    }
}

/// Identifies a process across samples: a PID reused by a new process starts over.
type Identity = (u32, u64);

pub struct ProcessSampler {
    system: System,
    users: Users,
    /// Ids with no user entry even after reading the list again: no reason to read it for them.
    nameless: HashSet<Uid>,
    /// CPU milliseconds, bytes read, bytes written. CPU shares come from these rather than
    /// from sysinfo, whose share stays 0 after a refresh at which a process had used no CPU
    /// time yet, and is measured against the whole machine's CPU time between refreshes.
    counters: Rates<Identity, 3>,
}

impl Default for ProcessSampler {
    fn default() -> ProcessSampler {
        ProcessSampler::new()
    }
}

impl ProcessSampler {
    pub fn new() -> ProcessSampler {
        ProcessSampler {
            system: System::new(),
            users: Users::new(),
            nameless: HashSet::new(),
            counters: Rates::default(),
        }
    }

    /// Every process, in PID order. CPU shares and I/O rates need a previous sample:
    /// on the first they are 0 and `None`.
    pub fn sample(&mut self) -> Vec<ProcessSample> {
        let kind = ProcessRefreshKind::nothing()
            .without_tasks()
            .with_cpu()
            .with_memory()
            .with_disk_usage()
            .with_user(UpdateKind::OnlyIfNotSet)
            .with_cmd(UpdateKind::OnlyIfNotSet);
        self.system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        let at = Instant::now();

        let mut processes: Vec<&Process> = self.system.processes().values().collect();
        processes.sort_by_key(|p| p.pid());
        let unknown = |users: &Users, uid: &Uid| users.get_user_by_id(uid).is_none();
        let uids: HashSet<&Uid> = processes.iter().filter_map(|p| p.user_id()).collect();
        if uids.iter().any(|uid| unknown(&self.users, uid) && !self.nameless.contains(*uid)) {
            // The first look, or a user added since the last: read the list again, once.
            self.users.refresh();
            self.nameless = uids.into_iter().filter(|uid| unknown(&self.users, uid)).cloned().collect();
        }
        let readings = processes.iter().map(|p| {
            let usage = p.disk_usage();
            let counters = [p.accumulated_cpu_time(), usage.total_read_bytes, usage.total_written_bytes];
            ((p.pid().as_u32(), p.start_time()), counters)
        });
        let rates = self.counters.observe(readings, at);
        processes
            .iter()
            .zip(rates)
            .map(|(p, (_, rates))| (p, rates, stat(p.pid().as_u32())))
            .map(|(p, rates, stat)| ProcessSample {
                pid: p.pid().as_u32(),
                parent: p.parent().map(|pid| pid.as_u32()),
                name: p.name().to_string_lossy().into_owned(),
                command: command_line(p.cmd(), COMMAND_CHARS),
                user: p.user_id().map(|uid| self.user_name(uid)).unwrap_or_default(),
                status: status_word(p.status()).to_string(),
                // CPU milliseconds per second, over ten: percent of one core.
                cpu_percent: rates.map_or(0.0, |r| r[0] / 10.0) as f32,
                memory_bytes: p.memory(),
                disk_read_bytes_per_second: rates.map(|r| r[1]),
                disk_write_bytes_per_second: rates.map(|r| r[2]),
                threads: stat.as_deref().and_then(threads_from_stat),
                start_time_secs: p.start_time(),
                start_ticks: stat.as_deref().and_then(start_ticks_from_stat),
                ..followed(p)
            })
            .collect()
    }

    /// Every process with only what following a process tree needs: parent,
    /// start time, memory and the running counters. Cheaper than [`Self::sample`]:
    /// no command line, user, thread count or rates.
    pub fn sample_counters(&mut self) -> Vec<ProcessSample> {
        let kind = ProcessRefreshKind::nothing().without_tasks().with_cpu().with_memory().with_disk_usage();
        self.system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        self.system.processes().values().map(followed).collect()
    }

    fn user_name(&self, uid: &Uid) -> String {
        match self.users.get_user_by_id(uid) {
            Some(user) => user.name().to_string(),
            None => uid_text(uid),
        }
    }
}

/// What following a process tree needs of a process: who it is, its parent, its
/// memory and its running counters; the rest left default.
fn followed(p: &Process) -> ProcessSample {
    let usage = p.disk_usage();
    ProcessSample {
        pid: p.pid().as_u32(),
        parent: p.parent().map(|pid| pid.as_u32()),
        memory_bytes: p.memory(),
        start_time_secs: p.start_time(),
        cpu_ms: p.accumulated_cpu_time(),
        read_bytes: usage.total_read_bytes,
        written_bytes: usage.total_written_bytes,
        ..Default::default()
    }
}

/// The process `pid` as a follower of it sees it, with the real user's id; `None` when
/// there is no such process.
pub fn one(pid: u32) -> Option<(ProcessSample, Option<u32>)> {
    let mut system = System::new();
    let kind = ProcessRefreshKind::nothing().with_cpu().with_memory().with_disk_usage().with_user(UpdateKind::Always);
    let pid = Pid::from_u32(pid);
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, kind);
    let p = system.process(pid)?;
    if p.status() == ProcessStatus::Zombie || p.thread_kind().is_some() {
        return None;
    }
    let sample = ProcessSample { start_ticks: start_ticks(pid.as_u32()), ..followed(p) };
    Some((sample, p.user_id().map(|uid| **uid)))
}

#[cfg(unix)]
fn uid_text(uid: &Uid) -> String {
    (**uid).to_string()
}

#[cfg(not(unix))]
fn uid_text(uid: &Uid) -> String {
    format!("{uid:?}")
}

/// The arguments joined by spaces, cut to at most `max_chars` characters (the last an ellipsis).
pub fn command_line(args: &[OsString], max_chars: usize) -> String {
    shorten(&args.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" "), max_chars)
}

/// `text` cut to at most `max_chars` characters, the last an ellipsis when cut.
fn shorten(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn status_word(status: ProcessStatus) -> &'static str {
    match status {
        ProcessStatus::Run => "running",
        ProcessStatus::Sleep => "sleeping",
        ProcessStatus::Idle => "idle",
        ProcessStatus::UninterruptibleDiskSleep => "disk-sleep",
        ProcessStatus::Stop => "stopped",
        ProcessStatus::Tracing => "tracing",
        ProcessStatus::Zombie => "zombie",
        ProcessStatus::Dead => "dead",
        ProcessStatus::Wakekill => "wakekill",
        ProcessStatus::Waking => "waking",
        ProcessStatus::Parked => "parked",
        ProcessStatus::LockBlocked => "lock-blocked",
        ProcessStatus::Unknown(_) => "unknown",
    }
}

/// The `/proc/PID/stat` line of process `pid`.
fn stat(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()
}

/// When process `pid` started, in clock ticks since boot ([`start_ticks_from_stat`]).
pub(super) fn start_ticks(pid: u32) -> Option<u64> {
    start_ticks_from_stat(&stat(pid)?)
}

/// The thread count, field 20 of a `/proc/PID/stat` line: sysinfo would list
/// every thread as a process of its own to count them, which costs far more.
fn threads_from_stat(stat: &str) -> Option<u32> {
    stat_field(stat, 20)?.parse().ok()
}

/// Field 22 of a `/proc/PID/stat` line: the start in clock ticks since boot,
/// which (unlike a start in seconds since the epoch) no setting of the clock moves.
fn start_ticks_from_stat(stat: &str) -> Option<u64> {
    stat_field(stat, 22)?.parse().ok()
}

/// Field `n` (from 1) of a `/proc/PID/stat` line. The name (field 2) may hold
/// spaces and parentheses, so fields are counted from the last `)`.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(n.checked_sub(3)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(name: &str, command: &str, user: &str) -> ProcessSample {
        ProcessSample { name: name.into(), command: command.into(), user: user.into(), ..Default::default() }
    }

    #[test]
    fn a_command_line_is_joined_and_cut_on_a_character() {
        let args: Vec<OsString> = ["python3", "train.py", "--epochs", "10"].map(OsString::from).to_vec();
        assert_eq!(command_line(&args, 100), "python3 train.py --epochs 10");
        assert_eq!(command_line(&args, 10), "python3 t…");
        assert_eq!(command_line(&args, 10).chars().count(), 10);
        assert_eq!(command_line(&[OsString::from("ééééé")], 3), "éé…");
        assert_eq!(command_line(&[], 10), "");
    }

    #[test]
    fn a_kernel_thread_shows_its_name_as_its_command() {
        let mut p = process("kthreadd", "", "root");
        assert_eq!(p.display_command(10), "[kthreadd]");
        p.command = "/usr/bin/python3 -u train.py".into();
        assert_eq!(p.display_command(10), "/usr/bin/…");
    }

    #[test]
    fn threads_are_read_after_the_name_whatever_it_holds() {
        let stat = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 2000 0 0 0 10 5 0 0 20 0 7 0 12345 1000000 500";
        assert_eq!(threads_from_stat(stat), Some(7));
        assert_eq!(start_ticks_from_stat(stat), Some(12345));
        assert_eq!(threads_from_stat("1 (init) S 1"), None);
        assert_eq!(threads_from_stat("garbage"), None);
    }

    #[test]
    fn filters_match_a_name_or_command_substring_or_a_user() {
        let p = process("python3", "python3 /srv/Train.py", "alice");
        assert!(ProcessFilter::parse("PYTH").matches(&p));
        assert!(ProcessFilter::parse("train").matches(&p), "the command counts too");
        assert!(!ProcessFilter::parse("rsync").matches(&p));
        assert!(ProcessFilter::parse("user:alice").matches(&p));
        assert!(!ProcessFilter::parse("user:ali").matches(&p), "users match exactly");
        assert!(ProcessFilter::default().matches(&p));
        let both = ProcessFilter { name: Some("python".into()), user: Some("bob".into()) };
        assert!(!both.matches(&p));
        let kept = ProcessFilter::parse("user:bob").apply(vec![p.clone(), process("sh", "sh", "bob")]);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].name, "sh");
    }

    #[test]
    fn the_process_table_holds_this_process_with_its_details() {
        let mut sampler = ProcessSampler::new();
        sampler.sample();
        let all = sampler.sample();
        assert!(all.windows(2).all(|w| w[0].pid < w[1].pid), "in PID order");
        let me = all.iter().find(|p| p.pid == std::process::id()).expect("this process is listed");
        assert!(me.memory_bytes > 0 && !me.command.is_empty() && !me.user.is_empty(), "{me:?}");
        assert!(me.start_time_secs > 1_600_000_000, "{me:?}");
        assert!(!me.status.is_empty() && me.status != "unknown", "{me:?}");
        if cfg!(target_os = "linux") {
            assert!(me.threads.is_some_and(|t| t >= 1), "{me:?}");
            let ticks = start_ticks(me.pid);
            assert!(ticks.is_some() && me.start_ticks == ticks, "the row's start in ticks: {me:?}");
            assert!(me.disk_read_bytes_per_second.is_some_and(|r| r >= 0.0), "its own I/O is readable: {me:?}");
        }
    }
}
