//! Space per mounted filesystem (sysinfo) and I/O per block device. sysinfo counts
//! bytes per mount but not operations, so on Linux the I/O comes from
//! `/proc/diskstats`, per whole device, as iostat and node_exporter read it.

use std::collections::HashSet;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sysinfo::{DiskRefreshKind, Disks};

use super::rate::Rates;

/// Space on one mounted filesystem.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MountSample {
    pub mount_point: String,
    /// The device as mounted, e.g. `/dev/nvme0n1p2`.
    pub device: String,
    pub filesystem: String,
    pub total_bytes: u64,
    pub available_bytes: u64,
    /// In use, as `df` counts it (blocks less free blocks): space reserved for
    /// the superuser is neither used nor available to others.
    #[serde(default)]
    pub used_bytes: u64,
}

impl MountSample {
    /// How full it is, as `df` says: used out of what users can have.
    pub fn used_percent(&self) -> f64 {
        let usable = self.used_bytes + self.available_bytes;
        if usable == 0 { 0.0 } else { 100.0 * self.used_bytes as f64 / usable as f64 }
    }
}

/// Bytes in use on the filesystem at `mount`, as `df` counts them.
fn used_bytes(mount: &std::path::Path) -> Option<u64> {
    let stat = rustix::fs::statvfs(mount).ok()?;
    Some(stat.f_blocks.saturating_sub(stat.f_bfree).saturating_mul(stat.f_frsize))
}

/// I/O of one block device since the previous sample; `None` until there is one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BlockDeviceSample {
    /// The kernel's name, e.g. `nvme0n1`.
    pub device: String,
    pub read_bytes_per_second: Option<f64>,
    pub write_bytes_per_second: Option<f64>,
    /// Completed reads per second; unknown where the platform does not count them.
    pub read_operations_per_second: Option<f64>,
    pub write_operations_per_second: Option<f64>,
}

/// Read bytes, written bytes, reads, writes.
type Counters = [u64; 4];

/// `/proc/diskstats` counts 512-byte sectors whatever the device's sector size.
const SECTOR_BYTES: u64 = 512;

pub struct DiskSampler {
    disks: Disks,
    /// sysinfo's own I/O counters are only needed where `/proc/diskstats` is missing.
    refresh: DiskRefreshKind,
    io: Rates<String, 4>,
}

impl DiskSampler {
    pub fn new() -> DiskSampler {
        let diskstats = std::path::Path::new("/proc/diskstats").exists();
        let refresh = if diskstats {
            DiskRefreshKind::nothing().with_storage()
        } else {
            DiskRefreshKind::nothing().with_storage().with_io_usage()
        };
        let mut sampler = DiskSampler { disks: Disks::new(), refresh, io: Rates::default() };
        sampler.sample(Instant::now());
        sampler
    }

    /// Space per mount, sorted by mount point, and I/O rates per device, sorted by name.
    pub fn sample(&mut self, at: Instant) -> (Vec<MountSample>, Vec<BlockDeviceSample>) {
        // Listing again each time picks up mounts that come and go.
        self.disks.refresh_specifics(true, self.refresh);
        let mut mounts: Vec<MountSample> = self
            .disks
            .list()
            .iter()
            .map(|d| MountSample {
                mount_point: d.mount_point().to_string_lossy().into_owned(),
                device: d.name().to_string_lossy().into_owned(),
                filesystem: d.file_system().to_string_lossy().into_owned(),
                total_bytes: d.total_space(),
                available_bytes: d.available_space(),
                used_bytes: used_bytes(d.mount_point())
                    .unwrap_or_else(|| d.total_space().saturating_sub(d.available_space())),
            })
            .collect();
        // A mount point mounted over again shows the last mount: keep that one.
        mounts.reverse();
        mounts.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        mounts.dedup_by(|later, kept| later.mount_point == kept.mount_point);

        let (counters, counts_operations) = match std::fs::read_to_string("/proc/diskstats") {
            Ok(text) => (parse_diskstats(&text, whole_disk_filter()), true),
            Err(_) => (self.sysinfo_counters(), false),
        };
        let mut devices: Vec<BlockDeviceSample> = self
            .io
            .observe(counters, at)
            .into_iter()
            .map(|(device, rates)| {
                let rate = |i: usize| rates.map(|r: [f64; 4]| r[i]);
                let ops = |i: usize| if counts_operations { rate(i) } else { None };
                BlockDeviceSample {
                    device,
                    read_bytes_per_second: rate(0),
                    write_bytes_per_second: rate(1),
                    read_operations_per_second: ops(2),
                    write_operations_per_second: ops(3),
                }
            })
            .collect();
        devices.sort_by(|a, b| a.device.cmp(&b.device));
        (mounts, devices)
    }

    /// Bytes per mounted device from sysinfo, without operation counts.
    fn sysinfo_counters(&self) -> Vec<(String, Counters)> {
        let mut seen = HashSet::new();
        self.disks
            .list()
            .iter()
            .filter(|d| seen.insert(d.name().to_os_string()))
            .map(|d| {
                let usage = d.usage();
                (d.name().to_string_lossy().into_owned(), [usage.total_read_bytes, usage.total_written_bytes, 0, 0])
            })
            .collect()
    }
}

/// Which `/proc/diskstats` names to keep: whole devices (those in `/sys/block`, so
/// not partitions, whose I/O their device already counts), without the virtual
/// ones node_exporter also leaves out by default. With no `/sys/block`, every name.
fn whole_disk_filter() -> impl Fn(&str) -> bool {
    let whole: HashSet<String> = std::fs::read_dir("/sys/block")
        .map(|dir| dir.flatten().filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default();
    move |name: &str| (whole.is_empty() || whole.contains(name)) && !is_virtual(name)
}

fn is_virtual(name: &str) -> bool {
    ["loop", "ram", "zram", "fd"]
        .iter()
        .any(|prefix| name.strip_prefix(prefix).is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit())))
}

/// The devices of a `/proc/diskstats` text that `keep` accepts, with their read and
/// written bytes and completed reads and writes. Malformed lines are skipped.
pub fn parse_diskstats(text: &str, keep: impl Fn(&str) -> bool) -> Vec<(String, Counters)> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let name = fields.nth(2)?;
            // reads, reads merged, sectors read, ms reading, writes, writes merged, sectors written
            let numbers: Vec<u64> = fields.take(7).map(|f| f.parse().ok()).collect::<Option<_>>()?;
            if numbers.len() < 7 || !keep(name) {
                return None;
            }
            let bytes = |sectors: u64| sectors.saturating_mul(SECTOR_BYTES);
            Some((name.to_string(), [bytes(numbers[2]), bytes(numbers[6]), numbers[0], numbers[4]]))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DISKSTATS: &str = "\
   7       0 loop0 12 0 40 1 0 0 0 0 0 4 1 0 0 0 0 0 0
 259       0 nvme0n1 1407985 36532 138257978 3120144 539491 117464 212493192 959231 0 199124 4103445 53057 43 104374776 20842 63586 3228
 259       1 nvme0n1p1 100 0 800 5 7 0 56 2 0 10 7 0 0 0 0 0 0
 253       0 zram0 9 0 72 0 3 0 24 0 0 0 0 0 0 0 0 0 0
   8       0 sda 4 1 8 0
   8      16 sdb x 0 8 0 1 0 8 0 0 0 0
";

    #[test]
    fn diskstats_gives_bytes_and_operations_of_the_devices_kept() {
        let all = parse_diskstats(DISKSTATS, |_| true);
        let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["loop0", "nvme0n1", "nvme0n1p1", "zram0"], "short and malformed lines are skipped");
        assert_eq!(all[1].1, [138_257_978 * 512, 212_493_192 * 512, 1_407_985, 539_491]);

        let whole = |n: &str| n == "nvme0n1" || n == "loop0" || n == "zram0";
        let kept = parse_diskstats(DISKSTATS, |n| whole(n) && !is_virtual(n));
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].0, "nvme0n1");
    }

    #[test]
    fn virtual_devices_are_recognised_by_name() {
        for name in ["loop0", "loop12", "ram0", "zram1", "fd0"] {
            assert!(is_virtual(name), "{name}");
        }
        for name in ["sda", "nvme0n1", "vda", "dm-0", "md0", "loop", "looped1", "fdx"] {
            assert!(!is_virtual(name), "{name}");
        }
    }

    #[test]
    fn this_machine_has_mounts_with_space_and_devices_with_rates_on_the_second_sample() {
        let mut sampler = DiskSampler::new();
        let (mounts, devices) = sampler.sample(Instant::now() + std::time::Duration::from_millis(100));
        for m in &mounts {
            assert!(m.available_bytes <= m.total_bytes, "{m:?}");
            assert!(!m.mount_point.is_empty());
        }
        let mut sorted = mounts.clone();
        sorted.sort_by(|a, b| a.mount_point.cmp(&b.mount_point));
        assert_eq!(mounts, sorted);
        for d in &devices {
            let rates = [d.read_bytes_per_second, d.write_bytes_per_second];
            assert!(rates.iter().all(|r| r.is_some_and(|r| r >= 0.0)), "{d:?}");
        }
    }
}
