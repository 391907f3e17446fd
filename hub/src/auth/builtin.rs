//! `backend = "built_in_database"`: users kept in the node's store, seeded from EMQX's
//! `bootstrap_file`, managed through the API (`/api/v5/authentication/.../users`) and
//! `weir ctl users`.

use std::collections::HashMap;
use std::path::Path;

use parking_lot::RwLock;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use super::config::{BootstrapType, BuiltInConfig, UserIdType};
use super::hash::PasswordHash;
use super::{AuthError, Credentials, Grant, Outcome};
use crate::store::{Named, Store};

/// A user as stored: what `password_hash_algorithm` made of its password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The hash.
    pub hash: String,
    /// Its salt (empty for bcrypt, whose hash holds it).
    pub salt: String,
    /// Whether the user passes every authorization check.
    pub superuser: bool,
}

/// Why a change to the users was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserError {
    /// `add` of a user that exists.
    #[error("user {0} already exists")]
    Exists(String),
    /// A change to a user that does not exist.
    #[error("user {0} does not exist")]
    NotFound(String),
    /// An empty user id.
    #[error("a user id cannot be empty")]
    EmptyId,
}

/// The built-in database of users.
pub struct BuiltIn {
    id_type: UserIdType,
    hash: PasswordHash,
    users: RwLock<HashMap<String, User>>,
    /// Where changes are kept; `None` with `[durability] mode = "off"` (users then last as long as
    /// the process, and the bootstrap file seeds them at each start).
    store: Option<Store>,
}

impl BuiltIn {
    /// The users the store `kept`, and those of the bootstrap file that it did not.
    pub fn new(cfg: &BuiltInConfig, kept: Vec<(String, Vec<u8>)>, store: Option<Store>) -> Result<BuiltIn, AuthError> {
        cfg.password_hash_algorithm.validate().map_err(|e| {
            AuthError::Invalid(format!("authentication built_in_database password_hash_algorithm: {e}"))
        })?;
        let mut users = HashMap::new();
        for (id, bytes) in kept {
            match postcard::from_bytes::<User>(&bytes) {
                Ok(user) => {
                    users.insert(id, user);
                }
                Err(e) => warn!(user_id = %id, error = %e, "a user in the store cannot be read: skipped"),
            }
        }
        let b = BuiltIn {
            id_type: cfg.user_id_type,
            hash: cfg.password_hash_algorithm.clone(),
            users: RwLock::new(users),
            store,
        };
        if let Some(path) = &cfg.bootstrap_file {
            let rows = read_bootstrap(path, cfg.bootstrap_type)?;
            let mut added = 0;
            for (id, row) in rows {
                if b.users.read().contains_key(&id) {
                    continue;
                }
                let user = match row {
                    Row::Plain { password, superuser } => {
                        let (hash, salt) = b.hash.make(password.as_bytes());
                        User { hash, salt, superuser }
                    }
                    Row::Hashed(user) => user,
                };
                b.put(id, user);
                added += 1;
            }
            info!(file = %path.display(), added, "built-in users imported from bootstrap_file");
        }
        Ok(b)
    }

    pub(super) async fn check(&self, c: &Credentials) -> Outcome {
        let id = match self.id_type {
            UserIdType::Username => c.username.as_deref().unwrap_or_default(),
            UserIdType::Clientid => c.client_id.as_str(),
        };
        let Some(user) = self.users.read().get(id).cloned() else {
            return Outcome::Ignore(format!("no user {id:?}"));
        };
        let password = c.password.clone().unwrap_or_default();
        let ok = match self.hash.check(password, user.hash.clone(), user.salt.clone()).await {
            Ok(ok) => ok,
            Err(e) => return Outcome::Unavailable(e),
        };
        if ok {
            Outcome::Allow(Grant { superuser: user.superuser, ..Grant::default() })
        } else {
            Outcome::Deny(format!("wrong password for user {id:?}"))
        }
    }

    /// The users, sorted by id, with whether each is a superuser.
    pub fn list(&self) -> Vec<(String, bool)> {
        let mut out: Vec<(String, bool)> = self.users.read().iter().map(|(id, u)| (id.clone(), u.superuser)).collect();
        out.sort();
        out
    }

    /// Whether `id` is a superuser, if the user exists.
    pub fn get(&self, id: &str) -> Option<bool> {
        self.users.read().get(id).map(|u| u.superuser)
    }

    /// Adds a user; hashing may be slow (bcrypt), so call it off the async workers.
    pub fn add(&self, id: &str, password: &str, superuser: bool) -> Result<(), UserError> {
        if id.is_empty() {
            return Err(UserError::EmptyId);
        }
        if self.users.read().contains_key(id) {
            return Err(UserError::Exists(id.to_string()));
        }
        let (hash, salt) = self.hash.make(password.as_bytes());
        self.put(id.to_string(), User { hash, salt, superuser });
        Ok(())
    }

    /// Changes a user's password (if given) and superuser flag.
    pub fn update(&self, id: &str, password: Option<&str>, superuser: Option<bool>) -> Result<(), UserError> {
        let mut user = self.users.read().get(id).cloned().ok_or_else(|| UserError::NotFound(id.to_string()))?;
        if let Some(p) = password {
            (user.hash, user.salt) = self.hash.make(p.as_bytes());
        }
        if let Some(s) = superuser {
            user.superuser = s;
        }
        self.put(id.to_string(), user);
        Ok(())
    }

    /// Deletes a user.
    pub fn delete(&self, id: &str) -> Result<(), UserError> {
        self.users.write().remove(id).ok_or_else(|| UserError::NotFound(id.to_string()))?;
        if let Some(store) = &self.store {
            if let Err(e) = store.put_named(Named::Users, id, None) {
                warn!(user_id = id, error = %e, "the store could not forget a deleted user");
            }
        }
        Ok(())
    }

    fn put(&self, id: String, user: User) {
        if let Some(store) = &self.store {
            let bytes = postcard::to_stdvec(&user).unwrap_or_default();
            if let Err(e) = store.put_named(Named::Users, &id, Some(bytes)) {
                warn!(user_id = %id, error = %e, "the store could not keep a user: it lasts until the node stops");
            }
        }
        self.users.write().insert(id, user);
    }
}

/// A row of the bootstrap file.
enum Row {
    Plain { password: String, superuser: bool },
    Hashed(User),
}

/// Reads EMQX's bootstrap CSV: a header line naming the columns, `user_id`, then `password` (plain)
/// or `password_hash` and `salt` (hash), and optionally `is_superuser`.
fn read_bootstrap(path: &Path, kind: BootstrapType) -> Result<Vec<(String, Row)>, AuthError> {
    let bad = |message: String| AuthError::File { what: "bootstrap_file", path: path.display().to_string(), message };
    let mut reader = csv::ReaderBuilder::new().trim(csv::Trim::All).from_path(path).map_err(|e| bad(e.to_string()))?;
    let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    let column = |name: &str| header.iter().position(|h| h == name);
    let need = |name: &str| column(name).ok_or_else(|| bad(format!("no `{name}` column in the header line")));
    let id_at = need("user_id")?;
    let superuser_at = column("is_superuser");
    let (password_at, salt_at) = match kind {
        BootstrapType::Plain => (need("password")?, None),
        BootstrapType::Hash => (need("password_hash")?, column("salt")),
    };
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let field = |at: usize| record.get(at).unwrap_or_default().to_string();
        let id = field(id_at);
        if id.is_empty() {
            return Err(bad(format!("line {}: an empty user_id", n + 2)));
        }
        let superuser = superuser_at.is_some_and(|at| matches!(record.get(at), Some("true" | "1")));
        let row = match kind {
            BootstrapType::Plain => Row::Plain { password: field(password_at), superuser },
            BootstrapType::Hash => {
                Row::Hashed(User { hash: field(password_at), salt: salt_at.map(field).unwrap_or_default(), superuser })
            }
        };
        rows.push((id, row));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(username: &str, password: &str) -> Credentials {
        Credentials {
            client_id: "c1".into(),
            username: Some(username.into()),
            password: Some(ntex_bytes::Bytes::copy_from_slice(password.as_bytes())),
            peer: "127.0.0.1".parse().unwrap(),
        }
    }

    #[tokio::test]
    async fn bootstrap_users_log_in_and_others_are_ignored_or_denied() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.csv");
        std::fs::write(&plain, "user_id,password,is_superuser\nalice,wonderland,true\nbob, builder ,false\n").unwrap();
        let cfg = BuiltInConfig { bootstrap_file: Some(plain), ..BuiltInConfig::default() };
        let b = BuiltIn::new(&cfg, Vec::new(), None).unwrap();
        assert!(matches!(b.check(&creds("alice", "wonderland")).await, Outcome::Allow(Grant { superuser: true, .. })));
        assert!(matches!(b.check(&creds("bob", "builder")).await, Outcome::Allow(Grant { superuser: false, .. })));
        assert!(matches!(b.check(&creds("alice", "wrong")).await, Outcome::Deny(_)));
        assert!(matches!(b.check(&creds("carol", "x")).await, Outcome::Ignore(_)));
        assert_eq!(b.list(), vec![("alice".to_string(), true), ("bob".to_string(), false)]);
    }

    #[tokio::test]
    async fn hashed_bootstrap_rows_keep_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hash.csv");
        // sha256("secret" ++ "salt"), EMQX's default algorithm.
        let hash = hex::encode(ring::digest::digest(&ring::digest::SHA256, b"secretsalt"));
        std::fs::write(&file, format!("user_id,password_hash,salt,is_superuser\nu1,{hash},salt,false\n")).unwrap();
        let cfg = BuiltInConfig {
            bootstrap_file: Some(file),
            bootstrap_type: BootstrapType::Hash,
            ..BuiltInConfig::default()
        };
        let b = BuiltIn::new(&cfg, Vec::new(), None).unwrap();
        assert!(matches!(b.check(&creds("u1", "secret")).await, Outcome::Allow(_)));
        assert!(matches!(b.check(&creds("u1", "secreT")).await, Outcome::Deny(_)));
    }

    #[test]
    fn a_bootstrap_file_without_its_columns_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.csv");
        std::fs::write(&file, "name,password\nx,y\n").unwrap();
        let cfg = BuiltInConfig { bootstrap_file: Some(file.clone()), ..BuiltInConfig::default() };
        let err = BuiltIn::new(&cfg, Vec::new(), None).err().unwrap().to_string();
        assert!(err.contains("bad.csv") && err.contains("user_id"), "{err}");
        let missing = BuiltInConfig { bootstrap_file: Some(dir.path().join("nope.csv")), ..BuiltInConfig::default() };
        assert!(BuiltIn::new(&missing, Vec::new(), None).err().unwrap().to_string().contains("nope.csv"));
    }

    #[test]
    fn users_are_added_changed_and_deleted() {
        let b = BuiltIn::new(&BuiltInConfig::default(), Vec::new(), None).unwrap();
        b.add("u", "p", false).unwrap();
        assert_eq!(b.add("u", "p", false), Err(UserError::Exists("u".into())));
        b.update("u", None, Some(true)).unwrap();
        assert_eq!(b.get("u"), Some(true));
        b.delete("u").unwrap();
        assert_eq!(b.delete("u"), Err(UserError::NotFound("u".into())));
        assert_eq!(b.add("", "p", false), Err(UserError::EmptyId));
    }
}
