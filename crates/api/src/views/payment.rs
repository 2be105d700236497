//! Payments as the API shows them: the attempt under way in every order view (with its client
//! secret for the buyer's front end, to the buyer only), and every attempt with its history and
//! every refund in the organiser's order view.

use serde::Serialize;
use taquilla_domain::{Order, Payment, PaymentStep, Refund, SaleId, SaleState};
use utoipa::ToSchema;

use super::order::OrderView;
use crate::json::json_view;
use crate::named::{PaymentMethodName, PaymentStateName, RefundStateName};
use crate::time::Rfc3339;

json_view! {
    /// The order's current payment attempt.
    #[derive(Clone, Copy)]
    pub struct PaymentView<'a> {
        /// 1 for the order's first attempt.
        pub attempt: u32,
        pub method: PaymentMethodName,
        pub state: PaymentStateName,
        pub amount_minor: i64,
        /// The provider's id of the payment (Stripe: the PaymentIntent id), once created.
        pub payment_intent_id: Option<&'a str>,
        /// What the buyer's front end confirms the payment with (Stripe.js
        /// `confirmPayment`). Only in the buyer's own view.
        pub client_secret: Option<&'a str>,
        /// Why it was declined or failed.
        pub reason: Option<&'a str>,
    }
}

impl<'a> PaymentView<'a> {
    pub fn new(p: &'a Payment, for_buyer: bool) -> PaymentView<'a> {
        PaymentView {
            attempt: p.attempt,
            method: PaymentMethodName(p.method),
            state: PaymentStateName(p.state),
            amount_minor: p.amount.get(),
            payment_intent_id: p.intent.as_ref().map(|i| i.as_str()),
            client_secret: p.client_secret.as_ref().filter(|_| for_buyer).map(|s| s.as_str()),
            reason: p.reason.as_ref().map(|r| r.as_str()),
        }
    }
}

/// One step of a payment's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentStepView<'a> {
    #[schema(value_type = String, format = DateTime)]
    pub at: Rfc3339,
    pub state: PaymentStateName,
    /// The request, webhook or saga step that caused it.
    pub correlation_id: Option<&'a str>,
}

/// A payment attempt with its whole history.
#[derive(Debug, Serialize, ToSchema)]
pub struct PaymentDetailView<'a> {
    pub attempt: u32,
    pub method: PaymentMethodName,
    pub state: PaymentStateName,
    pub amount_minor: i64,
    pub payment_intent_id: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub steps: Vec<PaymentStepView<'a>>,
}

impl<'a> PaymentDetailView<'a> {
    pub fn new(p: &'a Payment) -> PaymentDetailView<'a> {
        PaymentDetailView {
            attempt: p.attempt,
            method: PaymentMethodName(p.method),
            state: PaymentStateName(p.state),
            amount_minor: p.amount.get(),
            payment_intent_id: p.intent.as_ref().map(|i| i.as_str()),
            reason: p.reason.as_ref().map(|r| r.as_str()),
            steps: p.steps.iter().map(step_view).collect(),
        }
    }
}

fn step_view(s: &PaymentStep) -> PaymentStepView<'_> {
    PaymentStepView {
        at: Rfc3339(s.at),
        state: PaymentStateName(s.state),
        correlation_id: s.correlation_id.as_ref().map(|c| c.as_str()),
    }
}

/// Money going back to the buyer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefundView<'a> {
    /// 1 for the order's first refund.
    pub number: u32,
    pub amount_minor: i64,
    /// The payment attempt refunded through its provider; absent when the organiser pays it
    /// back by hand (`manual`: paid offline).
    pub attempt: Option<u32>,
    pub state: RefundStateName,
    /// The provider's id of the refund, once issued.
    pub provider_ref: Option<&'a str>,
    pub reason: Option<&'a str>,
    #[schema(value_type = String, format = DateTime)]
    pub requested_at: Rfc3339,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub settled_at: Option<Rfc3339>,
}

impl<'a> RefundView<'a> {
    pub fn new(r: &'a Refund) -> RefundView<'a> {
        RefundView {
            number: r.number,
            amount_minor: r.amount.get(),
            attempt: r.attempt,
            state: RefundStateName(r.state),
            provider_ref: r.provider_ref.as_ref().map(|p| p.as_str()),
            reason: r.reason.as_ref().map(|x| x.as_str()),
            requested_at: Rfc3339(r.requested_at),
            settled_at: r.settled_at.map(Rfc3339),
        }
    }
}

/// Any order as its organiser sees it: the order view plus every payment attempt with its
/// history (the timeline of the saga's steps) and every refund.
#[derive(Serialize, ToSchema)]
pub struct AdminOrderView<'a> {
    pub order: OrderView<'a>,
    pub buyer_id: &'a str,
    pub payments: Vec<PaymentDetailView<'a>>,
    pub refunds: Vec<RefundView<'a>>,
}

impl<'a> AdminOrderView<'a> {
    pub fn new(sale: SaleId, state: &'a SaleState, o: &'a Order) -> AdminOrderView<'a> {
        AdminOrderView {
            order: OrderView::new(sale, state, o, false),
            buyer_id: o.buyer.as_str(),
            payments: o.payments.iter().map(PaymentDetailView::new).collect(),
            refunds: o.refunds.iter().map(RefundView::new).collect(),
        }
    }
}
