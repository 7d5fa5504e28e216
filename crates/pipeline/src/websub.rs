//! WebSub (W3C Recommendation, 2018): a feed that names a hub can have it pushed instead of
//! waiting for the next poll. A deployed stack (reachable from the internet) asks the hub to
//! push each such feed to its callback, with a secret of its own per feed; the hub checks the
//! callback's intent (a challenge echoed back), then POSTs the feed on every change, signed with
//! that secret. Only pushes whose `X-Hub-Signature` verifies are read; they are recorded as a
//! poll would be. Pushed feeds are still polled, daily. Locally no hub can reach the machine,
//! so this is off unless a public address and a secret are configured.

use chrono::{DateTime, Duration, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use lector_core::FeedId;
use lector_core::feed::Subscription;
use sha2::Sha256;
use url::Url;

/// The lease asked of hubs: ten days, WebSub's common default. It is renewed a day before it
/// ends, at a poll.
pub const LEASE_SECONDS: u32 = 10 * 24 * 60 * 60;

/// How WebSub is set up: where hubs call back, and the secret every feed's secret is derived
/// from.
#[derive(Clone)]
pub struct WebSubConfig {
    /// The public address of the API: callbacks are `<base>/websub/<feed id>`.
    pub callback_base: Url,
    secret: String,
}

impl std::fmt::Debug for WebSubConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebSubConfig").field("callback_base", &self.callback_base).finish_non_exhaustive()
    }
}

/// Why a WebSub setting or message is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebSubError {
    #[error("the WebSub secret must be at least 16 characters")]
    WeakSecret,
    #[error("the push carries no X-Hub-Signature")]
    Unsigned,
    #[error("the push's signature method '{0}' is not one of sha1, sha256, sha384, sha512")]
    UnknownMethod(String),
    #[error("the push's X-Hub-Signature does not verify")]
    BadSignature,
}

impl WebSubConfig {
    pub fn new(callback_base: Url, secret: impl Into<String>) -> Result<Self, WebSubError> {
        let secret = secret.into();
        if secret.chars().count() < 16 {
            return Err(WebSubError::WeakSecret);
        }
        Ok(Self { callback_base, secret })
    }

    /// The callback a hub pushes `feed` to.
    pub fn callback(&self, feed: &FeedId) -> Url {
        let base = self.callback_base.as_str().trim_end_matches('/');
        Url::parse(&format!("{base}/websub/{feed}")).unwrap_or_else(|_| self.callback_base.clone())
    }

    /// The secret given to the hub for `feed`: derived from the configured one, so that one
    /// feed's secret tells nothing of another's and none is stored.
    pub fn feed_secret(&self, feed: &FeedId) -> String {
        hex::encode(hmac_sha256(self.secret.as_bytes(), feed.as_str().as_bytes()))
    }

    /// Whether `body` was signed with `feed`'s secret: `signature` is the `X-Hub-Signature`
    /// header, `method=hex`.
    pub fn verify(&self, feed: &FeedId, signature: Option<&str>, body: &[u8]) -> Result<(), WebSubError> {
        let header = signature.map(str::trim).filter(|s| !s.is_empty()).ok_or(WebSubError::Unsigned)?;
        let (method, hex_sig) = header.split_once('=').ok_or(WebSubError::BadSignature)?;
        let given = hex::decode(hex_sig.trim()).map_err(|_| WebSubError::BadSignature)?;
        let key = self.feed_secret(feed);
        let key = key.as_bytes();
        // `verify_slice` compares in constant time.
        let verified = match method.trim().to_ascii_lowercase().as_str() {
            "sha1" => mac::<Hmac<sha1::Sha1>>(key, body).verify_slice(&given).is_ok(),
            "sha256" => mac::<Hmac<Sha256>>(key, body).verify_slice(&given).is_ok(),
            "sha384" => mac::<Hmac<sha2::Sha384>>(key, body).verify_slice(&given).is_ok(),
            "sha512" => mac::<Hmac<sha2::Sha512>>(key, body).verify_slice(&given).is_ok(),
            other => return Err(WebSubError::UnknownMethod(other.to_owned())),
        };
        if verified { Ok(()) } else { Err(WebSubError::BadSignature) }
    }
}

fn mac<M: Mac + KeyInit>(key: &[u8], body: &[u8]) -> M {
    #[allow(clippy::expect_used)]
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(body);
    mac
}

/// HMAC-SHA256 of `body` under `key`.
pub fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    mac::<Hmac<Sha256>>(key, body).finalize().into_bytes().to_vec()
}

/// The hub and topic a subscription should be pushed from, when it should ask now: the feed
/// names a hub, and no lease is held or the one held ends within a day.
pub fn hub_to_request(state: &Subscription, now: DateTime<Utc>) -> Option<(Url, Url)> {
    let hub = state.details.hub.clone()?;
    let topic = state.details.self_url.clone().or_else(|| state.url.clone())?;
    let held = state.hub.as_ref().is_some_and(|h| h.hub == hub && h.expires_at > now + Duration::days(1));
    (!held).then_some((hub, topic))
}

/// Whether the subscription holds a lease from a hub at `now`: its feed is pushed.
pub fn is_pushed(state: &Subscription, now: DateTime<Utc>) -> bool {
    state.hub.as_ref().is_some_and(|h| h.expires_at > now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> WebSubConfig {
        WebSubConfig::new(Url::parse("https://api.example/").unwrap(), "0123456789abcdef-secret").unwrap()
    }

    #[test]
    fn signatures_verify_with_the_feeds_own_secret_only() {
        let feed = FeedId::new("0123456789abcdef");
        let other = FeedId::new("fedcba9876543210");
        let c = config();
        let body = b"<rss/>";
        let good = format!("sha256={}", hex::encode(hmac_sha256(c.feed_secret(&feed).as_bytes(), body)));
        assert_eq!(c.verify(&feed, Some(&good), body), Ok(()));
        assert_eq!(
            c.verify(&other, Some(&good), body),
            Err(WebSubError::BadSignature),
            "another feed's secret"
        );
        assert_eq!(c.verify(&feed, Some(&good), b"<rss>forged</rss>"), Err(WebSubError::BadSignature));
        assert_eq!(c.verify(&feed, None, body), Err(WebSubError::Unsigned));
        assert_eq!(c.verify(&feed, Some("md5=00"), body), Err(WebSubError::UnknownMethod("md5".into())));
        assert_eq!(c.verify(&feed, Some("sha256=zz"), body), Err(WebSubError::BadSignature));
        let sha1 = {
            let mut m =
                <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(c.feed_secret(&feed).as_bytes()).unwrap();
            m.update(body);
            hex::encode(m.finalize().into_bytes())
        };
        assert_eq!(c.verify(&feed, Some(&format!("sha1={sha1}")), body), Ok(()));
        assert_ne!(c.feed_secret(&feed), c.feed_secret(&other));
        assert_eq!(c.callback(&feed).as_str(), "https://api.example/websub/0123456789abcdef");
    }

    #[test]
    fn a_weak_secret_is_refused() {
        assert_eq!(
            WebSubConfig::new(Url::parse("https://api.example/").unwrap(), "short").unwrap_err(),
            WebSubError::WeakSecret
        );
    }
}
