//! Searching orders (`GET /v1/admin/orders`): filters and cursor pagination over every sale's
//! orders, from memory (see [`crate::order_search`] for why pages are stable and bounded).

use axum::extract::State;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use taquilla_domain::{BuyerId, OrderState, SaleId, TicketCode};
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::Reporting;
use crate::constraints;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiQuery;
use crate::ids::PublicSaleId;
use crate::json::Json;
use crate::limits::{ORDERS_LIMIT_DEFAULT, ORDERS_LIMIT_MAX};
use crate::order_search::{Cursor, Filter, search};
use crate::time::parse_rfc3339;
use crate::views::AdminOrderView;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct OrdersQuery {
    /// Only this sale's orders (`evt_<n>`).
    #[param(schema_with = constraints::event_id)]
    event_id: Option<String>,
    /// Only this buyer's orders.
    #[param(schema_with = constraints::buyer_id)]
    buyer_id: Option<String>,
    /// Only orders in this state.
    #[param(value_type = Option<crate::named::OrderStateName>)]
    state: Option<String>,
    /// The order that issued this ticket.
    #[param(schema_with = constraints::ticket_code)]
    ticket_code: Option<String>,
    /// Orders created at or after this time (RFC 3339).
    #[param(schema_with = constraints::time)]
    created_after: Option<String>,
    /// Orders created before this time (RFC 3339).
    #[param(schema_with = constraints::time)]
    created_before: Option<String>,
    /// `next_cursor` of the previous page (opaque); omitted: from the first order.
    #[param(schema_with = constraints::orders_cursor)]
    after: Option<String>,
    /// Orders per page, 1–200; default 50.
    #[param(schema_with = constraints::orders_limit)]
    limit: Option<usize>,
}

/// A page of orders, oldest first within each sale, sales in id order.
#[derive(Serialize, ToSchema)]
pub struct AdminOrderList {
    #[schema(value_type = Vec<AdminOrderView>)]
    pub orders: Vec<Box<RawValue>>,
    /// Where the next page starts; `null` when every order was looked at. A page may be short
    /// (or empty) and still have a next one: each request looks at a bounded number of orders.
    pub next_cursor: Option<String>,
}

fn filter(q: &OrdersQuery) -> Result<Filter, ApiError> {
    let invalid = |field: &str, what: &str| ApiError::invalid(format!("{field}: {what}"));
    let time = |field: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| parse_rfc3339(s).ok_or_else(|| invalid(field, "expected an RFC 3339 time")))
            .transpose()
    };
    Ok(Filter {
        sale: q
            .event_id
            .as_deref()
            .map(|s| {
                PublicSaleId::parse(s)
                    .map(|p| p.0)
                    .ok_or_else(|| invalid("event_id", "expected evt_<n>"))
            })
            .transpose()?,
        buyer: q
            .buyer_id
            .as_deref()
            .map(|s| BuyerId::parse(s).map_err(|e| invalid("buyer_id", e.reason)))
            .transpose()?,
        state: q
            .state
            .as_deref()
            .map(|s| {
                OrderState::ALL
                    .into_iter()
                    .find(|st| st.as_str() == s)
                    .ok_or_else(|| invalid("state", "not an order state"))
            })
            .transpose()?,
        ticket_code: q
            .ticket_code
            .as_deref()
            .map(|s| {
                TicketCode::parse(s).ok_or_else(|| invalid("ticket_code", "expected 26 characters of Crockford base32"))
            })
            .transpose()?,
        created_after: time("created_after", &q.created_after)?,
        created_before: time("created_before", &q.created_before)?,
    })
}

#[utoipa::path(get, path = "/v1/admin/orders", tag = "admin", operation_id = "admin_list_orders", params(OrdersQuery),
    responses((status = 200, body = AdminOrderList, description = "Orders matching every filter given, with each one's payment timeline; follow `next_cursor` until it is `null`"),
        (status = 422, body = ErrorBody, description = "`invalid` filter, cursor or limit")),
    security(("admin" = ["reporting", "admin"])))]
pub(crate) async fn list_orders(
    State(state): State<AppState>,
    _: Reporting,
    ApiQuery(q): ApiQuery<OrdersQuery>,
) -> Result<Json<AdminOrderList>, ApiError> {
    let limit = q.limit.unwrap_or(ORDERS_LIMIT_DEFAULT);
    if !(1..=ORDERS_LIMIT_MAX).contains(&limit) {
        return Err(ApiError::invalid(format!(
            "limit must be between 1 and {ORDERS_LIMIT_MAX}"
        )));
    }
    let cursor = match q.after.as_deref() {
        None => Cursor::START,
        Some(s) => Cursor::parse(s).ok_or_else(|| ApiError::invalid("after: not a cursor this server gave"))?,
    };
    let filter = filter(&q)?;
    let engine = state.engine()?;
    let sales: Vec<SaleId> = match filter.sale {
        Some(sale) => vec![sale],
        None => engine.sales(),
    };
    let (orders, next) = search(
        &sales,
        &filter,
        cursor,
        limit,
        |sale, scan| engine.read(sale, |s| scan(s)),
        render,
    );
    Ok(Json(AdminOrderList {
        orders: orders.into_iter().collect::<Result<_, _>>()?,
        next_cursor: next.map(Cursor::to_text),
    }))
}

/// One order as JSON, rendered under the sale's read lock.
fn render(sale: SaleId, s: &taquilla_domain::SaleState, o: &taquilla_domain::Order) -> Result<Box<RawValue>, ApiError> {
    let text = serde_json::to_string(&AdminOrderView::new(sale, s, o)).map_err(|e| {
        tracing::error!(error = %e, "encoding an order failed");
        ApiError::new(crate::error::Code::Internal, "encoding the response failed")
    })?;
    RawValue::from_string(text).map_err(|_| ApiError::new(crate::error::Code::Internal, "encoding the response failed"))
}
