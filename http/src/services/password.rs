//! Password hashing with argon2id (and the [`Hasher`] the services use to keep it off the async
//! workers), and the random refresh tokens and their storage hashes.

use std::sync::OnceLock;

use argon2::password_hash::Error as HashError;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

use super::ServiceError;

/// Why a password could not be hashed or checked.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// Hashing failed (random source or allocation failure).
    #[error("could not hash password")]
    Hash,
    /// The stored value is not a usable argon2 PHC string.
    #[error("stored hash is malformed")]
    Malformed,
}

/// Used by [`dummy_hash`] only if hashing a random password fails at run
/// time: an argon2id hash, with the default parameters, of a random password
/// that was thrown away, so that the login timing stays the same.
const FALLBACK_DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$Z1FjvyD/driwyppBycb1Ng$RLM3MGTQ8TsMfdScpq+KD3QbQLegKfIqB3r8/1Edq24";

/// The argon2 context: argon2id, version 0x13, m=19456 KiB, t=2, p=1 (the
/// crate's defaults, which follow the OWASP recommendation).
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// argon2id PHC string ($argon2id$...), random salt.
///
/// Hashes `password` with argon2id and the default parameters under a fresh
/// random 16-byte salt, and returns the PHC string to store.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let hash: PasswordHash = argon2()
        .hash_password(password.as_bytes())
        .map_err(|_| PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Constant-time verify; Ok(false) for a wrong password.
///
/// Checks `password` against a stored PHC string, with the algorithm and
/// parameters recorded in that string. Returns `Err(Malformed)` when `phc`
/// cannot be parsed, is not an argon2 hash, or lacks its salt or output.
pub fn verify_password(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let parsed = PasswordHash::new(phc).map_err(|_| PasswordError::Malformed)?;
    // Without these the library reports a wrong password; a stored value
    // like that is broken, not merely mismatched.
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(PasswordError::Malformed);
    }
    // The output comparison inside is constant-time (`phc::Output`'s `Eq`).
    match argon2().verify_password(password.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(HashError::PasswordInvalid) => Ok(false),
        Err(
            HashError::Algorithm
            | HashError::Version
            | HashError::EncodingInvalid
            | HashError::OutputSize
            | HashError::ParamInvalid { .. }
            | HashError::ParamsInvalid
            | HashError::SaltInvalid,
        ) => Err(PasswordError::Malformed),
        Err(_) => Err(PasswordError::Hash),
    }
}

/// A hash of a random password, used to spend the same time on an unknown email as on a wrong password at login.
///
/// Computed on first use and then kept for the life of the process
/// (`OnceLock`); it has the same parameters as [`hash_password`] produces, so
/// verifying against it costs the same. No password matches it.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        hash_password(&new_refresh_token()).unwrap_or_else(|_| FALLBACK_DUMMY_HASH.to_owned())
    })
}

/// Refresh tokens: 32 random bytes, base64url without padding; and their storage hash (hex SHA-256).
///
/// Returns a new refresh token: 32 bytes from the thread-local CSPRNG,
/// base64url without padding (43 characters).
pub fn new_refresh_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The value to store for a refresh token: its SHA-256 as 64 lowercase hex
/// digits. The token has 256 random bits, so an unsalted fast hash is enough.
pub fn hash_refresh_token(token: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(digest.len() * 2);
    for byte in digest {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// Hashes and checks passwords on the blocking pool: argon2 takes tens of milliseconds of CPU,
/// which must not stall the async workers.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hasher;

impl Hasher {
    /// The PHC string to store for `password`.
    pub async fn hash(&self, password: String) -> Result<String, ServiceError> {
        tokio::task::spawn_blocking(move || hash_password(&password))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }

    /// True when `password` matches the stored `phc`.
    pub async fn verify(&self, password: String, phc: String) -> Result<bool, ServiceError> {
        tokio::task::spawn_blocking(move || verify_password(&password, &phc))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?
            .map_err(|e| ServiceError::Internal(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// What every hash from this module starts with: argon2id, v=19 and the
    /// default parameters.
    const PREFIX: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

    #[test]
    fn hash_then_verify() {
        let hash = hash_password("correct horse battery staple").expect("hash");
        assert!(verify_password("correct horse battery staple", &hash).expect("verify"));
    }

    #[test]
    fn wrong_password_is_false() {
        let hash = hash_password("correct horse battery staple").expect("hash");
        assert!(!verify_password("correct horse battery stapler", &hash).expect("verify"));
        assert!(!verify_password("", &hash).expect("verify"));
    }

    #[test]
    fn hash_is_argon2id_with_default_params() {
        let hash = hash_password("pw").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(hash.starts_with(PREFIX), "{hash}");
    }

    #[test]
    fn same_password_hashes_differently() {
        let a = hash_password("same password").expect("hash");
        let b = hash_password("same password").expect("hash");
        assert_ne!(a, b);
        assert!(verify_password("same password", &a).expect("verify a"));
        assert!(verify_password("same password", &b).expect("verify b"));
    }

    #[test]
    fn unicode_and_empty_passwords_work() {
        for password in ["", "pässwörd 🔑", "\u{0}"] {
            let hash = hash_password(password).expect("hash");
            assert!(verify_password(password, &hash).expect("verify"));
        }
    }

    #[test]
    fn malformed_hash_is_an_error() {
        let good = hash_password("pw").expect("hash");
        let (without_output, _) = good.rsplit_once('$').expect("has output");
        let malformed = [
            String::new(),
            "plaintext".to_owned(),
            "$argon2id$".to_owned(),
            "$argon2id$v=19$m=19456,t=2,p=1".to_owned(),
            without_output.to_owned(),
            "$argon2id$v=19$m=19456,t=2,p=1$!!!!$!!!!".to_owned(),
            good.replace("$argon2id$", "$scrypt$"),
            good.replace("$argon2id$", "$argon2xx$"),
            good.replace("v=19", "v=42"),
            good.replace("t=2", "t=0"),
            good.replace("m=19456", "m=1"),
        ];
        for phc in &malformed {
            assert!(
                matches!(verify_password("pw", phc), Err(PasswordError::Malformed)),
                "{phc:?} gave {:?}",
                verify_password("pw", phc)
            );
        }
    }

    #[test]
    fn dummy_hash_is_computed_once_and_matches_nothing() {
        let a = dummy_hash();
        let b = dummy_hash();
        assert!(std::ptr::eq(a, b), "computed twice");
        assert!(a.starts_with(PREFIX), "{a}");
        assert_ne!(a, FALLBACK_DUMMY_HASH, "fell back unexpectedly");
        assert!(!verify_password("", a).expect("verify"));
        assert!(!verify_password("password", a).expect("verify"));
    }

    #[test]
    fn fallback_dummy_hash_costs_the_same() {
        assert!(FALLBACK_DUMMY_HASH.starts_with(PREFIX));
        assert!(!verify_password("password", FALLBACK_DUMMY_HASH).expect("verify"));
    }

    #[test]
    fn refresh_token_shape() {
        let token = new_refresh_token();
        assert_eq!(token.len(), 43);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{token}"
        );
        let raw = URL_SAFE_NO_PAD.decode(&token).expect("base64url");
        assert_eq!(raw.len(), 32);
    }

    #[test]
    fn refresh_tokens_are_unique() {
        let tokens: HashSet<String> = (0..1000).map(|_| new_refresh_token()).collect();
        assert_eq!(tokens.len(), 1000);
    }

    #[test]
    fn refresh_token_hash_is_deterministic_hex_sha256() {
        // SHA-256("abc") from FIPS 180-2.
        assert_eq!(
            hash_refresh_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let token = new_refresh_token();
        let hash = hash_refresh_token(&token);
        assert_eq!(hash, hash_refresh_token(&token));
        assert_eq!(hash.len(), 64);
        assert!(
            hash.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        assert_ne!(hash, hash_refresh_token(&new_refresh_token()));
    }
}
