//! The simulated card gateway: card checks (Luhn, expiry, cvc) and the charge decision.
//! Card `4000000000000002` is declined; every other valid card is approved. Nothing here keeps
//! or prints a full card number or a cvc.

use time::Date;

pub use mall_db::domain::Charge;

/// The number the simulated gateway always declines.
pub const DECLINED_CARD: &str = "4000000000000002";

/// A card as the client sent it. `Debug` shows only the last four digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Card {
    /// 13..=19 digits.
    pub number: String,
    /// 1..=12.
    pub exp_month: i64,
    /// Four digits.
    pub exp_year: i64,
    /// 3..=4 digits.
    pub cvc: String,
}

impl std::fmt::Debug for Card {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Card(**** {}, {:02}/{})",
            self.last4(),
            self.exp_month,
            self.exp_year
        )
    }
}

impl Card {
    /// The last four digits (what is stored and shown).
    pub fn last4(&self) -> String {
        let n = self.number.len();
        self.number
            .get(n.saturating_sub(4)..)
            .unwrap_or_default()
            .to_owned()
    }
}

/// What is wrong with a card: `(field, reason)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardProblem {
    /// `number`, `exp_month`, `exp_year` or `cvc`.
    pub field: &'static str,
    /// Why.
    pub reason: &'static str,
}

/// True when `digits` (ASCII digits only) passes the Luhn check.
pub fn luhn(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, b) in digits.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(b - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum.is_multiple_of(10)
}

/// Checks a card as of `today`: digits and Luhn, a month 1..=12, not expired (valid through the
/// end of its month), a cvc of 3 or 4 digits.
pub fn check(card: &Card, today: Date) -> Result<(), CardProblem> {
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(13..=19).contains(&card.number.len()) || !digits(&card.number) {
        return Err(CardProblem {
            field: "number",
            reason: "must be 13 to 19 digits",
        });
    }
    if !luhn(&card.number) {
        return Err(CardProblem {
            field: "number",
            reason: "is not a valid card number",
        });
    }
    if !(1..=12).contains(&card.exp_month) {
        return Err(CardProblem {
            field: "exp_month",
            reason: "must be 1 to 12",
        });
    }
    let now = (i64::from(today.year()), i64::from(u8::from(today.month())));
    if !(2000..=9999).contains(&card.exp_year) || (card.exp_year, card.exp_month) < now {
        return Err(CardProblem {
            field: "exp_year",
            reason: "the card has expired",
        });
    }
    if !(3..=4).contains(&card.cvc.len()) || !digits(&card.cvc) {
        return Err(CardProblem {
            field: "cvc",
            reason: "must be 3 or 4 digits",
        });
    }
    Ok(())
}

/// Charges a card already [`check`]ed.
pub fn charge(card: &Card) -> Charge {
    if card.number == DECLINED_CARD {
        Charge::Declined {
            last4: card.last4(),
        }
    } else {
        Charge::Approved {
            last4: card.last4(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn card(number: &str, month: i64, year: i64, cvc: &str) -> Card {
        Card {
            number: number.into(),
            exp_month: month,
            exp_year: year,
            cvc: cvc.into(),
        }
    }

    const TODAY: Date = date!(2026 - 11 - 26);

    #[test]
    fn luhn_accepts_valid_numbers_only() {
        assert!(luhn("4242424242424242"));
        assert!(luhn(DECLINED_CARD));
        assert!(luhn("79927398713"));
        assert!(!luhn("4242424242424241"));
        assert!(!luhn("4242-4242"));
        assert!(!luhn(""));
    }

    #[test]
    fn good_cards_pass_and_the_decline_card_is_declined() {
        let good = card("4242424242424242", 12, 2099, "123");
        assert_eq!(check(&good, TODAY), Ok(()));
        assert!(charge(&good).approved());
        assert_eq!(charge(&good).last4(), good.last4());
        let declined = card(DECLINED_CARD, 1, 2030, "1234");
        assert_eq!(check(&declined, TODAY), Ok(()));
        assert!(!charge(&declined).approved());
    }

    #[test]
    fn each_bad_field_is_named() {
        let field = |c: Card| check(&c, TODAY).unwrap_err().field;
        assert_eq!(field(card("4242424242424241", 12, 2099, "123")), "number");
        assert_eq!(field(card("424242424242", 12, 2099, "123")), "number"); // 12 digits
        assert_eq!(
            field(card("42424242424242424242", 12, 2099, "123")),
            "number"
        ); // 20 digits
        assert_eq!(
            field(card("4242 4242 4242 4242", 12, 2099, "123")),
            "number"
        );
        assert_eq!(
            field(card("4242424242424242", 13, 2099, "123")),
            "exp_month"
        );
        assert_eq!(field(card("4242424242424242", 0, 2099, "123")), "exp_month");
        assert_eq!(field(card("4242424242424242", 10, 2026, "123")), "exp_year");
        assert_eq!(field(card("4242424242424242", 12, 2020, "123")), "exp_year");
        assert_eq!(field(card("4242424242424242", 12, 2099, "12")), "cvc");
        assert_eq!(field(card("4242424242424242", 12, 2099, "12345")), "cvc");
        assert_eq!(field(card("4242424242424242", 12, 2099, "12a")), "cvc");
        // Valid through the end of the expiry month.
        assert_eq!(
            check(&card("4242424242424242", 11, 2026, "123"), TODAY),
            Ok(())
        );
    }

    #[test]
    fn debug_never_shows_the_number_or_cvc() {
        let shown = format!("{:?}", card("4242424242424242", 12, 2099, "987"));
        assert!(
            shown.contains("4242") && !shown.contains("42424242") && !shown.contains("987"),
            "{shown}"
        );
    }
}
