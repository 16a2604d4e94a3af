//! An order's life: `pending_payment -> paid | cancelled`, nothing leaves `paid` or
//! `cancelled`; born `paid` when its checkout's card was approved, else `pending_payment`; due
//! (to be cancelled as expired) once pending past its deadline.

use time::PrimitiveDateTime;

use super::NotAllowed;
use super::payment::Charge;
use super::text::text_enum;

text_enum!(
    /// Where an order stands (the `orders.status` column).
    OrderStatus {
        /// Waiting to be paid until its deadline.
        PendingPayment => "pending_payment",
        /// Paid (final).
        Paid => "paid",
        /// Cancelled (final; see [`CancelReason`]).
        Cancelled => "cancelled",
    }
);

text_enum!(
    /// Why an order was cancelled (the `orders.cancel_reason` column).
    CancelReason {
        /// By its buyer.
        User => "user",
        /// Unpaid past its deadline.
        Expired => "expired",
        /// Its buyer closed the account.
        AccountClosed => "account_closed",
        /// By an admin.
        Admin => "admin",
    }
);

/// Something that may happen to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// Its payment succeeded.
    Pay,
    /// It is cancelled.
    Cancel(CancelReason),
    /// Its address or note changes.
    EditDetails,
}

impl OrderStatus {
    /// The status an order is placed with: paid when the checkout's card was approved.
    pub fn at_birth(charge: Option<&Charge>) -> OrderStatus {
        match charge {
            Some(c) if c.approved() => OrderStatus::Paid,
            _ => OrderStatus::PendingPayment,
        }
    }

    /// The status after `event`, or why the event is not possible now.
    pub fn on(self, event: OrderEvent) -> Result<OrderStatus, NotAllowed> {
        match (self, event) {
            (OrderStatus::PendingPayment, OrderEvent::Pay) => Ok(OrderStatus::Paid),
            (OrderStatus::PendingPayment, OrderEvent::Cancel(_)) => Ok(OrderStatus::Cancelled),
            (OrderStatus::PendingPayment, OrderEvent::EditDetails) => {
                Ok(OrderStatus::PendingPayment)
            }
            (status, event) => Err(NotAllowed(format!(
                "the order is {status}: {} is not possible",
                match event {
                    OrderEvent::Pay => "paying it",
                    OrderEvent::Cancel(_) => "cancelling it",
                    OrderEvent::EditDetails => "changing it",
                }
            ))),
        }
    }

    /// True when an order in this status with deadline `expires_at` must now be cancelled as
    /// expired.
    pub fn is_due(self, expires_at: PrimitiveDateTime, now: PrimitiveDateTime) -> bool {
        self == OrderStatus::PendingPayment && expires_at <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn all_events() -> Vec<OrderEvent> {
        let mut events = vec![OrderEvent::Pay, OrderEvent::EditDetails];
        events.extend(CancelReason::ALL.iter().map(|r| OrderEvent::Cancel(*r)));
        events
    }

    #[test]
    fn a_pending_order_can_be_paid_cancelled_or_edited() {
        let p = OrderStatus::PendingPayment;
        assert_eq!(p.on(OrderEvent::Pay), Ok(OrderStatus::Paid));
        for reason in CancelReason::ALL {
            assert_eq!(
                p.on(OrderEvent::Cancel(*reason)),
                Ok(OrderStatus::Cancelled)
            );
        }
        assert_eq!(p.on(OrderEvent::EditDetails), Ok(p));
    }

    #[test]
    fn paid_and_cancelled_are_final() {
        for status in [OrderStatus::Paid, OrderStatus::Cancelled] {
            for event in all_events() {
                let refused = status.on(event).unwrap_err();
                assert!(refused.0.starts_with(&format!("the order is {status}")));
            }
        }
    }

    #[test]
    fn an_order_is_born_paid_only_with_an_approved_card() {
        let approved = Charge::Approved {
            last4: "4242".into(),
        };
        let declined = Charge::Declined {
            last4: "0002".into(),
        };
        assert_eq!(OrderStatus::at_birth(Some(&approved)), OrderStatus::Paid);
        assert_eq!(
            OrderStatus::at_birth(Some(&declined)),
            OrderStatus::PendingPayment
        );
        assert_eq!(OrderStatus::at_birth(None), OrderStatus::PendingPayment);
    }

    #[test]
    fn statuses_and_reasons_round_trip_and_unknown_words_are_refused() {
        for s in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(*s));
        }
        for r in CancelReason::ALL {
            assert_eq!(CancelReason::parse(r.as_str()), Some(*r));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
        assert_eq!(CancelReason::parse("bored"), None);
    }

    #[test]
    fn only_pending_orders_past_their_deadline_are_due() {
        let now = crate::clock::now();
        let past = now - Duration::seconds(1);
        let future = now + Duration::seconds(1);
        assert!(OrderStatus::PendingPayment.is_due(past, now));
        assert!(OrderStatus::PendingPayment.is_due(now, now));
        assert!(!OrderStatus::PendingPayment.is_due(future, now));
        assert!(!OrderStatus::Paid.is_due(past, now));
        assert!(!OrderStatus::Cancelled.is_due(past, now));
    }
}
