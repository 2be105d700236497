//! The waiting room as the organiser and its buyers see it.

use serde::Serialize;
use taquilla_domain::room::{self, Room};
use taquilla_domain::{Odds, RoomStanding, RoomStatus, SaleId, SaleState, Timestamp};
use utoipa::ToSchema;

use crate::ids::PublicSaleId;
use crate::time::Rfc3339;

/// A sale's waiting room: its configuration and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingRoomView {
    #[schema(value_type = String, example = "evt_1")]
    pub event_id: PublicSaleId,
    #[schema(value_type = String, format = DateTime)]
    pub prequeue_opens_at: Rfc3339,
    #[schema(value_type = String, format = DateTime)]
    pub opens_at: Rfc3339,
    pub admit_per_sec: u32,
    pub session_secs: u64,
    pub queue_max: u32,
    /// Whether the pre-queue has been shuffled (at `opens_at`).
    pub shuffled: bool,
    /// SHA-256 (hex) of the seed that orders the pre-queue, public from the start.
    pub seed_sha256: String,
    /// The seed itself (hex), once the sale has ended, so anyone can re-run the draw; null
    /// before.
    pub seed: Option<String>,
    /// Buyers queued now (pre-queue included).
    pub queued: u64,
    /// Buyers admitted so far.
    pub admitted: u64,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl WaitingRoomView {
    pub fn new(sale: SaleId, state: &SaleState, room: &Room, now: Timestamp) -> WaitingRoomView {
        WaitingRoomView {
            event_id: PublicSaleId(sale),
            prequeue_opens_at: Rfc3339(room.config.prequeue_opens_at),
            opens_at: Rfc3339(room.config.opens_at),
            admit_per_sec: room.config.admit_per_sec,
            session_secs: room.config.session_ms / 1000,
            queue_max: room.config.queue_max,
            shuffled: room.shuffled,
            seed_sha256: hex(&room.seed_sha256),
            seed: room.revealed_seed(state, now).map(|s| hex(&s)),
            queued: room.counts.queued,
            admitted: room.counts.admitted,
        }
    }
}

/// Where a buyer stands in the room.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaitingStatus {
    /// Not in the room (never joined).
    NotJoined,
    /// Joined before `opens_at`: every pre-queued buyer has the same chance; the order is drawn
    /// at `opens_at`.
    Prequeued,
    Queued,
    /// May shop until `admission_expires_at`: send `admission_token` as the `Admission-Token`
    /// header of `POST /v1/events/{event_id}/holds`.
    Admitted,
    /// Checked out under the admission.
    Used,
    /// The admission ran out unused; join again to queue at the back.
    Expired,
    Left,
}

/// A buyer's odds of buying, from the stock and their position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OddsView {
    /// The stock left serves everyone ahead and this buyer.
    Likely,
    /// Only if holds ahead expire or buyers ahead leave.
    Unlikely,
    /// Nothing left and nothing can come back.
    SoldOut,
}

/// A buyer's place in a sale's waiting room (join, status and leave all answer it).
#[derive(Debug, Serialize, ToSchema)]
pub struct WaitingRoomStatusView {
    pub status: WaitingStatus,
    /// 1 for the front; only while `queued`.
    pub position: Option<u64>,
    /// Buyers ahead; only while `queued`.
    pub ahead: Option<u64>,
    /// At the admission rate, while `queued` and the stock lets the queue move.
    pub estimated_wait_secs: Option<u64>,
    pub odds: OddsView,
    /// Only while `admitted`.
    pub admission_token: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub admission_expires_at: Option<Rfc3339>,
    pub room: WaitingRoomView,
}

impl WaitingRoomStatusView {
    /// The view of `status`; `token` is the signed admission token when admitted.
    pub fn new(status: &RoomStatus, room: WaitingRoomView, token: Option<String>) -> WaitingRoomStatusView {
        let (kind, position, ahead, wait_ms, expires) = match status.standing {
            RoomStanding::NotJoined => (WaitingStatus::NotJoined, None, None, None, None),
            RoomStanding::Prequeued => (WaitingStatus::Prequeued, None, None, None, None),
            RoomStanding::Queued {
                position,
                ahead,
                wait_ms,
            } => (WaitingStatus::Queued, Some(position), Some(ahead), wait_ms, None),
            RoomStanding::Admitted { expires_at, .. } => (WaitingStatus::Admitted, None, None, None, Some(expires_at)),
            RoomStanding::Used => (WaitingStatus::Used, None, None, None, None),
            RoomStanding::Expired => (WaitingStatus::Expired, None, None, None, None),
            RoomStanding::Left => (WaitingStatus::Left, None, None, None, None),
        };
        WaitingRoomStatusView {
            status: kind,
            position,
            ahead,
            estimated_wait_secs: wait_ms.map(|ms| ms.div_ceil(1000)),
            odds: match status.odds {
                Odds::Likely => OddsView::Likely,
                Odds::Unlikely => OddsView::Unlikely,
                Odds::SoldOut => OddsView::SoldOut,
            },
            admission_token: token,
            admission_expires_at: expires.map(Rfc3339),
            room,
        }
    }
}

/// The status and room view of `buyer` at `now`, read under the sale's lock; `None` when the
/// sale has no room.
pub fn read_status(
    sale: SaleId,
    state: &SaleState,
    buyer: &taquilla_domain::BuyerId,
    now: Timestamp,
) -> Option<(RoomStatus, WaitingRoomView)> {
    let room = state.room.as_deref()?;
    let status = room::status(state, buyer, now)?;
    Some((status, WaitingRoomView::new(sale, state, room, now)))
}
