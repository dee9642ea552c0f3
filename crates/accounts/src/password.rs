//! Argon2id on the blocking pool, bounded by a semaphore.

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;
use tokio::sync::Semaphore;

use crate::AccountsError;

/// Argon2 cost. The default follows OWASP's Argon2id guidance (19 MiB, 2
/// passes); tests use a tiny cost so they stay fast.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCost {
    pub memory_kib: u32,
    pub iterations: u32,
}

impl Default for HashCost {
    fn default() -> Self {
        HashCost {
            memory_kib: 19 * 1024,
            iterations: 2,
        }
    }
}

#[derive(Clone)]
pub struct PasswordHasher {
    argon: Arc<Argon2<'static>>,
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified against when the login is
    /// unknown so that "no such user" takes as long as "wrong password".
    decoy: Arc<String>,
}

impl PasswordHasher {
    pub fn new(cost: HashCost, parallel: usize) -> Result<Self, AccountsError> {
        let params = Params::new(cost.memory_kib, cost.iterations, 1, None)
            .map_err(|e| AccountsError::Internal(format!("argon2 params: {e}")))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let decoy = hash_with(&argon, &random_password())?;
        Ok(PasswordHasher {
            argon: Arc::new(argon),
            permits: Arc::new(Semaphore::new(parallel.max(1))),
            decoy: Arc::new(decoy),
        })
    }

    /// Runs `f` on the blocking pool, at most `parallel` at a time.
    async fn bounded<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Argon2<'static>) -> Result<T, AccountsError> + Send + 'static,
    ) -> Result<T, AccountsError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| AccountsError::Internal(e.to_string()))?;
        let argon = self.argon.clone();
        tokio::task::spawn_blocking(move || f(&argon))
            .await
            .map_err(|e| AccountsError::Internal(e.to_string()))?
    }

    pub async fn hash(&self, password: String) -> Result<String, AccountsError> {
        self.bounded(move |argon| hash_with(argon, &password)).await
    }

    /// Verifies `password` against `hash`, or against the decoy when `hash` is `None`
    /// (and then always answers false).
    pub async fn verify(
        &self,
        password: String,
        hash: Option<String>,
    ) -> Result<bool, AccountsError> {
        // A stored hash starting with `!` locks the account (an erased one):
        // it is checked like a missing user, against the decoy, so it takes
        // the same time and never matches.
        let hash = hash.filter(|h| !h.starts_with('!'));
        let real = hash.is_some();
        let hash = hash.unwrap_or_else(|| self.decoy.to_string());
        let ok = self
            .bounded(move |argon| {
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| AccountsError::Internal(format!("stored hash: {e}")))?;
                Ok(argon.verify_password(password.as_bytes(), &parsed).is_ok())
            })
            .await?;
        Ok(ok && real)
    }
}

fn hash_with(argon: &Argon2<'_>, password: &str) -> Result<String, AccountsError> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|e| AccountsError::Internal(e.to_string()))?;
    argon
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountsError::Internal(format!("argon2: {e}")))
}

fn random_password() -> String {
    let mut b = [0u8; 24];
    rand::rng().fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(
            HashCost {
                memory_kib: 256,
                iterations: 1,
            },
            2,
        )
        .unwrap();
        let stored = h.hash("correct horse".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(
            h.verify("correct horse".into(), Some(stored.clone()))
                .await
                .unwrap()
        );
        assert!(!h.verify("wrong horse".into(), Some(stored)).await.unwrap());
        assert!(
            !h.verify("anything".into(), None).await.unwrap(),
            "the decoy never matches"
        );
    }
}
