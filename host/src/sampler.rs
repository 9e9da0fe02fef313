//! Reads the machine with `sysinfo` into plain snapshot values. Only this module
//! touches sysinfo; everything else reads [`Snapshot`]s.

use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sysinfo::System;

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
}

/// The latest snapshot, shared read-only with plugins and views.
pub type SharedSnapshot = Arc<RwLock<Arc<Snapshot>>>;

pub struct Sampler {
    system: System,
    hostname: String,
}

impl Default for Sampler {
    fn default() -> Self {
        Self::new()
    }
}

impl Sampler {
    pub fn new() -> Sampler {
        let mut system = System::new();
        // CPU use is a difference between two refreshes; this is the first.
        system.refresh_cpu_usage();
        Sampler { system, hostname: System::host_name().unwrap_or_default() }
    }

    pub fn sample(&mut self) -> Snapshot {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
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
        }
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
    }
}
