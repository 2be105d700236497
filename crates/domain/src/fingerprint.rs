//! Fingerprints of idempotent requests. `decide` computes one from the command and `evolve`
//! from the event the command produced, so both must hash exactly the same bytes. FNV-1a is
//! hand-written (not std's `RandomState`) because fingerprints are stored in state and must be
//! equal across processes and replays.

use crate::command::{Command, Item};
use crate::ids::HoldId;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The kind of request goes first so that a key reused across kinds never matches.
const KIND_PLACE_HOLD: u8 = 1;
const KIND_CHECKOUT: u8 = 2;
const KIND_ADD_TICKET_TYPE: u8 = 3;
const KIND_ADD_QUOTA: u8 = 4;
const KIND_EDIT_TICKET_TYPE: u8 = 5;
const KIND_SET_QUOTA_CAPACITY: u8 = 6;

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

impl Fnv {
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_le_bytes());
    }
    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.bytes(s.as_bytes());
    }
    /// An option: a presence byte, then the value.
    fn opt<T>(&mut self, v: Option<T>, put: impl FnOnce(&mut Fnv, T)) {
        match v {
            None => self.bytes(&[0]),
            Some(v) => {
                self.bytes(&[1]);
                put(self, v);
            }
        }
    }
}

/// An organiser's catalog request, field by field; `None` for a command that takes no
/// organiser key.
pub(crate) fn organiser(command: &Command) -> Option<u64> {
    let h = match command {
        Command::AddTicketType {
            name,
            price,
            max_per_order,
        } => {
            let mut h = Fnv::new(KIND_ADD_TICKET_TYPE);
            h.str(name.as_str());
            h.u64(price.get() as u64);
            h.opt(*max_per_order, |h, m| h.u64(m.into()));
            h
        }
        Command::AddQuota {
            name,
            capacity,
            ticket_types,
        } => {
            let mut h = Fnv::new(KIND_ADD_QUOTA);
            h.str(name.as_str());
            h.u64((*capacity).into());
            h.u64(ticket_types.len() as u64);
            ticket_types.iter().for_each(|t| h.u64(t.0.into()));
            h
        }
        Command::EditTicketType {
            ticket_type,
            name,
            price,
            max_per_order,
        } => {
            let mut h = Fnv::new(KIND_EDIT_TICKET_TYPE);
            h.u64(ticket_type.0.into());
            h.opt(name.as_ref(), |h, n| h.str(n.as_str()));
            h.opt(*price, |h, p| h.u64(p.get() as u64));
            h.opt(*max_per_order, |h, m| h.opt(m, |h, m| h.u64(m.into())));
            h
        }
        Command::SetQuotaCapacity { quota, capacity } => {
            let mut h = Fnv::new(KIND_SET_QUOTA_CAPACITY);
            h.u64(quota.0.into());
            h.u64((*capacity).into());
            h
        }
        _ => return None,
    };
    Some(h.0)
}
