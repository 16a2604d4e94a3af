//! A payment session's life: `pending -> succeeded | cancelled | expired`; a declined charge
//! leaves it `pending` (with `last_error`); nothing leaves the other three. Born with its
//! checkout's charge, if a card came with it: succeeded when approved, pending and declined
//! otherwise. The gateway's answer, [`Charge`], is defined here once.

use time::PrimitiveDateTime;

use super::NotAllowed;
use super::text::text_enum;

/// `last_error` of a session whose last charge was declined.
pub const CARD_DECLINED: &str = "card_declined";

text_enum!(
    /// Where a session stands (the `payments.status` column).
    PaymentStatus {
        /// Open: can be confirmed until its deadline.
        Pending => "pending",
        /// Charged (final).
        Succeeded => "succeeded",
        /// Cancelled by its user or with its order (final).
        Cancelled => "cancelled",
        /// Its deadline passed while pending (final).
        Expired => "expired",
    }
);

/// What the card gateway answered for one card.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Charge {
    /// The money moved.
    Approved {
        /// The card's last four digits.
        last4: String,
    },
    /// The issuer said no.
    Declined {
        /// The card's last four digits.
        last4: String,
    },
}

impl Charge {
    /// True when the money moved.
    pub fn approved(&self) -> bool {
        matches!(self, Charge::Approved { .. })
    }

    /// The card's last four digits (all that is kept of it).
    pub fn last4(&self) -> &str {
        match self {
            Charge::Approved { last4 } | Charge::Declined { last4 } => last4,
        }
    }
}

/// Something that may happen to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEvent {
    /// A charge was approved.
    Approved,
    /// A charge was declined.
    Declined,
    /// The user (or the order's cancellation) cancels it.
    Cancel,
    /// Its deadline passed.
    Expire,
}

/// How a session starts: its status, the card tried and what the charge said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionBirth {
    /// `pending`, or `succeeded` when its first charge was approved.
    pub status: PaymentStatus,
    /// The last four digits of the card tried, if any.
    pub card_last4: Option<String>,
    /// [`CARD_DECLINED`] after a declined first charge.
    pub last_error: Option<String>,
    /// Charges tried (0 or 1).
    pub attempts: i32,
}

impl SessionBirth {
    /// A session opened with `charge` (a checkout with a card) or without one.
    pub fn of(charge: Option<&Charge>) -> SessionBirth {
        let (status, last_error) = match charge {
            None => (PaymentStatus::Pending, None),
            Some(Charge::Approved { .. }) => (PaymentStatus::Succeeded, None),
            Some(Charge::Declined { .. }) => {
                (PaymentStatus::Pending, Some(CARD_DECLINED.to_owned()))
            }
        };
        SessionBirth {
            status,
            card_last4: charge.map(|c| c.last4().to_owned()),
            last_error,
            attempts: i32::from(charge.is_some()),
        }
    }
}

impl PaymentStatus {
    /// The status after `event`, or why the event is not possible now.
    pub fn on(self, event: PaymentEvent) -> Result<PaymentStatus, NotAllowed> {
        match (self, event) {
            (PaymentStatus::Pending, PaymentEvent::Approved) => Ok(PaymentStatus::Succeeded),
            (PaymentStatus::Pending, PaymentEvent::Declined) => Ok(PaymentStatus::Pending),
            (PaymentStatus::Pending, PaymentEvent::Cancel) => Ok(PaymentStatus::Cancelled),
            (PaymentStatus::Pending, PaymentEvent::Expire) => Ok(PaymentStatus::Expired),
            (status, _) => Err(NotAllowed(format!("the payment is {status}"))),
        }
    }

    /// True when a session in this status with deadline `expires_at` must now expire.
    pub fn is_due(self, expires_at: PrimitiveDateTime, now: PrimitiveDateTime) -> bool {
        self == PaymentStatus::Pending && expires_at <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [PaymentEvent; 4] = [
        PaymentEvent::Approved,
        PaymentEvent::Declined,
        PaymentEvent::Cancel,
        PaymentEvent::Expire,
    ];

    #[test]
    fn pending_moves_on_and_a_decline_stays_pending() {
        let p = PaymentStatus::Pending;
        assert_eq!(p.on(PaymentEvent::Approved), Ok(PaymentStatus::Succeeded));
        assert_eq!(p.on(PaymentEvent::Declined), Ok(PaymentStatus::Pending));
        assert_eq!(p.on(PaymentEvent::Cancel), Ok(PaymentStatus::Cancelled));
        assert_eq!(p.on(PaymentEvent::Expire), Ok(PaymentStatus::Expired));
    }

    #[test]
    fn succeeded_cancelled_and_expired_are_final() {
        for status in &PaymentStatus::ALL[1..] {
            for event in EVENTS {
                assert_eq!(
                    status.on(event),
                    Err(NotAllowed(format!("the payment is {status}")))
                );
            }
        }
    }

    #[test]
    fn a_session_is_born_from_its_first_charge() {
        let none = SessionBirth::of(None);
        assert_eq!((none.status, none.attempts), (PaymentStatus::Pending, 0));
        assert_eq!((none.card_last4, none.last_error), (None, None));
        let ok = SessionBirth::of(Some(&Charge::Approved {
            last4: "4242".into(),
        }));
        assert_eq!(ok.status, PaymentStatus::Succeeded);
        assert_eq!((ok.card_last4.as_deref(), ok.attempts), (Some("4242"), 1));
        assert_eq!(ok.last_error, None);
        let no = SessionBirth::of(Some(&Charge::Declined {
            last4: "0002".into(),
        }));
        assert_eq!(no.status, PaymentStatus::Pending);
        assert_eq!(no.last_error.as_deref(), Some(CARD_DECLINED));
        assert_eq!(no.attempts, 1);
    }

    #[test]
    fn statuses_round_trip() {
        for s in PaymentStatus::ALL {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(PaymentStatus::parse("refunded"), None);
    }
}
