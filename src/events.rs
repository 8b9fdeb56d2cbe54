//! The runtime's event stream: every state transition of every service, in order.
//!
//! [`EventBus`] is owned by the root supervisor (one per runtime). It numbers events with
//! a runtime-wide sequence, keeps the last [`EVENT_HISTORY`] in a ring for replay, and fans
//! them out to subscribers through a broadcast channel. Emission never waits for a
//! subscriber: one that falls more than [`SUBSCRIBER_BUFFER`] events behind skips ahead
//! and is told how many it missed ([`EventItem::Gap`]).
//!
//! A subscription taken with `since = Some(seq)` first replays every event after `seq`
//! still in the ring, then follows live, without gap or duplicate: the ring and the live
//! channel are read under the same lock that emission takes.

use std::collections::VecDeque;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::state::Health;

/// Events kept for replay.
pub const EVENT_HISTORY: usize = 1000;
/// Events a subscriber may fall behind before it skips ahead.
pub const SUBSCRIBER_BUFFER: usize = 4096;

/// What happened (DESIGN §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A service was defined.
    Defined,
    /// A service was removed.
    Removed,
    /// The install step began.
    Installing,
    /// A start began (or is waiting for a dependency).
    Starting,
    /// The process was spawned.
    Started,
    /// The service became ready.
    Ready,
    /// The probe verdict changed.
    HealthChanged,
    /// The process exited.
    Exited,
    /// A restart is scheduled after a delay.
    Backoff,
    /// The service is being restarted (by request, liveness or an actor restart).
    Restarting,
    /// The process group was frozen.
    Paused,
    /// The process group was thawed.
    Resumed,
    /// A stop began.
    Stopping,
    /// The service stopped.
    Stopped,
    /// The service gave up or could not start.
    Failed,
    /// A log subscriber lost lines.
    LogDropped,
    /// The service's `log_file` could not be opened or written (once per failing streak;
    /// the cause is the error). Lines stay in the ring meanwhile.
    LogFileFailed,
    /// The `log_file` took writes again; `dropped` lines were not written while it failed.
    LogFileResumed,
    /// The service told steward something over its notify socket that is not a
    /// transition: `STOPPING=1` or `RELOADING=1` (the cause says which).
    Notified,
}

impl EventKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Defined => "defined",
            EventKind::Removed => "removed",
            EventKind::Installing => "installing",
            EventKind::Starting => "starting",
            EventKind::Started => "started",
            EventKind::Ready => "ready",
            EventKind::HealthChanged => "health_changed",
            EventKind::Exited => "exited",
            EventKind::Backoff => "backoff",
            EventKind::Restarting => "restarting",
            EventKind::Paused => "paused",
            EventKind::Resumed => "resumed",
            EventKind::Stopping => "stopping",
            EventKind::Stopped => "stopped",
            EventKind::Failed => "failed",
            EventKind::LogDropped => "log_dropped",
            EventKind::LogFileFailed => "log_file_failed",
            EventKind::LogFileResumed => "log_file_resumed",
            EventKind::Notified => "notified",
        }
    }
}

/// One event. Fields that do not apply to a kind are left out of the JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Runtime-wide, strictly increasing.
    pub seq: u64,
    /// When it was emitted.
    pub ts: DateTime<Utc>,
    /// The service it is about.
    pub service: String,
    /// What happened.
    pub kind: EventKind,
    /// The process, for `started`, `exited`, `stopping`, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// Exit code, for `exited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    /// Signal name, for `exited` by a signal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signal: Option<String>,
    /// New verdict, for `health_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Restart delay in milliseconds, for `backoff`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Lines lost, for `log_dropped` and `log_file_resumed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dropped: Option<u64>,
    /// Why, in words a person can act on, when the event is a consequence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
}

impl Event {
    /// An event not yet numbered: fill the optional fields, then [`EventBus::emit`] it.
    pub fn new(service: &str, kind: EventKind) -> Self {
        Event {
            seq: 0,
            ts: Utc::now(),
            service: service.to_string(),
            kind,
            pid: None,
            exit_code: None,
            signal: None,
            health: None,
            delay_ms: None,
            dropped: None,
            cause: None,
        }
    }

    /// Sets the cause.
    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Sets the pid.
    pub fn pid(mut self, pid: Option<u32>) -> Self {
        self.pid = pid;
        self
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq)]
pub enum EventItem {
    /// The next event.
    Event(Event),
    /// The subscriber fell behind (or asked for events gone from the ring) and missed this many.
    Gap {
        /// Events missed.
        missed: u64,
    },
}

struct Ring {
    next_seq: u64,
    events: VecDeque<Event>,
}

/// Numbers, keeps and fans out events. One per runtime.
pub struct EventBus {
    ring: Mutex<Ring>,
    tx: broadcast::Sender<Event>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus").finish_non_exhaustive()
    }
}

impl EventBus {
    /// An empty bus; the first event gets seq 1.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        EventBus {
            ring: Mutex::new(Ring {
                next_seq: 1,
                events: VecDeque::with_capacity(64),
            }),
            tx,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Ring> {
        // A panic while holding this lock leaves the ring consistent (every write is a
        // single push), so a poisoned lock is safe to keep using.
        self.ring.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Numbers the event, records it and sends it to every subscriber. Never blocks on a
    /// subscriber.
    pub fn emit(&self, mut event: Event) -> Event {
        let mut ring = self.lock();
        event.seq = ring.next_seq;
        ring.next_seq += 1;
        event.ts = Utc::now();
        if ring.events.len() == EVENT_HISTORY {
            ring.events.pop_front();
        }
        ring.events.push_back(event.clone());
        tracing::debug!(service = %event.service, kind = event.kind.as_str(), seq = event.seq, cause = event.cause.as_deref(), "event");
        let _ = self.tx.send(event.clone());
        event
    }

    /// The sequence number of the newest event (0 before the first).
    pub fn last_seq(&self) -> u64 {
        self.lock().next_seq - 1
    }

    /// Events in the ring after `since` (all of them for `None`), oldest first.
    pub fn history(&self, since: Option<u64>) -> Vec<Event> {
        let ring = self.lock();
        let after = since.unwrap_or(0);
        ring.events
            .iter()
            .filter(|e| e.seq > after)
            .cloned()
            .collect()
    }

    /// Subscribes. With `since`, the events after it that are still in the ring come first
    /// (preceded by a gap record if some are already gone); without, only live events.
    pub fn subscribe(&self, since: Option<u64>) -> EventSubscription {
        let ring = self.lock();
        let rx = self.tx.subscribe();
        let mut backlog = VecDeque::new();
        if let Some(after) = since {
            let oldest = ring.events.front().map(|e| e.seq).unwrap_or(ring.next_seq);
            if oldest > after + 1 {
                backlog.push_back(EventItem::Gap {
                    missed: oldest - after - 1,
                });
            }
            backlog.extend(
                ring.events
                    .iter()
                    .filter(|e| e.seq > after)
                    .cloned()
                    .map(EventItem::Event),
            );
        }
        EventSubscription { backlog, rx }
    }
}

/// A live subscription to the event stream.
#[derive(Debug)]
pub struct EventSubscription {
    backlog: VecDeque<EventItem>,
    rx: broadcast::Receiver<Event>,
}

impl EventSubscription {
    /// The next item, or `None` when the runtime is gone.
    pub async fn recv(&mut self) -> Option<EventItem> {
        if let Some(item) = self.backlog.pop_front() {
            return Some(item);
        }
        match self.rx.recv().await {
            Ok(event) => Some(EventItem::Event(event)),
            Err(broadcast::error::RecvError::Lagged(missed)) => Some(EventItem::Gap { missed }),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// The subscription as an async stream.
    pub fn into_stream(self) -> impl Stream<Item = EventItem> + Send + Unpin + 'static {
        Box::pin(futures::stream::unfold(self, |mut sub| async move {
            sub.recv().await.map(|item| (item, sub))
        }))
    }

    /// Forwards every item to an actor as a message, until the actor stops or the runtime
    /// ends. This is how an actor subscribes itself: send `RootMsg::SubscribeEvents`, then
    /// forward the subscription to `myself`.
    pub fn forward_to<M>(mut self, actor: ractor::ActorRef<M>) -> tokio::task::JoinHandle<()>
    where
        M: ractor::Message + From<EventItem>,
    {
        tokio::spawn(async move {
            while let Some(item) = self.recv().await {
                if actor.cast(M::from(item)).is_err() {
                    break;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn replay_then_live_without_gap_or_duplicate() {
        let bus = EventBus::new();
        for _ in 0..5 {
            bus.emit(Event::new("a", EventKind::Started));
        }
        let mut sub = bus.subscribe(Some(3));
        bus.emit(Event::new("a", EventKind::Stopped));
        let mut seqs = Vec::new();
        for _ in 0..3 {
            match sub.recv().await {
                Some(EventItem::Event(e)) => seqs.push(e.seq),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(seqs, vec![4, 5, 6]);
    }

    #[tokio::test]
    async fn asking_for_events_gone_from_the_ring_yields_one_gap() {
        let bus = EventBus::new();
        for _ in 0..(EVENT_HISTORY + 10) {
            bus.emit(Event::new("a", EventKind::Started));
        }
        let mut sub = bus.subscribe(Some(0));
        assert_eq!(sub.recv().await, Some(EventItem::Gap { missed: 10 }));
        match sub.recv().await {
            Some(EventItem::Event(e)) => assert_eq!(e.seq, 11),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn event_json_is_snake_case_and_skips_empty_fields() {
        let bus = EventBus::new();
        let e =
            bus.emit(Event::new("web", EventKind::HealthChanged).cause("readiness http 503 ×2"));
        let json = serde_json::to_value(&e).expect("serializes");
        assert_eq!(json["kind"], "health_changed");
        assert_eq!(json["seq"], 1);
        assert!(json.get("pid").is_none());
    }
}
