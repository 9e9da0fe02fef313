//! WASI waits bounded by the call's deadline.
//!
//! A plugin that sleeps or polls waits inside the host, where the epoch cannot
//! reach it. `wasi:io/poll`'s `poll` and `pollable.block` (which
//! `std::thread::sleep` uses) are replaced by versions that stop waiting at the
//! call's deadline and trap, so such a call ends as a deadline fault on time,
//! and its thread is free at once rather than given up on. Other blocking host
//! calls (a file that never answers) are left to the watchdog.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::io::poll::{Host as _, HostPollable as _};
use wasmtime_wasi::runtime::in_tokio;

use super::sandbox::Sandbox;

/// The `wasi:io` version wasmtime-wasi defines; a plugin's imports of any
/// `0.2.x` resolve to it, so this is the name to replace.
const POLL: &str = "wasi:io/poll@0.2.12";

/// Replaces `poll` and `pollable.block` in `linker` (after WASI was added).
pub fn bound_waits(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut poll = linker.instance(POLL)?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, Sandbox>, (p,): (Resource<DynPollable>,)| {
            let sandbox = store.data_mut();
            let deadline = sandbox.call_deadline().map(tokio::time::Instant::from_std);
            let waited = in_tokio(async {
                match deadline {
                    Some(at) => tokio::time::timeout_at(at, sandbox.table.block(p)).await.ok(),
                    None => Some(sandbox.table.block(p).await),
                }
            });
            match waited {
                Some(result) => result,
                None => Err(sandbox.waited_out()),
            }
        },
    )?;
    poll.func_wrap("poll", |mut store: StoreContextMut<'_, Sandbox>, (list,): (Vec<Resource<DynPollable>>,)| {
        let sandbox = store.data_mut();
        let deadline = sandbox.call_deadline().map(tokio::time::Instant::from_std);
        let waited = in_tokio(async {
            match deadline {
                Some(at) => tokio::time::timeout_at(at, sandbox.table.poll(list)).await.ok(),
                None => Some(sandbox.table.poll(list).await),
            }
        });
        match waited {
            Some(result) => Ok((result?,)),
            None => Err(sandbox.waited_out()),
        }
    })?;
    linker.allow_shadowing(false);
    Ok(())
}
