//! Deadlines on every plugin call, whatever the plugin is doing.
//!
//! Running wasm is stopped by the engine's epoch: one ticker thread for the
//! process advances every registered engine's epoch each [`EPOCH_TICK`] while
//! any call runs, and sleeps when none has run for a few ticks, so an idle host
//! never wakes for it. Each instance has a [`Slot`] that says whether it is in
//! a call: starting a call costs one locked instruction (the handshake with a
//! ticker that may be falling asleep) and a wake-up only when it slept; ending
//! one, a plain store.
//!
//! A plugin blocked in a host call (a sleep, a poll, a wait) runs no wasm, so
//! the epoch cannot stop it. The same ticker watches each plugin thread's
//! current call ([`Busy`]); a call still going [`GRACE_TICKS`] past its epoch
//! deadline is given up on through the thread's [`Busy::on_hung`]: the caller
//! is answered with a fault and a fresh thread takes the plugin's next calls
//! (see [`super::actor`]).

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::thread::Thread;
use std::time::Duration;

use wasmtime::{Engine, EngineWeak};

/// How often the epoch advances; call deadlines are whole ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);
/// Ticks past the epoch deadline after which a call blocked in a host call is
/// given up on: a spinning plugin meets the epoch first, with its own fault.
pub const GRACE_TICKS: u64 = 40;
/// Ticks the ticker keeps going after the last call, so the calls of one
/// sampling tick share one wake-up.
const IDLE_TICKS: u32 = 2;

/// Set while the ticker sleeps: a call that starts then wakes it.
static ASLEEP: AtomicBool = AtomicBool::new(false);
/// Ticks so far; they only advance while the ticker is awake. 0 means "no call".
static TICKS: AtomicU64 = AtomicU64::new(1);

struct Ticker {
    thread: Thread,
    engines: Mutex<Vec<EngineWeak>>,
    watched: Mutex<Vec<Weak<Busy>>>,
    /// Every live instance's slot (dropped from here once only here).
    slots: Mutex<Vec<Arc<Slot>>>,
}

fn ticker() -> &'static Ticker {
    static TICKER: OnceLock<Ticker> = OnceLock::new();
    TICKER.get_or_init(|| {
        let thread = std::thread::Builder::new()
            .name("epoch-ticker".into())
            .spawn(run)
            .expect("spawning the epoch ticker")
            .thread()
            .clone();
        Ticker { thread, engines: Mutex::default(), watched: Mutex::default(), slots: Mutex::default() }
    })
}

/// Has the ticker advance `engine`'s epoch while calls run.
pub fn register_engine(engine: &Engine) {
    lock(&ticker().engines).push(engine.weak());
}

/// Ticks so far (they advance only while calls run).
pub fn ticks() -> u64 {
    TICKS.load(Ordering::Relaxed)
}

/// The epoch deadline of a call limited to `limit`, in ticks.
pub fn epoch_ticks(limit: Duration) -> u64 {
    limit.as_nanos().div_ceil(EPOCH_TICK.as_nanos()) as u64 + 1
}

/// The names of the calls a plugin thread can be in, for [`Busy`].
pub const CALLS: [&str; 7] = ["instantiate", "describe", "configure", "collect", "compute", "handle", "format"];

/// What the watchdog knows of one plugin thread: the call it is in, since when.
pub struct Busy {
    /// The current call: the tick it started at and a number of its own
    /// ([`pack`]); 0 while no call runs, [`CLAIMED`] once given up on.
    call: AtomicU64,
    /// Calls started so far, for [`pack`].
    calls: AtomicU64,
    /// Index into [`CALLS`] of the current call.
    name: AtomicU8,
    /// Ticks after which a call is given up on.
    limit_ticks: u64,
    /// What to do when the current call is given up on; taken once.
    on_hung: Mutex<Option<OnHung>>,
    /// Set when the thread was given up on: whatever it does later is dropped.
    abandoned: AtomicBool,
}

/// What a thread's watch does when it gives up on a call, given the call's name.
pub type OnHung = Box<dyn FnOnce(&'static str) + Send>;

/// What [`Busy::call`] holds once the watchdog has given up on the call.
const CLAIMED: u64 = u64::MAX;

/// A call's tick and number in one word, so the watchdog can claim exactly
/// the call it saw overdue and never the one after it.
fn pack(tick: u64, number: u64) -> u64 {
    (tick << 20) | (number & 0xF_FFFF)
}

impl Busy {
    /// A thread whose calls are limited to `limit` each, watched from now on.
    pub fn watch(limit: Duration, on_hung: OnHung) -> Arc<Busy> {
        let busy = Arc::new(Busy {
            call: AtomicU64::new(0),
            calls: AtomicU64::new(0),
            name: AtomicU8::new(0),
            limit_ticks: epoch_ticks(limit) + GRACE_TICKS,
            on_hung: Mutex::new(Some(on_hung)),
            abandoned: AtomicBool::new(false),
        });
        let mut watched = lock(&ticker().watched);
        watched.retain(|w| w.strong_count() > 0);
        watched.push(Arc::downgrade(&busy));
        busy
    }

    /// Whether the thread was given up on.
    pub fn abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    /// Gives up on the thread if its current call is past its limit at tick `now`.
    fn check(&self, now: u64) {
        let seen = self.call.load(Ordering::Acquire);
        if seen == 0 || seen == CLAIMED || now.saturating_sub(seen >> 20) <= self.limit_ticks {
            return;
        }
        // Claimed only if it is still the call seen: one that ended meanwhile is left alone.
        if self.call.compare_exchange(seen, CLAIMED, Ordering::AcqRel, Ordering::Acquire).is_err() {
            return;
        }
        // From now on its call no longer keeps the ticker awake.
        self.abandoned.store(true, Ordering::Release);
        let name = CALLS[usize::from(self.name.load(Ordering::Relaxed))];
        if let Some(on_hung) = lock(&self.on_hung).take() {
            on_hung(name);
        }
    }
}

/// Locks a mutex of the ticker's even if a panic poisoned it: the ticker must go on.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether one instance is in a call (how deep: opening its sandbox and
/// instantiating nest), as the ticker sees it. Only the instance's own thread
/// writes it.
pub struct Slot {
    depth: AtomicU32,
    /// The thread's watch: once it was given up on, its call no longer keeps the ticker awake.
    busy: Option<Arc<Busy>>,
}

impl Slot {
    /// The slot of a new instance, whose thread `busy` watches (if any).
    pub fn new(busy: Option<Arc<Busy>>) -> Arc<Slot> {
        let slot = Arc::new(Slot { depth: AtomicU32::new(0), busy });
        let mut slots = lock(&ticker().slots);
        slots.retain(|s| Arc::strong_count(s) > 1);
        slots.push(slot.clone());
        slot
    }

    fn in_call(&self) -> bool {
        self.depth.load(Ordering::SeqCst) > 0 && !self.busy.as_ref().is_some_and(|b| b.abandoned())
    }
}

/// Held for the length of one call into a plugin: the epoch advances meanwhile
/// and, with a [`Busy`], the watchdog times the call.
pub struct Call<'a> {
    slot: &'a Slot,
    depth: u32,
    busy: Option<&'a Busy>,
}

impl<'a> Call<'a> {
    pub fn start(slot: &'a Slot, busy: Option<&'a Busy>, call: &'static str) -> Call<'a> {
        if let Some(busy) = busy {
            let index = CALLS.iter().position(|c| *c == call).unwrap_or(0);
            busy.name.store(index as u8, Ordering::Relaxed);
            // Only this thread counts its calls: no read-modify-write needed.
            let number = busy.calls.load(Ordering::Relaxed);
            busy.calls.store(number + 1, Ordering::Relaxed);
            busy.call.store(pack(TICKS.load(Ordering::Relaxed), number), Ordering::Release);
        }
        let depth = slot.depth.load(Ordering::Relaxed);
        // The one full barrier: the ticker sets ASLEEP, then reads the slots.
        slot.depth.swap(depth + 1, Ordering::SeqCst);
        if ASLEEP.load(Ordering::SeqCst) {
            ticker().thread.unpark();
        }
        Call { slot, depth, busy }
    }
}

impl Drop for Call<'_> {
    fn drop(&mut self) {
        self.slot.depth.store(self.depth, Ordering::Release);
        if let Some(busy) = self.busy
            && busy.call.swap(0, Ordering::AcqRel) == CLAIMED
        {
            // Given up on while it ran.
            busy.abandoned.store(true, Ordering::Release);
        }
    }
}

/// Whether any instance is in a call.
fn any_call() -> bool {
    lock(&ticker().slots).iter().any(|s| s.in_call())
}

fn run() {
    let mut idle = 0;
    loop {
        if !any_call() {
            idle += 1;
            if idle > IDLE_TICKS {
                // A call that starts after this store sees it and wakes us; one
                // that started before is seen by the loads below.
                ASLEEP.store(true, Ordering::SeqCst);
                if !any_call() {
                    std::thread::park();
                }
                ASLEEP.store(false, Ordering::SeqCst);
                idle = 0;
                continue;
            }
        } else {
            idle = 0;
        }
        std::thread::sleep(EPOCH_TICK);
        let now = TICKS.fetch_add(1, Ordering::Relaxed) + 1;
        let ticker = ticker();
        lock(&ticker.engines).retain(|weak| match weak.upgrade() {
            Some(engine) => {
                engine.increment_epoch();
                true
            }
            None => false,
        });
        let watched: Vec<Arc<Busy>> = lock(&ticker.watched).iter().filter_map(Weak::upgrade).collect();
        for busy in watched {
            // Giving up on a call must never end the ticker, and with it every deadline.
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| busy.check(now))).is_err() {
                tracing::error!("the watchdog failed while giving up on a plugin call");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_until(mut condition: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !condition() {
            assert!(std::time::Instant::now() < deadline, "timed out");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_call_past_its_grace_is_given_up_on_once() {
        let (tx, rx) = std::sync::mpsc::channel();
        let busy = Busy::watch(Duration::from_millis(10), Box::new(move |call| tx.send(call).unwrap()));
        let slot = Slot::new(Some(busy.clone()));
        let call = Call::start(&slot, Some(&busy), "compute");
        assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("compute"));
        assert!(busy.abandoned());
        drop(call);
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err(), "once only");
    }

    /// The handshake: a call that starts at any point of the ticker's way to
    /// sleep (idle ticks, setting ASLEEP, the barrier, reading the slots) gets
    /// ticks; a missed wake-up would leave it without a deadline for good.
    #[test]
    fn a_call_that_starts_as_the_ticker_falls_asleep_still_gets_ticks() {
        let slot = Slot::new(None);
        for round in 0..100u64 {
            let until = std::time::Instant::now() + Duration::from_micros(round * 211 % 20_000);
            while std::time::Instant::now() < until {
                std::hint::spin_loop();
            }
            let call = Call::start(&slot, None, "collect");
            let from = TICKS.load(Ordering::Relaxed);
            wait_until(|| TICKS.load(Ordering::Relaxed) >= from + 2);
            drop(call);
        }
    }

    #[test]
    fn a_call_that_ends_in_time_is_left_alone_and_the_ticker_then_sleeps() {
        let (tx, rx) = std::sync::mpsc::channel();
        let busy = Busy::watch(Duration::from_millis(10), Box::new(move |call| tx.send(call).unwrap()));
        let slot = Slot::new(Some(busy.clone()));
        for _ in 0..3 {
            drop(Call::start(&slot, Some(&busy), "collect"));
        }
        // Another call keeps the ticker going well past the first calls' limit.
        let other = Slot::new(None);
        let keep = Call::start(&other, None, "collect");
        let from = TICKS.load(Ordering::Relaxed);
        wait_until(|| TICKS.load(Ordering::Relaxed) > from + busy.limit_ticks + 2);
        assert!(rx.try_recv().is_err() && !busy.abandoned(), "a finished call was given up on");
        drop(keep);
        wait_until(|| ASLEEP.load(Ordering::SeqCst));
    }
}
