//! The seam for the personal part of a stream: a subscriber that gave a buyer token also
//! hears its own waiting-room status (`event: room`). The hub asks a [`RoomStatus`] after
//! each availability update it forwards (the room's state is the sale's state, so a change
//! to it moves the sale's version too) and sends the answer when it differs from the last.
//!
//! The waiting room itself lives elsewhere (issue 16, branch `room`). Until it plugs its
//! reader in (`AppState::new` passes [`NoRoom`] to `PushHub::new`), no `room` event is sent.

use taquilla_domain::{BuyerId, SaleId};
use taquilla_engine::Engine;

use super::views::RoomStatusView;

/// Reads one buyer's waiting-room status in one sale. Called once per forwarded update per
/// subscriber with a buyer token, on an async worker: it must be a quick in-memory read
/// (`Engine::read`), never I/O.
pub trait RoomStatus: Send + Sync + 'static {
    /// `None` when the sale has no waiting room or the buyer is not in it.
    fn status(&self, engine: &Engine, sale: SaleId, buyer: &BuyerId) -> Option<RoomStatusView>;
}

/// No waiting room: no `room` events.
pub struct NoRoom;

impl RoomStatus for NoRoom {
    fn status(&self, _: &Engine, _: SaleId, _: &BuyerId) -> Option<RoomStatusView> {
        None
    }
}
