//! Traffic per network interface, as rates of the kernel's counters. On Linux they
//! come from `/proc/net/dev`, one read for every interface; sysinfo, used elsewhere,
//! also asks for every interface's addresses each time, at about twenty times the cost.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use sysinfo::Networks;

use super::rate::Rates;

/// One interface since the previous sample; rates are `None` until there is one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkSample {
    pub interface: String,
    pub receive_bytes_per_second: Option<f64>,
    pub transmit_bytes_per_second: Option<f64>,
    pub receive_packets_per_second: Option<f64>,
    pub transmit_packets_per_second: Option<f64>,
    pub receive_errors_per_second: Option<f64>,
    pub transmit_errors_per_second: Option<f64>,
}

/// Received and transmitted bytes, packets, errors: `[rx, tx, rx, tx, rx, tx]`.
type Counters = [u64; 6];

pub struct NetworkSampler {
    /// Made only where `/proc/net/dev` cannot be read.
    networks: Option<Networks>,
    counters: Rates<String, 6>,
}

impl NetworkSampler {
    pub fn new() -> NetworkSampler {
        let mut sampler = NetworkSampler { networks: None, counters: Rates::default() };
        sampler.sample(Instant::now());
        sampler
    }

    /// Every interface, sorted by name.
    pub fn sample(&mut self, at: Instant) -> Vec<NetworkSample> {
        let readings = self.read();
        let mut out: Vec<NetworkSample> = self
            .counters
            .observe(readings, at)
            .into_iter()
            .map(|(interface, rates)| {
                let rate = |i: usize| rates.map(|r: [f64; 6]| r[i]);
                NetworkSample {
                    interface,
                    receive_bytes_per_second: rate(0),
                    transmit_bytes_per_second: rate(1),
                    receive_packets_per_second: rate(2),
                    transmit_packets_per_second: rate(3),
                    receive_errors_per_second: rate(4),
                    transmit_errors_per_second: rate(5),
                }
            })
            .collect();
        out.sort_by(|a, b| a.interface.cmp(&b.interface));
        out
    }

    /// Every interface listed now: they come and go (VPNs, containers).
    fn read(&mut self) -> Vec<(String, Counters)> {
        if let Ok(text) = std::fs::read_to_string("/proc/net/dev") {
            return parse_net_dev(&text);
        }
        let networks = self.networks.get_or_insert_with(Networks::new);
        networks.refresh(true);
        networks
            .list()
            .iter()
            .map(|(name, n)| {
                let counters = [
                    n.total_received(),
                    n.total_transmitted(),
                    n.total_packets_received(),
                    n.total_packets_transmitted(),
                    n.total_errors_on_received(),
                    n.total_errors_on_transmitted(),
                ];
                (name.clone(), counters)
            })
            .collect()
    }
}

/// The interfaces of a `/proc/net/dev` text with their counters; headers and
/// malformed lines are skipped.
pub fn parse_net_dev(text: &str) -> Vec<(String, Counters)> {
    text.lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(':')?;
            // Receive: bytes packets errs drop fifo frame compressed multicast; then transmit:
            // bytes packets errs drop fifo colls carrier compressed.
            let f: Vec<u64> = rest.split_whitespace().map(|f| f.parse().ok()).collect::<Option<_>>()?;
            (f.len() >= 16).then(|| (name.trim().to_string(), [f[0], f[8], f[1], f[9], f[2], f[10]]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET_DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 242371110  370592    0    0    0     0          0         0 242371110  370592    0    0    0     0       0          0
  eth0:244983154   13525    3    0    0     0          0         0   889017    8160    7    0    0     0       0          0
  bad0: 1 2 3
  bad1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x
";

    #[test]
    fn net_dev_gives_bytes_packets_and_errors_each_way() {
        let parsed = parse_net_dev(NET_DEV);
        assert_eq!(
            parsed,
            vec![
                ("lo".to_string(), [242_371_110, 242_371_110, 370_592, 370_592, 0, 0]),
                ("eth0".to_string(), [244_983_154, 889_017, 13_525, 8_160, 3, 7]),
            ]
        );
        assert!(parse_net_dev("").is_empty());
    }

    #[test]
    fn interfaces_are_sorted_and_have_rates_from_the_second_sample() {
        let mut sampler = NetworkSampler::new();
        let out = sampler.sample(Instant::now() + std::time::Duration::from_millis(100));
        let names: Vec<&str> = out.iter().map(|n| n.interface.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        if std::path::Path::new("/sys/class/net/lo").exists() {
            assert!(names.contains(&"lo"), "{names:?}");
        }
        for n in &out {
            assert!(n.receive_bytes_per_second.is_some_and(|r| r >= 0.0), "{n:?}");
            assert!(n.transmit_errors_per_second.is_some_and(|r| r >= 0.0), "{n:?}");
        }
    }

    #[test]
    fn sysinfo_lists_the_same_interfaces() {
        let from_proc: Vec<String> = parse_net_dev(&std::fs::read_to_string("/proc/net/dev").unwrap_or_default())
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        let mut sysinfo: Vec<String> = Networks::new_with_refreshed_list().list().keys().cloned().collect();
        let mut from_proc_sorted = from_proc.clone();
        from_proc_sorted.sort();
        sysinfo.sort();
        if !from_proc.is_empty() {
            assert_eq!(from_proc_sorted, sysinfo);
        }
    }
}
