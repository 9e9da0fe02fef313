//! Many hosts from one terminal: each host of the hosts file ([`crate::fleet`])
//! asked at once through its own [`Remote`], each within a few seconds.

use super::Remote;
use crate::error::CommandResult;
pub use crate::fleet::{Entry, HOST_TIMEOUT, hosts_file, read};

/// Asks every host at once; per host, in the file's order, its answer or why there is none.
pub fn ask<T: Send>(
    entries: &[Entry],
    question: impl Fn(&Remote) -> CommandResult<T> + Sync,
) -> Vec<(String, Result<T, String>)> {
    crate::fleet::each(entries, |_, base, token| {
        question(&Remote::with_timeout(base, token, HOST_TIMEOUT)).map_err(|e| e.to_string())
    })
}
