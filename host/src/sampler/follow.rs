//! Following one process and every process it starts, to say what the tree used.
//!
//! A process is a member of the tree if it is the root or its parent is a member
//! when a sample sees it; once a member, it stays one until it ends, even when it
//! leaves the process group or its parent ends and it is adopted elsewhere (a
//! daemon that calls `setsid` and forks again). A process is known by its PID and
//! start time, so a PID the kernel gives to a new process is never taken for the
//! old one: a stranger's figures are never counted.
//!
//! Each member's counters (CPU time, bytes read and written) count from a
//! baseline: 0 for a process born after following began, its counters when
//! first seen for one that was already running (only what it does from then on
//! is the node's). When a member ends, what it used up to its last sample is
//! kept. Between two samples a process can start and end unseen: the kernel's
//! own account of the processes a command waited for fills that in where one
//! is at hand (`monitor exec`), see [`Resources::merge_max`].

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::ProcessSample;
use super::processes::start_ticks;
use crate::progress::Resources;

/// A process across samples: its PID and start time (seconds since the epoch).
pub type Identity = (u32, u64);

/// How far apart two readings of one process's start in seconds may be, for an
/// attachment recorded without its start in ticks. Those times are reckoned
/// from the boot time the kernel derives from the wall clock, which NTP moves.
const START_SLACK_SECS: u64 = 60;

/// How far the wall clock may have moved between an attachment recorded with
/// its start in ticks and the host's sample: a day.
const BOOT_SLACK_SECS: u64 = 86_400;

/// This boot's random identity (`/proc/sys/kernel/random/boot_id`): ticks since
/// boot name a process only together with the boot they count from.
pub(super) fn boot_id() -> Option<u128> {
    static ID: std::sync::OnceLock<Option<u128>> = std::sync::OnceLock::new();
    *ID.get_or_init(|| {
        let text = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        u128::from_str_radix(&text.trim().replace('-', ""), 16).ok()
    })
}

/// CPU milliseconds, bytes read, bytes written.
type Counters = [u64; 3];

fn counters(p: &ProcessSample) -> Counters {
    [p.cpu_ms, p.read_bytes, p.written_bytes]
}

/// What a node needs to follow a process again after a restart of the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Attach {
    pub pid: u32,
    pub started_secs: u64,
    /// Its start in ticks since boot ([`start_ticks`]); none in attachments
    /// recorded before it was (their start in seconds is compared, with a slack).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_ticks: Option<u64>,
    /// The boot those ticks count from ([`boot_id`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<u128>,
    /// The root's counters when the node attached it: only what comes after counts.
    pub baseline: Counters,
    /// What the node held when it attached the process: the process adds to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Resources>,
}

impl Attach {
    /// Checks that `pid` is a running process of the user `uid` and notes where its
    /// counters stand; the refusal names the PID and what to do.
    pub fn check(pid: u32, uid: u32) -> Result<Attach, String> {
        let gone = || format!("pid {pid} is not a running process; pass the PID of a process that is running");
        if pid == 0 {
            return Err(gone());
        }
        if pid == 1 || pid == std::process::id() {
            let what = if pid == 1 { "the system's first process" } else { "the host itself" };
            return Err(format!(
                "pid {pid} is {what}: following it would count other work; pass the PID of the work's own process"
            ));
        }
        let (process, owner) = super::processes::one(pid).ok_or_else(gone)?;
        if owner != Some(uid) {
            let owner = owner.map_or("unknown".into(), |o| o.to_string());
            return Err(format!(
                "pid {pid} belongs to user id {owner}, not {uid} as the host does; only the host's user's processes are followed"
            ));
        }
        Ok(Attach {
            pid,
            started_secs: process.start_time_secs,
            started_ticks: process.start_ticks,
            boot: boot_id(),
            baseline: counters(&process),
            before: None,
        })
    }
}

struct Member {
    baseline: Counters,
    last: Counters,
    /// The parent's PID at the last sample: who reaps it when it ends.
    parent: Option<u32>,
}

/// A process table indexed once per sample, for every tree followed in it.
pub struct Table<'a> {
    by_pid: HashMap<u32, &'a ProcessSample>,
    children: HashMap<u32, Vec<&'a ProcessSample>>,
}

impl<'a> Table<'a> {
    pub fn new(processes: &'a [ProcessSample]) -> Table<'a> {
        let mut children: HashMap<u32, Vec<&ProcessSample>> = HashMap::new();
        for p in processes {
            if let Some(parent) = p.parent {
                children.entry(parent).or_default().push(p);
            }
        }
        Table { by_pid: processes.iter().map(|p| (p.pid, p)).collect(), children }
    }

    fn get(&self, (pid, start): Identity) -> Option<&'a ProcessSample> {
        self.by_pid.get(&pid).copied().filter(|p| p.start_time_secs == start)
    }

    fn children_of(&self, pid: u32) -> impl Iterator<Item = &'a ProcessSample> + '_ {
        self.children.get(&pid).into_iter().flatten().copied()
    }
}

/// Where the root's counting starts.
#[derive(Clone, Copy, PartialEq)]
enum Since {
    /// The root was just started by the follower: everything in the tree counts,
    /// whatever the root's start time (the first sample tells it).
    Birth,
    /// At the attachment's baseline; processes already below it count from their first sample.
    Attached,
}

/// One node's process tree, followed sample by sample.
pub struct Follow {
    root: Identity,
    /// The root's start in ticks since boot, when the attachment recorded it.
    root_ticks: Option<u64>,
    /// Whether the attachment's ticks count from this boot: known when both boots are.
    this_boot: Option<bool>,
    root_baseline: Counters,
    since: Since,
    members: HashMap<Identity, Member>,
    /// Used by members that have ended, from their baselines to their last samples.
    ended: Counters,
    /// What the node had before this follow began (an earlier process, a restart).
    before: Resources,
    resources: Resources,
    /// The CPU total and time of the previous sample, for the CPU share between two.
    previous: Option<(u64, u64)>,
    /// Samples taken: a root absent from the first one has ended already.
    samples: u64,
    /// A process never counted, nor anything below it: the host, when it runs below the root.
    skip: Option<u32>,
    /// A process whose children are all members: `monitor exec`, which adopts the tree's orphans.
    adopter: Option<u32>,
}

impl Follow {
    /// A tree to follow from `attach`'s process, counting from its baseline for it
    /// and from their first sample for processes already running below it, added to
    /// what the node held when it attached it.
    pub fn new(attach: &Attach) -> Follow {
        let before = attach.before.unwrap_or_default();
        Follow {
            root: (attach.pid, attach.started_secs),
            root_ticks: attach.started_ticks,
            this_boot: attach.boot.zip(boot_id()).map(|(then, now)| then == now),
            root_baseline: attach.baseline,
            since: Since::Attached,
            members: HashMap::new(),
            ended: [0; 3],
            before,
            resources: before,
            previous: None,
            samples: 0,
            skip: None,
            adopter: None,
        }
    }

    /// Never below `figures` (what the node holds, after a restart of the host: the
    /// processes that were below the root then count from their first sample now).
    pub fn at_least(mut self, figures: Option<Resources>) -> Follow {
        if let Some(figures) = figures {
            self.resources.merge_max(&figures);
        }
        self
    }

    /// A tree that starts with `pid`, just started by `adopter` (this process), which
    /// adopts its orphans: everything they use counts.
    pub fn born(pid: u32, adopter: u32) -> Follow {
        let attach = Attach { pid, started_secs: 0, ..Default::default() };
        Follow { since: Since::Birth, adopter: Some(adopter), ..Follow::new(&attach) }
    }

    /// Leaves `pid` and everything below it out of the tree.
    pub fn skipping(mut self, pid: u32) -> Follow {
        self.skip = Some(pid);
        self
    }

    /// The tree's figures after one more sample of every process (`table`), taken at `at_ms`.
    ///
    /// CPU time is each process's own, so an ended member's is kept. Bytes read and
    /// written are not: the kernel adds a child's to its parent's when the parent
    /// reaps it, so an ended member whose parent is a member is counted in the
    /// parent's from then on, and only one that something else reaped is kept.
    pub fn observe(&mut self, table: &Table, at_ms: u64) -> Resources {
        let first_look = self.samples == 0;
        if first_look {
            let root = table.by_pid.get(&self.root.0).filter(|p| self.is_root(p));
            if root.is_none() && self.root_alive(table) {
                // A table sampled before the process started (without it, or with an
                // earlier process of its PID) and observed after it was attached:
                // only a later table can say whether it is there.
                return self.resources;
            }
            if let Some(root) = root {
                self.root.1 = root.start_time_secs;
                let baseline = self.root_baseline;
                self.members.insert(self.root, Member { baseline, last: baseline, parent: root.parent });
            }
        }
        self.samples += 1;
        // Members still there, orphans the adopter took in, then everything below them.
        let mut stack: Vec<&ProcessSample> = self.members.keys().filter_map(|id| table.get(*id)).collect();
        if let Some(adopter) = self.adopter {
            stack.extend(table.children_of(adopter));
        }
        let mut live: HashMap<Identity, &ProcessSample> = HashMap::new();
        while let Some(p) = stack.pop() {
            let id = (p.pid, p.start_time_secs);
            if Some(p.pid) == self.skip || live.insert(id, p).is_some() {
                continue;
            }
            stack.extend(table.children_of(p.pid));
        }
        self.end_members(&live);
        let mut used = self.ended;
        let mut rss = 0u64;
        for (id, p) in &live {
            let now = counters(p);
            let counts_all = !first_look || self.since == Since::Birth;
            let member = self.members.entry(*id).or_insert_with(|| Member {
                // Already running when following began: only what it does from now on counts.
                baseline: if counts_all { [0; 3] } else { now },
                last: now,
                parent: p.parent,
            });
            (member.last, member.parent) = (now, p.parent);
            for (sum, (value, base)) in used.iter_mut().zip(now.iter().zip(member.baseline)) {
                *sum = sum.saturating_add(value.saturating_sub(base));
            }
            rss = rss.saturating_add(p.memory_bytes);
        }
        let r = &mut self.resources;
        r.cpu_secs = r.cpu_secs.max(self.before.cpu_secs + used[0] as f64 / 1000.0);
        r.read_bytes = r.read_bytes.max(self.before.read_bytes.saturating_add(used[1]));
        r.written_bytes = r.written_bytes.max(self.before.written_bytes.saturating_add(used[2]));
        r.rss_peak_bytes = r.rss_peak_bytes.max(rss);
        r.processes = u32::try_from(live.len()).unwrap_or(u32::MAX);
        r.rss_bytes = rss;
        r.cpu_percent = 0.0;
        if let Some((cpu_before, at_before)) = self.previous
            && at_ms > at_before
            && !live.is_empty()
        {
            let share = used[0].saturating_sub(cpu_before) as f64 / (at_ms - at_before) as f64 * 100.0;
            r.cpu_percent = share;
            r.cpu_peak_percent = r.cpu_peak_percent.max(share);
        }
        self.previous = Some((used[0], at_ms));
        self.resources
    }

    /// Members not among `live` have ended: their CPU stays counted; their bytes
    /// too, unless a member reaped them and so holds them now.
    fn end_members(&mut self, live: &HashMap<Identity, &ProcessSample>) {
        let gone: Vec<Identity> = self.members.keys().filter(|id| !live.contains_key(*id)).copied().collect();
        for id in gone {
            let member = self.members.remove(&id).expect("listed above");
            self.ended[0] = self.ended[0].saturating_add(member.last[0].saturating_sub(member.baseline[0]));
            let reaper = member.parent.and_then(|pid| live.iter().find(|((p, _), _)| *p == pid).map(|(id, _)| *id));
            match reaper.and_then(|id| self.members.get_mut(&id)) {
                // Its bytes arrive in the reaper's counters, whole: what it had before counting began is not ours.
                Some(reaper) => {
                    for i in 1..3 {
                        reaper.baseline[i] = reaper.baseline[i].saturating_add(member.baseline[i]);
                    }
                }
                None => {
                    for i in 1..3 {
                        self.ended[i] = self.ended[i].saturating_add(member.last[i].saturating_sub(member.baseline[i]));
                    }
                }
            }
        }
    }

    /// Whether `p`, which has the root's PID, is the root (at the first look).
    fn is_root(&self, p: &ProcessSample) -> bool {
        match (self.since, self.root_ticks) {
            (Since::Birth, _) => true,
            // Ticks count from the boot: one whose boot is unknown (not recorded,
            // or unreadable now) is taken for this one when the seconds are within a day.
            (Since::Attached, Some(ticks)) => {
                p.start_ticks == Some(ticks)
                    && self.this_boot.unwrap_or(p.start_time_secs.abs_diff(self.root.1) <= BOOT_SLACK_SECS)
            }
            (Since::Attached, None) => p.start_time_secs.abs_diff(self.root.1) <= START_SLACK_SECS,
        }
    }

    /// Whether the attached root, not found in `table`, runs now: its start in ticks
    /// says so, in this boot. With the boot unknown (not recorded, or unreadable
    /// now) only for a table without its PID: in one with it, [`Self::is_root`] decides.
    fn root_alive(&self, table: &Table) -> bool {
        let alive = || self.root_ticks.is_some() && start_ticks(self.root.0) == self.root_ticks;
        match self.this_boot {
            Some(same) => same && alive(),
            None => !table.by_pid.contains_key(&self.root.0) && alive(),
        }
    }

    /// Whether the tree has ended: every process of it has, or the root was gone at the first sample.
    pub fn is_over(&self) -> bool {
        self.samples > 0 && self.members.is_empty()
    }

    pub fn resources(&self) -> Resources {
        self.resources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pid: u32, parent: u32, start: u64, cpu_ms: u64, rss: u64) -> ProcessSample {
        ProcessSample {
            pid,
            parent: Some(parent),
            start_time_secs: start,
            cpu_ms,
            memory_bytes: rss,
            read_bytes: cpu_ms * 10,
            ..Default::default()
        }
    }

    #[test]
    fn the_tree_is_its_root_and_every_descendant_even_adopted_ones() {
        let mut f = Follow::born(100, 9_999);
        let strangers = [p(1, 0, 1, 9_000, 1), p(50, 1, 2, 9_000, 1)];
        let mut table = vec![p(100, 50, 10, 1_000, 10), p(101, 100, 11, 500, 20), p(102, 101, 12, 250, 30)];
        table.extend(strangers.clone());
        let r = f.observe(&Table::new(&table), 1_000);
        assert_eq!(r.cpu_secs, 1.75);
        assert_eq!(r.rss_peak_bytes, 60);
        assert_eq!(r.processes, 3);
        // 101 ends; 102 (its child, after setsid) is adopted by init and keeps going.
        // 100 reaped 101: the kernel added 101's 5,000 bytes read to 100's.
        let mut reaper = p(100, 50, 10, 1_500, 10);
        reaper.read_bytes += 5_000;
        let mut table = vec![reaper, p(102, 1, 12, 1_250, 30)];
        table.extend(strangers);
        let r = f.observe(&Table::new(&table), 2_000);
        assert_eq!(r.cpu_secs, 1.5 + 0.5 + 1.25, "the ended child's last figures stay counted");
        assert_eq!(r.processes, 2);
        assert!((r.cpu_peak_percent - 150.0).abs() < 1e-9, "1.5 s of CPU in 1.0 s: {}", r.cpu_peak_percent);
        assert_eq!(r.read_bytes, 32_500, "101's bytes once, through its reaper");
        assert!(!f.is_over());
        let r = f.observe(&Table::new(&[p(1, 0, 1, 9_000, 1)]), 3_000);
        assert_eq!(r.cpu_secs, 3.25);
        assert_eq!(r.read_bytes, 32_500, "reaped by init: the last figures stay");
        assert_eq!(r.processes, 0);
        assert!(f.is_over());
    }

    #[test]
    fn a_reused_pid_is_a_stranger() {
        let attach = Attach { pid: 100, started_secs: 10, baseline: [400, 0, 0], ..Default::default() };
        let mut f = Follow::new(&attach);
        let r = f.observe(&Table::new(&[p(100, 1, 10, 1_000, 10), p(101, 100, 11, 300, 5)]), 1_000);
        assert_eq!(r.cpu_secs, 0.6, "from the root's baseline; the child running before counts from now");
        // The root ends and its PID goes to a new process of someone else.
        let r = f.observe(&Table::new(&[p(100, 1, 99, 50_000, 1 << 30), p(101, 1, 11, 800, 5)]), 2_000);
        assert_eq!(r.cpu_secs, 0.6 + 0.5, "the new 100 is not the root; the old child still is a member");
        assert_eq!(r.rss_peak_bytes, 15);
    }

    /// `attach`'s process as the host's table reads it, with its start in ticks.
    fn row(attach: &Attach, start: u64, cpu_ms: u64, rss: u64) -> ProcessSample {
        ProcessSample { start_ticks: attach.started_ticks, ..p(attach.pid, 1, start, cpu_ms, rss) }
    }

    #[test]
    fn a_process_is_known_by_its_start_in_ticks_since_boot() {
        let child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let uid = rustix::process::getuid().as_raw();
        let attach = Attach::check(child.id(), uid).unwrap();
        assert!(attach.started_ticks.is_some() && attach.boot.is_some(), "{attach:?}");
        let stored: Attach = serde_json::from_str(&serde_json::to_string(&attach).unwrap()).unwrap();
        assert_eq!(stored, attach, "stored and read back whole, the boot's 128 bits included");
        let real = attach.started_secs;
        // Whether following `attach` finds the child in a sample that reads its start as it is.
        let seen = row(&attach, real, 1_000, 10);
        let found = |attach: Attach| {
            let mut follow = Follow::new(&attach);
            follow.observe(&Table::new(std::slice::from_ref(&seen)), 1_000);
            !follow.is_over()
        };
        assert!(found(attach), "the root found by its ticks");
        assert!(found(Attach { started_secs: real + 3_600, ..attach }), "found though the clock moved an hour");
        let ticks = attach.started_ticks.map(|t| t + 1);
        assert!(!found(Attach { started_ticks: ticks, ..attach }), "other ticks: another process");
        let other_boot = attach.boot.map(|b| b ^ 1);
        assert!(!found(Attach { boot: other_boot, ..attach }), "the same ticks in another boot: another process");
        let later = real + 2 * 86_400;
        assert!(found(Attach { started_secs: later, ..attach }), "in this boot, however the clock moved");
        let unknown = Attach { started_secs: later, boot: None, ..attach };
        assert!(!found(unknown), "recorded without its boot, the same ticks two days apart: another boot");
        kill(child);
        assert_eq!(start_ticks(u32::MAX), None);
    }

    #[test]
    fn a_table_older_than_the_attachment_waits_for_the_next() {
        let child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let attach = Attach::check(child.id(), rustix::process::getuid().as_raw()).unwrap();
        let mut follow = Follow::new(&attach);
        // Sampled before the child started: without it, though it runs.
        follow.observe(&Table::new(&[p(1, 0, 1, 0, 0)]), 1_000);
        assert!(!follow.is_over(), "a running root is not over for a table that missed it");
        let r = follow.observe(&Table::new(&[row(&attach, attach.started_secs, 1_500, 10)]), 2_000);
        assert_eq!((r.processes, r.rss_bytes), (1, 10), "found in the next table");
        // A row of an earlier process that had its PID: not the root, which runs.
        let mut stale = Follow::new(&attach);
        let earlier =
            ProcessSample { start_ticks: attach.started_ticks.map(|t| t - 1), ..p(child.id(), 1, 1, 9_000, 1) };
        stale.observe(&Table::new(&[earlier]), 1_000);
        assert!(!stale.is_over(), "an earlier holder of the PID is not the root");
        let r = stale.observe(&Table::new(&[row(&attach, attach.started_secs, 1_500, 10)]), 2_000);
        assert_eq!(r.processes, 1, "the root found in the next table");
        // A row whose ticks could not be read (its stat read failed): not taken for it.
        let mut unread = Follow::new(&attach);
        unread.observe(&Table::new(&[ProcessSample { start_ticks: None, ..row(&attach, 1, 9_000, 1) }]), 1_000);
        assert!(!unread.is_over(), "a running root waits for a row that says it is");
        let r = unread.observe(&Table::new(&[row(&attach, attach.started_secs, 1_500, 10)]), 2_000);
        assert_eq!(r.processes, 1, "the root found in the next table");
        kill(child);
        let mut gone = Follow::new(&attach);
        gone.observe(&Table::new(&[p(1, 0, 1, 0, 0)]), 3_000);
        assert!(gone.is_over(), "ended before the first table: over");
    }

    #[test]
    fn attachments_stored_by_earlier_versions_are_read_and_followed() {
        let old: Attach = serde_json::from_str(r#"{"pid":7,"started_secs":3,"baseline":[1,2,3]}"#).unwrap();
        assert_eq!((old.started_ticks, old.boot, old.before), (None, None, None));
        let mut f = Follow::new(&old);
        f.observe(&Table::new(&[p(7, 1, 3 + 30, 2_001, 1)]), 1_000);
        assert_eq!(f.resources().cpu_secs, 2.0, "seconds alone: the same process within a minute");
        let json = r#"{"pid":7,"started_secs":3,"started_ticks":40,"baseline":[0,0,0]}"#;
        let ticks_only: Attach = serde_json::from_str(json).unwrap();
        let mut f = Follow::new(&ticks_only);
        f.observe(&Table::new(&[row(&ticks_only, 3 + 3_600, 2_000, 1)]), 1_000);
        assert!(!f.is_over(), "ticks without their boot: the same process within a day");
        assert_eq!(f.resources().cpu_secs, 2.0);
    }

    #[test]
    fn a_root_whose_start_reads_a_little_apart_is_still_the_root() {
        // The boot time moved by a second between the attachment and the host's sample.
        let attach = Attach { pid: 100, started_secs: 10, baseline: [400, 0, 0], ..Default::default() };
        let mut f = Follow::new(&attach);
        assert_eq!(f.observe(&Table::new(&[p(100, 1, 11, 1_000, 10)]), 1_000).cpu_secs, 0.6);
        assert_eq!(f.observe(&Table::new(&[p(100, 1, 11, 2_000, 10)]), 2_000).cpu_secs, 1.6, "followed from then on");
        let mut late = Follow::new(&attach);
        late.observe(&Table::new(&[p(100, 1, 10 + 3_600, 1_000, 10)]), 1_000);
        assert!(late.is_over(), "a process started an hour later is another");
    }

    #[test]
    fn a_follow_adds_to_what_the_node_had_before() {
        let before = Some(Resources { cpu_secs: 10.0, rss_peak_bytes: 500, ..Default::default() });
        let mut f = Follow::new(&Attach { pid: 7, started_secs: 3, before, ..Default::default() });
        let r = f.observe(&Table::new(&[p(7, 1, 3, 2_000, 100)]), 1_000);
        assert_eq!((r.cpu_secs, r.rss_peak_bytes), (12.0, 500));
    }

    #[test]
    fn after_a_restart_the_figures_never_go_back() {
        // Attached at 1 s of CPU with nothing before; the host had counted 4 s (a child, now gone) when it restarted.
        let attach = Attach { pid: 7, started_secs: 3, baseline: [1_000, 0, 0], ..Default::default() };
        let held = Some(Resources { cpu_secs: 4.0, ..Default::default() });
        let mut f = Follow::new(&attach).at_least(held);
        assert_eq!(f.observe(&Table::new(&[p(7, 1, 3, 3_000, 100)]), 1_000).cpu_secs, 4.0);
        assert_eq!(
            f.observe(&Table::new(&[p(7, 1, 3, 6_000, 100)]), 2_000).cpu_secs,
            5.0,
            "the root from its baseline"
        );
    }

    #[test]
    fn a_root_gone_at_the_first_sample_is_over() {
        let mut f = Follow::new(&Attach { pid: 4242, started_secs: 3, ..Default::default() });
        assert!(!f.is_over(), "not sampled yet");
        f.observe(&Table::new(&[p(1, 0, 1, 0, 0)]), 1_000);
        assert!(f.is_over());
    }

    #[test]
    fn orphans_the_adopter_takes_in_are_members() {
        // exec (pid 9) started 10; a grandchild of 10 whose parent ended was adopted by 9.
        let mut f = Follow::born(10, 9);
        let table = [p(9, 1, 1, 7_000, 1), p(10, 9, 2, 100, 1), p(11, 9, 3, 400, 1)];
        assert_eq!(f.observe(&Table::new(&table), 1_000).cpu_secs, 0.5, "the adopter itself is not counted");
    }

    #[test]
    fn a_running_process_of_the_user_can_be_attached_and_nothing_else() {
        let uid = rustix::process::getuid().as_raw();
        assert!(Attach::check(0, uid).unwrap_err().contains("pid 0 is not a running process"));
        let child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let other = Attach::check(child.id(), uid + 1).unwrap_err();
        assert!(other.contains("belongs to user id"), "{other}");
        assert!(Attach::check(child.id(), uid).is_ok());
        kill(child);
        assert!(Attach::check(1, uid).unwrap_err().contains("the system's first process"));
        assert!(Attach::check(std::process::id(), uid).unwrap_err().contains("the host itself"));
    }

    fn kill(mut child: std::process::Child) {
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn the_skipped_process_and_its_children_are_left_out() {
        let mut f = Follow::born(10, 9_999).skipping(20);
        let table = [p(10, 1, 1, 1_000, 1), p(20, 10, 2, 5_000, 1), p(21, 20, 3, 5_000, 1), p(30, 10, 4, 500, 1)];
        assert_eq!(f.observe(&Table::new(&table), 1_000).cpu_secs, 1.5);
    }
}
