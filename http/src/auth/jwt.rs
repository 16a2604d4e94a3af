//! Access tokens: issuing and verifying the JWTs that authenticate API calls.
//!
//! A token carries `iss`, `aud`, `sub` (the user id), `exp`, `iat`, `jti` (a
//! UUIDv7) and the private claim `sid` (the login session id). It is signed
//! with HS256 from a shared secret, or with an Ed25519 (EdDSA) or P-256
//! (ES256) key pair given as PKCS#8 / SPKI PEM.
//!
//! Verification is strict: the algorithm is pinned to the configured one (so
//! `alg: none` and algorithm-confusion tokens are refused), every claim is
//! required, `iss` and `aud` must match, `exp` is checked strictly (a token is
//! dead from the second named in `exp` on, plus the configured leeway), an
//! `iat` or `nbf` further in the future than the leeway is refused, and `sub` / `sid`
//! must be canonical decimal `i64`s.

use std::fmt;

use jsonwebtoken::{DecodingKey, DecodingKeyKind, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// The shortest HS256 secret accepted, in bytes.
pub const MIN_HS256_SECRET_LEN: usize = 16;

/// The `typ` header value of every token this module issues and accepts.
const TOKEN_TYPE: &str = "JWT";

/// The message signed and verified once by [`TokenService::new`] to prove
/// that the configured keys work and belong together.
const KEY_PROBE: &[u8] = b"mall access-token key self-check";

/// A signing algorithm that access tokens may be configured to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// HMAC-SHA256 with a shared secret (`HS256`).
    Hs256,
    /// Ed25519 signatures (`EdDSA`).
    EdDsa,
    /// ECDSA on P-256 with SHA-256 (`ES256`).
    Es256,
}

impl Algorithm {
    /// Parses the JOSE name of an algorithm: `"HS256"`, `"EdDSA"` or
    /// `"ES256"` (case-sensitive, as in a JWT header). Anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "HS256" => Some(Self::Hs256),
            "EdDSA" => Some(Self::EdDsa),
            "ES256" => Some(Self::Es256),
            _ => None,
        }
    }

    /// The JOSE name of the algorithm, as written in a token's `alg` header.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    fn to_jwt(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::Hs256 => jsonwebtoken::Algorithm::HS256,
            Self::EdDsa => jsonwebtoken::Algorithm::EdDSA,
            Self::Es256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The key material tokens are signed and verified with.
#[derive(Clone)]
pub enum KeyMaterial {
    /// A shared secret for HS256, at least [`MIN_HS256_SECRET_LEN`] bytes.
    Secret(String),
    /// A key pair for EdDSA or ES256: the private key as PKCS#8 PEM
    /// (`-----BEGIN PRIVATE KEY-----`) and the public key as SPKI PEM
    /// (`-----BEGIN PUBLIC KEY-----`).
    KeyPair {
        /// The PKCS#8 PEM private key, used to sign.
        private_pem: Vec<u8>,
        /// The SPKI PEM public key, used to verify.
        public_pem: Vec<u8>,
    },
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Secret(_) => f.debug_tuple("Secret").field(&"[redacted]").finish(),
            Self::KeyPair { .. } => f
                .debug_struct("KeyPair")
                .field("private_pem", &"[redacted]")
                .field("public_pem", &"[redacted]")
                .finish(),
        }
    }
}

/// Everything a [`TokenService`] needs: algorithm, keys, and the claim policy.
#[derive(Debug, Clone)]
pub struct JwtSettings {
    /// The one algorithm tokens are signed with and accepted in.
    pub algorithm: Algorithm,
    /// The secret or key pair matching `algorithm`.
    pub key: KeyMaterial,
    /// The `iss` claim written into and required of every token.
    pub issuer: String,
    /// The `aud` claim written into and required of every token.
    pub audience: String,
    /// How long an issued token lives, in seconds.
    pub access_ttl_secs: u64,
    /// Clock-skew allowance, in seconds, for `exp` and `iat` checks.
    pub leeway_secs: u64,
}

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the user id as a decimal string.
    pub sub: String,
    /// Expiry, in seconds since the Unix epoch.
    pub exp: u64,
    /// Issue time, in seconds since the Unix epoch.
    pub iat: u64,
    /// Token id: a UUIDv7 string.
    pub jti: String,
    /// The login session id as a decimal string.
    pub sid: String,
    /// Not before, in seconds since the Unix epoch: optional (the mall writes none), but a
    /// token that carries one is refused until then (past the leeway).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
}

impl Claims {
    /// The user id carried in `sub`, if it is a canonical decimal `i64`.
    pub fn user_id(&self) -> Option<i64> {
        parse_decimal_id(&self.sub)
    }

    /// The session id carried in `sid`, if it is a canonical decimal `i64`.
    pub fn session_id(&self) -> Option<i64> {
        parse_decimal_id(&self.sid)
    }
}

/// Parses an id written the way `i64::to_string` writes it, and nothing else
/// (no `+`, no leading zeros, no whitespace).
fn parse_decimal_id(s: &str) -> Option<i64> {
    let value: i64 = s.parse().ok()?;
    (value.to_string() == s).then_some(value)
}

/// A freshly signed access token and what a client needs to know about it.
#[derive(Clone)]
pub struct IssuedToken {
    /// The compact JWT (`header.payload.signature`).
    pub token: String,
    /// The token's `jti`.
    pub jti: String,
    /// When the token expires (its `exp`), in UTC.
    pub expires_at: OffsetDateTime,
    /// The token's lifetime in seconds, for an OAuth-style `expires_in`.
    pub expires_in: u64,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("token", &"[redacted]")
            .field("jti", &self.jti)
            .field("expires_at", &self.expires_at)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// Why a token could not be issued or was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    /// The configured key material is unusable or does not fit the algorithm.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// The presented token is not acceptable; the text says why (for logs,
    /// not for clients).
    #[error("token rejected: {0}")]
    Rejected(String),
    /// A token could not be built or signed.
    #[error("could not sign: {0}")]
    Signing(String),
}

/// Issues and verifies access tokens under one [`JwtSettings`].
///
/// Holds the parsed keys and the validation policy; it is `Send + Sync` and
/// meant to be built once at start-up and shared behind an `Arc`.
pub struct TokenService {
    algorithm: Algorithm,
    header: Header,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl_secs: u64,
    leeway_secs: u64,
}

impl fmt::Debug for TokenService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenService")
            .field("algorithm", &self.algorithm)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .field("leeway_secs", &self.leeway_secs)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// Builds a service from its settings.
    ///
    /// Fails with [`JwtError::InvalidKey`] when an HS256 secret is shorter
    /// than [`MIN_HS256_SECRET_LEN`] bytes, when the key material does not
    /// fit the algorithm (a secret for EdDSA/ES256, a key pair for HS256),
    /// when a PEM cannot be read, or when the public key does not belong to
    /// the private key (checked by signing and verifying a probe message).
    pub fn new(settings: JwtSettings) -> Result<Self, JwtError> {
        let JwtSettings {
            algorithm,
            key,
            issuer,
            audience,
            access_ttl_secs,
            leeway_secs,
        } = settings;
        let (encoding, decoding) = load_keys(algorithm, &key)?;
        check_key_pair(algorithm, &encoding, &decoding)?;

        let mut validation = Validation::new(algorithm.to_jwt());
        // `iat`, `jti` and `sid` have no switch here: they are required because
        // `Claims` has no defaults, so a token without them fails to decode.
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[issuer.as_str()]);
        validation.set_audience(&[audience.as_str()]);
        validation.validate_aud = true;
        // The library accepts a token while `exp >= now - leeway`, i.e. still
        // in the very second named by `exp`, and reads the clock itself.
        // `exp` is checked strictly in `check_times` instead.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;

        Ok(Self {
            algorithm,
            header: Header::new(algorithm.to_jwt()),
            encoding,
            decoding,
            validation,
            issuer,
            audience,
            access_ttl_secs,
            leeway_secs,
        })
    }

    /// The algorithm tokens are signed with and accepted in.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The lifetime of issued tokens, in seconds.
    pub fn access_ttl_secs(&self) -> u64 {
        self.access_ttl_secs
    }

    /// Signs an access token for `user_id` in login session `session_id`,
    /// issued at `now` and expiring `access_ttl_secs` later.
    ///
    /// Fails with [`JwtError::Signing`] if `now` is before the Unix epoch, if
    /// the expiry overflows, or if signing fails.
    pub fn issue(
        &self,
        user_id: i64,
        session_id: i64,
        now: OffsetDateTime,
    ) -> Result<IssuedToken, JwtError> {
        let iat = u64::try_from(now.unix_timestamp())
            .map_err(|_| JwtError::Signing("issue time is before the Unix epoch".into()))?;
        let exp = iat
            .checked_add(self.access_ttl_secs)
            .ok_or_else(|| JwtError::Signing("expiry time overflows".into()))?;
        let expires_at = i64::try_from(exp)
            .ok()
            .and_then(|exp| OffsetDateTime::from_unix_timestamp(exp).ok())
            .ok_or_else(|| JwtError::Signing("expiry time is out of range".into()))?;
        let jti = Uuid::now_v7().to_string();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user_id.to_string(),
            exp,
            iat,
            jti: jti.clone(),
            sid: session_id.to_string(),
            nbf: None,
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.encoding)
            .map_err(|e| JwtError::Signing(e.to_string()))?;
        Ok(IssuedToken {
            token,
            jti,
            expires_at,
            expires_in: self.access_ttl_secs,
        })
    }

    /// Verifies a token against the current time and returns its claims.
    ///
    /// Fails with [`JwtError::Rejected`] unless the token is well-formed,
    /// signed with the configured algorithm and key, carries every claim,
    /// names the configured issuer and audience, has not expired, was not
    /// issued in the future (beyond the leeway), has a UUIDv7 `jti` and
    /// canonical decimal `i64` `sub` and `sid`.
    pub fn verify(&self, token: &str) -> Result<Claims, JwtError> {
        self.verify_at(token, OffsetDateTime::now_utc())
    }

    /// [`TokenService::verify`] with the clock supplied by the caller.
    fn verify_at(&self, token: &str, now: OffsetDateTime) -> Result<Claims, JwtError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| JwtError::Rejected(e.to_string()))?;
        // `decode` already refuses any `alg` outside `validation.algorithms`;
        // restated here so the pin never depends on that detail alone.
        if data.header.alg != self.algorithm.to_jwt() {
            return Err(JwtError::Rejected("unexpected algorithm".into()));
        }
        if data.header.typ.as_deref() != Some(TOKEN_TYPE) {
            return Err(JwtError::Rejected("unexpected token type".into()));
        }
        if data.header.crit.is_some() {
            return Err(JwtError::Rejected("unsupported critical header".into()));
        }
        let claims = data.claims;
        self.check_times(&claims, now)?;
        let jti_is_v7 = Uuid::try_parse(&claims.jti).is_ok_and(|jti| jti.get_version_num() == 7);
        if !jti_is_v7 {
            return Err(JwtError::Rejected("jti is not a UUIDv7".into()));
        }
        if claims.user_id().is_none() {
            return Err(JwtError::Rejected("sub is not a decimal user id".into()));
        }
        if claims.session_id().is_none() {
            return Err(JwtError::Rejected("sid is not a decimal session id".into()));
        }
        Ok(claims)
    }

    /// Strict time checks: the token is dead from `exp + leeway` on, and may
    /// not claim to be issued (`iat`) or valid from (`nbf`) after `now + leeway`.
    fn check_times(&self, claims: &Claims, now: OffsetDateTime) -> Result<(), JwtError> {
        // A clock before 1970 cannot happen in practice; treat it as 0.
        let now = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        if now >= claims.exp.saturating_add(self.leeway_secs) {
            return Err(JwtError::Rejected("token expired".into()));
        }
        if claims.iat > now.saturating_add(self.leeway_secs) {
            return Err(JwtError::Rejected("token issued in the future".into()));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway_secs))
        {
            return Err(JwtError::Rejected("token not valid yet (nbf)".into()));
        }
        if claims.iat >= claims.exp {
            return Err(JwtError::Rejected(
                "token expires before it was issued".into(),
            ));
        }
        Ok(())
    }
}

/// Parses the key material for `algorithm`, refusing combinations that do
/// not fit.
fn load_keys(
    algorithm: Algorithm,
    key: &KeyMaterial,
) -> Result<(EncodingKey, DecodingKey), JwtError> {
    match (algorithm, key) {
        (Algorithm::Hs256, KeyMaterial::Secret(secret)) => {
            if secret.len() < MIN_HS256_SECRET_LEN {
                return Err(JwtError::InvalidKey(format!(
                    "the HS256 secret must be at least {MIN_HS256_SECRET_LEN} bytes, got {}",
                    secret.len()
                )));
            }
            Ok((
                EncodingKey::from_secret(secret.as_bytes()),
                DecodingKey::from_secret(secret.as_bytes()),
            ))
        }
        (Algorithm::Hs256, KeyMaterial::KeyPair { .. }) => Err(JwtError::InvalidKey(
            "HS256 needs a shared secret, not a key pair".into(),
        )),
        (Algorithm::EdDsa | Algorithm::Es256, KeyMaterial::Secret(_)) => Err(JwtError::InvalidKey(
            format!("{algorithm} needs a PEM key pair, not a secret"),
        )),
        (
            Algorithm::EdDsa,
            KeyMaterial::KeyPair {
                private_pem,
                public_pem,
            },
        ) => {
            let encoding = EncodingKey::from_ed_pem(private_pem).map_err(|e| {
                JwtError::InvalidKey(format!("EdDSA private key (PKCS#8 PEM expected): {e}"))
            })?;
            let decoding = DecodingKey::from_ed_pem(public_pem).map_err(|e| {
                JwtError::InvalidKey(format!("EdDSA public key (SPKI PEM expected): {e}"))
            })?;
            // The verifier slices the first 32 bytes without a length check,
            // so a short key would panic on first use instead of failing here.
            if !matches!(decoding.kind(), DecodingKeyKind::SecretOrDer(raw) if raw.len() == 32) {
                return Err(JwtError::InvalidKey(
                    "EdDSA public key is not a 32-byte Ed25519 key".into(),
                ));
            }
            Ok((encoding, decoding))
        }
        (
            Algorithm::Es256,
            KeyMaterial::KeyPair {
                private_pem,
                public_pem,
            },
        ) => {
            let encoding = EncodingKey::from_ec_pem(private_pem).map_err(|e| {
                JwtError::InvalidKey(format!("ES256 private key (PKCS#8 PEM expected): {e}"))
            })?;
            let decoding = DecodingKey::from_ec_pem(public_pem).map_err(|e| {
                JwtError::InvalidKey(format!("ES256 public key (SPKI PEM expected): {e}"))
            })?;
            Ok((encoding, decoding))
        }
    }
}

/// Signs and verifies a probe message, so that a key of the wrong curve or a
/// public key from another pair is refused at start-up rather than at the
/// first login.
fn check_key_pair(
    algorithm: Algorithm,
    encoding: &EncodingKey,
    decoding: &DecodingKey,
) -> Result<(), JwtError> {
    let alg = algorithm.to_jwt();
    let signature = jsonwebtoken::crypto::sign(KEY_PROBE, encoding, alg)
        .map_err(|e| JwtError::InvalidKey(format!("cannot sign with the {algorithm} key: {e}")))?;
    match jsonwebtoken::crypto::verify(&signature, KEY_PROBE, decoding, alg) {
        Ok(true) => Ok(()),
        Ok(false) => Err(JwtError::InvalidKey(
            "the public key does not match the private key".into(),
        )),
        Err(e) => Err(JwtError::InvalidKey(format!(
            "cannot verify with the {algorithm} key: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::{Value, json};
    use time::Duration;

    // Test-only keys, generated for these tests with
    // `openssl genpkey -algorithm ed25519` / `-algorithm EC -pkeyopt
    // ec_paramgen_curve:P-256` and `openssl pkey -pubout`.
    const ED_A_PRIVATE: &[u8] = include_bytes!("testdata/ed25519_a_private.pem");
    const ED_A_PUBLIC: &[u8] = include_bytes!("testdata/ed25519_a_public.pem");
    const ED_B_PRIVATE: &[u8] = include_bytes!("testdata/ed25519_b_private.pem");
    const ED_B_PUBLIC: &[u8] = include_bytes!("testdata/ed25519_b_public.pem");
    const P256_A_PRIVATE: &[u8] = include_bytes!("testdata/p256_a_private.pem");
    const P256_A_PUBLIC: &[u8] = include_bytes!("testdata/p256_a_public.pem");
    const P256_B_PRIVATE: &[u8] = include_bytes!("testdata/p256_b_private.pem");
    const P256_B_PUBLIC: &[u8] = include_bytes!("testdata/p256_b_public.pem");

    const SECRET: &str = "test-secret-0123456789abcdef";
    const ISSUER: &str = "mall-test";
    const AUDIENCE: &str = "mall-api-test";
    const TTL: u64 = 900;
    const USER: i64 = 42;
    const SESSION: i64 = 7;

    fn settings(algorithm: Algorithm, key: KeyMaterial) -> JwtSettings {
        JwtSettings {
            algorithm,
            key,
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            access_ttl_secs: TTL,
            leeway_secs: 0,
        }
    }

    fn key_pair(private_pem: &[u8], public_pem: &[u8]) -> KeyMaterial {
        KeyMaterial::KeyPair {
            private_pem: private_pem.to_vec(),
            public_pem: public_pem.to_vec(),
        }
    }

    fn hs_service() -> TokenService {
        TokenService::new(settings(
            Algorithm::Hs256,
            KeyMaterial::Secret(SECRET.to_owned()),
        ))
        .expect("HS256 service")
    }

    fn ed_service() -> TokenService {
        TokenService::new(settings(
            Algorithm::EdDsa,
            key_pair(ED_A_PRIVATE, ED_A_PUBLIC),
        ))
        .expect("EdDSA service")
    }

    fn es_service() -> TokenService {
        TokenService::new(settings(
            Algorithm::Es256,
            key_pair(P256_A_PRIVATE, P256_A_PUBLIC),
        ))
        .expect("ES256 service")
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn unix(t: OffsetDateTime) -> u64 {
        u64::try_from(t.unix_timestamp()).expect("after 1970")
    }

    /// Claims that `hs_service` would accept right now.
    fn valid_claims_json() -> Value {
        let iat = unix(now());
        json!({
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": USER.to_string(),
            "exp": iat + TTL,
            "iat": iat,
            "jti": Uuid::now_v7().to_string(),
            "sid": SESSION.to_string(),
        })
    }

    /// Signs arbitrary claims as HS256 with the test secret.
    fn sign_hs256(claims: &Value) -> String {
        jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("sign test token")
    }

    fn expect_rejected(result: Result<Claims, JwtError>, reason: &str) {
        match result {
            Err(JwtError::Rejected(why)) => assert!(
                why.contains(reason),
                "rejected for {why:?}, expected a reason containing {reason:?}"
            ),
            other => panic!("expected rejection ({reason}), got {other:?}"),
        }
    }

    fn expect_invalid_key(result: Result<TokenService, JwtError>) -> String {
        match result {
            Err(JwtError::InvalidKey(why)) => why,
            other => panic!("expected InvalidKey, got {other:?}"),
        }
    }

    fn segments(token: &str) -> (String, String, String) {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "compact JWT has three segments");
        (
            parts[0].to_owned(),
            parts[1].to_owned(),
            parts[2].to_owned(),
        )
    }

    fn decode_segment(segment: &str) -> Value {
        let bytes = URL_SAFE_NO_PAD.decode(segment).expect("base64url");
        serde_json::from_slice(&bytes).expect("JSON segment")
    }

    fn encode_segment(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).expect("serialize"))
    }

    fn assert_round_trip(service: &TokenService, alg_name: &str) {
        let issued_at = now();
        let issued = service
            .issue(USER, SESSION, issued_at)
            .expect("issue token");
        let (header, _, _) = segments(&issued.token);
        let header = decode_segment(&header);
        assert_eq!(header["alg"], alg_name);
        assert_eq!(header["typ"], "JWT");

        let claims = service.verify(&issued.token).expect("verify own token");
        let iat = unix(issued_at);
        assert_eq!(
            claims,
            Claims {
                iss: ISSUER.to_owned(),
                aud: AUDIENCE.to_owned(),
                sub: "42".to_owned(),
                exp: iat + TTL,
                iat,
                jti: issued.jti.clone(),
                sid: "7".to_owned(),
                nbf: None,
            }
        );
        assert_eq!(claims.user_id(), Some(USER));
        assert_eq!(claims.session_id(), Some(SESSION));
        assert_eq!(issued.expires_in, TTL);
        assert_eq!(unix(issued.expires_at), iat + TTL);
        let jti = Uuid::parse_str(&issued.jti).expect("jti is a UUID");
        assert_eq!(jti.get_version_num(), 7);
    }

    #[test]
    fn algorithm_names_parse_exactly() {
        for alg in [Algorithm::Hs256, Algorithm::EdDsa, Algorithm::Es256] {
            assert_eq!(Algorithm::parse(alg.as_str()), Some(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        assert_eq!(Algorithm::parse("HS256"), Some(Algorithm::Hs256));
        assert_eq!(Algorithm::parse("EdDSA"), Some(Algorithm::EdDsa));
        assert_eq!(Algorithm::parse("ES256"), Some(Algorithm::Es256));
        for other in [
            "", "none", "hs256", "EDDSA", "HS512", "RS256", "ES384", " HS256",
        ] {
            assert_eq!(Algorithm::parse(other), None, "{other:?}");
        }
    }

    #[test]
    fn round_trip_hs256() {
        assert_round_trip(&hs_service(), "HS256");
    }

    #[test]
    fn round_trip_eddsa() {
        assert_round_trip(&ed_service(), "EdDSA");
    }

    #[test]
    fn round_trip_es256() {
        assert_round_trip(&es_service(), "ES256");
    }

    #[test]
    fn each_token_gets_a_fresh_jti() {
        let service = hs_service();
        let t = now();
        let a = service.issue(USER, SESSION, t).expect("issue");
        let b = service.issue(USER, SESSION, t).expect("issue");
        assert_ne!(a.jti, b.jti);
        assert_ne!(a.token, b.token);
    }

    #[test]
    fn alg_none_is_rejected() {
        let service = hs_service();
        let issued = service.issue(USER, SESSION, now()).expect("issue");
        let (_, payload, signature) = segments(&issued.token);
        for alg in ["none", "None", "NONE"] {
            let header = encode_segment(&json!({ "alg": alg, "typ": "JWT" }));
            for token in [
                format!("{header}.{payload}."),
                format!("{header}.{payload}"),
                format!("{header}.{payload}.{signature}"),
            ] {
                assert!(
                    matches!(service.verify(&token), Err(JwtError::Rejected(_))),
                    "alg {alg} token {token} accepted"
                );
            }
        }
        // The same payload under the genuine header is fine, so it is the
        // header that gets the tokens above refused.
        assert!(service.verify(&issued.token).is_ok());
    }

    #[test]
    fn other_secret_is_rejected() {
        let forger = TokenService::new(settings(
            Algorithm::Hs256,
            KeyMaterial::Secret("another-secret-0123456789".to_owned()),
        ))
        .expect("forger service");
        let forged = forger.issue(USER, SESSION, now()).expect("issue");
        expect_rejected(hs_service().verify(&forged.token), "InvalidSignature");
    }

    #[test]
    fn other_key_pair_is_rejected() {
        let ed_forger = TokenService::new(settings(
            Algorithm::EdDsa,
            key_pair(ED_B_PRIVATE, ED_B_PUBLIC),
        ))
        .expect("EdDSA forger");
        let forged = ed_forger.issue(USER, SESSION, now()).expect("issue");
        expect_rejected(ed_service().verify(&forged.token), "InvalidSignature");

        let es_forger = TokenService::new(settings(
            Algorithm::Es256,
            key_pair(P256_B_PRIVATE, P256_B_PUBLIC),
        ))
        .expect("ES256 forger");
        let forged = es_forger.issue(USER, SESSION, now()).expect("issue");
        expect_rejected(es_service().verify(&forged.token), "InvalidSignature");
    }

    #[test]
    fn tampered_payload_is_rejected() {
        for service in [hs_service(), ed_service(), es_service()] {
            let issued = service.issue(USER, SESSION, now()).expect("issue");
            let (header, payload, signature) = segments(&issued.token);
            let mut claims = decode_segment(&payload);
            claims["sub"] = json!("1");
            let tampered = format!("{header}.{}.{signature}", encode_segment(&claims));
            expect_rejected(service.verify(&tampered), "InvalidSignature");
        }
    }

    #[test]
    fn tampered_signature_is_rejected() {
        let service = ed_service();
        let issued = service.issue(USER, SESSION, now()).expect("issue");
        let (header, payload, signature) = segments(&issued.token);
        let mut raw = URL_SAFE_NO_PAD.decode(signature).expect("signature");
        raw[0] ^= 1;
        let token = format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(raw));
        expect_rejected(service.verify(&token), "InvalidSignature");
    }

    #[test]
    fn wrong_audience_is_rejected() {
        let mut other = settings(Algorithm::Hs256, KeyMaterial::Secret(SECRET.to_owned()));
        other.audience = "some-other-api".to_owned();
        let other = TokenService::new(other).expect("service");
        let token = other.issue(USER, SESSION, now()).expect("issue").token;
        expect_rejected(hs_service().verify(&token), "InvalidAudience");
    }

    #[test]
    fn wrong_issuer_is_rejected() {
        let mut other = settings(Algorithm::Hs256, KeyMaterial::Secret(SECRET.to_owned()));
        other.issuer = "someone-else".to_owned();
        let other = TokenService::new(other).expect("service");
        let token = other.issue(USER, SESSION, now()).expect("issue").token;
        expect_rejected(hs_service().verify(&token), "InvalidIssuer");
    }

    #[test]
    fn audience_array_is_rejected() {
        let mut claims = valid_claims_json();
        claims["aud"] = json!([AUDIENCE, "other"]);
        assert!(matches!(
            hs_service().verify(&sign_hs256(&claims)),
            Err(JwtError::Rejected(_))
        ));
    }

    #[test]
    fn expired_token_is_rejected() {
        let service = hs_service();
        let long_ago = now() - Duration::hours(2);
        let issued = service.issue(USER, SESSION, long_ago).expect("issue");
        expect_rejected(service.verify(&issued.token), "expired");
    }

    #[test]
    fn expiry_is_strict_at_the_boundary() {
        let service = hs_service();
        let issued_at = now();
        let issued = service.issue(USER, SESSION, issued_at).expect("issue");
        let exp = issued.expires_at;
        assert!(
            service
                .verify_at(&issued.token, exp - Duration::seconds(1))
                .is_ok()
        );
        expect_rejected(service.verify_at(&issued.token, exp), "expired");
        expect_rejected(
            service.verify_at(&issued.token, exp + Duration::seconds(1)),
            "expired",
        );
    }

    #[test]
    fn leeway_extends_expiry_by_exactly_its_length() {
        let mut lenient = settings(Algorithm::Hs256, KeyMaterial::Secret(SECRET.to_owned()));
        lenient.leeway_secs = 30;
        let service = TokenService::new(lenient).expect("service");
        let issued = service.issue(USER, SESSION, now()).expect("issue");
        let exp = issued.expires_at;
        assert!(
            service
                .verify_at(&issued.token, exp + Duration::seconds(29))
                .is_ok()
        );
        expect_rejected(
            service.verify_at(&issued.token, exp + Duration::seconds(30)),
            "expired",
        );
    }

    #[test]
    fn token_from_the_future_is_rejected() {
        let service = hs_service();
        let issued = service
            .issue(USER, SESSION, now() + Duration::minutes(5))
            .expect("issue");
        expect_rejected(service.verify(&issued.token), "future");
    }

    #[test]
    fn future_iat_within_leeway_is_accepted() {
        let mut lenient = settings(Algorithm::Hs256, KeyMaterial::Secret(SECRET.to_owned()));
        lenient.leeway_secs = 60;
        let service = TokenService::new(lenient).expect("service");
        let t = now();
        let issued = service
            .issue(USER, SESSION, t + Duration::seconds(60))
            .expect("issue");
        assert!(service.verify_at(&issued.token, t).is_ok());
        expect_rejected(
            service.verify_at(&issued.token, t - Duration::seconds(1)),
            "future",
        );
    }

    #[test]
    fn nbf_in_the_future_is_rejected_past_the_leeway() {
        let t = unix(now());
        let mut claims = valid_claims_json();
        claims["nbf"] = json!(t + 120);
        expect_rejected(hs_service().verify(&sign_hs256(&claims)), "nbf");
        claims["nbf"] = json!(t);
        assert!(hs_service().verify(&sign_hs256(&claims)).is_ok());

        let mut lenient = settings(Algorithm::Hs256, KeyMaterial::Secret(SECRET.to_owned()));
        lenient.leeway_secs = 60;
        let lenient = TokenService::new(lenient).expect("service");
        claims["nbf"] = json!(t + 30);
        assert!(lenient.verify(&sign_hs256(&claims)).is_ok());
        claims["nbf"] = json!(t + 120);
        expect_rejected(lenient.verify(&sign_hs256(&claims)), "nbf");
        // A string is not a time: the token does not decode.
        claims["nbf"] = json!("0");
        assert!(lenient.verify(&sign_hs256(&claims)).is_err());
    }

    #[test]
    fn exp_not_after_iat_is_rejected() {
        // With a leeway, a token whose exp equals its iat is neither expired
        // nor from the future, so only the ordering rule can refuse it.
        let mut lenient = settings(Algorithm::Hs256, KeyMaterial::Secret(SECRET.to_owned()));
        lenient.leeway_secs = 60;
        let service = TokenService::new(lenient).expect("service");
        let t = unix(now());
        let mut claims = valid_claims_json();
        claims["iat"] = json!(t);
        claims["exp"] = json!(t + 1);
        assert!(service.verify(&sign_hs256(&claims)).is_ok());
        claims["exp"] = json!(t);
        expect_rejected(
            service.verify(&sign_hs256(&claims)),
            "expires before it was issued",
        );
    }

    #[test]
    fn every_claim_is_required() {
        let service = hs_service();
        assert!(service.verify(&sign_hs256(&valid_claims_json())).is_ok());
        for claim in ["iss", "aud", "sub", "exp", "iat", "jti", "sid"] {
            let mut claims = valid_claims_json();
            claims
                .as_object_mut()
                .expect("object")
                .remove(claim)
                .expect("claim present");
            assert!(
                matches!(
                    service.verify(&sign_hs256(&claims)),
                    Err(JwtError::Rejected(_))
                ),
                "token without {claim} accepted"
            );
        }
    }

    #[test]
    fn missing_jti_is_rejected() {
        let mut claims = valid_claims_json();
        claims.as_object_mut().expect("object").remove("jti");
        expect_rejected(hs_service().verify(&sign_hs256(&claims)), "jti");
    }

    #[test]
    fn missing_sid_is_rejected() {
        let mut claims = valid_claims_json();
        claims.as_object_mut().expect("object").remove("sid");
        expect_rejected(hs_service().verify(&sign_hs256(&claims)), "sid");
    }

    #[test]
    fn non_decimal_sub_or_sid_is_rejected() {
        let service = hs_service();
        let bad = [
            "",
            "abc",
            "+42",
            "042",
            " 42",
            "42 ",
            "4.2",
            "0x2a",
            "9223372036854775808",
        ];
        for value in bad {
            for claim in ["sub", "sid"] {
                let mut claims = valid_claims_json();
                claims[claim] = json!(value);
                expect_rejected(service.verify(&sign_hs256(&claims)), claim);
            }
        }
        // A number where a string belongs is refused as well.
        let mut claims = valid_claims_json();
        claims["sid"] = json!(SESSION);
        assert!(matches!(
            service.verify(&sign_hs256(&claims)),
            Err(JwtError::Rejected(_))
        ));
    }

    #[test]
    fn jti_must_be_a_uuid_v7() {
        let service = hs_service();
        for jti in ["", "not-a-uuid", "550e8400-e29b-41d4-a716-446655440000"] {
            let mut claims = valid_claims_json();
            claims["jti"] = json!(jti);
            expect_rejected(service.verify(&sign_hs256(&claims)), "jti");
        }
    }

    #[test]
    fn other_token_type_is_rejected() {
        let claims = valid_claims_json();
        let key = EncodingKey::from_secret(SECRET.as_bytes());
        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.typ = Some("refresh+jwt".to_owned());
        let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
        expect_rejected(hs_service().verify(&token), "token type");

        let mut header = Header::new(jsonwebtoken::Algorithm::HS256);
        header.crit = Some(vec!["exp".to_owned()]);
        let token = jsonwebtoken::encode(&header, &claims, &key).expect("sign");
        expect_rejected(hs_service().verify(&token), "critical");
    }

    #[test]
    fn hs256_token_is_rejected_by_eddsa_service() {
        // Algorithm confusion: a forger who knows the public key signs an
        // HS256 token using the key bytes as the HMAC secret.
        let service = ed_service();
        let claims = valid_claims_json();
        let raw_public = match DecodingKey::from_ed_pem(ED_A_PUBLIC)
            .expect("public key")
            .kind()
        {
            DecodingKeyKind::SecretOrDer(raw) => raw.clone(),
            other => panic!("unexpected key kind {other:?}"),
        };
        for secret in [ED_A_PUBLIC.to_vec(), raw_public] {
            let token = jsonwebtoken::encode(
                &Header::new(jsonwebtoken::Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(&secret),
            )
            .expect("sign");
            expect_rejected(service.verify(&token), "InvalidAlgorithm");
        }
    }

    #[test]
    fn hs256_token_is_rejected_by_es256_service() {
        let token = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS256),
            &valid_claims_json(),
            &EncodingKey::from_secret(P256_A_PUBLIC),
        )
        .expect("sign");
        expect_rejected(es_service().verify(&token), "InvalidAlgorithm");
    }

    #[test]
    fn other_algorithm_of_the_same_family_is_rejected() {
        let token = jsonwebtoken::encode(
            &Header::new(jsonwebtoken::Algorithm::HS512),
            &valid_claims_json(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .expect("sign");
        expect_rejected(hs_service().verify(&token), "InvalidAlgorithm");
    }

    #[test]
    fn tokens_do_not_cross_between_asymmetric_algorithms() {
        let ed_token = ed_service().issue(USER, SESSION, now()).expect("issue");
        expect_rejected(es_service().verify(&ed_token.token), "InvalidAlgorithm");
        let es_token = es_service().issue(USER, SESSION, now()).expect("issue");
        expect_rejected(ed_service().verify(&es_token.token), "InvalidAlgorithm");
        let hs_token = hs_service().issue(USER, SESSION, now()).expect("issue");
        expect_rejected(ed_service().verify(&hs_token.token), "InvalidAlgorithm");
    }

    #[test]
    fn garbage_is_rejected_without_panicking() {
        let service = ed_service();
        for token in [
            "",
            ".",
            "..",
            "a.b.c",
            "a.b.c.d",
            "not a token",
            "\u{0}.\u{0}.\u{0}",
        ] {
            assert!(
                matches!(service.verify(token), Err(JwtError::Rejected(_))),
                "{token:?} accepted"
            );
        }
    }

    #[test]
    fn short_secret_is_refused() {
        let short = "0123456789abcde"; // 15 bytes
        assert_eq!(short.len(), MIN_HS256_SECRET_LEN - 1);
        let why = expect_invalid_key(TokenService::new(settings(
            Algorithm::Hs256,
            KeyMaterial::Secret(short.to_owned()),
        )));
        assert!(why.contains("16 bytes"), "{why}");
        assert!(
            TokenService::new(settings(
                Algorithm::Hs256,
                KeyMaterial::Secret("0123456789abcdef".to_owned()),
            ))
            .is_ok()
        );
    }

    #[test]
    fn key_material_must_fit_the_algorithm() {
        let secret = || KeyMaterial::Secret(SECRET.to_owned());
        expect_invalid_key(TokenService::new(settings(Algorithm::EdDsa, secret())));
        expect_invalid_key(TokenService::new(settings(Algorithm::Es256, secret())));
        expect_invalid_key(TokenService::new(settings(
            Algorithm::Hs256,
            key_pair(ED_A_PRIVATE, ED_A_PUBLIC),
        )));
        expect_invalid_key(TokenService::new(settings(
            Algorithm::Es256,
            key_pair(ED_A_PRIVATE, ED_A_PUBLIC),
        )));
        expect_invalid_key(TokenService::new(settings(
            Algorithm::EdDsa,
            key_pair(P256_A_PRIVATE, P256_A_PUBLIC),
        )));
        expect_invalid_key(TokenService::new(settings(
            Algorithm::EdDsa,
            key_pair(b"not a pem", ED_A_PUBLIC),
        )));
        expect_invalid_key(TokenService::new(settings(
            Algorithm::Es256,
            key_pair(P256_A_PRIVATE, b"not a pem"),
        )));
        // Public keys where private ones belong.
        expect_invalid_key(TokenService::new(settings(
            Algorithm::EdDsa,
            key_pair(ED_A_PUBLIC, ED_A_PUBLIC),
        )));
    }

    #[test]
    fn mismatched_key_pair_is_refused() {
        let why = expect_invalid_key(TokenService::new(settings(
            Algorithm::EdDsa,
            key_pair(ED_A_PRIVATE, ED_B_PUBLIC),
        )));
        assert!(why.contains("does not match"), "{why}");
        let why = expect_invalid_key(TokenService::new(settings(
            Algorithm::Es256,
            key_pair(P256_A_PRIVATE, P256_B_PUBLIC),
        )));
        assert!(why.contains("does not match"), "{why}");
    }

    #[test]
    fn issue_refuses_times_it_cannot_encode() {
        let service = hs_service();
        let before_epoch = OffsetDateTime::UNIX_EPOCH - Duration::seconds(1);
        assert!(matches!(
            service.issue(USER, SESSION, before_epoch),
            Err(JwtError::Signing(_))
        ));
        let mut forever = settings(Algorithm::Hs256, KeyMaterial::Secret(SECRET.to_owned()));
        forever.access_ttl_secs = u64::MAX;
        let forever = TokenService::new(forever).expect("service");
        assert!(matches!(
            forever.issue(USER, SESSION, now()),
            Err(JwtError::Signing(_))
        ));
    }

    #[test]
    fn claims_ids_parse_only_canonical_decimals() {
        let mut claims = Claims {
            iss: String::new(),
            aud: String::new(),
            sub: "42".to_owned(),
            exp: 0,
            iat: 0,
            jti: String::new(),
            sid: "-7".to_owned(),
            nbf: None,
        };
        assert_eq!(claims.user_id(), Some(42));
        assert_eq!(claims.session_id(), Some(-7));
        claims.sub = i64::MAX.to_string();
        assert_eq!(claims.user_id(), Some(i64::MAX));
        for bad in ["", "+1", "01", "-0", "1e3", "9223372036854775808"] {
            claims.sub = bad.to_owned();
            assert_eq!(claims.user_id(), None, "{bad:?}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let settings = settings(Algorithm::Hs256, KeyMaterial::Secret(SECRET.to_owned()));
        assert!(!format!("{settings:?}").contains(SECRET));
        let pair = key_pair(ED_A_PRIVATE, ED_A_PUBLIC);
        assert!(!format!("{pair:?}").contains("PRIVATE"));
        let service = hs_service();
        let issued = service.issue(USER, SESSION, now()).expect("issue");
        assert!(!format!("{issued:?}").contains(&issued.token));
        assert!(!format!("{service:?}").contains(SECRET));
    }

    #[test]
    fn service_can_be_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TokenService>();
    }
}
