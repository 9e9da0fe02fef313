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
use crate::progress::Resources;

/// A process across samples: its PID and start time (seconds since the epoch).
pub type Identity = (u32, u64);

/// CPU milliseconds, bytes read, bytes written.
type Counters = [u64; 3];

fn counters(p: &ProcessSample) -> Counters {
    [p.cpu_ms, p.read_bytes, p.written_bytes]
}

/// What a node needs to follow a process again after a restart of the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    pub pid: u32,
    pub started_secs: u64,
    /// The root's counters when the node attached it: only what comes after counts.
    pub baseline: Counters,
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
        Ok(Attach { pid, started_secs: process.start_time_secs, baseline: counters(&process) })
    }
}

struct Member {
    baseline: Counters,
    last: Counters,
}

/// One node's process tree, followed sample by sample.
pub struct Follow {
    root: Identity,
    root_baseline: Counters,
    members: HashMap<Identity, Member>,
    /// Used by members that have ended, from their baselines to their last samples.
    ended: Counters,
    /// What the node had before this follow began (an earlier process, a restart).
    before: Resources,
    resources: Resources,
    /// The CPU total and time of the previous sample, for the CPU share between two.
    previous: Option<(u64, u64)>,
    /// Whether the root has been seen (it may start after the follow is made).
    seen: bool,
    /// The root was just started: everything in the tree counts from 0.
    from_birth: bool,
    /// The root's baseline is its first sample, not the attachment's.
    resumed: bool,
    /// A process never counted, nor anything below it: the host, when it runs below the root.
    skip: Option<u32>,
}

impl Follow {
    /// A tree to follow from `root`, counting from `attach.baseline` for it and from
    /// their first sample for processes already running below it, added to `before`.
    pub fn new(attach: &Attach, before: Resources) -> Follow {
        Follow {
            root: (attach.pid, attach.started_secs),
            root_baseline: attach.baseline,
            members: HashMap::new(),
            ended: [0; 3],
            before,
            resources: before,
            previous: None,
            seen: false,
            from_birth: false,
            resumed: false,
            skip: None,
        }
    }

    /// [`Follow::new`] for a node that already holds figures of this same
    /// attachment (the host restarted): the root counts from its first sample too.
    pub fn resume(attach: &Attach, before: Resources) -> Follow {
        let mut follow = Follow::new(attach, before);
        follow.resumed = true;
        follow
    }

    /// A tree that starts with `pid`, just started: everything it uses counts.
    pub fn born(pid: u32) -> Follow {
        let mut follow = Follow::new(&Attach { pid, started_secs: 0, baseline: [0; 3] }, Resources::default());
        follow.root.1 = u64::MAX; // any start time: the first sample tells it
        follow.from_birth = true;
        follow
    }

    /// Leaves `pid` and everything below it out of the tree.
    pub fn skipping(mut self, pid: u32) -> Follow {
        self.skip = Some(pid);
        self
    }

    /// The tree's figures after one more sample of every process (`table`), taken at `at_ms`.
    pub fn observe(&mut self, table: &[ProcessSample], at_ms: u64) -> Resources {
        let by_pid: HashMap<u32, &ProcessSample> = table.iter().map(|p| (p.pid, p)).collect();
        let mut children: HashMap<u32, Vec<&ProcessSample>> = HashMap::new();
        for p in table {
            if let Some(parent) = p.parent {
                children.entry(parent).or_default().push(p);
            }
        }
        let first_look = !self.seen;
        let mut live: Vec<&ProcessSample> = Vec::new();
        if let Some(root) = by_pid.get(&self.root.0)
            && (self.root.1 == u64::MAX || root.start_time_secs == self.root.1)
            && !self.seen
        {
            self.seen = true;
            self.root.1 = root.start_time_secs;
            let baseline = if self.resumed { counters(root) } else { self.root_baseline };
            self.members.insert(self.root, Member { baseline, last: baseline });
        }
        // Members still there, then everything below them.
        let mut stack: Vec<&ProcessSample> = self
            .members
            .keys()
            .filter_map(|(pid, start)| by_pid.get(pid).filter(|p| p.start_time_secs == *start).copied())
            .collect();
        let mut found: HashMap<Identity, ()> = HashMap::new();
        while let Some(p) = stack.pop() {
            let id = (p.pid, p.start_time_secs);
            if Some(p.pid) == self.skip || found.insert(id, ()).is_some() {
                continue;
            }
            live.push(p);
            stack.extend(children.get(&p.pid).into_iter().flatten().copied());
        }
        // The ended: what they used up to their last sample stays counted.
        let ended: Vec<Identity> = self.members.keys().filter(|id| !found.contains_key(*id)).copied().collect();
        for id in ended {
            let member = self.members.remove(&id).expect("listed above");
            for (sum, (last, base)) in self.ended.iter_mut().zip(member.last.iter().zip(member.baseline)) {
                *sum += last.saturating_sub(base);
            }
        }
        let mut used = self.ended;
        let mut rss = 0u64;
        for p in &live {
            let now = counters(p);
            let member = self.members.entry((p.pid, p.start_time_secs)).or_insert_with(|| Member {
                // Already running when following began: only what it does from now on counts.
                baseline: if first_look && !self.from_birth { now } else { [0; 3] },
                last: now,
            });
            member.last = now;
            for (sum, (value, base)) in used.iter_mut().zip(now.iter().zip(member.baseline)) {
                *sum += value.saturating_sub(base);
            }
            rss += p.memory_bytes;
        }
        let r = &mut self.resources;
        r.cpu_secs = r.cpu_secs.max(self.before.cpu_secs + used[0] as f64 / 1000.0);
        r.read_bytes = r.read_bytes.max(self.before.read_bytes + used[1]);
        r.written_bytes = r.written_bytes.max(self.before.written_bytes + used[2]);
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

    /// Whether every process of the tree has ended (after it was seen at all).
    pub fn is_over(&self) -> bool {
        self.seen && self.members.is_empty()
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
        let mut f = Follow::born(100);
        let strangers = [p(1, 0, 1, 9_000, 1), p(50, 1, 2, 9_000, 1)];
        let mut table = vec![p(100, 50, 10, 1_000, 10), p(101, 100, 11, 500, 20), p(102, 101, 12, 250, 30)];
        table.extend(strangers.clone());
        let r = f.observe(&table, 1_000);
        assert_eq!(r.cpu_secs, 1.75);
        assert_eq!(r.rss_peak_bytes, 60);
        assert_eq!(r.processes, 3);
        // 101 ends; 102 (its child, after setsid) is adopted by init and keeps going.
        let mut table = vec![p(100, 50, 10, 1_500, 10), p(102, 1, 12, 1_250, 30)];
        table.extend(strangers);
        let r = f.observe(&table, 2_000);
        assert_eq!(r.cpu_secs, 1.5 + 0.5 + 1.25, "the ended child's last figures stay counted");
        assert_eq!(r.processes, 2);
        assert!((r.cpu_peak_percent - 150.0).abs() < 1e-9, "1.5 s of CPU in 1.0 s: {}", r.cpu_peak_percent);
        assert_eq!(r.read_bytes, 32_500);
        assert!(!f.is_over());
        let r = f.observe(&[p(1, 0, 1, 9_000, 1)], 3_000);
        assert_eq!(r.cpu_secs, 3.25);
        assert_eq!(r.processes, 0);
        assert!(f.is_over());
    }

    #[test]
    fn a_reused_pid_is_a_stranger() {
        let attach = Attach { pid: 100, started_secs: 10, baseline: [400, 0, 0] };
        let mut f = Follow::new(&attach, Resources::default());
        let r = f.observe(&[p(100, 1, 10, 1_000, 10), p(101, 100, 11, 300, 5)], 1_000);
        assert_eq!(r.cpu_secs, 0.6, "from the root's baseline; the child running before counts from now");
        // The root ends and its PID goes to a new process of someone else.
        let r = f.observe(&[p(100, 1, 99, 50_000, 1 << 30), p(101, 1, 11, 800, 5)], 2_000);
        assert_eq!(r.cpu_secs, 0.6 + 0.5, "the new 100 is not the root; the old child still is a member");
        assert_eq!(r.rss_peak_bytes, 15);
    }

    #[test]
    fn a_follow_adds_to_what_the_node_had_before() {
        let before = Resources { cpu_secs: 10.0, rss_peak_bytes: 500, ..Default::default() };
        let mut f = Follow::new(&Attach { pid: 7, started_secs: 3, baseline: [0; 3] }, before);
        let r = f.observe(&[p(7, 1, 3, 2_000, 100)], 1_000);
        assert_eq!((r.cpu_secs, r.rss_peak_bytes), (12.0, 500));
    }

    #[test]
    fn a_resumed_follow_counts_from_its_first_sample() {
        let before = Resources { cpu_secs: 1.0, ..Default::default() };
        let attach = Attach { pid: 7, started_secs: 3, baseline: [0; 3] };
        let mut f = Follow::resume(&attach, before);
        assert_eq!(f.observe(&[p(7, 1, 3, 5_000, 100)], 1_000).cpu_secs, 1.0, "already counted before the restart");
        assert_eq!(f.observe(&[p(7, 1, 3, 5_500, 100)], 2_000).cpu_secs, 1.5);
    }

    #[test]
    fn a_root_not_seen_yet_is_not_over() {
        let mut f = Follow::born(4242);
        f.observe(&[p(1, 0, 1, 0, 0)], 1_000);
        assert!(!f.is_over());
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
        let mut f = Follow::born(10).skipping(20);
        let table = [p(10, 1, 1, 1_000, 1), p(20, 10, 2, 5_000, 1), p(21, 20, 3, 5_000, 1), p(30, 10, 4, 500, 1)];
        assert_eq!(f.observe(&table, 1_000).cpu_secs, 1.5);
    }
}
