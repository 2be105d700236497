//! The organiser's box office over HTTP: searching orders (filters, cursor pages that never
//! skip or repeat an order while buyers keep buying), catalog edits (prices for later holds,
//! capacities never below what is held and sold, also while holds race), drafts and archived
//! sales hidden from the public, and the attendee export in CSV and JSON.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;

fn ids(orders: &[Value]) -> Vec<String> {
    orders
        .iter()
        .map(|o| o["order"]["id"].as_str().expect("id").to_string())
        .collect()
}

/// Alice buys 2 (paid), bob holds and checks out 1 (awaiting payment), carol's order is
/// cancelled: three orders in `event`, created at distinct times on the manual clock.
async fn three_orders(app: &TestApp, event: &str) -> [Value; 3] {
    let alice = app.buyer_token("alice");
    let paid = app.buy(&alice, event, 2).await;
    app.advance(Duration::from_secs(10));
    let bob = app.buyer_token("bob");
    let hold = app.place_hold(&bob, event, &items(0, 1), None).await.expect_id(201);
    let waiting = app.checkout(&bob, &hold, None).await.expect(201).clone();
    app.advance(Duration::from_secs(10));
    let carol = app.buyer_token("carol");
    let hold = app.place_hold(&carol, event, &items(0, 1), None).await.expect_id(201);
    let order = app.checkout(&carol, &hold, None).await.expect_id(201);
    let cancelled = app.admin_cancel(&order).await.expect(200).clone();
    [paid, waiting, cancelled]
}

#[tokio::test]
async fn orders_are_found_by_every_filter_and_paged_by_cursor() {
    let app = spawn_app(AppOptions::default().test_payments().manual_clock()).await;
    let first = app.simple_sale(100, json!({})).await;
    let second = app.simple_sale(100, json!({})).await;
    let t0 = app.time_in(Duration::ZERO);
    let [paid, waiting, cancelled] = three_orders(&app, &first).await;
    app.advance(Duration::from_secs(10));
    let t1 = app.time_in(Duration::ZERO);
    let other = app.buy(&app.buyer_token("alice"), &second, 1).await;
    let id = |o: &Value| o["id"].as_str().unwrap().to_string();

    let all = app.all_orders("", 50).await;
    assert_eq!(ids(&all), [id(&paid), id(&waiting), id(&cancelled), id(&other)]);
    assert_eq!(all[0]["buyer_id"], "alice");
    assert_eq!(all[0]["order"]["state"], "paid");
    assert!(
        all[0]["payments"].as_array().is_some_and(|p| !p.is_empty()),
        "the timeline: {}",
        all[0]
    );

    let find = |q: String| {
        let app = &app;
        async move { ids(&app.all_orders(&q, 50).await) }
    };
    assert_eq!(
        find(format!("event_id={first}")).await,
        [id(&paid), id(&waiting), id(&cancelled)]
    );
    assert_eq!(find(format!("event_id={second}")).await, [id(&other)]);
    assert_eq!(find("buyer_id=alice".into()).await, [id(&paid), id(&other)]);
    assert_eq!(find("state=awaiting_payment".into()).await, [id(&waiting)]);
    assert_eq!(find("state=cancelled&buyer_id=carol".into()).await, [id(&cancelled)]);
    assert_eq!(find("state=paid&buyer_id=bob".into()).await, Vec::<String>::new());
    let code = ticket_codes(&paid)[1].clone();
    assert_eq!(find(format!("ticket_code={code}")).await, [id(&paid)]);
    assert_eq!(find(format!("ticket_code={}", code.to_lowercase())).await, [id(&paid)]);
    // Times: alice's order at t0, bob's at t0 + 10 s, carol's at t0 + 20 s, the second sale's
    // at t1 = t0 + 30 s.
    assert_eq!(find(format!("created_after={t1}")).await, [id(&other)]);
    let mid = shift(&t0, 5);
    assert_eq!(
        find(format!("created_after={mid}&created_before={t1}")).await,
        [id(&waiting), id(&cancelled)]
    );

    // Pages of one: the same orders, in the same order, each once.
    assert_eq!(ids(&app.all_orders("", 1).await), ids(&all));
    let page = app.list_orders("limit=2").await;
    let page = page.expect(200);
    assert_eq!(page["orders"].as_array().map(Vec::len), Some(2));
    let cursor = page["next_cursor"].as_str().expect("a next page");
    let rest = app.list_orders(&format!("limit=50&after={cursor}")).await;
    assert_eq!(ids(rest.expect(200)["orders"].as_array().unwrap()), ids(&all[2..]));
    assert_eq!(rest.json["next_cursor"], Value::Null);

    for bad in [
        "limit=0",
        "limit=201",
        "after=nope",
        "after=AAAAAAAAAAAAAAAAAAAAAB",
        "state=lost",
        "event_id=42",
        "ticket_code=short",
        "created_after=yesterday",
        "buyer_id=",
        "colour=red",
    ] {
        app.list_orders(bad).await.expect_error(422, "invalid");
    }
    // An unknown sale has no orders.
    assert!(app.all_orders("event_id=evt_999", 10).await.is_empty());
}

/// An RFC 3339 time `secs` seconds after `t` (both UTC, whole seconds).
fn shift(t: &str, secs: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    let at = time::OffsetDateTime::parse(t, &Rfc3339).expect("time") + time::Duration::seconds(secs);
    at.format(&Rfc3339).expect("format")
}

#[tokio::test]
async fn pages_read_while_buyers_buy_never_skip_or_repeat_an_order() {
    let app = spawn_app(AppOptions::default()).await;
    let sales = [
        app.simple_sale(10_000, json!({})).await,
        app.simple_sale(10_000, json!({})).await,
    ];
    // Some orders before the reader starts.
    for (i, sale) in sales.iter().enumerate() {
        for b in 0..20 {
            let token = app.buyer_token(&format!("early-{i}-{b}"));
            let hold = app.place_hold(&token, sale, &items(0, 1), None).await.expect_id(201);
            app.checkout(&token, &hold, None).await.expect(201);
        }
    }
    let before: Vec<String> = ids(&app.all_orders("", 200).await);
    assert_eq!(before.len(), 40);

    // Buyers hold, check out and release while the reader pages through with small pages.
    let writers: Vec<_> = (0..4)
        .map(|w| {
            let api = (*app).clone();
            let sales = sales.clone();
            tokio::spawn(async move {
                for n in 0..40 {
                    let token = api.buyer_token(&format!("busy-{w}-{n}"));
                    let sale = &sales[n % 2];
                    let hold = api.place_hold(&token, sale, &items(0, 1), None).await.expect_id(201);
                    if n % 3 == 0 {
                        api.release_hold(&token, &hold).await.expect(200);
                    } else {
                        api.checkout(&token, &hold, None).await.expect(201);
                    }
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let page = app.list_orders(&format!("limit=3{after}")).await;
        let page = page.expect(200).clone();
        seen.extend(ids(page["orders"].as_array().unwrap()));
        match page["next_cursor"].as_str() {
            Some(c) => after = format!("&after={c}"),
            None => break,
        }
        tokio::task::yield_now().await;
    }
    for w in writers {
        w.await.expect("writer");
    }
    let unique: BTreeSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an order repeated: {seen:?}");
    for id in &before {
        assert!(
            unique.contains(id),
            "{id} existed before the reader started and was skipped"
        );
    }
    // In (sale, order) order, as every complete listing is.
    let all = ids(&app.all_orders("", 200).await);
    let in_listing: Vec<&String> = all.iter().filter(|id| unique.contains(id)).collect();
    assert_eq!(in_listing, seen.iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_new_price_is_for_later_holds_and_capacity_never_goes_below_what_is_taken() {
    let app = spawn_app(AppOptions::default().test_payments()).await;
    let sale = app.simple_sale(5, json!({})).await;
    let alice = app.buyer_token("alice");
    let held = app.place_hold(&alice, &sale, &items(0, 2), None).await;
    assert_eq!(held.expect(201)["total_minor"], 2000);
    let hold = held.json["id"].as_str().unwrap().to_string();

    let edited = app
        .edit_ticket_type(
            &sale,
            0,
            &json!({"name": "Early bird", "price_minor": 1500, "max_per_order": 2}),
        )
        .await;
    let edited = edited.expect(200);
    assert_eq!(
        (&edited["name"], &edited["price_minor"], &edited["max_per_order"]),
        (&json!("Early bird"), &json!(1500), &json!(2))
    );
    // Alice's hold keeps its price; a new hold pays the new one and meets the new maximum.
    let again = app.get_hold(&alice, &hold).await;
    assert_eq!(again.expect(200)["total_minor"], 2000);
    assert_eq!(again.json["items"][0]["unit_price_minor"], 1000);
    let bob = app.buyer_token("bob");
    app.place_hold(&bob, &sale, &items(0, 3), None)
        .await
        .expect_error(422, "invalid");
    let bobs = app.place_hold(&bob, &sale, &items(0, 1), None).await;
    assert_eq!(bobs.expect(201)["total_minor"], 1500);
    // `null` removes the maximum; an omitted field stays.
    let edited = app.edit_ticket_type(&sale, 0, &json!({"max_per_order": null})).await;
    assert_eq!(
        (&edited.expect(200)["max_per_order"], &edited.json["name"]),
        (&Value::Null, &json!("Early bird"))
    );

    // 3 held of 5: raise to 8, lower to exactly 3, not below.
    assert_eq!(app.edit_quota(&sale, 0, 8).await.expect(200)["available"], 5);
    let cut = app.edit_quota(&sale, 0, 3).await;
    assert_eq!(
        (cut.expect(200)["capacity"].as_u64(), cut.json["available"].as_u64()),
        (Some(3), Some(0))
    );
    let refused = app.edit_quota(&sale, 0, 2).await;
    let e = refused.expect_error(409, "conflict");
    assert_eq!(e["details"]["reason"], "capacity_below_usage");
    app.place_hold(&bob, &sale, &items(0, 1), None)
        .await
        .expect_error(409, "sold_out");
    // The order is paid at the price of its hold.
    let order = app.checkout(&alice, &hold, None).await.expect_id(201);
    let paid = app.pay(&alice, &order).await;
    assert_eq!(paid.expect(200)["total_minor"], 2000);

    // Unknown or malformed ids are 404; a closed or archived sale takes no edits.
    app.edit_quota(&sale, 1, 3).await.expect_error(404, "not_found");
    app.edit_quota(&sale, u32::MAX, 3).await.expect_error(404, "not_found");
    app.edit_ticket_type(&sale, 9, &json!({"name": "X"}))
        .await
        .expect_error(404, "not_found");
    app.edit_ticket_type("evt_999", 0, &json!({"name": "X"}))
        .await
        .expect_error(404, "not_found");
    app.edit_ticket_type(&sale, 0, &json!({"price_minor": -1}))
        .await
        .expect_error(422, "invalid");
    app.close(&sale).await.expect(200);
    let e = app.edit_quota(&sale, 0, 10).await;
    assert_eq!(e.expect_error(409, "conflict")["details"]["reason"], "sale_closed");
}

#[tokio::test]
async fn capacity_edits_racing_holds_never_oversell() {
    let app = spawn_app(AppOptions::default()).await;
    let sale = app.simple_sale(20, json!({})).await;
    let buyers: Vec<_> = (0..6)
        .map(|b| {
            let api = (*app).clone();
            let sale = sale.clone();
            tokio::spawn(async move {
                let token = api.buyer_token(&format!("racer-{b}"));
                let mut kept = 0u64;
                for n in 0..30 {
                    let r = api.place_hold(&token, &sale, &items(0, 1 + n % 3), None).await;
                    match r.status {
                        201 if n % 4 == 0 => {
                            api.release_hold(&token, r.json["id"].as_str().unwrap())
                                .await
                                .expect(200);
                        }
                        201 => kept += u64::from(1 + n % 3),
                        409 => {}
                        other => panic!("hold answered {other}: {}", r.text),
                    }
                }
                kept
            })
        })
        .collect();
    let organiser = {
        let api = (*app).clone();
        let sale = sale.clone();
        tokio::spawn(async move {
            let mut refused = 0;
            for cap in [30u32, 10, 25, 5, 40, 15, 60, 12, 50, 8].into_iter().cycle().take(40) {
                let r = api.edit_quota(&sale, 0, cap).await;
                match r.status {
                    200 => {}
                    409 => {
                        assert_eq!(r.json["error"]["details"]["reason"], "capacity_below_usage");
                        refused += 1;
                    }
                    other => panic!("capacity edit answered {other}: {}", r.text),
                }
                // The quota as the organiser sees it right after an edit: never over.
                let q = &api.stats(&sale).await["quotas"][0];
                let (held, sold, capacity) = (q["held"].as_u64(), q["sold"].as_u64(), q["capacity"].as_u64());
                assert!(held.unwrap() + sold.unwrap() <= capacity.unwrap(), "oversold: {q}");
            }
            refused
        })
    };
    let mut kept = 0;
    for b in buyers {
        kept += b.await.expect("buyer");
    }
    let refused = organiser.await.expect("organiser");
    let q = &app.stats(&sale).await["quotas"][0];
    assert_eq!(
        q["held"].as_u64(),
        Some(kept),
        "every kept hold counted, nothing more: {q}"
    );
    assert!(kept <= q["capacity"].as_u64().unwrap(), "oversold: {q}");
    println!("capacity edits refused as below usage: {refused} of 40; tickets held at the end: {kept}");
}

#[tokio::test]
async fn drafts_and_archived_sales_are_hidden_from_the_public() {
    let app = spawn_app(AppOptions::default()).await;
    let draft = app
        .create_sale(&json!({"event": {"name": "Soon", "currency": "EUR"}, "open": false}))
        .await;
    let open = app.simple_sale(10, json!({})).await;
    let listed = |r: &Resp| -> Vec<String> {
        let events = r.json["events"].as_array().expect("events");
        events.iter().map(|e| e["id"].as_str().unwrap().to_string()).collect()
    };
    app.get_sale(&draft).await.expect_error(404, "not_found");
    let list = app.list_sales().await;
    list.expect(200);
    assert_eq!(listed(&list), std::slice::from_ref(&open));
    // The organiser still sees the draft.
    assert_eq!(app.stats(&draft).await["status"], "draft");

    app.archive(&open).await.expect_error(409, "conflict");
    app.close(&open).await.expect(200);
    app.get_sale(&open).await.expect(200);
    let archived = app.archive(&open).await;
    assert_eq!(archived.expect(200)["status"], "archived");
    app.get_sale(&open).await.expect_error(404, "not_found");
    assert!(listed(&app.list_sales().await).is_empty());
    app.open(&open).await.expect_error(409, "conflict");
    assert_eq!(app.archive(&draft).await.expect(200)["status"], "archived");
    app.archive("evt_999").await.expect_error(404, "not_found");
}

fn csv_rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[tokio::test]
async fn the_attendee_list_is_exported_as_csv_and_json() {
    let app = spawn_app(AppOptions::default().test_payments()).await;
    let sale = app.simple_sale(100, json!({})).await;
    app.edit_ticket_type(&sale, 0, &json!({"name": "General, \"standing\""}))
        .await
        .expect(200);
    let first = app.buy(&app.buyer_token("alice"), &sale, 2).await;
    let second = app.buy(&app.buyer_token("bob"), &sale, 3).await;
    let (a, b) = (ticket_codes(&first), ticket_codes(&second));
    app.checkin(&sale, &a[0]).await.expect(200);
    app.refund(second["id"].as_str().unwrap(), Some(&[b[2].as_str()]))
        .await
        .expect(200);

    let csv = app.attendees(&sale, "", "text/csv").await;
    assert_eq!(csv.status, 200, "{}", csv.text);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    let mut reader = csv::Reader::from_reader(csv.text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(str::to_string).collect();
    assert_eq!(
        header,
        [
            "ticket_code",
            "ticket_type_id",
            "ticket_type",
            "buyer_id",
            "order_id",
            "paid_at",
            "checked_in_at"
        ]
    );
    let rows: Vec<Vec<String>> = reader
        .records()
        .map(|r| r.unwrap().iter().map(str::to_string).collect())
        .collect();
    let codes: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(
        codes,
        [&a[0], &a[1], &b[0], &b[1]],
        "refunded tickets are not attendees"
    );
    assert_eq!(rows[0][2], "General, \"standing\"", "quoted as CSV");
    assert_eq!((rows[0][3].as_str(), rows[2][3].as_str()), ("alice", "bob"));
    assert_eq!(rows[0][4], first["id"].as_str().unwrap());
    assert_eq!(rows[0][5], first["paid_at"].as_str().unwrap());
    assert!(!rows[0][6].is_empty() && rows[1][6].is_empty(), "checked in: {rows:?}");
    assert_eq!(
        csv_rows(&app.attendees(&sale, "?format=csv", "*/*").await.text).len(),
        5
    );

    let json = app.attendees(&sale, "", "application/json").await;
    let list = json.expect(200)["attendees"].as_array().expect("attendees").clone();
    assert_eq!(json.header("content-type"), Some("application/json"));
    assert_eq!(list.len(), 4);
    assert_eq!(list[0]["ticket_code"], a[0].as_str());
    assert_eq!(list[0]["ticket_type"], "General, \"standing\"");
    assert_eq!(list[0]["checked_in_at"].as_str().map(|s| s.ends_with('Z')), Some(true));
    assert_eq!(list[1]["checked_in_at"], Value::Null);
    let forced = app.attendees(&sale, "?format=json", "text/csv").await;
    assert_eq!(forced.expect(200)["attendees"].as_array().map(Vec::len), Some(4));

    // A sale without tickets: the header alone, or an empty list.
    let empty = app.simple_sale(10, json!({})).await;
    assert_eq!(
        app.attendees(&empty, "?format=csv", "*/*").await.text.lines().count(),
        1
    );
    assert_eq!(
        app.attendees(&empty, "", "*/*").await.expect(200)["attendees"],
        json!([])
    );
    app.attendees("evt_999", "", "*/*").await.expect_error(404, "not_found");
    app.attendees(&sale, "?format=xml", "*/*")
        .await
        .expect_error(422, "invalid");
    // The door's key may export; a buyer may not.
    let (_, door) = app.api_key(&["door"]).await;
    let r = app
        .send(
            reqwest::Method::GET,
            &format!("/v1/admin/events/{sale}/attendees"),
            Some(&door),
            None,
            &[],
        )
        .await;
    assert_eq!(r.expect(200)["attendees"].as_array().map(Vec::len), Some(4));
    let alice = app.buyer_token("alice");
    let r = app
        .send(
            reqwest::Method::GET,
            &format!("/v1/admin/events/{sale}/attendees"),
            Some(&alice),
            None,
            &[],
        )
        .await;
    r.expect_error(403, "forbidden");
}

#[tokio::test]
async fn a_retried_admin_create_or_edit_answers_as_the_first_did() {
    let app = spawn_app(AppOptions::default()).await;
    let sale = app
        .create_sale(&json!({"event": {"name": "Keys", "currency": "EUR"}, "open": false}))
        .await;
    let keyed = |key: &'static str| app.with_header("idempotency-key", key);
    let general = json!({"name": "General", "price_minor": 1000});
    let first = keyed("tt-1").create_ticket_type(&sale, &general).await;
    assert_eq!(first.expect(201)["id"], 0);
    let again = keyed("tt-1").create_ticket_type(&sale, &general).await;
    assert_eq!(again.expect(201)["id"], 0, "the same type, not a second one");
    let other = json!({"name": "VIP", "price_minor": 5000});
    keyed("tt-1")
        .create_ticket_type(&sale, &other)
        .await
        .expect_error(409, "idempotency_conflict");
    assert_eq!(
        keyed("tt-2").create_ticket_type(&sale, &other).await.expect(201)["id"],
        1
    );

    let quota = json!({"name": "All", "capacity": 10, "ticket_type_ids": [0, 1]});
    assert_eq!(keyed("q-1").create_quota(&sale, &quota).await.expect(201)["id"], 0);
    assert_eq!(keyed("q-1").create_quota(&sale, &quota).await.expect(201)["id"], 0);
    // A key is the organiser's per sale and request kind: reused for a quota it conflicts.
    keyed("tt-1")
        .create_quota(&sale, &quota)
        .await
        .expect_error(409, "idempotency_conflict");
    let stats = app.stats(&sale).await;
    assert_eq!(stats["quotas"].as_array().map(Vec::len), Some(1));
    assert_eq!(stats["ticket_types"].as_array().map(Vec::len), Some(2));

    // Edits: a retry changes nothing more (the capacity was changed since by another request).
    assert_eq!(
        keyed("cap-20").edit_quota(&sale, 0, 20).await.expect(200)["capacity"],
        20
    );
    assert_eq!(app.edit_quota(&sale, 0, 30).await.expect(200)["capacity"], 30);
    assert_eq!(
        keyed("cap-20").edit_quota(&sale, 0, 20).await.expect(200)["capacity"],
        30
    );
    keyed("cap-20")
        .edit_quota(&sale, 0, 25)
        .await
        .expect_error(409, "idempotency_conflict");
    let price = json!({"price_minor": 1200});
    keyed("price").edit_ticket_type(&sale, 0, &price).await.expect(200);
    keyed("price")
        .edit_ticket_type(&sale, 0, &json!({"price_minor": 1300}))
        .await
        .expect_error(409, "idempotency_conflict");
    let feed = app.feed().await;
    let edits = feed.iter().filter(|e| e["type"] == "ticket_type_edited").count();
    assert_eq!(edits, 1, "one edit in the log");
    // Remembered across a restart (the key is in the log).
    let mut app = app;
    app.restart().await;
    let keyed = |key: &'static str| app.with_header("idempotency-key", key);
    assert_eq!(
        keyed("tt-1").create_ticket_type(&sale, &general).await.expect(201)["id"],
        0
    );
    keyed("q-1")
        .create_quota(&sale, &json!({"name": "Other", "capacity": 1, "ticket_type_ids": [0]}))
        .await
        .expect_error(409, "idempotency_conflict");
    keyed("")
        .create_ticket_type(&sale, &general)
        .await
        .expect_error(422, "invalid");
}
