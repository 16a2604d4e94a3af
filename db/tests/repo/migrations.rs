//! Migrations: applied once (a second run applies nothing) and seeding the built-in roles.

use mall_db::models::PermissionRow;
use mall_db::repo::{roles, users};
use mall_db::testing::TestDatabase;

use crate::common::{connect, rd};

fn perm(role: &str, position: i32, method: &str, path: &str) -> PermissionRow {
    PermissionRow {
        role_name: role.to_owned(),
        position,
        method: method.to_owned(),
        path: path.to_owned(),
        effect: "allow".to_owned(),
    }
}

async fn apply_once_and_seed(database: TestDatabase) {
    let url = database.url();
    let first = mall_db::migrate::run_pending_async(url)
        .await
        .expect("first run");
    assert!(
        first.iter().any(|v| v.replace('-', "") == "20261126000001"),
        "the identity migration is applied: {first:?}"
    );
    let mut in_order = first.clone();
    in_order.sort();
    assert_eq!(first, in_order, "applied oldest first");

    let db = connect(url);
    // A second and a third run, with the pool open, find nothing left to do.
    let second = mall_db::migrate::run_pending_async(url)
        .await
        .expect("second run");
    assert!(second.is_empty(), "second run applied {second:?}");
    db.ping().await.expect("database answers");
    let third = mall_db::migrate::run_pending_async(url)
        .await
        .expect("third run");
    assert!(third.is_empty(), "third run applied {third:?}");

    let all = roles::list_all(&mut rd(&db).await).await.expect("list_all");
    let names: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["admin", "customer", "merchant"]);

    assert_eq!(
        all[0].permissions,
        [perm("admin", 0, "*", "/.*")],
        "admin may do anything"
    );
    // Later migrations may add permissions; these are the identity migration's promises.
    let customer = &all[1].permissions;
    assert_eq!(
        customer[0],
        perm("customer", 0, "GET", "/api/v1/auth/verify")
    );
    assert!(customer.contains(&perm("customer", 6, "*", "/api/v1/payments(/.*)?")));
    assert!(
        customer.iter().all(|p| p.effect == "allow"
            && !(p.path.starts_with("/api/v1/products") && p.method != "GET")),
        "customers cannot manage products"
    );
    let merchant = &all[2].permissions;
    assert!(merchant.contains(&perm("merchant", 7, "POST", "/api/v1/products")));
    assert!(merchant.contains(&perm("merchant", 9, "DELETE", "/api/v1/products/[^/]+")));
    for role in &all {
        let positions: Vec<i32> = role.permissions.iter().map(|p| p.position).collect();
        let expected: Vec<i32> = (0..).take(positions.len()).collect();
        assert_eq!(positions, expected, "positions of {}", role.name);
    }

    assert_eq!(
        roles::policy_version(&mut rd(&db).await)
            .await
            .expect("policy_version"),
        1
    );
    let page = users::list(&mut rd(&db).await, None, 1, 20)
        .await
        .expect("list");
    assert_eq!(
        (page.items.len(), page.total),
        (0, 0),
        "no users are seeded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_seed_sqlite() {
    apply_once_and_seed(TestDatabase::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_apply_once_and_seed_postgres() {
    apply_once_and_seed(TestDatabase::postgres().await).await;
}
