//! Fingerprints of idempotent requests. `decide` computes one from the command and `evolve`
//! from the event the command produced, so both must hash exactly the same bytes. FNV-1a is
//! hand-written (not std's `RandomState`) because fingerprints are stored in state and must be
//! equal across processes and replays.

use crate::command::Item;
use crate::ids::HoldId;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The kind of request goes first so that a key reused across kinds never matches.
const KIND_PLACE_HOLD: u8 = 1;
const KIND_CHECKOUT: u8 = 2;

struct Fnv(u64);

impl Fnv {
    fn new(kind: u8) -> Fnv {
        let mut h = Fnv(FNV_OFFSET);
        h.bytes(&[kind]);
        h
    }
    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(FNV_PRIME);
        }
    }
}

/// A hold request is its lines, in the order given: the same lines in another order are a
/// different request (clients retry byte-identical requests).
pub(crate) fn place_hold(items: &[Item]) -> u64 {
    let mut h = Fnv::new(KIND_PLACE_HOLD);
    for item in items {
        h.bytes(&item.ticket_type.0.to_le_bytes());
        h.bytes(&item.quantity.get().to_le_bytes());
    }
    h.0
}

pub(crate) fn checkout(hold: HoldId) -> u64 {
    let mut h = Fnv::new(KIND_CHECKOUT);
    h.bytes(&hold.0.to_le_bytes());
    h.0
}
