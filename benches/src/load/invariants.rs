//! The invariants checked after every run, read back through the API: the products' stock as the
//! admin, and every seeded customer's orders and their payment sessions as that customer.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::bounded;
use super::client::Api;
use super::report::InvariantReport;
use super::scenarios::Ack;
use super::seed::{Product, Seeded, User};

/// How late past its `expires_at` an order may still be `pending_payment`.
const EXPIRY_GRACE_SECS: i64 = 2;

/// An order as read back.
#[derive(Debug, Clone)]
pub struct OrderState {
    /// Its id.
    pub id: String,
    /// Its customer's index.
    pub user: usize,
    /// `pending_payment`, `paid` or `cancelled`.
    pub status: String,
    /// `(product_id, quantity)` per line.
    pub items: Vec<(String, i64)>,
    /// Its payment deadline.
    pub expires_at: Option<OffsetDateTime>,
    /// When it was read in this state (the list request's start).
    pub seen_at: OffsetDateTime,
    /// The statuses of its payment sessions.
    pub payments: Vec<String>,
}

/// What was read back.
#[derive(Debug, Default)]
pub struct State {
    /// Current stock by product id.
    pub stock: HashMap<String, i64>,
    /// Every order of every seeded customer.
    pub orders: Vec<OrderState>,
    /// Reads that failed.
    pub failures: Vec<String>,
}

/// Reads every page of a list at `path` (which already has its `?...`): each item with the time
/// its page was asked for.
async fn all_pages(
    api: &Api,
    path: &str,
    token: &str,
) -> Result<Vec<(Value, OffsetDateTime)>, String> {
    let mut items = Vec::new();
    for page in 1.. {
        let asked_at = OffsetDateTime::now_utc();
        let r = api
            .get(&format!("{path}&page={page}&page_size=100"), Some(token))
            .await;
        if r.status != 200 {
            return Err(format!("GET {path} page {page}: {}", r.describe()));
        }
        let v = r.json();
        let total = v.get("total").and_then(Value::as_u64);
        let Some(batch) = v.get("items").and_then(Value::as_array) else {
            return Err(format!("GET {path} page {page}: no items"));
        };
        let done = batch.is_empty();
        items.extend(batch.iter().map(|item| (item.clone(), asked_at)));
        if done || total.is_some_and(|t| items.len() as u64 >= t) {
            break;
        }
    }
    Ok(items)
}

fn parse_order(user: usize, v: &Value, seen_at: OffsetDateTime) -> Option<OrderState> {
    let items = v
        .get("items")?
        .as_array()?
        .iter()
        .map(|line| {
            Some((
                line.get("product_id")?.as_str()?.to_owned(),
                line.get("quantity")?.as_i64()?,
            ))
        })
        .collect::<Option<Vec<_>>>()?;
    Some(OrderState {
        id: v.get("id")?.as_str()?.to_owned(),
        user,
        status: v.get("status")?.as_str()?.to_owned(),
        items,
        expires_at: v
            .get("expires_at")
            .and_then(Value::as_str)
            .and_then(|s| OffsetDateTime::parse(s, &Rfc3339).ok()),
        seen_at,
        payments: Vec::new(),
    })
}

/// Reads the stock of `products` (as the admin) and the orders and payments of `users`.
pub async fn read_state(
    api: &Api,
    admin_token: &str,
    products: &[Product],
    users: &[User],
) -> State {
    let mut state = State::default();
    let admin = Arc::new(admin_token.to_owned());
    let stocks = bounded(products.to_vec(), 16, |p| {
        let api = api.clone();
        let admin = admin.clone();
        async move {
            let r = api
                .get(&format!("/api/v1/products/{}", p.id), Some(&admin))
                .await;
            match r.json().get("stock").and_then(Value::as_i64) {
                Some(s) if r.status == 200 => Ok((p.id, s)),
                _ => Err(format!("GET /api/v1/products/{}: {}", p.id, r.describe())),
            }
        }
    })
    .await;
    for s in stocks {
        match s {
            Ok((id, stock)) => {
                state.stock.insert(id, stock);
            }
            Err(e) => state.failures.push(e),
        }
    }

    let listed = bounded(users.to_vec(), 8, |u| {
        let api = api.clone();
        async move {
            let items = all_pages(&api, "/api/v1/orders?", &u.token).await?;
            items
                .iter()
                .map(|(v, seen_at)| {
                    parse_order(u.index, v, *seen_at)
                        .ok_or_else(|| format!("an order of {} that does not parse: {v}", u.email))
                })
                .collect::<Result<Vec<_>, _>>()
        }
    })
    .await;
    let mut orders = Vec::new();
    for l in listed {
        match l {
            Ok(o) => orders.extend(o),
            Err(e) => state.failures.push(e),
        }
    }

    let tokens: Arc<Vec<String>> = Arc::new(users.iter().map(|u| u.token.clone()).collect());
    let index_of: Arc<HashMap<usize, usize>> = Arc::new(
        users
            .iter()
            .enumerate()
            .map(|(pos, u)| (u.index, pos))
            .collect(),
    );
    let with_payments = bounded(orders, 16, |mut o| {
        let api = api.clone();
        let tokens = tokens.clone();
        let index_of = index_of.clone();
        async move {
            let token = &tokens[index_of[&o.user]];
            let path = format!("/api/v1/orders/{}/payments?", o.id);
            let payments = all_pages(&api, &path, token).await?;
            o.payments = payments
                .iter()
                .map(|(p, _)| {
                    p.get("status")
                        .and_then(Value::as_str)
                        .unwrap_or("?")
                        .to_owned()
                })
                .collect();
            Ok::<_, String>(o)
        }
    })
    .await;
    for o in with_payments {
        match o {
            Ok(o) => state.orders.push(o),
            Err(e) => state.failures.push(e),
        }
    }
    state
}

fn verdict(name: &str, problems: &[String], ok_detail: String) -> InvariantReport {
    InvariantReport {
        name: name.to_owned(),
        pass: problems.is_empty(),
        detail: if problems.is_empty() {
            ok_detail
        } else {
            let mut d = format!("{} violation(s): ", problems.len());
            d.push_str(
                &problems
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            if problems.len() > 5 {
                d.push_str("; ...");
            }
            d
        },
    }
}

/// Checks every invariant against what was read. `acks` are the orders clients were answered
/// 201 for; `sold_out_seen` how many flash-sale clients were told the product is sold out.
pub fn check(
    seeded: &Seeded,
    state: &State,
    acks: &[Ack],
    sold_out_seen: u64,
) -> Vec<InvariantReport> {
    let mut out = Vec::new();
    out.push(verdict(
        "state_readable",
        &state.failures,
        format!(
            "{} products, {} orders and their payments read back",
            state.stock.len(),
            state.orders.len()
        ),
    ));
    if !state.failures.is_empty() {
        // Whatever follows would judge partial data.
        for name in [
            "stock_non_negative",
            "stock_conserved",
            "flash_sale_no_oversell",
            "one_payment_per_paid_order",
            "no_overdue_pending_orders",
            "acknowledged_orders_durable",
        ] {
            out.push(InvariantReport {
                name: name.to_owned(),
                pass: false,
                detail: "not checked: the state could not be read back".to_owned(),
            });
        }
        return out;
    }

    let all_products: Vec<&Product> = seeded
        .products
        .iter()
        .chain(std::iter::once(&seeded.flash))
        .collect();

    // Units held by live (pending_payment or paid) orders, per product.
    let mut held: HashMap<&str, i64> = HashMap::new();
    let mut live_orders = 0;
    for o in &state.orders {
        if o.status == "pending_payment" || o.status == "paid" {
            live_orders += 1;
            for (p, q) in &o.items {
                *held.entry(p.as_str()).or_default() += q;
            }
        }
    }

    let negative: Vec<String> = state
        .stock
        .iter()
        .filter(|(_, s)| **s < 0)
        .map(|(id, s)| format!("product {id} has stock {s}"))
        .collect();
    let lowest = state.stock.values().min().copied().unwrap_or(0);
    out.push(verdict(
        "stock_non_negative",
        &negative,
        format!("{} products, lowest stock {lowest}", state.stock.len()),
    ));

    let mut unbalanced = Vec::new();
    let mut units = 0;
    for p in &all_products {
        let now = state.stock[&p.id];
        let h = held.get(p.id.as_str()).copied().unwrap_or(0);
        units += h;
        if p.initial_stock != now + h {
            unbalanced.push(format!(
                "product {}: initial {} != current {now} + held {h}",
                p.id, p.initial_stock
            ));
        }
    }
    out.push(verdict(
        "stock_conserved",
        &unbalanced,
        format!(
            "{} products: initial = current + {units} units held by {live_orders} pending or paid orders",
            all_products.len()
        ),
    ));

    let flash = &seeded.flash;
    let sold = held.get(flash.id.as_str()).copied().unwrap_or(0);
    let flash_now = state.stock[&flash.id];
    let acked_flash: std::collections::HashSet<&str> = state
        .orders
        .iter()
        .filter(|o| o.items.iter().any(|(p, _)| *p == flash.id))
        .map(|o| o.id.as_str())
        .collect();
    let acked_flash = acks
        .iter()
        .filter(|a| acked_flash.contains(a.order_id.as_str()))
        .count() as i64;
    let mut oversold = Vec::new();
    if sold > flash.initial_stock {
        oversold.push(format!(
            "{sold} units held by orders, stock was {}",
            flash.initial_stock
        ));
    }
    if acked_flash > flash.initial_stock {
        oversold.push(format!(
            "{acked_flash} orders acknowledged, stock was {}",
            flash.initial_stock
        ));
    }
    if flash_now < 0 {
        oversold.push(format!("stock is {flash_now}"));
    }
    out.push(verdict(
        "flash_sale_no_oversell",
        &oversold,
        format!(
            "{acked_flash} orders acknowledged, {sold} of {} units held by pending or paid orders \
             (stock now {flash_now}); {sold_out_seen} buyer(s) told it is sold out",
            flash.initial_stock
        ),
    ));

    let mut bad_payments = Vec::new();
    let (mut paid, mut others) = (0, 0);
    for o in &state.orders {
        let succeeded = o.payments.iter().filter(|s| *s == "succeeded").count();
        if o.status == "paid" {
            paid += 1;
            if succeeded != 1 {
                bad_payments.push(format!(
                    "paid order {} has {succeeded} succeeded payments",
                    o.id
                ));
            }
        } else {
            others += 1;
            if succeeded != 0 {
                bad_payments.push(format!(
                    "{} order {} has {succeeded} succeeded payments",
                    o.status, o.id
                ));
            }
        }
    }
    out.push(verdict(
        "one_payment_per_paid_order",
        &bad_payments,
        format!(
            "{paid} paid orders with exactly one succeeded payment; {others} other orders with none"
        ),
    ));

    let grace = time::Duration::seconds(EXPIRY_GRACE_SECS);
    let mut overdue = Vec::new();
    let mut pending = 0;
    for o in &state.orders {
        if o.status != "pending_payment" {
            continue;
        }
        pending += 1;
        match o.expires_at {
            Some(e) if e + grace < o.seen_at => overdue.push(format!(
                "order {} still pending {:.1} s past its expires_at",
                o.id,
                (o.seen_at - e).as_seconds_f64()
            )),
            Some(_) => {}
            None => overdue.push(format!("order {} has no readable expires_at", o.id)),
        }
    }
    out.push(verdict(
        "no_overdue_pending_orders",
        &overdue,
        format!("{pending} pending orders, none more than {EXPIRY_GRACE_SECS} s past its deadline"),
    ));

    let by_id: HashMap<&str, &OrderState> =
        state.orders.iter().map(|o| (o.id.as_str(), o)).collect();
    let mut lost = Vec::new();
    let mut acked_paid = 0;
    for a in acks {
        match by_id.get(a.order_id.as_str()) {
            None => lost.push(format!(
                "order {} was acknowledged but is not listed",
                a.order_id
            )),
            Some(o) if o.user != a.user => lost.push(format!(
                "order {} is listed for another customer",
                a.order_id
            )),
            Some(o) if a.paid && o.status != "paid" => lost.push(format!(
                "order {} was acknowledged paid but is {}",
                a.order_id, o.status
            )),
            Some(_) => acked_paid += usize::from(a.paid),
        }
    }
    out.push(verdict(
        "acknowledged_orders_durable",
        &lost,
        format!(
            "{} acknowledged orders listed ({acked_paid} acknowledged paid, and paid)",
            acks.len()
        ),
    ));
    out
}

/// Counts orders per status (for the summary line).
pub fn status_counts(state: &State) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for o in &state.orders {
        *m.entry(o.status.clone()).or_default() += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn product(id: &str, stock: i64) -> Product {
        Product {
            id: id.to_owned(),
            initial_stock: stock,
        }
    }

    fn seeded() -> Seeded {
        Seeded {
            admin_token: String::new(),
            users: Vec::new(),
            products: vec![product("1", 100)],
            flash: product("9", 2),
            elapsed: Duration::ZERO,
        }
    }

    fn order(id: &str, status: &str, items: &[(&str, i64)], payments: &[&str]) -> OrderState {
        OrderState {
            id: id.to_owned(),
            user: 0,
            status: status.to_owned(),
            items: items.iter().map(|(p, q)| ((*p).to_owned(), *q)).collect(),
            expires_at: Some(OffsetDateTime::now_utc() + time::Duration::minutes(15)),
            seen_at: OffsetDateTime::now_utc(),
            payments: payments.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn ack(id: &str, paid: bool) -> Ack {
        Ack {
            user: 0,
            order_id: id.to_owned(),
            paid,
        }
    }

    fn failed(checks: &[InvariantReport]) -> Vec<&str> {
        checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| c.name.as_str())
            .collect()
    }

    fn state(stock: &[(&str, i64)], orders: Vec<OrderState>) -> State {
        State {
            stock: stock.iter().map(|(p, s)| ((*p).to_owned(), *s)).collect(),
            orders,
            failures: Vec::new(),
        }
    }

    #[test]
    fn a_consistent_state_passes() {
        let st = state(
            &[("1", 95), ("9", 0)],
            vec![
                order("a", "paid", &[("1", 3), ("9", 1)], &["succeeded"]),
                order(
                    "b",
                    "pending_payment",
                    &[("1", 2), ("9", 1)],
                    &["cancelled"],
                ),
                order("c", "cancelled", &[("1", 7)], &["expired"]),
            ],
        );
        let checks = check(&seeded(), &st, &[ack("a", true), ack("b", false)], 1);
        assert_eq!(failed(&checks), Vec::<&str>::new(), "{checks:?}");
        assert_eq!(checks.len(), 7);
    }

    #[test]
    fn each_violation_is_caught() {
        // Stock not conserved, an oversold flash sale, a paid order charged twice, a cancelled
        // one charged, an overdue pending order and an acknowledged order that is missing.
        let mut overdue = order("d", "pending_payment", &[("1", 1)], &[]);
        overdue.expires_at = Some(OffsetDateTime::now_utc() - time::Duration::seconds(10));
        let st = state(
            &[("1", 90), ("9", -1)],
            vec![
                order("a", "paid", &[("9", 3)], &["succeeded", "succeeded"]),
                order("c", "cancelled", &[("1", 1)], &["succeeded"]),
                overdue,
            ],
        );
        let checks = check(&seeded(), &st, &[ack("a", true), ack("zz", false)], 0);
        assert_eq!(
            failed(&checks),
            vec![
                "stock_non_negative",
                "stock_conserved",
                "flash_sale_no_oversell",
                "one_payment_per_paid_order",
                "no_overdue_pending_orders",
                "acknowledged_orders_durable",
            ]
        );
    }

    #[test]
    fn unreadable_state_fails_everything() {
        let mut st = state(&[("1", 100), ("9", 2)], Vec::new());
        st.failures.push("GET /api/v1/orders: 503".to_owned());
        let checks = check(&seeded(), &st, &[], 0);
        assert!(checks.iter().all(|c| !c.pass));
    }
}
