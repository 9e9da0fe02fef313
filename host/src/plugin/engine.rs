//! The process-wide wasmtime engine: configuration, the epoch ticker that bounds
//! every call (and sleeps while no call runs), the linker with the host's
//! imports, and the on-disk compile cache.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::HostView;
use super::sandbox::Sandbox;

/// How often the epoch advances; call deadlines are whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<Sandbox>,
    cache_dir: Option<PathBuf>,
    engine_key: String,
}

/// A compiled component and whether it came from the cache.
pub struct Compiled {
    pub component: Component,
    pub from_cache: bool,
}

impl Runtime {
    /// `cache_dir`: where compiled plugins are kept between runs (none: compile every time).
    pub fn new(cache_dir: Option<PathBuf>) -> wasmtime::Result<Runtime> {
        let mut config = Config::new();
        config.epoch_interruption(true);
        let engine = Engine::new(&config)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        HostView::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());

        spawn_ticker(&engine);
        Ok(Runtime { engine, linker, cache_dir, engine_key })
    }

    /// Compiles `bytes` (whose BLAKE3 is `hash`), or loads the artifact cached by
    /// an earlier run of the same engine configuration.
    pub fn compile(&self, bytes: &[u8], hash: &str) -> wasmtime::Result<Compiled> {
        let Some(dir) = &self.cache_dir else {
            return Ok(Compiled { component: Component::new(&self.engine, bytes)?, from_cache: false });
        };
        let path = dir.join(format!("{hash}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: files in the cache directory are written only by `store_artifact`
            // below, from `Component::serialize` of this engine configuration (the key
            // is in the name); wasmtime checks the header and refuses a mismatch.
            match unsafe { Component::deserialize_file(&self.engine, &path) } {
                Ok(component) => {
                    return Ok(Compiled { component, from_cache: true });
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), "discarding unreadable compiled plugin: {e}")
                }
            }
        }
        let component = Component::new(&self.engine, bytes)?;
        if let Err(e) = store_artifact(&component, dir, &path) {
            tracing::warn!(path = %path.display(), "cannot cache compiled plugin: {e:#}");
        }
        Ok(Compiled { component, from_cache: false })
    }
}

/// Writes through a temporary file so a crash never leaves half an artifact.
fn store_artifact(component: &Component, dir: &Path, path: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let bytes = component.serialize()?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

/// How many plugin calls are running in this process, and a wake-up for the
/// tickers when one starts: an idle host does not wake every tick.
static ACTIVE_CALLS: Mutex<usize> = Mutex::new(0);
static CALL_STARTED: Condvar = Condvar::new();

/// Held for the length of a plugin call so that the epoch advances meanwhile.
pub struct Ticking(());

impl Ticking {
    pub fn start() -> Ticking {
        *ACTIVE_CALLS.lock().expect("call count lock") += 1;
        CALL_STARTED.notify_all();
        Ticking(())
    }
}

impl Drop for Ticking {
    fn drop(&mut self) {
        *ACTIVE_CALLS.lock().expect("call count lock") -= 1;
    }
}

/// Advances the engine's epoch while any call runs, until the engine is dropped.
fn spawn_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            loop {
                {
                    let active = ACTIVE_CALLS.lock().expect("call count lock");
                    // Wake now and then to notice a dropped engine.
                    let (active, _) = CALL_STARTED
                        .wait_timeout_while(active, Duration::from_secs(1), |n| *n == 0)
                        .expect("call count lock");
                    if *active == 0 {
                        if weak.upgrade().is_none() {
                            return;
                        }
                        continue;
                    }
                }
                std::thread::sleep(EPOCH_TICK);
                let Some(engine) = weak.upgrade() else { return };
                engine.increment_epoch();
            }
        })
        .expect("spawning the epoch ticker");
}
