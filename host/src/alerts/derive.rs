//! Series the built-in rules need that the sampler does not report: ratios,
//! so that one threshold fits every disk and every machine.
//!
//! - `monitor_disk_available_ratio{mount,device,filesystem}`: available / total
//!   bytes of a mount, joined on identical labels; mounts of size 0 are skipped.
//! - `monitor_memory_used_ratio`: used / total memory.
//!
//! A ratio already among the inputs (from the sampler one day, or a test) is
//! not derived again. The timestamp is the later one of the two samples.

use std::collections::HashMap;

use crate::metrics::Sample;

pub const DISK_AVAILABLE_RATIO: &str = "monitor_disk_available_ratio";
pub const MEMORY_USED_RATIO: &str = "monitor_memory_used_ratio";

/// The derived series missing from `index` (samples by name).
pub fn derive(index: &HashMap<&str, Vec<&Sample>>) -> Vec<Sample> {
    let mut out = Vec::new();
    let get = |name: &str| index.get(name).map_or(&[][..], Vec::as_slice);
    if !index.contains_key(DISK_AVAILABLE_RATIO) {
        for available in get("monitor_disk_available_bytes") {
            let total = get("monitor_disk_total_bytes").iter().find(|t| t.labels == available.labels);
            if let Some(ratio) = total.and_then(|total| ratio(DISK_AVAILABLE_RATIO, available, total)) {
                out.push(ratio);
            }
        }
    }
    if !index.contains_key(MEMORY_USED_RATIO) {
        let (used, total) = (get("monitor_memory_used_bytes"), get("monitor_memory_total_bytes"));
        if let (Some(used), Some(total)) = (used.first(), total.first()) {
            out.extend(ratio(MEMORY_USED_RATIO, used, total));
        }
    }
    out
}

fn ratio(name: &str, part: &Sample, total: &Sample) -> Option<Sample> {
    (total.value > 0.0).then(|| Sample {
        name: name.to_string(),
        labels: part.labels.clone(),
        value: part.value / total.value,
        unit: "ratio".to_string(),
        timestamp_ms: part.timestamp_ms.max(total.timestamp_ms),
    })
}
