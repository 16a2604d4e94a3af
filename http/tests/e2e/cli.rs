//! The command line and configuration: `mall migrate`, config files, env overrides, and
//! start-up refusals.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use uuid::Uuid;

use crate::harness::{ADMIN_EMAIL, Backend, ServerBuilder, jwt_claims, random_secret, sign_jwt};

/// How long a process that should exit (or refuse to start) may take.
const EXIT_TIMEOUT: Duration = Duration::from_secs(60);

both_backends!(migrate_applies_the_schema);

/// A TOML basic string.
fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

async fn migrate_applies_the_schema(backend: Backend) {
    let db = backend.empty_database().await;
    for run in 1..=2 {
        let mut process = ServerBuilder::bare()
            .env("MALL__DATABASE__URL", db.url())
            .args(&["migrate"])
            .spawn();
        let status = process.wait_exit(EXIT_TIMEOUT).await;
        assert!(
            status.success(),
            "mall migrate (run {run}) failed with {status}\n{}",
            process.output_report()
        );
        assert!(
            process.listening_addr().is_none(),
            "mall migrate must not serve"
        );
    }
    // The migrated database serves.
    let server = ServerBuilder::new(db.url()).start().await;
    let user = server.new_user("migrated").await;
    assert_eq!(server.me_status(user.access()).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_config_key_is_refused() {
    let db = Backend::Sqlite.database().await;
    let mut process = ServerBuilder::new(db.url())
        .env("MALL__SERVER__NOPE", "1")
        .spawn();
    let status = process.wait_exit(EXIT_TIMEOUT).await;
    let output = process.output_report();
    assert!(!status.success(), "an unknown key was accepted\n{output}");
    assert!(
        process.listening_addr().is_none(),
        "it listened despite an unknown key\n{output}"
    );
    let said = format!("{}{}", process.stdout(), process.stderr()).to_lowercase();
    assert!(
        said.contains("nope"),
        "the error should name the unknown key\n{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_needs_a_jwt_secret() {
    let db = Backend::Sqlite.database().await;
    let mut process = ServerBuilder::new(db.url())
        .env("MALL__SHOP__ENV", "production")
        .without("MALL__AUTH__JWT_SECRET")
        .spawn();
    let status = process.wait_exit(EXIT_TIMEOUT).await;
    assert!(
        !status.success(),
        "production started with the built-in dev secret\n{}",
        process.output_report()
    );
    assert!(process.listening_addr().is_none());
    drop(process);

    // With a secret of its own, production starts.
    let server = ServerBuilder::new(db.url())
        .env("MALL__SHOP__ENV", "production")
        .start()
        .await;
    server.get("/healthz", None).await.expect(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_and_env_overrides() {
    let db = Backend::Sqlite.database().await;
    let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let admin_password = random_secret("admin-pw");
    let config = format!(
        "[server]\nbind = \"127.0.0.1:0\"\n\n\
         [database]\nurl = {}\n\n\
         [auth]\njwt_secret = {}\naccess_ttl_secs = 100\nclock_leeway_secs = 0\n\n\
         [bootstrap]\nadmin_email = {}\nadmin_password = {}\n\n\
         [rate_limit]\nenabled = false\n",
        toml_str(db.url()),
        toml_str(&secret),
        toml_str(ADMIN_EMAIL),
        toml_str(&admin_password),
    );

    // `--config PATH`, from a directory without config.toml.
    let config_dir = tempfile::tempdir().unwrap();
    let path = config_dir.path().join("custom.toml");
    std::fs::write(&path, &config).unwrap();
    let mut server = ServerBuilder::bare()
        .args(&["serve", "--config", path.to_str().unwrap()])
        .start()
        .await;
    server.process.secret = secret.clone();
    server.process.admin_password = admin_password.clone();
    let admin = server.admin().await;
    assert_eq!(
        admin.body["expires_in"], 100,
        "access_ttl_secs from the file"
    );
    // The file's secret signs the tokens.
    let resigned = sign_jwt(&jwt_claims(&admin.access), &secret, Algorithm::HS256);
    assert_eq!(server.me_status(&resigned).await, 200);
    drop(server);

    // `config.toml` in the working directory, with `serve` implied; env beats the file.
    let work_dir = tempfile::tempdir().unwrap();
    std::fs::write(work_dir.path().join("config.toml"), &config).unwrap();
    let mut server = ServerBuilder::bare()
        .args(&[])
        .current_dir(work_dir.path())
        .env("MALL__AUTH__ACCESS_TTL_SECS", "200")
        .start()
        .await;
    server.process.admin_password = admin_password.clone();
    let admin = server.admin().await;
    assert_eq!(
        admin.body["expires_in"], 200,
        "MALL__AUTH__ACCESS_TTL_SECS should override the file"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_subcommand_fails() {
    let db = Backend::Sqlite.database().await;
    let mut process = ServerBuilder::new(db.url()).args(&["frobnicate"]).spawn();
    let status = process.wait_exit(EXIT_TIMEOUT).await;
    assert!(
        !status.success(),
        "`mall frobnicate` succeeded\n{}",
        process.output_report()
    );
    assert!(process.listening_addr().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_admin_survives_restart() {
    let db = Backend::Sqlite.database().await;
    let first = ServerBuilder::new(db.url()).start().await;
    let password = first.process.admin_password.clone();
    let user = first.new_user("restart").await;
    drop(first);

    // Same database, same admin settings: the admin and the user are still there.
    let second = ServerBuilder::new(db.url())
        .env("MALL__BOOTSTRAP__ADMIN_PASSWORD", &password)
        .start()
        .await;
    let admin = second.admin().await;
    second
        .get(
            &format!("/api/v1/admin/users/{}", user.id),
            Some(&admin.access),
        )
        .await
        .expect(200);
    second.login(&user.email, &user.password).await;
}
