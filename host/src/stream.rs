//! The live stream: what the host publishes as it happens — samples, progress
//! events, alert transitions, plugin state and watch-job events — to any number
//! of API clients (`/v1/stream`, as Server-Sent Events or a WebSocket).
//!
//! - The host never waits on a client: [`Hub`] serializes a message once and
//!   puts it in its topic's fixed-size ring (a tokio broadcast channel); sending
//!   never blocks, and with no client listening nothing is serialized at all.
//! - Each client reads the rings at its own pace through a [`Session`]. One that
//!   falls behind a ring skips the samples and job events it missed (it is told
//!   how many), gets the plugins' latest state again, and reads the progress
//!   events and alert transitions it missed back from the database: those are
//!   never lost. The rings are small for big messages (samples), so a stalled
//!   client holds little memory, and it is dropped (see [`STALLED`]).
//! - A client that names series gets a samples message of its own, serialized
//!   from the tick's samples, which the message keeps ([`Tick`]).
//! - Progress events carry their feed id and alert transitions their history
//!   sequence number. A client that reconnects with the last ones it saw
//!   ([`Cursor`]) gets everything after them from the database, then the live
//!   rings, without duplicates; if retention already removed some, a `gap`
//!   message says from where the history goes on.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, watch};

use crate::metrics::Sample;
use crate::plugin::Listing;
use crate::store::alerts::HistoryEntry;
use crate::store::progress::ProgressEvent;
use crate::watch::JobEvent;

mod session;

pub use session::{Cursor, Session, StreamQuery, Subscription};

/// A client that takes nothing for this long while messages wait for it has
/// stopped reading: the host closes a WebSocket then. An SSE response is
/// closed by the kernel, somewhat later (`TCP_USER_TIMEOUT`, see
/// `api::server`).
pub const STALLED: Duration = Duration::from_secs(10);

/// What a client can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Topic {
    /// Every metric of a tick (machine, plugins, host), once per tick.
    Samples,
    /// Every accepted progress update, with its feed id.
    Progress,
    /// Every alert transition, with its history sequence number.
    Alerts,
    /// The plugin listing, whenever a plugin's state changes.
    Plugins,
    /// Watch jobs' runs starting and ending, rescans, skipped batches.
    Jobs,
}

impl Topic {
    pub const ALL: [Topic; 5] = [Topic::Samples, Topic::Progress, Topic::Alerts, Topic::Plugins, Topic::Jobs];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Samples => "samples",
            Topic::Progress => "progress",
            Topic::Alerts => "alerts",
            Topic::Plugins => "plugins",
            Topic::Jobs => "jobs",
        }
    }

    pub fn parse(text: &str) -> Result<Topic, String> {
        Topic::ALL.into_iter().find(|t| t.as_str() == text).ok_or_else(|| {
            let known: Vec<&str> = Topic::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown topic '{}'; the topics are {}", crate::text::line(text, 40), known.join(", "))
        })
    }

    /// How many messages a client may fall behind before it skips (or reads back).
    fn ring(self) -> usize {
        match self {
            Topic::Samples => 8,
            Topic::Progress => 4096,
            Topic::Alerts => 1024,
            Topic::Plugins => 16,
            Topic::Jobs => 1024,
        }
    }
}

/// One message as sent: `{"topic":…, "id":…, "data":…}` serialized once for
/// every client. `id` is the progress feed id or the alert sequence number, 0
/// for the other topics.
#[derive(Debug)]
pub struct Message {
    pub topic: &'static str,
    pub id: u64,
    /// The run of a progress event, for clients that follow one run.
    pub run: Option<Box<str>>,
    /// The samples of a tick, for clients that want some series only.
    pub tick: Option<Tick>,
    /// Set when made, except for a tick's samples: the first client to send
    /// them serializes them, on the API's threads rather than in the tick.
    json: OnceLock<Utf8Bytes>,
}

/// A tick's samples, as published.
#[derive(Debug, Clone)]
pub struct Tick {
    at_ms: u64,
    samples: Arc<Vec<Sample>>,
}

impl Tick {
    /// The samples message with only the series `keep` says yes to.
    fn json(&self, keep: impl Fn(&str) -> bool) -> Utf8Bytes {
        let samples: Vec<&Sample> = self.samples.iter().filter(|s| keep(&s.name)).collect();
        wire("samples", 0, &SamplesData { at_ms: self.at_ms, samples: &samples })
    }
}

#[derive(Serialize)]
struct Wire<'a, T: Serialize> {
    topic: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    id: u64,
    data: T,
}

fn is_zero(id: &u64) -> bool {
    *id == 0
}

fn wire(topic: &str, id: u64, data: &impl Serialize) -> Utf8Bytes {
    serde_json::to_string(&Wire { topic, id, data }).expect("stream messages serialize").into()
}

impl Message {
    pub fn new(topic: &'static str, id: u64, data: &impl Serialize) -> Message {
        Message { topic, id, run: None, tick: None, json: OnceLock::from(wire(topic, id, data)) }
    }

    /// The message as sent.
    pub fn json(&self) -> &Utf8Bytes {
        self.json.get_or_init(|| self.tick.as_ref().expect("only a tick is serialized late").json(|_| true))
    }

    /// A tick's samples, serialized by [`Message::json`] when first sent;
    /// `None` for a message given its JSON at once.
    fn samples(tick: Option<Tick>) -> Message {
        Message { topic: "samples", id: 0, run: None, tick, json: OnceLock::new() }
    }

    pub fn progress(event: &ProgressEvent) -> Message {
        Message { run: Some(event.path.run().into()), ..Message::new("progress", event.id, event) }
    }

    pub fn alert(entry: &HistoryEntry) -> Message {
        Message::new("alerts", entry.seq, entry)
    }
}

#[derive(Serialize)]
struct SamplesData<'a> {
    at_ms: u64,
    samples: &'a [&'a Sample],
}

/// The rings and the counters every [`Session`] shares; clones share them.
#[derive(Clone)]
pub struct Hub {
    rings: Arc<[broadcast::Sender<Arc<Message>>; 5]>,
    /// The plugins' latest state, sent first to every new client.
    plugins: Arc<Mutex<Option<Arc<Message>>>>,
    counters: Arc<Counters>,
    /// Set when the host stops: every session ends, so connections close.
    stopping: Arc<watch::Sender<bool>>,
}

#[derive(Default)]
struct Counters {
    clients: AtomicU64,
    skipped: AtomicU64,
    dropped: AtomicU64,
}

impl Default for Hub {
    fn default() -> Hub {
        Hub {
            rings: Arc::new(Topic::ALL.map(|t| broadcast::channel(t.ring()).0)),
            plugins: Arc::default(),
            counters: Arc::default(),
            stopping: Arc::new(watch::channel(false).0),
        }
    }
}

impl Hub {
    fn ring(&self, topic: Topic) -> &broadcast::Sender<Arc<Message>> {
        &self.rings[topic as usize]
    }

    fn listened(&self, topic: Topic) -> bool {
        self.ring(topic).receiver_count() > 0
    }

    fn send(&self, topic: Topic, message: Message) {
        // An error only means nobody listens.
        let _ = self.ring(topic).send(Arc::new(message));
    }

    pub fn publish_samples(&self, at_ms: u64, samples: &Arc<Vec<Sample>>) {
        if self.listened(Topic::Samples) {
            self.send(Topic::Samples, Message::samples(Some(Tick { at_ms, samples: samples.clone() })));
        }
    }

    /// Called after the events' commit, in feed order.
    pub fn publish_progress(&self, events: &[ProgressEvent]) {
        if self.listened(Topic::Progress) {
            for event in events {
                self.send(Topic::Progress, Message::progress(event));
            }
        }
    }

    /// Called after the entries' commit, in sequence order.
    pub fn publish_alerts(&self, entries: &[HistoryEntry]) {
        if self.listened(Topic::Alerts) {
            for entry in entries.iter().filter(|e| e.seq > 0) {
                self.send(Topic::Alerts, Message::alert(entry));
            }
        }
    }

    /// Kept as the latest state (new clients get it first) and sent.
    pub fn publish_plugins(&self, listing: &Listing) {
        let message = Arc::new(Message::new("plugins", 0, listing));
        *self.plugins.lock().expect("plugins lock") = Some(message.clone());
        let _ = self.ring(Topic::Plugins).send(message);
    }

    pub fn publish_job(&self, event: &JobEvent) {
        if self.listened(Topic::Jobs) {
            self.send(Topic::Jobs, Message::new("jobs", 0, event));
        }
    }

    fn latest_plugins(&self) -> Option<Arc<Message>> {
        self.plugins.lock().expect("plugins lock").clone()
    }

    /// Ends every session: the host is stopping.
    pub fn close(&self) {
        self.stopping.send_replace(true);
    }

    /// The stream's self-metrics, published with the host's.
    pub fn metrics(&self, now_ms: u64) -> Vec<Sample> {
        let c = &self.counters;
        [
            ("monitor_stream_clients", c.clients.load(Ordering::Relaxed)),
            ("monitor_stream_skipped_total", c.skipped.load(Ordering::Relaxed)),
            ("monitor_stream_dropped_total", c.dropped.load(Ordering::Relaxed)),
        ]
        .into_iter()
        .map(|(name, value)| crate::metrics::gauge(name, value as f64, "", now_ms))
        .collect()
    }
}
