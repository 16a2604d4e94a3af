//! `DbError`: the one error type of the persistence layer.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

/// Everything that can go wrong below the actors: callers map it to their own errors.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached now (pool exhausted, connect failure, timeout).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A unique constraint refused the write; the payload names the constraint when known.
    #[error("unique constraint violated: {0}")]
    UniqueViolation(String),
    /// A foreign key refused the write (the referenced row is gone).
    #[error("foreign key violated: {0}")]
    ForeignKeyViolation(String),
    /// A CHECK constraint refused the write.
    #[error("check constraint violated: {0}")]
    CheckViolation(String),
    /// The database URL or pool settings are unusable.
    #[error("invalid database configuration: {0}")]
    Config(String),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// The write was fenced off: a newer owner of the entity's shard exists (its epoch is
    /// greater than the writer's), so the writer must stop writing for that shard.
    #[error("shard {shard} has a newer owner")]
    Fenced {
        /// The shard.
        shard: u32,
    },
    /// Any other query failure (a bug or a broken connection).
    #[error("query failed: {0}")]
    Query(DieselError),
}

impl From<DieselError> for DbError {
    fn from(e: DieselError) -> Self {
        match e {
            DieselError::DatabaseError(kind, info) => {
                let what = info
                    .constraint_name()
                    .map(str::to_owned)
                    .unwrap_or_else(|| info.message().to_owned());
                match kind {
                    DatabaseErrorKind::UniqueViolation => DbError::UniqueViolation(what),
                    DatabaseErrorKind::ForeignKeyViolation => DbError::ForeignKeyViolation(what),
                    DatabaseErrorKind::CheckViolation => DbError::CheckViolation(what),
                    // The connection broke (the server died or restarts): retry later.
                    DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::UnableToSendCommand => DbError::Unavailable(what),
                    DatabaseErrorKind::Unknown if is_transient(info.message()) => {
                        DbError::Unavailable(what)
                    }
                    other => DbError::Query(DieselError::DatabaseError(other, info)),
                }
            }
            other => DbError::Query(other),
        }
    }
}

/// Server messages that mean "not now" rather than "wrong": a shutdown or crash recovery
/// (SQLSTATE 57P01..57P03), a statement timeout (57014), SQLite's busy lock.
fn is_transient(message: &str) -> bool {
    const TRANSIENT: [&str; 6] = [
        "terminating connection",
        "the database system is",
        "canceling statement due to statement timeout",
        "server closed the connection",
        "connection closed",
        "database is locked",
    ];
    TRANSIENT.iter().any(|t| message.contains(t))
}

impl DbError {
    /// True when retrying later may succeed (the database was unreachable).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Info(&'static str);

    impl diesel::result::DatabaseErrorInformation for Info {
        fn message(&self) -> &str {
            self.0
        }
        fn details(&self) -> Option<&str> {
            None
        }
        fn hint(&self) -> Option<&str> {
            None
        }
        fn table_name(&self) -> Option<&str> {
            None
        }
        fn column_name(&self) -> Option<&str> {
            None
        }
        fn constraint_name(&self) -> Option<&str> {
            None
        }
        fn statement_position(&self) -> Option<i32> {
            None
        }
    }

    fn db(kind: DatabaseErrorKind, message: &'static str) -> DbError {
        DieselError::DatabaseError(kind, Box::new(Info(message))).into()
    }

    #[test]
    fn a_broken_or_restarting_database_is_unavailable_not_a_bug() {
        assert!(db(DatabaseErrorKind::UnableToSendCommand, "connection closed").is_unavailable());
        assert!(db(DatabaseErrorKind::ClosedConnection, "gone").is_unavailable());
        assert!(
            db(
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command"
            )
            .is_unavailable()
        );
        assert!(
            db(
                DatabaseErrorKind::Unknown,
                "the database system is starting up"
            )
            .is_unavailable()
        );
        assert!(
            db(
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout"
            )
            .is_unavailable()
        );
        assert!(db(DatabaseErrorKind::Unknown, "database is locked").is_unavailable());
        assert!(!db(DatabaseErrorKind::Unknown, "syntax error at or near").is_unavailable());
        assert!(matches!(
            db(DatabaseErrorKind::UniqueViolation, "dup"),
            DbError::UniqueViolation(_)
        ));
    }
}
