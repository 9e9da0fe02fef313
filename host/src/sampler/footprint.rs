//! This process's own CPU and memory, so the monitor's overhead is always visible.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sysinfo::{Pid, ProcessRefreshKind, ProcessesToUpdate, System};

use super::rate::per_second;

/// What this process costs the machine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Footprint {
    /// CPU use since the previous sample, in percent of one core (0 on the first).
    pub cpu_percent: f32,
    pub rss_bytes: u64,
}

/// Refreshes this process alone, in a `System` of its own that other samplers' process
/// refreshes cannot disturb.
pub struct FootprintSampler {
    system: System,
    pid: Option<Pid>,
    /// CPU time used by then, in milliseconds.
    last: Option<(Instant, u64)>,
}

impl FootprintSampler {
    pub fn new() -> FootprintSampler {
        let mut sampler = FootprintSampler { system: System::new(), pid: sysinfo::get_current_pid().ok(), last: None };
        sampler.sample();
        sampler
    }

    pub fn sample(&mut self) -> Footprint {
        let Some(pid) = self.pid else { return Footprint::default() };
        let kind = ProcessRefreshKind::nothing().without_tasks().with_cpu().with_memory();
        self.system.refresh_processes_specifics(ProcessesToUpdate::Some(&[pid]), true, kind);
        let Some(process) = self.system.process(pid) else { return Footprint::default() };
        // From the CPU time used, not sysinfo's share: that stays 0 after a refresh at which
        // the process had used no CPU time yet, as a command just started may not have.
        let (at, cpu_ms) = (Instant::now(), process.accumulated_cpu_time());
        let cpu_ms_per_second =
            self.last.and_then(|(then, before)| per_second(before, cpu_ms, at.saturating_duration_since(then)));
        self.last = Some((at, cpu_ms));
        Footprint { cpu_percent: (cpu_ms_per_second.unwrap_or(0.0) / 10.0) as f32, rss_bytes: process.memory() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_uses_memory_and_some_cpu() {
        let mut sampler = FootprintSampler::new();
        burn(std::time::Duration::from_millis(250));
        let footprint = sampler.sample();
        assert!(footprint.rss_bytes > 1 << 20, "{footprint:?}");
        assert!(footprint.cpu_percent > 0.0 && footprint.cpu_percent.is_finite(), "{footprint:?}");
    }

    fn burn(time: std::time::Duration) {
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed() < time {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
    }
}
