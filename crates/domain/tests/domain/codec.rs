//! The event codec: round trips of arbitrary events, hostile input, and versioning.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use taquilla_domain::codec::{DecodeError, decode_events, decode_events_into, encode_events};
use taquilla_domain::{
    BuyerId, Currency, Event, HoldId, IdempotencyKey, IssuedTicket, Item, Items, MoneyMinor, Name, OrderId, PaymentRef,
    Quantity, QuotaId, Reason, SaleStatus, TicketCode, TicketTypeId, Timestamp,
};

use super::support::*;

fn text() -> impl Strategy<Value = String> {
    // Includes multi-byte characters so that byte lengths differ from char counts.
    "[a-zA-Z0-9 _ñé€-]{1,40}".prop_filter("not blank", |s| !s.trim().is_empty())
}

fn arb_name() -> impl Strategy<Value = Name> {
    text().prop_filter_map("valid name", |s| Name::parse(&s).ok())
}
fn arb_buyer() -> impl Strategy<Value = BuyerId> {
    text().prop_filter_map("valid buyer", |s| BuyerId::parse(&s).ok())
}
fn arb_key() -> impl Strategy<Value = IdempotencyKey> {
    text().prop_filter_map("valid key", |s| IdempotencyKey::parse(&s).ok())
}
fn arb_ref() -> impl Strategy<Value = PaymentRef> {
    text().prop_filter_map("valid ref", |s| PaymentRef::parse(&s).ok())
}
fn arb_reason() -> impl Strategy<Value = Reason> {
    "[a-z ]{0,30}".prop_filter_map("valid reason", |s| Reason::parse(&s).ok())
}
fn arb_money() -> impl Strategy<Value = MoneyMinor> {
    (0i64..=1_000_000_000_000).prop_filter_map("valid money", |v| MoneyMinor::new(v).ok())
}
fn arb_time() -> impl Strategy<Value = Timestamp> {
    any::<i64>().prop_map(Timestamp)
}
fn arb_code() -> impl Strategy<Value = TicketCode> {
    any::<u128>().prop_map(TicketCode)
}
fn arb_currency() -> impl Strategy<Value = Currency> {
    "[A-Z]{3}".prop_filter_map("valid currency", |s| Currency::parse(&s).ok())
}
fn arb_items() -> impl Strategy<Value = Items> {
    vec((any::<u32>(), 1u32..=100), 1..=16).prop_map(|lines| {
        lines
            .into_iter()
            .filter_map(|(tt, q)| {
                Some(Item {
                    ticket_type: TicketTypeId(tt),
                    quantity: Quantity::new(q).ok()?,
                })
            })
            .collect()
    })
}

pub fn arb_event() -> impl Strategy<Value = Event> {
    prop_oneof![
        (
            arb_name(),
            arb_currency(),
            any::<u64>(),
            option::of(any::<u32>()),
            option::of(arb_time()),
            option::of(arb_time()),
            option::of(any::<u64>())
        )
            .prop_map(
                |(name, currency, hold_ttl_ms, max_tickets_per_buyer, opens_at, closes_at, offline_payment_ttl_ms)| {
                    Event::SaleCreated {
                        name,
                        currency,
                        hold_ttl_ms,
                        max_tickets_per_buyer,
                        opens_at,
                        closes_at,
                        offline_payment_ttl_ms,
                    }
                }
            ),
        (any::<u32>(), arb_name(), arb_money(), option::of(any::<u32>())).prop_map(
            |(id, name, price, max_per_order)| {
                Event::TicketTypeAdded {
                    id: TicketTypeId(id),
                    name,
                    price,
                    max_per_order,
                }
            }
        ),
        (any::<u32>(), arb_name(), arb_money(), option::of(any::<u32>())).prop_map(
            |(id, name, price, max_per_order)| {
                Event::TicketTypeEdited {
                    id: TicketTypeId(id),
                    name,
                    price,
                    max_per_order,
                }
            }
        ),
        (arb_key(), any::<u64>(), 0u8..3, any::<u32>(), arb_time()).prop_map(|(key, fingerprint, kind, id, at)| {
            let outcome = match kind {
                0 => taquilla_domain::Outcome::Done,
                1 => taquilla_domain::Outcome::TicketTypeAdded(TicketTypeId(id)),
                _ => taquilla_domain::Outcome::QuotaAdded(QuotaId(id)),
            };
            Event::OrganiserKeyUsed {
                key,
                fingerprint,
                outcome,
                at,
            }
        }),
        (any::<u32>(), any::<u32>()).prop_map(|(id, capacity)| Event::QuotaCapacitySet {
            id: QuotaId(id),
            capacity
        }),
        (any::<u32>(), arb_name(), any::<u32>(), vec(any::<u32>(), 0..70)).prop_map(|(id, name, capacity, types)| {
            Event::QuotaAdded {
                id: QuotaId(id),
                name,
                capacity,
                ticket_types: types.into_iter().map(TicketTypeId).collect(),
            }
        }),
        prop_oneof![
            Just(SaleStatus::Draft),
            Just(SaleStatus::Open),
            Just(SaleStatus::Paused),
            Just(SaleStatus::Closed),
            Just(SaleStatus::Archived)
        ]
        .prop_map(|status| Event::SaleStatusChanged { status }),
        (
            any::<u64>(),
            arb_buyer(),
            arb_items(),
            arb_time(),
            option::of(arb_key())
        )
            .prop_map(|(hold, buyer, items, expires_at, idempotency_key)| {
                Event::HoldPlaced {
                    hold: HoldId(hold),
                    buyer,
                    items,
                    expires_at,
                    idempotency_key,
                }
            }),
        any::<u64>().prop_map(|h| Event::HoldReleased { hold: HoldId(h) }),
        any::<u64>().prop_map(|h| Event::HoldExpired { hold: HoldId(h) }),
        (
            any::<u64>(),
            any::<u64>(),
            arb_money(),
            arb_time(),
            option::of(arb_key())
        )
            .prop_map(|(order, hold, total, at, idempotency_key)| Event::OrderPlaced {
                order: OrderId(order),
                hold: HoldId(hold),
                total,
                at,
                idempotency_key
            }),
        (
            any::<u64>(),
            arb_ref(),
            vec((arb_code(), any::<u32>()), 0..20),
            any::<bool>(),
            arb_time()
        )
            .prop_map(|(order, payment_ref, tickets, reinstated, at)| Event::OrderPaid {
                order: OrderId(order),
                payment_ref,
                tickets: tickets
                    .into_iter()
                    .map(|(code, tt)| IssuedTicket {
                        code,
                        ticket_type: TicketTypeId(tt)
                    })
                    .collect(),
                reinstated,
                at
            }),
        (any::<u64>(), arb_reason()).prop_map(|(o, reason)| Event::OrderPaymentFailed {
            order: OrderId(o),
            reason
        }),
        (any::<u64>(), arb_time()).prop_map(|(o, at)| Event::OrderExpired { order: OrderId(o), at }),
        (any::<u64>(), arb_time()).prop_map(|(o, at)| Event::OrderCancelled { order: OrderId(o), at }),
        (any::<u64>(), arb_ref(), arb_time()).prop_map(|(o, payment_ref, at)| {
            Event::OrderRefundRequired {
                order: OrderId(o),
                payment_ref,
                at,
            }
        }),
        (any::<u64>(), vec(arb_code(), 0..20), arb_money(), arb_time()).prop_map(|(o, tickets, amount, at)| {
            Event::OrderRefunded {
                order: OrderId(o),
                tickets,
                amount,
                at,
            }
        }),
        (arb_code(), arb_time()).prop_map(|(code, at)| Event::TicketCheckedIn { code, at }),
    ]
}

fn encode(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    encode_events(events, &mut out);
    out
}

proptest! {
    #[test]
    fn every_event_round_trips(events in vec(arb_event(), 0..12)) {
        let bytes = encode(&events);
        prop_assert_eq!(decode_events(&bytes), Ok(events.clone()));
        // The reusable-buffer variant appends.
        let mut out = vec![Event::HoldReleased { hold: HoldId(7) }];
        prop_assert_eq!(decode_events_into(&bytes, &mut out), Ok(()));
        prop_assert_eq!(&out[1..], &events[..]);
    }

    #[test]
    fn a_truncated_payload_is_an_error(events in vec(arb_event(), 1..6), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&events);
        let cut = cut.index(bytes.len());
        prop_assert!(decode_events(&bytes[..cut]).is_err());
        let mut out = vec![Event::HoldReleased { hold: HoldId(7) }];
        prop_assert!(decode_events_into(&bytes[..cut], &mut out).is_err());
        prop_assert_eq!(out.len(), 1, "a failed decode leaves the buffer as it was");
    }

    #[test]
    fn garbage_never_panics(bytes in vec(any::<u8>(), 0..300)) {
        let _ = decode_events(&bytes);
    }

    #[test]
    fn flipped_bytes_never_panic(events in vec(arb_event(), 1..6), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&events);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = decode_events(&bytes);
    }
}

#[test]
fn an_unknown_tag_is_an_error() {
    assert_eq!(decode_events(&[1, 99, 1, 0]), Err(DecodeError::UnknownTag(99)));
    assert_eq!(decode_events(&[1, 0, 1, 0]), Err(DecodeError::UnknownTag(0)));
}

#[test]
fn version_zero_and_trailing_bytes_are_errors() {
    // HoldReleased { hold: 5 } is tag 6, v1, body [5].
    assert_eq!(
        decode_events(&[1, 6, 1, 1, 5]),
        Ok(vec![Event::HoldReleased { hold: HoldId(5) }])
    );
    assert!(matches!(
        decode_events(&[1, 6, 0, 1, 5]),
        Err(DecodeError::UnknownVersion { .. })
    ));
    assert_eq!(decode_events(&[1, 6, 1, 2, 5, 0]), Err(DecodeError::TrailingBody(1)));
    assert_eq!(decode_events(&[1, 6, 1, 1, 5, 0]), Err(DecodeError::TrailingPayload(1)));
    assert_eq!(decode_events(&[2, 6, 1, 1, 5]), Err(DecodeError::Truncated));
}

/// A `HoldPlaced` as version 1 wrote it, before the idempotency key was appended in v2.
#[test]
fn a_v1_hold_placed_decodes_with_no_key() {
    let mut body = vec![
        42, // hold
        5, b'a', b'l', b'i', b'c', b'e', // buyer
        1, 0, 2, // one item: type 0, quantity 2
    ];
    body.extend([0x80, 0xb5, 0x18]); // expires_at 200_000 ms, zigzag: 400_000
    let mut bytes = vec![1, 5, 1, body.len() as u8];
    bytes.extend(&body);
    let expected = Event::HoldPlaced {
        hold: HoldId(42),
        buyer: buyer("alice"),
        items: items(&[(0, 2)]),
        expires_at: Timestamp(200_000),
        idempotency_key: None,
    };
    assert_eq!(decode_events(&bytes), Ok(vec![expected.clone()]));
    // Today's encoder writes v2: the same fields plus the key flag.
    let mut v2 = vec![1, 5, 2, body.len() as u8 + 1];
    v2.extend(&body);
    v2.push(0);
    assert_eq!(encode(&[expected]), v2);
}

/// A version newer than the decoder knows: its known fields are read, the rest skipped.
#[test]
fn a_newer_version_skips_appended_fields() {
    // HoldReleased v7 with two unknown trailing bytes, then a v1 HoldExpired.
    let bytes = [2, 6, 7, 3, 5, 0xAA, 0xBB, 7, 1, 1, 9];
    assert_eq!(
        decode_events(&bytes),
        Ok(vec![
            Event::HoldReleased { hold: HoldId(5) },
            Event::HoldExpired { hold: HoldId(9) }
        ])
    );
}

#[test]
fn invalid_values_are_rejected_through_the_newtypes() {
    // OrderPaymentFailed (tag 10) with a reason holding a control character.
    assert!(matches!(
        decode_events(&[1, 10, 1, 3, 1, 1, 0x07]),
        Err(DecodeError::Invalid(_))
    ));
    // ... and with invalid UTF-8.
    assert_eq!(decode_events(&[1, 10, 1, 3, 1, 1, 0xff]), Err(DecodeError::BadUtf8));
    // HoldPlaced with quantity 0.
    assert!(matches!(
        decode_events(&[1, 5, 2, 6, 1, 1, b'a', 1, 0, 0]),
        Err(DecodeError::Invalid(_))
    ));
    // A huge count does not allocate: it is an error.
    assert!(decode_events(&[0xff, 0xff, 0xff, 0xff, 0x0f]).is_err());
}
