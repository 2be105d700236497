//! JSON responses, serialized into one buffer sized for a whole view.
//!
//! `axum::Json` starts from 128 bytes and doubles as it writes, so a hold or an order view
//! (0.5–1 KiB) paid three reallocations and copies on every command's answer. Views that
//! borrow a sale's state are encoded with [`encode`] while the read lock is held, and sent as
//! a [`JsonBody`]; owned views go through [`Json`].

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, Code};

/// Room for the largest common view (an order with its tickets) without growing.
const VIEW_BYTES: usize = 1024;

/// A view already encoded as JSON.
#[derive(Debug)]
pub struct JsonBody(Vec<u8>);

/// Encodes a view. Fails only for a value with no JSON form (a bug), as `500 internal`.
pub fn encode<T: Serialize + ?Sized>(view: &T) -> Result<JsonBody, ApiError> {
    let mut buf = Vec::with_capacity(VIEW_BYTES);
    match serde_json::to_writer(&mut buf, view) {
        Ok(()) => Ok(JsonBody(buf)),
        Err(e) => {
            tracing::error!(error = %e, "encoding a response failed");
            Err(ApiError::new(Code::Internal, "encoding the response failed"))
        }
    }
}

impl JsonBody {
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl IntoResponse for JsonBody {
    fn into_response(self) -> Response {
        let mut res = Response::new(Body::from(self.0));
        res.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        res
    }
}

/// An owned view, encoded when the response is made (`Content-Type: application/json`).
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match encode(&self.0) {
            Ok(body) => body.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;

    #[tokio::test]
    async fn a_view_is_its_json_with_the_content_type() {
        let res = Json(serde_json::json!({"id": "hld_1_2", "n": [1, 2]})).into_response();
        assert_eq!(res.status(), axum::http::StatusCode::OK);
        assert_eq!(res.headers()[header::CONTENT_TYPE], "application/json");
        let body = res.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], br#"{"id":"hld_1_2","n":[1,2]}"#);
    }

    #[tokio::test]
    async fn a_view_that_cannot_be_encoded_is_a_json_500() {
        // A map with non-string keys has no JSON form.
        let bad: std::collections::BTreeMap<(u8, u8), u8> = [((1, 2), 3)].into();
        let res = Json(bad).into_response();
        assert_eq!(res.status(), axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            encode(
                &[((1u8, 2u8), 3u8)]
                    .into_iter()
                    .collect::<std::collections::BTreeMap<_, _>>()
            )
            .is_err()
        );
    }
}
