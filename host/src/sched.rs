//! Which of the host's threads give way to which, on Linux.
//!
//! The tick, and the plugin threads it waits on, are latency work: [`prompt`]
//! gives them a short scheduler slice. Since Linux 6.12 the scheduler (EEVDF)
//! takes a thread's slice as its latency request: a thread with a short slice
//! preempts, on waking, one with a longer slice on its core instead of waiting
//! for that one's slice to end, yet gets no more CPU than its fair share. Older
//! kernels ignore the request.
//!
//! The API's threads and the history's writer are batch work ([`batch`]):
//! waking them never preempts anything. The API's also get a smaller share of
//! the CPU under load ([`NICENESS`]); the history's must keep up, and keeps its
//! share.
//!
//! Both are per thread on Linux. Elsewhere a nice value would be the whole
//! process's, so there both do nothing.

use std::time::Duration;

/// The latency work's slice: the shortest the kernel takes. The default
/// (1.4 ms on the 2-core machine BENCHMARKS.md was measured on) is as long as
/// a whole tick's work.
pub const SLICE: Duration = Duration::from_micros(100);

/// How much lower than the host's other threads the API's run (`nice`).
pub const NICENESS: i32 = 10;

/// Makes the calling thread latency work: a [`SLICE`]-long slice, its policy
/// and nice value as they were. Threads it starts inherit the slice.
pub fn prompt() {
    set(Attr { flags: KEEP_POLICY, policy: 0, nice: current_nice(), slice: SLICE });
}

/// Gives the calling thread the default slice, its policy and nice value as
/// they were: for threads a latency thread starts that are not latency work.
pub fn ordinary() {
    set(Attr { flags: KEEP_POLICY, policy: 0, nice: current_nice(), slice: Duration::ZERO });
}

/// Makes the calling thread batch work: `SCHED_BATCH`, so that waking it (a
/// message published, samples handed over) never preempts the thread that
/// woke it, its nice value raised by `lower_by` (a smaller share under load),
/// and the default slice.
pub fn batch(lower_by: i32) {
    set(Attr { flags: 0, policy: SCHED_BATCH, nice: current_nice() + lower_by, slice: Duration::ZERO });
}

/// Whatever policy the thread has (one started under `chrt`, say) stays.
const KEEP_POLICY: u64 = 0x08;
const SCHED_BATCH: u32 = 3;

struct Attr {
    flags: u64,
    policy: u32,
    nice: i32,
    /// Zero: the kernel's default.
    slice: Duration,
}

#[cfg(target_os = "linux")]
fn current_nice() -> i32 {
    // No pid: the calling thread.
    rustix::process::getpriority_process(None).unwrap_or(0)
}

/// `sched_setattr` on the calling thread.
#[cfg(target_os = "linux")]
fn set(attr: Attr) {
    /// The kernel's `struct sched_attr` (its first version, 48 bytes).
    #[repr(C)]
    struct SchedAttr {
        size: u32,
        policy: u32,
        flags: u64,
        nice: i32,
        priority: u32,
        runtime: u64,
        deadline: u64,
        period: u64,
    }
    let raw = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        policy: attr.policy,
        flags: attr.flags,
        nice: attr.nice,
        priority: 0,
        runtime: attr.slice.as_nanos() as u64,
        deadline: 0,
        period: 0,
    };
    // SAFETY: the calling thread (0), a valid attribute of the size it states, no flags.
    if unsafe { libc::syscall(libc::SYS_sched_setattr, 0, &raw const raw, 0) } != 0 {
        tracing::debug!("cannot set a thread's scheduling: {}", std::io::Error::last_os_error());
    }
}

#[cfg(not(target_os = "linux"))]
fn current_nice() -> i32 {
    0
}

#[cfg(not(target_os = "linux"))]
fn set(_: Attr) {}
