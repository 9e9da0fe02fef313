//! Reads the machine with `sysinfo` (and `/proc` where sysinfo lacks a figure) into
//! plain snapshot values. Only this module touches sysinfo; everything else reads
//! [`Snapshot`]s and [`ProcessSample`]s.

use std::sync::{Arc, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sysinfo::System;

mod disks;
pub mod follow;
mod footprint;
mod network;
mod processes;
pub mod rate;
mod series;

pub use disks::{BlockDeviceSample, MountSample};
pub use footprint::Footprint;
pub use network::NetworkSample;
pub use processes::{COMMAND_CHARS, ProcessFilter, ProcessSample, ProcessSampler, SortKey, sort};
pub use series::samples;

/// The machine at one sampling tick.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub timestamp_ms: u64,
    pub hostname: String,
    pub cpu_percent: f32,
    pub per_core_percent: Vec<f32>,
    pub memory_total_bytes: u64,
    pub memory_used_bytes: u64,
    pub swap_total_bytes: u64,
    pub swap_used_bytes: u64,
    pub load_one: f64,
    pub load_five: f64,
    pub load_fifteen: f64,
    pub uptime_secs: u64,
    pub process_count: u32,
    /// Space per mounted filesystem, by mount point.
    #[serde(default)]
    pub disks: Vec<MountSample>,
    /// I/O per block device, by name.
    #[serde(default)]
    pub block_devices: Vec<BlockDeviceSample>,
    /// Traffic per network interface, by name.
    #[serde(default)]
    pub networks: Vec<NetworkSample>,
    /// What the process that took the snapshot costs.
    #[serde(default)]
    pub footprint: Footprint,
}

/// The latest snapshot, shared read-only with plugins and views.
pub type SharedSnapshot = Arc<RwLock<Arc<Snapshot>>>;

/// The latest process table, sampled less often than the rest.
pub type SharedProcesses = Arc<RwLock<Arc<Vec<ProcessSample>>>>;

/// Samples the machine; rates and CPU shares are measured since the previous call.
pub struct Sampler {
    system: System,
    hostname: String,
    disks: disks::DiskSampler,
    networks: network::NetworkSampler,
    footprint: footprint::FootprintSampler,
    /// Made on first use: most ticks never look at processes.
    processes: Option<processes::ProcessSampler>,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    /// Takes the first readings, so the next [`sample`](Self::sample) has CPU use and rates.
    pub fn new() -> Sampler {
        let mut system = System::new();
        // CPU use is a difference between two refreshes; this is the first.
        system.refresh_cpu_usage();
        Sampler {
            system,
            hostname: System::host_name().unwrap_or_default(),
            disks: disks::DiskSampler::new(),
            networks: network::NetworkSampler::new(),
            footprint: footprint::FootprintSampler::new(),
            processes: None,
        }
    }

    pub fn sample(&mut self) -> Snapshot {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        let at = Instant::now();
        let (disks, block_devices) = self.disks.sample(at);
        let load = System::load_average();
        Snapshot {
            timestamp_ms: now_ms(),
            hostname: self.hostname.clone(),
            cpu_percent: self.system.global_cpu_usage(),
            per_core_percent: self.system.cpus().iter().map(|c| c.cpu_usage()).collect(),
            memory_total_bytes: self.system.total_memory(),
            memory_used_bytes: self.system.used_memory(),
            swap_total_bytes: self.system.total_swap(),
            swap_used_bytes: self.system.used_swap(),
            load_one: load.one,
            load_five: load.five,
            load_fifteen: load.fifteen,
            uptime_secs: System::uptime(),
            process_count: count_processes(),
            disks,
            block_devices,
            networks: self.networks.sample(at),
            footprint: self.footprint.sample(),
        }
    }

    /// Every process, in PID order. Meant for a slower cadence than [`sample`](Self::sample):
    /// CPU shares and I/O rates are measured since the previous call (0 and `None` on the first).
    pub fn processes(&mut self) -> Vec<ProcessSample> {
        self.processes.get_or_insert_with(processes::ProcessSampler::new).sample()
    }
}

/// Counts `/proc/<pid>` entries: far cheaper than a sysinfo process refresh.
fn count_processes() -> u32 {
    std::fs::read_dir("/proc")
        .map(|dir| {
            dir.flatten()
                .filter(|e| e.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())))
                .count() as u32
        })
        .unwrap_or(0)
}

pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_describes_this_machine() {
        let s = Sampler::new().sample();
        assert!(s.memory_total_bytes > 0 && s.memory_used_bytes <= s.memory_total_bytes);
        assert_eq!(s.per_core_percent.len(), std::thread::available_parallelism().unwrap().get());
        assert!(s.process_count >= 1, "this test process at least");
        assert!(s.timestamp_ms > 1_600_000_000_000);
        assert!(s.footprint.rss_bytes > 0, "{:?}", s.footprint);
    }

    #[test]
    fn the_second_sample_has_rates_for_what_the_first_saw() {
        let mut sampler = Sampler::new();
        let s = sampler.sample();
        if std::path::Path::new("/sys/class/net/lo").exists() {
            let lo = s.networks.iter().find(|n| n.interface == "lo").expect("the loopback interface");
            assert!(lo.receive_bytes_per_second.is_some_and(|r| r >= 0.0), "{lo:?}");
        }
        assert!(s.disks.iter().all(|d| d.total_bytes > 0 && !d.filesystem.is_empty()), "{:?}", s.disks);
        assert!(s.block_devices.iter().all(|d| d.write_bytes_per_second.is_some()), "{:?}", s.block_devices);
        assert!(!samples(&s).is_empty());
    }

    #[test]
    fn a_snapshot_from_before_disks_and_networks_still_reads() {
        let old = r#"{"timestamp_ms":1,"hostname":"h","cpu_percent":1.5,"per_core_percent":[1.5],
            "memory_total_bytes":10,"memory_used_bytes":5,"swap_total_bytes":0,"swap_used_bytes":0,
            "load_one":0.1,"load_five":0.2,"load_fifteen":0.3,"uptime_secs":9,"process_count":3}"#;
        let s: Snapshot = serde_json::from_str(old).unwrap();
        assert_eq!(s.memory_total_bytes, 10);
        assert!(s.disks.is_empty() && s.networks.is_empty() && s.footprint == Footprint::default());
        let back: Snapshot = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn processes_are_sampled_on_demand() {
        let mut sampler = Sampler::new();
        let all = sampler.processes();
        assert!(all.iter().any(|p| p.pid == std::process::id()));
    }
}
