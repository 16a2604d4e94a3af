//! `repo::sessions`: logins, refresh-token rotation and reuse detection, revocation, housekeeping.

use std::sync::Arc;

use mall_db::models::SessionRow;
use mall_db::repo::sessions::{self, Rotation};
use mall_db::{Db, DbError, clock};
use time::Duration;

use crate::common::{
    add_user, auth, login, login_until, next_id, rd, refresh_token, session_of, successor,
    token_hash, wr,
};

on_both_backends!(
    create_checks_user_and_is_atomic,
    rotate_then_reuse_ends_the_login,
    expired_and_unknown_tokens_are_invalid,
    concurrent_rotation_has_one_winner,
    revoke_touches_only_the_owners_session,
    revoke_all_keeps_the_given_session,
    session_of_token_and_purge_expired_tokens,
);

async fn rotate(db: &Db, hash: &str, next: &str) -> Rotation {
    sessions::rotate(&mut wr(db).await, hash, successor(next), clock::now())
        .await
        .expect("rotate")
}

async fn create_checks_user_and_is_atomic(db: &Db) {
    let user = add_user(db, "pat@example.com", &[]).await;
    let now = clock::now();
    let session = |id: i64, user_id: i64| SessionRow {
        id,
        user_id,
        created_at: now,
        revoked_at: None,
        revoke_reason: None,
    };

    let ghost = next_id();
    let err = sessions::create(
        &mut wr(db).await,
        session(next_id(), ghost),
        refresh_token(&token_hash(), 0, now + Duration::hours(1)),
    )
    .await
    .expect_err("a login of a user that does not exist");
    assert!(
        matches!(err, DbError::ForeignKeyViolation(_)),
        "got {err:?}"
    );

    let (first, hash) = login(db, user.id).await;
    assert_eq!(session_of(db, &hash).await.id, first);

    // A second login whose first token collides with a stored one is not half-recorded.
    let second = next_id();
    let err = sessions::create(
        &mut wr(db).await,
        session(second, user.id),
        refresh_token(&hash, second, now + Duration::hours(1)),
    )
    .await
    .expect_err("duplicate token hash");
    assert!(matches!(err, DbError::UniqueViolation(_)), "got {err:?}");
    assert!(
        !sessions::revoke(&mut wr(db).await, user.id, second, "logout", now)
            .await
            .expect("revoke"),
        "the session row was rolled back"
    );
    assert_eq!(
        session_of(db, &hash).await.id,
        first,
        "the stored token is untouched"
    );
}

async fn rotate_then_reuse_ends_the_login(db: &Db) {
    let user = add_user(db, "quinn@example.com", &["customer"]).await;
    let (sid, t0) = login(db, user.id).await;
    let rotated = Rotation::Rotated {
        session_id: sid,
        user_id: user.id,
    };

    let t1 = token_hash();
    assert_eq!(rotate(db, &t0, &t1).await, rotated);
    let spent = session_of(db, &t1).await;
    assert_eq!(spent.id, sid, "the successor joins the same login");
    let t2 = token_hash();
    assert_eq!(
        rotate(db, &t1, &t2).await,
        rotated,
        "the successor rotates in turn"
    );
    assert!(!auth(db, user.id, sid).await.session_revoked);

    // t0 was spent: presenting it again is theft, and ends the login.
    let t3 = token_hash();
    assert_eq!(
        rotate(db, &t0, &t3).await,
        Rotation::Reused { user_id: user.id }
    );
    let ended = session_of(db, &t0).await;
    assert!(ended.revoked_at.is_some());
    assert_eq!(ended.revoke_reason.as_deref(), Some("refresh_token_reused"));
    assert!(auth(db, user.id, sid).await.session_revoked);
    assert_eq!(
        sessions::session_of_token(&mut rd(db).await, &t3)
            .await
            .expect("session_of_token"),
        None,
        "no successor is stored on reuse"
    );

    // The newest token of the ended login is worthless now, and so is any replay.
    assert_eq!(rotate(db, &t2, &token_hash()).await, Rotation::Invalid);
    assert_eq!(rotate(db, &t0, &token_hash()).await, Rotation::Invalid);
    assert_eq!(
        session_of(db, &t0).await.revoked_at,
        ended.revoked_at,
        "ended once"
    );
}

async fn expired_and_unknown_tokens_are_invalid(db: &Db) {
    let user = add_user(db, "ruth@example.com", &[]).await;
    let now = clock::now();
    let (old_sid, old) = login_until(db, user.id, now - Duration::seconds(1)).await;
    let (edge_sid, edge) = login_until(db, user.id, now).await;

    for (sid, hash) in [(old_sid, &old), (edge_sid, &edge)] {
        let next = token_hash();
        let outcome = sessions::rotate(&mut wr(db).await, hash, successor(&next), now)
            .await
            .expect("rotate");
        assert_eq!(outcome, Rotation::Invalid, "expired at or before now");
        assert_eq!(
            sessions::session_of_token(&mut rd(db).await, &next)
                .await
                .expect("session_of_token"),
            None
        );
        // Not spent, so presenting it again is not reuse, and the login itself lives on.
        let again = sessions::rotate(&mut wr(db).await, hash, successor(&token_hash()), now)
            .await
            .expect("rotate");
        assert_eq!(again, Rotation::Invalid);
        assert!(!auth(db, user.id, sid).await.session_revoked);
    }

    // A token still valid a moment before its expiry rotates.
    let (sid, fresh) = login_until(db, user.id, now + Duration::seconds(30)).await;
    assert_eq!(
        sessions::rotate(&mut wr(db).await, &fresh, successor(&token_hash()), now)
            .await
            .expect("rotate"),
        Rotation::Rotated {
            session_id: sid,
            user_id: user.id
        }
    );

    assert_eq!(
        rotate(db, &token_hash(), &token_hash()).await,
        Rotation::Invalid,
        "unknown hash"
    );
}

async fn concurrent_rotation_has_one_winner(db: &Db) {
    const RACERS: usize = 8;
    let user = add_user(db, "sam@example.com", &[]).await;
    for round in 0..4 {
        let (sid, presented) = login(db, user.id).await;
        let start = Arc::new(tokio::sync::Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let db = db.clone();
                let start = Arc::clone(&start);
                let presented = presented.clone();
                let next = token_hash();
                tokio::spawn(async move {
                    start.wait().await;
                    let mut conn = db.write().await.expect("write connection");
                    let outcome =
                        sessions::rotate(&mut conn, &presented, successor(&next), clock::now())
                            .await
                            .expect("rotate");
                    (next, outcome)
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for racer in racers {
            outcomes.push(racer.await.expect("racer finishes"));
        }

        let winners: Vec<&String> = outcomes
            .iter()
            .filter(|(_, o)| {
                *o == Rotation::Rotated {
                    session_id: sid,
                    user_id: user.id,
                }
            })
            .map(|(next, _)| next)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let reused = outcomes
            .iter()
            .filter(|(_, o)| *o == Rotation::Reused { user_id: user.id })
            .count();
        assert_eq!(
            1 + reused
                + outcomes
                    .iter()
                    .filter(|(_, o)| *o == Rotation::Invalid)
                    .count(),
            RACERS,
            "round {round}: {outcomes:?}"
        );
        assert!(
            reused >= 1,
            "round {round}: the first loser sees reuse: {outcomes:?}"
        );

        // Only the winner's successor was stored, and the reuse ended the login.
        for (next, _) in &outcomes {
            let stored = sessions::session_of_token(&mut rd(db).await, next)
                .await
                .expect("session_of_token");
            assert_eq!(stored.is_some(), next == winners[0], "round {round}");
        }
        assert!(
            auth(db, user.id, sid).await.session_revoked,
            "round {round}"
        );
        assert_eq!(
            rotate(db, winners[0], &token_hash()).await,
            Rotation::Invalid
        );
    }
}

async fn revoke_touches_only_the_owners_session(db: &Db) {
    let owner = add_user(db, "tom@example.com", &[]).await;
    let intruder = add_user(db, "uma@example.com", &[]).await;
    let (s1, t1) = login(db, owner.id).await;
    let (s2, t2) = login(db, owner.id).await;
    let now = clock::now();

    assert!(
        !sessions::revoke(&mut wr(db).await, intruder.id, s1, "logout", now)
            .await
            .expect("revoke"),
        "not the intruder's session"
    );
    assert!(!auth(db, owner.id, s1).await.session_revoked);

    assert!(
        sessions::revoke(&mut wr(db).await, owner.id, s1, "logout", now)
            .await
            .expect("revoke")
    );
    let ended = session_of(db, &t1).await;
    assert_eq!(ended.revoked_at, Some(now));
    assert_eq!(ended.revoke_reason.as_deref(), Some("logout"));
    assert!(auth(db, owner.id, s1).await.session_revoked);
    assert!(
        !auth(db, owner.id, s2).await.session_revoked,
        "the other login lives"
    );
    assert_eq!(session_of(db, &t2).await.revoked_at, None);

    let later = now + Duration::minutes(1);
    assert!(
        !sessions::revoke(&mut wr(db).await, owner.id, s1, "again", later)
            .await
            .expect("revoke"),
        "already ended"
    );
    assert_eq!(session_of(db, &t1).await, ended, "the first ending stands");
    assert!(
        !sessions::revoke(&mut wr(db).await, owner.id, next_id(), "logout", now)
            .await
            .expect("revoke")
    );
    assert_eq!(rotate(db, &t1, &token_hash()).await, Rotation::Invalid);
}

async fn revoke_all_keeps_the_given_session(db: &Db) {
    let user = add_user(db, "vera@example.com", &[]).await;
    let other = add_user(db, "walt@example.com", &[]).await;
    let (keep, _) = login(db, user.id).await;
    let (s2, t2) = login(db, user.id).await;
    let (s3, t3) = login(db, user.id).await;
    let (gone, tg) = login(db, user.id).await;
    let (theirs, _) = login(db, other.id).await;
    let now = clock::now();
    assert!(
        sessions::revoke(&mut wr(db).await, user.id, gone, "logout", now)
            .await
            .expect("revoke")
    );

    let later = now + Duration::minutes(1);
    let ended = sessions::revoke_all(
        &mut wr(db).await,
        user.id,
        Some(keep),
        "password_changed",
        later,
    )
    .await
    .expect("revoke_all");
    assert_eq!(ended, 2, "the live ones except the kept one");
    for (sid, hash) in [(s2, &t2), (s3, &t3)] {
        assert!(auth(db, user.id, sid).await.session_revoked);
        let row = session_of(db, hash).await;
        assert_eq!(row.revoked_at, Some(later));
        assert_eq!(row.revoke_reason.as_deref(), Some("password_changed"));
    }
    assert!(!auth(db, user.id, keep).await.session_revoked, "kept");
    let earlier = session_of(db, &tg).await;
    assert_eq!(
        (earlier.revoked_at, earlier.revoke_reason.as_deref()),
        (Some(now), Some("logout")),
        "an ended login keeps its first ending"
    );
    assert!(
        !auth(db, other.id, theirs).await.session_revoked,
        "other users untouched"
    );

    let all = sessions::revoke_all(&mut wr(db).await, user.id, None, "banned", later)
        .await
        .expect("revoke_all");
    assert_eq!(all, 1, "only the kept one was left");
    assert!(auth(db, user.id, keep).await.session_revoked);
    assert_eq!(
        sessions::revoke_all(&mut wr(db).await, user.id, None, "banned", later)
            .await
            .expect("revoke_all"),
        0
    );
    assert!(!auth(db, other.id, theirs).await.session_revoked);
}

async fn session_of_token_and_purge_expired_tokens(db: &Db) {
    let user = add_user(db, "xena@example.com", &[]).await;
    let now = clock::now();
    let created = SessionRow {
        id: next_id(),
        user_id: user.id,
        created_at: now,
        revoked_at: None,
        revoke_reason: None,
    };
    let first = token_hash();
    sessions::create(
        &mut wr(db).await,
        created.clone(),
        refresh_token(&first, created.id, now - Duration::hours(2)),
    )
    .await
    .expect("create");
    assert_eq!(session_of(db, &first).await, created, "the row as written");
    assert_eq!(
        sessions::session_of_token(&mut rd(db).await, &token_hash())
            .await
            .expect("session_of_token"),
        None
    );

    let (_, hour_ago) = login_until(db, user.id, now - Duration::hours(1)).await;
    let (_, at_cutoff) = login_until(db, user.id, now).await;
    let (live_sid, live) = login_until(db, user.id, now + Duration::hours(1)).await;
    let spent_then_rotated = token_hash();
    assert_eq!(
        sessions::rotate(
            &mut wr(db).await,
            &live,
            successor(&spent_then_rotated),
            now
        )
        .await
        .expect("rotate"),
        Rotation::Rotated {
            session_id: live_sid,
            user_id: user.id
        }
    );

    let purged = sessions::purge_expired_tokens(&mut wr(db).await, now)
        .await
        .expect("purge");
    assert_eq!(purged, 2, "tokens that expired strictly before the cut-off");
    for hash in [&first, &hour_ago] {
        assert_eq!(
            sessions::session_of_token(&mut rd(db).await, hash)
                .await
                .expect("session_of_token"),
            None
        );
    }
    for hash in [&at_cutoff, &live, &spent_then_rotated] {
        session_of(db, hash).await;
    }
    assert!(
        !auth(db, user.id, created.id).await.session_revoked,
        "purging tokens does not end logins"
    );
    assert_eq!(
        sessions::purge_expired_tokens(&mut wr(db).await, now)
            .await
            .expect("purge"),
        0
    );
}
