//! JSON responses, written into one buffer sized for a whole view.
//!
//! Owned views go through [`Json`] (serde). The views every command answers with — a hold or
//! an order — are declared with [`json_view!`], which generates from the one struct
//! declaration both the serde/OpenAPI derives and a direct writer ([`WriteJson`]): field keys
//! are literals, ids, times and enum names are written without an escaping pass (they are
//! ASCII by construction), numbers through `itoa`. Encoding through serde's derive cost
//! several times the writer's instructions, visible in a command's server CPU (the A/B is in
//! `docs/performance.md`). The views are written under the sale's read lock by [`encode`], and
//! a property test checks the writer against serde's output of the same struct, byte for byte.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{ApiError, Code};

/// Room for the largest common view (an order with its tickets) without growing.
const VIEW_BYTES: usize = 1024;

/// A view that writes itself as JSON.
pub trait WriteJson {
    fn write_json(&self, out: &mut Vec<u8>);
}

/// Declares a view struct once: the struct with `Serialize` and `ToSchema` derived (its
/// `#[schema]` attributes pass through), and its [`WriteJson`] writer, field by field in
/// declaration order, exactly as serde would write it.
macro_rules! json_view {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident $(<$lt:lifetime>)? {
            $(#[$fmeta0:meta])* $fvis0:vis $field0:ident : $ty0:ty
            $(, $(#[$fmeta:meta])* $fvis:vis $field:ident : $ty:ty)* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(serde::Serialize, utoipa::ToSchema)]
        $vis struct $name $(<$lt>)? {
            $(#[$fmeta0])* $fvis0 $field0: $ty0,
            $($(#[$fmeta])* $fvis $field: $ty,)*
        }

        impl $(<$lt>)? $crate::json::WriteJson for $name $(<$lt>)? {
            fn write_json(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(concat!("{\"", stringify!($field0), "\":").as_bytes());
                $crate::json::WriteJson::write_json(&self.$field0, out);
                $(
                    out.extend_from_slice(concat!(",\"", stringify!($field), "\":").as_bytes());
                    $crate::json::WriteJson::write_json(&self.$field, out);
                )*
                out.push(b'}');
            }
        }
    };
}
pub(crate) use json_view;

/// Whether `s` can be written between quotes as it is.
fn needs_no_escape(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

/// Writes `s` as a JSON string: as is when nothing needs escaping (the common case), else
/// through serde_json's escaper.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    if needs_no_escape(s) {
        write_ascii(s, out);
    } else {
        // Writing a `str` into a `Vec` cannot fail.
        let _ = serde_json::to_writer(&mut *out, s);
    }
}

/// Writes text that never needs escaping (ASCII ids, times, enum names) as a JSON string.
pub fn write_ascii(s: &str, out: &mut Vec<u8>) {
    debug_assert!(needs_no_escape(s), "{s:?} needs escaping");
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

impl WriteJson for &str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(self, out);
    }
}

macro_rules! write_int {
    ($($t:ty),*) => {$(
        impl WriteJson for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
            }
        }
    )*};
}
write_int!(u32, u64, i64);

impl<T: WriteJson> WriteJson for Option<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Some(v) => v.write_json(out),
            None => out.extend_from_slice(b"null"),
        }
    }
}

/// A view already encoded as JSON.
#[derive(Debug)]
pub struct JsonBody(Vec<u8>);

/// Encodes a view with its generated writer.
pub fn encode(view: &impl WriteJson) -> JsonBody {
    let mut buf = Vec::with_capacity(VIEW_BYTES);
    view.write_json(&mut buf);
    JsonBody(buf)
}

/// Encodes a value through serde. Fails only for a value with no JSON form (a bug), as
/// `500 internal`.
pub fn encode_serde<T: Serialize + ?Sized>(view: &T) -> Result<JsonBody, ApiError> {
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

/// An owned view, encoded through serde when the response is made
/// (`Content-Type: application/json`).
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match encode_serde(&self.0) {
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
    }

    #[test]
    fn strings_are_escaped_where_needed() {
        for s in ["plain", "quo\"te", "back\\slash", "tab\t", "ñandú ✓", "\u{1}", "\u{7f}"] {
            let mut out = Vec::new();
            write_str(s, &mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(s).unwrap(),
                "{s:?}"
            );
        }
    }

    json_view! {
        struct Sample<'a> {
            name: &'a str,
            n: i64,
            missing: Option<u32>,
            present: Option<u64>,
        }
    }

    #[test]
    fn a_declared_view_writes_what_serde_writes() {
        let v = Sample {
            name: "a \"b\"",
            n: -3,
            missing: None,
            present: Some(u64::MAX),
        };
        let mut out = Vec::new();
        v.write_json(&mut out);
        assert_eq!(String::from_utf8(out).unwrap(), serde_json::to_string(&v).unwrap());
    }
}
