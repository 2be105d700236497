//! The in-memory payment book shared by the `test` and `simulated` providers: per-intent state
//! (the PaymentIntent life cycle with manual capture) and per-key idempotency (a repeated key
//! gets the first call's answer; the same key with other parameters is refused, as Stripe's
//! `idempotency_error`).
//!
//! It lives in memory only. That is acceptable for these two providers because nothing
//! outside the process holds money against them, and because the saga derives every key from
//! (order, attempt, step) and re-sends the same keys after a restart. Two rules make a fresh
//! ledger answer those re-sent keys as the old one would have:
//! - ids are derived from the key that made them (`<provider>_pi_<hash of the key>`, the same
//!   for refunds), so a re-sent `Authorise` names the same payment as before the restart, and
//!   ids never repeat across restarts for different payments;
//! - a payment id of this provider's form that the ledger does not know (it was made before a
//!   restart) is **adopted** as `Authorised`, with an unknown amount (refunds of it are not
//!   bounded): the saga's log, not this ledger, knows whether it was captured or voided, and
//!   the saga re-sends what it still has to do. Ids of another form are refused as unknown.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::limits::{LEDGER_INTENTS_MAX, LEDGER_KEYS_MAX};
use crate::provider::{
    IdempotencyKey, IntentId, IntentStatus, ProviderError, ProviderRequest, ProviderResponse, RefundId,
};
use crate::rng::stable_hash;

pub(crate) type Reply = Result<ProviderResponse, ProviderError>;

/// The decline reason the in-memory providers give.
pub const DECLINE_REASON: &str = "card_declined";

#[derive(Debug)]
pub(crate) struct Ledger {
    provider: &'static str,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    intents: HashMap<String, Intent>,
    /// Each key's request (to detect reuse with other parameters) and its answer.
    replies: HashMap<IdempotencyKey, (ProviderRequest, Reply)>,
    /// Orders whose payments the buyer's bank refuses (a test control).
    declined_orders: HashSet<String>,
    /// Creation order, for `payments_of`.
    created: u64,
}

#[derive(Debug)]
struct Intent {
    created: u64,
    /// `None` for a payment adopted after a restart.
    amount_minor: Option<i64>,
    order_ref: String,
    status: IntentStatus,
    refunded_minor: i64,
}

/// How an `Authorise` that is not a repeat ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorisation {
    Approved,
    Declined,
}

impl Ledger {
    pub fn new(provider: &'static str) -> Ledger {
        Ledger {
            provider,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock is a bug in this file; the state is still consistent
        // (every change is made after every check).
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn refused(&self, message: impl Into<String>) -> ProviderError {
        ProviderError::Refused {
            provider: self.provider,
            message: message.into(),
        }
    }

    /// Whether an `Authorise` for `order_ref` is declined by the test control.
    pub fn order_declined(&self, order_ref: &str) -> bool {
        self.state().declined_orders.contains(order_ref)
    }

    /// Answers `request`. For a new `Authorise`, `authorisation` says how it ends (the
    /// caller decides: always approved, a seeded decline, or the test control).
    pub fn apply(&self, request: &ProviderRequest, authorisation: Authorisation) -> Reply {
        let mut state = self.state();
        let Some(key) = request.key() else {
            let ProviderRequest::Status { intent } = request else {
                unreachable!("only Status has no key")
            };
            return self
                .intent(&mut state, intent)
                .map(|i| ProviderResponse::Status(i.status.clone()));
        };
        if let Some((first, reply)) = state.replies.get(key) {
            if first != request {
                return Err(self.refused(format!("idempotency key {key} was used with other parameters")));
            }
            return reply.clone();
        }
        if state.replies.len() >= LEDGER_KEYS_MAX {
            return Err(self.refused(format!("the ledger holds {LEDGER_KEYS_MAX} keys at most")));
        }
        let reply = self.first_call(&mut state, request, authorisation);
        state.replies.insert(key.clone(), (request.clone(), reply.clone()));
        reply
    }

    fn first_call(&self, state: &mut State, request: &ProviderRequest, authorisation: Authorisation) -> Reply {
        match request {
            ProviderRequest::Authorise { amount, order_ref, .. } => {
                if state.intents.len() >= LEDGER_INTENTS_MAX {
                    return Err(self.refused(format!("the ledger holds {LEDGER_INTENTS_MAX} payments at most")));
                }
                state.created += 1;
                let id = self.derived_id("pi", request);
                let status = match authorisation {
                    Authorisation::Approved => IntentStatus::Authorised,
                    Authorisation::Declined => IntentStatus::Declined {
                        reason: DECLINE_REASON.into(),
                    },
                };
                state.intents.insert(
                    id.clone(),
                    Intent {
                        created: state.created,
                        amount_minor: Some(amount.get()),
                        order_ref: order_ref.clone(),
                        status: status.clone(),
                        refunded_minor: 0,
                    },
                );
                Ok(ProviderResponse::Payment {
                    client_secret: None,
                    intent: IntentId(id),
                    status,
                })
            }
            ProviderRequest::Capture { intent, .. } => {
                let i = self.intent(state, intent)?;
                if i.status != IntentStatus::Authorised {
                    return Err(self.refused(format!("cannot capture a payment that is {:?}", i.status)));
                }
                i.status = IntentStatus::Captured;
                Ok(ProviderResponse::Status(IntentStatus::Captured))
            }
            ProviderRequest::Void { intent, .. } => {
                let i = self.intent(state, intent)?;
                if matches!(i.status, IntentStatus::Captured | IntentStatus::Voided) {
                    return Err(self.refused(format!("cannot void a payment that is {:?}", i.status)));
                }
                i.status = IntentStatus::Voided;
                Ok(ProviderResponse::Status(IntentStatus::Voided))
            }
            ProviderRequest::Refund { intent, amount, .. } => {
                let i = self.intent(state, intent)?;
                if i.status != IntentStatus::Captured {
                    return Err(self.refused(format!("cannot refund a payment that is {:?}", i.status)));
                }
                let left = i.amount_minor.unwrap_or(i64::MAX) - i.refunded_minor;
                if amount.get() == 0 || amount.get() > left {
                    return Err(self.refused(format!("refund of {} asked, {left} left to refund", amount.get())));
                }
                i.refunded_minor += amount.get();
                Ok(ProviderResponse::Refunded {
                    refund: RefundId(self.derived_id("re", request)),
                })
            }
            ProviderRequest::Status { .. } => unreachable!("Status is answered without a key"),
        }
    }

    /// `<provider>_<kind>_<16 hex digits of the key's hash>`.
    fn derived_id(&self, kind: &str, request: &ProviderRequest) -> String {
        let key = request.key().map(IdempotencyKey::as_str).unwrap_or_default();
        format!("{}_{kind}_{:016x}", self.provider, stable_hash(0, &[key.as_bytes()]))
    }

    /// Whether `id` has the form of this provider's payment ids.
    fn is_own_id(&self, id: &str) -> bool {
        id.strip_prefix(self.provider)
            .and_then(|rest| rest.strip_prefix("_pi_"))
            .is_some_and(|hash| hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
    }

    /// The payment `intent`, adopted as `Authorised` if it is ours from before a restart.
    fn intent<'s>(&self, state: &'s mut State, intent: &IntentId) -> Result<&'s mut Intent, ProviderError> {
        if !state.intents.contains_key(&intent.0) {
            if !self.is_own_id(&intent.0) || state.intents.len() >= LEDGER_INTENTS_MAX {
                return Err(self.refused(format!("no such payment: {}", intent.0)));
            }
            state.created += 1;
            let adopted = Intent {
                created: state.created,
                amount_minor: None,
                order_ref: String::new(),
                status: IntentStatus::Authorised,
                refunded_minor: 0,
            };
            state.intents.insert(intent.0.clone(), adopted);
        }
        Ok(state.intents.get_mut(&intent.0).expect("inserted above"))
    }

    /// Test control: the buyer completed the payment (another card after a decline). Only
    /// a payment awaiting the buyer or declined can be confirmed.
    pub fn confirm(&self, intent: &IntentId) -> Result<(), String> {
        let mut state = self.state();
        let i = state
            .intents
            .get_mut(&intent.0)
            .ok_or_else(|| format!("no such payment: {}", intent.0))?;
        match i.status {
            IntentStatus::AwaitingBuyer | IntentStatus::Declined { .. } => {
                i.status = IntentStatus::Authorised;
                Ok(())
            }
            IntentStatus::Authorised => Ok(()),
            ref other => Err(format!("cannot confirm a payment that is {other:?}")),
        }
    }

    /// Test control: payments for `order_ref` are declined from now on (until
    /// [`Ledger::approve_order`]).
    pub fn decline_order(&self, order_ref: &str) {
        self.state().declined_orders.insert(order_ref.to_string());
    }

    pub fn approve_order(&self, order_ref: &str) {
        self.state().declined_orders.remove(order_ref);
    }

    /// The payments made for `order_ref` and their status, oldest first (for tests' audits:
    /// how many payments of an order were captured).
    pub fn payments_of(&self, order_ref: &str) -> Vec<(IntentId, IntentStatus)> {
        let state = self.state();
        let mut out: Vec<(u64, IntentId, IntentStatus)> = state
            .intents
            .iter()
            .filter(|(_, i)| i.order_ref == order_ref)
            .map(|(id, i)| (i.created, IntentId(id.clone()), i.status.clone()))
            .collect();
        out.sort_by_key(|(n, ..)| *n);
        out.into_iter().map(|(_, id, s)| (id, s)).collect()
    }
}
