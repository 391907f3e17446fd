//! `[[authentication]]`: the chain of authenticators, each a table with `mechanism` and
//! `backend` as EMQX spells them, and `[flapping_detect]`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::hash::PasswordHash;

/// One entry of `[[authentication]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthnEntry {
    /// `enable = false` keeps an entry in the file but out of the chain.
    pub enable: bool,
    /// What it is.
    pub kind: AuthnConfig,
}

/// The authenticators Weir has.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthnConfig {
    /// `mechanism = "password_based"`, `backend = "built_in_database"`.
    BuiltIn(BuiltInConfig),
    /// `mechanism = "jwt"`.
    Jwt(JwtConfig),
    /// `mechanism = "password_based"`, `backend = "http"`.
    Http(HttpConfig),
    /// `mechanism = "password_based"`, `backend = "postgresql"`.
    Postgres(PostgresConfig),
}

impl AuthnConfig {
    /// Its name in logs and the API: EMQX's authenticator id.
    pub fn id(&self) -> &'static str {
        match self {
            AuthnConfig::BuiltIn(_) => "password_based:built_in_database",
            AuthnConfig::Jwt(_) => "jwt",
            AuthnConfig::Http(_) => "password_based:http",
            AuthnConfig::Postgres(_) => "password_based:postgresql",
        }
    }
}

impl<'de> Deserialize<'de> for AuthnEntry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut table = toml::Table::deserialize(d)?;
        let mut take = |key: &str| match table.remove(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(D::Error::custom(format!("authentication: `{key}` must be a string, not {other}"))),
        };
        let mechanism = take("mechanism")?.ok_or_else(|| {
            D::Error::custom(
                "authentication: every [[authentication]] needs `mechanism` (\"password_based\" or \"jwt\")",
            )
        })?;
        let backend = take("backend")?;
        let enable = match table.remove("enable") {
            None => true,
            Some(toml::Value::Boolean(b)) => b,
            Some(other) => {
                return Err(D::Error::custom(format!("authentication: `enable` must be true or false, not {other}")))
            }
        };
        let value = toml::Value::Table(table);
        let named = |e: toml::de::Error| {
            let backend = backend.as_deref().map(|b| format!(", backend = \"{b}\"")).unwrap_or_default();
            D::Error::custom(format!("authentication (mechanism = \"{mechanism}\"{backend}): {}", e.message()))
        };
        let kind = match (mechanism.as_str(), backend.as_deref()) {
            ("password_based", Some("built_in_database")) => AuthnConfig::BuiltIn(value.try_into().map_err(named)?),
            ("password_based", Some("http")) => AuthnConfig::Http(value.try_into().map_err(named)?),
            ("password_based", Some("postgresql")) => AuthnConfig::Postgres(value.try_into().map_err(named)?),
            ("jwt", None) => AuthnConfig::Jwt(value.try_into().map_err(named)?),
            (m, b) => {
                return Err(D::Error::custom(format!(
                    "authentication: mechanism = \"{m}\"{} is not one Weir has; it has mechanism = \
                     \"password_based\" with backend = \"built_in_database\", \"http\" or \"postgresql\", \
                     and mechanism = \"jwt\" (no backend)",
                    b.map(|b| format!(" with backend = \"{b}\"")).unwrap_or_default()
                )))
            }
        };
        Ok(AuthnEntry { enable, kind })
    }
}

/// Which CONNECT field names a built-in user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UserIdType {
    /// The username (EMQX's default).
    #[default]
    Username,
    /// The client id.
    Clientid,
}

/// How the bootstrap file gives passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum BootstrapType {
    /// `user_id,password,is_superuser`: hashed with `password_hash_algorithm` on import.
    #[default]
    Plain,
    /// `user_id,password_hash,salt,is_superuser`: made with `password_hash_algorithm`.
    Hash,
}

/// `backend = "built_in_database"`.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BuiltInConfig {
    /// Whether users are named by username or client id.
    pub user_id_type: UserIdType,
    /// How passwords are hashed and checked.
    pub password_hash_algorithm: PasswordHash,
    /// A CSV of users imported at start (those not in the store already), as EMQX's.
    pub bootstrap_file: Option<PathBuf>,
    /// What its password column holds.
    pub bootstrap_type: BootstrapType,
}

/// Where a JWT is read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum JwtFrom {
    /// The CONNECT's password (EMQX's default).
    #[default]
    Password,
    /// The CONNECT's username.
    Username,
}

/// How a JWT's signature is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum JwtAlgorithm {
    /// HS256, HS384, HS512 with `secret`.
    #[default]
    HmacBased,
    /// RS*, PS*, ES* with `public_key`.
    PublicKey,
}

/// `mechanism = "jwt"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JwtConfig {
    /// Where the token is.
    pub from: JwtFrom,
    /// HMAC or public key (ignored with `use_jwks`).
    pub algorithm: JwtAlgorithm,
    /// The HMAC secret.
    pub secret: Option<String>,
    /// Whether `secret` is base64.
    pub secret_base64_encoded: bool,
    /// The public key, PEM (RSA or EC), or a path to a PEM file.
    pub public_key: Option<String>,
    /// Take the keys from a JWKS (`jwks_file`) rather than `secret` or `public_key`.
    pub use_jwks: bool,
    /// A JSON Web Key Set file, re-read when it changes.
    pub jwks_file: Option<PathBuf>,
    /// Claims the token must carry, with these values: `${clientid}` and `${username}` are
    /// the client's.
    pub verify_claims: BTreeMap<String, String>,
    /// The claim holding the client's ACL (EMQX's list of `{permission, action, topic}`).
    pub acl_claim_name: String,
    /// Whether the client is disconnected when its token expires.
    pub disconnect_after_expire: bool,
}

impl Default for JwtConfig {
    fn default() -> Self {
        JwtConfig {
            from: JwtFrom::Password,
            algorithm: JwtAlgorithm::HmacBased,
            secret: None,
            secret_base64_encoded: false,
            public_key: None,
            use_jwks: false,
            jwks_file: None,
            verify_claims: BTreeMap::new(),
            acl_claim_name: "acl".into(),
            disconnect_after_expire: true,
        }
    }
}

/// `backend = "http"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `"post"` (body as the `content-type` header says: JSON or form) or `"get"` (the
    /// body's fields in the query string).
    #[serde(default = "post")]
    pub method: String,
    /// The authentication service; `${...}` placeholders are filled in.
    pub url: String,
    /// Request headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The request's fields, with placeholders: `${clientid}`, `${username}`, `${password}`,
    /// `${peerhost}`.
    #[serde(default = "default_http_body")]
    pub body: BTreeMap<String, String>,
    /// Seconds a request may take; past it the authenticator is skipped (ignore).
    #[serde(default = "five")]
    pub request_timeout: u64,
    /// Connections kept open to the service.
    #[serde(default = "eight")]
    pub pool_size: usize,
}

fn post() -> String {
    "post".into()
}

fn five() -> u64 {
    5
}

fn eight() -> usize {
    8
}

fn default_http_body() -> BTreeMap<String, String> {
    [("username", "${username}"), ("password", "${password}")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `backend = "postgresql"`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// `postgres://user:password@host:port/database`, as Weir's PostgreSQL sinks take it.
    pub url: String,
    /// A query whose first row has `password_hash`, and optionally `salt` and `is_superuser`;
    /// its placeholders are bound as parameters, never spliced into the SQL.
    pub query: String,
    /// How `password_hash` was made.
    #[serde(default)]
    pub password_hash_algorithm: PasswordHash,
    /// Seconds a query may take; past it the authenticator is skipped (ignore).
    #[serde(default = "five")]
    pub request_timeout: u64,
    /// Connections in the pool.
    #[serde(default = "eight")]
    pub pool_size: usize,
}

/// `[flapping_detect]`: clients whose logins keep failing are banned for a while, per address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlappingConfig {
    /// On by default: it only counts failed logins, which only happen with authentication.
    pub enable: bool,
    /// Failures from one address within `window_time` that get it banned.
    pub max_count: u32,
    /// Seconds over which failures are counted.
    pub window_time: u64,
    /// Seconds an address stays banned.
    pub ban_time: u64,
}

impl Default for FlappingConfig {
    fn default() -> Self {
        FlappingConfig { enable: true, max_count: 15, window_time: 60, ban_time: 300 }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::from_toml_with_env(text, "weir.toml", std::iter::empty()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_chain_is_a_list_of_tables_with_mechanism_and_backend() {
        let c = parse(
            "[[authentication]]\nmechanism = \"password_based\"\nbackend = \"built_in_database\"\n\
             password_hash_algorithm = { name = \"pbkdf2\", mac_fun = \"sha256\", iterations = 1000 }\n\
             [[authentication]]\nmechanism = \"jwt\"\nsecret = \"s\"\nenable = false\n",
        )
        .unwrap();
        assert_eq!(c.authentication.len(), 2);
        assert_eq!(c.authentication[0].kind.id(), "password_based:built_in_database");
        assert!(!c.authentication[1].enable);
        // The API stays on loopback unless told otherwise.
        assert!(c.api.bind.ip().is_loopback());
    }

    #[test]
    fn mistakes_name_the_authenticator_and_the_key() {
        let err = parse("[[authentication]]\nmechanism = \"password_based\"\nbackend = \"mysql\"\n").unwrap_err();
        assert!(err.contains("backend = \"mysql\"") && err.contains("built_in_database"), "{err}");
        let err = parse("[[authentication]]\nmechanism = \"jwt\"\nsecrett = \"s\"\n").unwrap_err();
        assert!(err.contains("mechanism = \"jwt\"") && err.contains("secrett"), "{err}");
        let err = parse("[[authentication]]\nbackend = \"http\"\n").unwrap_err();
        assert!(err.contains("mechanism"), "{err}");
        let err = parse("[authorization]\nno_match = \"maybe\"\n").unwrap_err();
        assert!(err.contains("maybe"), "{err}");
    }
}
