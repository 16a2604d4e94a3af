//! The product service: creating, reading, searching, changing and deleting catalog products,
//! with the contract's validation rules and ownership (a product's merchant or an admin).

use std::collections::{HashMap, HashSet};

use mall_db::models::{NewProduct, ProductRow};
use mall_db::repo::products::{ProductChanges, ProductSort};
use mall_db::{clock, money, repo};

use crate::auth::AuthUser;
use crate::auth::identity::{ADMIN_ROLE, parse_id};
use crate::dto::Paged;
use crate::dto::catalog::*;
use crate::error::ApiError;
use crate::state::AppState;

/// Longest product name, in characters.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 5000;
/// Most categories one product may have.
pub const MAX_CATEGORIES: usize = 20;
/// Longest category, in characters (after trimming).
pub const MAX_CATEGORY_CHARS: usize = 64;
/// Longest picture URL, in characters.
pub const MAX_IMAGE_URL_CHARS: usize = 2048;
/// Most ids one batch may ask for.
pub const MAX_BATCH_IDS: usize = 100;
/// Longest search text, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// The `(field, problem)` pairs found so far; all are reported at once.
#[derive(Default)]
struct Problems(Vec<(&'static str, String)>);

impl Problems {
    fn note(&mut self, field: &'static str, problem: Option<String>) {
        if let Some(p) = problem {
            self.0.push((field, p));
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(self.0))
        }
    }
}

fn name_problem(name: &str) -> Option<String> {
    let n = name.chars().count();
    (!(1..=MAX_NAME_CHARS).contains(&n) || name.trim().is_empty())
        .then(|| format!("must be 1 to {MAX_NAME_CHARS} characters, not only spaces"))
}

fn description_problem(description: &str) -> Option<String> {
    (description.chars().count() > MAX_DESCRIPTION_CHARS)
        .then(|| format!("must be at most {MAX_DESCRIPTION_CHARS} characters"))
}

fn price_problem(price_cents: i64) -> Option<String> {
    (!money::price_in_bounds(price_cents))
        .then(|| format!("must be 0 to {}", money::MAX_PRICE_CENTS))
}

fn stock_problem(stock: i64) -> Option<String> {
    (!money::stock_in_bounds(stock)).then(|| format!("must be 0 to {}", money::MAX_STOCK))
}

/// `http://` or `https://` (any case) followed by something.
fn strip_scheme(url: &str) -> Option<&str> {
    ["https://", "http://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|head| head.eq_ignore_ascii_case(scheme))
            .and_then(|_| url.get(scheme.len()..))
    })
}

fn image_url_problem(url: &str) -> Option<String> {
    let ok = url.chars().count() <= MAX_IMAGE_URL_CHARS
        && strip_scheme(url).is_some_and(|rest| !rest.is_empty())
        && !url.chars().any(|c| c.is_whitespace() || c.is_control());
    (!ok).then(|| {
        format!(
            "must be an http:// or https:// URL of at most {MAX_IMAGE_URL_CHARS} characters, without spaces"
        )
    })
}

/// Trims each category and drops repeats (the first stays); otherwise kept as given.
fn clean_categories(given: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for raw in given {
        let category = raw.trim();
        if !(1..=MAX_CATEGORY_CHARS).contains(&category.chars().count()) {
            return Err(format!(
                "each category must be 1 to {MAX_CATEGORY_CHARS} characters (not only spaces)"
            ));
        }
        if !out.iter().any(|c| c == category) {
            out.push(category.to_owned());
        }
    }
    if out.len() > MAX_CATEGORIES {
        return Err(format!("at most {MAX_CATEGORIES} categories"));
    }
    Ok(out)
}

/// Notes the problem of a category list and returns the cleaned list.
fn checked_categories(problems: &mut Problems, given: &[String]) -> Vec<String> {
    clean_categories(given).unwrap_or_else(|p| {
        problems.note("categories", Some(p));
        Vec::new()
    })
}

const NOT_NULL: &str = "must not be null";

fn not_found() -> ApiError {
    ApiError::not_found("product")
}

/// The product's merchant and admins may change it; anyone else gets 403.
fn authorize(caller: &AuthUser, product: &ProductRow) -> Result<(), ApiError> {
    if product.merchant_id == caller.id || caller.has_role(ADMIN_ROLE) {
        Ok(())
    } else {
        Err(ApiError::forbidden(
            "only the product's merchant or an admin may change it",
        ))
    }
}

/// Checks a creation request; returns its cleaned categories.
fn validate_create(req: &CreateProductRequest) -> Result<Vec<String>, ApiError> {
    let mut problems = Problems::default();
    problems.note("name", name_problem(&req.name));
    problems.note(
        "description",
        req.description.as_deref().and_then(description_problem),
    );
    problems.note("price_cents", price_problem(req.price_cents));
    problems.note("stock", stock_problem(req.stock));
    let categories = checked_categories(&mut problems, req.categories.as_deref().unwrap_or(&[]));
    problems.note(
        "image_url",
        req.image_url.as_deref().and_then(image_url_problem),
    );
    problems.finish()?;
    Ok(categories)
}

/// Checks a partial update and turns it into repository changes.
fn validate_update(req: UpdateProductRequest) -> Result<ProductChanges, ApiError> {
    let mut problems = Problems::default();
    let name = present(&mut problems, "name", req.name);
    let description = present(&mut problems, "description", req.description);
    let price_cents = present(&mut problems, "price_cents", req.price_cents);
    let stock = present(&mut problems, "stock", req.stock);
    let categories = present(&mut problems, "categories", req.categories)
        .map(|given| checked_categories(&mut problems, &given));
    problems.note("name", name.as_deref().and_then(name_problem));
    problems.note(
        "description",
        description.as_deref().and_then(description_problem),
    );
    problems.note("price_cents", price_cents.and_then(price_problem));
    problems.note("stock", stock.and_then(stock_problem));
    problems.note(
        "image_url",
        req.image_url
            .as_ref()
            .and_then(|u| u.as_deref())
            .and_then(image_url_problem),
    );
    problems.finish()?;
    Ok(ProductChanges {
        name,
        description,
        price_cents,
        stock,
        categories,
        image_url: req.image_url,
    })
}

/// The value of a field that may not be `null` (a `null` is noted as a problem).
fn present<T>(problems: &mut Problems, field: &'static str, value: Option<Option<T>>) -> Option<T> {
    if let Some(None) = value {
        problems.note(field, Some(NOT_NULL.to_owned()));
    }
    value.flatten()
}

/// `POST /products`: the caller becomes the product's merchant.
pub async fn create(
    st: &AppState,
    caller: &AuthUser,
    req: CreateProductRequest,
) -> Result<ProductView, ApiError> {
    let categories = validate_create(&req)?;
    let now = clock::now();
    let product = NewProduct {
        id: st.ids.next_id(),
        merchant_id: caller.id,
        name: req.name,
        description: req.description.unwrap_or_default(),
        price_cents: req.price_cents,
        stock: req.stock,
        image_url: req.image_url,
        created_at: now,
        updated_at: now,
    };
    let mut conn = st.db.write().await?;
    let (row, categories) = repo::products::insert(&mut conn, product, &categories).await?;
    tracing::info!(
        product_id = row.id,
        merchant_id = row.merchant_id,
        "product created"
    );
    Ok(ProductView::of(&row, categories))
}

/// `GET /products/{id}`: a live product, or 404 (also for an id that is not one of ours).
pub async fn get(st: &AppState, raw_id: &str) -> Result<ProductView, ApiError> {
    let id = parse_id(raw_id, "product")?;
    let mut conn = st.db.read().await?;
    let (row, categories) = repo::products::find(&mut conn, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(ProductView::of(&row, categories))
}

/// `POST /products/batch`: the live products among the ids, in the order asked (each once),
/// and the ids (as given, each once) that name none.
pub async fn batch(st: &AppState, req: BatchRequest) -> Result<BatchResponse, ApiError> {
    if !(1..=MAX_BATCH_IDS).contains(&req.ids.len()) {
        return Err(ApiError::invalid_field(
            "ids",
            format!("must hold 1 to {MAX_BATCH_IDS} ids"),
        ));
    }
    let asked: Vec<(&str, Option<i64>)> = req
        .ids
        .iter()
        .map(|raw| (raw.as_str(), parse_id(raw, "product").ok()))
        .collect();
    let mut wanted: Vec<i64> = asked.iter().filter_map(|(_, id)| *id).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let found = {
        let mut conn = st.db.read().await?;
        repo::products::find_many(&mut conn, &wanted).await?
    };
    let mut by_id: HashMap<i64, (ProductRow, Vec<String>)> =
        found.into_iter().map(|p| (p.0.id, p)).collect();
    let mut items = Vec::new();
    let mut missing = Vec::new();
    let mut missing_seen: HashSet<&str> = HashSet::new();
    let mut shown: HashSet<i64> = HashSet::new();
    for (raw, id) in asked {
        match id {
            Some(id) if shown.contains(&id) => {}
            Some(id) if by_id.contains_key(&id) => {
                if let Some((row, categories)) = by_id.remove(&id) {
                    items.push(ProductView::of(&row, categories));
                }
                shown.insert(id);
            }
            _ => {
                if missing_seen.insert(raw) {
                    missing.push(raw.to_owned());
                }
            }
        }
    }
    Ok(BatchResponse { items, missing })
}

/// `GET /products`: search and list live products.
pub async fn list(
    st: &AppState,
    search: ProductSearch,
    page: u32,
    page_size: u32,
) -> Result<Paged<ProductView>, ApiError> {
    let mut problems = Problems::default();
    let sort = match search.sort.as_deref() {
        None | Some("") => ProductSort::default(),
        Some(name) => ProductSort::parse(name).unwrap_or_else(|| {
            problems.note(
                "sort",
                Some("must be newest, price_asc or price_desc".to_owned()),
            );
            ProductSort::default()
        }),
    };
    problems.note(
        "q",
        search
            .q
            .as_deref()
            .filter(|q| q.chars().count() > MAX_QUERY_CHARS)
            .map(|_| format!("must be at most {MAX_QUERY_CHARS} characters")),
    );
    problems.finish()?;
    let mut conn = st.db.read().await?;
    let found = repo::products::list(
        &mut conn,
        search.q.as_deref(),
        search.category.as_deref(),
        sort,
        page,
        page_size,
    )
    .await?;
    Ok(Paged::of(found, page, page_size, |(row, categories)| {
        ProductView::of(&row, categories)
    }))
}

/// `PATCH /products/{id}`: 404 for no live product, 403 for someone else's, 400 for bad values.
/// An empty change answers the product as it is.
pub async fn update(
    st: &AppState,
    caller: &AuthUser,
    raw_id: &str,
    req: UpdateProductRequest,
) -> Result<ProductView, ApiError> {
    let id = parse_id(raw_id, "product")?;
    let (current, categories) = {
        let mut conn = st.db.read().await?;
        repo::products::find(&mut conn, id)
            .await?
            .ok_or_else(not_found)?
    };
    authorize(caller, &current)?;
    let changes = validate_update(req)?;
    if changes.is_empty() {
        return Ok(ProductView::of(&current, categories));
    }
    let mut conn = st.db.write().await?;
    let (row, categories) = repo::products::update(&mut conn, id, changes, clock::now())
        .await?
        .ok_or_else(not_found)?;
    drop(conn);
    forget_cached(st, id).await;
    tracing::info!(product_id = id, by = caller.id, "product changed");
    Ok(ProductView::of(&row, categories))
}

/// Drops the cached copy of a product that just changed.
async fn forget_cached(st: &AppState, id: i64) {
    if let Some(cache) = &st.product_cache {
        cache.invalidate(&[id]).await;
    }
}

/// `DELETE /products/{id}`: takes the product out of the catalog (404, 403 as for PATCH).
pub async fn delete(st: &AppState, caller: &AuthUser, raw_id: &str) -> Result<(), ApiError> {
    let id = parse_id(raw_id, "product")?;
    let (current, _) = {
        let mut conn = st.db.read().await?;
        repo::products::find(&mut conn, id)
            .await?
            .ok_or_else(not_found)?
    };
    authorize(caller, &current)?;
    let mut conn = st.db.write().await?;
    if !repo::products::soft_delete(&mut conn, id, clock::now()).await? {
        return Err(not_found());
    }
    drop(conn);
    forget_cached(st, id).await;
    tracing::info!(product_id = id, by = caller.id, "product deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn create_req() -> CreateProductRequest {
        CreateProductRequest {
            name: "Tea pot".into(),
            description: None,
            price_cents: 0,
            stock: 0,
            categories: None,
            image_url: None,
        }
    }

    fn fields(err: &ApiError) -> Vec<String> {
        let mut names: Vec<String> = err.details["fields"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }

    #[test]
    fn names_are_1_to_200_characters_not_only_spaces() {
        assert!(name_problem("a").is_none());
        assert!(name_problem(&"é".repeat(200)).is_none());
        assert!(name_problem(&"n".repeat(201)).is_some());
        assert!(name_problem("").is_some());
        assert!(name_problem("   ").is_some());
        assert!(name_problem(" x ").is_none());
    }

    #[test]
    fn descriptions_are_at_most_5000_characters() {
        assert!(description_problem("").is_none());
        assert!(description_problem(&"ü".repeat(5000)).is_none());
        assert!(description_problem(&"d".repeat(5001)).is_some());
    }

    #[test]
    fn image_urls_are_http_or_https() {
        assert!(image_url_problem("https://cdn.example/a.png").is_none());
        assert!(image_url_problem("http://cdn.example/a.png").is_none());
        assert!(image_url_problem("HTTPS://cdn.example/a.png").is_none());
        for bad in [
            "",
            "https://",
            "ftp://cdn.example/a.png",
            "javascript:alert(1)",
            "cdn.example/a.png",
            "https://cdn.example/a b.png",
            "é",
        ] {
            assert!(image_url_problem(bad).is_some(), "{bad:?}");
        }
        let long = format!("https://x.example/{}", "p".repeat(MAX_IMAGE_URL_CHARS));
        assert!(image_url_problem(&long).is_some());
        let fits = format!("https://x.example/{}", "p".repeat(MAX_IMAGE_URL_CHARS - 18));
        assert_eq!(fits.chars().count(), MAX_IMAGE_URL_CHARS);
        assert!(image_url_problem(&fits).is_none());
    }

    #[test]
    fn categories_are_trimmed_deduplicated_and_bounded() {
        assert_eq!(
            clean_categories(&strings(&[" Tea ", "kitchen", "Tea", "tea"])).unwrap(),
            ["Tea", "kitchen", "tea"]
        );
        assert!(clean_categories(&strings(&["ok", "  "])).is_err());
        assert!(clean_categories(&strings(&[&"c".repeat(65)])).is_err());
        assert!(clean_categories(&strings(&[&"c".repeat(64)])).is_ok());
        let twenty: Vec<String> = (0..20).map(|i| format!("c{i}")).collect();
        assert_eq!(clean_categories(&twenty).unwrap().len(), 20);
        let mut twenty_one = twenty.clone();
        twenty_one.push("c20".into());
        assert!(clean_categories(&twenty_one).is_err());
        // Repeats do not count against the limit.
        let mut repeated = twenty;
        repeated.push("c0".into());
        assert!(clean_categories(&repeated).is_ok());
    }

    #[test]
    fn creation_reports_every_problem_at_once() {
        assert!(validate_create(&create_req()).is_ok());
        let bad = CreateProductRequest {
            name: String::new(),
            description: Some("d".repeat(5001)),
            price_cents: -1,
            stock: -1,
            categories: Some(strings(&[""])),
            image_url: Some("ftp://x".into()),
        };
        let err = validate_create(&bad).unwrap_err();
        assert_eq!(err.code, "invalid_request");
        assert_eq!(
            fields(&err),
            [
                "categories",
                "description",
                "image_url",
                "name",
                "price_cents",
                "stock"
            ]
        );
    }

    #[test]
    fn prices_and_stock_keep_within_the_bounds_that_keep_sums_exact() {
        let with = |price_cents, stock| CreateProductRequest {
            price_cents,
            stock,
            ..create_req()
        };
        assert!(validate_create(&with(money::MAX_PRICE_CENTS, money::MAX_STOCK)).is_ok());
        let err = validate_create(&with(i64::MAX, money::MAX_STOCK + 1)).unwrap_err();
        assert_eq!(fields(&err), ["price_cents", "stock"]);
        let patch = UpdateProductRequest {
            price_cents: Some(Some(money::MAX_PRICE_CENTS + 1)),
            stock: Some(Some(i64::MAX)),
            ..UpdateProductRequest::default()
        };
        assert_eq!(
            fields(&validate_update(patch).unwrap_err()),
            ["price_cents", "stock"]
        );
    }

    #[test]
    fn updates_refuse_null_except_for_the_picture() {
        let clear = UpdateProductRequest {
            image_url: Some(None),
            ..UpdateProductRequest::default()
        };
        let changes = validate_update(clear).unwrap();
        assert_eq!(changes.image_url, Some(None));
        assert!(!changes.is_empty());
        assert!(
            validate_update(UpdateProductRequest::default())
                .unwrap()
                .is_empty()
        );

        let nulls = UpdateProductRequest {
            name: Some(None),
            description: Some(None),
            price_cents: Some(None),
            stock: Some(None),
            categories: Some(None),
            image_url: None,
        };
        let err = validate_update(nulls).unwrap_err();
        assert_eq!(
            fields(&err),
            ["categories", "description", "name", "price_cents", "stock"]
        );

        let bad = UpdateProductRequest {
            name: Some(Some(" ".into())),
            price_cents: Some(Some(-5)),
            stock: Some(Some(-1)),
            image_url: Some(Some("nope".into())),
            ..UpdateProductRequest::default()
        };
        let err = validate_update(bad).unwrap_err();
        assert_eq!(fields(&err), ["image_url", "name", "price_cents", "stock"]);

        let good = UpdateProductRequest {
            name: Some(Some("New".into())),
            stock: Some(Some(0)),
            categories: Some(Some(strings(&[" a ", "a"]))),
            ..UpdateProductRequest::default()
        };
        let changes = validate_update(good).unwrap();
        assert_eq!(changes.name.as_deref(), Some("New"));
        assert_eq!(changes.stock, Some(0));
        assert_eq!(changes.categories, Some(strings(&["a"])));
        assert_eq!(changes.price_cents, None);
    }

    #[test]
    fn only_the_merchant_or_an_admin_may_change_a_product() {
        let now = clock::now();
        let product = ProductRow {
            id: 1,
            merchant_id: 10,
            name: "n".into(),
            search_text: "n\n".into(),
            description: String::new(),
            price_cents: 1,
            stock: 1,
            image_url: None,
            created_at: now,
            updated_at: now,
            deleted_at: None,
            version: 1,
        };
        let user = |id, roles: &[&str]| AuthUser {
            id,
            session_id: 1,
            roles: strings(roles),
            expires_at: time::OffsetDateTime::now_utc(),
        };
        assert!(authorize(&user(10, &["merchant"]), &product).is_ok());
        assert!(authorize(&user(11, &["admin"]), &product).is_ok());
        let err = authorize(&user(11, &["merchant"]), &product).unwrap_err();
        assert_eq!(err.code, "forbidden");
    }
}
