//! What can go wrong in a plugin call, as the host counts and reports it.

use std::fmt;
use std::time::Duration;

/// A call that went wrong. All but `Returned` leave the instance unusable.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Deadline {
        call: &'static str,
        limit: Duration,
    },
    /// Still blocked in a host call (a sleep, a poll) past the deadline: the
    /// host stopped waiting for it.
    Hung {
        call: &'static str,
        limit: Duration,
    },
    Memory {
        call: &'static str,
        cap: usize,
    },
    OutputTooLarge {
        call: &'static str,
        detail: String,
    },
    Denied {
        call: &'static str,
        detail: String,
    },
    Trap {
        call: &'static str,
        detail: String,
    },
    /// The plugin answered with an error, as its contract allows: not a fault
    /// of its own, and the instance is still usable.
    Returned {
        call: &'static str,
        message: String,
    },
}

impl Fault {
    pub fn poisons_instance(&self) -> bool {
        !matches!(self, Fault::Returned { .. })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Deadline { call, limit } => write!(f, "{call} ran past its deadline of {} ms", limit.as_millis()),
            Fault::Hung { call, limit } => write!(
                f,
                "{call} was still blocked (in a sleep or another wait) past its deadline of {} ms; the host stopped waiting and starts a fresh instance",
                limit.as_millis()
            ),
            Fault::Memory { call, cap } => {
                write!(f, "{call} grew memory past the cap of {} MiB", cap >> 20)
            }
            Fault::OutputTooLarge { call, detail } => {
                write!(f, "{call} returned too much: {detail}")
            }
            Fault::Denied { call, detail } => write!(f, "{call} was refused: {detail}"),
            Fault::Trap { call, detail } => write!(f, "{call} trapped: {detail}"),
            Fault::Returned { call, message } => write!(f, "{call} returned an error: {message}"),
        }
    }
}
