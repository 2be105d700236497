//! `decide` for payments: a buyer's request, and what the provider said (through the saga, a
//! webhook or the reconciler). Reports may come twice, late or out of order, so every report
//! is judged against where the payment stands: one that changes nothing is accepted with no
//! events, never an error the reporter would retry forever.

use crate::command::Actor;
use crate::decide::{check_buyer_limit, check_inventory, done, find_order, issue_tickets, nothing};
use crate::event::Event;
use crate::ids::OrderId;
use crate::limits;
use crate::payment::{Payment, PaymentMethod, PaymentState, PaymentUpdate, RefundState, RefundUpdate};
use crate::rejection::{ConflictReason, Entity, Rejection};
use crate::state::{Order, OrderState, Outcome, Sale, SaleState};
use crate::values::{BuyerId, CorrelationId, PaymentRef, Reason, Timestamp};
use crate::{Ctx, Decision};

fn correlation(ctx: &Ctx<'_>) -> Option<CorrelationId> {
    ctx.correlation_id.and_then(|c| CorrelationId::parse(c).ok())
}

fn payment_outcome(order: OrderId, attempt: u32) -> Outcome {
    Outcome::Payment { order, attempt }
}

/// The buyer pays with `method`. A repeated request for the attempt under way (same method)
/// answers that attempt with no events; an offline attempt may be replaced by a provider one.
pub(crate) fn request(
    state: &SaleState,
    sale: &Sale,
    buyer: &BuyerId,
    order: OrderId,
    method: PaymentMethod,
    ctx: &Ctx<'_>,
) -> Result<Decision, Rejection> {
    let o = state
        .orders
        .get(&order)
        .filter(|o| &o.buyer == buyer)
        .ok_or(Rejection::NotFound(Entity::Order))?;
    let current = o.payment();
    match (o.state, current) {
        (OrderState::PaymentPending, Some(p)) if p.method == method && !p.state.is_final() => {
            return Ok(nothing(payment_outcome(order, p.attempt)));
        }
        (OrderState::PaymentPending, _) => return Err(Rejection::Conflict(ConflictReason::PaymentInProgress)),
        (OrderState::AwaitingPayment, Some(p)) if p.state == PaymentState::AwaitingOffline && method == p.method => {
            return Ok(nothing(payment_outcome(order, p.attempt)));
        }
        (OrderState::AwaitingPayment, _) => {}
        (other, _) => return Err(not_awaiting(other)),
    }
    if ctx.now >= o.expires_at {
        return Err(Rejection::HoldExpired);
    }
    let attempt = o.payments.len() as u32 + 1;
    if attempt > limits::PAYMENT_ATTEMPTS_MAX {
        return Err(Rejection::Conflict(ConflictReason::PaymentAttemptsExhausted));
    }
    let expires_at = match method {
        PaymentMethod::Offline => {
            let ttl = sale
                .offline_payment_ttl_ms
                .ok_or(Rejection::Conflict(ConflictReason::PaymentMethodNotOffered))?;
            o.expires_at.max(ctx.now.plus_ms(ttl))
        }
        _ => o.expires_at,
    };
    let correlation_id = correlation(ctx);
    let mut events = Vec::with_capacity(2);
    if let Some(p) = current.filter(|p| p.state == PaymentState::AwaitingOffline) {
        // Superseded: nothing was paid offline yet (or the organiser would have confirmed it).
        events.push(Event::PaymentVoided {
            order,
            attempt: p.attempt,
            at: ctx.now,
            correlation_id: correlation_id.clone(),
        });
    }
    events.push(Event::PaymentRequested {
        order,
        attempt,
        method,
        amount: o.total,
        expires_at,
        at: ctx.now,
        correlation_id,
    });
    Ok(Decision {
        events,
        outcome: payment_outcome(order, attempt),
    })
}

/// Why an order in `state` cannot be paid now.
pub(crate) fn not_awaiting(state: OrderState) -> Rejection {
    match state {
        OrderState::Expired => Rejection::HoldExpired,
        OrderState::Paid => Rejection::Conflict(ConflictReason::OrderPaid),
        OrderState::RefundRequired => Rejection::Conflict(ConflictReason::OrderRefundRequired),
        OrderState::Refunded => Rejection::Conflict(ConflictReason::OrderRefunded),
        OrderState::Cancelled => Rejection::Conflict(ConflictReason::OrderCancelled),
        OrderState::PaymentFailed => Rejection::Conflict(ConflictReason::OrderPaymentFailed),
        OrderState::PaymentPending => Rejection::Conflict(ConflictReason::PaymentInProgress),
        OrderState::AwaitingPayment => Rejection::Conflict(ConflictReason::OrderNotAwaitingPayment),
    }
}

/// A report from the provider about attempt `attempt` of `order`.
pub(crate) fn record(
    state: &SaleState,
    sale: &Sale,
    order: OrderId,
    attempt: u32,
    update: PaymentUpdate,
    ctx: &mut Ctx<'_>,
) -> Result<Decision, Rejection> {
    let o = find_order(state, order)?;
    let p = attempt
        .checked_sub(1)
        .and_then(|i| o.payments.get(i as usize))
        .ok_or(Rejection::NotFound(Entity::Payment))?;
    if !p.method.is_provider() {
        return Err(Rejection::NotFound(Entity::Payment));
    }
    let named = match &update {
        PaymentUpdate::Created { intent, .. }
        | PaymentUpdate::Authorised { intent }
        | PaymentUpdate::Captured { intent } => Some(intent),
        _ => None,
    };
    if let (Some(known), Some(named)) = (&p.intent, named)
        && known != named
    {
        return Err(Rejection::Conflict(ConflictReason::PaymentIntentMismatch));
    }
    let report = Report {
        state,
        sale,
        order: o,
        payment: p,
        now: ctx.now,
        correlation_id: correlation(ctx),
    };
    Ok(match update {
        PaymentUpdate::Created { intent, client_secret } => report.created(intent, client_secret),
        PaymentUpdate::Authorised { intent } => report.authorised(intent),
        PaymentUpdate::Captured { intent } => report.captured(intent, ctx)?,
        PaymentUpdate::Voided => report.voided(),
        PaymentUpdate::Declined { reason } => report.declined(reason),
        PaymentUpdate::Failed { reason } => report.failed(reason),
    })
}

/// One provider report, judged against the payment it names.
struct Report<'a> {
    state: &'a SaleState,
    sale: &'a Sale,
    order: &'a Order,
    payment: &'a Payment,
    now: Timestamp,
    correlation_id: Option<CorrelationId>,
}

impl Report<'_> {
    fn ids(&self) -> (OrderId, u32) {
        (self.order.id, self.payment.attempt)
    }

    fn is_current(&self) -> bool {
        self.order.payment().map(|p| p.attempt) == Some(self.payment.attempt)
    }

    fn outcome(&self) -> Outcome {
        payment_outcome(self.order.id, self.payment.attempt)
    }

    fn one(&self, event: Event) -> Decision {
        Decision {
            events: vec![event],
            outcome: self.outcome(),
        }
    }

    fn void_required(&self) -> Event {
        let (order, attempt) = self.ids();
        Event::PaymentVoidRequired {
            order,
            attempt,
            at: self.now,
            correlation_id: self.correlation_id.clone(),
        }
    }

    fn created(self, intent: PaymentRef, client_secret: Option<crate::ClientSecret>) -> Decision {
        if self.payment.intent.is_some() {
            return nothing(self.outcome());
        }
        let (order, attempt) = self.ids();
        self.one(Event::PaymentCreated {
            order,
            attempt,
            intent,
            client_secret,
            at: self.now,
            correlation_id: self.correlation_id.clone(),
        })
    }

    /// The money is reserved: capture it if the order holds (or can take back) its tickets,
    /// else make sure the saga voids it.
    fn authorised(self, intent: PaymentRef) -> Decision {
        let (order, attempt) = self.ids();
        let o = self.order;
        let authorise = |reinstated| Event::PaymentAuthorised {
            order,
            attempt,
            intent: intent.clone(),
            reinstated,
            at: self.now,
            correlation_id: self.correlation_id.clone(),
        };
        match self.payment.state {
            PaymentState::Requested | PaymentState::AwaitingBuyer if o.state == OrderState::PaymentPending => {
                self.one(authorise(false))
            }
            PaymentState::VoidRequired
                if o.state == OrderState::Expired && self.is_current() && self.tickets_free() =>
            {
                self.one(authorise(true))
            }
            PaymentState::Authorised | PaymentState::Captured | PaymentState::VoidRequired => {
                self.record_intent_for_void(intent)
            }
            // The provider confirmed the void: a voided payment cannot be authorised, so this
            // report is older than the void (out of order) and changes nothing.
            PaymentState::Voided => nothing(self.outcome()),
            // A late authorisation of an attempt that had ended (declined, abandoned,
            // superseded) or of an order that let its tickets go: the money is reserved and
            // nothing will use it, so it is voided. The buyer may pay again.
            _ => {
                let mut events = Vec::with_capacity(2);
                if self.payment.intent.is_none() {
                    events.push(self.created_event(intent));
                }
                events.push(self.void_required());
                Decision {
                    events,
                    outcome: self.outcome(),
                }
            }
        }
    }

    /// The saga needs the provider's id to void a payment it has not seen created.
    fn record_intent_for_void(&self, intent: PaymentRef) -> Decision {
        if self.payment.intent.is_some() {
            return nothing(self.outcome());
        }
        self.one(self.created_event(intent))
    }

    fn created_event(&self, intent: PaymentRef) -> Event {
        let (order, attempt) = self.ids();
        Event::PaymentCreated {
            order,
            attempt,
            intent,
            client_secret: None,
            at: self.now,
            correlation_id: self.correlation_id.clone(),
        }
    }

    /// Whether an expired order's tickets are still free to take back (and its buyer may).
    fn tickets_free(&self) -> bool {
        let o = self.order;
        let quantity = o.items.iter().map(|i| i.quantity.get()).sum();
        check_inventory(self.state, &o.items).is_ok()
            && check_buyer_limit(self.state, self.sale, &o.buyer, quantity).is_ok()
    }

    /// The money moved: the order is paid if it held its tickets, else the money goes back.
    fn captured(self, intent: PaymentRef, ctx: &mut Ctx<'_>) -> Result<Decision, Rejection> {
        let (order, attempt) = self.ids();
        let o = self.order;
        if self.payment.state == PaymentState::Captured {
            return Ok(nothing(self.outcome()));
        }
        let captured = Event::PaymentCaptured {
            order,
            attempt,
            intent: intent.clone(),
            at: self.now,
            correlation_id: self.correlation_id.clone(),
        };
        let pays_order = o.state == OrderState::PaymentPending
            && self.is_current()
            && matches!(
                self.payment.state,
                PaymentState::Authorised | PaymentState::Requested | PaymentState::AwaitingBuyer
            );
        let second = if pays_order {
            Event::OrderPaid {
                order,
                payment_ref: intent,
                tickets: issue_tickets(self.state, &o.items, &mut *ctx.entropy)?,
                reinstated: false,
                at: self.now,
            }
        } else {
            refund_of(o, attempt, self.payment.amount, self.now)?
        };
        Ok(Decision {
            events: vec![captured, second],
            outcome: self.outcome(),
        })
    }

    fn voided(self) -> Decision {
        if self.payment.state.is_final() {
            return nothing(self.outcome());
        }
        let (order, attempt) = self.ids();
        self.one(Event::PaymentVoided {
            order,
            attempt,
            at: self.now,
            correlation_id: self.correlation_id.clone(),
        })
    }

    /// A decline ends an attempt still waiting for its money. One that must be voided stays so
    /// whatever a (possibly stale) decline says: a declined payment may still be confirmed with
    /// another card, and voiding it is harmless.
    fn declined(self, reason: Reason) -> Decision {
        let ends = matches!(
            self.payment.state,
            PaymentState::Requested | PaymentState::AwaitingBuyer
        );
        if !ends {
            return nothing(self.outcome());
        }
        let (order, attempt) = self.ids();
        self.one(Event::PaymentDeclined {
            order,
            attempt,
            reason,
            at: self.now,
            correlation_id: self.correlation_id.clone(),
        })
    }

    /// The provider refused the saga's step for good: creating it ends the attempt; a refused
    /// capture leaves an authorisation to void; a refused void ends it as failed.
    fn failed(self, reason: Reason) -> Decision {
        let (order, attempt) = self.ids();
        let failed = Event::PaymentFailed {
            order,
            attempt,
            reason,
            at: self.now,
            correlation_id: self.correlation_id.clone(),
        };
        match self.payment.state {
            PaymentState::Requested | PaymentState::AwaitingBuyer | PaymentState::VoidRequired => self.one(failed),
            PaymentState::Authorised => self.one(self.void_required()),
            _ => nothing(self.outcome()),
        }
    }
}

/// Money of attempt `attempt` goes back in full: a refund the saga asks the provider for.
fn refund_of(o: &Order, attempt: u32, amount: crate::MoneyMinor, now: Timestamp) -> Result<Event, Rejection> {
    let refund = o.refunds.len() as u32 + 1;
    if refund > limits::REFUNDS_MAX {
        return Err(Rejection::Conflict(ConflictReason::RefundsExhausted));
    }
    Ok(Event::RefundRequested {
        order: o.id,
        refund,
        attempt: Some(attempt),
        amount,
        at: now,
    })
}

/// The refund of a paid order's tickets: through the provider that captured the payment,
/// or by the organiser for an offline or confirmed payment. `None` for a free order.
pub(crate) fn refund_for_tickets(
    o: &Order,
    amount: crate::MoneyMinor,
    now: Timestamp,
) -> Result<Option<Event>, Rejection> {
    if amount == crate::MoneyMinor::ZERO {
        return Ok(None);
    }
    let captured = o
        .payments
        .iter()
        .rev()
        .find(|p| p.state == PaymentState::Captured && p.method.is_provider());
    let refund = o.refunds.len() as u32 + 1;
    if refund > limits::REFUNDS_MAX {
        return Err(Rejection::Conflict(ConflictReason::RefundsExhausted));
    }
    Ok(Some(Event::RefundRequested {
        order: o.id,
        refund,
        attempt: captured.map(|p| p.attempt),
        amount,
        at: now,
    }))
}

/// A report from the provider about refund `refund` of `order`.
pub(crate) fn record_refund(
    state: &SaleState,
    order: OrderId,
    refund: u32,
    update: RefundUpdate,
    ctx: &Ctx<'_>,
) -> Result<Decision, Rejection> {
    let o = find_order(state, order)?;
    let r = refund
        .checked_sub(1)
        .and_then(|i| o.refunds.get(i as usize))
        .ok_or(Rejection::NotFound(Entity::Refund))?;
    if r.state != RefundState::Requested {
        return Ok(nothing(Outcome::Done));
    }
    let correlation_id = correlation(ctx);
    Ok(done(match update {
        RefundUpdate::Issued { provider_ref } => Event::RefundIssued {
            order,
            refund,
            provider_ref,
            at: ctx.now,
            correlation_id,
        },
        RefundUpdate::Failed { reason } => Event::RefundFailed {
            order,
            refund,
            reason,
            at: ctx.now,
            correlation_id,
        },
    }))
}

/// Cancelling an unpaid order: its tickets return, and a payment under way is voided (or, for
/// an offline one, simply ends). An authorised payment being captured cannot be cancelled.
pub(crate) fn cancel(state: &SaleState, actor: &Actor, order: OrderId, ctx: &Ctx<'_>) -> Result<Decision, Rejection> {
    let o = find_order(state, order)?;
    if let Actor::Buyer(buyer) = actor
        && *buyer != o.buyer
    {
        // Same answer as for a missing order, so that order ids don't leak.
        return Err(Rejection::NotFound(Entity::Order));
    }
    match o.state {
        OrderState::AwaitingPayment => {}
        OrderState::PaymentPending if !o.is_capturing() => {}
        OrderState::PaymentPending => return Err(Rejection::Conflict(ConflictReason::PaymentInProgress)),
        _ => return Err(Rejection::Conflict(ConflictReason::OrderNotAwaitingPayment)),
    }
    let mut events = vec![Event::OrderCancelled { order, at: ctx.now }];
    events.extend(end_open_payment(o, ctx.now, correlation(ctx)));
    Ok(Decision {
        events,
        outcome: Outcome::Done,
    })
}

/// What happens to the payment under way of an order that stops holding its tickets
/// (cancelled or expired): a provider payment must be voided, an offline one just ends.
pub(crate) fn end_open_payment(o: &Order, now: Timestamp, correlation_id: Option<CorrelationId>) -> Option<Event> {
    let p = o.payment()?;
    match p.state {
        PaymentState::Requested | PaymentState::AwaitingBuyer => Some(Event::PaymentVoidRequired {
            order: o.id,
            attempt: p.attempt,
            at: now,
            correlation_id,
        }),
        PaymentState::AwaitingOffline => Some(Event::PaymentVoided {
            order: o.id,
            attempt: p.attempt,
            at: now,
            correlation_id,
        }),
        _ => None,
    }
}
