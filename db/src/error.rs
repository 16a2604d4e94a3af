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
                    DatabaseErrorKind::ClosedConnection => DbError::Unavailable(what),
                    other => DbError::Query(DieselError::DatabaseError(other, info)),
                }
            }
            other => DbError::Query(other),
        }
    }
}

impl DbError {
    /// True when retrying later may succeed (the database was unreachable).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Unavailable(_))
    }
}
