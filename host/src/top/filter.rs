//! Which rows each panel shows and in what order: pure functions over the data.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use super::model::{Sort, SortKey};
use crate::alerts::{Alert, AlertState};
use crate::plugin::{PluginRecord, PluginState};
use crate::progress::Node;
use crate::sampler::{ProcessFilter, ProcessSample};
use crate::watch::JobView;

/// What `/` or `--filter` asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Filter {
    #[default]
    None,
    /// Processes using CPU or doing I/O, runs still going, alerts firing or pending, running
    /// plugins and watch jobs.
    Active,
    /// Case-insensitive text in a process's name or command (`user:NAME` for a user's), a node's
    /// path, an alert's id or message, a plugin's name, a watch job's name or command.
    Text(String),
}

impl Filter {
    pub fn parse(text: &str) -> Filter {
        match text.trim() {
            "" => Filter::None,
            "active" => Filter::Active,
            text => Filter::Text(text.to_string()),
        }
    }

    /// As typed, to edit it again.
    pub fn text(&self) -> &str {
        match self {
            Filter::None => "",
            Filter::Active => "active",
            Filter::Text(text) => text,
        }
    }

    fn contains(text: &str, needle: &str) -> bool {
        text.to_lowercase().contains(&needle.to_lowercase())
    }
}

/// Disk bytes per second, read and written.
pub fn io_rate(p: &ProcessSample) -> f64 {
    p.disk_read_bytes_per_second.unwrap_or(0.0) + p.disk_write_bytes_per_second.unwrap_or(0.0)
}

/// The processes the filter keeps, sorted; kernel threads only when asked for (they are
/// many and idle, and crowd out the work).
pub fn processes<'a>(
    all: &'a [ProcessSample],
    filter: &Filter,
    sort: Sort,
    kernel_threads: bool,
) -> Vec<&'a ProcessSample> {
    let all = all.iter().filter(|p| kernel_threads || !p.is_kernel_thread());
    let mut rows: Vec<&ProcessSample> = match filter {
        Filter::None => all.collect(),
        Filter::Active => all.filter(|p| p.cpu_percent > 0.0 || io_rate(p) > 0.0).collect(),
        Filter::Text(text) => {
            let filter = ProcessFilter::parse(text);
            all.filter(|p| filter.matches(p)).collect()
        }
    };
    rows.sort_by(|a, b| {
        let order = match sort.key {
            SortKey::Cpu => a.cpu_percent.total_cmp(&b.cpu_percent),
            SortKey::Mem => a.memory_bytes.cmp(&b.memory_bytes),
            SortKey::Io => io_rate(a).total_cmp(&io_rate(b)),
            SortKey::Pid => a.pid.cmp(&b.pid),
            SortKey::Name => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
        };
        // Ties always in PID order, whichever way the column goes.
        (if sort.descending { order.reverse() } else { order }).then(a.pid.cmp(&b.pid))
    });
    rows
}

/// Indentation stops growing past this depth, so a deep chain of processes costs no
/// more than a wide one.
const DEEPEST_BRANCH: usize = 32;

/// `rows` as a tree, as `pstree` draws it: each process under its parent when the parent
/// is among the rows, siblings in the order given; with each, the branch drawn before
/// its command (empty for a process whose parent is not shown).
pub fn tree<'a>(rows: &[&'a ProcessSample]) -> Vec<(String, &'a ProcessSample)> {
    let shown: HashSet<u32> = rows.iter().map(|p| p.pid).collect();
    let mut children: HashMap<u32, Vec<&ProcessSample>> = HashMap::new();
    for p in rows {
        if let Some(parent) = p.parent.filter(|parent| *parent != p.pid && shown.contains(parent)) {
            children.entry(parent).or_default().push(p);
        }
    }
    let is_root = |p: &ProcessSample| p.parent.is_none_or(|parent| parent == p.pid || !shown.contains(&parent));
    let mut out = Vec::with_capacity(rows.len());
    let mut visited = HashSet::with_capacity(rows.len());
    // Roots first; then anything left, which only a parent loop (PIDs reused between
    // reads) can leave, so that every row is shown once.
    for start in rows.iter().filter(|p| is_root(p)).chain(rows.iter()) {
        // Depth first without recursion: (process, its branch, the indent of its children).
        let mut stack = vec![(*start, String::new(), String::new())];
        while let Some((p, branch, indent)) = stack.pop() {
            if !visited.insert(p.pid) {
                continue;
            }
            out.push((branch, p));
            let Some(kids) = children.get(&p.pid) else { continue };
            for (i, kid) in kids.iter().enumerate().rev() {
                let (elbow, rest) = if i + 1 == kids.len() { ("└─ ", "   ") } else { ("├─ ", "│  ") };
                let deeper = if indent.chars().count() < DEEPEST_BRANCH * 3 { rest } else { "" };
                stack.push((*kid, format!("{indent}{elbow}"), format!("{indent}{deeper}")));
            }
        }
    }
    out
}

/// Every node of the runs kept, in tree order.
pub fn progress<'a>(runs: &'a [Vec<Node>], filter: &Filter) -> Vec<&'a Node> {
    runs.iter()
        .filter(|nodes| match filter {
            Filter::None => true,
            Filter::Active => nodes.first().is_some_and(|root| !root.status.is_terminal()),
            Filter::Text(text) => nodes.iter().any(|n| Filter::contains(n.path.as_str(), text)),
        })
        .flatten()
        .collect()
}

/// Firing first, then pending, acknowledged and resolved; the most severe first within each.
pub fn alerts<'a>(all: &'a [Alert], filter: &Filter) -> Vec<&'a Alert> {
    let rank = |s: AlertState| match s {
        AlertState::Firing => 0,
        AlertState::Pending => 1,
        AlertState::Acknowledged => 2,
        AlertState::Resolved => 3,
        AlertState::Inactive => 4,
    };
    let mut rows: Vec<&Alert> = all
        .iter()
        .filter(|a| match filter {
            Filter::None => true,
            Filter::Active => matches!(a.state, AlertState::Firing | AlertState::Pending),
            Filter::Text(text) => Filter::contains(&a.id, text) || Filter::contains(&a.message, text),
        })
        .collect();
    rows.sort_by(|a, b| rank(a.state).cmp(&rank(b.state)).then(b.level.cmp(&a.level)).then(a.id.cmp(&b.id)));
    rows
}

pub fn plugins<'a>(all: &'a [PluginRecord], filter: &Filter) -> Vec<&'a PluginRecord> {
    let mut rows: Vec<&PluginRecord> = all
        .iter()
        .filter(|p| match filter {
            Filter::None => true,
            Filter::Active => p.state == PluginState::Running,
            Filter::Text(text) => Filter::contains(&p.name, text),
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// Watch jobs by name.
pub fn jobs<'a>(all: &'a [JobView], filter: &Filter) -> Vec<&'a JobView> {
    let mut rows: Vec<&JobView> = all
        .iter()
        .filter(|j| match filter {
            Filter::None => true,
            Filter::Active => j.state == "running",
            Filter::Text(text) => Filter::contains(&j.name, text) || Filter::contains(&j.command.join(" "), text),
        })
        .collect();
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    rows
}

/// Runs in the order the progress panel shows them: going first (oldest start first), then
/// finished ones, most recently finished first.
pub fn order_runs(a: &Node, b: &Node) -> Ordering {
    match (a.status.is_terminal(), b.status.is_terminal()) {
        (false, true) => Ordering::Less,
        (true, false) => Ordering::Greater,
        (false, false) => a.started_ms.cmp(&b.started_ms).then(a.path.cmp(&b.path)),
        (true, true) => b.finished_ms.cmp(&a.finished_ms).then(a.path.cmp(&b.path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Level;
    use crate::progress::{NodePath, Status};

    fn process(pid: u32, name: &str, cpu: f32, memory: u64, io: Option<f64>) -> ProcessSample {
        ProcessSample {
            pid,
            name: name.into(),
            command: format!("/usr/bin/{name} --serve"),
            user: if pid < 100 { "root".into() } else { "alice".into() },
            cpu_percent: cpu,
            memory_bytes: memory,
            disk_read_bytes_per_second: io,
            ..Default::default()
        }
    }

    fn pids(rows: &[&ProcessSample]) -> Vec<u32> {
        rows.iter().map(|p| p.pid).collect()
    }

    fn table() -> Vec<ProcessSample> {
        vec![
            process(300, "python", 50.0, 10, Some(5.0)),
            process(2, "Bash", 0.0, 30, None),
            process(150, "cargo", 50.0, 20, Some(100.0)),
            process(7, "sshd", 1.0, 5, Some(0.0)),
        ]
    }

    #[test]
    fn processes_sort_by_each_column_both_ways() {
        let all = table();
        let sorted = |key, descending| pids(&processes(&all, &Filter::None, Sort { key, descending }, true));
        assert_eq!(sorted(SortKey::Cpu, true), [150, 300, 7, 2], "ties by PID");
        assert_eq!(sorted(SortKey::Cpu, false), [2, 7, 150, 300]);
        assert_eq!(sorted(SortKey::Mem, true), [2, 150, 300, 7]);
        assert_eq!(sorted(SortKey::Io, true), [150, 300, 2, 7], "no rate counts as 0");
        assert_eq!(sorted(SortKey::Pid, false), [2, 7, 150, 300]);
        assert_eq!(sorted(SortKey::Pid, true), [300, 150, 7, 2]);
        assert_eq!(sorted(SortKey::Name, false), [2, 150, 300, 7], "case does not matter");
        assert_eq!(Sort::new(SortKey::Name), Sort { key: SortKey::Name, descending: false });
        assert_eq!(Sort::new(SortKey::Io), Sort { key: SortKey::Io, descending: true });
    }

    #[test]
    fn processes_filter_by_text_user_or_activity() {
        let all = table();
        let sort = Sort::new(SortKey::Pid);
        let kept = |f: &str| pids(&processes(&all, &Filter::parse(f), sort, true));
        assert_eq!(kept(""), [2, 7, 150, 300]);
        assert_eq!(kept("PYTH"), [300], "name, any case");
        assert_eq!(kept("--serve"), [2, 7, 150, 300], "command");
        assert_eq!(kept("user:root"), [2, 7]);
        assert_eq!(kept("active"), [7, 150, 300], "CPU or I/O");
        assert!(kept("nothing-like-this").is_empty());
    }

    fn child(pid: u32, parent: u32) -> ProcessSample {
        ProcessSample { pid, parent: Some(parent), name: format!("p{pid}"), command: "x".into(), ..Default::default() }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn kernel_threads_show_only_when_asked_for() {
        let kthreadd = ProcessSample { pid: 2, parent: Some(0), name: "kthreadd".into(), ..Default::default() };
        let kworker = ProcessSample { pid: 3, parent: Some(2), name: "kworker/0:0".into(), ..Default::default() };
        let all = vec![child(1, 0), kthreadd, kworker, child(40, 1)];
        let kept =
            |all: &[ProcessSample], kernel| pids(&processes(all, &Filter::None, Sort::new(SortKey::Pid), kernel));
        assert_eq!(kept(&all, false), [1, 40]);
        assert_eq!(kept(&all, true), [1, 2, 3, 40]);
        // In a container PID 2 is whatever started second, with a command line.
        let container = [child(1, 0), child(2, 1), child(3, 2)];
        assert_eq!(kept(&container, false), [1, 2, 3]);
    }

    #[test]
    fn the_tree_puts_children_under_parents_in_the_order_given() {
        // 1 ─ 10 ─ 11, 1 ─ 20; 30 has a parent not shown; 7 and 8 are each other's parent.
        let all = [child(20, 1), child(1, 0), child(11, 10), child(30, 99), child(10, 1), child(7, 8), child(8, 7)];
        let rows: Vec<&ProcessSample> = all.iter().collect();
        let drawn: Vec<(String, u32)> = tree(&rows).into_iter().map(|(branch, p)| (branch, p.pid)).collect();
        let expected = [("", 1), ("├─ ", 20), ("└─ ", 10), ("   └─ ", 11), ("", 30), ("", 7), ("└─ ", 8)];
        assert_eq!(drawn, expected.map(|(b, pid)| (b.to_string(), pid)), "a loop still shows each row once");
    }

    #[test]
    fn a_deep_chain_draws_without_recursion_and_stops_indenting() {
        let all: Vec<ProcessSample> = (1..=100_000).map(|pid| child(pid, pid - 1)).collect();
        let rows: Vec<&ProcessSample> = all.iter().collect();
        let drawn = tree(&rows);
        assert_eq!(drawn.len(), all.len());
        let widest = drawn.iter().map(|(branch, _)| branch.chars().count()).max().unwrap();
        assert_eq!(widest, DEEPEST_BRANCH * 3 + 3);
    }

    fn node(path: &str, status: Status, started: u64, finished: Option<u64>) -> Node {
        let mut n = Node::new(NodePath::parse(path).unwrap(), started);
        (n.status, n.started_ms, n.finished_ms) = (status, Some(started), finished);
        n
    }

    #[test]
    fn progress_keeps_whole_runs_and_orders_live_ones_first() {
        let mut roots = [
            node("old", Status::Completed, 1, Some(5)),
            node("train", Status::Running, 20, None),
            node("newer", Status::Failed, 2, Some(9)),
            node("build", Status::Running, 10, None),
        ];
        roots.sort_by(order_runs);
        let names: Vec<&str> = roots.iter().map(|n| n.path.as_str()).collect();
        assert_eq!(names, ["build", "train", "newer", "old"]);
        let runs = vec![
            vec![node("train", Status::Running, 20, None), node("train/fit", Status::Running, 21, None)],
            vec![node("old", Status::Completed, 1, Some(5))],
        ];
        let paths = |f: &str| progress(&runs, &Filter::parse(f)).iter().map(|n| n.path.to_string()).collect::<Vec<_>>();
        assert_eq!(paths(""), ["train", "train/fit", "old"]);
        assert_eq!(paths("active"), ["train", "train/fit"]);
        assert_eq!(paths("FIT"), ["train", "train/fit"], "a match keeps its run's tree");
        assert_eq!(paths("old"), ["old"]);
    }

    fn alert(id: &str, state: AlertState, level: Level) -> Alert {
        Alert {
            id: id.into(),
            rule: id.into(),
            level,
            labels: Default::default(),
            state,
            since_ms: 0,
            fired_ms: None,
            value: None,
            message: format!("{id} message"),
            silenced: false,
            ack: None,
        }
    }

    #[test]
    fn alerts_fire_first_and_severe_first() {
        let all = vec![
            alert("a", AlertState::Resolved, Level::Critical),
            alert("b", AlertState::Firing, Level::Warning),
            alert("c", AlertState::Acknowledged, Level::Error),
            alert("d", AlertState::Firing, Level::Critical),
            alert("e", AlertState::Pending, Level::Info),
        ];
        let ids = |f: &str| alerts(&all, &Filter::parse(f)).iter().map(|a| a.id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(""), ["d", "b", "e", "c", "a"]);
        assert_eq!(ids("active"), ["d", "b", "e"]);
        assert_eq!(ids("C MESS"), ["c"], "the message, any case");
        assert_eq!(ids("b"), ["b"]);
    }

    #[test]
    fn plugins_by_name() {
        let mut running = PluginRecord::new("zeta");
        running.state = PluginState::Running;
        let all = vec![running, PluginRecord::new("alpha")];
        let names = |f: &str| plugins(&all, &Filter::parse(f)).iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(""), ["alpha", "zeta"]);
        assert_eq!(names("active"), ["zeta"]);
        assert_eq!(names("ALP"), ["alpha"]);
        assert_eq!(Filter::parse("  active ").text(), "active");
    }

    #[test]
    fn jobs_by_name_command_or_running() {
        let job = |name: &str, state: &str, command: &str| JobView {
            name: name.into(),
            state: state.into(),
            command: command.split(' ').map(Into::into).collect(),
            ..Default::default()
        };
        let all = vec![job("tests", "running", "cargo test"), job("docs", "idle", "mdbook build")];
        let names = |f: &str| jobs(&all, &Filter::parse(f)).iter().map(|j| j.name.clone()).collect::<Vec<_>>();
        assert_eq!(names(""), ["docs", "tests"]);
        assert_eq!(names("active"), ["tests"]);
        assert_eq!(names("MDBOOK B"), ["docs"], "the command, any case");
    }
}
