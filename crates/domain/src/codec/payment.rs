//! The encoding of the payment and refund events (tags 16–26), in the same body format as the
//! others (see the parent module). Every body starts with the order and the attempt (or
//! refund) number and ends with the time and the correlation id.

use super::{DecodeError, Reader, put_money, put_opt, put_str, put_time, put_u64, tag};
use crate::event::Event;
use crate::ids::OrderId;
use crate::payment::PaymentMethod;
use crate::values::{ClientSecret, CorrelationId, PaymentRef, Reason, Timestamp};

fn method_byte(m: PaymentMethod) -> u8 {
    match m {
        PaymentMethod::Test => 0,
        PaymentMethod::Simulated => 1,
        PaymentMethod::Stripe => 2,
        PaymentMethod::Offline => 3,
    }
}

fn put_step(out: &mut Vec<u8>, order: OrderId, n: u32) {
    put_u64(out, order.0);
    put_u64(out, n.into());
}

fn put_end(out: &mut Vec<u8>, at: Timestamp, correlation_id: &Option<CorrelationId>) {
    put_time(out, at);
    put_opt(out, correlation_id.as_ref(), |o, c| put_str(o, c.as_str()));
}

/// The body of a payment or refund event (the parent encodes every other event).
pub(super) fn encode_body(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::PaymentRequested {
            order,
            attempt,
            method,
            amount,
            expires_at,
            at,
            correlation_id,
        } => {
            put_step(out, *order, *attempt);
            out.push(method_byte(*method));
            put_money(out, *amount);
            put_time(out, *expires_at);
            put_end(out, *at, correlation_id);
        }
        Event::PaymentCreated {
            order,
            attempt,
            intent,
            client_secret,
            at,
            correlation_id,
        } => {
            put_step(out, *order, *attempt);
            put_str(out, intent.as_str());
            put_opt(out, client_secret.as_ref(), |o, s| put_str(o, s.as_str()));
            put_end(out, *at, correlation_id);
        }
        Event::PaymentAuthorised {
            order,
            attempt,
            intent,
            reinstated,
            at,
            correlation_id,
        } => {
            put_step(out, *order, *attempt);
            put_str(out, intent.as_str());
            out.push(u8::from(*reinstated));
            put_end(out, *at, correlation_id);
        }
        Event::PaymentCaptured {
            order,
            attempt,
            intent,
            at,
            correlation_id,
        } => {
            put_step(out, *order, *attempt);
            put_str(out, intent.as_str());
            put_end(out, *at, correlation_id);
        }
        Event::PaymentVoidRequired {
            order,
            attempt,
            at,
            correlation_id,
        }
        | Event::PaymentVoided {
            order,
            attempt,
            at,
            correlation_id,
        } => {
            put_step(out, *order, *attempt);
            put_end(out, *at, correlation_id);
        }
        Event::PaymentDeclined {
            order,
            attempt,
            reason,
            at,
            correlation_id,
        }
        | Event::PaymentFailed {
            order,
            attempt,
            reason,
            at,
            correlation_id,
        } => {
            put_step(out, *order, *attempt);
            put_str(out, reason.as_str());
            put_end(out, *at, correlation_id);
        }
        _ => encode_refund_body(event, out),
    }
}

fn encode_refund_body(event: &Event, out: &mut Vec<u8>) {
    match event {
        Event::RefundRequested {
            order,
            refund,
            attempt,
            amount,
            at,
        } => {
            put_step(out, *order, *refund);
            put_opt(out, *attempt, |o, a| put_u64(o, a.into()));
            put_money(out, *amount);
            put_time(out, *at);
        }
        Event::RefundIssued {
            order,
            refund,
            provider_ref,
            at,
            correlation_id,
        } => {
            put_step(out, *order, *refund);
            put_str(out, provider_ref.as_str());
            put_end(out, *at, correlation_id);
        }
        Event::RefundFailed {
            order,
            refund,
            reason,
            at,
            correlation_id,
        } => {
            put_step(out, *order, *refund);
            put_str(out, reason.as_str());
            put_end(out, *at, correlation_id);
        }
        other => unreachable!("the parent encodes {other:?}"),
    }
}

impl Reader<'_> {
    fn method(&mut self) -> Result<PaymentMethod, DecodeError> {
        Ok(match self.u8()? {
            0 => PaymentMethod::Test,
            1 => PaymentMethod::Simulated,
            2 => PaymentMethod::Stripe,
            3 => PaymentMethod::Offline,
            b => return Err(DecodeError::BadEnum(b.into())),
        })
    }

    fn correlation(&mut self) -> Result<Option<CorrelationId>, DecodeError> {
        self.opt(|r| Ok(CorrelationId::parse(r.str()?)?))
    }

    fn payment_ref(&mut self) -> Result<PaymentRef, DecodeError> {
        Ok(PaymentRef::parse(self.str()?)?)
    }

    fn reason(&mut self) -> Result<Reason, DecodeError> {
        Ok(Reason::parse(self.str()?)?)
    }
}

/// Decodes the body of a payment or refund event; any other tag is unknown.
pub(super) fn decode_body(tag: u8, _version: u8, r: &mut Reader) -> Result<Event, DecodeError> {
    let order = OrderId(r.u64()?);
    let n = r.u32()?;
    Ok(match tag {
        tag::PAYMENT_REQUESTED => Event::PaymentRequested {
            order,
            attempt: n,
            method: r.method()?,
            amount: r.money()?,
            expires_at: r.time()?,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        tag::PAYMENT_CREATED => Event::PaymentCreated {
            order,
            attempt: n,
            intent: r.payment_ref()?,
            client_secret: r.opt(|r| Ok(ClientSecret::parse(r.str()?)?))?,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        tag::PAYMENT_AUTHORISED => Event::PaymentAuthorised {
            order,
            attempt: n,
            intent: r.payment_ref()?,
            reinstated: r.flag()?,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        tag::PAYMENT_CAPTURED => Event::PaymentCaptured {
            order,
            attempt: n,
            intent: r.payment_ref()?,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        tag::PAYMENT_VOID_REQUIRED => Event::PaymentVoidRequired {
            order,
            attempt: n,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        tag::PAYMENT_VOIDED => Event::PaymentVoided {
            order,
            attempt: n,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        tag::PAYMENT_DECLINED => Event::PaymentDeclined {
            order,
            attempt: n,
            reason: r.reason()?,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        tag::PAYMENT_FAILED => Event::PaymentFailed {
            order,
            attempt: n,
            reason: r.reason()?,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        _ => decode_refund_body(tag, order, n, r)?,
    })
}

fn decode_refund_body(tag: u8, order: OrderId, refund: u32, r: &mut Reader) -> Result<Event, DecodeError> {
    Ok(match tag {
        tag::REFUND_REQUESTED => Event::RefundRequested {
            order,
            refund,
            attempt: r.opt(Reader::u32)?,
            amount: r.money()?,
            at: r.time()?,
        },
        tag::REFUND_ISSUED => Event::RefundIssued {
            order,
            refund,
            provider_ref: r.payment_ref()?,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        tag::REFUND_FAILED => Event::RefundFailed {
            order,
            refund,
            reason: r.reason()?,
            at: r.time()?,
            correlation_id: r.correlation()?,
        },
        _ => return Err(DecodeError::UnknownTag(tag)),
    })
}
