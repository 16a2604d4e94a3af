//! Carts: load one, and write a change to it guarded by its version (optimistic concurrency).

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Timestamp};
use diesel::upsert::excluded;
use diesel_async::{AsyncConnection, RunQueryDsl};
use time::PrimitiveDateTime;

use super::Rollback;
use crate::AsyncPgConnection;
use crate::error::DbError;
use crate::pool::DbConn;
use crate::schema::{cart_lines, carts, products};
use crate::with_conn;

/// A cart line as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Queryable)]
pub struct StoredLine {
    /// The product.
    pub product_id: i64,
    /// 1..=999.
    pub quantity: i32,
    /// Lines are shown by increasing position (the order they were first added).
    pub position: i64,
}

/// A cart as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCart {
    /// Bumped by every write.
    pub version: i64,
    /// Last change.
    pub updated_at: PrimitiveDateTime,
    /// Lines by position.
    pub lines: Vec<StoredLine>,
}

/// One change to the lines of a cart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineWrite {
    /// Insert the line, or set its quantity and position; only for a live product.
    Upsert(StoredLine),
    /// Remove the line of this product.
    Delete(i64),
    /// Remove every line.
    DeleteAll,
}

/// What a guarded write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written; the cart's new version.
    Written(i64),
    /// The cart was not at the expected version (or already existed): nothing was written.
    Conflict,
    /// An upserted line's product does not exist or was deleted: nothing was written.
    ProductGone(i64),
}

/// The user's cart, if it exists.
pub async fn load(conn: &mut DbConn, user_id: i64) -> Result<Option<StoredCart>, DbError> {
    with_conn!(conn, c => {
        let head: Option<(i64, PrimitiveDateTime)> = carts::table
            .find(user_id)
            .select((carts::version, carts::updated_at))
            .first(c)
            .await
            .optional()?;
        let Some((version, updated_at)) = head else { return Ok(None) };
        let lines: Vec<StoredLine> = cart_lines::table
            .filter(cart_lines::user_id.eq(user_id))
            .select((cart_lines::product_id, cart_lines::quantity, cart_lines::position))
            .order(cart_lines::position.asc())
            .load(c)
            .await?;
        Ok(Some(StoredCart { version, updated_at, lines }))
    })
}

/// Applies `writes` to the user's cart in one transaction, only if the cart is at
/// `expected_version` (`None`: only if it does not exist yet, and it is created), and only if
/// every upserted line's product is live (checked by the upsert itself, no read before).
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "carts.write")
)]
pub async fn write(
    conn: &mut DbConn,
    user_id: i64,
    expected_version: Option<i64>,
    writes: &[LineWrite],
    now: PrimitiveDateTime,
) -> Result<WriteOutcome, DbError> {
    // The commonest change (add a product, set a quantity) on PostgreSQL: one statement, so
    // one round trip and no transaction of its own, instead of four.
    if let (DbConn::Pg(c), Some(expected), [LineWrite::Upsert(line)]) =
        (&mut *conn, expected_version, writes)
    {
        return upsert_one_line(c, user_id, expected, *line, now).await;
    }
    let outcome = with_conn!(conn, c => c.transaction(async |c| {
        let version = match expected_version {
            None => {
                // The write comes first (no read before it): on SQLite a transaction that read
                // first cannot take the write lock once another process has written.
                let created = diesel::insert_into(carts::table)
                    .values((
                        carts::user_id.eq(user_id),
                        carts::version.eq(1),
                        carts::created_at.eq(now),
                        carts::updated_at.eq(now),
                    ))
                    .on_conflict_do_nothing()
                    .execute(c)
                    .await?;
                if created == 0 {
                    return Err(Rollback::Answer(WriteOutcome::Conflict));
                }
                1
            }
            Some(expected) => {
                let bumped = diesel::update(carts::table.find(user_id).filter(carts::version.eq(expected)))
                    .set((carts::version.eq(expected + 1), carts::updated_at.eq(now)))
                    .execute(c)
                    .await?;
                if bumped == 0 {
                    return Err(Rollback::Answer(WriteOutcome::Conflict));
                }
                expected + 1
            }
        };
        for w in writes {
            match *w {
                LineWrite::Upsert(line) => {
                    // INSERT .. SELECT FROM products WHERE live .. ON CONFLICT DO UPDATE: one
                    // statement checks the product and inserts or updates the line.
                    let upserted = products::table
                        .filter(products::id.eq(line.product_id))
                        .filter(products::deleted_at.is_null())
                        .select((
                            user_id.into_sql::<BigInt>(),
                            products::id,
                            line.quantity.into_sql::<Integer>(),
                            line.position.into_sql::<BigInt>(),
                        ))
                        .insert_into(cart_lines::table)
                        .into_columns((
                            cart_lines::user_id,
                            cart_lines::product_id,
                            cart_lines::quantity,
                            cart_lines::position,
                        ))
                        .on_conflict((cart_lines::user_id, cart_lines::product_id))
                        .do_update()
                        .set((
                            cart_lines::quantity.eq(excluded(cart_lines::quantity)),
                            cart_lines::position.eq(excluded(cart_lines::position)),
                        ))
                        .execute(c)
                        .await?;
                    if upserted == 0 {
                        return Err(Rollback::Answer(WriteOutcome::ProductGone(line.product_id)));
                    }
                }
                LineWrite::Delete(product_id) => {
                    diesel::delete(
                        cart_lines::table
                            .filter(cart_lines::user_id.eq(user_id))
                            .filter(cart_lines::product_id.eq(product_id)),
                    )
                    .execute(c)
                    .await?;
                }
                LineWrite::DeleteAll => {
                    diesel::delete(cart_lines::table.filter(cart_lines::user_id.eq(user_id))).execute(c).await?;
                }
            }
        }
        Ok(WriteOutcome::Written(version))
    }).await);
    Rollback::settle(outcome)
}

/// What the one statement of [`upsert_one_line`] found.
#[derive(QueryableByName)]
struct UpsertedLine {
    /// The cart's new version; None when nothing was written.
    #[diesel(sql_type = Nullable<BigInt>)]
    version: Option<i64>,
    /// Whether the product is live.
    #[diesel(sql_type = Bool)]
    live: bool,
}

/// Bumps the cart from `expected` and upserts `line`, only if the product is live, in one
/// statement (data-modifying CTEs run once each, whether or not the final SELECT names them).
/// The version bump is what a concurrent writer waits on, so of two writes at one version
/// exactly one inserts its line.
async fn upsert_one_line(
    c: &mut AsyncPgConnection,
    user_id: i64,
    expected: i64,
    line: StoredLine,
    now: PrimitiveDateTime,
) -> Result<WriteOutcome, DbError> {
    let found: UpsertedLine = diesel::sql_query(
        "WITH live AS (
             SELECT id FROM products WHERE id = $1 AND deleted_at IS NULL
         ), bumped AS (
             UPDATE carts SET version = $3 + 1, updated_at = $4
             WHERE user_id = $2 AND version = $3 AND EXISTS (SELECT 1 FROM live)
             RETURNING version
         ), upserted AS (
             INSERT INTO cart_lines (user_id, product_id, quantity, position)
             SELECT $2, live.id, $5, $6 FROM live, bumped
             ON CONFLICT (user_id, product_id)
             DO UPDATE SET quantity = EXCLUDED.quantity, position = EXCLUDED.position
             RETURNING 1
         )
         SELECT (SELECT version FROM bumped) AS version, EXISTS (SELECT 1 FROM live) AS live",
    )
    .bind::<BigInt, _>(line.product_id)
    .bind::<BigInt, _>(user_id)
    .bind::<BigInt, _>(expected)
    .bind::<Timestamp, _>(now)
    .bind::<Integer, _>(line.quantity)
    .bind::<BigInt, _>(line.position)
    .get_result(c)
    .await?;
    Ok(match found {
        UpsertedLine {
            version: Some(version),
            ..
        } => WriteOutcome::Written(version),
        UpsertedLine { live: false, .. } => WriteOutcome::ProductGone(line.product_id),
        UpsertedLine { live: true, .. } => WriteOutcome::Conflict,
    })
}

/// What a cart line shows of its product: `(id, name, price_cents, deleted)`, deleted ones included.
pub async fn line_products(
    conn: &mut DbConn,
    ids: &[i64],
) -> Result<Vec<(i64, String, i64, bool)>, DbError> {
    let q = products::table
        .filter(products::id.eq_any(ids.to_vec()))
        .select((
            products::id,
            products::name,
            products::price_cents,
            products::deleted_at.is_not_null(),
        ));
    Ok(with_conn!(conn, c => q.load(c).await)?)
}
