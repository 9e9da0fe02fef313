//! Sending the signal a user confirmed with `k`: only to the process that was shown,
//! never to one that took its PID since.

use rustix::io::Errno;
use rustix::process::{Pid, Signal as Raw, kill_process};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

use super::model::{Kill, Signal};

/// Sends the signal; what happened, in one line for the footer.
pub fn send(kill: &Kill) -> Result<String, String> {
    let Kill { pid, signal, .. } = *kill;
    let gone = || format!("process {pid} has ended; no signal sent");
    let Some(raw_pid) = Pid::from_raw(pid as i32) else { return Err(format!("{pid} is not a process id")) };
    // The start time tells the process apart from a later one with the same PID.
    match start_time(pid) {
        None => return Err(gone()),
        Some(started) if started != kill.start_time_secs => {
            return Err(format!("PID {pid} is another process now; no signal sent"));
        }
        Some(_) => {}
    }
    let raw = match signal {
        Signal::Term => Raw::TERM,
        Signal::Kill => Raw::KILL,
    };
    match kill_process(raw_pid, raw) {
        Ok(()) => Ok(format!("sent {} to {pid}", signal.name())),
        Err(Errno::SRCH) => Err(gone()),
        Err(Errno::PERM) => Err(format!("not permitted to signal {pid}: it is another user's; run top as that user")),
        Err(e) => Err(format!("signalling {pid}: {e}")),
    }
}

/// When the process `pid` started, in seconds since the epoch; none if there is none.
fn start_time(pid: u32) -> Option<u64> {
    let mut system = System::new();
    let id = sysinfo::Pid::from_u32(pid);
    system.refresh_processes_specifics(ProcessesToUpdate::Some(&[id]), true, ProcessRefreshKind::nothing());
    system.process(id).map(|p| p.start_time())
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn kill_of(child: &std::process::Child, start_time_secs: u64, signal: Signal) -> Kill {
        Kill { pid: child.id(), start_time_secs, command: "sleep".into(), signal }
    }

    #[test]
    fn signals_the_process_shown_and_no_other() {
        let mut child = Command::new("sleep").arg("600").spawn().unwrap();
        let started = start_time(child.id()).expect("the child runs");
        let refused = send(&kill_of(&child, started + 3600, Signal::Term)).unwrap_err();
        assert!(refused.contains("another process now"), "{refused}");
        assert!(child.try_wait().unwrap().is_none(), "a PID taken by another process is left alone");

        assert_eq!(send(&kill_of(&child, started, Signal::Kill)), Ok(format!("sent SIGKILL to {}", child.id())));
        let status = child.wait().unwrap();
        assert_eq!(std::os::unix::process::ExitStatusExt::signal(&status), Some(9));
        let gone = send(&kill_of(&child, started, Signal::Term)).unwrap_err();
        assert!(gone.contains("has ended"), "{gone}");
    }
}
