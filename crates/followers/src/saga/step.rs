//! The saga's decisions, pure: what provider call an order's payments need next (read from
//! the sale's state, the one source of truth), and what the provider's answer means as
//! commands for the engine. No I/O here; `saga/mod.rs` makes the calls and submits.

use taquilla_domain::{
    Command, Order, OrderId, PaymentMethod, PaymentRef, PaymentState, PaymentUpdate, Reason, RefundState, RefundUpdate,
    SaleId, SaleState, Timestamp,
};
use taquilla_payments::{IdempotencyKey, IntentId, IntentStatus, ProviderError, ProviderRequest, ProviderResponse};

/// What the saga must do next for an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Call the provider of `method`; `step` says how to read its answer.
    Call {
        method: PaymentMethod,
        request: ProviderRequest,
        step: Step,
    },
    /// The buyer has to confirm payment `attempt` with the provider; if nothing is heard by
    /// `since + reconcile_after`, ask the provider where it stands.
    AwaitBuyer {
        method: PaymentMethod,
        attempt: u32,
        intent: IntentId,
        since: Timestamp,
    },
}

/// The call in flight, to read its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Authorise { attempt: u32 },
    Capture { attempt: u32 },
    Void { attempt: u32 },
    Status { attempt: u32 },
    Refund { refund: u32 },
}

impl Step {
    /// For metrics and correlation ids.
    pub fn name(self) -> &'static str {
        match self {
            Step::Authorise { .. } => "authorise",
            Step::Capture { .. } => "capture",
            Step::Void { .. } => "void",
            Step::Status { .. } => "status",
            Step::Refund { .. } => "refund",
        }
    }
}

/// Our order as the provider knows it: its public id and this deployment's namespace,
/// `ord_<sale>_<order>@<namespace>` (see [`super::namespace`]). It is the payment's
/// `metadata[order_id]` at Stripe and the stem of every idempotency key, so that two
/// deployments sharing a provider account (staging and production, or a data directory
/// started afresh) never meet each other's payments or keys.
pub fn order_ref(namespace: &str, sale: SaleId, order: OrderId) -> String {
    format!("ord_{}_{}@{namespace}", sale.0, order.0)
}

/// The public order id and the namespace of an order reference, if it is one of ours.
pub fn parse_order_ref(order_ref: &str) -> Option<(&str, &str)> {
    order_ref
        .split_once('@')
        .filter(|(o, n)| !o.is_empty() && !n.is_empty())
}

/// Which key a step's call is sent under. Round 0 is the step's own key; a later round is a
/// fresh key for a call the provider never carried out but keeps answering from its key (Stripe
/// saves a `500` under the key for 24 h). Only calls that cannot take effect twice get rounds:
/// a capture or a void (a payment is captured or cancelled once at most), and a creation,
/// whose worst case is a second payment nobody confirms.
fn step_key(step: &str, round: u32) -> String {
    match round {
        0 => step.to_string(),
        r => format!("{step}-r{r}"),
    }
}

/// The next provider call the order's payments or refunds need, if any: attempts in order
/// (an old attempt may still need its void), then refunds. `round` picks the keys
/// ([`step_key`]).
pub fn next(namespace: &str, sale: SaleId, state: &SaleState, order: OrderId, round: u32) -> Option<Action> {
    let o = state.orders.get(&order)?;
    let currency = state.sale.as_ref()?.currency;
    let oref = order_ref(namespace, sale, order);
    for p in o.payments.iter().filter(|p| p.method.is_provider()) {
        let key = |step: &str| IdempotencyKey::new(&oref, p.attempt, &step_key(step, round));
        let intent = p.intent.as_ref().map(|i| IntentId(i.as_str().to_string()));
        let authorise = ProviderRequest::Authorise {
            key: key("authorise"),
            amount: p.amount,
            currency,
            order_ref: oref.clone(),
            description: format!("taquilla {}", oref.split('@').next().unwrap_or(&oref)),
        };
        let call = |request, step| Action::Call {
            method: p.method,
            request,
            step,
        };
        let attempt = p.attempt;
        match (p.state, intent) {
            (PaymentState::Requested, _) => return Some(call(authorise, Step::Authorise { attempt })),
            (PaymentState::Authorised, Some(intent)) => {
                let capture = ProviderRequest::Capture {
                    key: key("capture"),
                    intent,
                };
                return Some(call(capture, Step::Capture { attempt }));
            }
            (PaymentState::VoidRequired, Some(intent)) => {
                let void = ProviderRequest::Void {
                    key: key("void"),
                    intent,
                };
                return Some(call(void, Step::Void { attempt }));
            }
            // Voiding a payment whose creation we never heard of: creating it again under the
            // same key returns it (or creates it, harmlessly), then the void follows.
            (PaymentState::VoidRequired | PaymentState::Authorised, None) => {
                return Some(call(authorise, Step::Authorise { attempt }));
            }
            (PaymentState::AwaitingBuyer, Some(intent)) => {
                let since = p.steps.last().map_or(Timestamp(0), |s| s.at);
                return Some(Action::AwaitBuyer {
                    method: p.method,
                    attempt,
                    intent,
                    since,
                });
            }
            _ => {}
        }
    }
    next_refund(o, &oref)
}

fn next_refund(o: &Order, oref: &str) -> Option<Action> {
    let r = o.refunds.iter().find(|r| r.state == RefundState::Requested)?;
    let p = o.payments.iter().find(|p| Some(p.attempt) == r.attempt)?;
    let intent = p.intent.as_ref()?;
    Some(Action::Call {
        method: p.method,
        request: ProviderRequest::Refund {
            key: IdempotencyKey::new(oref, p.attempt, &format!("refund-{}", r.number)),
            intent: IntentId(intent.as_str().to_string()),
            amount: r.amount,
        },
        step: Step::Refund { refund: r.number },
    })
}

/// What an answer means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Tell the engine these, in order; then look at the order again.
    Report(Vec<Command>),
    /// Ask the provider for the payment's status before anything else.
    AskStatus,
    /// Nothing learned: try the same call again later.
    Retry,
    /// The call did not happen and its key keeps answering so: try again later under a
    /// fresh key ([`step_key`]).
    RetryFreshKey,
    /// The payment still awaits its buyer: ask again after the reconcile interval.
    StillAwaitingBuyer,
}

impl Verdict {
    /// For metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Verdict::Report(_) => "reported",
            Verdict::AskStatus => "ask_status",
            Verdict::Retry => "retry",
            Verdict::RetryFreshKey => "retry_fresh_key",
            Verdict::StillAwaitingBuyer => "awaiting_buyer",
        }
    }
}

/// Reads the provider's answer to `request` (the call of `step`) for `order`. An unknown
/// outcome of a creation or a refund is [`Verdict::Retry`] here; [`after_unknowns`] says when
/// repeating it stops being the answer.
pub fn verdict(
    order: OrderId,
    step: Step,
    request: &ProviderRequest,
    reply: Result<ProviderResponse, ProviderError>,
) -> Verdict {
    let record = |attempt, update| Command::RecordPayment { order, attempt, update };
    match (step, reply) {
        (_, Err(ProviderError::Transient { .. } | ProviderError::Unavailable { .. })) => Verdict::Retry,
        // A capture or void that may have happened, or that the provider refused: where the
        // payment stands decides ([`verdict_on_status`]), never a guess.
        (
            Step::Capture { .. } | Step::Void { .. },
            Err(ProviderError::Unknown { .. } | ProviderError::Refused { .. }),
        ) => Verdict::AskStatus,
        // Creating, refunding or reading again under the same key is safe.
        (_, Err(ProviderError::Unknown { .. })) => Verdict::Retry,
        (
            Step::Authorise { attempt },
            Ok(ProviderResponse::Payment {
                intent,
                client_secret,
                status,
            }),
        ) => {
            let Some(intent_ref) = payment_ref(&intent) else {
                return Verdict::Retry;
            };
            let created = PaymentUpdate::Created {
                intent: intent_ref.clone(),
                client_secret: client_secret.and_then(|s| taquilla_domain::ClientSecret::parse(&s).ok()),
            };
            let mut commands = vec![record(attempt, created)];
            commands.extend(status_update(&intent_ref, status).map(|u| record(attempt, u)));
            Verdict::Report(commands)
        }
        (
            Step::Capture { attempt } | Step::Void { attempt } | Step::Status { attempt },
            Ok(ProviderResponse::Status(status)),
        ) => {
            let Some(intent) = request_intent(request) else {
                return Verdict::Retry;
            };
            // A capture or void that left the payment authorised (or not yet confirmed) did not
            // take effect, and its key would answer the same again: later, under a fresh key.
            // A status question takes any answer.
            let settled = !matches!(status, IntentStatus::Authorised | IntentStatus::AwaitingBuyer);
            match status_update(&intent, status) {
                Some(update) if settled || matches!(step, Step::Status { .. }) => {
                    Verdict::Report(vec![record(attempt, update)])
                }
                None if matches!(step, Step::Status { .. }) => Verdict::StillAwaitingBuyer,
                _ => Verdict::RetryFreshKey,
            }
        }
        (Step::Refund { refund }, Ok(ProviderResponse::Refunded { refund: id })) => match PaymentRef::parse(&id.0) {
            Ok(provider_ref) => Verdict::Report(vec![Command::RecordRefund {
                order,
                refund,
                update: RefundUpdate::Issued { provider_ref },
            }]),
            Err(_) => Verdict::Retry,
        },
        (step, Err(e)) => refused(order, step, &e),
        // An answer of another shape than the call asks for: a provider bug; try again later.
        (_, Ok(other)) => {
            tracing::error!(?other, step = step.name(), "a provider answered with another shape");
            Verdict::Retry
        }
    }
}

/// Consecutive unknown outcomes of a creation after which it is sent under a fresh key.
pub const AUTHORISE_UNKNOWNS_MAX: u32 = 3;
/// How long a refund whose outcome stays unknown is retried under its key. Stripe keeps a key
/// 24 h: sent again after that, the same key could refund twice. Past this, the refund is
/// reported failed with a reason telling the organiser to look at the provider first.
pub const REFUND_UNKNOWN_GIVE_UP: std::time::Duration = std::time::Duration::from_secs(12 * 3600);

/// What `unknowns` consecutive unknown outcomes of `step` mean, when repeating the call is no
/// longer the answer: a creation goes to a fresh key (its key may be answering a saved `500`);
/// a refund requested `refund_age` ago gives up before its key could be forgotten.
pub fn after_unknowns(
    order: OrderId,
    step: Step,
    unknowns: u32,
    refund_age: Option<std::time::Duration>,
) -> Option<Verdict> {
    match step {
        Step::Authorise { .. } if unknowns >= AUTHORISE_UNKNOWNS_MAX => Some(Verdict::RetryFreshKey),
        Step::Refund { refund } if refund_age.is_some_and(|age| age >= REFUND_UNKNOWN_GIVE_UP) => {
            Some(Verdict::Report(vec![Command::RecordRefund {
                order,
                refund,
                update: RefundUpdate::Failed {
                    reason: reason_text(
                        "the provider's answer stayed unknown for 12 h: check the payment at the provider before refunding again",
                    ),
                },
            }]))
        }
        _ => None,
    }
}

/// After a capture or void whose outcome was unknown (`error` is `Unknown`) or that was
/// refused (`Refused`): what the payment's status (`status`, the answer to a `Status` call)
/// says happened.
pub fn verdict_on_status(
    order: OrderId,
    step: Step,
    intent: &PaymentRef,
    error: &ProviderError,
    status: Result<ProviderResponse, ProviderError>,
) -> Verdict {
    let attempt = match step {
        Step::Capture { attempt } | Step::Void { attempt } => attempt,
        _ => return Verdict::Retry,
    };
    let Ok(ProviderResponse::Status(status)) = status else {
        return Verdict::Retry;
    };
    let record = |update| Verdict::Report(vec![Command::RecordPayment { order, attempt, update }]);
    match (step, status) {
        // Still authorised: a refused capture failed for good (the saga then voids); an
        // unknown one, or a void, is made again under the same key.
        (Step::Capture { .. }, IntentStatus::Authorised) if matches!(error, ProviderError::Refused { .. }) => {
            record(PaymentUpdate::Failed {
                reason: reason_of(error),
            })
        }
        // It did not happen: again, under a fresh key (the old one may answer from a saved
        // `500` whatever we send).
        (_, IntentStatus::Authorised | IntentStatus::AwaitingBuyer) => Verdict::RetryFreshKey,
        (_, other) => status_update(intent, other).map_or(Verdict::Retry, record),
    }
}

/// The provider refused the call for good.
fn refused(order: OrderId, step: Step, e: &ProviderError) -> Verdict {
    match step {
        Step::Authorise { attempt } => Verdict::Report(vec![Command::RecordPayment {
            order,
            attempt,
            update: PaymentUpdate::Failed { reason: reason_of(e) },
        }]),
        Step::Capture { .. } | Step::Void { .. } => Verdict::AskStatus,
        // A refused question (a key rolled, a payment the provider does not know) says
        // nothing about the money: the saga never decides a payment ended without the
        // provider's word. It asks again later; the refusal is logged and counted.
        Step::Status { .. } => {
            tracing::error!(error = %e, "saga: the provider refused a status question");
            Verdict::Retry
        }
        Step::Refund { refund } => Verdict::Report(vec![Command::RecordRefund {
            order,
            refund,
            update: RefundUpdate::Failed { reason: reason_of(e) },
        }]),
    }
}

/// The report a payment status amounts to, after a create (`AwaitingBuyer` says nothing more).
fn status_update(intent: &PaymentRef, status: IntentStatus) -> Option<PaymentUpdate> {
    match status {
        IntentStatus::AwaitingBuyer => None,
        IntentStatus::Authorised => Some(PaymentUpdate::Authorised { intent: intent.clone() }),
        IntentStatus::Captured => Some(PaymentUpdate::Captured { intent: intent.clone() }),
        IntentStatus::Voided => Some(PaymentUpdate::Voided),
        IntentStatus::Declined { reason } => Some(PaymentUpdate::Declined {
            reason: reason_text(&reason),
        }),
    }
}

/// The payment a capture, void or status call names.
fn request_intent(request: &ProviderRequest) -> Option<PaymentRef> {
    match request {
        ProviderRequest::Capture { intent, .. }
        | ProviderRequest::Void { intent, .. }
        | ProviderRequest::Status { intent }
        | ProviderRequest::Refund { intent, .. } => payment_ref(intent),
        ProviderRequest::Authorise { .. } => None,
    }
}

fn payment_ref(intent: &IntentId) -> Option<PaymentRef> {
    PaymentRef::parse(&intent.0).ok()
}

/// A reason from a provider's message, cut to what a `Reason` holds.
fn reason_text(text: &str) -> Reason {
    let mut end = text.len().min(taquilla_domain::limits::REASON_MAX_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let clean: String = text[..end]
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    Reason::parse(&clean)
        .unwrap_or_else(|_| Reason::parse("").unwrap_or_else(|_| unreachable!("empty reasons are valid")))
}

fn reason_of(e: &ProviderError) -> Reason {
    reason_text(&e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORDER: OrderId = OrderId(3);
    const CAPTURE: Step = Step::Capture { attempt: 1 };
    const VOID: Step = Step::Void { attempt: 1 };

    fn intent() -> IntentId {
        IntentId("pi_1".into())
    }

    fn capture() -> ProviderRequest {
        ProviderRequest::Capture {
            key: IdempotencyKey::new("ord_1_3", 1, "capture"),
            intent: intent(),
        }
    }

    fn error(kind: &str) -> ProviderError {
        let (provider, message) = ("fake", String::from("injected"));
        match kind {
            "transient" => ProviderError::Transient { provider, message },
            "unknown" => ProviderError::Unknown { provider, message },
            "refused" => ProviderError::Refused { provider, message },
            _ => ProviderError::Unavailable { provider, message },
        }
    }

    fn reported(v: &Verdict) -> Vec<PaymentUpdate> {
        match v {
            Verdict::Report(commands) => commands
                .iter()
                .map(|c| match c {
                    Command::RecordPayment { update, .. } => update.clone(),
                    other => panic!("not a payment report: {other:?}"),
                })
                .collect(),
            other => panic!("not a report: {other:?}"),
        }
    }

    #[test]
    fn errors_retry_ask_or_fail_by_kind_and_step() {
        let authorise = Step::Authorise { attempt: 1 };
        let create = ProviderRequest::Status { intent: intent() };
        for kind in ["transient", "unavailable"] {
            assert_eq!(verdict(ORDER, CAPTURE, &capture(), Err(error(kind))), Verdict::Retry);
        }
        for kind in ["unknown", "refused"] {
            assert_eq!(
                verdict(ORDER, CAPTURE, &capture(), Err(error(kind))),
                Verdict::AskStatus
            );
            assert_eq!(verdict(ORDER, VOID, &capture(), Err(error(kind))), Verdict::AskStatus);
        }
        assert_eq!(
            verdict(ORDER, authorise, &create, Err(error("unknown"))),
            Verdict::Retry
        );
        let refused = verdict(ORDER, authorise, &create, Err(error("refused")));
        assert!(matches!(reported(&refused)[..], [PaymentUpdate::Failed { .. }]));
    }

    #[test]
    fn a_capture_answered_still_authorised_is_made_again_under_a_fresh_key() {
        let still = Ok(ProviderResponse::Status(IntentStatus::Authorised));
        assert_eq!(verdict(ORDER, CAPTURE, &capture(), still), Verdict::RetryFreshKey);
        let done = verdict(
            ORDER,
            CAPTURE,
            &capture(),
            Ok(ProviderResponse::Status(IntentStatus::Captured)),
        );
        assert!(matches!(reported(&done)[..], [PaymentUpdate::Captured { .. }]));
    }

    #[test]
    fn the_status_decides_after_an_unknown_or_refused_capture_or_void() {
        let pi = PaymentRef::parse("pi_1").unwrap();
        let status = |s: IntentStatus| Ok(ProviderResponse::Status(s));
        // It happened after all.
        let v = verdict_on_status(ORDER, CAPTURE, &pi, &error("unknown"), status(IntentStatus::Captured));
        assert!(matches!(reported(&v)[..], [PaymentUpdate::Captured { .. }]));
        let v = verdict_on_status(ORDER, VOID, &pi, &error("refused"), status(IntentStatus::Voided));
        assert_eq!(reported(&v), [PaymentUpdate::Voided]);
        // It did not: an unknown capture is made again; a refused one failed for good.
        let again = verdict_on_status(ORDER, CAPTURE, &pi, &error("unknown"), status(IntentStatus::Authorised));
        assert_eq!(again, Verdict::RetryFreshKey, "its key may be answering a saved 500");
        let failed = verdict_on_status(ORDER, CAPTURE, &pi, &error("refused"), status(IntentStatus::Authorised));
        assert!(matches!(reported(&failed)[..], [PaymentUpdate::Failed { .. }]));
        assert_eq!(
            verdict_on_status(ORDER, VOID, &pi, &error("refused"), status(IntentStatus::Authorised)),
            Verdict::RetryFreshKey
        );
        // No answer to the question: ask again later.
        assert_eq!(
            verdict_on_status(ORDER, CAPTURE, &pi, &error("unknown"), Err(error("transient"))),
            Verdict::Retry
        );
    }
    #[test]
    fn unknown_creations_move_to_a_fresh_key_and_unknown_refunds_give_up_in_time() {
        let authorise = Step::Authorise { attempt: 1 };
        assert_eq!(after_unknowns(ORDER, authorise, AUTHORISE_UNKNOWNS_MAX - 1, None), None);
        assert_eq!(
            after_unknowns(ORDER, authorise, AUTHORISE_UNKNOWNS_MAX, None),
            Some(Verdict::RetryFreshKey)
        );
        let refund = Step::Refund { refund: 2 };
        let young = REFUND_UNKNOWN_GIVE_UP - std::time::Duration::from_secs(1);
        assert_eq!(
            after_unknowns(ORDER, refund, 100, Some(young)),
            None,
            "the same key again"
        );
        match after_unknowns(ORDER, refund, 1, Some(REFUND_UNKNOWN_GIVE_UP)) {
            Some(Verdict::Report(c)) => assert!(
                matches!(
                    &c[..],
                    [Command::RecordRefund {
                        refund: 2,
                        update: RefundUpdate::Failed { .. },
                        ..
                    }]
                ),
                "{c:?}"
            ),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            after_unknowns(ORDER, CAPTURE, 100, None),
            None,
            "a capture asks the status instead"
        );
    }

    #[test]
    fn order_refs_carry_the_namespace_and_keys_their_round() {
        let oref = order_ref("0123456789abcdef", SaleId(4), OrderId(9));
        assert_eq!(oref, "ord_4_9@0123456789abcdef");
        assert_eq!(parse_order_ref(&oref), Some(("ord_4_9", "0123456789abcdef")));
        assert_eq!(parse_order_ref("ord_4_9"), None, "not ours: no namespace");
        assert_eq!(parse_order_ref("@x"), None);
        assert_eq!(
            (step_key("capture", 0), step_key("capture", 2)),
            ("capture".into(), "capture-r2".into())
        );
    }
}
