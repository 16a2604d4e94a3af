//! `schema.rs` (kept by hand) says what the migrations make, on both backends: the same tables,
//! the same columns, the same nullability; and both migration trees hold the same migrations.

use std::collections::BTreeMap;
use std::path::Path;

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Text};
use diesel_async::RunQueryDsl;
use mall_db::{Db, DbConn};

use crate::common::rd;

on_both_backends!(schema_rs_matches_the_migrated_database);

/// `table -> column -> nullable`.
type Columns = BTreeMap<String, BTreeMap<String, bool>>;

/// The tables and columns `schema.rs` declares, read from its `table!` blocks.
fn declared() -> Columns {
    let source = include_str!("../../src/schema.rs");
    let mut tables = Columns::new();
    let mut current: Option<String> = None;
    for line in source.lines().map(str::trim) {
        if let Some((name, _)) = line.split_once(" (").filter(|_| line.ends_with('{')) {
            current = Some(name.to_owned());
            tables.entry(name.to_owned()).or_default();
        } else if let (Some(table), Some((column, ty))) = (&current, line.split_once(" -> ")) {
            let nullable = ty.starts_with("Nullable<");
            tables
                .entry(table.clone())
                .or_default()
                .insert(column.to_owned(), nullable);
        } else if line == "}" {
            current = None;
        }
    }
    tables
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    is_nullable: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = BigInt)]
    not_null: i64,
    #[diesel(sql_type = BigInt)]
    primary_key: i64,
}

/// The tables and columns of the migrated database (without the migrations' own table).
async fn migrated(db: &Db) -> Columns {
    let mut conn = rd(db).await;
    let rows: Vec<(String, String, bool)> = match &mut conn {
        DbConn::Pg(c) => diesel::sql_query(
            "SELECT table_name::text AS table_name, column_name::text AS column_name, \
             is_nullable::text AS is_nullable FROM information_schema.columns \
             WHERE table_schema = 'public'",
        )
        .load::<PgColumn>(&mut **c)
        .await
        .expect("columns")
        .into_iter()
        .map(|r| (r.table_name, r.column_name, r.is_nullable == "YES"))
        .collect(),
        DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT m.name AS table_name, p.name AS column_name, p.\"notnull\" AS not_null, \
             p.pk AS primary_key FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
        )
        .load::<SqliteColumn>(&mut **c)
        .await
        .expect("columns")
        .into_iter()
        // SQLite lets a primary key column be NULL unless told; the migrations' keys never are.
        .map(|r| {
            (
                r.table_name,
                r.column_name,
                r.not_null == 0 && r.primary_key == 0,
            )
        })
        .collect(),
    };
    let mut tables = Columns::new();
    for (table, column, nullable) in rows {
        if table != "__diesel_schema_migrations" {
            tables.entry(table).or_default().insert(column, nullable);
        }
    }
    tables
}

async fn schema_rs_matches_the_migrated_database(db: &Db) {
    let declared = declared();
    assert!(declared.len() >= 10, "schema.rs parsed to {declared:?}");
    let migrated = migrated(db).await;
    let names = |c: &Columns| c.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&declared), names(&migrated), "tables");
    for (table, columns) in &declared {
        assert_eq!(
            Some(columns),
            migrated.get(table),
            "columns of {table} (name -> nullable): schema.rs, then the database"
        );
    }
}

fn migration_names(backend: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../migrations")
        .join(backend);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

#[test]
fn both_migration_trees_hold_the_same_migrations() {
    let postgres = migration_names("postgres");
    assert!(!postgres.is_empty());
    assert_eq!(postgres, migration_names("sqlite"));
    for backend in ["postgres", "sqlite"] {
        for name in migration_names(backend) {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../migrations")
                .join(backend)
                .join(&name);
            for file in ["up.sql", "down.sql"] {
                assert!(dir.join(file).is_file(), "{backend}/{name} has no {file}");
            }
        }
    }
}
