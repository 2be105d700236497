//! An order: a checked-out hold awaiting payment, then paid with its tickets.

use serde::{Serialize, Serializer};
use taquilla_domain::{Order, SaleId, SaleState, Ticket, TicketCode};

use super::hold::{ItemView, ItemsView, write_list};
use super::payment::PaymentView;
use crate::ids::{PublicHoldId, PublicOrderId, PublicSaleId};
use crate::json::{WriteJson, json_view, write_ascii};
use crate::named::{Named, OrderStateName, named_schema};
use crate::time::Rfc3339;

/// The state of a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketStateView {
    Valid,
    Refunded,
    CheckedIn,
}

impl TicketStateView {
    pub const ALL: [TicketStateView; 3] = [
        TicketStateView::Valid,
        TicketStateView::Refunded,
        TicketStateView::CheckedIn,
    ];

    pub fn of(t: &Ticket) -> TicketStateView {
        if t.refunded {
            TicketStateView::Refunded
        } else if t.checked_in_at.is_some() {
            TicketStateView::CheckedIn
        } else {
            TicketStateView::Valid
        }
    }
}

impl Named for TicketStateView {
    const SCHEMA: &'static str = "TicketState";
    fn name(&self) -> &'static str {
        match self {
            TicketStateView::Valid => "valid",
            TicketStateView::Refunded => "refunded",
            TicketStateView::CheckedIn => "checked_in",
        }
    }
    fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(Named::name).collect()
    }
}

named_schema!(TicketStateView);

/// A ticket's code as its 26-character text.
#[derive(Debug, Clone, Copy)]
pub struct TicketCodeText(pub TicketCode);

impl Serialize for TicketCodeText {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_text())
    }
}

impl WriteJson for TicketCodeText {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_ascii(&self.0.to_text(), out);
    }
}

json_view! {
    /// A ticket issued on payment.
    pub struct TicketView {
        /// 26 characters of Crockford base32: the bearer secret shown at the door.
        #[schema(value_type = String, example = "1CAHQQY7KCG95H6BK9K8EAV022")]
        pub code: TicketCodeText,
        pub ticket_type_id: u32,
        pub state: TicketStateView,
        #[schema(value_type = Option<String>, format = DateTime)]
        pub checked_in_at: Option<Rfc3339>,
    }
}

impl TicketView {
    pub fn new(t: &Ticket) -> TicketView {
        TicketView {
            code: TicketCodeText(t.code),
            ticket_type_id: t.ticket_type.0,
            state: TicketStateView::of(t),
            checked_in_at: t.checked_in_at.map(Rfc3339),
        }
    }
}

/// An order's tickets, in issue order, serialized as a list of [`TicketView`].
#[derive(Clone, Copy)]
pub struct TicketsView<'a> {
    pub codes: &'a [TicketCode],
    pub state: &'a SaleState,
}

impl TicketsView<'_> {
    fn tickets(&self) -> impl Iterator<Item = TicketView> + '_ {
        self.codes
            .iter()
            .filter_map(|c| self.state.tickets.get(c))
            .map(TicketView::new)
    }
}

impl Serialize for TicketsView<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.tickets())
    }
}

impl WriteJson for TicketsView<'_> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_list(self.tickets(), out);
    }
}

json_view! {
/// A checked-out hold awaiting payment, then paid with its tickets.
pub struct OrderView<'a> {
    #[schema(value_type = String, example = "ord_1_1")]
    pub id: PublicOrderId,
    #[schema(value_type = String, example = "evt_1")]
    pub event_id: PublicSaleId,
    #[schema(value_type = String, example = "hld_1_1")]
    pub hold_id: PublicHoldId,
    pub state: OrderStateName,
    #[schema(value_type = Vec<ItemView>)]
    pub items: ItemsView<'a>,
    pub total_minor: i64,
    pub refunded_minor: i64,
    /// ISO 4217.
    pub currency: &'a str,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Rfc3339,
    /// Payment deadline while awaiting payment.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: Rfc3339,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paid_at: Option<Rfc3339>,
    /// With codes once paid.
    #[schema(value_type = Vec<TicketView>)]
    pub tickets: TicketsView<'a>,
    /// The payment attempt under way or last made, if any.
    pub payment: Option<PaymentView<'a>>,
}
}

impl<'a> OrderView<'a> {
    /// The order; `for_buyer` shows the payment's client secret (its buyer's own view).
    pub fn new(sale: SaleId, state: &'a SaleState, o: &'a Order, for_buyer: bool) -> OrderView<'a> {
        OrderView {
            id: PublicOrderId(sale, o.id),
            event_id: PublicSaleId(sale),
            hold_id: PublicHoldId(sale, o.hold),
            state: OrderStateName(o.state),
            items: ItemsView {
                items: &o.items,
                state,
                hold: o.hold,
            },
            total_minor: o.total.get(),
            refunded_minor: o.refunded.get(),
            currency: super::currency(state),
            created_at: Rfc3339(o.created_at),
            expires_at: Rfc3339(o.expires_at),
            paid_at: o.paid_at.map(Rfc3339),
            tickets: TicketsView {
                codes: &o.tickets,
                state,
            },
            payment: o.payment().map(|p| PaymentView::new(p, for_buyer)),
        }
    }
}
