//! Extractors whose failures are our JSON errors, never axum's plain-text rejections: malformed
//! JSON is `400 malformed_request`, a wrong type or value `422 invalid`, a body over the limit
//! `413 payload_too_large`, a missing `Content-Type: application/json` `415`.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, MissingJsonContentType, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use serde::de::DeserializeOwned;
use taquilla_domain::IdempotencyKey;

use crate::error::{ApiError, Code};

pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    /// What `axum::Json` accepts and refuses, with the same messages, at less cost on the
    /// common path: `Content-Type: application/json` is compared as bytes before any MIME
    /// parsing, and a body that deserializes is parsed once by `serde_json` alone. Only a
    /// body that fails is parsed again by `axum::Json`, for its message with the failing
    /// field's path (which costs a `serde_path_to_error` wrapper on every value).
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !json_content_type(req.headers()) {
            return Err(json_rejection(MissingJsonContentType::default().into()));
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| json_rejection(e.into()))?;
        if let Ok(v) = serde_json::from_slice(&bytes) {
            return Ok(ApiJson(v));
        }
        if let Some(v) = with_integral_floats_as_integers(&bytes) {
            return Ok(ApiJson(v));
        }
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// JSON has one kind of number, and JSON Schema's `integer` is any number without a fraction
/// (`2.0`, `1e2`), so such a number is taken wherever the document says `integer`. serde
/// refuses a float for an integer field, so a body that failed is read again with integral
/// floats rewritten as integers (only on that failure path: the common path pays nothing).
fn with_integral_floats_as_integers<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    fn rewrite(v: &mut serde_json::Value) -> bool {
        match v {
            serde_json::Value::Number(n) if n.is_f64() => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                // Within ±2^53, an f64 without a fraction is exactly that integer.
                let exact = f.fract() == 0.0 && f.abs() <= (1u64 << 53) as f64;
                if exact {
                    *v = serde_json::Value::from(f as i64);
                }
                exact
            }
            serde_json::Value::Array(a) => a.iter_mut().fold(false, |any, x| rewrite(x) | any),
            serde_json::Value::Object(o) => o.values_mut().fold(false, |any, x| rewrite(x) | any),
            _ => false,
        }
    }
    let mut value: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    if !rewrite(&mut value) {
        return None;
    }
    serde_json::from_value(value).ok()
}

/// `application/json`, `application/<anything>+json`, with or without parameters, as
/// `axum::Json` decides it; the plain form without parameters is recognised without parsing.
fn json_content_type(headers: &HeaderMap) -> bool {
    let Some(v) = headers.get(header::CONTENT_TYPE) else {
        return false;
    };
    if v.as_bytes().eq_ignore_ascii_case(b"application/json") {
        return true;
    }
    let Ok(mime) = v.to_str().unwrap_or_default().parse::<mime::Mime>() else {
        return false;
    };
    mime.type_() == "application" && (mime.subtype() == "json" || mime.suffix().is_some_and(|s| s == "json"))
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::JsonDataError(e) => ApiError::invalid(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::new(Code::MalformedRequest, e.body_text()),
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::new(Code::UnsupportedMediaType, "expected Content-Type: application/json")
        }
        JsonRejection::BytesRejection(e) => {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(Code::PayloadTooLarge, "request body too large")
            } else {
                ApiError::new(Code::MalformedRequest, e.body_text())
            }
        }
        other => ApiError::new(Code::MalformedRequest, other.body_text()),
    }
}

pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::invalid(e.body_text())),
            Err(other) => Err(ApiError::new(Code::MalformedRequest, other.body_text())),
        }
    }
}

/// One path parameter as text. A parameter that is not valid UTF-8 cannot name anything
/// that exists, so it is a 404 like any other unknown id.
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<String>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(_) => Err(ApiError::not_found("resource")),
        }
    }
}

/// Two path parameters as text (a sale and a thing inside it), `404` when either is not UTF-8.
pub struct ApiPath2(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath2 {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<(String, String)>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path((a, b))) => Ok(ApiPath2(a, b)),
            Err(_) => Err(ApiError::not_found("resource")),
        }
    }
}

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

/// The `Idempotency-Key` header, read without copying the header map. Its error is kept for
/// the handler to raise where it checks the key, after the path and body.
pub struct Idempotency(pub Result<Option<IdempotencyKey>, ApiError>);

impl<S: Send + Sync> FromRequestParts<S> for Idempotency {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Idempotency(idempotency_key(&parts.headers)))
    }
}

/// `Prefer: wait=<seconds>` (RFC 7240): how long the client lets a request wait for an outcome
/// that comes later (a payment). Malformed or absent: no preference. Capped at
/// [`crate::limits::PREFER_WAIT_MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PreferWait(pub Option<std::time::Duration>);

impl PreferWait {
    /// The client's wait, else [`crate::limits::PAY_WAIT_DEFAULT`].
    pub fn or_default(self) -> std::time::Duration {
        self.0.unwrap_or(crate::limits::PAY_WAIT_DEFAULT)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PreferWait {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let secs = parts
            .headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|p| p.trim().strip_prefix("wait="))
            .find_map(|s| s.trim().parse::<u64>().ok());
        let wait = secs.map(|s| std::time::Duration::from_secs(s).min(crate::limits::PREFER_WAIT_MAX));
        Ok(PreferWait(wait))
    }
}

/// The optional `Idempotency-Key` header: 1–64 printable characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(v) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| ApiError::invalid("Idempotency-Key must be printable ASCII"))?;
    IdempotencyKey::parse(s)
        .map(Some)
        .map_err(|e| ApiError::invalid(format!("Idempotency-Key: {}", e.reason)))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Line {
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        quantity: u32,
    }

    async fn extract(content_type: Option<&str>, body: &'static str) -> Result<Line, (Code, String)> {
        let mut req = Request::new(Body::from(body));
        if let Some(ct) = content_type {
            req.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        ApiJson::<Line>::from_request(req, &())
            .await
            .map(|ApiJson(v)| v)
            .map_err(|e| (e.code, e.message))
    }

    /// What `axum::Json` answers for the same request, as our error.
    async fn axum_says(content_type: Option<&str>, body: &'static str) -> Result<Line, (Code, String)> {
        let mut req = Request::new(Body::from(body));
        if let Some(ct) = content_type {
            req.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        }
        axum::Json::<Line>::from_request(req, &())
            .await
            .map(|axum::Json(v)| v)
            .map_err(|r| {
                let e = json_rejection(r);
                (e.code, e.message)
            })
    }

    #[tokio::test]
    async fn the_content_types_axum_accepts_and_no_others() {
        let body = r#"{"items":[{"quantity":2}]}"#;
        for ct in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=utf-8",
            "application/cloudevents+json",
        ] {
            assert_eq!(
                extract(Some(ct), body).await,
                Ok(Line {
                    items: vec![Item { quantity: 2 }]
                }),
                "{ct}"
            );
            assert_eq!(extract(Some(ct), body).await, axum_says(Some(ct), body).await, "{ct}");
        }
        for ct in [
            None,
            Some("text/json"),
            Some("application/jsonx"),
            Some("json"),
            Some(""),
        ] {
            let got = extract(ct, body).await;
            assert_eq!(got.as_ref().map_err(|e| e.0), Err(Code::UnsupportedMediaType), "{ct:?}");
            assert_eq!(got, axum_says(ct, body).await, "{ct:?}");
        }
    }

    #[tokio::test]
    async fn a_bad_body_gets_axum_s_message_with_the_failing_path() {
        let ct = Some("application/json");
        for body in [
            r#"{"items":[{"quantity":"two"}]}"#,
            r#"{"items":[{"quantity":2,"extra":1}]}"#,
            r#"{"items":[{"quantity":2}]} trailing"#,
            r#"{"items":[{"quantity":2}"#,
            "",
        ] {
            let got = extract(ct, body).await;
            assert!(got.is_err(), "{body}");
            assert_eq!(got, axum_says(ct, body).await, "{body}");
        }
        // JSON's numbers without a fraction are integers, whatever their spelling.
        for body in [r#"{"items":[{"quantity":2.0}]}"#, r#"{"items":[{"quantity":2e0}]}"#] {
            let two = Line {
                items: vec![Item { quantity: 2 }],
            };
            assert_eq!(extract(ct, body).await, Ok(two), "{body}");
        }
        for body in [r#"{"items":[{"quantity":2.5}]}"#, r#"{"items":[{"quantity":1e30}]}"#] {
            assert_eq!(extract(ct, body).await.map_err(|e| e.0), Err(Code::Invalid), "{body}");
        }
        let (code, message) = extract(ct, r#"{"items":[{"quantity":"two"}]}"#).await.unwrap_err();
        assert_eq!(code, Code::Invalid);
        assert!(message.contains("items[0].quantity"), "{message}");
    }
}
