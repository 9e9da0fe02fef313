//! One thread per running plugin. It owns the plugin's store, so calls to a
//! plugin are serialized and a slow plugin never holds up another.
//!
//! Every call has a deadline the host keeps whatever the plugin does
//! ([`super::deadline`]). A call still blocked past it is given up on: its
//! caller is answered with [`Fault::Hung`] at once, the thread is left to end
//! whenever the call returns (whatever it does then is dropped), and a fresh
//! thread, with a fresh instance, serves the calls queued behind it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak, mpsc};
use std::time::Instant;

use super::deadline::Busy;
use super::instance::{Fault, Instance, Limits};
use super::load::Loaded;
use super::sandbox::SandboxSpec;
use super::stats::Stats;

/// Everything a plugin's instance is made from; a replacement is made from it too.
#[derive(Clone)]
pub struct Plan {
    pub loaded: Loaded,
    pub spec: SandboxSpec,
    pub limits: Limits,
    /// The text handed to `configure`; `None` to not call it (to ask for `describe` only).
    pub config: Option<String>,
}

/// The instance a plugin thread calls into, made when first needed and again
/// after a fault left it unusable.
pub struct Worker {
    plan: Plan,
    busy: Option<Arc<Busy>>,
    instance: Option<Instance>,
    /// The highest memory any of its instances reached, in bytes.
    peak: usize,
}

impl Worker {
    /// `busy` lets the watchdog time its calls.
    pub fn new(plan: Plan, busy: Option<Arc<Busy>>) -> Worker {
        Worker { plan, busy, instance: None, peak: 0 }
    }

    /// Calls into a live instance, first making one if there is none; a fault
    /// that leaves the instance unusable drops it.
    pub fn call<R>(&mut self, f: impl FnOnce(&mut Instance) -> Result<R, Fault>) -> Result<R, Fault> {
        let result = self.live().and_then(f);
        if let Some(instance) = &self.instance {
            self.peak = self.peak.max(instance.memory_peak());
        }
        if let Err(fault) = &result
            && fault.poisons_instance()
        {
            self.instance = None;
        }
        result
    }

    /// The highest memory its instances reached, in bytes.
    pub fn memory_peak(&self) -> usize {
        self.peak
    }

    fn live(&mut self) -> Result<&mut Instance, Fault> {
        if self.instance.is_none() {
            let plan = &self.plan;
            let mut instance = Instance::new(&plan.loaded, &plan.spec, plan.limits, self.busy.clone())?;
            if let Some(config) = &plan.config {
                instance.configure(config)?;
            }
            self.instance = Some(instance);
        }
        Ok(self.instance.as_mut().expect("just set"))
    }
}

/// A queued call; the number is the thread generation that runs it.
type QueuedCall = Box<dyn FnOnce(&mut Worker, u64) + Send>;
/// Answers a call's caller; used once, by the thread or by the watchdog.
type Reply<T> = Box<dyn FnOnce(Result<T, Fault>) + Send>;
/// Answers the running call's caller with a fault.
type Abort = Box<dyn FnOnce(Fault) + Send>;

/// What a plugin's successive threads share.
struct Lane {
    name: Arc<str>,
    plan: Plan,
    stats: Arc<Mutex<Stats>>,
    /// Taken by one thread at a time: the current one.
    queue: Mutex<mpsc::Receiver<QueuedCall>>,
    /// How to answer the running call, with the generation that runs it.
    running: Mutex<Option<(u64, Abort)>>,
    /// Set when no thread can serve the queue (one could not be started):
    /// calls are refused rather than left waiting.
    closed: AtomicBool,
}

impl Lane {
    fn running(&self) -> MutexGuard<'_, Option<(u64, Abort)>> {
        self.running.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A handle to a plugin's thread; dropping every handle stops the thread.
#[derive(Clone)]
pub struct Actor {
    jobs: mpsc::Sender<QueuedCall>,
    lane: Arc<Lane>,
}

impl Actor {
    /// Starts the plugin's thread; its instance is made on the first call.
    pub fn spawn(name: &str, plan: Plan, stats: Arc<Mutex<Stats>>) -> Actor {
        let (jobs, queue) = mpsc::channel::<QueuedCall>();
        let lane = Arc::new(Lane {
            name: name.into(),
            plan,
            stats,
            queue: Mutex::new(queue),
            running: Mutex::new(None),
            closed: AtomicBool::new(false),
        });
        serve_from(&lane, 0);
        Actor { jobs, lane }
    }

    /// Queues `f` on the plugin's thread at once and returns its answer to await;
    /// `None` when the plugin has been stopped.
    pub fn run<T, F>(&self, f: F) -> impl Future<Output = Option<Result<T, Fault>>> + use<T, F>
    where
        T: Send + 'static,
        F: FnOnce(&mut Worker) -> Result<T, Fault> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.send(f, Box::new(move |result| drop(reply.send(result))));
        async move { if sent { answer.await.ok() } else { None } }
    }

    /// Same as [`Actor::run`], for callers outside the async runtime.
    pub fn run_blocking<T, F>(&self, f: F) -> Option<Result<T, Fault>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Worker) -> Result<T, Fault> + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        if !self.send(f, Box::new(move |result| drop(reply.send(result)))) {
            return None;
        }
        answer.recv().ok()
    }

    fn send<T, F>(&self, f: F, reply: Reply<T>) -> bool
    where
        T: Send + 'static,
        F: FnOnce(&mut Worker) -> Result<T, Fault> + Send + 'static,
    {
        let lane = self.lane.clone();
        let job: QueuedCall = Box::new(move |worker, generation| {
            // The thread and the watchdog race to answer; the first one does,
            // and records the call in the plugin's self-metrics.
            let slot = Arc::new(Mutex::new(Some(reply)));
            let abort: Abort = {
                let (slot, stats) = (slot.clone(), lane.stats.clone());
                let limit = lane.plan.limits.call_timeout;
                Box::new(move |fault| {
                    if let Some(reply) = slot.lock().expect("reply lock").take() {
                        stats.lock().expect("stats lock").record(limit, Some(&fault), 0);
                        reply(Err(fault));
                    }
                })
            };
            *lane.running() = Some((generation, abort));
            let started = Instant::now();
            let result = f(worker);
            let took = started.elapsed();
            {
                let mut running = lane.running();
                if running.as_ref().is_some_and(|(g, _)| *g == generation) {
                    *running = None;
                }
            }
            if let Some(reply) = slot.lock().expect("reply lock").take() {
                let fault = result.as_ref().err();
                lane.stats.lock().expect("stats lock").record(took, fault, worker.memory_peak());
                reply(result);
            }
        });
        !self.lane.closed.load(Ordering::Acquire) && self.jobs.send(job).is_ok()
    }
}

/// Starts generation `generation` of the lane's thread, watched by the watchdog.
fn serve_from(lane: &Arc<Lane>, generation: u64) {
    let weak = Arc::downgrade(lane);
    let busy = Busy::watch(lane.plan.limits.call_timeout, Box::new(move |call| given_up(&weak, generation, call)));
    let worker = Worker::new(lane.plan.clone(), Some(busy.clone()));
    let serving = lane.clone();
    let spawned = std::thread::Builder::new()
        .name(format!("plugin:{}", lane.name))
        .spawn(move || serve(&serving, worker, generation, &busy));
    if let Err(e) = spawned {
        tracing::error!(plugin = %lane.name, "cannot start a plugin thread: {e}; its calls are refused");
        lane.closed.store(true, Ordering::Release);
        // Dropped, the queued calls answer their callers: the plugin is stopped.
        let queue = lane.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while queue.try_recv().is_ok() {}
    }
}

fn serve(lane: &Lane, mut worker: Worker, generation: u64, busy: &Busy) {
    // The tick waits for its calls.
    crate::sched::prompt();
    loop {
        let job = {
            let queue = lane.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if busy.abandoned() {
                break;
            }
            match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut worker, generation)));
        if let Err(panic) = ran {
            // A failure of the host's own: the caller is answered, the instance made anew.
            let detail = panic_text(&panic);
            tracing::error!(plugin = %lane.name, "the host failed while calling the plugin: {detail}");
            let abort = take_running(lane, generation);
            if let Some(abort) = abort {
                abort(Fault::Trap { call: "call", detail: format!("the host failed while calling it: {detail}") });
            }
            worker = Worker::new(lane.plan.clone(), worker.busy.clone());
        }
        if busy.abandoned() {
            break;
        }
    }
    let mut stats = lane.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    stats.hung_threads = stats.hung_threads.saturating_sub(1);
    tracing::info!(plugin = %lane.name, "a plugin call given up on has ended; its thread is gone");
}

/// The watchdog gave up on generation `generation`'s call `call`: answer its
/// caller and have a fresh thread serve the queue.
fn given_up(lane: &Weak<Lane>, generation: u64, call: &'static str) {
    let Some(lane) = lane.upgrade() else { return };
    let hung = {
        let mut stats = lane.stats.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        stats.hung_threads += 1;
        stats.hung_threads
    };
    let limit = lane.plan.limits.call_timeout;
    tracing::warn!(
        plugin = %lane.name, hung,
        "{call} is blocked past its deadline of {} ms; a fresh instance takes the plugin's next calls",
        limit.as_millis()
    );
    // Taken before the next thread starts, so that thread cannot put its own in its place.
    let abort = take_running(&lane, generation);
    serve_from(&lane, generation + 1);
    if let Some(abort) = abort {
        abort(Fault::Hung { call, limit });
    }
}

/// How to answer the call generation `generation` is running, if any.
fn take_running(lane: &Lane, generation: u64) -> Option<Abort> {
    let mut running = lane.running();
    match running.take() {
        Some((g, abort)) if g == generation => Some(abort),
        other => {
            *running = other;
            None
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    let text = panic.downcast_ref::<String>().map(String::as_str).or_else(|| panic.downcast_ref::<&str>().copied());
    crate::text::line(text.unwrap_or("a panic"), 300)
}
