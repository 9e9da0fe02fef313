//! The process-wide wasmtime engine: configuration, the linker with the host's
//! imports, compiling, and the on-disk compile cache. Its epoch is advanced by
//! [`super::deadline`].
//!
//! Compiling is heavy and untrusted input drives it: Cranelift's memory stays
//! with the process that ran it, and a crafted module can make it run for a
//! long time. So a [`Compiler`] can run it in a short-lived child process of
//! `monitor` itself, under a memory and a time limit, that writes the artifact
//! to the cache; the host only maps the result, exactly as on a start from the
//! cache. The cache lives in the data directory, which no grant may reach.

use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::HostView;
use super::sandbox::Sandbox;

/// Where and under which limits plugins are compiled.
#[derive(Debug, Clone)]
pub struct Compiler {
    /// The `monitor` binary to compile in (`monitor __compile-plugin`); `None`
    /// compiles in this process (tests, and programs that link the library).
    pub exe: Option<PathBuf>,
    pub timeout: Duration,
    /// The child's data limit (`RLIMIT_DATA`).
    pub memory_bytes: u64,
}

impl Compiler {
    /// Compiles in a child process of this very binary: `/proc/self/exe`,
    /// which is still this program's file after a package upgrade replaced it
    /// on disk (so the artifact matches this engine).
    pub fn child(timeout: Duration, memory_bytes: u64) -> Compiler {
        let exe = if cfg!(target_os = "linux") { Some("/proc/self/exe".into()) } else { std::env::current_exe().ok() };
        Compiler { exe, timeout, memory_bytes }
    }
}

impl Default for Compiler {
    fn default() -> Compiler {
        Compiler { exe: None, timeout: Duration::from_secs(120), memory_bytes: 2 << 30 }
    }
}

pub struct Runtime {
    pub engine: Engine,
    pub linker: Linker<Sandbox>,
    cache_dir: Option<PathBuf>,
    engine_key: String,
    compiler: Compiler,
}

/// A compiled component and whether it came from the cache.
pub struct Compiled {
    pub component: Component,
    pub from_cache: bool,
}

/// The engine's configuration: the host and its compiling child must agree.
fn engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    Engine::new(&config)
}

impl Runtime {
    /// `cache_dir`: where compiled plugins are kept between runs (none: compile
    /// every time). Compiles in this process; see [`Runtime::compile_with`].
    pub fn new(cache_dir: Option<PathBuf>) -> wasmtime::Result<Runtime> {
        let engine = engine()?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        super::wait::bound_waits(&mut linker)?;
        HostView::add_to_linker::<_, HasSelf<Sandbox>>(&mut linker, |s| s)?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());

        if let Some(dir) = &cache_dir {
            let removed = sweep(dir, &engine_key);
            if removed > 0 {
                tracing::info!(dir = %dir.display(), "removed {removed} compiled plugin file(s) the cache no longer needs");
            }
        }
        super::deadline::register_engine(&engine);
        Ok(Runtime { engine, linker, cache_dir, engine_key, compiler: Compiler::default() })
    }

    /// Compiles with `compiler` from now on.
    pub fn compile_with(mut self, compiler: Compiler) -> Runtime {
        self.compiler = compiler;
        self
    }

    /// Removes the artifacts of plugin files other than `files` (those of the
    /// plugin directory, after a scan): a file deleted, renamed, or compiled
    /// once by an offline command from another directory keeps nothing.
    pub fn retain(&self, files: &[PathBuf]) {
        let Some(dir) = &self.cache_dir else { return };
        let stems: Vec<String> = files.iter().map(|f| artifact_stem(&f.display().to_string())).collect();
        remove_artifacts(dir, |stem, _| !stems.iter().any(|s| s == stem));
    }

    /// Compiles `bytes` (whose BLAKE3 is `hash`, read from `file`), or loads the
    /// artifact cached by an earlier run of the same engine configuration.
    pub fn compile(&self, bytes: &[u8], hash: &str, file: &str) -> anyhow::Result<Compiled> {
        let Some(dir) = &self.cache_dir else {
            anyhow::ensure!(self.compiler.exe.is_none(), "compiling in a child process needs a cache directory");
            return Ok(Compiled { component: Component::new(&self.engine, bytes)?, from_cache: false });
        };
        let stem = artifact_stem(file);
        let path = dir.join(format!("{stem}.{hash}-{}.cwasm", self.engine_key));
        if path.exists() {
            match load(&self.engine, &path) {
                Ok(component) => return Ok(Compiled { component, from_cache: true }),
                Err(e) => tracing::warn!(path = %path.display(), "discarding unreadable compiled plugin: {e}"),
            }
        }
        // Owner-only, as the rest of the data directory.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(dir)
            .with_context(|| format!("cannot create the compile cache {}", dir.display()))?;
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let written = match &self.compiler.exe {
            Some(exe) => compile_in_child(exe, &self.compiler, bytes, &tmp),
            None => Component::new(&self.engine, bytes)
                .and_then(|c| c.serialize())
                .map_err(|e| anyhow::anyhow!("{e:#}"))
                .and_then(|artifact| {
                    crate::paths::write_private(&tmp, &artifact)
                        .with_context(|| format!("cannot write {}", tmp.display()))
                }),
        };
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // Through a temporary file, so a crash never leaves half an artifact.
        std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
        let component = load(&self.engine, &path)?;
        // A plugin rebuilt a hundred times while it is written leaves one
        // artifact, not a hundred (a mapped one stays readable to the
        // instances still using it).
        remove_artifacts(dir, |other, at| other == stem && at != path);
        Ok(Compiled { component, from_cache: false })
    }
}

/// The part of an artifact's name that says which plugin file it came from:
/// the file's name without `.wasm` in characters safe in a file name, and a
/// hash of its full path, so that no two files share one (`a b.wasm`, `a_b.wasm`,
/// or one name in two directories); never a `.`, the separator before the
/// content hash.
fn artifact_stem(file: &str) -> String {
    let stem = Path::new(file).file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
    let safe = |c: char| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' };
    let name: String = stem.chars().take(48).map(safe).collect();
    format!("{name}-{}", &blake3::hash(file.as_bytes()).to_hex()[..8])
}

/// Removes the artifacts in `dir` (`STEM.HASH-KEY.cwasm`) that `doomed`
/// picks by their stem and path.
fn remove_artifacts(dir: &Path, doomed: impl Fn(&str, &Path) -> bool) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stem = name.to_str().and_then(|n| n.split_once('.')).filter(|(_, rest)| rest.ends_with(".cwasm"));
        if stem.is_some_and(|(stem, _)| doomed(stem, &entry.path())) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Removes what the cache no longer needs as a runtime starts: artifacts of
/// another engine configuration (an earlier `monitor`: they never load again)
/// and temporary files whose process is gone (a host killed while it
/// compiled), or is this one, which has compiled nothing yet (a host that is
/// always PID 1 in its container). Returns how many files it removed.
fn sweep(dir: &Path, engine_key: &str) -> usize {
    let gone = |pid: &str| {
        let pid = pid.parse::<i32>().ok().filter(|pid| *pid > 0);
        pid.is_some_and(|pid| {
            pid.unsigned_abs() == std::process::id()
                || rustix::process::Pid::from_raw(pid)
                    .is_some_and(|pid| rustix::process::test_kill_process(pid) == Err(rustix::io::Errno::SRCH))
        })
    };
    let current = format!("-{engine_key}.cwasm");
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let stale = entries.flatten().filter(|entry| {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { return false };
        match name.rsplit_once('.') {
            // `STEM.HASH-KEY.cwasm`, this engine's key, a stem before the hash.
            Some((_, "cwasm")) => !name.strip_suffix(&current).is_some_and(|named| named.contains('.')),
            Some((_, extension)) => extension.strip_prefix("tmp").is_some_and(gone),
            None => false,
        }
    });
    stale.filter(|entry| std::fs::remove_file(entry.path()).is_ok()).count()
}

fn load(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: files in the cache directory are written only by `compile` above,
    // from `Component::serialize` of this engine configuration (the key is in
    // the name), here or in a child of this binary; wasmtime checks the header
    // and refuses a mismatch. No grant can reach the cache (`HostDirs`).
    Ok(unsafe { Component::deserialize_file(engine, path) }?)
}

/// Runs `monitor __compile-plugin OUT` with the plugin on its standard input,
/// under `compiler`'s limits; the child dies with the host.
fn compile_in_child(exe: &Path, compiler: &Compiler, bytes: &[u8], out: &Path) -> anyhow::Result<()> {
    use std::os::unix::process::CommandExt;
    let mut command = Command::new(exe);
    command
        .arg("__compile-plugin")
        .arg(out)
        .env_remove("MONITOR_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    // CPU time counts every compiling thread: the wall clock below is the limit
    // that matters; this one only stops a child that outlives its parent's watch.
    let (memory, cpu) = (compiler.memory_bytes, 4 * compiler.timeout.as_secs() + 1);
    // SAFETY: the closure only makes system calls (prctl, setrlimit), which are
    // safe between fork and exec.
    unsafe {
        command.pre_exec(move || {
            use rustix::process::{Resource, Rlimit, Signal, set_parent_process_death_signal, setrlimit};
            set_parent_process_death_signal(Some(Signal::KILL))?;
            setrlimit(Resource::Data, Rlimit { current: Some(memory), maximum: Some(memory) })?;
            setrlimit(Resource::Cpu, Rlimit { current: Some(cpu), maximum: Some(cpu) })?;
            Ok(())
        });
    }
    let mut child = command.spawn().map_err(|e| anyhow::anyhow!("cannot start {} to compile: {e}", exe.display()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = bytes.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = (&mut stderr).take(64 << 10).read_to_string(&mut text);
        text
    });
    let (done_tx, done) = std::sync::mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = done_tx.send(child.wait());
    });
    let status = match done.recv_timeout(compiler.timeout) {
        Ok(status) => status?,
        Err(_) => {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).expect("a child's PID is positive"),
                rustix::process::Signal::KILL,
            );
            let _ = done.recv();
            anyhow::bail!(
                "compiling took longer than {} s (plugins.compile_timeout_secs); the compiler was stopped",
                compiler.timeout.as_secs()
            );
        }
    };
    let _ = feeder.join();
    if status.success() {
        return Ok(());
    }
    let said = errors.join().unwrap_or_default();
    let last = said.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("").trim();
    let said = crate::text::line(last.strip_prefix("monitor: ").unwrap_or(last), 300);
    use std::os::unix::process::ExitStatusExt;
    match status.signal() {
        Some(signal) => anyhow::bail!(
            "the compiler was killed by signal {signal} (past plugins.compile_memory_mib = {} or its time?){}",
            compiler.memory_bytes >> 20,
            if said.is_empty() { String::new() } else { format!(": {said}") }
        ),
        None => anyhow::bail!("{said}"),
    }
}

/// `monitor __compile-plugin OUT`: compiles the component on standard input and
/// writes the artifact to `OUT`; run by [`Compiler`], not by people.
pub fn compile_plugin_command(out: &Path) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    std::io::stdin().read_to_end(&mut bytes)?;
    let engine = engine().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let component = Component::new(&engine, &bytes).map_err(|e| anyhow::anyhow!("{e:#}"))?;
    let artifact = component.serialize().map_err(|e| anyhow::anyhow!("{e:#}"))?;
    crate::paths::write_private(out, &artifact).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cache_sheds_other_engines_artifacts_and_dead_compiles_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let key = Runtime::new(None).unwrap().engine_key;
        let dead = i32::MAX; // above any pid_max: never a process
        let mut alive = Command::new("cat").stdin(Stdio::piped()).spawn().unwrap();
        let file = |name: String| {
            std::fs::write(dir.path().join(&name), b"x").unwrap();
            name
        };
        let kept = [
            file(format!("a.aa-{key}.cwasm")),
            file(format!("b.bb-{key}.tmp{}", alive.id())),
            file("notes.txt".into()),
            file("c.cc.tmpnot-a-pid".into()),
            file("d.dd.tmp-1".into()),
            file("e.ee.tmp0".into()),
        ];
        let removed = [
            file("a.aa-0123456789abcdef.cwasm".into()),
            file(format!("aa-{key}.cwasm")), // named before artifacts named their file
            file(format!("d.dd-{key}.tmp{dead}")),
            file(format!("f.ff-{key}.tmp{}", std::process::id())),
        ];
        assert_ne!(key, "0123456789abcdef");

        Runtime::new(Some(dir.path().to_path_buf())).unwrap();
        drop(alive.stdin.take());
        alive.wait().unwrap();
        for name in kept {
            assert!(dir.path().join(&name).exists(), "{name} was removed");
        }
        for name in removed {
            assert!(!dir.path().join(&name).exists(), "{name} was kept");
        }
    }

    #[test]
    fn a_new_version_of_a_plugin_file_replaces_its_artifact_and_no_other() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = Runtime::new(Some(dir.path().to_path_buf())).unwrap();
        let artifacts = || {
            let mut names: Vec<String> =
                std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
            names.sort();
            names
        };
        let version = |n: u32| wat::parse_str(format!("(component (core module (func (export \"f{n}\"))))")).unwrap();
        let compile = |n: u32, file: &str| {
            let bytes = version(n);
            runtime.compile(&bytes, &crate::plugin::load::hash(&bytes), file).unwrap().from_cache
        };
        for n in 0..3 {
            compile(n, "/plugins/my plugin.wasm");
        }
        // Names alike once made safe, or alike in two directories, each keep their own.
        for file in ["/plugins/my_plugin.wasm", "/elsewhere/my plugin.wasm"] {
            compile(9, file);
        }
        let names = artifacts();
        assert_eq!(names.len(), 3, "{names:?}");
        let mine = format!(
            "{}.{}-{}.cwasm",
            artifact_stem("/plugins/my plugin.wasm"),
            crate::plugin::load::hash(&version(2)),
            runtime.engine_key
        );
        assert!(mine.starts_with("my_plugin-"), "{mine}");
        assert!(names.contains(&mine), "{names:?}");
        // The cached artifacts load with no compile.
        assert!(compile(2, "/plugins/my plugin.wasm") && compile(9, "/plugins/my_plugin.wasm"));

        // Once the plugin directory holds only one of them, only its artifact stays.
        runtime.retain(&[PathBuf::from("/plugins/my plugin.wasm")]);
        assert_eq!(artifacts(), vec![mine]);
    }
}
