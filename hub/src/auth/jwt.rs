//! `mechanism = "jwt"`: the token in the password (or username) is checked against an HMAC
//! secret, a public key, or the keys of a JWKS file; then its `exp` and `nbf`, the claims
//! `verify_claims` asks for, and the ACL it may carry.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use parking_lot::Mutex;
use serde_json::Value;
use tracing::warn;

use super::acl::Rule;
use super::config::{JwtAlgorithm, JwtConfig, JwtFrom};
use super::{AuthError, Credentials, Grant, Outcome};

/// How often the JWKS file is looked at for a change, at most.
const JWKS_RECHECK: Duration = Duration::from_secs(2);

/// The keys tokens are checked with.
enum Keys {
    Hmac(DecodingKey),
    Public { rsa: Option<DecodingKey>, ec: Option<DecodingKey> },
    Jwks(Jwks),
}

/// A JWKS file and the keys it held when last read.
struct Jwks {
    path: PathBuf,
    state: Mutex<(Instant, Option<SystemTime>, Arc<JwkSet>)>,
}

impl Jwks {
    fn load(path: &PathBuf) -> Result<(Option<SystemTime>, JwkSet), String> {
        let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
        let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
        let set = serde_json::from_str(&text).map_err(|e| format!("not a JSON Web Key Set: {e}"))?;
        Ok((modified, set))
    }

    /// The keys, read again if the file changed (looked at every [`JWKS_RECHECK`] at most).
    fn current(&self) -> Arc<JwkSet> {
        let mut state = self.state.lock();
        if state.0.elapsed() >= JWKS_RECHECK {
            state.0 = Instant::now();
            let modified = std::fs::metadata(&self.path).and_then(|m| m.modified()).ok();
            if modified != state.1 {
                match Jwks::load(&self.path) {
                    Ok((m, set)) => {
                        state.1 = m;
                        state.2 = Arc::new(set);
                    }
                    Err(e) => {
                        warn!(file = %self.path.display(), error = %e, "jwks_file cannot be read again: keeping its last keys")
                    }
                }
            }
        }
        state.2.clone()
    }
}

pub(super) struct JwtAuthn {
    cfg: JwtConfig,
    keys: Keys,
}

impl JwtAuthn {
    pub(super) fn new(cfg: &JwtConfig) -> Result<JwtAuthn, AuthError> {
        let invalid = |m: &str| AuthError::Invalid(format!("authentication jwt: {m}"));
        let keys = if cfg.use_jwks {
            let path = cfg.jwks_file.clone().ok_or_else(|| invalid("use_jwks = true needs jwks_file"))?;
            let (modified, set) = Jwks::load(&path).map_err(|message| AuthError::File {
                what: "jwks_file",
                path: path.display().to_string(),
                message,
            })?;
            Keys::Jwks(Jwks { path, state: Mutex::new((Instant::now(), modified, Arc::new(set))) })
        } else {
            match cfg.algorithm {
                JwtAlgorithm::HmacBased => {
                    let secret =
                        cfg.secret.as_deref().ok_or_else(|| invalid("algorithm = \"hmac-based\" needs secret"))?;
                    let bytes = if cfg.secret_base64_encoded {
                        base64::engine::general_purpose::STANDARD
                            .decode(secret)
                            .map_err(|e| invalid(&format!("secret is not base64 ({e})")))?
                    } else {
                        secret.as_bytes().to_vec()
                    };
                    Keys::Hmac(DecodingKey::from_secret(&bytes))
                }
                JwtAlgorithm::PublicKey => {
                    let given = cfg
                        .public_key
                        .as_deref()
                        .ok_or_else(|| invalid("algorithm = \"public-key\" needs public_key"))?;
                    let pem = if given.trim_start().starts_with("-----BEGIN") {
                        given.to_string()
                    } else {
                        std::fs::read_to_string(given).map_err(|e| AuthError::File {
                            what: "public_key",
                            path: given.to_string(),
                            message: e.to_string(),
                        })?
                    };
                    let rsa = DecodingKey::from_rsa_pem(pem.as_bytes()).ok();
                    let ec = DecodingKey::from_ec_pem(pem.as_bytes()).ok();
                    if rsa.is_none() && ec.is_none() {
                        return Err(invalid("public_key is neither an RSA nor an EC public key in PEM"));
                    }
                    Keys::Public { rsa, ec }
                }
            }
        };
        Ok(JwtAuthn { cfg: cfg.clone(), keys })
    }

    pub(super) async fn check(&self, c: &Credentials) -> Outcome {
        let token = match self.cfg.from {
            JwtFrom::Password => c.password.as_deref().map(|p| String::from_utf8_lossy(p).into_owned()),
            JwtFrom::Username => c.username.clone(),
        };
        let Some(token) = token.filter(|t| t.matches('.').count() == 2) else {
            return Outcome::Ignore("no token".into());
        };
        let claims = match self.decode(&token) {
            Ok(claims) => claims,
            Err(why) => return Outcome::Deny(why),
        };
        // At `exp` and after, as RFC 7519 says (jsonwebtoken still takes it during that second),
        // and as the connection is closed at `exp`.
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if claims.get("exp").and_then(Value::as_u64).is_some_and(|exp| exp <= now) {
            return Outcome::Deny("the token has expired".into());
        }
        for (name, wanted) in &self.cfg.verify_claims {
            let wanted = c.fill(wanted);
            let found = match claims.get(name) {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => return Outcome::Deny(format!("the token has no claim {name:?}")),
            };
            if found != wanted {
                return Outcome::Deny(format!("claim {name:?} is {found:?}, not {wanted:?}"));
            }
        }
        let acl = match claims.get(&self.cfg.acl_claim_name) {
            None => None,
            Some(v) => match Rule::from_token(v) {
                Ok(rules) => Some(Arc::from(rules)),
                Err(e) => return Outcome::Deny(format!("the token's {} claim: {e}", self.cfg.acl_claim_name)),
            },
        };
        let expires_at = claims
            .get("exp")
            .and_then(Value::as_u64)
            .filter(|_| self.cfg.disconnect_after_expire)
            .map(|exp| UNIX_EPOCH + Duration::from_secs(exp));
        let superuser = matches!(claims.get("is_superuser"), Some(Value::Bool(true)));
        Outcome::Allow(Grant { superuser, acl, expires_at })
    }

    /// The token's claims, if its signature, `exp` and `nbf` hold.
    fn decode(&self, token: &str) -> Result<serde_json::Map<String, Value>, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("not a JWT: {e}"))?;
        let jwks;
        let key = match (&self.keys, family(header.alg)) {
            (Keys::Hmac(k), Family::Hmac) => k,
            (Keys::Public { rsa: Some(k), .. }, Family::Rsa) => k,
            (Keys::Public { ec: Some(k), .. }, Family::Ec) => k,
            (Keys::Jwks(j), _) => {
                let set = j.current();
                let jwk = match &header.kid {
                    Some(kid) => set.find(kid).ok_or_else(|| format!("no key {kid:?} in jwks_file"))?,
                    None => set.keys.first().ok_or("jwks_file has no key")?,
                };
                jwks = DecodingKey::from_jwk(jwk).map_err(|e| format!("jwks_file key: {e}"))?;
                &jwks
            }
            _ => {
                return Err(format!("the token is signed with {:?}, which the configured key cannot check", header.alg))
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.leeway = 0;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        jsonwebtoken::decode::<serde_json::Map<String, Value>>(token, key, &validation)
            .map(|data| data.claims)
            .map_err(|e| format!("invalid token: {e}"))
    }
}

enum Family {
    Hmac,
    Rsa,
    Ec,
    Other,
}

fn family(alg: Algorithm) -> Family {
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Family::Hmac,
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Family::Rsa,
        Algorithm::ES256 | Algorithm::ES384 => Family::Ec,
        Algorithm::EdDSA => Family::Other,
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    use super::*;

    fn creds(password: &str) -> Credentials {
        Credentials {
            client_id: "dev-1".into(),
            username: Some("alice".into()),
            password: Some(ntex_bytes::Bytes::copy_from_slice(password.as_bytes())),
            peer: "127.0.0.1".parse().unwrap(),
        }
    }

    fn now() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
    }

    fn hmac(claims: serde_json::Value) -> String {
        encode(&Header::default(), &claims, &EncodingKey::from_secret(b"k")).unwrap()
    }

    fn authn(extra: &str) -> JwtAuthn {
        let cfg: JwtConfig = toml::from_str(&format!("secret = \"k\"\n{extra}")).unwrap();
        JwtAuthn::new(&cfg).unwrap()
    }

    #[tokio::test]
    async fn a_valid_token_is_allowed_with_its_expiry_and_acl() {
        let a = authn("verify_claims = { sub = \"${clientid}\", user = \"${username}\" }");
        let exp = now() + 60;
        let acl = json!([{ "permission": "allow", "action": "publish", "topic": "t/${clientid}" }]);
        let token = hmac(json!({ "sub": "dev-1", "user": "alice", "exp": exp, "acl": acl }));
        match a.check(&creds(&token)).await {
            Outcome::Allow(g) => {
                assert_eq!(g.expires_at, Some(UNIX_EPOCH + Duration::from_secs(exp)));
                assert_eq!(g.acl.map(|a| a.len()), Some(1));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn expired_early_forged_or_mismatched_tokens_are_denied() {
        let a = authn("verify_claims = { sub = \"${clientid}\" }");
        let expired = hmac(json!({ "sub": "dev-1", "exp": now() - 1 }));
        let early = hmac(json!({ "sub": "dev-1", "nbf": now() + 60 }));
        let other = hmac(json!({ "sub": "dev-2" }));
        let forged = encode(&Header::default(), &json!({ "sub": "dev-1" }), &EncodingKey::from_secret(b"x")).unwrap();
        for token in [expired, early, other, forged] {
            assert!(matches!(a.check(&creds(&token)).await, Outcome::Deny(_)), "{token}");
        }
        assert!(matches!(a.check(&creds("not-a-token")).await, Outcome::Ignore(_)));
    }

    #[test]
    fn missing_keys_are_named() {
        let cfg: JwtConfig = toml::from_str("algorithm = \"public-key\"").unwrap();
        assert!(JwtAuthn::new(&cfg).err().unwrap().to_string().contains("public_key"));
        let cfg: JwtConfig = toml::from_str("use_jwks = true\njwks_file = \"/nonexistent/jwks.json\"").unwrap();
        assert!(JwtAuthn::new(&cfg).err().unwrap().to_string().contains("/nonexistent/jwks.json"));
    }
}
