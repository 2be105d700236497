//! Money and tickets going back: refunds (whole orders and chosen ticket codes), cancellations
//! of unpaid orders by the buyer and by the organiser, and payments that arrive after their
//! deadline (honoured, or `refund_required` when the tickets are gone), on a manual clock.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

/// The ticket states of an order view, by code.
fn states(order: &Value) -> Vec<(String, String)> {
    order["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .map(|t| {
            (
                t["code"].as_str().unwrap().to_string(),
                t["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The code of the `n`-th ticket of type `ticket_type` in an order view.
fn code_of(order: &Value, ticket_type: u64, n: usize) -> String {
    order["tickets"]
        .as_array()
        .expect("tickets")
        .iter()
        .filter(|t| t["ticket_type_id"] == ticket_type)
        .nth(n)
        .and_then(|t| t["code"].as_str())
        .expect("such a ticket")
        .to_string()
}

fn state_of(order: &Value, code: &str) -> String {
    states(order)
        .into_iter()
        .find(|(c, _)| c == code)
        .map(|(_, s)| s)
        .expect("the ticket in the order")
}

/// Per ticket type: (held, sold) from stats.
fn held_sold(st: &Value) -> Vec<(u64, u64)> {
    st["ticket_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["held"].as_u64().unwrap(), t["sold"].as_u64().unwrap()))
        .collect()
}

#[tokio::test]
async fn refunds_return_tickets_to_inventory_by_code_or_whole_orders() {
    refunds(Codes::default()).await;
}

pub async fn refunds(codes: Codes) {
    let app = spawn_app(AppOptions::default().test_payments().codes(&codes)).await;
    let id = app
        .create_sale(&json!({
            "event": {"name": "Refunds", "currency": "EUR", "max_tickets_per_buyer": 3},
            "ticket_types": [{"name": "A", "price_minor": 1000}, {"name": "B", "price_minor": 2500}],
            "quotas": [{"name": "Hall", "capacity": 8, "ticket_type_ids": [0, 1]}],
        }))
        .await;
    let ana = app.buyer_token("ana");
    let mixed = json!({"items": [{"ticket_type_id": 0, "quantity": 2}, {"ticket_type_id": 1, "quantity": 1}]});
    let hold = app.place_hold(&ana, &id, &mixed, None).await.expect_id(201);
    let order = app.checkout(&ana, &hold, None).await.expect_id(201);
    let paid = app.pay(&ana, &order).await.expect(200).clone();
    assert_eq!(paid["total_minor"], 4500);
    assert_eq!(paid["refunded_minor"], 0);
    let (a1, a2, b) = (code_of(&paid, 0, 0), code_of(&paid, 0, 1), code_of(&paid, 1, 0));
    assert_eq!(app.available(&id).await, [5, 5]);

    // One ticket by its code: it returns to inventory, the order stays paid for the rest.
    let r = app.refund(&order, Some(&[&a1])).await;
    let o = r.expect(200).clone();
    assert_eq!(
        (
            o["state"].as_str(),
            o["refunded_minor"].as_i64(),
            o["total_minor"].as_i64()
        ),
        (Some("paid"), Some(1000), Some(4500))
    );
    assert_eq!(
        (state_of(&o, &a1), state_of(&o, &a2), state_of(&o, &b)),
        ("refunded".into(), "valid".into(), "valid".into())
    );
    assert_eq!(
        app.get_order(&ana, &order).await.expect(200),
        &o,
        "the buyer sees it too"
    );
    assert_eq!(
        app.available(&id).await,
        [6, 6],
        "the refunded ticket is for sale again"
    );
    let st = app.stats(&id).await;
    assert_eq!((st["sold"].as_u64(), st["tickets_valid"].as_u64()), (Some(2), Some(2)));
    assert_eq!(held_sold(&st), [(0, 1), (0, 1)]);
    assert_eq!(st["orders"]["paid"], 1);
    // A refunded ticket is neither refunded twice nor let in.
    app.refund(&order, Some(&[&a1])).await.expect_error(409, "conflict");
    app.checkin(&id, &a1).await.expect_error(409, "conflict");

    // A used ticket is never refunded by accident: a whole refund with one checked in among
    // the remaining tickets is refused, and changes nothing.
    let at = app.checkin(&id, &b).await.expect(200)["checked_in_at"].clone();
    let e = app.refund(&order, None).await;
    assert_eq!(
        e.expect_error(409, "already_checked_in")["details"]["checked_in_at"],
        at
    );
    app.refund(&order, Some(&[&b]))
        .await
        .expect_error(409, "already_checked_in");
    assert_eq!(app.get_order(&ana, &order).await.expect(200)["refunded_minor"], 1000);
    // The rest by code: the checked-in ticket keeps the order paid.
    let o = app.refund(&order, Some(&[&a2])).await.expect(200).clone();
    assert_eq!(
        (o["state"].as_str(), o["refunded_minor"].as_i64()),
        (Some("paid"), Some(2000))
    );
    assert_eq!(state_of(&o, &b), "checked_in");
    // Refunds give back room under the per-buyer limit: Ana keeps 1 of 3.
    let again = app.place_hold(&ana, &id, &items(0, 2), None).await.expect_id(201);
    app.place_hold(&ana, &id, &items(0, 1), None)
        .await
        .expect_error(422, "limit_exceeded");
    app.release_hold(&ana, &again).await.expect(200);

    // A whole order, codes omitted: every ticket back, the order `refunded`.
    let bob = app.buyer_token("bob");
    let bobs = app.buy(&bob, &id, 2).await;
    let bobs_id = bobs["id"].as_str().unwrap().to_string();
    let o = app.refund(&bobs_id, None).await.expect(200).clone();
    assert_eq!(
        (o["state"].as_str(), o["refunded_minor"].as_i64()),
        (Some("refunded"), Some(2000))
    );
    assert_eq!(o["refunded_minor"], o["total_minor"]);
    assert!(states(&o).iter().all(|(_, s)| s == "refunded"), "{o}");
    app.refund(&bobs_id, None).await.expect_error(409, "conflict");

    // Every code named: the same as the whole order.
    let cleo = app.buyer_token("cleo");
    let hold = app.place_hold(&cleo, &id, &mixed, None).await.expect_id(201);
    let cleos_id = app.checkout(&cleo, &hold, None).await.expect_id(201);
    let cleos = app.pay(&cleo, &cleos_id).await.expect(200).clone();
    let cleo_codes = ticket_codes(&cleos);
    // A code of another order, and a code nobody holds, are not found.
    let bobs_code = ticket_codes(&bobs)[0].clone();
    app.refund(&cleos_id, Some(&[&bobs_code]))
        .await
        .expect_error(404, "not_found");
    app.refund(&cleos_id, Some(&["0".repeat(26).as_str()]))
        .await
        .expect_error(404, "not_found");
    app.refund(&cleos_id, Some(&[])).await.expect_error(422, "invalid");
    let named: Vec<&str> = cleo_codes.iter().map(String::as_str).collect();
    let o = app.refund(&cleos_id, Some(&named)).await.expect(200).clone();
    assert_eq!(
        (o["state"].as_str(), o["refunded_minor"].as_i64()),
        (Some("refunded"), Some(4500))
    );

    // An order not paid has nothing to refund.
    let dan = app.buyer_token("dan");
    let hold = app.place_hold(&dan, &id, &items(0, 1), None).await.expect_id(201);
    let dans = app.checkout(&dan, &hold, None).await.expect_id(201);
    app.refund(&dans, None).await.expect_error(409, "conflict");
    app.refund("ord_999_1", None).await.expect_error(404, "not_found");

    // What is left: Ana's checked-in ticket sold, Dan's order holding one.
    let st = app.stats(&id).await;
    assert_eq!((st["sold"].as_u64(), st["held"].as_u64()), (Some(1), Some(1)));
    assert_eq!(held_sold(&st), [(1, 0), (0, 1)]);
    assert_eq!(
        (st["orders"]["paid"].as_u64(), st["orders"]["refunded"].as_u64()),
        (Some(1), Some(2))
    );
    assert_eq!(
        (st["tickets_valid"].as_u64(), st["tickets_checked_in"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(app.available(&id).await, [6, 6]);
    let amounts: Vec<i64> = app
        .feed()
        .await
        .iter()
        .filter(|e| e["type"] == "order_refunded")
        .map(|e| e["data"]["amount_minor"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [1000, 1000, 2000, 4500]);
}

#[tokio::test]
async fn unpaid_orders_are_cancelled_by_their_buyer_or_the_organiser() {
    cancellations(Codes::default()).await;
}

pub async fn cancellations(codes: Codes) {
    let app = spawn_app(AppOptions::default().test_payments().codes(&codes)).await;
    let id = app.simple_sale(4, json!({})).await;

    // The buyer cancels their own unpaid order: the tickets are for sale again.
    let ana = app.buyer_token("ana");
    let hold = app.place_hold(&ana, &id, &items(0, 2), None).await.expect_id(201);
    let order = app.checkout(&ana, &hold, None).await.expect_id(201);
    assert_eq!(app.available(&id).await, [2]);
    let o = app.buyer_cancel(&ana, &order).await;
    let o = o.expect(200);
    assert_eq!(o["state"], "cancelled");
    assert!(o["tickets"].as_array().unwrap().is_empty());
    assert_eq!(app.available(&id).await, [4]);
    app.buyer_cancel(&ana, &order).await.expect_error(409, "conflict");
    app.pay(&ana, &order).await.expect_error(409, "conflict");
    assert_eq!(app.get_order(&ana, &order).await.expect(200)["state"], "cancelled");

    // The organiser cancels anyone's unpaid order.
    let bob = app.buyer_token("bob");
    let hold = app.place_hold(&bob, &id, &items(0, 3), None).await.expect_id(201);
    let order = app.checkout(&bob, &hold, None).await.expect_id(201);
    assert_eq!(app.available(&id).await, [1]);
    let o = app.admin_cancel(&order).await;
    assert_eq!(o.expect(200)["state"], "cancelled");
    assert_eq!(app.available(&id).await, [4]);
    assert_eq!(app.get_order(&bob, &order).await.expect(200)["state"], "cancelled");
    app.admin_cancel(&order).await.expect_error(409, "conflict");
    app.admin_cancel("ord_999_1").await.expect_error(404, "not_found");

    let st = app.stats(&id).await;
    assert_eq!(
        (
            st["held"].as_u64(),
            st["sold"].as_u64(),
            st["orders"]["cancelled"].as_u64()
        ),
        (Some(0), Some(0), Some(2))
    );
    // All four can be sold now.
    app.buy(&app.buyer_token("cleo"), &id, 4).await;
    let cancelled = app
        .feed()
        .await
        .iter()
        .filter(|e| e["type"] == "order_cancelled")
        .count();
    assert_eq!(cancelled, 2);
}

#[tokio::test]
async fn a_late_payment_is_honoured_or_owed_back_when_the_tickets_are_gone() {
    late_payment_without_inventory(Codes::default()).await;
}

/// A buyer cannot start paying past the deadline, but money the organiser received offline
/// (`confirm-payment`) is judged by the order's state only: an order past its deadline whose
/// timer has not fired yet is still awaiting payment and is paid; one that expired is
/// reinstated if its tickets are still there, and becomes `refund_required` if not.
pub async fn late_payment_without_inventory(codes: Codes) {
    let app = spawn_app(AppOptions::default().test_payments().manual_clock().codes(&codes)).await;
    let id = app.simple_sale(2, json!({"hold_ttl_secs": 60})).await;

    // Past the deadline, not ticked: paid. (The shard also looks at the clock by itself at
    // least every 250 ms; had it expired the order first, the tickets being still there, the
    // payment reinstates it: paid either way.)
    let ana = app.buyer_token("ana");
    let hold = app.place_hold(&ana, &id, &items(0, 1), None).await.expect_id(201);
    let order = app.checkout(&ana, &hold, None).await.expect_id(201);
    app.advance(Duration::from_secs(60));
    app.pay(&ana, &order).await.expect_error(409, "hold_expired");
    let paid = app.confirm_payment(&order, "bank-1").await;
    let paid = paid.expect(200);
    assert_eq!(
        (paid["state"].as_str(), paid["tickets"].as_array().map(Vec::len)),
        (Some("paid"), Some(1))
    );
    app.tick().await;
    assert_eq!(app.get_order(&ana, &order).await.expect(200)["state"], "paid");

    // Expired, and the ticket taken by someone else before the money came: owed back.
    let bob = app.buyer_token("bob");
    let hold = app.place_hold(&bob, &id, &items(0, 1), None).await.expect_id(201);
    let order = app.checkout(&bob, &hold, None).await.expect_id(201);
    app.advance(Duration::from_secs(60));
    app.tick().await;
    assert_eq!(app.get_order(&bob, &order).await.expect(200)["state"], "expired");
    assert_eq!(app.available(&id).await, [1]);
    let cleo = app.buyer_token("cleo");
    app.place_hold(&cleo, &id, &items(0, 1), None).await.expect(201);
    let r = app.confirm_payment(&order, "bank-2").await;
    let o = r.expect(200).clone();
    assert_eq!(o["state"], "refund_required");
    assert!(o["tickets"].as_array().unwrap().is_empty(), "no tickets: {o}");
    assert_eq!(o["refunded_minor"], 0);
    let st = app.stats(&id).await;
    assert_eq!(
        (
            st["sold"].as_u64(),
            st["held"].as_u64(),
            st["orders"]["refund_required"].as_u64()
        ),
        (Some(1), Some(1), Some(1)),
        "Cleo's hold stands; nothing oversold"
    );
    // The same confirmation again changes nothing.
    assert_eq!(
        app.confirm_payment(&order, "bank-2").await.expect(200)["state"],
        "refund_required"
    );
    let feed = app.feed().await;
    let owed: Vec<&str> = feed
        .iter()
        .filter(|e| e["type"] == "order_refund_required")
        .map(|e| e["data"]["order_id"].as_str().unwrap())
        .collect();
    assert_eq!(owed, [order.as_str()]);

    // Settled by the organiser: whole, never by ticket codes.
    app.refund(&order, Some(&["0".repeat(26).as_str()]))
        .await
        .expect_error(422, "invalid");
    let o = app.refund(&order, None).await.expect(200).clone();
    assert_eq!(
        (o["state"].as_str(), o["refunded_minor"].as_i64()),
        (Some("refunded"), Some(1000))
    );
    assert_eq!(o["refunded_minor"], o["total_minor"]);
    let st = app.stats(&id).await;
    assert_eq!(
        (
            st["orders"]["refund_required"].as_u64(),
            st["orders"]["refunded"].as_u64()
        ),
        (Some(0), Some(1))
    );
    assert_eq!((st["sold"].as_u64(), st["held"].as_u64()), (Some(1), Some(1)));
}
