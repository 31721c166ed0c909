//! Granted tokens, kept per process: one slot per grant (endpoint, client, credential, scope),
//! each behind its own lock so that concurrent probes (a trace's addresses, `serve`'s scrapes)
//! wait for one request instead of making one each. A token is used until 3/4 of its lifetime,
//! then renewed ahead of expiry (by its refresh token when it has one); if the renewal fails
//! while the old token is still good (up to a minute before it expires), the old one is used.

use super::grant::{Issued, OAuthError};
use super::{ClientCredential, Grant};
use mxtrace_proto::secret::Secret;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::time::Instant;

/// Without `expires_in`, a token is reused for this long.
const UNKNOWN_LIFETIME: Duration = Duration::from_secs(300);
/// Never used closer to its expiry than this (clock skew, the time the session takes).
const MAX_MARGIN: Duration = Duration::from_secs(60);

type Slot = Arc<tokio::sync::Mutex<Option<Entry>>>;

static SLOTS: OnceLock<Mutex<HashMap<u64, Slot>>> = OnceLock::new();

struct Entry {
    token: Secret,
    refresh_token: Option<Secret>,
    /// Renew from here on.
    renew_at: Instant,
    /// Not used from here on.
    stale_at: Instant,
}

impl Entry {
    fn new(issued: Issued, now: Instant) -> Entry {
        let life = issued.lifetime.unwrap_or(UNKNOWN_LIFETIME);
        let margin = MAX_MARGIN.min(life / 10);
        Entry {
            token: issued.token,
            refresh_token: issued.refresh_token,
            renew_at: now + life * 3 / 4,
            stale_at: now + life - margin,
        }
    }
}

/// The grant's cache key: everything that makes its tokens different. The secret is hashed,
/// never kept.
pub(super) fn key(g: &Grant) -> u64 {
    let mut h = DefaultHasher::new();
    (&g.token_url, &g.device_url, &g.client_id, &g.scope).hash(&mut h);
    format!("{:?}", g.kind).hash(&mut h);
    match &g.credential {
        Some(ClientCredential::Secret(s)) => s.expose().hash(&mut h),
        Some(ClientCredential::Certificate { cert, key }) => (cert, key).hash(&mut h),
        None => {}
    }
    h.finish()
}

fn slot(key: u64) -> Slot {
    let slots = SLOTS.get_or_init(Mutex::default);
    let mut map = match slots.lock() {
        Ok(m) => m,
        Err(poisoned) => poisoned.into_inner(),
    };
    map.entry(key).or_default().clone()
}

/// The cached token for `key`, or a new one from `fetch` (handed the refresh token, if any).
pub(super) async fn cached<F, Fut>(key: u64, fetch: F) -> Result<Secret, OAuthError>
where
    F: FnOnce(Option<Secret>) -> Fut,
    Fut: Future<Output = Result<Issued, OAuthError>>,
{
    let slot = slot(key);
    let mut entry = slot.lock().await;
    let now = Instant::now();
    if let Some(e) = entry.as_ref().filter(|e| now < e.renew_at) {
        return Ok(e.token.clone());
    }
    let refresh = entry.as_ref().and_then(|e| e.refresh_token.clone());
    match fetch(refresh).await {
        Ok(issued) => {
            let e = Entry::new(issued, Instant::now());
            let token = e.token.clone();
            *entry = Some(e);
            Ok(token)
        }
        Err(err) => match entry.as_ref().filter(|e| Instant::now() < e.stale_at) {
            Some(old) => Ok(old.token.clone()),
            None => {
                *entry = None;
                Err(err)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    fn issued(n: u32, secs: u64) -> Issued {
        Issued {
            token: Secret::new(format!("t{n}")),
            lifetime: Some(Duration::from_secs(secs)),
            refresh_token: Some(Secret::new(format!("r{n}"))),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn fresh_tokens_are_reused_and_renewed_ahead_of_expiry() {
        let calls = AtomicU32::new(0);
        let fetch = |refresh: Option<Secret>| {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let expected = (n > 1).then(|| format!("r{}", n - 1));
            assert_eq!(refresh.map(|r| r.expose().to_string()), expected);
            async move { Ok(issued(n, 400)) }
        };
        let key = 0xfeed;
        assert_eq!(cached(key, fetch).await.unwrap().expose(), "t1");
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(cached(key, fetch).await.unwrap().expose(), "t1", "fresh");
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            cached(key, fetch).await.unwrap().expose(),
            "t2",
            "renewed at 3/4"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_renewal_keeps_a_token_that_is_still_good() {
        let key = 0xbeef;
        let ok = |_| async { Ok(issued(1, 400)) };
        let fail = |_| async { Err(OAuthError::DeviceDenied) };
        assert_eq!(cached(key, ok).await.unwrap().expose(), "t1");
        tokio::time::advance(Duration::from_secs(320)).await;
        assert_eq!(cached(key, fail).await.unwrap().expose(), "t1");
        // 400 s: not used in its last 40 s (a tenth, at most a minute).
        tokio::time::advance(Duration::from_secs(45)).await;
        assert!(
            cached(key, fail).await.is_err(),
            "not used close to its expiry"
        );
    }
}
