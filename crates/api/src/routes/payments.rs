//! What the payment routes share: waiting (bounded) for the saga to move a payment on, and
//! finding the attempt a provider's report is about.

use std::time::Duration;

use taquilla_domain::{OrderId, OrderState, PaymentMethod, PaymentState, SaleId};
use tokio::time::Instant;

use taquilla_payments::resilience::BreakerState;

use crate::AppState;
use crate::error::{ApiError, Code};
use crate::limits::PAY_RECHECK;

/// Waits up to `wait` for attempt `attempt` of the order to get somewhere the buyer can act on:
/// the order paid, the attempt over, or (Stripe) the payment created at the provider. Returns
/// whether the order is paid. The saga does the work; this only reads the sale's state, when
/// the saga reports about the order (it wakes this wait) and every `PAY_RECHECK` for what
/// moves the order without the saga (its deadline, the buyer cancelling meanwhile).
pub(crate) async fn await_payment(
    state: &AppState,
    sale: SaleId,
    order: OrderId,
    attempt: u32,
    method: PaymentMethod,
    wait: Duration,
) -> Result<bool, ApiError> {
    let deadline = Instant::now() + wait;
    let engine = state.engine()?;
    let watching = state.order_watch.watch(sale, order);
    loop {
        let mut reported = std::pin::pin!(watching.notified());
        reported.as_mut().enable();
        let (paid, settled) = engine
            .read(sale, |s| {
                let o = s.orders.get(&order)?;
                let p = o.payments.get(attempt.checked_sub(1)? as usize)?;
                let paid = o.state == OrderState::Paid;
                let created = method == PaymentMethod::Stripe && p.state != PaymentState::Requested;
                Some((paid, paid || p.state.is_final() || created || !p.method.is_provider()))
            })
            .flatten()
            .ok_or_else(|| ApiError::not_found("order"))?;
        let now = Instant::now();
        if settled || now >= deadline {
            return Ok(paid);
        }
        let _ = tokio::time::timeout(PAY_RECHECK.min(deadline - now), reported).await;
    }
}

/// Whether this server takes payments by `method` now: a provider it is configured with, whose
/// circuit is not open (`503 payment_unavailable` then, with the breaker's `Retry-After`; holds
/// keep working). `offline` is each sale's own setting, judged by the domain.
pub(crate) fn check_method(state: &AppState, method: PaymentMethod) -> Result<(), ApiError> {
    if !method.is_provider() {
        return Ok(());
    }
    let Some(breaker) = state.providers.breaker(method) else {
        return Err(ApiError::new(
            Code::PaymentMethodDisabled,
            format!("this server does not take {} payments", method.as_str()),
        ));
    };
    if breaker.state() == BreakerState::Open {
        let retry_after = breaker.retry_after().map_or(1, |d| d.as_secs().max(1));
        return Err(ApiError::new(
            Code::PaymentUnavailable,
            format!(
                "{} payments are failing; try again later (holds still work)",
                method.as_str()
            ),
        )
        .retry_after(retry_after));
    }
    Ok(())
}
