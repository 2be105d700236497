//! Honest keep-alive. When a handler answers without reading the whole request body (a body
//! sent to a route that takes none, or one over the size limit), hyper cannot reuse the
//! connection and closes it after the response, without saying so: a client that pools
//! connections then sends its next request into a closing socket and sees it fail. [`Tracked`]
//! notes whether the body was read to its end and, if not, [`crate::request_layer`] adds
//! `Connection: close`, so that the client opens a fresh connection instead.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes, HttpBody};
use http_body::{Frame, SizeHint};

/// A request body that records reaching its end.
pub(crate) struct Tracked {
    inner: Body,
    read: Arc<AtomicBool>,
}

impl Tracked {
    pub(crate) fn new(inner: Body, read: Arc<AtomicBool>) -> Tracked {
        Tracked { inner, read }
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) || self.inner.is_end_stream() {
            self.read.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
