//! Money and quantities: the bounds the API enforces on prices and stock, and the totals of
//! lines and orders computed with checked arithmetic.
//!
//! The bounds keep every sum exact: 100 lines of 999 units at the highest price come to about
//! 10^16 minor units, far below `i64::MAX` (about 9.2 * 10^18). An overflow is therefore a bug
//! (or a row written before the bounds existed) and is reported as [`Overflow`], never capped.

/// The highest price a product may have, in minor units (one billion in major units).
pub const MAX_PRICE_CENTS: i64 = 100_000_000_000;
/// The highest stock a client may set.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// A sum of money or quantities left `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an amount overflowed")]
pub struct Overflow;

/// `unit_price_cents * quantity`.
pub fn line_total(unit_price_cents: i64, quantity: i32) -> Result<i64, Overflow> {
    unit_price_cents
        .checked_mul(i64::from(quantity))
        .ok_or(Overflow)
}

/// The sum of `amounts`.
pub fn sum(amounts: impl IntoIterator<Item = i64>) -> Result<i64, Overflow> {
    amounts
        .into_iter()
        .try_fold(0i64, |acc, a| acc.checked_add(a).ok_or(Overflow))
}

/// True when `price_cents` is within the API's bounds.
pub fn price_in_bounds(price_cents: i64) -> bool {
    (0..=MAX_PRICE_CENTS).contains(&price_cents)
}

/// True when `stock` is within the bounds a client may set.
pub fn stock_in_bounds(stock: i64) -> bool {
    (0..=MAX_STOCK).contains(&stock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_order_within_the_bounds_is_exact() {
        let line = line_total(MAX_PRICE_CENTS, 999).unwrap();
        assert_eq!(line, 99_900_000_000_000);
        assert_eq!(
            sum(std::iter::repeat_n(line, 100)),
            Ok(9_990_000_000_000_000)
        );
    }

    #[test]
    fn overflow_is_an_error_never_a_cap() {
        assert_eq!(line_total(i64::MAX, 2), Err(Overflow));
        assert_eq!(line_total(i64::MAX / 2 + 1, 2), Err(Overflow));
        assert_eq!(sum([i64::MAX, 1]), Err(Overflow));
        assert_eq!(sum([i64::MAX - 1, 1]), Ok(i64::MAX));
        assert_eq!(sum([]), Ok(0));
        assert_eq!(line_total(-5, 3), Ok(-15));
    }

    #[test]
    fn bounds_include_both_ends() {
        assert!(price_in_bounds(0) && price_in_bounds(MAX_PRICE_CENTS));
        assert!(!price_in_bounds(-1) && !price_in_bounds(MAX_PRICE_CENTS + 1));
        assert!(stock_in_bounds(0) && stock_in_bounds(MAX_STOCK));
        assert!(!stock_in_bounds(-1) && !stock_in_bounds(MAX_STOCK + 1));
    }
}
