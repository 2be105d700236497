//! The answers hyper gives by itself, in our JSON error shape. A request hyper cannot parse
//! (a malformed request line or header, headers over its buffer, a URI over 64 KiB) never
//! reaches the router: hyper writes a bare `400`, `431` or `414` with no body and closes the
//! connection. hyper has no hook for that answer, so [`JsonErrorsListener`] wraps each
//! connection's socket and, when hyper writes such a head, writes our JSON error (with a fresh
//! correlation id) in its place.
//!
//! Recognising it is exact: hyper's own answer is a `4xx` head that is a whole write by itself,
//! with `content-length: 0` and without `x-correlation-id`, which every answer through
//! [`crate::request_layer`] carries. Every other write passes through untouched (a `4xx` head
//! costs one scan of its bytes).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::http::StatusCode;
use axum::serve::Listener;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::correlation::{self, CorrelationId};
use crate::error::{Code, ErrorBody, ErrorDetail};

/// A listener whose connections answer hyper's parse errors in JSON.
pub struct JsonErrorsListener<L>(pub L);

impl<L: Listener> Listener for JsonErrorsListener<L> {
    type Io = JsonErrors<L::Io>;
    type Addr = L::Addr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        let (io, addr) = self.0.accept().await;
        (
            JsonErrors {
                inner: io,
                replacing: None,
            },
            addr,
        )
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

pin_project! {
    /// A connection's socket; see the module documentation.
    pub struct JsonErrors<T> {
        #[pin]
        inner: T,
        replacing: Option<Replacement>,
    }
}

impl<T> JsonErrors<T> {
    /// The socket it wraps.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
}

/// Our answer, being written in place of hyper's.
struct Replacement {
    bytes: Vec<u8>,
    written: usize,
    /// How many of hyper's bytes it stands for (reported written once it is).
    stands_for: usize,
}

/// Our JSON answer for `head`, if `head` is one of hyper's own error answers.
fn replacement_for(head: &[u8]) -> Option<Vec<u8>> {
    let status = head
        .strip_prefix(b"HTTP/1.1 4")
        .or_else(|| head.strip_prefix(b"HTTP/1.0 4"))?;
    if !head.ends_with(b"\r\n\r\n") {
        return None;
    }
    let text = std::str::from_utf8(head).ok()?.to_ascii_lowercase();
    let header = |name: &str| text.contains(&format!("\r\n{name}"));
    if !header("content-length: 0\r\n") || header(&format!("{}:", correlation::HEADER)) {
        return None;
    }
    let digits = std::str::from_utf8(status.get(..2)?).ok()?;
    let status = StatusCode::from_u16(400 + digits.parse::<u16>().ok()?).ok()?;
    let (code, message) = match status {
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (Code::HeadersTooLarge, "the request's headers are too large"),
        StatusCode::URI_TOO_LONG => (Code::UriTooLong, "the request's URI is too long"),
        _ => (Code::MalformedRequest, "the request is not well-formed HTTP"),
    };
    if code.status() != status {
        return None;
    }
    let id = CorrelationId::generate();
    let body = serde_json::to_vec(&ErrorBody {
        error: ErrorDetail {
            code,
            message: message.into(),
            correlation_id: id.as_str().to_string(),
            details: None,
        },
    })
    .ok()?;
    let date = std::str::from_utf8(head)
        .ok()?
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with("date:"))
        .map(|l| format!("{l}\r\n"))
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{}: {}\r\nconnection: close\r\n{date}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
        correlation::HEADER,
        id.as_str(),
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

impl<T: AsyncWrite> JsonErrors<T> {
    /// Writes the replacement under way; done, reports hyper's bytes written.
    fn poll_replacement(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        let mut this = self.project();
        loop {
            let Some(r) = this.replacing.as_mut() else {
                return Poll::Ready(Ok(0));
            };
            if r.written == r.bytes.len() {
                let n = r.stands_for;
                *this.replacing = None;
                return Poll::Ready(Ok(n));
            }
            let n = ready!(this.inner.as_mut().poll_write(cx, &r.bytes[r.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            r.written += n;
        }
    }
}

impl<T: AsyncRead> AsyncRead for JsonErrors<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_read(cx, buf)
    }
}

impl<T: AsyncWrite> AsyncWrite for JsonErrors<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            match replacement_for(buf) {
                Some(bytes) => {
                    *self.as_mut().project().replacing = Some(Replacement {
                        bytes,
                        written: 0,
                        stands_for: buf.len(),
                    })
                }
                None => return self.project().inner.poll_write(cx, buf),
            }
        }
        self.poll_replacement(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.replacing.is_none() {
            let mut filled = bufs.iter().filter(|b| !b.is_empty());
            let only = match (filled.next(), filled.next()) {
                (Some(one), None) => replacement_for(one).map(|bytes| (bytes, one.len())),
                _ => None,
            };
            match only {
                Some((bytes, stands_for)) => {
                    *self.as_mut().project().replacing = Some(Replacement {
                        bytes,
                        written: 0,
                        stands_for,
                    })
                }
                None => return self.project().inner.poll_write_vectored(cx, bufs),
            }
        }
        self.poll_replacement(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hyper_s_own_error_heads_are_replaced() {
        let hyper_400 = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: Sun, 29 Nov 2026 12:00:00 GMT\r\n\r\n";
        let out = String::from_utf8(replacement_for(hyper_400).expect("replaced")).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{head}");
        assert!(head.contains("\r\ndate: Sun, 29 Nov 2026 12:00:00 GMT"), "{head}");
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{head}"
        );
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "malformed_request");
        let id = v["error"]["correlation_id"].as_str().unwrap();
        assert!(head.contains(&format!("\r\nx-correlation-id: {id}\r\n")), "{head}");

        for (head, code) in [
            (
                &b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\n\r\n"[..],
                "headers_too_large",
            ),
            (
                b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\n\r\n",
                "uri_too_long",
            ),
        ] {
            let out = String::from_utf8(replacement_for(head).expect("replaced")).unwrap();
            assert!(
                out.starts_with(&String::from_utf8_lossy(&head[..12]).to_string()),
                "{out}"
            );
            assert!(out.contains(&format!("\"code\":\"{code}\"")), "{out}");
        }
        // Ours (with a correlation id), success heads, heads with a body, parts of a write.
        for other in [
            &b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nx-correlation-id: a\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\ncontent-length: 0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 2\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n{}",
            b"{\"error\":{}}",
        ] {
            assert!(replacement_for(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
    }

    #[tokio::test]
    async fn a_replacement_is_written_whole_through_short_writes() {
        // A socket that takes at most 7 bytes a write.
        struct Trickle(Vec<u8>);
        impl AsyncWrite for Trickle {
            fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
                let n = buf.len().min(7);
                self.0.extend_from_slice(&buf[..n]);
                Poll::Ready(Ok(n))
            }
            fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
            fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
                Poll::Ready(Ok(()))
            }
        }
        use tokio::io::AsyncWriteExt;
        let mut io = JsonErrors {
            inner: Trickle(Vec::new()),
            replacing: None,
        };
        let head = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n";
        let n = io.write(head).await.unwrap();
        assert_eq!(n, head.len(), "hyper's bytes all reported written");
        let out = String::from_utf8(io.inner.0.clone()).unwrap();
        assert!(out.ends_with("}}"), "{out}");
        io.write_all(b"next").await.unwrap();
        assert!(String::from_utf8(io.inner.0).unwrap().ends_with("}}next"));
    }
}
