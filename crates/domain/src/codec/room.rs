//! The encoding of the waiting-room events (tags 32–38), in the same body format as the
//! others (see the parent module).

use super::{DecodeError, Reader, put_str, put_time, put_u64, tag};
use crate::event::Event;
use crate::room::RoomConfig;
use crate::values::BuyerId;

pub(super) fn tag_of(event: &Event) -> Option<u8> {
    Some(match event {
        Event::RoomConfigured { .. } => tag::ROOM_CONFIGURED,
        Event::BuyerJoined { .. } => tag::BUYER_JOINED,
        Event::BuyerLeft { .. } => tag::BUYER_LEFT,
        Event::PrequeueShuffled { .. } => tag::PREQUEUE_SHUFFLED,
        Event::BuyersAdmitted { .. } => tag::BUYERS_ADMITTED,
        Event::AdmissionsExpired { .. } => tag::ADMISSIONS_EXPIRED,
        Event::AdmissionUsed { .. } => tag::ADMISSION_USED,
        _ => return None,
    })
}

/// The body of a room event; `false` for any other event.
pub(super) fn encode_body(event: &Event, out: &mut Vec<u8>) -> bool {
    match event {
        Event::RoomConfigured { config, seed } => {
            put_time(out, config.prequeue_opens_at);
            put_time(out, config.opens_at);
            put_u64(out, config.admit_per_sec.into());
            put_u64(out, config.session_ms);
            put_u64(out, config.queue_max.into());
            out.extend_from_slice(seed);
        }
        Event::BuyerJoined { buyer, at } | Event::BuyerLeft { buyer, at } => {
            put_str(out, buyer.as_str());
            put_time(out, *at);
        }
        Event::PrequeueShuffled { at } => put_time(out, *at),
        Event::BuyersAdmitted { count, at } | Event::AdmissionsExpired { count, at } => {
            put_u64(out, (*count).into());
            put_time(out, *at);
        }
        Event::AdmissionUsed { buyer } => put_str(out, buyer.as_str()),
        _ => return false,
    }
    true
}

/// Decodes the body of a room event (`tag` is one of the room's).
pub(super) fn decode_body(tag: u8, r: &mut Reader) -> Result<Event, DecodeError> {
    Ok(match tag {
        tag::ROOM_CONFIGURED => Event::RoomConfigured {
            config: RoomConfig {
                prequeue_opens_at: r.time()?,
                opens_at: r.time()?,
                admit_per_sec: r.u32()?,
                session_ms: r.u64()?,
                queue_max: r.u32()?,
            },
            seed: r.take(32)?.try_into().map_err(|_| DecodeError::Truncated)?,
        },
        tag::BUYER_JOINED => Event::BuyerJoined {
            buyer: BuyerId::parse(r.str()?)?,
            at: r.time()?,
        },
        tag::BUYER_LEFT => Event::BuyerLeft {
            buyer: BuyerId::parse(r.str()?)?,
            at: r.time()?,
        },
        tag::PREQUEUE_SHUFFLED => Event::PrequeueShuffled { at: r.time()? },
        tag::BUYERS_ADMITTED => Event::BuyersAdmitted {
            count: r.u32()?,
            at: r.time()?,
        },
        tag::ADMISSIONS_EXPIRED => Event::AdmissionsExpired {
            count: r.u32()?,
            at: r.time()?,
        },
        tag::ADMISSION_USED => Event::AdmissionUsed {
            buyer: BuyerId::parse(r.str()?)?,
        },
        _ => return Err(DecodeError::UnknownTag(tag)),
    })
}
