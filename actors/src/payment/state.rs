//! The payment session's rules as plain values: `pending -> succeeded | cancelled | expired`;
//! a declined charge leaves it `pending`; nothing leaves the other three.

use super::error::PaymentError;
use super::gateway::Charge;

/// Where a session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Open: can be confirmed until its deadline.
    Pending,
    /// Charged (final).
    Succeeded,
    /// Cancelled (final).
    Cancelled,
    /// Its deadline passed (final).
    Expired,
}

/// Something that may happen to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentEvent {
    /// A charge came back.
    Charged(Charge),
    /// The user (or the order's cancellation) cancels it.
    Cancel,
    /// Its deadline passed.
    Expire,
}

impl PaymentStatus {
    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(PaymentStatus::Pending),
            "succeeded" => Some(PaymentStatus::Succeeded),
            "cancelled" => Some(PaymentStatus::Cancelled),
            "expired" => Some(PaymentStatus::Expired),
            _ => None,
        }
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Succeeded => "succeeded",
            PaymentStatus::Cancelled => "cancelled",
            PaymentStatus::Expired => "expired",
        }
    }

    /// The status after `event`, or `InvalidState` when the event is not allowed now.
    pub fn on(self, event: PaymentEvent) -> Result<PaymentStatus, PaymentError> {
        match (self, event) {
            (PaymentStatus::Pending, PaymentEvent::Charged(Charge::Approved)) => {
                Ok(PaymentStatus::Succeeded)
            }
            (PaymentStatus::Pending, PaymentEvent::Charged(Charge::Declined)) => {
                Ok(PaymentStatus::Pending)
            }
            (PaymentStatus::Pending, PaymentEvent::Cancel) => Ok(PaymentStatus::Cancelled),
            (PaymentStatus::Pending, PaymentEvent::Expire) => Ok(PaymentStatus::Expired),
            (status, _) => Err(PaymentError::InvalidState(format!(
                "the payment is {}",
                status.as_str()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENTS: [PaymentEvent; 4] = [
        PaymentEvent::Charged(Charge::Approved),
        PaymentEvent::Charged(Charge::Declined),
        PaymentEvent::Cancel,
        PaymentEvent::Expire,
    ];

    #[test]
    fn pending_moves_on_and_a_decline_stays_pending() {
        let p = PaymentStatus::Pending;
        assert_eq!(
            p.on(PaymentEvent::Charged(Charge::Approved)).unwrap(),
            PaymentStatus::Succeeded
        );
        assert_eq!(
            p.on(PaymentEvent::Charged(Charge::Declined)).unwrap(),
            PaymentStatus::Pending
        );
        assert_eq!(
            p.on(PaymentEvent::Cancel).unwrap(),
            PaymentStatus::Cancelled
        );
        assert_eq!(p.on(PaymentEvent::Expire).unwrap(), PaymentStatus::Expired);
    }

    #[test]
    fn succeeded_cancelled_and_expired_are_final() {
        for status in [
            PaymentStatus::Succeeded,
            PaymentStatus::Cancelled,
            PaymentStatus::Expired,
        ] {
            for event in EVENTS {
                assert!(
                    matches!(status.on(event), Err(PaymentError::InvalidState(_))),
                    "{status:?} {event:?}"
                );
            }
        }
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            PaymentStatus::Pending,
            PaymentStatus::Succeeded,
            PaymentStatus::Cancelled,
            PaymentStatus::Expired,
        ] {
            assert_eq!(PaymentStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(PaymentStatus::parse("refunded"), None);
    }
}
