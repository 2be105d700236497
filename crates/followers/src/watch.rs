//! Who waits for an order's payment to move: a pay request may wait (bounded) for the saga to
//! settle the attempt it started. Instead of re-reading the sale every few milliseconds, it
//! registers here and the saga wakes it once a report about that order is durable.
//!
//! Entries exist only while someone waits, so the table is bounded by the requests in flight
//! (themselves bounded by the server's connection limit); the last waiter of an order removes
//! its entry.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use taquilla_domain::{OrderId, SaleId};
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

type Key = (SaleId, OrderId);

/// Orders someone waits on, and how to wake them.
#[derive(Default)]
pub struct OrderWatch {
    waiting: Mutex<HashMap<Key, Arc<Notify>>>,
}

impl OrderWatch {
    /// Starts waiting on an order. Create the [`Watching::notified`] future before reading
    /// the order's state, so a report landing in between is not missed.
    pub fn watch(&self, sale: SaleId, order: OrderId) -> Watching<'_> {
        let notify = self.waiting.lock().entry((sale, order)).or_default().clone();
        Watching {
            watch: self,
            key: (sale, order),
            notify,
        }
    }

    /// A report about the order is durable: everyone waiting on it looks again.
    pub fn moved(&self, sale: SaleId, order: OrderId) {
        if let Some(notify) = self.waiting.lock().get(&(sale, order)) {
            notify.notify_waiters();
        }
    }

    /// Orders with someone waiting (for tests).
    pub fn len(&self) -> usize {
        self.waiting.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One waiter's registration; dropping it unregisters.
pub struct Watching<'a> {
    watch: &'a OrderWatch,
    key: Key,
    notify: Arc<Notify>,
}

impl Watching<'_> {
    /// Completes at the next [`OrderWatch::moved`] of this order after it was created
    /// (enabled: see [`Notified::enable`]).
    pub fn notified(&self) -> Notified<'_> {
        self.notify.notified()
    }
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        let mut waiting = self.watch.waiting.lock();
        // Ours and the table's are the last two references: nobody else waits on the order.
        if Arc::strong_count(&self.notify) == 2 {
            waiting.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::pin;

    #[tokio::test(flavor = "current_thread")]
    async fn a_waiter_wakes_on_its_order_only_and_the_last_one_out_removes_the_entry() {
        let watch = OrderWatch::default();
        let (sale, a, b) = (SaleId(1), OrderId(1), OrderId(2));
        let first = watch.watch(sale, a);
        let second = watch.watch(sale, a);
        let other = watch.watch(sale, b);
        {
            let mut woken = pin!(first.notified());
            woken.as_mut().enable();
            let mut not_woken = pin!(other.notified());
            not_woken.as_mut().enable();
            watch.moved(sale, a);
            woken.await;
            assert!(
                futures_util::poll!(not_woken.as_mut()).is_pending(),
                "another order's report wakes nobody here"
            );
        }
        assert_eq!(watch.len(), 2);
        drop(second);
        assert_eq!(watch.len(), 2, "order a still has a waiter");
        drop(first);
        drop(other);
        assert!(watch.is_empty());
        watch.moved(sale, a); // nobody waits: nothing to do
    }
}
