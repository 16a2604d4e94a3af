//! Deadlines are data: the pending orders and payment sessions whose `expires_at` is near or
//! past, for the sweeper (which wakes their order) and the overdue probe. One query shape for
//! both tables.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use time::PrimitiveDateTime;

use crate::domain::{OrderStatus, PaymentStatus};
use crate::error::DbError;
use crate::pool::DbConn;
use crate::schema::{orders, payments};
use crate::with_conn;

/// Whose deadlines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// Pending orders' payment deadlines.
    Orders,
    /// Pending payment sessions' deadlines.
    Sessions,
}

/// The orders whose deadline of kind `which` (their own, or a pending session's) is at or
/// before `before`, with that deadline, soonest first, at most `limit`.
pub async fn due(
    conn: &mut DbConn,
    which: Whose,
    before: PrimitiveDateTime,
    limit: i64,
) -> Result<Vec<(i64, PrimitiveDateTime)>, DbError> {
    macro_rules! pending_before {
        ($table:ident, $order_id:ident, $pending:expr) => {
            $table::table
                .filter($table::status.eq($pending))
                .filter($table::expires_at.le(before))
                .order($table::expires_at.asc())
                .limit(limit)
                .select(($table::$order_id, $table::expires_at))
        };
    }
    Ok(match which {
        Whose::Orders => {
            let q = pending_before!(orders, id, OrderStatus::PendingPayment);
            with_conn!(conn, c => q.load(c).await)?
        }
        Whose::Sessions => {
            let q = pending_before!(payments, order_id, PaymentStatus::Pending);
            with_conn!(conn, c => q.load(c).await)?
        }
    })
}
