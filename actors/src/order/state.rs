//! The order's rules as plain values: its statuses and which transitions are legal.
//! `pending_payment -> paid | cancelled`; nothing leaves `paid` or `cancelled`.

use time::PrimitiveDateTime;

use super::error::OrderError;

/// Where an order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderStatus {
    /// Waiting to be paid until its deadline.
    PendingPayment,
    /// Paid (final).
    Paid,
    /// Cancelled (final).
    Cancelled,
}

/// Why an order was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// By its buyer.
    User,
    /// Unpaid past its deadline.
    Expired,
    /// Its buyer closed the account.
    AccountClosed,
    /// By an admin.
    Admin,
}

impl CancelReason {
    /// As stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            CancelReason::User => "user",
            CancelReason::Expired => "expired",
            CancelReason::AccountClosed => "account_closed",
            CancelReason::Admin => "admin",
        }
    }
}

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
    /// Parses the stored form.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending_payment" => Some(OrderStatus::PendingPayment),
            "paid" => Some(OrderStatus::Paid),
            "cancelled" => Some(OrderStatus::Cancelled),
            _ => None,
        }
    }

    /// The stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "pending_payment",
            OrderStatus::Paid => "paid",
            OrderStatus::Cancelled => "cancelled",
        }
    }

    /// The status after `event`, or `InvalidState` when the event is not allowed now.
    pub fn on(self, event: OrderEvent) -> Result<OrderStatus, OrderError> {
        match (self, event) {
            (OrderStatus::PendingPayment, OrderEvent::Pay) => Ok(OrderStatus::Paid),
            (OrderStatus::PendingPayment, OrderEvent::Cancel(_)) => Ok(OrderStatus::Cancelled),
            (OrderStatus::PendingPayment, OrderEvent::EditDetails) => {
                Ok(OrderStatus::PendingPayment)
            }
            (status, event) => Err(OrderError::InvalidState(format!(
                "the order is {}: {} is not possible",
                status.as_str(),
                match event {
                    OrderEvent::Pay => "paying it",
                    OrderEvent::Cancel(_) => "cancelling it",
                    OrderEvent::EditDetails => "changing it",
                }
            ))),
        }
    }
}

/// True when an order in `status` with deadline `expires_at` must now be cancelled as expired.
pub fn is_due(status: OrderStatus, expires_at: PrimitiveDateTime, now: PrimitiveDateTime) -> bool {
    status == OrderStatus::PendingPayment && expires_at <= now
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    const ALL_EVENTS: [OrderEvent; 6] = [
        OrderEvent::Pay,
        OrderEvent::Cancel(CancelReason::User),
        OrderEvent::Cancel(CancelReason::Expired),
        OrderEvent::Cancel(CancelReason::AccountClosed),
        OrderEvent::Cancel(CancelReason::Admin),
        OrderEvent::EditDetails,
    ];

    #[test]
    fn a_pending_order_can_be_paid_cancelled_or_edited() {
        let p = OrderStatus::PendingPayment;
        assert_eq!(p.on(OrderEvent::Pay).unwrap(), OrderStatus::Paid);
        for reason in [
            CancelReason::User,
            CancelReason::Expired,
            CancelReason::AccountClosed,
            CancelReason::Admin,
        ] {
            assert_eq!(
                p.on(OrderEvent::Cancel(reason)).unwrap(),
                OrderStatus::Cancelled
            );
        }
        assert_eq!(
            p.on(OrderEvent::EditDetails).unwrap(),
            OrderStatus::PendingPayment
        );
    }

    #[test]
    fn paid_and_cancelled_are_final() {
        for status in [OrderStatus::Paid, OrderStatus::Cancelled] {
            for event in ALL_EVENTS {
                assert!(
                    matches!(status.on(event), Err(OrderError::InvalidState(_))),
                    "{status:?} {event:?}"
                );
            }
        }
    }

    #[test]
    fn statuses_round_trip_and_unknown_ones_are_refused() {
        for s in [
            OrderStatus::PendingPayment,
            OrderStatus::Paid,
            OrderStatus::Cancelled,
        ] {
            assert_eq!(OrderStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(OrderStatus::parse("shipped"), None);
    }

    #[test]
    fn only_pending_orders_past_their_deadline_are_due() {
        let now = mall_db::clock::now();
        let past = now - Duration::seconds(1);
        let future = now + Duration::seconds(1);
        assert!(is_due(OrderStatus::PendingPayment, past, now));
        assert!(is_due(OrderStatus::PendingPayment, now, now));
        assert!(!is_due(OrderStatus::PendingPayment, future, now));
        assert!(!is_due(OrderStatus::Paid, past, now));
        assert!(!is_due(OrderStatus::Cancelled, past, now));
    }
}
