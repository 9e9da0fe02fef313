//! One thread per running plugin. It owns the plugin's store, so calls to a
//! plugin are serialized and a slow plugin never holds up another.

use std::sync::{Arc, Mutex, mpsc};
use std::time::Instant;

use super::instance::{Fault, Instance, Limits};
use super::load::Loaded;
use super::sandbox::SandboxSpec;
use super::stats::Stats;

/// Everything needed to (re)create the plugin's instance, and the instance.
pub struct Worker {
    loaded: Loaded,
    spec: SandboxSpec,
    limits: Limits,
    config: String,
    instance: Option<Instance>,
    pub stats: Arc<Mutex<Stats>>,
}

impl Worker {
    /// Instantiates and configures the plugin; an error here means it cannot run.
    pub fn start(
        loaded: Loaded,
        spec: SandboxSpec,
        limits: Limits,
        config: String,
        stats: Arc<Mutex<Stats>>,
    ) -> Result<Worker, Fault> {
        let mut instance = Instance::new(&loaded, &spec, limits)?;
        instance.configure(&config)?;
        Ok(Worker { loaded, spec, limits, config, instance: Some(instance), stats })
    }

    /// Calls into a live instance, first replacing one a fault left unusable,
    /// and records the call in the plugin's self-metrics.
    pub fn call<R>(&mut self, f: impl FnOnce(&mut Instance) -> Result<R, Fault>) -> Result<R, Fault> {
        let started = Instant::now();
        let result = self.live().and_then(f);
        let mut stats = self.stats.lock().expect("stats lock");
        stats.record_call(started.elapsed());
        if let Some(instance) = &self.instance {
            stats.memory_peak_bytes = stats.memory_peak_bytes.max(instance.memory_peak() as u64);
        }
        match &result {
            Ok(_) => stats.record_success(),
            Err(fault) => {
                stats.record_fault(fault.to_string());
                if fault.poisons_instance() {
                    self.instance = None;
                }
            }
        }
        result
    }

    fn live(&mut self) -> Result<&mut Instance, Fault> {
        if self.instance.is_none() {
            let mut instance = Instance::new(&self.loaded, &self.spec, self.limits)?;
            instance.configure(&self.config)?;
            self.instance = Some(instance);
        }
        Ok(self.instance.as_mut().expect("just set"))
    }
}

type Job = Box<dyn FnOnce(&mut Worker) + Send>;

/// A handle to a plugin's thread; dropping every handle stops the thread.
#[derive(Clone)]
pub struct Actor {
    jobs: mpsc::Sender<Job>,
}

impl Actor {
    pub fn spawn(name: &str, mut worker: Worker) -> Actor {
        let (jobs, inbox) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(format!("plugin:{name}"))
            .spawn(move || {
                // The tick waits for its calls.
                crate::sched::prompt();
                for job in inbox {
                    job(&mut worker);
                }
            })
            .expect("spawning a plugin thread");
        Actor { jobs }
    }

    /// Queues `f` on the plugin's thread at once and returns its answer to await;
    /// `None` when the plugin has been stopped.
    pub fn run<R, F>(&self, f: F) -> impl std::future::Future<Output = Option<R>> + use<R, F>
    where
        R: Send + 'static,
        F: FnOnce(&mut Worker) -> R + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |worker| {
            let _ = reply.send(f(worker));
        });
        let sent = self.jobs.send(job).is_ok();
        async move { if sent { answer.await.ok() } else { None } }
    }

    /// Same as [`Actor::run`], for callers outside the async runtime.
    pub fn run_blocking<R: Send + 'static>(&self, f: impl FnOnce(&mut Worker) -> R + Send + 'static) -> Option<R> {
        let (reply, answer) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |worker| {
            let _ = reply.send(f(worker));
        });
        self.jobs.send(job).ok()?;
        answer.recv().ok()
    }
}
