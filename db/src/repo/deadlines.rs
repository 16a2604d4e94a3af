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

/// A deadline that is due: the order that acts on it, its user (whose shard owns it) and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// The order.
    pub order_id: i64,
    /// The order's user.
    pub user_id: i64,
    /// The deadline.
    pub at: PrimitiveDateTime,
}

/// The orders whose deadline of kind `which` (their own, or a pending session's) is at or
/// before `before`, soonest first, at most `limit`.
pub async fn due(
    conn: &mut DbConn,
    which: Whose,
    before: PrimitiveDateTime,
    limit: i64,
) -> Result<Vec<Due>, DbError> {
    macro_rules! pending_before {
        ($table:ident, $order_id:ident, $pending:expr) => {
            $table::table
                .filter($table::status.eq($pending))
                .filter($table::expires_at.le(before))
                .order($table::expires_at.asc())
                .limit(limit)
                .select(($table::$order_id, $table::user_id, $table::expires_at))
        };
    }
    let rows: Vec<(i64, i64, PrimitiveDateTime)> = match which {
        Whose::Orders => {
            let q = pending_before!(orders, id, OrderStatus::PendingPayment);
            with_conn!(conn, c => q.load(c).await)?
        }
        Whose::Sessions => {
            let q = pending_before!(payments, order_id, PaymentStatus::Pending);
            with_conn!(conn, c => q.load(c).await)?
        }
    };
    Ok(rows
        .into_iter()
        .map(|(order_id, user_id, at)| Due {
            order_id,
            user_id,
            at,
        })
        .collect())
}
