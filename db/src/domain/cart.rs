//! The limits of a cart and of an order's lines, and the quantity a line may hold.

/// Most lines in one cart, and in one order.
pub const MAX_LINES: usize = 100;
/// Most units on one line.
pub const MAX_QUANTITY: i32 = 999;

/// The units on one line: 1..=[`MAX_QUANTITY`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Quantity(i32);

/// A quantity outside what a line may hold; the message names the bounds.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be {min} to {MAX_QUANTITY}")]
pub struct OutOfRange {
    /// The least allowed (1, or 0 where 0 means "remove the line").
    pub min: i32,
}

impl Quantity {
    /// A quantity to buy or add: 1..=999.
    pub fn new(q: i64) -> Result<Quantity, OutOfRange> {
        match i32::try_from(q) {
            Ok(q) if (1..=MAX_QUANTITY).contains(&q) => Ok(Quantity(q)),
            _ => Err(OutOfRange { min: 1 }),
        }
    }

    /// A quantity to set a line to, where 0 removes it: `None` for 0.
    pub fn or_zero(q: i64) -> Result<Option<Quantity>, OutOfRange> {
        match q {
            0 => Ok(None),
            q => Quantity::new(q)
                .map(Some)
                .map_err(|_| OutOfRange { min: 0 }),
        }
    }

    /// The number of units.
    pub fn get(self) -> i32 {
        self.0
    }

    /// A line holding `held` units with these added, or the total when it would pass
    /// [`MAX_QUANTITY`].
    pub fn added_to(self, held: i32) -> Result<Quantity, i64> {
        let total = i64::from(held) + i64::from(self.0);
        Quantity::new(total).map_err(|_| total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_are_one_to_999_and_zero_only_to_set() {
        assert_eq!(Quantity::new(1).unwrap().get(), 1);
        assert_eq!(Quantity::new(999).unwrap().get(), 999);
        for bad in [0, -1, 1000, i64::from(i32::MAX) + 1] {
            assert_eq!(Quantity::new(bad), Err(OutOfRange { min: 1 }));
        }
        assert_eq!(Quantity::or_zero(0), Ok(None));
        assert_eq!(Quantity::or_zero(5).unwrap().map(Quantity::get), Some(5));
        assert_eq!(Quantity::or_zero(-1), Err(OutOfRange { min: 0 }));
        assert_eq!(OutOfRange { min: 0 }.to_string(), "must be 0 to 999");
    }

    #[test]
    fn a_line_never_passes_999() {
        let q = |n| Quantity::new(n).unwrap();
        assert_eq!(q(499).added_to(500), Ok(q(999)));
        assert_eq!(q(500).added_to(500), Err(1000));
    }
}
