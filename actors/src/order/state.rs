//! The order as its host caches it between turns: the order, its lines and the payment sessions
//! it owns. Its rules are in `mall_db::domain`; this is only the shape of what is cached.

use mall_db::domain::Fence;
use mall_db::models::PaymentRow;
use mall_db::repo::orders::OrderWithItems;

/// An order, its lines and its payment sessions (oldest first), as the host caches them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderState {
    /// The order and its lines.
    pub order: OrderWithItems,
    /// Its payment sessions.
    pub sessions: Vec<PaymentRow>,
    /// In a cluster, the right to write the order's shard under which the current turn runs
    /// (set at the start of every turn; `None` on a single node).
    pub fence: Option<Fence>,
}
