//! `repo::users`: accounts, email uniqueness among open accounts, roles, profile, ban, close,
//! listing and the per-request auth state.

use mall_db::repo::{roles, sessions, users};
use mall_db::{Db, DbError, clock};
use time::Duration;

use crate::common::{
    add_user, auth, login, new_user, next_id, rd, session_of, strings, successor, token_hash, wr,
};

on_both_backends!(
    insert_then_find,
    open_email_is_unique_until_closed,
    roles_sorted_and_unknown_skipped,
    update_profile_changes_only_what_is_given,
    set_roles_is_all_or_nothing,
    ban_ends_logins_and_lifting_keeps_them_ended,
    close_ends_logins_and_frees_nothing_else,
    list_filters_literally_and_paginates,
    auth_state_edge_cases,
);

async fn insert_then_find(db: &Db) {
    let new = new_user("Alice.Smith@Example.COM");
    let id = new.id;
    let row = users::insert(&mut wr(db).await, new.clone(), &strings(&["customer"]))
        .await
        .expect("insert");
    assert_eq!(row.id, id);
    assert_eq!(row.email, "Alice.Smith@Example.COM", "email kept as typed");
    assert_eq!(row.email_norm, "alice.smith@example.com");
    assert_eq!(row.name, new.name);
    assert_eq!(row.password_hash, new.password_hash);
    assert_eq!(row.created_at, new.created_at);
    assert_eq!(row.password_changed_at, new.password_changed_at);
    assert_eq!(
        (row.banned_at, row.ban_reason.as_deref(), row.closed_at),
        (None, None, None)
    );
    assert_eq!(row.version, 1, "version starts at 1");

    let found = users::find(&mut rd(db).await, id).await.expect("find");
    assert_eq!(
        found.as_ref(),
        Some(&row),
        "find reads back what insert returned"
    );
    let by_email = users::find_open_by_email(&mut rd(db).await, "alice.smith@example.com")
        .await
        .expect("find_open_by_email");
    assert_eq!(by_email, Some(row));

    assert_eq!(
        users::find(&mut rd(db).await, next_id())
            .await
            .expect("find"),
        None
    );
    assert_eq!(
        users::find_open_by_email(&mut rd(db).await, "bob@example.com")
            .await
            .expect("find_open_by_email"),
        None
    );
    assert_eq!(
        users::roles_of(&mut rd(db).await, id)
            .await
            .expect("roles_of"),
        ["customer"]
    );
}

async fn open_email_is_unique_until_closed(db: &Db) {
    let first = add_user(db, "carol@example.com", &["customer"]).await;

    // Same address in other letter case: same normalised email.
    let dup = new_user("Carol@EXAMPLE.com");
    let dup_id = dup.id;
    let err = users::insert(&mut wr(db).await, dup, &strings(&["admin"]))
        .await
        .expect_err("a second open account with the same email");
    assert!(matches!(err, DbError::UniqueViolation(_)), "got {err:?}");
    // The failed insert left nothing behind, not even its role grants.
    assert_eq!(
        users::find(&mut rd(db).await, dup_id).await.expect("find"),
        None
    );
    assert!(
        users::roles_of(&mut rd(db).await, dup_id)
            .await
            .expect("roles_of")
            .is_empty()
    );

    assert!(
        users::close(&mut wr(db).await, first.id, clock::now())
            .await
            .expect("close")
    );
    assert_eq!(
        users::find_open_by_email(&mut rd(db).await, "carol@example.com")
            .await
            .expect("find_open_by_email"),
        None,
        "a closed account is not found by email"
    );

    let second = add_user(db, "CAROL@example.com", &["customer"]).await;
    let open = users::find_open_by_email(&mut rd(db).await, "carol@example.com")
        .await
        .expect("find_open_by_email")
        .expect("the new account");
    assert_eq!(open.id, second.id);
    let old = users::find(&mut rd(db).await, first.id)
        .await
        .expect("find")
        .expect("closed accounts are kept");
    assert!(old.closed_at.is_some());

    // And the reopened address is unique again.
    let err = users::insert(&mut wr(db).await, new_user("carol@example.com"), &[])
        .await
        .expect_err("a third open account");
    assert!(matches!(err, DbError::UniqueViolation(_)), "got {err:?}");
}

async fn roles_sorted_and_unknown_skipped(db: &Db) {
    let user = add_user(
        db,
        "dave@example.com",
        &["merchant", "no-such-role", "admin", "customer"],
    )
    .await;
    assert_eq!(
        users::roles_of(&mut rd(db).await, user.id)
            .await
            .expect("roles_of"),
        ["admin", "customer", "merchant"]
    );

    let only_unknown = add_user(db, "erin@example.com", &["ghost"]).await;
    assert!(
        users::roles_of(&mut rd(db).await, only_unknown.id)
            .await
            .expect("roles_of")
            .is_empty()
    );
    assert!(
        users::roles_of(&mut rd(db).await, next_id())
            .await
            .expect("roles_of")
            .is_empty(),
        "an unknown user has no roles"
    );

    // A role deleted by an admin is skipped at registration, the others are still granted.
    assert!(
        roles::delete(&mut wr(db).await, "merchant")
            .await
            .expect("delete")
    );
    let later = add_user(db, "frank@example.com", &["customer", "merchant"]).await;
    assert_eq!(
        users::roles_of(&mut rd(db).await, later.id)
            .await
            .expect("roles_of"),
        ["customer"]
    );
}

async fn update_profile_changes_only_what_is_given(db: &Db) {
    let user = add_user(db, "grace@example.com", &["customer"]).await;
    let t1 = user.created_at + Duration::minutes(1);
    let renamed = users::update_profile(&mut wr(db).await, user.id, Some("Grace Hopper"), None, t1)
        .await
        .expect("update_profile")
        .expect("an open user");
    assert_eq!(renamed.name, "Grace Hopper");
    assert_eq!(
        renamed.password_hash, user.password_hash,
        "password untouched"
    );
    assert_eq!(
        renamed.password_changed_at, user.password_changed_at,
        "a new name is not a password change"
    );
    assert_eq!(renamed.updated_at, t1);
    assert_eq!(renamed.version, user.version + 1);
    assert_eq!(
        users::find(&mut rd(db).await, user.id)
            .await
            .expect("find")
            .as_ref(),
        Some(&renamed),
        "the returned row is what is stored"
    );

    let t2 = t1 + Duration::minutes(1);
    let rehashed =
        users::update_profile(&mut wr(db).await, user.id, None, Some("$argon2id$new"), t2)
            .await
            .expect("update_profile")
            .expect("an open user");
    assert_eq!(rehashed.name, "Grace Hopper", "name untouched");
    assert_eq!(rehashed.password_hash, "$argon2id$new");
    assert_eq!(rehashed.password_changed_at, t2);
    assert_eq!(rehashed.updated_at, t2);
    assert_eq!(rehashed.version, user.version + 2);
    assert_eq!(rehashed.created_at, user.created_at);
    assert_eq!(rehashed.email_norm, user.email_norm);

    assert_eq!(
        users::update_profile(&mut wr(db).await, next_id(), Some("Nobody"), None, t2)
            .await
            .expect("update_profile"),
        None,
        "unknown user"
    );

    assert!(
        users::close(&mut wr(db).await, user.id, t2)
            .await
            .expect("close")
    );
    let t3 = t2 + Duration::minutes(1);
    assert_eq!(
        users::update_profile(&mut wr(db).await, user.id, Some("Ghost"), Some("$x"), t3)
            .await
            .expect("update_profile"),
        None,
        "a closed account cannot be edited"
    );
    let closed = users::find(&mut rd(db).await, user.id)
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(closed.name, "Grace Hopper");
    assert_eq!(closed.password_hash, "$argon2id$new");
    assert_eq!(closed.version, user.version + 3, "only close bumped it");
}

async fn set_roles_is_all_or_nothing(db: &Db) {
    let user = add_user(db, "heidi@example.com", &["customer"]).await;
    let now = clock::now();

    let done = users::set_roles(
        &mut wr(db).await,
        user.id,
        &strings(&["merchant", "admin", "merchant"]),
        now,
    )
    .await
    .expect("set_roles");
    assert_eq!(done, users::SetRoles::Done);
    assert_eq!(
        users::roles_of(&mut rd(db).await, user.id)
            .await
            .expect("roles_of"),
        ["admin", "merchant"],
        "replaced, not added to"
    );
    let after = users::find(&mut rd(db).await, user.id)
        .await
        .expect("find")
        .expect("user");
    assert_eq!(after.version, user.version + 1);
    assert_eq!(after.updated_at, now);

    let unknown = users::set_roles(
        &mut wr(db).await,
        user.id,
        &strings(&["phantom", "customer", "ghost"]),
        now + Duration::minutes(1),
    )
    .await
    .expect("set_roles");
    assert_eq!(
        unknown,
        users::SetRoles::UnknownRoles(strings(&["ghost", "phantom"]))
    );
    assert_eq!(
        users::roles_of(&mut rd(db).await, user.id)
            .await
            .expect("roles_of"),
        ["admin", "merchant"],
        "unknown roles change nothing"
    );
    let unchanged = users::find(&mut rd(db).await, user.id)
        .await
        .expect("find")
        .expect("user");
    assert_eq!(unchanged, after, "not even the version");

    assert_eq!(
        users::set_roles(&mut wr(db).await, next_id(), &strings(&["customer"]), now)
            .await
            .expect("set_roles"),
        users::SetRoles::NoSuchUser
    );

    // Another user's roles are not touched; an empty list clears this user's.
    let other = add_user(db, "ivan@example.com", &["customer", "merchant"]).await;
    assert_eq!(
        users::set_roles(&mut wr(db).await, user.id, &[], now)
            .await
            .expect("set_roles"),
        users::SetRoles::Done
    );
    assert!(
        users::roles_of(&mut rd(db).await, user.id)
            .await
            .expect("roles_of")
            .is_empty()
    );
    assert_eq!(
        users::roles_of(&mut rd(db).await, other.id)
            .await
            .expect("roles_of"),
        ["customer", "merchant"]
    );
}

async fn ban_ends_logins_and_lifting_keeps_them_ended(db: &Db) {
    let user = add_user(db, "judy@example.com", &["customer"]).await;
    let bystander = add_user(db, "ken@example.com", &["customer"]).await;
    let (s1, t1) = login(db, user.id).await;
    let (s2, _) = login(db, user.id).await;
    let (sb, _) = login(db, bystander.id).await;
    assert!(!auth(db, user.id, s1).await.session_revoked);

    let now = clock::now();
    assert!(
        users::set_ban(&mut wr(db).await, user.id, Some("fraud"), now)
            .await
            .expect("set_ban")
    );
    let banned = users::find(&mut rd(db).await, user.id)
        .await
        .expect("find")
        .expect("user");
    assert_eq!(banned.banned_at, Some(now));
    assert_eq!(banned.ban_reason.as_deref(), Some("fraud"));
    assert_eq!(banned.version, user.version + 1);
    for session in [s1, s2] {
        let state = auth(db, user.id, session).await;
        assert!(state.banned);
        assert!(!state.closed);
        assert!(state.session_revoked, "ban ends login {session}");
        assert_eq!(state.roles, ["customer"], "a ban keeps the roles");
    }
    let ended = session_of(db, &t1).await;
    assert_eq!(ended.revoked_at, Some(now));
    assert_eq!(ended.revoke_reason.as_deref(), Some("banned"));
    let other = auth(db, bystander.id, sb).await;
    assert!(
        !other.banned && !other.session_revoked,
        "other users are untouched"
    );

    let lifted_at = now + Duration::minutes(5);
    assert!(
        users::set_ban(&mut wr(db).await, user.id, None, lifted_at)
            .await
            .expect("set_ban")
    );
    let lifted = users::find(&mut rd(db).await, user.id)
        .await
        .expect("find")
        .expect("user");
    assert_eq!((lifted.banned_at, lifted.ban_reason), (None, None));
    let state = auth(db, user.id, s1).await;
    assert!(!state.banned);
    assert!(
        state.session_revoked,
        "logins from before the ban stay ended"
    );
    assert_eq!(
        sessions::rotate(
            &mut wr(db).await,
            &t1,
            successor(&token_hash()),
            clock::now()
        )
        .await
        .expect("rotate"),
        sessions::Rotation::Invalid,
        "a pre-ban refresh token stays dead"
    );
    // A login made after the ban was lifted is live.
    let (s3, _) = login(db, user.id).await;
    assert!(!auth(db, user.id, s3).await.session_revoked);

    assert!(
        !users::set_ban(&mut wr(db).await, next_id(), Some("x"), now)
            .await
            .expect("set_ban"),
        "unknown user"
    );
}

async fn close_ends_logins_and_frees_nothing_else(db: &Db) {
    let user = add_user(db, "leo@example.com", &["merchant"]).await;
    let bystander = add_user(db, "mia@example.com", &["customer"]).await;
    let (s1, t1) = login(db, user.id).await;
    let (sb, _) = login(db, bystander.id).await;

    let now = clock::now();
    assert!(
        users::close(&mut wr(db).await, user.id, now)
            .await
            .expect("close")
    );
    let closed = users::find(&mut rd(db).await, user.id)
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(closed.closed_at, Some(now));
    assert_eq!(closed.version, user.version + 1);
    let state = auth(db, user.id, s1).await;
    assert!(state.closed && state.session_revoked && !state.banned);
    assert_eq!(
        session_of(db, &t1).await.revoke_reason.as_deref(),
        Some("account_closed")
    );
    assert!(!auth(db, bystander.id, sb).await.session_revoked);

    assert!(
        !users::close(&mut wr(db).await, user.id, now)
            .await
            .expect("close"),
        "already closed"
    );
    assert!(
        !users::close(&mut wr(db).await, next_id(), now)
            .await
            .expect("close")
    );
    assert!(
        !users::set_ban(&mut wr(db).await, user.id, Some("late"), now)
            .await
            .expect("set_ban"),
        "a closed account cannot be banned"
    );
    let still = users::find(&mut rd(db).await, user.id)
        .await
        .expect("find")
        .expect("kept");
    assert_eq!(still, closed, "the refused ban changed nothing");
}

async fn list_filters_literally_and_paginates(db: &Db) {
    let axb = add_user(db, "axb@example.com", &[]).await;
    let a_b = add_user(db, "a_b@example.com", &["customer"]).await;
    let upper = add_user(db, "Big.A_B@Example.com", &["admin", "customer"]).await;
    let pct = add_user(db, "100%real@example.com", &[]).await;
    let no_pct = add_user(db, "1000real@example.com", &[]).await;
    let slash = add_user(db, "c\\d@example.com", &[]).await;
    let cd = add_user(db, "cd@example.com", &[]).await;
    let all = [&axb, &a_b, &upper, &pct, &no_pct, &slash, &cd];

    async fn ids_for(db: &Db, filter: &str) -> Vec<i64> {
        let page = users::list(&mut rd(db).await, Some(filter), 1, 100)
            .await
            .expect("list");
        assert_eq!(page.total, page.items.len() as i64, "total of {filter:?}");
        page.items.iter().map(|(u, _)| u.id).collect()
    }
    assert_eq!(
        ids_for(db, "a_b").await,
        [a_b.id, upper.id],
        "`_` is literal"
    );
    assert_eq!(
        ids_for(db, "A_B@").await,
        [a_b.id, upper.id],
        "case-insensitive"
    );
    assert_eq!(ids_for(db, "0%r").await, [pct.id], "`%` is literal");
    assert_eq!(ids_for(db, "c\\d").await, [slash.id], "`\\` is literal");
    assert_eq!(ids_for(db, "%").await, [pct.id]);
    assert_eq!(ids_for(db, "_").await, [a_b.id, upper.id]);
    assert_eq!(ids_for(db, "EXAMPLE.COM").await.len(), all.len());
    assert!(ids_for(db, "nobody").await.is_empty());

    // Each item carries that user's roles, sorted.
    let page = users::list(&mut rd(db).await, Some("a_b"), 1, 10)
        .await
        .expect("list");
    let roles: Vec<&[String]> = page.items.iter().map(|(_, r)| r.as_slice()).collect();
    assert_eq!(
        roles,
        [strings(&["customer"]), strings(&["admin", "customer"])]
    );
    assert_eq!(page.items[1].0, upper, "the full row");

    // Pages of 3, oldest first, with the total over all pages.
    let mut seen = Vec::new();
    for (number, len) in [(1, 3), (2, 3), (3, 1), (4, 0)] {
        let page = users::list(&mut rd(db).await, None, number, 3)
            .await
            .expect("list");
        assert_eq!(page.total, all.len() as i64, "total on page {number}");
        assert_eq!(page.items.len(), len, "length of page {number}");
        seen.extend(page.items.into_iter().map(|(u, _)| u.id));
    }
    let expected: Vec<i64> = all.iter().map(|u| u.id).collect();
    assert_eq!(seen, expected, "every user once, in id order");

    let filtered = users::list(&mut rd(db).await, Some("real"), 2, 1)
        .await
        .expect("list");
    assert_eq!(filtered.total, 2);
    assert_eq!(
        filtered.items.iter().map(|(u, _)| u.id).collect::<Vec<_>>(),
        [no_pct.id]
    );
}

async fn auth_state_edge_cases(db: &Db) {
    let user = add_user(db, "nina@example.com", &["merchant", "customer"]).await;
    let other = add_user(db, "oscar@example.com", &["customer"]).await;
    let (own, _) = login(db, user.id).await;
    let (theirs, _) = login(db, other.id).await;

    assert_eq!(
        users::auth_state(&mut rd(db).await, next_id(), own)
            .await
            .expect("auth_state"),
        None,
        "unknown user"
    );
    assert_eq!(
        auth(db, user.id, own).await,
        users::AuthState {
            banned: false,
            closed: false,
            session_revoked: false,
            roles: strings(&["customer", "merchant"]),
        }
    );
    assert!(
        auth(db, user.id, theirs).await.session_revoked,
        "another user's session does not count"
    );
    assert!(
        auth(db, user.id, next_id()).await.session_revoked,
        "unknown session"
    );
    assert!(
        !auth(db, other.id, theirs).await.session_revoked,
        "its owner is still signed in"
    );
}
