//! Repository tests of the catalog (`mall_db::repo::products`), each on SQLite and PostgreSQL.

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test, with its reason"
)]

use std::sync::LazyLock;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use mall_db::models::{NewProduct, NewUser, ProductRow};
use mall_db::repo::products::{self, ProductChanges, ProductSort, ProductWithCategories};
use mall_db::repo::users;
use mall_db::schema::{product_categories, products as products_table};
use mall_db::testing::TestDatabase;
use mall_db::{Db, DbConn, DbError, IdGenerator, PoolOptions, clock, with_conn};
use time::{Duration, PrimitiveDateTime};

/// Generates, for each `async fn name(db: &Db)`, a module `name` with the tests `sqlite` and
/// `postgres` (`macro_rules!` cannot paste identifiers), each on a freshly migrated database.
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let database = mall_db::testing::TestDatabase::sqlite().await;
                let db = crate::migrated(&database).await;
                super::$name(&db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let database = mall_db::testing::TestDatabase::postgres_migrated().await;
                let db = crate::migrated(&database).await;
                super::$name(&db).await;
            }
        }
    )+};
}

on_both_backends!(
    insert_and_find,
    insert_refuses_what_the_schema_forbids,
    find_many_returns_live_products_only,
    list_sorts_pages_and_counts,
    list_filters_by_text_and_category,
    search_takes_sql_wildcards_literally,
    update_changes_only_what_is_given,
    update_and_delete_ignore_deleted_and_unknown_products,
    soft_delete_keeps_the_row,
);

static IDS: LazyLock<IdGenerator> = LazyLock::new(|| IdGenerator::new(3));

async fn migrated(database: &TestDatabase) -> Db {
    mall_db::migrate::run_pending_async(database.url())
        .await
        .expect("migrations apply");
    Db::connect(database.url(), &PoolOptions::default()).expect("pool opens")
}

async fn wr(db: &Db) -> DbConn {
    db.write().await.expect("write connection")
}

async fn rd(db: &Db) -> DbConn {
    db.read().await.expect("read connection")
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| (*s).to_owned()).collect()
}

/// A user to own products.
async fn merchant(db: &Db) -> i64 {
    let id = IDS.next_id();
    let now = clock::now();
    let user = NewUser {
        id,
        email: format!("m{id}@example.com"),
        email_norm: format!("m{id}@example.com"),
        name: "merchant".into(),
        password_hash: "$argon2id$not-a-real-hash".into(),
        password_changed_at: now,
        created_at: now,
        updated_at: now,
    };
    users::insert(&mut wr(db).await, user, &[])
        .await
        .expect("user inserted")
        .id
}

fn new_product(
    merchant_id: i64,
    name: &str,
    price_cents: i64,
    created_at: PrimitiveDateTime,
) -> NewProduct {
    NewProduct {
        id: IDS.next_id(),
        merchant_id,
        name: name.to_owned(),
        description: String::new(),
        price_cents,
        stock: 5,
        image_url: None,
        created_at,
        updated_at: created_at,
    }
}

async fn insert(db: &Db, product: NewProduct, categories: &[&str]) -> ProductWithCategories {
    products::insert(&mut wr(db).await, product, &strings(categories))
        .await
        .expect("product inserted")
}

/// The names of a page's products, in order.
fn names(items: &[ProductWithCategories]) -> Vec<String> {
    items.iter().map(|(p, _)| p.name.clone()).collect()
}

async fn list(
    db: &Db,
    q: Option<&str>,
    category: Option<&str>,
    sort: ProductSort,
    page: u32,
    page_size: u32,
) -> (Vec<String>, i64) {
    let found = products::list(&mut rd(db).await, q, category, sort, page, page_size)
        .await
        .expect("list");
    (names(&found.items), found.total)
}

async fn search(db: &Db, q: &str) -> Vec<String> {
    let (mut found, total) = list(db, Some(q), None, ProductSort::Newest, 1, 100).await;
    assert_eq!(total as usize, found.len(), "total of {q:?}");
    found.sort();
    found
}

async fn insert_and_find(db: &Db) {
    let m = merchant(db).await;
    let mut p = new_product(m, "Green TEA Pot", 1999, clock::now());
    p.description = "Cast IRON, 1 l".into();
    p.image_url = Some("https://cdn.example/pot.png".into());
    let id = p.id;
    let (row, categories) = insert(db, p.clone(), &["tea", "Kitchen", "tea"]).await;
    assert_eq!(row.id, id);
    assert_eq!(row.merchant_id, m);
    assert_eq!(row.search_text, "green tea pot\ncast iron, 1 l");
    assert_eq!(row.version, 1);
    assert_eq!(row.deleted_at, None);
    assert_eq!(categories, ["Kitchen", "tea"]);

    let (found, found_categories) = products::find(&mut rd(db).await, id)
        .await
        .expect("find")
        .expect("the product exists");
    assert_eq!(found, row);
    assert_eq!(found.created_at, p.created_at);
    assert_eq!(
        found.image_url.as_deref(),
        Some("https://cdn.example/pot.png")
    );
    assert_eq!(found_categories, ["Kitchen", "tea"]);

    // Without categories.
    let (bare, none) = insert(db, new_product(m, "bare", 0, clock::now()), &[]).await;
    assert!(none.is_empty());
    let (_, none) = products::find(&mut rd(db).await, bare.id)
        .await
        .unwrap()
        .unwrap();
    assert!(none.is_empty());

    assert!(
        products::find(&mut rd(db).await, IDS.next_id())
            .await
            .unwrap()
            .is_none()
    );
    let by_id = products::categories_of(&mut rd(db).await, &[id, bare.id])
        .await
        .unwrap();
    assert_eq!(by_id[&id], ["Kitchen", "tea"]);
    assert!(!by_id.contains_key(&bare.id));
}

async fn insert_refuses_what_the_schema_forbids(db: &Db) {
    let m = merchant(db).await;
    let mut negative_stock = new_product(m, "n", 1, clock::now());
    negative_stock.stock = -1;
    let err = products::insert(&mut wr(db).await, negative_stock, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::CheckViolation(_)), "{err:?}");
    let negative_price = new_product(m, "n", -1, clock::now());
    let err = products::insert(&mut wr(db).await, negative_price, &[])
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::CheckViolation(_)), "{err:?}");
    let orphan = new_product(IDS.next_id(), "n", 1, clock::now());
    let err = products::insert(&mut wr(db).await, orphan, &strings(&["c"]))
        .await
        .unwrap_err();
    assert!(matches!(err, DbError::ForeignKeyViolation(_)), "{err:?}");
    // Nothing of the failed inserts is left behind.
    let (found, total) = list(db, None, None, ProductSort::Newest, 1, 100).await;
    assert!(found.is_empty() && total == 0, "{found:?}");
}

async fn find_many_returns_live_products_only(db: &Db) {
    let m = merchant(db).await;
    let now = clock::now();
    let (a, _) = insert(db, new_product(m, "a", 1, now), &["x", "y"]).await;
    let (b, _) = insert(db, new_product(m, "b", 2, now), &["z"]).await;
    let (c, _) = insert(db, new_product(m, "c", 3, now), &[]).await;
    assert!(
        products::soft_delete(&mut wr(db).await, b.id, now)
            .await
            .unwrap()
    );
    let found = products::find_many(&mut rd(db).await, &[c.id, b.id, IDS.next_id(), a.id, a.id])
        .await
        .unwrap();
    let got: Vec<(i64, Vec<String>)> = found.into_iter().map(|(p, cats)| (p.id, cats)).collect();
    assert_eq!(got, [(a.id, strings(&["x", "y"])), (c.id, vec![])]);
    assert!(
        products::find_many(&mut rd(db).await, &[])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn list_sorts_pages_and_counts(db: &Db) {
    let m = merchant(db).await;
    let t0 = clock::now();
    // Created a second apart, in this order; two share a price, two share a creation time.
    let specs = [
        ("p1", 500, 0),
        ("p2", 100, 1),
        ("p3", 300, 2),
        ("p4", 300, 3),
        ("p5", 900, 3),
    ];
    for (name, price, secs) in specs {
        insert(
            db,
            new_product(m, name, price, t0 + Duration::seconds(secs)),
            &[],
        )
        .await;
    }
    let (deleted, _) = insert(
        db,
        new_product(m, "gone", 50, t0 + Duration::seconds(9)),
        &[],
    )
    .await;
    assert!(
        products::soft_delete(&mut wr(db).await, deleted.id, t0)
            .await
            .unwrap()
    );

    let all = |sort| list(db, None, None, sort, 1, 100);
    // Equal creation times: the higher (later) id first.
    assert_eq!(
        all(ProductSort::Newest).await,
        (strings(&["p5", "p4", "p3", "p2", "p1"]), 5)
    );
    // Equal prices: by id, in the direction of the sort.
    assert_eq!(
        all(ProductSort::PriceAsc).await,
        (strings(&["p2", "p3", "p4", "p1", "p5"]), 5)
    );
    assert_eq!(
        all(ProductSort::PriceDesc).await,
        (strings(&["p5", "p1", "p4", "p3", "p2"]), 5)
    );

    assert_eq!(
        list(db, None, None, ProductSort::PriceAsc, 1, 2).await,
        (strings(&["p2", "p3"]), 5)
    );
    assert_eq!(
        list(db, None, None, ProductSort::PriceAsc, 2, 2).await,
        (strings(&["p4", "p1"]), 5)
    );
    assert_eq!(
        list(db, None, None, ProductSort::PriceAsc, 3, 2).await,
        (strings(&["p5"]), 5)
    );
    assert_eq!(
        list(db, None, None, ProductSort::PriceAsc, 4, 2).await,
        (vec![], 5)
    );
    assert_eq!(
        list(db, None, None, ProductSort::Newest, 99, 100).await,
        (vec![], 5)
    );
}

async fn list_filters_by_text_and_category(db: &Db) {
    let m = merchant(db).await;
    let t0 = clock::now();
    let mut tea_pot = new_product(m, "Tea Pot", 300, t0);
    tea_pot.description = "Brews GREEN tea".into();
    insert(db, tea_pot, &["Kitchen", "tea"]).await;
    let mut mug = new_product(m, "Mug", 100, t0 + Duration::seconds(1));
    mug.description = "for green TEA or coffee".into();
    insert(db, mug, &["kitchen"]).await;
    insert(
        db,
        new_product(m, "Green Chair", 200, t0 + Duration::seconds(2)),
        &["Furniture"],
    )
    .await;
    let (gone, _) = insert(db, new_product(m, "Green tea (old)", 50, t0), &["tea"]).await;
    assert!(
        products::soft_delete(&mut wr(db).await, gone.id, t0)
            .await
            .unwrap()
    );

    // Any case, name or description.
    assert_eq!(search(db, "GREEN").await, ["Green Chair", "Mug", "Tea Pot"]);
    assert_eq!(search(db, "tea").await, ["Mug", "Tea Pot"]);
    assert_eq!(search(db, "coffee").await, ["Mug"]);
    assert_eq!(search(db, "nothing like it").await, Vec::<String>::new());

    // Categories match exactly (case included).
    let by_category = |c| list(db, None, Some(c), ProductSort::PriceAsc, 1, 100);
    assert_eq!(by_category("Kitchen").await, (strings(&["Tea Pot"]), 1));
    assert_eq!(by_category("kitchen").await, (strings(&["Mug"]), 1));
    assert_eq!(by_category("tea").await, (strings(&["Tea Pot"]), 1));
    assert_eq!(by_category("Kitch").await, (vec![], 0));

    // Both filters at once, and empty filters filter nothing.
    assert_eq!(
        list(
            db,
            Some("green"),
            Some("kitchen"),
            ProductSort::Newest,
            1,
            100
        )
        .await,
        (strings(&["Mug"]), 1)
    );
    assert_eq!(
        list(db, Some(""), Some(""), ProductSort::PriceAsc, 1, 100)
            .await
            .1,
        3
    );

    // Categories come with the listed products.
    let page = products::list(
        &mut rd(db).await,
        Some("pot"),
        None,
        ProductSort::Newest,
        1,
        10,
    )
    .await
    .unwrap();
    assert_eq!(page.items[0].1, ["Kitchen", "tea"]);
}

async fn search_takes_sql_wildcards_literally(db: &Db) {
    let m = merchant(db).await;
    for name in [
        "100% cotton",
        "1000 cotton",
        "snake_case",
        "snakeXcase",
        "O'Brien",
        "OBrien",
        "back\\slash",
        "backslash",
        "a.*b",
        "axxb",
    ] {
        insert(db, new_product(m, name, 1, clock::now()), &[]).await;
    }
    assert_eq!(search(db, "100%").await, ["100% cotton"]);
    assert_eq!(search(db, "%").await, ["100% cotton"]);
    assert_eq!(search(db, "_").await, ["snake_case"]);
    assert_eq!(search(db, "e_c").await, ["snake_case"]);
    assert_eq!(search(db, "'").await, ["O'Brien"]);
    assert_eq!(search(db, "o'b").await, ["O'Brien"]);
    assert_eq!(search(db, "\\").await, ["back\\slash"]);
    assert_eq!(search(db, "k\\s").await, ["back\\slash"]);
    assert_eq!(search(db, ".*").await, ["a.*b"]);
    assert_eq!(search(db, "a.*b").await, ["a.*b"]);
    assert_eq!(search(db, "cotton").await, ["100% cotton", "1000 cotton"]);
}

async fn update_changes_only_what_is_given(db: &Db) {
    let m = merchant(db).await;
    let created = clock::now() - Duration::minutes(5);
    let mut p = new_product(m, "Old Name", 100, created);
    p.description = "Old Words".into();
    p.image_url = Some("https://cdn.example/a.png".into());
    let (before, _) = insert(db, p, &["a", "b"]).await;
    let now = clock::now();

    // Only the price: name, text, categories and picture stay.
    let (row, cats) = products::update(
        &mut wr(db).await,
        before.id,
        ProductChanges {
            price_cents: Some(250),
            ..ProductChanges::default()
        },
        now,
    )
    .await
    .unwrap()
    .expect("live product");
    assert_eq!(row.price_cents, 250);
    assert_eq!(row.name, "Old Name");
    assert_eq!(row.search_text, "old name\nold words");
    assert_eq!(row.image_url, before.image_url);
    assert_eq!(row.version, 2);
    assert_eq!(row.updated_at, now);
    assert_eq!(row.created_at, created);
    assert_eq!(cats, ["a", "b"]);

    // The name alone: the search text follows, with the stored description.
    let (row, _) = products::update(
        &mut wr(db).await,
        before.id,
        ProductChanges {
            name: Some("Shiny KETTLE".into()),
            ..ProductChanges::default()
        },
        now,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(row.search_text, "shiny kettle\nold words");
    assert_eq!(search(db, "kettle").await, ["Shiny KETTLE"]);
    assert_eq!(search(db, "old name").await, Vec::<String>::new());

    // Everything else: categories replaced, picture removed.
    let (row, cats) = products::update(
        &mut wr(db).await,
        before.id,
        ProductChanges {
            description: Some("Boils WATER".into()),
            stock: Some(0),
            categories: Some(strings(&["z", "c", "z"])),
            image_url: Some(None),
            ..ProductChanges::default()
        },
        now,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(row.search_text, "shiny kettle\nboils water");
    assert_eq!(row.stock, 0);
    assert_eq!(row.image_url, None);
    assert_eq!(row.version, 4);
    assert_eq!(cats, ["c", "z"]);
    let (stored, stored_cats) = products::find(&mut rd(db).await, before.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, row);
    assert_eq!(stored_cats, ["c", "z"]);
    assert_eq!(
        list(db, None, Some("a"), ProductSort::Newest, 1, 10)
            .await
            .1,
        0
    );
    assert_eq!(
        list(db, None, Some("z"), ProductSort::Newest, 1, 10)
            .await
            .1,
        1
    );

    // A picture again, and an empty category list.
    let (row, cats) = products::update(
        &mut wr(db).await,
        before.id,
        ProductChanges {
            image_url: Some(Some("http://cdn.example/b.png".into())),
            categories: Some(vec![]),
            ..ProductChanges::default()
        },
        now,
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(row.image_url.as_deref(), Some("http://cdn.example/b.png"));
    assert!(cats.is_empty());

    // A negative stock is refused by the schema and changes nothing.
    let err = products::update(
        &mut wr(db).await,
        before.id,
        ProductChanges {
            stock: Some(-1),
            name: Some("never".into()),
            ..ProductChanges::default()
        },
        now,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, DbError::CheckViolation(_)), "{err:?}");
    let (stored, _) = products::find(&mut rd(db).await, before.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.name, "Shiny KETTLE");
}

async fn update_and_delete_ignore_deleted_and_unknown_products(db: &Db) {
    let m = merchant(db).await;
    let (p, _) = insert(db, new_product(m, "p", 1, clock::now()), &["c"]).await;
    let now = clock::now();
    let rename = || ProductChanges {
        name: Some("renamed".into()),
        ..ProductChanges::default()
    };
    assert!(
        products::update(&mut wr(db).await, IDS.next_id(), rename(), now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !products::soft_delete(&mut wr(db).await, IDS.next_id(), now)
            .await
            .unwrap()
    );
    assert!(
        products::soft_delete(&mut wr(db).await, p.id, now)
            .await
            .unwrap()
    );
    assert!(
        !products::soft_delete(&mut wr(db).await, p.id, now)
            .await
            .unwrap()
    );
    assert!(
        products::update(&mut wr(db).await, p.id, rename(), now)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        products::find(&mut rd(db).await, p.id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        list(db, None, Some("c"), ProductSort::Newest, 1, 10).await,
        (vec![], 0)
    );
    assert_eq!(search(db, "p").await, Vec::<String>::new());
}

async fn soft_delete_keeps_the_row(db: &Db) {
    let m = merchant(db).await;
    let (p, _) = insert(db, new_product(m, "kept", 1, clock::now()), &["c"]).await;
    let now = clock::now();
    assert!(
        products::soft_delete(&mut wr(db).await, p.id, now)
            .await
            .unwrap()
    );
    let id = p.id;
    let mut conn = rd(db).await;
    let (row, categories) = with_conn!(&mut conn, c => async {
        let row: ProductRow = products_table::table
            .find(id)
            .select(ProductRow::as_select())
            .first(c)
            .await?;
        let categories: Vec<String> = product_categories::table
            .filter(product_categories::product_id.eq(id))
            .select(product_categories::category)
            .load(c)
            .await?;
        Ok::<_, diesel::result::Error>((row, categories))
    }.await)
    .expect("the row is still there");
    assert_eq!(row.deleted_at, Some(now));
    assert_eq!(row.updated_at, now);
    assert_eq!(row.version, 2);
    assert_eq!(row.name, "kept");
    assert_eq!(categories, ["c"]);
}
