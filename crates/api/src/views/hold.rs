//! A hold: tickets set aside for a buyer until `expires_at`.

use serde::{Serialize, Serializer};
use taquilla_domain::{Hold, HoldId, HoldState, Items, SaleId, SaleState};

use crate::json::{WriteJson, json_view};

use crate::ids::{PublicHoldId, PublicOrderId, PublicSaleId};
use crate::named::{Named, named_schema};
use crate::time::Rfc3339;

/// The state of a hold as the API shows it (a converted hold's order is in `order_id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldStateView {
    Active,
    Released,
    Expired,
    /// Checked out into an order.
    Converted,
}

// Checked when compiling: `HoldStateView::ALL[i] as usize == i` (metrics index by it), and
// it is the domain's `HoldState::kind` (metrics sum the domain's counts in this order).
const _: () = {
    let mut i = 0;
    while i < HoldStateView::ALL.len() {
        assert!(HoldStateView::ALL[i] as usize == i);
        i += 1;
    }
    assert!(HoldState::Active.kind() == HoldStateView::Active as usize);
    assert!(HoldState::Released.kind() == HoldStateView::Released as usize);
    assert!(HoldState::Expired.kind() == HoldStateView::Expired as usize);
    assert!(HoldState::Converted(taquilla_domain::OrderId(0)).kind() == HoldStateView::Converted as usize);
    assert!(HoldState::KINDS == HoldStateView::ALL.len());
};

impl HoldStateView {
    pub const ALL: [HoldStateView; 4] = [
        HoldStateView::Active,
        HoldStateView::Released,
        HoldStateView::Expired,
        HoldStateView::Converted,
    ];
}

impl From<HoldState> for HoldStateView {
    fn from(s: HoldState) -> Self {
        match s {
            HoldState::Active => HoldStateView::Active,
            HoldState::Released => HoldStateView::Released,
            HoldState::Expired => HoldStateView::Expired,
            HoldState::Converted(_) => HoldStateView::Converted,
        }
    }
}

impl Named for HoldStateView {
    const SCHEMA: &'static str = "HoldState";
    fn name(&self) -> &'static str {
        match self {
            HoldStateView::Active => "active",
            HoldStateView::Released => "released",
            HoldStateView::Expired => "expired",
            HoldStateView::Converted => "converted",
        }
    }
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(Named::name).collect()
    }
}

named_schema!(HoldStateView);

json_view! {
    /// One line of a hold or order.
    #[derive(Debug, Clone, Copy)]
    pub struct ItemView {
        pub ticket_type_id: u32,
        pub quantity: u32,
        /// The ticket type's price when the hold was placed.
        pub unit_price_minor: i64,
    }
}

/// A hold's or order's lines with their prices, serialized as a list of [`ItemView`].
#[derive(Clone, Copy)]
pub struct ItemsView<'a> {
    pub items: &'a Items,
    pub state: &'a SaleState,
    /// The hold the lines were placed in (its order's, for an order): its prices are theirs.
    pub hold: HoldId,
}

impl ItemsView<'_> {
    fn lines(&self) -> impl Iterator<Item = ItemView> + '_ {
        self.items.iter().map(|it| ItemView {
            ticket_type_id: it.ticket_type.0,
            quantity: it.quantity.get(),
            unit_price_minor: self
                .state
                .ticket_types
                .get(it.ticket_type.0 as usize)
                .map_or(0, |t| t.price_for(self.hold).get()),
        })
    }
}

impl Serialize for ItemsView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.lines())
    }
}

impl WriteJson for ItemsView<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_list(self.lines(), out);
    }
}

json_view! {
    /// Tickets set aside for a buyer until `expires_at`.
    pub struct HoldView<'a> {
        #[schema(value_type = String, example = "hld_1_1")]
        pub id: PublicHoldId,
        #[schema(value_type = String, example = "evt_1")]
        pub event_id: PublicSaleId,
        pub state: HoldStateView,
        #[schema(value_type = Vec<ItemView>)]
        pub items: ItemsView<'a>,
        pub total_minor: i64,
        /// ISO 4217.
        pub currency: &'a str,
        #[schema(value_type = String, format = DateTime)]
        pub expires_at: Rfc3339,
        /// Set once the hold was checked out.
        #[schema(value_type = Option<String>, example = "ord_1_1")]
        pub order_id: Option<PublicOrderId>,
    }
}

impl<'a> HoldView<'a> {
    pub fn new(sale: SaleId, state: &'a SaleState, h: &'a Hold) -> HoldView<'a> {
        HoldView {
            id: PublicHoldId(sale, h.id),
            event_id: PublicSaleId(sale),
            state: h.state.into(),
            items: ItemsView {
                items: &h.items,
                state,
                hold: h.id,
            },
            total_minor: h.total.get(),
            currency: super::currency(state),
            expires_at: Rfc3339(h.expires_at),
            order_id: match h.state {
                HoldState::Converted(o) => Some(PublicOrderId(sale, o)),
                _ => None,
            },
        }
    }
}

/// Writes the items as a JSON list.
pub(crate) fn write_list<T: WriteJson>(items: impl Iterator<Item = T>, out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, it) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        it.write_json(out);
    }
    out.push(b']');
}
