//! The catalog: products and their categories. Deleting is soft (`deleted_at`); every read here
//! sees live products only. Who may change a product is the caller's business, not this module's.

use std::collections::HashMap;

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use time::PrimitiveDateTime;

use super::{Page, like_escape, page_bounds};
use crate::error::DbError;
use crate::models::product::search_text;
use crate::models::{NewProduct, ProductRow};
use crate::pool::DbConn;
use crate::schema::{product_categories, products};
use crate::with_conn;

/// A product and its categories (sorted, without duplicates).
pub type ProductWithCategories = (ProductRow, Vec<String>);

/// The order of a product list; ties are broken by id in the same direction, so pages are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProductSort {
    /// Most recently created first (the default).
    #[default]
    Newest,
    /// Cheapest first.
    PriceAsc,
    /// Dearest first.
    PriceDesc,
}

impl ProductSort {
    /// The order an API name stands for: `newest`, `price_asc` or `price_desc`.
    pub fn parse(name: &str) -> Option<ProductSort> {
        match name {
            "newest" => Some(ProductSort::Newest),
            "price_asc" => Some(ProductSort::PriceAsc),
            "price_desc" => Some(ProductSort::PriceDesc),
            _ => None,
        }
    }
}

/// A partial update of a product: every `None` leaves that field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductChanges {
    /// A new name.
    pub name: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// A new price.
    pub price_cents: Option<i64>,
    /// A new stock level.
    pub stock: Option<i64>,
    /// The complete new list of categories (replaces the old one).
    pub categories: Option<Vec<String>>,
    /// A new picture (`Some(None)` removes it).
    pub image_url: Option<Option<String>>,
}

impl ProductChanges {
    /// True when nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == ProductChanges::default()
    }
}

/// Sorted, without duplicates: how categories are stored and shown.
fn normalized(categories: &[String]) -> Vec<String> {
    let mut out = categories.to_vec();
    out.sort();
    out.dedup();
    out
}

/// `(product_id, category)` pairs of the given products. A macro, not a function: the query is
/// run inside `with_conn!` bodies and transactions, on the concrete connection.
macro_rules! category_pairs {
    ($ids:expr) => {
        product_categories::table
            .filter(product_categories::product_id.eq_any($ids))
            .select((product_categories::product_id, product_categories::category))
    };
}

/// Groups `(product_id, category)` pairs by product, each list sorted in Rust (byte order), so
/// both backends answer alike whatever the database's collation.
fn group(pairs: Vec<(i64, String)>) -> HashMap<i64, Vec<String>> {
    let mut by_product: HashMap<i64, Vec<String>> = HashMap::new();
    for (id, category) in pairs {
        by_product.entry(id).or_default().push(category);
    }
    for list in by_product.values_mut() {
        list.sort();
    }
    by_product
}

/// Pairs each row with its categories.
fn attach(
    rows: Vec<ProductRow>,
    mut by_product: HashMap<i64, Vec<String>>,
) -> Vec<ProductWithCategories> {
    rows.into_iter()
        .map(|row| {
            let categories = by_product.remove(&row.id).unwrap_or_default();
            (row, categories)
        })
        .collect()
}

/// Creates a product and its categories in one transaction; `search_text` is derived here from
/// the name and description. Categories are stored without duplicates.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "products.insert")
)]
pub async fn insert(
    conn: &mut DbConn,
    product: NewProduct,
    categories: &[String],
) -> Result<ProductWithCategories, DbError> {
    let text = search_text(&product.name, &product.description);
    let categories = normalized(categories);
    let row = with_conn!(conn, c => c.transaction(async |c| {
        let row: ProductRow = diesel::insert_into(products::table)
            .values((&product, products::search_text.eq(&text)))
            .returning(ProductRow::as_returning())
            .get_result(c)
            .await?;
        // One row at a time: a multi-row insert does not compile for SQLite through the wrapper.
        for category in &categories {
            diesel::insert_into(product_categories::table)
                .values((
                    product_categories::product_id.eq(row.id),
                    product_categories::category.eq(category),
                ))
                .execute(c)
                .await?;
        }
        Ok::<_, DbError>(row)
    }).await)?;
    Ok((row, categories))
}

/// The categories of each of `ids` (products without any are absent from the map).
pub async fn categories_of(
    conn: &mut DbConn,
    ids: &[i64],
) -> Result<HashMap<i64, Vec<String>>, DbError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let pairs: Vec<(i64, String)> = with_conn!(conn, c => category_pairs!(ids).load(c).await)?;
    Ok(group(pairs))
}

/// A live product and its categories; `None` when unknown or deleted.
pub async fn find(conn: &mut DbConn, id: i64) -> Result<Option<ProductWithCategories>, DbError> {
    let row = with_conn!(conn, c => products::table
        .find(id)
        .filter(products::deleted_at.is_null())
        .select(ProductRow::as_select())
        .first(c)
        .await
        .optional())?;
    let Some(row) = row else {
        return Ok(None);
    };
    let mut categories = categories_of(conn, &[row.id]).await?;
    let own = categories.remove(&row.id).unwrap_or_default();
    Ok(Some((row, own)))
}

/// The live products among `ids`, by ascending id, with their categories (two queries).
/// Unknown and deleted ids are simply absent.
pub async fn find_many(
    conn: &mut DbConn,
    ids: &[i64],
) -> Result<Vec<ProductWithCategories>, DbError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<ProductRow> = with_conn!(conn, c => products::table
        .filter(products::id.eq_any(ids))
        .filter(products::deleted_at.is_null())
        .select(ProductRow::as_select())
        .order(products::id.asc())
        .load(c)
        .await)?;
    let found: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let categories = categories_of(conn, &found).await?;
    Ok(attach(rows, categories))
}

/// One page of live products, with the total across pages. `q` matches a case-insensitive
/// substring of the name or description (`%`, `_` and `\` literally); `category` is an exact
/// category; an empty `q` or `category` filters nothing.
pub async fn list(
    conn: &mut DbConn,
    q: Option<&str>,
    category: Option<&str>,
    sort: ProductSort,
    page: u32,
    page_size: u32,
) -> Result<Page<ProductWithCategories>, DbError> {
    let (offset, limit) = page_bounds(page, page_size);
    let pattern = q
        .filter(|q| !q.is_empty())
        .map(|q| format!("%{}%", like_escape(&q.to_lowercase())));
    let category = category.filter(|c| !c.is_empty()).map(str::to_owned);
    // A macro, not a closure: the boxed query's type names its backend.
    macro_rules! filtered {
        () => {{
            let mut query = products::table
                .filter(products::deleted_at.is_null())
                .into_boxed();
            if let Some(p) = &pattern {
                query = query.filter(products::search_text.like(p.clone()).escape('\\'));
            }
            if let Some(cat) = &category {
                query = query.filter(
                    products::id.eq_any(
                        product_categories::table
                            .filter(product_categories::category.eq(cat.clone()))
                            .select(product_categories::product_id),
                    ),
                );
            }
            query
        }};
    }
    let (rows, total) = with_conn!(conn, c => {
        let total: i64 = filtered!().count().get_result(c).await?;
        let query = filtered!().select(ProductRow::as_select());
        let query = match sort {
            ProductSort::Newest => query.order((products::created_at.desc(), products::id.desc())),
            ProductSort::PriceAsc => query.order((products::price_cents.asc(), products::id.asc())),
            ProductSort::PriceDesc => {
                query.order((products::price_cents.desc(), products::id.desc()))
            }
        };
        let rows: Vec<ProductRow> = query.offset(offset).limit(limit).load(c).await?;
        Ok::<_, DbError>((rows, total))
    })?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let categories = categories_of(conn, &ids).await?;
    Ok(Page {
        items: attach(rows, categories),
        total,
    })
}

/// Applies `changes` to a live product in one transaction: recomputes `search_text` when the
/// name or description changes, replaces the categories when given, sets `updated_at` and bumps
/// `version`. `None` when the product is unknown or deleted.
#[tracing::instrument(
    name = "db.transaction",
    level = "info",
    skip_all,
    fields(op = "products.update")
)]
pub async fn update(
    conn: &mut DbConn,
    id: i64,
    changes: ProductChanges,
    now: PrimitiveDateTime,
) -> Result<Option<ProductWithCategories>, DbError> {
    let ProductChanges {
        name,
        description,
        price_cents,
        stock,
        categories,
        image_url,
    } = changes;
    let text_changes = name.is_some() || description.is_some();
    let categories = categories.as_deref().map(normalized);
    with_conn!(conn, c => c.transaction(async |c| {
        let target = products::table.find(id).filter(products::deleted_at.is_null());
        // This UPDATE locks the row (PostgreSQL) or holds the one writer (SQLite) until the
        // commit, so the search text below is computed from the values that will be stored.
        let row: Option<ProductRow> = diesel::update(target)
            .set((
                name.as_deref().map(|n| products::name.eq(n)),
                description.as_deref().map(|d| products::description.eq(d)),
                price_cents.map(|p| products::price_cents.eq(p)),
                stock.map(|s| products::stock.eq(s)),
                image_url.as_ref().map(|u| products::image_url.eq(u.as_deref())),
                products::updated_at.eq(now),
                products::version.eq(products::version + 1),
            ))
            .returning(ProductRow::as_returning())
            .get_result(c)
            .await
            .optional()?;
        let Some(mut row) = row else {
            return Ok::<_, DbError>(None);
        };
        if text_changes {
            let text = search_text(&row.name, &row.description);
            diesel::update(products::table.find(id))
                .set(products::search_text.eq(&text))
                .execute(c)
                .await?;
            row.search_text = text;
        }
        if let Some(new) = &categories {
            diesel::delete(product_categories::table.filter(product_categories::product_id.eq(id)))
                .execute(c)
                .await?;
            for category in new {
                diesel::insert_into(product_categories::table)
                    .values((
                        product_categories::product_id.eq(id),
                        product_categories::category.eq(category),
                    ))
                    .execute(c)
                    .await?;
            }
        }
        let pairs: Vec<(i64, String)> = category_pairs!([id]).load(c).await?;
        let own = group(pairs).remove(&id).unwrap_or_default();
        Ok(Some((row, own)))
    }).await)
}

/// Takes a live product out of the catalog (its row stays, for the orders that hold it).
/// False when it is unknown or already deleted.
pub async fn soft_delete(
    conn: &mut DbConn,
    id: i64,
    now: PrimitiveDateTime,
) -> Result<bool, DbError> {
    let target = products::table
        .find(id)
        .filter(products::deleted_at.is_null());
    let query = diesel::update(target).set((
        products::deleted_at.eq(Some(now)),
        products::updated_at.eq(now),
        products::version.eq(products::version + 1),
    ));
    let touched = with_conn!(conn, c => query.execute(c).await)?;
    Ok(touched > 0)
}

/// Gives stock back (a cancelled order's lines: `(product, units)`), in product-id order so
/// concurrent give-backs lock rows in one order. It cannot fail on a bound: a product's stock
/// saturates at `i64::MAX` (unreachable within the API's bounds, but an old row near it must
/// not strand the cancellation).
pub async fn give_back(conn: &mut DbConn, lines: &[(i64, i32)]) -> Result<(), DbError> {
    let mut lines = lines.to_vec();
    lines.sort_unstable();
    for (product_id, quantity) in lines {
        let quantity = i64::from(quantity);
        let returned = diesel::dsl::case_when::<_, _, diesel::sql_types::BigInt>(
            products::stock.gt(i64::MAX - quantity),
            i64::MAX,
        )
        .otherwise(products::stock + quantity);
        let q = diesel::update(products::table.find(product_id)).set(products::stock.eq(returned));
        with_conn!(conn, c => q.execute(c).await)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_names_follow_the_contract() {
        assert_eq!(ProductSort::parse("newest"), Some(ProductSort::Newest));
        assert_eq!(ProductSort::parse("price_asc"), Some(ProductSort::PriceAsc));
        assert_eq!(
            ProductSort::parse("price_desc"),
            Some(ProductSort::PriceDesc)
        );
        assert_eq!(ProductSort::parse("Newest"), None);
        assert_eq!(ProductSort::parse(""), None);
        assert_eq!(ProductSort::default(), ProductSort::Newest);
    }

    #[test]
    fn categories_are_grouped_sorted_and_deduplicated() {
        let given = vec!["b".to_owned(), "a".to_owned(), "b".to_owned()];
        assert_eq!(normalized(&given), ["a", "b"]);
        let grouped = group(vec![
            (1, "z".into()),
            (2, "x".into()),
            (1, "B".into()),
            (1, "a".into()),
        ]);
        assert_eq!(grouped[&1], ["B", "a", "z"]);
        assert_eq!(grouped[&2], ["x"]);
    }

    #[test]
    fn empty_changes_are_empty() {
        assert!(ProductChanges::default().is_empty());
        let clear_image = ProductChanges {
            image_url: Some(None),
            ..ProductChanges::default()
        };
        assert!(!clear_image.is_empty());
    }
}
