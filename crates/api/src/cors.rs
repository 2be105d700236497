//! CORS for browser front ends (tower-http's `CorsLayer`): off unless origins are configured.
//! Allowed: the methods and request headers the buyer API uses (`Authorization` for the bearer
//! token, `Content-Type`, `Idempotency-Key`, `Prefer`, `If-None-Match`, `X-Correlation-Id`);
//! exposed to scripts: `Retry-After`, `ETag`, `X-Correlation-Id`. No credentials (cookies):
//! tokens travel in `Authorization`. Preflights are answered by the layer without calling a
//! handler.

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::limits;

/// Browser origins allowed to call the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsSettings {
    /// `scheme://host[:port]` each, or the one entry `*` (any origin); empty: no CORS headers.
    pub allow_origins: Vec<String>,
}

impl CorsSettings {
    /// Origins from flags or a config file: repeated and/or comma-separated, checked.
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<CorsSettings, String> {
        let origins: Vec<String> = values
            .iter()
            .flat_map(|v| v.as_ref().split(','))
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(str::to_owned)
            .collect();
        if origins.len() > limits::CORS_ORIGINS_MAX {
            return Err(format!(
                "cors_allow_origin: at most {} origins",
                limits::CORS_ORIGINS_MAX
            ));
        }
        if origins.iter().any(|o| o == "*") && origins.len() > 1 {
            return Err("cors_allow_origin: `*` allows any origin and stands alone".into());
        }
        for o in origins.iter().filter(|o| *o != "*") {
            check_origin(o)?;
        }
        Ok(CorsSettings { allow_origins: origins })
    }
}

/// An origin as browsers send it: `http(s)://host[:port]`, no path, no trailing slash.
fn check_origin(o: &str) -> Result<(), String> {
    let rest = o
        .strip_prefix("https://")
        .or_else(|| o.strip_prefix("http://"))
        .ok_or_else(|| format!("cors_allow_origin {o:?}: expected http(s)://host[:port]"))?;
    let well_formed = !rest.is_empty() && !rest.contains(['/', '?', '#', '@', ' ']) && HeaderValue::from_str(o).is_ok();
    if !well_formed {
        return Err(format!(
            "cors_allow_origin {o:?}: expected http(s)://host[:port] without a path"
        ));
    }
    Ok(())
}

/// The layer for these settings; `None` when no origin is allowed.
pub(crate) fn layer(s: &CorsSettings) -> Option<CorsLayer> {
    if s.allow_origins.is_empty() {
        return None;
    }
    let origin = if s.allow_origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(s.allow_origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_NONE_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("prefer"),
                HeaderName::from_static(crate::correlation::HEADER),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                header::ETAG,
                HeaderName::from_static(crate::correlation::HEADER),
            ])
            .max_age(limits::CORS_MAX_AGE),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_parse_from_lists_and_bad_ones_are_named() {
        let s = CorsSettings::parse(&["https://shop.example, http://localhost:3000", "https://b.example"]).unwrap();
        assert_eq!(
            s.allow_origins,
            ["https://shop.example", "http://localhost:3000", "https://b.example"]
        );
        assert_eq!(CorsSettings::parse(&["*"]).unwrap().allow_origins, ["*"]);
        assert!(CorsSettings::parse::<&str>(&[]).unwrap().allow_origins.is_empty());
        for bad in [
            "shop.example",
            "https://shop.example/",
            "https://",
            "ftp://x",
            "*,https://a.example",
        ] {
            let e = CorsSettings::parse(&[bad]).unwrap_err();
            assert!(e.contains("cors_allow_origin"), "{bad}: {e}");
        }
    }
}
