//! Live push (`GET /v1/events/{id}/stream`, server-sent events): the hub that tells every
//! subscriber of a sale its availability when it changes, without taxing the selling path.
//!
//! - **One render per change, for everyone.** A sale with subscribers has one feed task. It
//!   looks at the sale's version (one atomic read, as the sale page and `Prefer: wait` do) at
//!   most `PUSH_RENDERS_PER_SEC_MAX` times a second, so a burst of changes is coalesced into one
//!   render; when the version moved it builds the view under the sale's read lock, encodes it
//!   once and sends it through a bounded `tokio::sync::broadcast` channel to every subscriber.
//!   The shard never learns that anyone listens. With no subscriber left the task ends.
//! - **A slow subscriber is dropped, never buffered.** The channel keeps the last
//!   `PUSH_CHANNEL_CAPACITY` updates; a subscriber further behind (`Lagged`) has its stream
//!   ended. One that stops reading its socket stops being polled by hyper once its few buffers
//!   are full, and the connection's write timeout (`connections`) closes it.
//! - **Resuming.** The SSE `id` of an `availability` event is the sale's version. A client that
//!   reconnects with `Last-Event-ID` equal to the current version gets nothing again; any other
//!   gets the current state at once (every update is the whole state, so nothing is missed).
//! - **Personal part.** A subscriber that gave a buyer token also gets `room` events, its
//!   waiting-room status, from a [`room::RoomStatus`], computed per subscriber on each update
//!   it forwards and sent only when it changed.
//! - **Bounded.** Subscribers in total and per sale are limits (`PushLimits`): past them the
//!   stream is refused with `503 too_many_subscribers`. On shutdown every stream ends, so
//!   the graceful shutdown does not wait for them.

pub mod room;
pub mod views;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use parking_lot::Mutex;
use rustc_hash::FxHashMap;
use taquilla_domain::{BuyerId, SaleId};
use taquilla_engine::Engine;
use tokio::sync::{broadcast, watch};
use tokio::time::MissedTickBehavior;

use crate::error::{ApiError, Code};
use crate::limits;
use room::RoomStatus;
use views::AvailabilityView;

/// How many subscribers the hub takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushLimits {
    pub subscribers_max: usize,
    pub subscribers_per_sale_max: usize,
}

impl Default for PushLimits {
    fn default() -> Self {
        PushLimits {
            subscribers_max: limits::PUSH_SUBSCRIBERS_MAX_DEFAULT,
            subscribers_per_sale_max: limits::PUSH_SUBSCRIBERS_PER_SALE_MAX_DEFAULT,
        }
    }
}

/// One rendered state of a sale, shared by every subscriber.
#[derive(Debug)]
pub(crate) struct Update {
    version: u64,
    /// The view's JSON without its version: what a client would see change.
    content: Box<str>,
    /// Whether `content` differs from the last update sent as an `availability` event. An
    /// update that does not (the sale moved, but not its availability: a payment step, a price
    /// edit, a waiting-room tick) still goes out, for the buyers' `room` statuses, but sends no
    /// `availability` event.
    visible: bool,
    /// The whole `availability` event, encoded once. (axum's `Event` has no constructor from
    /// shared bytes: each subscriber's clone copies these few hundred bytes, no encoding.)
    event: Event,
}

/// A sale's channel to its subscribers.
struct Feed {
    tx: broadcast::Sender<Arc<Update>>,
    /// The newest update, for subscribers that join between two.
    latest: Mutex<Arc<Update>>,
}

/// Every sale's feed, the subscriber counts, and the shutdown signal.
pub struct PushHub {
    feeds: Mutex<FxHashMap<SaleId, Arc<Feed>>>,
    subscribers: Arc<AtomicUsize>,
    renders: AtomicU64,
    limits: PushLimits,
    closing: watch::Sender<bool>,
    room: Box<dyn RoomStatus>,
}

impl PushHub {
    pub fn new(limits: PushLimits, room: Box<dyn RoomStatus>) -> PushHub {
        PushHub {
            feeds: Mutex::default(),
            subscribers: Arc::default(),
            renders: AtomicU64::new(0),
            limits,
            closing: watch::Sender::new(false),
            room,
        }
    }

    /// Subscribers now, all sales together.
    pub fn subscribers(&self) -> usize {
        self.subscribers.load(Ordering::Acquire)
    }

    /// Renders so far, all sales together (one per coalesced change, whatever the number of
    /// subscribers).
    pub fn renders(&self) -> u64 {
        self.renders.load(Ordering::Relaxed)
    }

    /// Ends every stream and feed, and takes no more subscribers: the server is stopping.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// A subscriber of `sale`: the current state at once unless `last_event_id` names it, then
    /// every update. `503 too_many_subscribers` past the limits, `404` for an unknown sale.
    pub(crate) fn subscribe(
        self: &Arc<Self>,
        engine: &Arc<Engine>,
        sale: SaleId,
        last_event_id: Option<u64>,
        buyer: Option<BuyerId>,
    ) -> Result<Subscriber, ApiError> {
        if *self.closing.borrow() {
            return Err(ApiError::new(Code::Unavailable, "the server is stopping"));
        }
        let (rx, latest, slot) = {
            let mut feeds = self.feeds.lock();
            let total = self.subscribers.load(Ordering::Acquire);
            if total >= self.limits.subscribers_max {
                return Err(too_many(format!(
                    "this server streams to {} subscribers at most; poll GET /v1/events/{{event_id}} meanwhile",
                    self.limits.subscribers_max
                )));
            }
            let feed = match feeds.get(&sale) {
                Some(feed) => feed.clone(),
                None => {
                    let feed = self.start_feed(engine, sale)?;
                    feeds.insert(sale, feed.clone());
                    feed
                }
            };
            if feed.tx.receiver_count() >= self.limits.subscribers_per_sale_max {
                return Err(too_many(format!(
                    "this sale streams to {} subscribers at most; poll GET /v1/events/{{event_id}} meanwhile",
                    self.limits.subscribers_per_sale_max
                )));
            }
            // Under the lock: a feed ends only when it has no receiver, judged under it too.
            let rx = feed.tx.subscribe();
            let latest = feed.latest.lock().clone();
            (rx, latest, Slot::take(&self.subscribers))
        };
        let personal = buyer.map(|buyer| Personal {
            hub: self.clone(),
            engine: engine.clone(),
            sale,
            buyer,
            last: None,
        });
        let mut sub = Subscriber {
            rx,
            ready: VecDeque::from([Event::default().retry(Duration::from_millis(limits::PUSH_RETRY_MS))]),
            last_version: 0,
            closing: self.closing.subscribe(),
            personal,
            _slot: slot,
        };
        match last_event_id {
            Some(id) if id == latest.version => {
                sub.last_version = id;
                sub.room_update();
            }
            _ => sub.take(&latest),
        }
        Ok(sub)
    }

    /// Renders the sale's state now and spawns its feed task.
    fn start_feed(self: &Arc<Self>, engine: &Arc<Engine>, sale: SaleId) -> Result<Arc<Feed>, ApiError> {
        let first = self
            .render(engine, sale, None)
            .ok_or_else(|| ApiError::not_found("event"))?;
        let (tx, _) = broadcast::channel(limits::PUSH_CHANNEL_CAPACITY);
        let feed = Arc::new(Feed {
            tx,
            latest: Mutex::new(first),
        });
        tokio::spawn(run_feed(self.clone(), engine.clone(), sale, feed.clone()));
        Ok(feed)
    }

    /// The sale's state as an `availability` event: viewed under its read lock, encoded once.
    /// `last` is the content of the last update sent as an `availability` event, if any.
    fn render(&self, engine: &Engine, sale: SaleId, last: Option<&str>) -> Option<Arc<Update>> {
        let (version, view) = engine.read_versioned(sale, |s| AvailabilityView::new(sale, 0, s))?;
        let mut view = view?;
        let content = serde_json::to_string(&view).ok()?.into_boxed_str();
        view.version = version;
        let json = serde_json::to_string(&view).ok()?;
        self.renders.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("taquilla_push_renders_total").increment(1);
        let event = Event::default()
            .event("availability")
            .id(itoa::Buffer::new().format(version))
            .data(json);
        let visible = last != Some(&*content);
        Some(Arc::new(Update {
            version,
            content,
            visible,
            event,
        }))
    }

    /// Takes the feed out of the table if nobody listens (then its task ends).
    fn retire_if_unheard(&self, sale: SaleId, feed: &Arc<Feed>) -> bool {
        let mut feeds = self.feeds.lock();
        if feed.tx.receiver_count() > 0 {
            return false;
        }
        if feeds.get(&sale).is_some_and(|f| Arc::ptr_eq(f, feed)) {
            feeds.remove(&sale);
        }
        true
    }

    fn remove(&self, sale: SaleId, feed: &Arc<Feed>) {
        let mut feeds = self.feeds.lock();
        if feeds.get(&sale).is_some_and(|f| Arc::ptr_eq(f, feed)) {
            feeds.remove(&sale);
        }
    }
}

fn too_many(message: String) -> ApiError {
    metrics::counter!("taquilla_push_refused_total").increment(1);
    ApiError::new(Code::TooManySubscribers, message).retry_after(limits::RETRY_AFTER_SECS.into())
}

/// A sale's feed task: looks at the version on every tick, renders and sends when it moved,
/// ends when nobody listens, the server stops or the engine failed. Ending drops the channel's
/// sender: every stream of the sale ends with it.
async fn run_feed(hub: Arc<PushHub>, engine: Arc<Engine>, sale: SaleId, feed: Arc<Feed>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1) / limits::PUSH_RENDERS_PER_SEC_MAX);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut closing = hub.closing.subscribe();
    let mut seen = feed.latest.lock().version;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = closing.wait_for(|c| *c) => break,
        }
        if hub.retire_if_unheard(sale, &feed) {
            return;
        }
        if engine.has_failed() {
            break;
        }
        if engine.version(sale).is_none_or(|v| v == seen) {
            continue;
        }
        let last = feed.latest.lock().clone();
        let Some(update) = hub.render(&engine, sale, Some(&last.content)) else {
            continue;
        };
        assert!(update.version > seen, "a sale's version only grows");
        seen = update.version;
        if update.visible {
            *feed.latest.lock() = update.clone();
        }
        // No receiver is not an error: the next tick retires the feed.
        let _ = feed.tx.send(update);
    }
    hub.remove(sale, &feed);
}

/// One subscriber's place in the hub's count, given back when its stream ends.
struct Slot(Arc<AtomicUsize>);

impl Slot {
    fn take(count: &Arc<AtomicUsize>) -> Slot {
        count.fetch_add(1, Ordering::AcqRel);
        metrics::gauge!("taquilla_push_subscribers").increment(1.0);
        Slot(count.clone())
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("taquilla_push_subscribers").decrement(1.0);
    }
}

/// The buyer whose waiting-room status a subscriber hears.
struct Personal {
    hub: Arc<PushHub>,
    engine: Arc<Engine>,
    sale: SaleId,
    buyer: BuyerId,
    /// The data of the last `room` event sent.
    last: Option<String>,
}

/// One subscriber: its receiver, the events ready to send, and what it was sent last.
pub(crate) struct Subscriber {
    rx: broadcast::Receiver<Arc<Update>>,
    ready: VecDeque<Event>,
    /// The version of the last `availability` sent (or the client's `Last-Event-ID`).
    last_version: u64,
    closing: watch::Receiver<bool>,
    personal: Option<Personal>,
    _slot: Slot,
}

impl Subscriber {
    /// Queues `update` if it is newer than what the client has and shows a change, and the
    /// buyer's room status if it changed.
    fn take(&mut self, update: &Update) {
        if update.version <= self.last_version && self.last_version != 0 {
            return;
        }
        if update.visible {
            self.last_version = update.version;
            self.ready.push_back(update.event.clone());
        }
        self.room_update();
    }

    fn room_update(&mut self) {
        let Some(p) = &mut self.personal else {
            return;
        };
        let Some(status) = p.hub.room.status(&p.engine, p.sale, &p.buyer) else {
            return;
        };
        let Ok(json) = serde_json::to_string(&status) else {
            return;
        };
        if p.last.as_ref() == Some(&json) {
            return;
        }
        self.ready.push_back(Event::default().event("room").data(&json));
        p.last = Some(json);
    }

    /// The next event to send; `None` ends the stream (lagged, feed ended, server stopping).
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Subscriber)> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some((Ok(event), self));
            }
            let received = tokio::select! {
                biased;
                _ = self.closing.wait_for(|c| *c) => return None,
                r = self.rx.recv() => r,
            };
            match received {
                Ok(update) => self.take(&update),
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    metrics::counter!("taquilla_push_dropped_total", "reason" => "lagged").increment(1);
                    return None;
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The stream of events, with a heartbeat comment on idle streams.
    pub(crate) fn into_sse(self) -> Sse<impl Stream<Item = Result<Event, Infallible>> + Send + 'static> {
        let events = futures_util::stream::unfold(self, Subscriber::next);
        Sse::new(events).keep_alive(KeepAlive::new().interval(limits::PUSH_HEARTBEAT).text("heartbeat"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;

    fn update(version: u64) -> Arc<Update> {
        Arc::new(Update {
            version,
            content: version.to_string().into_boxed_str(),
            visible: true,
            event: Event::default()
                .event("availability")
                .id(version.to_string())
                .data("{}"),
        })
    }

    fn subscriber(rx: broadcast::Receiver<Arc<Update>>, closing: watch::Receiver<bool>) -> Subscriber {
        Subscriber {
            rx,
            ready: VecDeque::new(),
            last_version: 0,
            closing,
            personal: None,
            _slot: Slot::take(&Arc::default()),
        }
    }

    /// The SSE frames of a subscriber's stream, as the client reads them.
    fn frames(sub: Subscriber) -> impl Stream<Item = String> {
        let body = axum::response::IntoResponse::into_response(sub.into_sse()).into_body();
        body.into_data_stream()
            .map(|frame| String::from_utf8(frame.expect("no error").to_vec()).expect("UTF-8"))
    }

    fn id_of(frame: &str) -> Option<u64> {
        frame.lines().find_map(|l| l.strip_prefix("id: "))?.parse().ok()
    }

    #[tokio::test]
    async fn updates_pass_in_order_and_old_ones_are_skipped() {
        let (tx, rx) = broadcast::channel(limits::PUSH_CHANNEL_CAPACITY);
        let (_closing_tx, closing) = watch::channel(false);
        let mut sub = subscriber(rx, closing);
        sub.take(&update(5));
        for v in [4, 5, 6, 8] {
            tx.send(update(v)).expect("a receiver");
        }
        drop(tx);
        let seen: Vec<Option<u64>> = frames(sub).map(|f| id_of(&f)).collect().await;
        assert_eq!(seen, [Some(5), Some(6), Some(8)]);
    }

    #[tokio::test]
    async fn a_subscriber_that_lags_is_dropped() {
        let (tx, rx) = broadcast::channel(limits::PUSH_CHANNEL_CAPACITY);
        let (_closing_tx, closing) = watch::channel(false);
        let sub = subscriber(rx, closing);
        for v in 1..=(limits::PUSH_CHANNEL_CAPACITY as u64 + 1) {
            tx.send(update(v)).expect("a receiver");
        }
        assert!(sub.next().await.is_none(), "a lagging subscriber's stream ends");
    }

    #[tokio::test]
    async fn closing_ends_the_stream() {
        let (_tx, rx) = broadcast::channel::<Arc<Update>>(limits::PUSH_CHANNEL_CAPACITY);
        let (closing_tx, closing) = watch::channel(false);
        let sub = subscriber(rx, closing);
        closing_tx.send_replace(true);
        assert!(sub.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_stream_gets_a_heartbeat_every_interval() {
        let (_tx, rx) = broadcast::channel::<Arc<Update>>(limits::PUSH_CHANNEL_CAPACITY);
        let (_closing_tx, closing) = watch::channel(false);
        let mut frames = std::pin::pin!(frames(subscriber(rx, closing)));
        let start = tokio::time::Instant::now();
        for n in 1..=3u32 {
            let frame = frames.next().await.expect("a frame");
            assert_eq!(frame, ": heartbeat\n\n");
            assert_eq!(start.elapsed(), limits::PUSH_HEARTBEAT * n, "heartbeat {n} on time");
        }
    }
}
