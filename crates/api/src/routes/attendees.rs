//! The attendee export (`GET /v1/admin/events/{event_id}/attendees`): every valid ticket of a
//! sale with its type, buyer, order and times, for the door and for accounting, as CSV or JSON.
//!
//! Streamed in constant memory: the body is rendered chunk by chunk, each chunk under one short
//! read-lock section over a range of order ids (orders are numbered and never deleted, so the
//! ranges cover every order once), and the next chunk is rendered only when the connection has
//! taken the last one. A sale of a million tickets costs one chunk of memory, not a million
//! rows, and the writer never waits long for the lock. Tickets issued while the export runs are
//! in it if their order comes after the chunk being rendered.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use taquilla_domain::{BuyerId, Name, OrderId, SaleId, SaleState, TicketCode, TicketTypeId, Timestamp, limits};
use taquilla_engine::Engine;
use utoipa::{IntoParams, ToSchema};

use super::sale_of;
use crate::AppState;
use crate::auth::Stats;
use crate::error::ApiError;
use crate::extract::{ApiPath, ApiQuery};
use crate::ids::PublicOrderId;
use crate::limits::{EXPORT_CHUNK_ORDERS, EXPORT_CHUNK_ROWS};
use crate::time::Rfc3339;
use crate::views::TicketCodeText;

/// How the export is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Json,
    Csv,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttendeesQuery {
    /// `csv` or `json`; omitted: CSV when the request's `Accept` names `text/csv`, else JSON.
    #[param(inline)]
    format: Option<ExportFormat>,
}

/// One valid (not refunded) ticket: a row of the export.
#[derive(Serialize, ToSchema)]
pub struct AttendeeView<'a> {
    #[schema(value_type = String, example = "1CAHQQY7KCG95H6BK9K8EAV022")]
    pub ticket_code: TicketCodeText,
    pub ticket_type_id: u32,
    pub ticket_type: &'a str,
    pub buyer_id: &'a str,
    #[schema(value_type = String, example = "ord_1_1")]
    pub order_id: PublicOrderId,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub paid_at: Option<Rfc3339>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_in_at: Option<Rfc3339>,
}

/// The JSON form of the export (streamed; the CSV form has the same columns, in this order,
/// under a header row).
#[derive(Serialize, ToSchema)]
pub struct AttendeeList<'a> {
    pub attendees: Vec<AttendeeView<'a>>,
}

/// What the JSON form writes around its rows: `AttendeeList` with the list left open.
const JSON_OPEN: &[u8] = b"{\"attendees\":[";
const JSON_CLOSE: &[u8] = b"]}";

fn wants_csv(q: &AttendeesQuery, headers: &HeaderMap) -> bool {
    match q.format {
        Some(f) => f == ExportFormat::Csv,
        None => headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|m| {
                m.split(';')
                    .next()
                    .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/csv"))
            }),
    }
}

#[utoipa::path(get, path = "/v1/admin/events/{event_id}/attendees", tag = "admin",
    params(("event_id" = String, Path), AttendeesQuery),
    responses((status = 200, description = "Every valid ticket, in order of its order; streamed",
        content((AttendeeList = "application/json"), (String = "text/csv"))),
        (status = 422, body = crate::error::ErrorBody, description = "`invalid` format")),
    security(("admin" = ["door", "reporting", "admin"])))]
pub(crate) async fn export(
    State(state): State<AppState>,
    _: Stats,
    ApiPath(event_id): ApiPath,
    ApiQuery(q): ApiQuery<AttendeesQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let sale = sale_of(&event_id)?;
    let engine = state.engine()?.clone();
    if engine.read(sale, |s| s.sale.is_some()) != Some(true) {
        return Err(ApiError::not_found("event"));
    }
    let csv = wants_csv(&q, &headers);
    let export = Export {
        engine,
        sale,
        csv,
        next: Some(OrderId(1)),
        started: false,
        any_row: false,
    };
    let body = Body::from_stream(futures_util::stream::unfold(export, |mut e| async move {
        let chunk = e.next_chunk()?;
        Some((Ok::<_, std::convert::Infallible>(chunk), e))
    }));
    let content_type = if csv {
        "text/csv; charset=utf-8"
    } else {
        "application/json"
    };
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static(content_type))], body).into_response())
}

/// Where an export stands between two chunks.
struct Export {
    engine: Arc<Engine>,
    sale: SaleId,
    csv: bool,
    /// The next order to render; `None` once the closing bytes were sent.
    next: Option<OrderId>,
    /// The CSV header or the JSON opening went out.
    started: bool,
    /// A row went out (JSON rows after the first are preceded by a comma).
    any_row: bool,
}

impl Export {
    /// The next piece of the body, or `None` when everything was sent. The rows are copied
    /// under the read lock (a few words each) and rendered after it is released, so the
    /// writer never waits for formatting.
    fn next_chunk(&mut self) -> Option<Bytes> {
        let from = self.next?;
        let sale = self.sale;
        let mut rows = Vec::with_capacity(EXPORT_CHUNK_ROWS + limits::HOLD_ITEMS_MAX * limits::QUANTITY_MAX as usize);
        let next = self.engine.read(sale, |s| copy_rows(s, from, &mut rows)).flatten();
        let mut out = Vec::with_capacity(rows.len() * 160 + CSV_HEADER.len());
        if !self.started {
            out.extend_from_slice(if self.csv { CSV_HEADER } else { JSON_OPEN });
            self.started = true;
        }
        self.render(&rows, &mut out);
        self.next = next;
        if next.is_none() && !self.csv {
            out.extend_from_slice(JSON_CLOSE);
        }
        Some(Bytes::from(out))
    }

    fn render(&mut self, rows: &[Row], out: &mut Vec<u8>) {
        let views = rows.iter().map(|r| r.view(self.sale));
        if self.csv {
            let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(out);
            // Serializing plain strings and numbers into memory cannot fail.
            views.for_each(|v| {
                let _ = w.serialize(&v);
            });
            let _ = w.flush();
            return;
        }
        for v in views {
            if self.any_row {
                out.push(b',');
            }
            let _ = serde_json::to_writer(&mut *out, &v);
            self.any_row = true;
        }
    }
}

/// The CSV header row: `AttendeeView`'s fields.
const CSV_HEADER: &[u8] = b"ticket_code,ticket_type_id,ticket_type,buyer_id,order_id,paid_at,checked_in_at\n";

/// A row as copied from the sale's state (names are short inline strings: no allocation
/// unless longer than 24 bytes).
struct Row {
    code: TicketCode,
    ticket_type: TicketTypeId,
    type_name: Name,
    buyer: BuyerId,
    order: OrderId,
    paid_at: Option<Timestamp>,
    checked_in_at: Option<Timestamp>,
}

impl Row {
    fn view(&self, sale: SaleId) -> AttendeeView<'_> {
        AttendeeView {
            ticket_code: TicketCodeText(self.code),
            ticket_type_id: self.ticket_type.0,
            ticket_type: self.type_name.as_str(),
            buyer_id: self.buyer.as_str(),
            order_id: PublicOrderId(sale, self.order),
            paid_at: self.paid_at.map(Rfc3339),
            checked_in_at: self.checked_in_at.map(Rfc3339),
        }
    }
}

/// Copies the valid tickets of orders from `from` on (under the read lock) until a chunk is
/// full; returns the next order to look at, `None` when the sale's last order was looked at.
fn copy_rows(s: &SaleState, from: OrderId, rows: &mut Vec<Row>) -> Option<OrderId> {
    let len = s.orders.len() as u64;
    let mut id = from.0;
    while id <= len && id < from.0 + EXPORT_CHUNK_ORDERS as u64 && rows.len() < EXPORT_CHUNK_ROWS {
        let o = &s.orders[&OrderId(id)];
        for t in o
            .tickets
            .iter()
            .filter_map(|c| s.tickets.get(c))
            .filter(|t| !t.refunded)
        {
            let Some(tt) = s.ticket_types.get(t.ticket_type.0 as usize) else {
                continue;
            };
            rows.push(Row {
                code: t.code,
                ticket_type: t.ticket_type,
                type_name: tt.name.clone(),
                buyer: o.buyer.clone(),
                order: o.id,
                paid_at: o.paid_at,
                checked_in_at: t.checked_in_at,
            });
        }
        id += 1;
    }
    (id <= len).then_some(OrderId(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_header_names_the_row_fields_in_order() {
        let row = AttendeeView {
            ticket_code: TicketCodeText(taquilla_domain::TicketCode(1)),
            ticket_type_id: 0,
            ticket_type: "GA",
            buyer_id: "b",
            order_id: PublicOrderId(SaleId(1), OrderId(1)),
            paid_at: None,
            checked_in_at: None,
        };
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(&row).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(
            text.lines().next().unwrap().as_bytes(),
            CSV_HEADER.strip_suffix(b"\n").unwrap()
        );
    }

    #[test]
    fn the_json_frame_is_the_list_s_own() {
        let list = AttendeeList { attendees: Vec::new() };
        let text = serde_json::to_vec(&list).unwrap();
        assert_eq!(text, [JSON_OPEN, JSON_CLOSE].concat());
    }
}
