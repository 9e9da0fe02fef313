//! One client's reading of the stream: its topics, where it got to, and what it
//! missed, read back from the database.

use std::collections::{BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Deserialize;
use serde_json::json;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::watch;

use super::{Hub, Message, STALLED, Topic};
use crate::store::{Store, StoreError};

/// Most events read back from the database at once.
const READ_BACK: usize = 1000;

/// Where a client got to: the last progress feed id and alert sequence number
/// it saw. Written `p12.a3` (either part may be left out): the SSE event id,
/// and what `after=` takes to resume.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub progress: Option<u64>,
    pub alerts: Option<u64>,
}

impl Cursor {
    pub fn parse(text: &str) -> Result<Cursor, String> {
        let mut cursor = Cursor::default();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let (slot, number) = if let Some(n) = part.strip_prefix('p') {
                (&mut cursor.progress, n)
            } else if let Some(n) = part.strip_prefix('a') {
                (&mut cursor.alerts, n)
            } else {
                return Err(bad_cursor(text));
            };
            *slot = Some(number.parse().map_err(|_| bad_cursor(text))?);
        }
        Ok(cursor)
    }
}

fn bad_cursor(text: &str) -> String {
    format!(
        "cursor '{}' is not like 'p12.a3' (the last progress event id and alert sequence number seen); pass the id of the last event received",
        crate::text::line(text, 40)
    )
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = [("p", self.progress), ("a", self.alerts)]
            .into_iter()
            .filter_map(|(tag, n)| n.map(|n| format!("{tag}{n}")))
            .collect();
        f.write_str(&parts.join("."))
    }
}

/// The comma-separated items of a parameter; `None` when absent or empty.
fn list(text: &Option<String>) -> Option<impl Iterator<Item = &str>> {
    text.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(|t| t.split(',').map(str::trim))
}

/// A client's request as it comes (`/v1/stream?topics=…&run=…&series=…&after=…`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    pub topics: Option<String>,
    pub run: Option<String>,
    pub series: Option<String>,
    pub after: Option<String>,
}

/// What a client asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub topics: BTreeSet<Topic>,
    /// Only this run's progress events.
    pub run: Option<String>,
    /// Only these series (metric names) in the samples.
    pub series: Option<BTreeSet<String>>,
    /// Resume after these (from the database); live only where unset.
    pub after: Cursor,
}

impl Subscription {
    /// From `topics=a,b` (all when absent), `run=`, `series=a,b` and `after=`.
    pub fn parse(request: &StreamQuery) -> Result<Subscription, String> {
        let topics = match list(&request.topics) {
            None => Topic::ALL.into_iter().collect(),
            Some(names) => names.map(Topic::parse).collect::<Result<_, _>>()?,
        };
        let series = list(&request.series).map(|names| names.filter(|n| !n.is_empty()).map(str::to_string).collect());
        let run = request.run.clone().filter(|r| !r.is_empty());
        let after = request.after.as_deref().map(Cursor::parse).transpose()?.unwrap_or_default();
        Ok(Subscription { topics, run, series, after })
    }
}

/// See the [module docs](self) and [`super`].
pub struct Session {
    hub: Hub,
    store: Store,
    run: Option<String>,
    series: Option<BTreeSet<String>>,
    rings: [Option<broadcast::Receiver<Arc<Message>>>; 5],
    stopping: watch::Receiver<bool>,
    /// The last progress feed id and alert sequence number delivered (or
    /// passed over: what came before the client connected).
    progress: u64,
    alerts: u64,
    queue: VecDeque<Arc<Message>>,
    reading_back: bool,
    /// When the connection was last handed a message, and whether it is
    /// still writing it out (it has not asked for the next one since): one
    /// that ends so after [`STALLED`] ended because its client stopped reading.
    last_handed: Instant,
    writing: bool,
    given_up: bool,
}

impl Session {
    /// Subscribes first, then reads where the database is, so nothing
    /// committed after this call is missed.
    pub async fn open(hub: &Hub, store: Store, want: Subscription) -> Result<Session, StoreError> {
        let rings = Topic::ALL.map(|t| want.topics.contains(&t).then(|| hub.ring(t).subscribe()));
        let reader = store.clone();
        let (progress_last, alerts_last) = tokio::task::spawn_blocking(move || {
            Ok::<_, StoreError>((reader.progress_feed_last()?, reader.alerts_last_seq()?))
        })
        .await
        .expect("the store read does not panic")?;
        hub.counters.clients.fetch_add(1, Ordering::Relaxed);
        let mut queue = VecDeque::new();
        if want.topics.contains(&Topic::Plugins) {
            queue.extend(hub.latest_plugins());
        }
        let durable = |t| want.topics.contains(&t);
        Ok(Session {
            hub: hub.clone(),
            store,
            reading_back: (durable(Topic::Progress) && want.after.progress.is_some())
                || (durable(Topic::Alerts) && want.after.alerts.is_some()),
            // A cursor from ahead of this database (another host, a new data
            // directory) starts at its end rather than skipping what comes.
            progress: want.after.progress.map_or(progress_last, |p| p.min(progress_last)),
            alerts: want.after.alerts.map_or(alerts_last, |a| a.min(alerts_last)),
            run: want.run,
            series: want.series,
            rings,
            stopping: hub.stopping.subscribe(),
            queue,
            last_handed: Instant::now(),
            writing: false,
            given_up: false,
        })
    }

    /// Whether the client subscribed to `topic`.
    fn reads(&self, topic: Topic) -> bool {
        self.rings[topic as usize].is_some()
    }

    /// Where this client got to, for the durable topics it reads.
    pub fn cursor(&self) -> Cursor {
        Cursor {
            progress: self.reads(Topic::Progress).then_some(self.progress),
            alerts: self.reads(Topic::Alerts).then_some(self.alerts),
        }
    }

    /// The next message for this client; `None` once the host stops (or the
    /// database cannot be read back).
    pub async fn next(&mut self) -> Option<Arc<Message>> {
        self.writing = false;
        loop {
            if let Some(message) = self.ready() {
                return Some(message);
            }
            if self.reading_back {
                if let Err(e) = self.read_back().await {
                    tracing::error!("stream: reading missed events back from the database: {e}");
                    return None;
                }
                continue;
            }
            let (topic, got) = self.recv().await;
            let got = match got {
                Ok(message) => Ok(message),
                Err(RecvError::Lagged(missed)) => Err(missed),
                Err(RecvError::Closed) => return None,
            };
            if let Some(message) = self.took(topic, got) {
                return Some(message);
            }
        }
    }

    /// A message that is there now, without waiting: `None` when there is
    /// none, or when the database is to be read first (which `next` does).
    /// Lets a connection write what has piled up in one go.
    pub fn ready(&mut self) -> Option<Arc<Message>> {
        loop {
            if let Some(message) = self.queue.pop_front() {
                return Some(self.handed(message));
            }
            if self.reading_back || *self.stopping.borrow() {
                return None;
            }
            let mut found = false;
            for topic in Topic::ALL {
                let got = match &mut self.rings[topic as usize] {
                    Some(ring) => ring.try_recv(),
                    None => continue,
                };
                let got = match got {
                    Ok(message) => Ok(message),
                    Err(TryRecvError::Lagged(missed)) => Err(missed),
                    Err(TryRecvError::Empty | TryRecvError::Closed) => continue,
                };
                found = true;
                if let Some(message) = self.took(topic, got) {
                    return Some(message);
                }
            }
            if !found {
                return None;
            }
        }
    }

    /// What `topic`'s ring gave, a message or how many were missed: the
    /// message to hand over, if it is one for this client.
    fn took(&mut self, topic: Topic, got: Result<Arc<Message>, u64>) -> Option<Arc<Message>> {
        match got {
            Ok(message) => self.admit(topic, message).map(|message| self.handed(message)),
            Err(missed) => {
                self.lagged(topic, missed);
                None
            }
        }
    }

    fn handed(&mut self, message: Arc<Message>) -> Arc<Message> {
        (self.last_handed, self.writing) = (Instant::now(), true);
        message
    }

    /// The connection gave up on its client: it took nothing for [`STALLED`].
    pub fn give_up(&mut self) {
        self.given_up = true;
    }

    /// Messages wait for this client.
    fn waiting(&self) -> bool {
        !self.queue.is_empty() || self.rings.iter().flatten().any(|ring| !ring.is_empty())
    }

    async fn recv(&mut self) -> (Topic, Result<Arc<Message>, RecvError>) {
        async fn from(ring: &mut Option<broadcast::Receiver<Arc<Message>>>) -> Result<Arc<Message>, RecvError> {
            match ring {
                Some(ring) => ring.recv().await,
                None => std::future::pending().await,
            }
        }
        let [samples, progress, alerts, plugins, jobs] = &mut self.rings;
        let stopping = &mut self.stopping;
        tokio::select! {
            _ = stopping.wait_for(|stop| *stop) => (Topic::Samples, Err(RecvError::Closed)),
            got = from(samples) => (Topic::Samples, got),
            got = from(progress) => (Topic::Progress, got),
            got = from(alerts) => (Topic::Alerts, got),
            got = from(plugins) => (Topic::Plugins, got),
            got = from(jobs) => (Topic::Jobs, got),
        }
    }

    /// Drops what this client already has (read back, or from before it came)
    /// and what is not its run; keeps only its series of the samples.
    fn admit(&mut self, topic: Topic, message: Arc<Message>) -> Option<Arc<Message>> {
        let last = match topic {
            Topic::Progress => &mut self.progress,
            Topic::Alerts => &mut self.alerts,
            Topic::Samples => return Some(self.only_series(message)),
            _ => return Some(message),
        };
        if message.id <= *last {
            return None;
        }
        *last = message.id;
        self.wanted(&message).then_some(message)
    }

    /// The samples of the client's series, serialized for it alone.
    fn only_series(&self, message: Arc<Message>) -> Arc<Message> {
        match (&self.series, &message.tick) {
            (Some(series), Some(tick)) => {
                let json = tick.json(|name| series.contains(name)).into();
                Arc::new(Message { json, ..Message::samples(None) })
            }
            _ => message,
        }
    }

    fn wanted(&self, message: &Message) -> bool {
        match (&self.run, &message.run) {
            (Some(run), Some(of)) => **run == **of,
            _ => true,
        }
    }

    /// The client fell `missed` messages behind `topic`'s ring.
    fn lagged(&mut self, topic: Topic, missed: u64) {
        match topic {
            Topic::Progress | Topic::Alerts => self.reading_back = true,
            Topic::Plugins => self.queue.extend(self.hub.latest_plugins()),
            Topic::Samples | Topic::Jobs => {
                self.hub.counters.skipped.fetch_add(missed, Ordering::Relaxed);
                let notice = json!({ "topic": topic, "missed": missed });
                self.queue.push_back(Arc::new(Message::new("lagged", 0, &notice)));
            }
        }
    }

    /// Queues the progress events and alert transitions after the client's
    /// cursor, a chunk at a time, until the database has no more.
    async fn read_back(&mut self) -> Result<(), StoreError> {
        let store = self.store.clone();
        let progress = self.reads(Topic::Progress).then_some(self.progress);
        let alerts = self.reads(Topic::Alerts).then_some(self.alerts);
        let (events, entries) = tokio::task::spawn_blocking(move || {
            let events = progress.map(|after| store.progress_feed(after, READ_BACK)).transpose()?;
            let entries = alerts.map(|after| store.alerts_after(after, READ_BACK)).transpose()?;
            Ok::<_, StoreError>((events, entries))
        })
        .await
        .expect("the store read does not panic")?;
        let mut more = false;
        if let Some((events, oldest)) = events {
            self.gap(Topic::Progress, self.progress, oldest);
            more |= events.len() == READ_BACK;
            for event in events {
                self.progress = event.id;
                let message = Message::progress(&event);
                if self.wanted(&message) {
                    self.queue.push_back(Arc::new(message));
                }
            }
        }
        if let Some((entries, oldest)) = entries {
            self.gap(Topic::Alerts, self.alerts, oldest);
            more |= entries.len() == READ_BACK;
            for entry in entries {
                self.alerts = entry.seq;
                self.queue.push_back(Arc::new(Message::alert(&entry)));
            }
        }
        self.reading_back = more;
        Ok(())
    }

    /// Says so when events after `after` are no longer kept.
    fn gap(&mut self, topic: Topic, after: u64, oldest: Option<u64>) {
        if let Some(oldest) = oldest.filter(|&o| o > after.saturating_add(1)) {
            let notice = json!({ "topic": topic, "after": after, "oldest": oldest });
            self.queue.push_back(Arc::new(Message::new("gap", 0, &notice)));
        }
    }
}

impl Drop for Session {
    /// Counts the client as dropped when its connection gave up on it, or
    /// ended (the kernel's `TCP_USER_TIMEOUT`) having been handed nothing for
    /// [`STALLED`] while still writing out the last message or with more
    /// waiting; not when it ended idle, waiting for messages.
    fn drop(&mut self) {
        self.hub.counters.clients.fetch_sub(1, Ordering::Relaxed);
        let stalled = self.last_handed.elapsed() >= STALLED && (self.writing || self.waiting());
        if self.given_up || stalled {
            self.hub.counters.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::info!("stream client dropped: it accepted nothing for {STALLED:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::progress::{NodePath, Op, Update};
    use crate::store::progress::ProgressEvent;

    fn open_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        (dir, store)
    }

    /// Commits one update per path, as the writer does, and publishes the events.
    fn report(store: &Store, hub: &Hub, paths: &[&str]) -> Vec<ProgressEvent> {
        let batch: Vec<_> =
            paths.iter().map(|p| (NodePath::parse(p).unwrap(), Update::new(Op::Advance { units: 1.0 }))).collect();
        let (_, events) = store.progress_apply_with(&batch, 1, None).unwrap();
        hub.publish_progress(&events);
        events
    }

    fn request(topics: Option<&str>, run: Option<&str>, after: Option<&str>) -> StreamQuery {
        let text = |t: Option<&str>| t.map(str::to_string);
        StreamQuery { topics: text(topics), run: text(run), after: text(after), series: None }
    }

    fn want(topics: &str, run: Option<&str>, after: Option<&str>) -> Subscription {
        Subscription::parse(&request(Some(topics), run, after)).unwrap()
    }

    async fn next(session: &mut Session) -> serde_json::Value {
        let message = tokio::time::timeout(Duration::from_secs(10), session.next()).await.expect("a message").unwrap();
        serde_json::from_str(message.json()).unwrap()
    }

    /// The feed ids of the next `n` messages, which must all be progress events.
    async fn ids(session: &mut Session, n: usize) -> Vec<u64> {
        let mut out = Vec::new();
        for _ in 0..n {
            let m = next(session).await;
            assert_eq!(m["topic"], "progress", "{m}");
            out.push(m["id"].as_u64().unwrap());
        }
        out
    }

    #[tokio::test]
    async fn a_resumed_session_reads_back_then_goes_on_live_without_duplicates() {
        let (_dir, store) = open_store();
        let hub = Hub::default();
        report(&store, &hub, &["r/a", "r/b", "s/a", "r/c"]);
        let mut resumed = Session::open(&hub, store.clone(), want("progress", None, Some("p2"))).await.unwrap();
        let mut live = Session::open(&hub, store.clone(), want("progress", None, None)).await.unwrap();
        let mut one_run = Session::open(&hub, store.clone(), want("progress", Some("r"), Some("p0"))).await.unwrap();
        let later = report(&store, &hub, &["s/b", "r/d"]);
        // The feed's newest event published again must not reach anyone twice.
        hub.publish_progress(&later[1..]);
        report(&store, &hub, &["r/e"]);

        assert_eq!(ids(&mut resumed, 5).await, [3, 4, 5, 6, 7]);
        assert_eq!(ids(&mut live, 3).await, [5, 6, 7], "live only: what came after it connected");
        assert_eq!(ids(&mut one_run, 5).await, [1, 2, 4, 6, 7]);
        assert_eq!(one_run.cursor().to_string(), "p7");
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_loses_no_progress_and_skips_samples() {
        let (_dir, store) = open_store();
        let hub = Hub::default();
        let mut slow = Session::open(&hub, store.clone(), want("progress", None, None)).await.unwrap();
        let n = Topic::Progress.ring() + 1500;
        let paths: Vec<String> = (0..n).map(|i| format!("run/step-{}", i % 7)).collect();
        for chunk in paths.chunks(100) {
            report(&store, &hub, &chunk.iter().map(String::as_str).collect::<Vec<_>>());
        }
        assert_eq!(ids(&mut slow, n).await, (1..=n as u64).collect::<Vec<_>>(), "every event once, in order");

        let mut samples = Session::open(&hub, store, want("samples", None, None)).await.unwrap();
        for at in 0..20 {
            hub.publish_samples(at, &Arc::default());
        }
        let lagged = next(&mut samples).await;
        assert_eq!((lagged["topic"].as_str(), lagged["data"]["missed"].as_u64()), (Some("lagged"), Some(12)));
        assert_eq!(next(&mut samples).await["data"]["at_ms"], 12, "then the newest the ring kept");
        assert_eq!(hub.metrics(0)[1].value, 12.0, "counted as skipped");
    }

    #[tokio::test]
    async fn a_resume_from_before_the_retained_history_is_told_of_the_gap() {
        let (_dir, store) = open_store();
        let hub = Hub::default();
        report(&store, &hub, &["r/a", "r/b", "r/c"]);
        store
            .progress_prune(&crate::store::progress::Retention { max_age_ms: u64::MAX, max_events_per_run: 1 }, 2)
            .unwrap();
        let mut session =
            Session::open(&hub, store.clone(), want("progress,alerts", None, Some("p1.a0"))).await.unwrap();
        let gap = next(&mut session).await;
        assert_eq!(gap["topic"], "gap");
        assert_eq!(
            (gap["data"]["topic"].as_str(), gap["data"]["after"].as_u64(), gap["data"]["oldest"].as_u64()),
            (Some("progress"), Some(1), Some(3))
        );
        assert_eq!(ids(&mut session, 1).await, [3]);
        assert_eq!(session.cursor().to_string(), "p3.a0");
        assert_eq!(hub.metrics(0)[0].value, 1.0, "one client");
        drop(session);
        assert_eq!(hub.metrics(0)[0].value, 0.0);
    }

    #[tokio::test]
    async fn what_is_ready_is_taken_without_waiting_and_a_stalled_client_counts_as_dropped() {
        let (_dir, store) = open_store();
        let hub = Hub::default();
        let mut session = Session::open(&hub, store.clone(), want("progress,samples", None, None)).await.unwrap();
        assert!(session.ready().is_none(), "nothing yet");
        report(&store, &hub, &["r/a", "r/b", "r/c"]);
        hub.publish_samples(7, &Arc::default());
        let mut ready = Vec::new();
        while let Some(message) = session.ready() {
            ready.push((message.topic, message.id));
        }
        ready.sort();
        assert_eq!(ready, [("progress", 1), ("progress", 2), ("progress", 3), ("samples", 0)]);

        let dropped = |hub: &Hub| hub.metrics(0)[2].value;
        let open = || Session::open(&hub, store.clone(), want("progress", None, None));
        let mut idle = open().await.unwrap();
        idle.last_handed -= STALLED;
        drop(idle);
        assert_eq!(dropped(&hub), 0.0, "it was waiting for messages: idle, not stalled");

        // Each is handed one message; `age` is how long ago.
        let handed_one = async |path: &str, age: Duration| {
            let mut session = open().await.unwrap();
            report(&store, &hub, &[path]);
            assert!(session.ready().is_some());
            session.last_handed -= age;
            session
        };
        drop(handed_one("r/d", Duration::ZERO).await);
        assert_eq!(dropped(&hub), 0.0, "it was handed a message just now");

        let mut back = handed_one("r/e", STALLED).await;
        assert!(tokio::time::timeout(Duration::from_millis(10), back.next()).await.is_err(), "nothing more");
        drop(back);
        assert_eq!(dropped(&hub), 0.0, "it came back for more: it was reading");

        drop(handed_one("r/f", STALLED).await);
        assert_eq!(dropped(&hub), 1.0, "still writing out what it was handed STALLED ago");

        let mut parked = open().await.unwrap();
        report(&store, &hub, &["r/g"]);
        parked.last_handed -= STALLED;
        drop(parked);
        assert_eq!(dropped(&hub), 2.0, "a message waited that it did not take for STALLED");

        let mut given_up = open().await.unwrap();
        given_up.give_up();
        drop(given_up);
        assert_eq!(dropped(&hub), 3.0, "its connection gave up on it");
        drop(session);
    }

    #[tokio::test]
    async fn a_client_that_names_series_gets_only_those() {
        let (_dir, store) = open_store();
        let hub = Hub::default();
        let some = Subscription { series: Some(["cpu".to_string()].into()), ..want("samples", None, None) };
        let mut some = Session::open(&hub, store.clone(), some).await.unwrap();
        let mut all = Session::open(&hub, store, want("samples", None, None)).await.unwrap();
        let sample = |name: &str, core: &str| crate::metrics::Sample {
            labels: [("core".to_string(), core.to_string())].into(),
            ..crate::metrics::gauge(name, 1.0, "", 5)
        };
        hub.publish_samples(5, &Arc::new(vec![sample("cpu", "0"), sample("memory", ""), sample("cpu", "1")]));
        let names = |m: serde_json::Value| -> Vec<String> {
            assert_eq!(m["data"]["at_ms"], 5);
            m["data"]["samples"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| format!("{}{}", s["name"], s["labels"]["core"]))
                .collect()
        };
        assert_eq!(names(next(&mut some).await), [r#""cpu""0""#, r#""cpu""1""#]);
        assert_eq!(names(next(&mut all).await).len(), 3);
    }

    #[test]
    fn cursors_read_and_write_alike() {
        for text in ["p12.a3", "p12", "a3", ""] {
            assert_eq!(Cursor::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(Cursor::parse("a3.p12").unwrap(), Cursor { progress: Some(12), alerts: Some(3) });
        for bad in ["x1", "p", "p-1", "12", "é"] {
            let e = Cursor::parse(bad).unwrap_err();
            assert!(e.contains(&format!("'{bad}'")) && e.contains("p12.a3"), "{e}");
        }
    }

    #[test]
    fn subscriptions_name_their_topics() {
        let all = Subscription::parse(&StreamQuery::default()).unwrap();
        assert_eq!((all.topics.len(), all.series.as_ref()), (Topic::ALL.len(), None));
        let some = Subscription::parse(&StreamQuery {
            series: Some("load_per_core, monitor_cpu_usage_percent".into()),
            ..request(Some("alerts, progress"), Some("train"), Some("a4"))
        })
        .unwrap();
        assert_eq!(some.topics, [Topic::Progress, Topic::Alerts].into_iter().collect());
        assert_eq!((some.run.as_deref(), some.after.alerts), (Some("train"), Some(4)));
        assert_eq!(
            some.series.unwrap().into_iter().collect::<Vec<_>>(),
            ["load_per_core", "monitor_cpu_usage_percent"]
        );
        let e = Subscription::parse(&request(Some("alerts,cpu"), None, None)).unwrap_err();
        assert!(e.contains("'cpu'") && e.contains("samples, progress, alerts, plugins, jobs"), "{e}");
    }
}
