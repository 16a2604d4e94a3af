//! Placing orders, decided: given the products a batch names (as locked in its transaction) and
//! the orders in arrival order, which orders the stock covers, what each costs, the rows each
//! adds (order, lines, and a checkout's payment session, each born in its state) and how much
//! stock each product gives. The repository applies the plan; it decides nothing.
//!
//! Every order is all or nothing: an order naming an unknown or deleted product, wanting more
//! than is left, or whose total would leave `i64` takes nothing, and the others are not affected.

use std::collections::{BTreeMap, HashMap};

use time::PrimitiveDateTime;

use super::money::{self, Overflow};
use super::order::OrderStatus;
use super::payment::{Charge, SessionBirth};
use crate::models::{OrderItemRow, OrderRow, PaymentRow};

/// A line to buy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WantedLine {
    /// The product.
    pub product_id: i64,
    /// How many (1..=999).
    pub quantity: i32,
}

/// An order to create: what the caller fixed before the placement (the rest is decided here).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewOrder {
    /// Its id.
    pub id: i64,
    /// The buyer.
    pub user_id: i64,
    /// The shipping address (JSON).
    pub address: String,
    /// The note.
    pub note: Option<String>,
    /// Its payment deadline.
    pub expires_at: PrimitiveDateTime,
}

/// A key to bind to what a request created, inside the same transaction.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdempotencyBinding {
    /// The caller.
    pub user_id: i64,
    /// The `Idempotency-Key`.
    pub key: String,
}

/// One order to place.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Placement {
    /// The order's id, buyer, address, note and deadline.
    pub order: NewOrder,
    /// What it buys, in the order the buyer gave (each product once).
    pub lines: Vec<WantedLine>,
    /// When it was asked for (its `created_at`).
    pub now: PrimitiveDateTime,
    /// The `Idempotency-Key` to bind to the order, inside the same transaction.
    pub idem: Option<IdempotencyBinding>,
    /// What a checkout adds to the order in the same transaction.
    pub checkout: Option<CheckoutPart>,
    /// In a cluster, the right to write the buyer's shard, checked in the same transaction.
    pub fence: Option<super::Fence>,
}

/// The rest of a checkout: the buyer's cart is emptied and a payment session opened (and, when a
/// card came with the checkout, charged) with the order, so a purchase is one commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckoutPart {
    /// The cart must still be at this version (it holds exactly the order's lines).
    pub cart_version: i64,
    /// The session's id.
    pub session_id: i64,
    /// The session's deadline.
    pub session_expires_at: PrimitiveDateTime,
    /// What the payment gateway answered for the checkout's card, if one was given.
    pub charge: Option<Charge>,
}

/// A product as a placement sees it.
#[derive(Debug, Clone, PartialEq, Eq, diesel::Queryable)]
pub struct Stocked {
    /// Its id.
    pub id: i64,
    /// Units left.
    pub stock: i64,
    /// Deleted products cannot be bought.
    pub deleted: bool,
    /// Copied to the order line.
    pub name: String,
    /// Copied to the order line.
    pub price_cents: i64,
}

/// Why one order of a batch is not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A line names a product that does not exist or was deleted.
    #[error("product {0} not found")]
    ProductNotFound(i64),
    /// A line wants more than is left.
    #[error("product {product_id}: only {available} available")]
    InsufficientStock {
        /// The product short of stock.
        product_id: i64,
        /// What is left of it for this order.
        available: i64,
    },
    /// A total left `i64` (impossible within the API's bounds: a bug or an old row).
    #[error(transparent)]
    Overflow(#[from] Overflow),
}

/// The rows one placed order adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Born {
    /// The order.
    pub order: OrderRow,
    /// Its lines, in the buyer's order.
    pub items: Vec<OrderItemRow>,
    /// A checkout's payment session.
    pub payment: Option<PaymentRow>,
}

/// What a batch will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// For each order, in the batch's order: the rows it adds, or why it is refused.
    pub orders: Vec<Result<Born, Refused>>,
    /// Units each product gives (product id ascending; products giving none are left out).
    pub takes: Vec<(i64, i64)>,
}

/// Decides a batch: `products` as locked (any order), `batch` in arrival order.
pub fn plan<'a>(products: &[Stocked], batch: impl IntoIterator<Item = &'a Placement>) -> Plan {
    let by_id: HashMap<i64, &Stocked> = products.iter().map(|p| (p.id, p)).collect();
    let mut left: HashMap<i64, i64> = products.iter().map(|p| (p.id, p.stock)).collect();
    let orders = batch
        .into_iter()
        .map(|p| {
            let wanted = covered(p, &by_id, &left)?;
            let born = born(p, &by_id)?;
            for (product_id, quantity) in wanted {
                if let Some(stock) = left.get_mut(&product_id) {
                    *stock -= quantity;
                }
            }
            Ok(born)
        })
        .collect();
    let mut takes: Vec<(i64, i64)> = products
        .iter()
        .map(|p| (p.id, p.stock - left.get(&p.id).copied().unwrap_or(p.stock)))
        .filter(|(_, taken)| *taken > 0)
        .collect();
    takes.sort_unstable();
    Plan { orders, takes }
}

/// The units `p` takes per product (id order), if what is `left` covers every one of them.
fn covered(
    p: &Placement,
    products: &HashMap<i64, &Stocked>,
    left: &HashMap<i64, i64>,
) -> Result<BTreeMap<i64, i64>, Refused> {
    let mut wanted: BTreeMap<i64, i64> = BTreeMap::new();
    for l in &p.lines {
        *wanted.entry(l.product_id).or_default() += i64::from(l.quantity);
    }
    for (&product_id, &quantity) in &wanted {
        match (products.get(&product_id), left.get(&product_id)) {
            (Some(s), Some(&available)) if !s.deleted => {
                if available < quantity {
                    return Err(Refused::InsufficientStock {
                        product_id,
                        available,
                    });
                }
            }
            _ => return Err(Refused::ProductNotFound(product_id)),
        }
    }
    Ok(wanted)
}

/// The rows `p` adds, priced from `products`, each born in its state.
fn born(p: &Placement, products: &HashMap<i64, &Stocked>) -> Result<Born, Overflow> {
    let items = p
        .lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let (name, price) = products
                .get(&line.product_id)
                .map(|s| (s.name.clone(), s.price_cents))
                .unwrap_or_default();
            Ok(OrderItemRow {
                order_id: p.order.id,
                position: i32::try_from(i).unwrap_or(i32::MAX),
                product_id: line.product_id,
                name,
                unit_price_cents: price,
                quantity: line.quantity,
                line_total_cents: money::line_total(price, line.quantity)?,
            })
        })
        .collect::<Result<Vec<OrderItemRow>, Overflow>>()?;
    let total_cents = money::sum(items.iter().map(|i| i.line_total_cents))?;
    let charge = p.checkout.as_ref().and_then(|c| c.charge.as_ref());
    let status = OrderStatus::at_birth(charge);
    let paid = status == OrderStatus::Paid;
    let order = OrderRow {
        id: p.order.id,
        user_id: p.order.user_id,
        status,
        total_cents,
        address: p.order.address.clone(),
        note: p.order.note.clone(),
        created_at: p.now,
        updated_at: p.now,
        expires_at: p.order.expires_at,
        paid_at: paid.then_some(p.now),
        cancelled_at: None,
        cancel_reason: None,
        version: 1,
    };
    let payment = p.checkout.as_ref().map(|c| {
        let birth = SessionBirth::of(c.charge.as_ref());
        PaymentRow {
            id: c.session_id,
            order_id: p.order.id,
            user_id: p.order.user_id,
            amount_cents: total_cents,
            status: birth.status,
            card_last4: birth.card_last4,
            last_error: birth.last_error,
            attempts: birth.attempts,
            created_at: p.now,
            updated_at: p.now,
            expires_at: c.session_expires_at,
            succeeded_at: paid.then_some(p.now),
            cancelled_at: None,
            version: 1,
        }
    });
    Ok(Born {
        order,
        items,
        payment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::payment::PaymentStatus;

    fn product(id: i64, stock: i64) -> Stocked {
        Stocked {
            id,
            stock,
            deleted: false,
            name: format!("p{id}"),
            price_cents: 100,
        }
    }

    fn order(id: i64, lines: &[(i64, i32)]) -> Placement {
        let now = crate::clock::now();
        Placement {
            order: NewOrder {
                id,
                user_id: 1,
                address: "{}".into(),
                note: None,
                expires_at: now,
            },
            lines: lines
                .iter()
                .map(|&(product_id, quantity)| WantedLine {
                    product_id,
                    quantity,
                })
                .collect(),
            now,
            idem: None,
            checkout: None,
            fence: None,
        }
    }

    fn refusal(plan: &Plan, i: usize) -> Option<&Refused> {
        plan.orders[i].as_ref().err()
    }

    #[test]
    fn orders_are_covered_in_arrival_order_all_or_nothing() {
        let products = [product(1, 5), product(2, 1)];
        let batch = [
            order(10, &[(1, 2)]),
            order(11, &[(1, 2), (2, 2)]), // short of product 2: takes nothing
            order(12, &[(1, 3)]),         // 3 of 1 are still there
            order(13, &[(2, 1)]),
            order(14, &[(1, 1)]), // none left
        ];
        let plan = plan(&products, &batch);
        assert!(plan.orders[0].is_ok() && plan.orders[2].is_ok() && plan.orders[3].is_ok());
        let short = |product_id, available| Refused::InsufficientStock {
            product_id,
            available,
        };
        assert_eq!(refusal(&plan, 1), Some(&short(2, 1)));
        assert_eq!(refusal(&plan, 4), Some(&short(1, 0)));
        assert_eq!(plan.takes, vec![(1, 5), (2, 1)]);
    }

    #[test]
    fn unknown_and_deleted_products_are_not_found_and_take_nothing() {
        let mut gone = product(2, 5);
        gone.deleted = true;
        let products = [product(1, 5), gone];
        let batch = [order(10, &[(1, 1), (9, 1)]), order(11, &[(1, 1), (2, 1)])];
        let plan = plan(&products, &batch);
        assert_eq!(refusal(&plan, 0), Some(&Refused::ProductNotFound(9)));
        assert_eq!(refusal(&plan, 1), Some(&Refused::ProductNotFound(2)));
        assert!(plan.takes.is_empty());
    }

    #[test]
    fn the_first_short_line_by_product_id_is_the_one_reported() {
        let plan = plan(
            &[product(1, 0), product(2, 0)],
            &[order(10, &[(2, 1), (1, 1)])],
        );
        assert!(matches!(
            refusal(&plan, 0),
            Some(Refused::InsufficientStock { product_id: 1, .. })
        ));
    }

    #[test]
    fn an_order_whose_total_overflows_takes_nothing_and_the_next_is_placed() {
        let mut dear = product(1, 10);
        dear.price_cents = i64::MAX;
        let plan = plan(
            &[dear, product(2, 1)],
            &[order(10, &[(1, 2)]), order(11, &[(2, 1)])],
        );
        assert_eq!(refusal(&plan, 0), Some(&Refused::Overflow(Overflow)));
        assert_eq!(plan.takes, vec![(2, 1)]);
    }

    #[test]
    fn rows_are_priced_and_born_in_their_state() {
        let mut p = order(10, &[(2, 3), (1, 1)]);
        let plan_of = |p: &Placement| plan(&[product(1, 5), product(2, 5)], [p]).orders.remove(0);
        let born = plan_of(&p).unwrap();
        assert_eq!(born.order.total_cents, 400);
        assert_eq!(born.order.status, OrderStatus::PendingPayment);
        let positions: Vec<(i32, i64, i64)> = born
            .items
            .iter()
            .map(|i| (i.position, i.product_id, i.line_total_cents))
            .collect();
        assert_eq!(positions, vec![(0, 2, 300), (1, 1, 100)]);
        assert!(born.payment.is_none());

        p.checkout = Some(CheckoutPart {
            cart_version: 3,
            session_id: 20,
            session_expires_at: p.now,
            charge: Some(Charge::Approved {
                last4: "4242".into(),
            }),
        });
        let born = plan_of(&p).unwrap();
        assert_eq!(born.order.status, OrderStatus::Paid);
        assert_eq!(born.order.paid_at, Some(p.now));
        let session = born.payment.unwrap();
        assert_eq!(session.status, PaymentStatus::Succeeded);
        assert_eq!((session.amount_cents, session.order_id), (400, 10));
        assert_eq!(session.succeeded_at, Some(p.now));
    }
}
