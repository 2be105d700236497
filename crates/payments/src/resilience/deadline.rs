//! A per-attempt deadline. A call still unanswered at the deadline is abandoned: for a call
//! that moves money the request may have arrived and taken effect, so the answer is
//! `Unknown` (retry with the same key, or ask for the status); for `Status`, a read, it is
//! `Transient`.

use std::task::{Context, Poll};
use std::time::Duration;

use tower::{Layer, Service};

use crate::ReplyFuture;
use crate::provider::{PaymentService, ProviderError, ProviderRequest, ProviderResponse};

#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    provider: &'static str,
    deadline: Duration,
}

impl DeadlineLayer {
    pub fn new(provider: &'static str, deadline: Duration) -> DeadlineLayer {
        DeadlineLayer { provider, deadline }
    }
}

impl Layer<PaymentService> for DeadlineLayer {
    type Service = Deadline;

    fn layer(&self, inner: PaymentService) -> Deadline {
        Deadline {
            inner,
            provider: self.provider,
            deadline: self.deadline,
        }
    }
}

#[derive(Clone)]
pub struct Deadline {
    inner: PaymentService,
    provider: &'static str,
    deadline: Duration,
}

impl Service<ProviderRequest> for Deadline {
    type Response = ProviderResponse;
    type Error = ProviderError;
    type Future = ReplyFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ProviderError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: ProviderRequest) -> ReplyFuture {
        let moves_money = request.moves_money();
        let operation = request.operation();
        let (provider, deadline) = (self.provider, self.deadline);
        let answer = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(deadline, answer).await {
                Ok(result) => result,
                Err(_) => {
                    let message = format!("{operation} unanswered after {} ms", deadline.as_millis());
                    Err(if moves_money {
                        ProviderError::Unknown { provider, message }
                    } else {
                        ProviderError::Transient { provider, message }
                    })
                }
            }
        })
    }
}
