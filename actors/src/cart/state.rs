//! The cart's rules as a plain value with no I/O: what each operation changes, or why it is refused.

use mall_db::repo::carts::{LineWrite, StoredCart, StoredLine};
use mall_db::repo::orders::WantedLine;
use time::PrimitiveDateTime;

use mall_db::domain::cart::Quantity;
pub use mall_db::domain::cart::{MAX_LINES, MAX_QUANTITY};

use super::error::CartError;

fn invalid(e: mall_db::domain::cart::OutOfRange) -> CartError {
    CartError::InvalidQuantity(e.to_string())
}

/// A cart as its actor holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CartState {
    /// The stored version; `None` until the cart exists.
    pub version: Option<i64>,
    /// Last change; `None` until the cart exists.
    pub updated_at: Option<PrimitiveDateTime>,
    /// Lines by position.
    pub lines: Vec<StoredLine>,
}

/// An operation on a cart.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CartOp {
    /// Make sure the cart exists.
    Create,
    /// Read it (creating it if it does not exist yet).
    Get,
    /// Add `quantity` of a product (adds up with an existing line).
    Add {
        /// The product.
        product_id: i64,
        /// 1..=999 (anything else is refused here).
        quantity: i64,
    },
    /// Set a line's quantity; 0 removes it.
    Set {
        /// The product.
        product_id: i64,
        /// 0..=999 (anything else is refused here).
        quantity: i64,
    },
    /// Remove a line.
    Remove {
        /// The product.
        product_id: i64,
    },
    /// Remove every line.
    Clear,
    /// Panics the actor (fault injection for tests).
    #[cfg(feature = "testing")]
    Crash,
}

/// What an operation will write: the line changes. A line is only ever upserted for a product
/// that is live, which the write itself checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The line changes, in order.
    pub writes: Vec<LineWrite>,
}

impl CartState {
    /// A cart that does not exist yet.
    pub fn absent() -> Self {
        CartState {
            version: None,
            updated_at: None,
            lines: Vec::new(),
        }
    }

    /// The state of a stored cart.
    pub fn from_stored(stored: StoredCart) -> Self {
        CartState {
            version: Some(stored.version),
            updated_at: Some(stored.updated_at),
            lines: stored.lines,
        }
    }

    fn line(&self, product_id: i64) -> Option<&StoredLine> {
        self.lines.iter().find(|l| l.product_id == product_id)
    }

    fn next_position(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.position)
            .max()
            .map_or(1, |p| p + 1)
    }

    /// What `op` would write, or why it is refused. `Ok(None)`: nothing to write (a read, or
    /// creating a cart that exists); `Ok(Some(plan))` with no writes still creates the cart.
    pub fn plan(&self, op: &CartOp) -> Result<Option<Plan>, CartError> {
        let plan = |writes| Ok(Some(Plan { writes }));
        match op.clone() {
            CartOp::Create | CartOp::Get if self.version.is_some() => Ok(None),
            CartOp::Create | CartOp::Get => plan(Vec::new()),
            CartOp::Add {
                product_id,
                quantity,
            } => {
                let quantity = Quantity::new(quantity).map_err(invalid)?;
                let line = match self.line(product_id) {
                    Some(l) => {
                        let total = quantity.added_to(l.quantity).map_err(|total| {
                            CartError::InvalidQuantity(format!(
                                "the line would hold {total}; at most {MAX_QUANTITY}"
                            ))
                        })?;
                        StoredLine {
                            quantity: total.get(),
                            ..*l
                        }
                    }
                    None => {
                        if self.lines.len() >= MAX_LINES {
                            return Err(CartError::CartFull(self.lines.len()));
                        }
                        StoredLine {
                            product_id,
                            quantity: quantity.get(),
                            position: self.next_position(),
                        }
                    }
                };
                plan(vec![LineWrite::Upsert(line)])
            }
            CartOp::Set {
                product_id,
                quantity,
            } => {
                let quantity = Quantity::or_zero(quantity)
                    .map_err(invalid)?
                    .map_or(0, Quantity::get);
                match (self.line(product_id), quantity) {
                    (None, 0) => Err(CartError::LineNotFound),
                    (Some(_), 0) => plan(vec![LineWrite::Delete(product_id)]),
                    (Some(l), q) => plan(vec![LineWrite::Upsert(StoredLine { quantity: q, ..*l })]),
                    (None, q) => {
                        if self.lines.len() >= MAX_LINES {
                            return Err(CartError::CartFull(self.lines.len()));
                        }
                        let line = StoredLine {
                            product_id,
                            quantity: q,
                            position: self.next_position(),
                        };
                        plan(vec![LineWrite::Upsert(line)])
                    }
                }
            }
            CartOp::Remove { product_id } => match self.line(product_id) {
                Some(_) => plan(vec![LineWrite::Delete(product_id)]),
                None => Err(CartError::LineNotFound),
            },
            CartOp::Clear => plan(vec![LineWrite::DeleteAll]),
            #[cfg(feature = "testing")]
            CartOp::Crash => Ok(None),
        }
    }

    /// What a checkout of this cart orders: the version it was read at and every line, in the
    /// order they were added. `None` when there is nothing to order.
    pub fn to_order(&self) -> Option<(i64, Vec<WantedLine>)> {
        let version = self.version?;
        if self.lines.is_empty() {
            return None;
        }
        let lines = self
            .lines
            .iter()
            .map(|l| WantedLine {
                product_id: l.product_id,
                quantity: l.quantity,
            })
            .collect();
        Some((version, lines))
    }

    /// The state after a checkout placed every line and emptied the cart as `version` at `now`.
    pub fn emptied(version: i64, now: PrimitiveDateTime) -> CartState {
        CartState {
            version: Some(version),
            updated_at: Some(now),
            lines: Vec::new(),
        }
    }

    /// The state after `plan` was written as `version` at `now`.
    pub fn applied(&self, plan: &Plan, version: i64, now: PrimitiveDateTime) -> CartState {
        let mut lines = self.lines.clone();
        for w in &plan.writes {
            match *w {
                LineWrite::Upsert(line) => {
                    match lines.iter_mut().find(|l| l.product_id == line.product_id) {
                        Some(existing) => *existing = line,
                        None => lines.push(line),
                    }
                }
                LineWrite::Delete(product_id) => lines.retain(|l| l.product_id != product_id),
                LineWrite::DeleteAll => lines.clear(),
            }
        }
        lines.sort_by_key(|l| l.position);
        CartState {
            version: Some(version),
            updated_at: Some(now),
            lines,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> PrimitiveDateTime {
        mall_db::clock::now()
    }

    /// Plans and applies `op`, as the actor does after a successful write.
    fn run(state: &CartState, op: CartOp) -> Result<CartState, CartError> {
        match state.plan(&op)? {
            Some(plan) => Ok(state.applied(&plan, state.version.unwrap_or(0) + 1, now())),
            None => Ok(state.clone()),
        }
    }

    fn qty(state: &CartState, product_id: i64) -> Option<i32> {
        state.line(product_id).map(|l| l.quantity)
    }

    #[test]
    fn create_writes_once_and_then_nothing() {
        let absent = CartState::absent();
        let plan = absent.plan(&CartOp::Create).unwrap().unwrap();
        assert!(plan.writes.is_empty());
        let created = absent.applied(&plan, 1, now());
        assert_eq!(created.version, Some(1));
        assert_eq!(created.plan(&CartOp::Create).unwrap(), None);
        assert_eq!(created.plan(&CartOp::Get).unwrap(), None);
    }

    #[test]
    fn quantities_of_one_product_add_up_to_at_most_999() {
        let s = run(
            &CartState::absent(),
            CartOp::Add {
                product_id: 7,
                quantity: 500,
            },
        )
        .unwrap();
        let s = run(
            &s,
            CartOp::Add {
                product_id: 7,
                quantity: 499,
            },
        )
        .unwrap();
        assert_eq!(qty(&s, 7), Some(999));
        assert_eq!(s.lines.len(), 1);
        let err = run(
            &s,
            CartOp::Add {
                product_id: 7,
                quantity: 1,
            },
        )
        .unwrap_err();
        assert!(matches!(err, CartError::InvalidQuantity(_)));
    }

    #[test]
    fn add_quantity_bounds() {
        let s = CartState::absent();
        for bad in [0, -1, 1000] {
            assert!(matches!(
                s.plan(&CartOp::Add {
                    product_id: 1,
                    quantity: bad
                }),
                Err(CartError::InvalidQuantity(_))
            ));
        }
    }

    #[test]
    fn the_101st_line_is_refused_but_existing_lines_still_grow() {
        let mut s = CartState::absent();
        for p in 1..=100 {
            s = run(
                &s,
                CartOp::Add {
                    product_id: p,
                    quantity: 1,
                },
            )
            .unwrap();
        }
        assert_eq!(s.lines.len(), MAX_LINES);
        assert_eq!(
            run(
                &s,
                CartOp::Add {
                    product_id: 101,
                    quantity: 1
                }
            )
            .unwrap_err(),
            CartError::CartFull(100)
        );
        assert_eq!(
            run(
                &s,
                CartOp::Set {
                    product_id: 101,
                    quantity: 1
                }
            )
            .unwrap_err(),
            CartError::CartFull(100)
        );
        let s = run(
            &s,
            CartOp::Add {
                product_id: 50,
                quantity: 2,
            },
        )
        .unwrap();
        assert_eq!(qty(&s, 50), Some(3));
    }

    #[test]
    fn set_changes_adds_or_removes_a_line() {
        let s = run(
            &CartState::absent(),
            CartOp::Add {
                product_id: 1,
                quantity: 5,
            },
        )
        .unwrap();
        let s = run(
            &s,
            CartOp::Set {
                product_id: 1,
                quantity: 2,
            },
        )
        .unwrap();
        assert_eq!(qty(&s, 1), Some(2));
        let s = run(
            &s,
            CartOp::Set {
                product_id: 2,
                quantity: 3,
            },
        )
        .unwrap();
        assert_eq!(qty(&s, 2), Some(3));
        let s = run(
            &s,
            CartOp::Set {
                product_id: 1,
                quantity: 0,
            },
        )
        .unwrap();
        assert_eq!(qty(&s, 1), None);
        assert_eq!(
            run(
                &s,
                CartOp::Set {
                    product_id: 9,
                    quantity: 0
                }
            )
            .unwrap_err(),
            CartError::LineNotFound
        );
        assert!(matches!(
            s.plan(&CartOp::Set {
                product_id: 2,
                quantity: 1000
            }),
            Err(CartError::InvalidQuantity(_))
        ));
        assert!(matches!(
            s.plan(&CartOp::Set {
                product_id: 2,
                quantity: -1
            }),
            Err(CartError::InvalidQuantity(_))
        ));
        // Removing a line deletes it (a deleted product's line can always be removed).
        let plan = s
            .plan(&CartOp::Set {
                product_id: 2,
                quantity: 0,
            })
            .unwrap()
            .unwrap();
        assert_eq!(plan.writes, vec![LineWrite::Delete(2)]);
    }

    #[test]
    fn remove_and_clear() {
        let s = run(
            &CartState::absent(),
            CartOp::Add {
                product_id: 1,
                quantity: 1,
            },
        )
        .unwrap();
        let s = run(
            &s,
            CartOp::Add {
                product_id: 2,
                quantity: 1,
            },
        )
        .unwrap();
        assert_eq!(
            run(&s, CartOp::Remove { product_id: 3 }).unwrap_err(),
            CartError::LineNotFound
        );
        let one = run(&s, CartOp::Remove { product_id: 1 }).unwrap();
        assert_eq!(
            one.lines.iter().map(|l| l.product_id).collect::<Vec<_>>(),
            vec![2]
        );
        let empty = run(&s, CartOp::Clear).unwrap();
        assert!(empty.lines.is_empty());
        assert!(empty.version > s.version);
    }

    #[test]
    fn a_checkout_orders_every_line_and_leaves_the_cart_empty() {
        assert_eq!(CartState::absent().to_order(), None);
        let mut s = run(&CartState::absent(), CartOp::Create).unwrap();
        assert_eq!(s.to_order(), None, "an empty cart orders nothing");
        for (p, q) in [(30, 2), (10, 5)] {
            s = run(
                &s,
                CartOp::Add {
                    product_id: p,
                    quantity: q,
                },
            )
            .unwrap();
        }
        let (version, lines) = s.to_order().unwrap();
        assert_eq!(Some(version), s.version);
        let wanted: Vec<(i64, i32)> = lines.iter().map(|l| (l.product_id, l.quantity)).collect();
        assert_eq!(
            wanted,
            vec![(30, 2), (10, 5)],
            "in the order they were added"
        );
        let after = CartState::emptied(version + 1, now());
        assert!(after.lines.is_empty());
        assert_eq!(after.version, Some(version + 1));
        // A product ordered before starts a new line: nothing of the old one is left.
        let again = run(
            &after,
            CartOp::Add {
                product_id: 10,
                quantity: 1,
            },
        )
        .unwrap();
        assert_eq!(qty(&again, 10), Some(1));
        assert_eq!(again.line(10).map(|l| l.position), Some(1));
    }

    #[test]
    fn lines_keep_the_order_they_were_first_added() {
        let mut s = CartState::absent();
        for p in [30, 10, 20] {
            s = run(
                &s,
                CartOp::Add {
                    product_id: p,
                    quantity: 1,
                },
            )
            .unwrap();
        }
        s = run(
            &s,
            CartOp::Add {
                product_id: 30,
                quantity: 1,
            },
        )
        .unwrap();
        s = run(&s, CartOp::Remove { product_id: 10 }).unwrap();
        s = run(
            &s,
            CartOp::Add {
                product_id: 10,
                quantity: 1,
            },
        )
        .unwrap();
        assert_eq!(
            s.lines.iter().map(|l| l.product_id).collect::<Vec<_>>(),
            vec![30, 20, 10]
        );
    }
}
