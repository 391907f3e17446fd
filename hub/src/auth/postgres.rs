//! `backend = "postgresql"`: a query finds the client's password hash. Its placeholders become
//! parameters (`$1`, `$2`...), bound to the client's values, never spliced into the SQL.

use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions, PgRow};
use sqlx::Row;

use super::config::PostgresConfig;
use super::hash::PasswordHash;
use super::{AuthError, Credentials, Grant, Outcome};

pub(super) struct PgAuthn {
    pool: PgPool,
    /// The query with `$n` in place of each placeholder.
    sql: String,
    /// The placeholders' names, in parameter order.
    params: Vec<String>,
    hash: PasswordHash,
    deadline: Duration,
}

impl PgAuthn {
    pub(super) fn new(cfg: &PostgresConfig) -> Result<PgAuthn, AuthError> {
        let invalid = |m: String| AuthError::Invalid(format!("authentication postgresql: {m}"));
        cfg.password_hash_algorithm.validate().map_err(|e| invalid(format!("password_hash_algorithm: {e}")))?;
        let (sql, params) = parameterize(&cfg.query).map_err(|e| invalid(format!("query: {e}")))?;
        let deadline = Duration::from_secs(cfg.request_timeout.max(1));
        // Lazy: a database that is down at start must not stop the broker; logins through it
        // are ignored until it is back.
        let pool = PgPoolOptions::new()
            .max_connections(cfg.pool_size.max(1) as u32)
            .acquire_timeout(deadline)
            .connect_lazy(&cfg.url)
            .map_err(|e| invalid(format!("url: {e}")))?;
        Ok(PgAuthn { pool, sql, params, hash: cfg.password_hash_algorithm.clone(), deadline })
    }

    /// The longest a query may take.
    pub(super) fn deadline(&self) -> Duration {
        self.deadline
    }

    pub(super) async fn check(&self, c: &Credentials) -> Outcome {
        // The operator's query from the config; the client's values only ever go in as parameters.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql.clone()));
        for name in &self.params {
            query = query.bind(c.value_of(name).unwrap_or_default());
        }
        let row = match query.fetch_optional(&self.pool).await {
            Ok(Some(row)) => row,
            Ok(None) => return Outcome::Ignore("no row for the client".into()),
            Err(e) => return Outcome::Unavailable(format!("query failed: {e}")),
        };
        let Ok(stored) = row.try_get::<String, _>("password_hash") else {
            return Outcome::Unavailable("the query's row has no text column password_hash".into());
        };
        let salt = row.try_get::<Option<String>, _>("salt").ok().flatten().unwrap_or_default();
        let superuser = superuser(&row);
        let password = c.password.clone().unwrap_or_default();
        let ok = match self.hash.check(password, stored, salt).await {
            Ok(ok) => ok,
            Err(e) => return Outcome::Unavailable(e),
        };
        if ok {
            Outcome::Allow(Grant { superuser, ..Grant::default() })
        } else {
            Outcome::Deny("wrong password".into())
        }
    }
}

/// `is_superuser` as a boolean, a number or text (`true`, `1`), if the row has it.
fn superuser(row: &PgRow) -> bool {
    if let Ok(Some(b)) = row.try_get::<Option<bool>, _>("is_superuser") {
        return b;
    }
    if let Ok(Some(n)) = row.try_get::<Option<i32>, _>("is_superuser") {
        return n != 0;
    }
    if let Ok(Some(n)) = row.try_get::<Option<i64>, _>("is_superuser") {
        return n != 0;
    }
    matches!(row.try_get::<Option<String>, _>("is_superuser"), Ok(Some(s)) if s == "true" || s == "1")
}

/// The query with each `${name}` replaced by `$n`, and the names in order; the same name used
/// twice is bound once.
fn parameterize(query: &str) -> Result<(String, Vec<String>), String> {
    let mut sql = String::with_capacity(query.len());
    let mut params: Vec<String> = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("${") {
        sql.push_str(&rest[..start]);
        let len = rest[start..].find('}').ok_or("a ${ without its }")?;
        let name = &rest[start + 2..start + len];
        if !Credentials::PLACEHOLDERS.contains(&name) {
            return Err(format!("unknown placeholder ${{{name}}}: it can use ${{clientid}}, ${{username}}, ${{password}}, ${{peerhost}}"));
        }
        let n = match params.iter().position(|p| p == name) {
            Some(i) => i + 1,
            None => {
                params.push(name.to_string());
                params.len()
            }
        };
        sql.push_str(&format!("${n}"));
        rest = &rest[start + len + 1..];
    }
    sql.push_str(rest);
    Ok((sql, params))
}

#[cfg(test)]
mod tests {
    use super::parameterize;

    #[test]
    fn placeholders_become_parameters() {
        let (sql, params) = parameterize(
            "SELECT password_hash FROM u WHERE username = ${username} AND (c = ${clientid} OR d = ${username})",
        )
        .unwrap();
        assert_eq!(sql, "SELECT password_hash FROM u WHERE username = $1 AND (c = $2 OR d = $1)");
        assert_eq!(params, vec!["username", "clientid"]);
        assert!(parameterize("SELECT ${nope}").unwrap_err().contains("nope"));
        assert!(parameterize("SELECT ${username").is_err());
    }
}
