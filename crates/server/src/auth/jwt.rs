//! JWT bearer tokens from an existing identity provider: HS256 with a shared secret
//! (`--jwt-secret`, `PITWALL_JWT_SECRET`), or RS256/384/512 and ES256/384 with the provider's
//! public key (`--jwt-public-key FILE`, PEM). `exp` is required and enforced, `nbf` enforced
//! when present (60 s leeway for clock skew), `aud`/`iss` checked when configured. The role
//! comes from a claim (`--jwt-role-claim`, default `role`): a role name or a list of them
//! (the highest PitWall role in it counts); a valid token without one gets 403.

use super::{AuthConfig, AuthError, Denied, Principal, Role};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use std::sync::Arc;

/// Shortest HS256 secret accepted, bytes (256 bits, the hash's size).
pub const MIN_SECRET_BYTES: usize = 32;

/// Checks tokens with one key.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    /// The role claim's path (`realm_access.roles` -> ["realm_access", "roles"]).
    role_claim: Vec<String>,
}

impl JwtVerifier {
    /// The verifier `config` asks for, if any (reads the key file).
    pub fn from_config(config: &AuthConfig) -> Result<Option<JwtVerifier>, AuthError> {
        let (key, algorithms) =
            match (&config.jwt_secret, &config.jwt_public_key) {
                (None, None) => return Ok(None),
                (Some(_), Some(_)) => return Err(AuthError::Jwt(
                    "give either --jwt-secret (HS256) or --jwt-public-key (RS256/ES256), not both"
                        .into(),
                )),
                (Some(secret), None) => {
                    if secret.len() < MIN_SECRET_BYTES {
                        return Err(AuthError::Jwt(format!(
                            "the HS256 secret is {} bytes: use at least {MIN_SECRET_BYTES}",
                            secret.len()
                        )));
                    }
                    (
                        DecodingKey::from_secret(secret.as_bytes()),
                        vec![Algorithm::HS256],
                    )
                }
                (None, Some(path)) => {
                    let pem = std::fs::read(path).map_err(|e| {
                        AuthError::Jwt(format!(
                            "cannot read the public key {}: {e}",
                            path.display()
                        ))
                    })?;
                    if let Ok(k) = DecodingKey::from_ec_pem(&pem) {
                        (k, vec![Algorithm::ES256, Algorithm::ES384])
                    } else if let Ok(k) = DecodingKey::from_rsa_pem(&pem) {
                        (
                            k,
                            vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512],
                        )
                    } else {
                        return Err(AuthError::Jwt(format!(
                            "{} is not a PEM RSA or EC (P-256, P-384) public key",
                            path.display()
                        )));
                    }
                }
            };
        let mut validation = Validation::new(algorithms[0]);
        validation.algorithms = algorithms;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = config.jwt_audience.is_some();
        if let Some(aud) = &config.jwt_audience {
            validation.set_audience(&[aud]);
        }
        if let Some(iss) = &config.jwt_issuer {
            validation.set_issuer(&[iss]);
        }
        let role_claim: Vec<String> = config
            .jwt_role_claim
            .split('.')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if role_claim.is_empty() {
            return Err(AuthError::Jwt("the role claim name is empty".into()));
        }
        Ok(Some(JwtVerifier {
            key,
            validation,
            role_claim,
        }))
    }

    /// Who the token is: signature, `exp`, `nbf` (and `aud`, `iss` when set) checked.
    pub fn verify(&self, token: &str) -> Result<Principal, Denied> {
        let data = jsonwebtoken::decode::<serde_json::Map<String, Value>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|e| Denied::BadToken(reason(&e)))?;
        let claims = Value::Object(data.claims);
        let mut at = &claims;
        for part in &self.role_claim {
            at = at.get(part).unwrap_or(&Value::Null);
        }
        let role = match at {
            Value::String(s) => Role::parse(s),
            Value::Array(a) => a
                .iter()
                .filter_map(|v| v.as_str())
                .filter_map(Role::parse)
                .max(),
            _ => None,
        };
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or("-");
        Ok(Principal {
            role,
            actor: Arc::from(format!("jwt:{sub}")),
        })
    }
}

/// The reason of a refused token, in words.
fn reason(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind as K;
    match e.kind() {
        K::ExpiredSignature => "expired".into(),
        K::ImmatureSignature => "not valid yet (nbf)".into(),
        K::InvalidSignature => "bad signature".into(),
        K::InvalidAudience => "wrong audience".into(),
        K::InvalidIssuer => "wrong issuer".into(),
        K::MissingRequiredClaim(c) => format!("missing claim {c}"),
        K::InvalidAlgorithm => "algorithm not accepted".into(),
        _ => "malformed token".into(),
    }
}
