//! EMQX's password hashes, as `password_hash_algorithm = { name = ..., ... }` configures them:
//! how a stored hash (with its salt) is checked against a password, and how a new one is made.
//! bcrypt and pbkdf2 are slow on purpose; [`PasswordHash::check`] runs them off the MQTT
//! workers, a bounded number at once.

use ntex_bytes::Bytes;
use ring::{digest, pbkdf2};
use serde::Deserialize;
use tokio::sync::Semaphore;

/// Slow password checks running at once, node-wide: a few per core of a small machine; more
/// wait their turn within their authenticator's deadline.
pub const SLOW_CHECKS: usize = 8;
static SLOW_TURNS: Semaphore = Semaphore::const_new(SLOW_CHECKS);

/// Where the salt goes around the password before hashing (`salt_position`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum SaltPosition {
    /// `salt ++ password`.
    Prefix,
    /// `password ++ salt`, EMQX's default.
    #[default]
    Suffix,
    /// No salt.
    Disable,
}

/// pbkdf2's HMAC (`mac_fun`), among those EMQX offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacFun {
    /// HMAC-SHA-1.
    Sha,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-384.
    Sha384,
    /// HMAC-SHA-512.
    Sha512,
}

impl MacFun {
    fn algorithm(self) -> (pbkdf2::Algorithm, usize) {
        match self {
            MacFun::Sha => (pbkdf2::PBKDF2_HMAC_SHA1, 20),
            MacFun::Sha256 => (pbkdf2::PBKDF2_HMAC_SHA256, 32),
            MacFun::Sha384 => (pbkdf2::PBKDF2_HMAC_SHA384, 48),
            MacFun::Sha512 => (pbkdf2::PBKDF2_HMAC_SHA512, 64),
        }
    }
}

fn bcrypt_rounds() -> u32 {
    10
}

/// `password_hash_algorithm`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "name", rename_all = "lowercase", deny_unknown_fields)]
pub enum PasswordHash {
    /// The password itself (with its salt, if any).
    Plain {
        /// Where the salt goes.
        #[serde(default)]
        salt_position: SaltPosition,
    },
    /// Hex SHA-256 of the salted password.
    Sha256 {
        /// Where the salt goes.
        #[serde(default)]
        salt_position: SaltPosition,
    },
    /// Hex SHA-512 of the salted password.
    Sha512 {
        /// Where the salt goes.
        #[serde(default)]
        salt_position: SaltPosition,
    },
    /// A bcrypt hash (`$2b$10$...`), which holds its own salt.
    Bcrypt {
        /// The cost of new hashes (4 to 31).
        #[serde(default = "bcrypt_rounds")]
        salt_rounds: u32,
    },
    /// Hex PBKDF2 of the password and salt.
    Pbkdf2 {
        /// The HMAC.
        mac_fun: MacFun,
        /// Rounds.
        iterations: u32,
        /// Bytes of key; the HMAC's output size when absent.
        #[serde(default)]
        dk_length: Option<u32>,
    },
}

impl Default for PasswordHash {
    fn default() -> Self {
        PasswordHash::Sha256 { salt_position: SaltPosition::Suffix }
    }
}

impl PasswordHash {
    /// Whether checking a password takes long enough to run off the async workers.
    pub fn is_slow(&self) -> bool {
        matches!(self, PasswordHash::Bcrypt { .. } | PasswordHash::Pbkdf2 { .. })
    }

    /// Checks that the configuration makes sense, naming what does not.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            PasswordHash::Bcrypt { salt_rounds } if !(4..=31).contains(salt_rounds) => {
                Err(format!("bcrypt salt_rounds = {salt_rounds}: it must be from 4 to 31"))
            }
            PasswordHash::Pbkdf2 { iterations: 0, .. } => Err("pbkdf2 iterations must be at least 1".into()),
            PasswordHash::Pbkdf2 { dk_length: Some(0), .. } => Err("pbkdf2 dk_length must be at least 1".into()),
            _ => Ok(()),
        }
    }

    /// [`PasswordHash::verify`] as an authenticator needs it: a slow hash (bcrypt, pbkdf2) runs
    /// on tokio's blocking threads, never on the MQTT workers, and at most [`SLOW_CHECKS`] at
    /// once, so that a flood of logins cannot take every core (or grow the blocking pool). Its
    /// caller's deadline covers the wait for a turn.
    pub async fn check(&self, password: Bytes, stored: String, salt: String) -> Result<bool, String> {
        if !self.is_slow() {
            return Ok(self.verify(&password, &stored, &salt));
        }
        let turn = SLOW_TURNS.acquire().await.map_err(|e| e.to_string())?;
        let hash = self.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            hash.verify(&password, &stored, &salt)
        })
        .await
        .map_err(|e| format!("the password check failed: {e}"))
    }

    /// Whether `password` is the one `hash` (with `salt`) was made from.
    pub fn verify(&self, password: &[u8], hash: &str, salt: &str) -> bool {
        match self {
            PasswordHash::Bcrypt { .. } => bcrypt::verify(password, hash).unwrap_or(false),
            PasswordHash::Pbkdf2 { mac_fun, iterations, dk_length } => {
                let (algorithm, out) = mac_fun.algorithm();
                let Ok(expected) = hex::decode(hash) else { return false };
                if expected.len() != dk_length.map_or(out, |n| n as usize) {
                    return false;
                }
                let Some(rounds) = std::num::NonZeroU32::new(*iterations) else { return false };
                pbkdf2::verify(algorithm, rounds, salt.as_bytes(), password, &expected).is_ok()
            }
            PasswordHash::Plain { salt_position } => {
                same(&salted(*salt_position, password, salt.as_bytes()), hash.as_bytes())
            }
            PasswordHash::Sha256 { salt_position } | PasswordHash::Sha512 { salt_position } => {
                let made = self.digest_hex(*salt_position, password, salt.as_bytes());
                same(made.as_bytes(), hash.to_ascii_lowercase().as_bytes())
            }
        }
    }

    /// A new hash of `password`, with a new random salt: `(hash, salt)` as the store keeps them.
    pub fn make(&self, password: &[u8]) -> (String, String) {
        let salt = match self {
            PasswordHash::Bcrypt { .. } => String::new(),
            PasswordHash::Plain { salt_position: SaltPosition::Disable }
            | PasswordHash::Sha256 { salt_position: SaltPosition::Disable }
            | PasswordHash::Sha512 { salt_position: SaltPosition::Disable } => String::new(),
            _ => hex::encode(rand::random::<[u8; 16]>()),
        };
        let hash = match self {
            PasswordHash::Bcrypt { salt_rounds } => bcrypt::hash(password, *salt_rounds).unwrap_or_default(),
            PasswordHash::Pbkdf2 { mac_fun, iterations, dk_length } => {
                let (algorithm, out) = mac_fun.algorithm();
                let mut key = vec![0; dk_length.map_or(out, |n| n as usize)];
                let rounds = std::num::NonZeroU32::new(*iterations).unwrap_or(std::num::NonZeroU32::MIN);
                pbkdf2::derive(algorithm, rounds, salt.as_bytes(), password, &mut key);
                hex::encode(key)
            }
            PasswordHash::Plain { salt_position } => {
                String::from_utf8_lossy(&salted(*salt_position, password, salt.as_bytes())).into_owned()
            }
            PasswordHash::Sha256 { salt_position } | PasswordHash::Sha512 { salt_position } => {
                self.digest_hex(*salt_position, password, salt.as_bytes())
            }
        };
        (hash, salt)
    }

    fn digest_hex(&self, position: SaltPosition, password: &[u8], salt: &[u8]) -> String {
        let algorithm = match self {
            PasswordHash::Sha512 { .. } => &digest::SHA512,
            _ => &digest::SHA256,
        };
        hex::encode(digest::digest(algorithm, &salted(position, password, salt)))
    }
}

fn salted(position: SaltPosition, password: &[u8], salt: &[u8]) -> Vec<u8> {
    match position {
        SaltPosition::Prefix => [salt, password].concat(),
        SaltPosition::Suffix => [password, salt].concat(),
        SaltPosition::Disable => password.to_vec(),
    }
}

/// Equality whose time does not depend on where the inputs differ (the API's secrets use it too).
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> PasswordHash {
        toml::from_str::<toml::Table>(&format!("h = {text}")).unwrap()["h"].clone().try_into().unwrap()
    }

    #[test]
    fn each_algorithm_verifies_what_it_made_and_nothing_else() {
        for text in [
            r#"{ name = "plain", salt_position = "disable" }"#,
            r#"{ name = "sha256", salt_position = "prefix" }"#,
            r#"{ name = "sha256" }"#,
            r#"{ name = "sha512", salt_position = "suffix" }"#,
            r#"{ name = "bcrypt", salt_rounds = 4 }"#,
            r#"{ name = "pbkdf2", mac_fun = "sha256", iterations = 10, dk_length = 20 }"#,
            r#"{ name = "pbkdf2", mac_fun = "sha", iterations = 3 }"#,
        ] {
            let h = parse(text);
            let (hash, salt) = h.make(b"s3cret");
            assert!(h.verify(b"s3cret", &hash, &salt), "{text}");
            assert!(!h.verify(b"s3creT", &hash, &salt), "{text}");
            assert!(!h.verify(b"", &hash, &salt), "{text}");
        }
    }

    #[test]
    fn hashes_made_elsewhere_verify() {
        // printf 'secret' | sha256sum: no salt.
        let sha = parse(r#"{ name = "sha256", salt_position = "suffix" }"#);
        assert!(sha.verify(b"secret", "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b", ""));
        // printf 'saltsecret' | sha512sum: the salt first.
        let sha512 = parse(r#"{ name = "sha512", salt_position = "prefix" }"#);
        assert!(sha512.verify(b"secret", "9901847ff8c76bd5fb473b7bd2e4f4ddd110332a52a888fd69deb276613885ddf382e5cf1210ed0decdb8010ae3994331a9e0639c3ca7e9e8b110dd50978ce76", "salt"));
        assert!(!sha512.verify(b"secret", "9901847ff8c76bd5fb473b7bd2e4f4ddd110332a52a888fd69deb276613885ddf382e5cf1210ed0decdb8010ae3994331a9e0639c3ca7e9e8b110dd50978ce76", "salz"));
        // Python: hashlib.pbkdf2_hmac('sha256', b'password', b'salt', 1).hex()
        let pbkdf2 = parse(r#"{ name = "pbkdf2", mac_fun = "sha256", iterations = 1 }"#);
        assert!(pbkdf2.verify(b"password", "120fb6cffcf8b32c43e7225256c4f837a86548c92ccc35480805987cb70be17b", "salt"));
        // OpenBSD's bcrypt test vector.
        let bcrypt = parse(r#"{ name = "bcrypt" }"#);
        assert!(bcrypt.verify(b"U*U", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ""));
        assert!(!bcrypt.verify(b"U*V", "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW", ""));
    }

    #[test]
    fn bad_settings_are_named() {
        assert!(parse(r#"{ name = "bcrypt", salt_rounds = 40 }"#).validate().unwrap_err().contains("salt_rounds"));
        let unknown = toml::from_str::<toml::Table>("h = { name = \"sha256\", salt = 1 }").unwrap()["h"]
            .clone()
            .try_into::<PasswordHash>();
        assert!(unknown.is_err());
    }
}
