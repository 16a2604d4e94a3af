//! The price list carts are answered with: each product's name, price and whether it was
//! deleted, kept in memory and forgotten when the product changes (a `FreshCache` fed by the
//! same change notices as the rendered products), so a cart change needs no read of the
//! products after its write. What is bought is priced by the order's own read of the products
//! under their lock, never from here.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mall_db::repo::carts;
use mall_db::{Db, DbError};

use crate::fresh::FreshCache;

/// What a cart line shows of its product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePrice {
    /// Its current name.
    pub name: String,
    /// Its current price.
    pub price_cents: i64,
    /// True once it was taken out of the catalog.
    pub deleted: bool,
}

/// Products' line prices by id.
pub type Prices = FreshCache<LinePrice>;

/// A price list of at most `max_bytes` whose entries live at most `ttl`.
pub fn prices(max_bytes: u64, ttl: Duration) -> Prices {
    FreshCache::new(max_bytes, ttl, |p| {
        u32::try_from(p.name.len() + 64).unwrap_or(u32::MAX)
    })
}

/// The line prices of `ids`: from memory, and the rest in one read. A product the database does
/// not know is left out (the caller shows it as unavailable).
pub async fn lookup(
    prices: &Prices,
    db: &Db,
    ids: &[i64],
) -> Result<HashMap<i64, Arc<LinePrice>>, DbError> {
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for &id in ids {
        let ticket = prices.ticket(id);
        match prices.get(ticket) {
            Some(hit) => {
                found.insert(id, hit);
            }
            None => missing.push(ticket),
        }
    }
    if missing.is_empty() {
        return Ok(found);
    }
    let keys: Vec<i64> = missing.iter().map(|ticket| ticket.key()).collect();
    let mut conn = db.read().await?;
    let mut loaded: HashMap<i64, LinePrice> = carts::line_products(&mut conn, &keys)
        .await?
        .into_iter()
        .map(|(id, name, price_cents, deleted)| {
            (
                id,
                LinePrice {
                    name,
                    price_cents,
                    deleted,
                },
            )
        })
        .collect();
    for ticket in missing {
        if let Some(price) = loaded.remove(&ticket.key()) {
            found.insert(ticket.key(), prices.fill(ticket, price));
        }
    }
    Ok(found)
}
