//! The personal part of a stream: a subscriber that gave a buyer token also hears its own
//! waiting-room status (`event: room`, the same `WaitingRoomStatusView` as
//! `GET /v1/events/{id}/waiting-room`). The hub asks a [`RoomStatus`] after each availability
//! update it forwards (the room's state is the sale's state, so a change to it moves the
//! sale's version too) and sends the answer when it differs from the last one sent.

use std::sync::Arc;

use taquilla_domain::{BuyerId, SaleId};
use taquilla_engine::{Clock, Engine};

use crate::keys::KeyStore;
use crate::views::WaitingRoomStatusView;

/// Reads one buyer's waiting-room status in one sale. Called once per forwarded update per
/// subscriber with a buyer token, on an async worker: it must be a quick in-memory read
/// (`Engine::read`), never I/O.
pub trait RoomStatus: Send + Sync + 'static {
    /// `None` when the sale has no waiting room.
    fn status(&self, engine: &Engine, sale: SaleId, buyer: &BuyerId) -> Option<WaitingRoomStatusView>;
}

/// The waiting room of `crate::routes::room`: the buyer's status at the app's clock, with a
/// signed admission token once admitted.
pub struct WaitingRoom {
    pub keys: Arc<KeyStore>,
    pub clock: Arc<dyn Clock>,
}

impl RoomStatus for WaitingRoom {
    fn status(&self, engine: &Engine, sale: SaleId, buyer: &BuyerId) -> Option<WaitingRoomStatusView> {
        crate::routes::room::buyer_status(&self.keys, engine, sale, buyer, self.clock.now())
    }
}
