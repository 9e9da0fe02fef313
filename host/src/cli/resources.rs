//! `monitor resources`: the machine now. It samples in this process, so it answers
//! the same with or without a running host.

use std::fmt::Write as _;
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

use crate::client::Client as _;
use crate::error::CommandResult;
use crate::sampler::{ProcessFilter, ProcessSample, Sampler, Snapshot, SortKey, sort};

/// CPU use and rates are differences between two samples: this far apart.
const INTERVAL: Duration = Duration::from_millis(250);

/// Processes shown in the table unless `--limit` says otherwise.
const DEFAULT_LIMIT: usize = 20;

/// Enough of a command to recognise it while keeping a table row on a wide terminal line;
/// `--json` has the rest.
const TABLE_COMMAND_CHARS: usize = 80;

#[derive(Debug, Args)]
pub struct ResourcesArgs {
    /// Print the snapshot (and processes, when asked) as JSON.
    #[arg(long)]
    pub json: bool,
    /// List processes too (the top 20 in the table; all of them in JSON).
    #[arg(long)]
    pub processes: bool,
    /// Order processes by CPU, memory (largest first), PID or name [default: cpu]; implies --processes.
    #[arg(long, value_enum, value_name = "KEY")]
    pub sort: Option<SortKey>,
    /// Keep processes whose name or command contains TEXT, or with `user:NAME` those of a user;
    /// implies --processes.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
    /// Show at most N processes; implies --processes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: Option<u32>,
}

/// `--sort`'s choices are the sampler's orders.
impl ValueEnum for SortKey {
    fn value_variants<'a>() -> &'a [Self] {
        &SortKey::ALL
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// The JSON form: the snapshot's fields, then the processes when asked for.
#[derive(Serialize)]
struct Report<'a> {
    #[serde(flatten)]
    snapshot: &'a Snapshot,
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<&'a [ProcessSample]>,
}

pub fn run(args: &ResourcesArgs) -> CommandResult<()> {
    let want_processes = args.processes || args.sort.is_some() || args.filter.is_some() || args.limit.is_some();
    // With --url, the remote host's last samples; else this machine, sampled now.
    let remote = crate::client::remote();
    let mut sampler = Sampler::new();
    if want_processes && remote.is_none() {
        sampler.processes();
    }
    let snapshot = match &remote {
        Some(remote) => remote.resources()?,
        None => {
            std::thread::sleep(INTERVAL);
            sampler.sample()
        }
    };
    let table = match (&remote, want_processes) {
        (Some(remote), true) => Some(remote.processes()?),
        (None, true) => Some(sampler.processes()),
        (_, false) => None,
    };
    let processes = table.map(|mut processes| {
        if let Some(text) = &args.filter {
            let filter = ProcessFilter::parse(text);
            processes = filter.apply(processes);
            if filter.name.is_some() && remote.is_none() {
                // This command's own arguments hold the text: it is no answer (unlike `ps | grep`).
                processes.retain(|p| p.pid != std::process::id());
            }
        }
        sort(&mut processes, args.sort.unwrap_or(SortKey::Cpu));
        let limit = args.limit.map(|n| n as usize).or((!args.json).then_some(DEFAULT_LIMIT));
        processes.truncate(limit.unwrap_or(usize::MAX));
        processes
    });
    if args.json {
        let report = Report { snapshot: &snapshot, processes: processes.as_deref() };
        super::print_json(&report)?;
    } else {
        print!("{}", render(&snapshot, processes.as_deref()));
    }
    Ok(())
}

fn render(s: &Snapshot, processes: Option<&[ProcessSample]>) -> String {
    let mut out = String::new();
    let memory = percent(s.memory_used_bytes, s.memory_total_bytes);
    let _ = writeln!(
        out,
        "{}  up {}  load {:.2} {:.2} {:.2}  {} processes",
        s.hostname,
        age(s.uptime_secs),
        s.load_one,
        s.load_five,
        s.load_fifteen,
        s.process_count
    );
    let cores: Vec<String> = s.per_core_percent.iter().map(|c| format!("{c:.0}%")).collect();
    let _ = writeln!(out, "cpu   {:.1}%  per core {}", s.cpu_percent, cores.join(" "));
    let _ = writeln!(
        out,
        "mem   {} of {} ({memory})  swap {} of {}",
        bytes(s.memory_used_bytes),
        bytes(s.memory_total_bytes),
        bytes(s.swap_used_bytes),
        bytes(s.swap_total_bytes)
    );
    let _ = writeln!(out, "self  cpu {:.1}%  rss {}", s.footprint.cpu_percent, bytes(s.footprint.rss_bytes));

    if !s.disks.is_empty() {
        let rows = s.disks.iter().map(|d| {
            vec![
                d.mount_point.clone(),
                d.device.clone(),
                d.filesystem.clone(),
                bytes(d.total_bytes),
                bytes(d.available_bytes),
                format!("{:.0}%", d.used_percent()),
            ]
        });
        table(&mut out, &["MOUNT", "DEVICE", "FS", "SIZE", "AVAIL", "USED"], &[3, 4, 5], rows);
    }
    if !s.block_devices.is_empty() {
        let rows = s.block_devices.iter().map(|d| {
            vec![
                d.device.clone(),
                rate_bytes(d.read_bytes_per_second),
                rate_bytes(d.write_bytes_per_second),
                rate(d.read_operations_per_second),
                rate(d.write_operations_per_second),
            ]
        });
        table(&mut out, &["DEVICE", "READ/s", "WRITE/s", "READS/s", "WRITES/s"], &[1, 2, 3, 4], rows);
    }
    if !s.networks.is_empty() {
        let rows = s.networks.iter().map(|n| {
            let errors = n.receive_errors_per_second.zip(n.transmit_errors_per_second).map(|(r, t)| r + t);
            vec![
                n.interface.clone(),
                rate_bytes(n.receive_bytes_per_second),
                rate_bytes(n.transmit_bytes_per_second),
                rate(n.receive_packets_per_second),
                rate(n.transmit_packets_per_second),
                rate(errors),
            ]
        });
        table(&mut out, &["INTERFACE", "RX/s", "TX/s", "RX PKT/s", "TX PKT/s", "ERRORS/s"], &[1, 2, 3, 4, 5], rows);
    }
    if let Some(processes) = processes {
        if processes.is_empty() {
            out.push_str("\nno processes match\n");
        } else {
            let now_secs = crate::sampler::now_ms() / 1000;
            let rows = processes.iter().map(|p| {
                vec![
                    p.pid.to_string(),
                    p.user.clone(),
                    format!("{:.1}", p.cpu_percent),
                    bytes(p.memory_bytes),
                    rate_bytes(p.disk_read_bytes_per_second),
                    rate_bytes(p.disk_write_bytes_per_second),
                    p.threads.map_or("-".into(), |t| t.to_string()),
                    p.status.clone(),
                    age(now_secs.saturating_sub(p.start_time_secs)),
                    p.display_command(TABLE_COMMAND_CHARS),
                ]
            });
            let header = ["PID", "USER", "CPU%", "MEM", "READ/s", "WRITE/s", "THR", "STATE", "AGE", "COMMAND"];
            table(&mut out, &header, &[0, 2, 3, 4, 5, 6, 8], rows);
        }
    }
    out
}

/// A blank line, then the header and rows in columns as wide as their widest cell;
/// the columns in `right` (numbers) aligned right, the last one not padded.
fn table(out: &mut String, header: &[&str], right: &[usize], rows: impl Iterator<Item = Vec<String>>) {
    let mut rows: Vec<Vec<String>> = rows.collect();
    rows.insert(0, header.iter().map(|h| h.to_string()).collect());
    let mut widths = vec![0; header.len()];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    out.push('\n');
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = " ".repeat(widths[i] - cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if right.contains(&i) {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < row.len() {
                    line.push_str(&pad);
                }
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// `512B`, `1.5KiB`, `20.0GiB`.
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{n}B") } else { format!("{value:.1}{}", UNITS[unit]) }
}

/// Bytes per second, or `-` while unknown.
fn rate_bytes(per_second: Option<f64>) -> String {
    per_second.map_or("-".into(), |r| bytes(r.round() as u64))
}

/// Events per second, or `-` while unknown.
fn rate(per_second: Option<f64>) -> String {
    match per_second {
        None => "-".into(),
        Some(r) if r >= 10.0 || r == 0.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.1}"),
    }
}

fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "-".into() } else { format!("{:.0}%", 100.0 * part as f64 / whole as f64) }
}

/// `42s`, `5m`, `3h12m`, `4d02h`: how long something has been up.
fn age(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m", secs / 60),
        3600..86_400 => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
        _ => format!("{}d{:02}h", secs / 86_400, secs % 86_400 / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::{BlockDeviceSample, MountSample, NetworkSample};
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<ResourcesArgs, clap::Error> {
        #[derive(Parser)]
        struct Cli {
            #[command(flatten)]
            args: ResourcesArgs,
        }
        Cli::try_parse_from(std::iter::once("resources").chain(args.iter().copied())).map(|c| c.args)
    }

    fn process(pid: u32, name: &str, cpu: f32, memory: u64) -> ProcessSample {
        ProcessSample { pid, name: name.into(), cpu_percent: cpu, memory_bytes: memory, ..Default::default() }
    }

    #[test]
    fn bad_sort_keys_and_limits_are_refused_by_the_parser() {
        assert!(parse(&["--sort", "bogus"]).unwrap_err().to_string().contains("invalid value 'bogus'"));
        assert!(parse(&["--limit", "0"]).unwrap_err().to_string().contains("invalid value '0'"));
        assert!(parse(&["--limit", "x"]).is_err());
        let ok = parse(&["--sort", "mem", "--limit", "3", "--filter", "user:root", "--json"]).unwrap();
        assert_eq!(
            (ok.sort, ok.limit, ok.filter.as_deref(), ok.json),
            (Some(SortKey::Mem), Some(3), Some("user:root"), true)
        );
    }

    #[test]
    fn processes_sort_largest_first_or_by_pid_or_name() {
        let mut ps = vec![process(3, "b", 5.0, 10), process(1, "C", 50.0, 5), process(2, "a", 5.0, 30)];
        let pids = |ps: &[ProcessSample]| ps.iter().map(|p| p.pid).collect::<Vec<_>>();
        sort(&mut ps, SortKey::Cpu);
        assert_eq!(pids(&ps), [1, 2, 3], "ties by PID");
        sort(&mut ps, SortKey::Mem);
        assert_eq!(pids(&ps), [2, 3, 1]);
        sort(&mut ps, SortKey::Pid);
        assert_eq!(pids(&ps), [1, 2, 3]);
        sort(&mut ps, SortKey::Name);
        assert_eq!(pids(&ps), [2, 3, 1], "case does not matter");
    }

    #[test]
    fn sizes_rates_and_ages_read_short() {
        assert_eq!(bytes(0), "0B");
        assert_eq!(bytes(1023), "1023B");
        assert_eq!(bytes(1536), "1.5KiB");
        assert_eq!(bytes(20 << 30), "20.0GiB");
        assert_eq!(bytes(u64::MAX), "16384.0PiB");
        assert_eq!(rate_bytes(None), "-");
        assert_eq!(rate_bytes(Some(2048.4)), "2.0KiB");
        assert_eq!((rate(Some(0.0)), rate(Some(2.25)), rate(Some(1234.6))), ("0".into(), "2.2".into(), "1235".into()));
        assert_eq!(
            (age(5), age(125), age(3 * 3600 + 720), age(86_400 * 4 + 7200)),
            ("5s".into(), "2m".into(), "3h12m".into(), "4d02h".into())
        );
        assert_eq!(percent(1, 0), "-");
        assert_eq!(percent(1, 4), "25%");
    }

    #[test]
    fn the_table_shows_every_section_aligned() {
        let snapshot = Snapshot {
            hostname: "box".into(),
            memory_total_bytes: 4 << 30,
            memory_used_bytes: 1 << 30,
            per_core_percent: vec![1.0, 2.0],
            disks: vec![MountSample {
                mount_point: "/".into(),
                device: "/dev/vda".into(),
                filesystem: "ext4".into(),
                total_bytes: 100 << 30,
                available_bytes: 25 << 30,
                // 5 GiB reserved for root: 70 of the 95 users can have, as df says.
                used_bytes: 70 << 30,
            }],
            block_devices: vec![BlockDeviceSample { device: "vda".into(), ..Default::default() }],
            networks: vec![NetworkSample {
                interface: "eth0".into(),
                receive_bytes_per_second: Some(2048.0),
                receive_errors_per_second: Some(0.0),
                transmit_errors_per_second: Some(1.0),
                ..Default::default()
            }],
            ..Default::default()
        };
        let now = crate::sampler::now_ms() / 1000;
        let mut python = process(1234, "python3", 99.5, 3 << 20);
        (python.command, python.user, python.status, python.threads) =
            ("python3 train.py".into(), "alice".into(), "running".into(), Some(4));
        python.start_time_secs = now - 2 * 3600;
        let mut kthread = process(2, "kthreadd", 0.0, 0);
        (kthread.user, kthread.status, kthread.start_time_secs) = ("root".into(), "sleeping".into(), now - 90);
        let text = render(&snapshot, Some(&[python, kthread]));
        let expected = "\
box  up 0s  load 0.00 0.00 0.00  0 processes
cpu   0.0%  per core 1% 2%
mem   1.0GiB of 4.0GiB (25%)  swap 0B of 0B
self  cpu 0.0%  rss 0B

MOUNT  DEVICE    FS        SIZE    AVAIL  USED
/      /dev/vda  ext4  100.0GiB  25.0GiB   74%

DEVICE  READ/s  WRITE/s  READS/s  WRITES/s
vda          -        -        -         -

INTERFACE    RX/s  TX/s  RX PKT/s  TX PKT/s  ERRORS/s
eth0       2.0KiB     -         -         -       1.0

 PID  USER   CPU%     MEM  READ/s  WRITE/s  THR  STATE       AGE  COMMAND
1234  alice  99.5  3.0MiB       -        -    4  running   2h00m  python3 train.py
   2  root    0.0      0B       -        -    -  sleeping     1m  [kthreadd]
";
        assert_eq!(text, expected, "unknown rates show '-', a kernel thread its name");
        assert!(text.lines().all(|l| l == l.trim_end()), "no trailing spaces: {text}");
        assert!(render(&snapshot, Some(&[])).contains("no processes match"));
        assert!(!render(&snapshot, None).contains("PID"));
    }
}
