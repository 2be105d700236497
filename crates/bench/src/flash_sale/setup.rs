//! The flash sale's setup through the admin API: the sale, its ticket types and quotas, open.

use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use hyper::Method;
use hyper::header::HeaderValue;
use serde::Deserialize;

use super::client::{Conn, Target, exchange};
use super::scenario::{RETRIES_503_MAX, retry_delay};

/// The sale's shape, scaled by `tickets`.
#[derive(Debug, Clone)]
pub struct SaleSpec {
    pub tickets: u32,
    pub hold_ttl_secs: u64,
    pub max_per_buyer: u32,
}

/// The sale as created.
#[derive(Debug, Clone)]
pub struct Sale {
    pub event_id: String,
    pub general: u32,
    pub vip: u32,
    /// Tickets that can be sold: the venue quota (the VIP area quota lies inside it).
    pub capacity: u32,
    pub hold_ttl: Duration,
    pub max_per_buyer: u32,
}

/// A connection for the organiser's calls, outside the measured pool.
pub struct Admin {
    pub conn: Conn,
    pub target: Target,
    pub auth: HeaderValue,
}

impl Admin {
    /// One admin request; `503` is retried after `Retry-After` (bounded).
    pub async fn call(&mut self, method: Method, path: &str, body: Option<String>) -> anyhow::Result<(u16, Bytes)> {
        for _ in 0..RETRIES_503_MAX {
            let reply = exchange(
                &mut self.conn,
                &self.target,
                method.clone(),
                path,
                Some(&self.auth),
                body.clone().map(Bytes::from),
            )
            .await
            .with_context(|| format!("{method} {path}"))?;
            if reply.status != 503 {
                return Ok((reply.status, reply.body));
            }
            tokio::time::sleep(retry_delay(reply.retry_after_ms)).await;
        }
        bail!("{method} {path}: still 503 after {RETRIES_503_MAX} tries")
    }

    /// An admin request that must answer `expect`; returns the body.
    pub async fn expect(
        &mut self,
        method: Method,
        path: &str,
        body: Option<String>,
        expect: u16,
    ) -> anyhow::Result<Bytes> {
        let (status, bytes) = self.call(method.clone(), path, body).await?;
        if status != expect {
            bail!(
                "{method} {path}: expected {expect}, got {status}: {}",
                String::from_utf8_lossy(&bytes)
            );
        }
        Ok(bytes)
    }
}

#[derive(Deserialize)]
struct Created {
    id: serde_json::Value,
}

fn id_of(body: &[u8]) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_slice::<Created>(body)?.id)
}

/// Creates and opens the sale: two ticket types (general, VIP) and two overlapping quotas
/// (the venue holds everyone; the VIP area, a tenth of it, only VIPs), a per-buyer limit.
pub async fn create_sale(admin: &mut Admin, spec: &SaleSpec) -> anyhow::Result<Sale> {
    let body = format!(
        r#"{{"name":"Flash sale bench","currency":"EUR","hold_ttl_secs":{},"max_tickets_per_buyer":{}}}"#,
        spec.hold_ttl_secs, spec.max_per_buyer
    );
    let created = admin.expect(Method::POST, "/v1/admin/events", Some(body), 201).await?;
    let event_id = id_of(&created)?
        .as_str()
        .context("event id is not a string")?
        .to_string();
    let mut type_ids = [0u32; 2];
    for (slot, (name, price)) in type_ids.iter_mut().zip([("General admission", 3_500), ("VIP", 12_000)]) {
        let body = format!(
            r#"{{"name":"{name}","price_minor":{price},"max_per_order":{}}}"#,
            spec.max_per_buyer
        );
        let path = format!("/v1/admin/events/{event_id}/ticket-types");
        let res = admin.expect(Method::POST, &path, Some(body), 201).await?;
        *slot = id_of(&res)?.as_u64().context("ticket type id")? as u32;
    }
    let [general, vip] = type_ids;
    let vip_area = (spec.tickets / 10).max(1);
    for (name, capacity, types) in [
        ("Venue", spec.tickets, format!("[{general},{vip}]")),
        ("VIP area", vip_area, format!("[{vip}]")),
    ] {
        let body = format!(r#"{{"name":"{name}","capacity":{capacity},"ticket_type_ids":{types}}}"#);
        let path = format!("/v1/admin/events/{event_id}/quotas");
        admin.expect(Method::POST, &path, Some(body), 201).await?;
    }
    let path = format!("/v1/admin/events/{event_id}/open");
    admin.expect(Method::POST, &path, None, 200).await?;
    Ok(Sale {
        event_id,
        general,
        vip,
        capacity: spec.tickets,
        hold_ttl: Duration::from_secs(spec.hold_ttl_secs),
        max_per_buyer: spec.max_per_buyer,
    })
}
