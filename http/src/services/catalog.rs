//! The product service: creating, reading, searching, changing and deleting catalog products,
//! with the contract's validation rules and ownership (a product's merchant or an admin).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use mall_db::models::{NewProduct, ProductRow};
use mall_db::repo::products::{ProductChanges, ProductSort};
use mall_db::{Db, IdGenerator, clock, money, repo};

use super::{Announce, Notice, Principal, Problems, ServiceError, parse_id};

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

/// A product as its merchant describes it at creation.
#[derive(Debug, Clone, Default)]
pub struct ProductDraft {
    /// 1..=200 characters, not only spaces.
    pub name: String,
    /// At most 5000 characters (none: empty).
    pub description: Option<String>,
    /// Minor units.
    pub price_cents: i64,
    /// Quantity on sale.
    pub stock: i64,
    /// Categories (trimmed, repeats dropped).
    pub categories: Option<Vec<String>>,
    /// An `http(s)://` picture.
    pub image_url: Option<String>,
}

/// A partial change as given: `None` leaves a field alone, `Some(None)` is a `null` (refused
/// for every field but the picture, which it removes).
#[derive(Debug, Clone, Default)]
pub struct ProductPatch {
    /// A new name.
    pub name: Option<Option<String>>,
    /// A new description.
    pub description: Option<Option<String>>,
    /// A new price.
    pub price_cents: Option<Option<i64>>,
    /// A new stock level.
    pub stock: Option<Option<i64>>,
    /// The complete new list of categories.
    pub categories: Option<Option<Vec<String>>>,
    /// A new picture, or `Some(None)` to remove it.
    pub image_url: Option<Option<String>>,
}

/// A search of the live catalog.
#[derive(Debug, Clone, Default)]
pub struct Search {
    /// Text in the name or description (at most 200 characters).
    pub q: Option<String>,
    /// One category, exactly.
    pub category: Option<String>,
    /// `newest` (default), `price_asc` or `price_desc`.
    pub sort: Option<String>,
}

/// A stored product and its categories.
pub type Product = (ProductRow, Vec<String>);

/// What a batch found: the live products in the order asked (each once), and the ids (as
/// given, each once) that name none.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The products found.
    pub found: Vec<Product>,
    /// The ids that name no live product.
    pub missing: Vec<String>,
}

/// The product's merchant and admins may change it; anyone else may not.
fn authorize(caller: Principal, product: &ProductRow) -> Result<(), ServiceError> {
    if product.merchant_id == caller.user_id || caller.admin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden(
            "only the product's merchant or an admin may change it".into(),
        ))
    }
}

/// Checks a creation request; returns its cleaned categories.
fn validate_create(draft: &ProductDraft) -> Result<Vec<String>, ServiceError> {
    let mut problems = Problems::default();
    problems.note("name", name_problem(&draft.name));
    problems.note(
        "description",
        draft.description.as_deref().and_then(description_problem),
    );
    problems.note("price_cents", price_problem(draft.price_cents));
    problems.note("stock", stock_problem(draft.stock));
    let categories = checked_categories(&mut problems, draft.categories.as_deref().unwrap_or(&[]));
    problems.note(
        "image_url",
        draft.image_url.as_deref().and_then(image_url_problem),
    );
    problems.finish()?;
    Ok(categories)
}

/// Checks a partial update and turns it into repository changes.
fn validate_update(patch: ProductPatch) -> Result<ProductChanges, ServiceError> {
    let mut problems = Problems::default();
    let name = present(&mut problems, "name", patch.name);
    let description = present(&mut problems, "description", patch.description);
    let price_cents = present(&mut problems, "price_cents", patch.price_cents);
    let stock = present(&mut problems, "stock", patch.stock);
    let categories = present(&mut problems, "categories", patch.categories)
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
        patch
            .image_url
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
        image_url: patch.image_url,
    })
}

/// The value of a field that may not be `null` (a `null` is noted as a problem).
fn present<T>(problems: &mut Problems, field: &'static str, value: Option<Option<T>>) -> Option<T> {
    if let Some(None) = value {
        problems.note(field, Some(NOT_NULL.to_owned()));
    }
    value.flatten()
}

/// The catalog service.
#[derive(Clone)]
pub struct Catalog {
    db: Db,
    ids: Arc<IdGenerator>,
    notices: Arc<dyn Announce>,
}

impl Catalog {
    /// The service over `db`; `notices` hears of every change to a product, before it is
    /// acknowledged, so that every node's cached copy is forgotten.
    pub fn new(db: Db, ids: Arc<IdGenerator>, notices: Arc<dyn Announce>) -> Self {
        Catalog { db, ids, notices }
    }

    /// A new product; `merchant_id` is its merchant.
    pub async fn create(
        &self,
        merchant_id: i64,
        draft: ProductDraft,
    ) -> Result<Product, ServiceError> {
        let categories = validate_create(&draft)?;
        let now = clock::now();
        let product = NewProduct {
            id: self.ids.next_id(),
            merchant_id,
            name: draft.name,
            description: draft.description.unwrap_or_default(),
            price_cents: draft.price_cents,
            stock: draft.stock,
            image_url: draft.image_url,
            created_at: now,
            updated_at: now,
        };
        let mut conn = self.db.write().await?;
        let (row, categories) = repo::products::insert(&mut conn, product, &categories).await?;
        tracing::info!(
            product_id = row.id,
            merchant_id = row.merchant_id,
            "product created"
        );
        Ok((row, categories))
    }

    /// A live product.
    pub async fn get(&self, id: i64) -> Result<Product, ServiceError> {
        let mut conn = self.db.read().await?;
        repo::products::find(&mut conn, id)
            .await?
            .ok_or(ServiceError::NotFound("product"))
    }

    /// The live products among `ids` (as given: anything that is not one of our ids is missing).
    pub async fn batch(&self, ids: &[String]) -> Result<Batch, ServiceError> {
        if !(1..=MAX_BATCH_IDS).contains(&ids.len()) {
            return Err(ServiceError::invalid_field(
                "ids",
                format!("must hold 1 to {MAX_BATCH_IDS} ids"),
            ));
        }
        let asked: Vec<(&str, Option<i64>)> = ids
            .iter()
            .map(|raw| (raw.as_str(), parse_id(raw)))
            .collect();
        let mut wanted: Vec<i64> = asked.iter().filter_map(|(_, id)| *id).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let rows = {
            let mut conn = self.db.read().await?;
            repo::products::find_many(&mut conn, &wanted).await?
        };
        let mut by_id: HashMap<i64, Product> = rows.into_iter().map(|p| (p.0.id, p)).collect();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        let mut missing_seen: HashSet<&str> = HashSet::new();
        let mut shown: HashSet<i64> = HashSet::new();
        for (raw, id) in asked {
            match id {
                Some(id) if shown.contains(&id) => {}
                Some(id) if by_id.contains_key(&id) => {
                    if let Some(product) = by_id.remove(&id) {
                        found.push(product);
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
        Ok(Batch { found, missing })
    }

    /// A page of the live products matching `search`.
    pub async fn list(
        &self,
        search: &Search,
        page: u32,
        page_size: u32,
    ) -> Result<repo::Page<Product>, ServiceError> {
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
        let mut conn = self.db.read().await?;
        Ok(repo::products::list(
            &mut conn,
            search.q.as_deref(),
            search.category.as_deref(),
            sort,
            page,
            page_size,
        )
        .await?)
    }

    /// Changes some fields of a live product (its merchant or an admin). Not found comes
    /// before forbidden, forbidden before bad values; an empty change answers the product as is.
    pub async fn update(
        &self,
        caller: Principal,
        id: i64,
        patch: ProductPatch,
    ) -> Result<Product, ServiceError> {
        let (current, categories) = self.get(id).await?;
        authorize(caller, &current)?;
        let changes = validate_update(patch)?;
        if changes.is_empty() {
            return Ok((current, categories));
        }
        let changed = {
            let mut conn = self.db.write().await?;
            repo::products::update(&mut conn, id, changes, clock::now())
                .await?
                .ok_or(ServiceError::NotFound("product"))?
        };
        self.notices.announce(Notice::Products(vec![id])).await;
        tracing::info!(product_id = id, by = caller.user_id, "product changed");
        Ok(changed)
    }

    /// Takes a live product out of the catalog (its merchant or an admin).
    pub async fn delete(&self, caller: Principal, id: i64) -> Result<(), ServiceError> {
        let (current, _) = self.get(id).await?;
        authorize(caller, &current)?;
        let deleted = {
            let mut conn = self.db.write().await?;
            repo::products::soft_delete(&mut conn, id, clock::now()).await?
        };
        if !deleted {
            return Err(ServiceError::NotFound("product"));
        }
        self.notices.announce(Notice::Products(vec![id])).await;
        tracing::info!(product_id = id, by = caller.user_id, "product deleted");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use mall_db::testing::TestDatabase;

    use super::*;
    use crate::services::accounts::Accounts;
    use crate::services::password::Hasher;
    use crate::services::testing::{Heard, Orders, on_both, pool, user};

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    fn create_req() -> ProductDraft {
        ProductDraft {
            name: "Tea pot".into(),
            description: None,
            price_cents: 0,
            stock: 0,
            categories: None,
            image_url: None,
        }
    }

    /// The fields an error names, sorted.
    fn fields(err: ServiceError) -> Vec<String> {
        let mut names = crate::services::testing::fields(err);
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
        let bad = ProductDraft {
            name: String::new(),
            description: Some("d".repeat(5001)),
            price_cents: -1,
            stock: -1,
            categories: Some(strings(&[""])),
            image_url: Some("ftp://x".into()),
        };
        let err = validate_create(&bad).unwrap_err();
        assert_eq!(
            fields(err),
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
        let with = |price_cents, stock| ProductDraft {
            price_cents,
            stock,
            ..create_req()
        };
        assert!(validate_create(&with(money::MAX_PRICE_CENTS, money::MAX_STOCK)).is_ok());
        let err = validate_create(&with(i64::MAX, money::MAX_STOCK + 1)).unwrap_err();
        assert_eq!(fields(err), ["price_cents", "stock"]);
        let patch = ProductPatch {
            price_cents: Some(Some(money::MAX_PRICE_CENTS + 1)),
            stock: Some(Some(i64::MAX)),
            ..ProductPatch::default()
        };
        assert_eq!(
            fields(validate_update(patch).unwrap_err()),
            ["price_cents", "stock"]
        );
    }

    #[test]
    fn updates_refuse_null_except_for_the_picture() {
        let clear = ProductPatch {
            image_url: Some(None),
            ..ProductPatch::default()
        };
        let changes = validate_update(clear).unwrap();
        assert_eq!(changes.image_url, Some(None));
        assert!(!changes.is_empty());
        assert!(validate_update(ProductPatch::default()).unwrap().is_empty());

        let nulls = ProductPatch {
            name: Some(None),
            description: Some(None),
            price_cents: Some(None),
            stock: Some(None),
            categories: Some(None),
            image_url: None,
        };
        let err = validate_update(nulls).unwrap_err();
        assert_eq!(
            fields(err),
            ["categories", "description", "name", "price_cents", "stock"]
        );

        let bad = ProductPatch {
            name: Some(Some(" ".into())),
            price_cents: Some(Some(-5)),
            stock: Some(Some(-1)),
            image_url: Some(Some("nope".into())),
            ..ProductPatch::default()
        };
        let err = validate_update(bad).unwrap_err();
        assert_eq!(fields(err), ["image_url", "name", "price_cents", "stock"]);

        let good = ProductPatch {
            name: Some(Some("New".into())),
            stock: Some(Some(0)),
            categories: Some(Some(strings(&[" a ", "a"]))),
            ..ProductPatch::default()
        };
        let changes = validate_update(good).unwrap();
        assert_eq!(changes.name.as_deref(), Some("New"));
        assert_eq!(changes.stock, Some(0));
        assert_eq!(changes.categories, Some(strings(&["a"])));
        assert_eq!(changes.price_cents, None);
    }

    /// The catalog over `db` (its notices heard by the last value), and three accounts to act:
    /// two merchants and one more.
    async fn catalog(db: &TestDatabase) -> (Catalog, [i64; 3], Arc<Heard>) {
        let pool = pool(db).await;
        let ids = Arc::new(IdGenerator::new(1));
        let accounts = Accounts::new(
            pool.clone(),
            ids.clone(),
            Hasher,
            Arc::new(Orders::default()),
            Arc::new(Heard::default()),
        );
        let mut users = [0; 3];
        for (slot, name) in users.iter_mut().zip(["merchant", "other", "admin"]) {
            *slot = user(&accounts, name).await;
        }
        let heard = Arc::new(Heard::default());
        (Catalog::new(pool, ids, heard.clone()), users, heard)
    }

    #[tokio::test]
    async fn only_the_merchant_or_an_admin_changes_a_product_and_deleted_ones_are_gone() {
        on_both(
            async |db| db,
            async |db: TestDatabase| {
                let (catalog, [merchant, other, admin], heard) = catalog(&db).await;
                let (merchant, other, admin) = (
                    Principal {
                        user_id: merchant,
                        admin: false,
                    },
                    Principal {
                        user_id: other,
                        admin: false,
                    },
                    Principal {
                        user_id: admin,
                        admin: true,
                    },
                );
                let draft = ProductDraft {
                    categories: Some(strings(&[" tea ", "tea", "kitchen"])),
                    ..create_req()
                };
                let (row, categories) = catalog.create(merchant.user_id, draft).await.unwrap();
                assert_eq!(
                    (row.merchant_id, categories),
                    (merchant.user_id, strings(&["kitchen", "tea"]))
                );
                let id = row.id;
                let rename = |name: &str| ProductPatch {
                    name: Some(Some(name.to_owned())),
                    ..ProductPatch::default()
                };
                let refused = catalog.update(other, id, rename("Mine now")).await;
                assert!(matches!(refused, Err(ServiceError::Forbidden(_))));
                // Ownership is checked before the values: a stranger learns nothing about them.
                let refused = catalog.update(other, id, rename("")).await;
                assert!(matches!(refused, Err(ServiceError::Forbidden(_))));
                let (changed, _) = catalog
                    .update(merchant, id, rename("Kettle"))
                    .await
                    .unwrap();
                assert_eq!(changed.name, "Kettle");
                let (changed, _) = catalog
                    .update(admin, id, rename("Big kettle"))
                    .await
                    .unwrap();
                assert_eq!(changed.name, "Big kettle");
                let (same, _) = catalog
                    .update(merchant, id, ProductPatch::default())
                    .await
                    .unwrap();
                assert_eq!(
                    same.version, changed.version,
                    "an empty change writes nothing"
                );
                // Every change, and only a change, tells the caches to forget the product.
                let told = vec![Notice::Products(vec![id]); 2];
                assert_eq!(heard.all(), told);

                let refused = catalog.delete(other, id).await;
                assert!(matches!(refused, Err(ServiceError::Forbidden(_))));
                catalog.delete(merchant, id).await.unwrap();
                assert_eq!(heard.all().len(), 3, "the delete is announced");
                for gone in [
                    catalog.get(id).await.map(|_| ()),
                    catalog.delete(admin, id).await,
                    catalog.update(admin, id, rename("x")).await.map(|_| ()),
                ] {
                    assert!(
                        matches!(gone, Err(ServiceError::NotFound("product"))),
                        "{gone:?}"
                    );
                }
            },
        )
        .await;
    }

    #[tokio::test]
    async fn batches_answer_in_the_order_asked_and_name_what_is_missing() {
        on_both(
            async |db| db,
            async |db: TestDatabase| {
                let (catalog, [seller, ..], _) = catalog(&db).await;
                let mut ids = Vec::new();
                for name in ["a", "b", "c"] {
                    let draft = ProductDraft {
                        name: name.into(),
                        ..create_req()
                    };
                    ids.push(
                        catalog
                            .create(seller, draft)
                            .await
                            .unwrap()
                            .0
                            .id
                            .to_string(),
                    );
                }
                let merchant = Principal {
                    user_id: seller,
                    admin: false,
                };
                catalog
                    .delete(merchant, ids[1].parse().unwrap())
                    .await
                    .unwrap();
                let asked = strings(&[&ids[2], "007", &ids[0], &ids[2], &ids[1], "007", "x"]);
                let batch = catalog.batch(&asked).await.unwrap();
                let names: Vec<&str> = batch.found.iter().map(|(p, _)| p.name.as_str()).collect();
                assert_eq!(names, ["c", "a"]);
                assert_eq!(batch.missing, strings(&["007", &ids[1], "x"]));
                for bad in [Vec::new(), vec![ids[0].clone(); MAX_BATCH_IDS + 1]] {
                    let err = catalog.batch(&bad).await.unwrap_err();
                    assert_eq!(fields(err), ["ids"]);
                }

                let search = |sort: &str| Search {
                    sort: Some(sort.to_owned()),
                    ..Search::default()
                };
                let page = catalog.list(&search("newest"), 1, 10).await.unwrap();
                assert_eq!(page.total, 2, "the deleted product is not listed");
                let bad = Search {
                    q: Some("q".repeat(MAX_QUERY_CHARS + 1)),
                    ..search("cheapest")
                };
                assert_eq!(
                    fields(catalog.list(&bad, 1, 10).await.unwrap_err()),
                    ["q", "sort"]
                );
            },
        )
        .await;
    }
}
