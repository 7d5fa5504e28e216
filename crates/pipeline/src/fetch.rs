//! Guarded fetching of addresses a user named: http(s) only, each host resolved once and the
//! connection made to the address that was checked, private and metadata addresses refused
//! unless allowed, redirects followed by hand and each hop checked again, size limits enforced
//! on the decoded body while it streams, timeouts, content types checked, and one deadline for
//! the whole of a fetch (redirects, retries and the waits between them), so that no server,
//! however slowly it answers, holds a step longer than [`FetchPolicy::deadline`].

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use lector_core::schedule::FailureKind;
use lector_core::{ErrorKind, StepError};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use url::{Host, Url};

/// The environment variable that lists hosts and networks allowed despite being private.
pub const ALLOW_HOSTS_ENV: &str = "LECTOR_ALLOW_HOSTS";

/// What is fetched; each kind has its own size limit and accepted content types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// An RSS, Atom or JSON feed: at most 10 MB.
    Feed,
    /// A web page: at most 5 MB.
    Page,
    /// A picture (a feed's artwork): at most 10 MB.
    Image,
}

impl Resource {
    /// The largest body accepted, counted after decompression.
    pub fn max_bytes(self) -> u64 {
        match self {
            Resource::Feed | Resource::Image => 10 * 1024 * 1024,
            Resource::Page => 5 * 1024 * 1024,
        }
    }

    fn accepts(self, mime: &str) -> bool {
        match self {
            // Feeds are served under many names (and often as text/html or text/plain):
            // anything textual, XML or JSON is given to the parser, which decides.
            Resource::Feed => mime.starts_with("text/") || mime.contains("xml") || mime.contains("json"),
            Resource::Page => matches!(mime, "text/html" | "application/xhtml+xml" | "text/plain"),
            Resource::Image => mime.starts_with("image/"),
        }
    }

    fn expected(self) -> &'static str {
        match self {
            Resource::Feed => "an RSS, Atom or JSON feed (XML, JSON or text)",
            Resource::Page => "an HTML page",
            Resource::Image => "an image",
        }
    }
}

/// One entry of the allow list.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Allowed {
    Host(String),
    Net(IpAddr, u8),
}

/// Hosts and networks that may be fetched even though their addresses are private, loopback
/// or link-local (tests allow `127.0.0.1`). Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowList {
    entries: Vec<Allowed>,
}

impl AllowList {
    /// Parses a comma- or space-separated list of host names, addresses and CIDR networks:
    /// `localhost, 127.0.0.1, 10.0.0.0/8, ::1`.
    pub fn parse(list: &str) -> Result<Self, FetchError> {
        let mut entries = Vec::new();
        for item in list.split([',', ' ', '\n', '\t']).map(str::trim).filter(|s| !s.is_empty()) {
            let bad =
                |why: &str| FetchError::InvalidAllowList { entry: item.to_string(), reason: why.to_string() };
            if let Some((addr, prefix)) = item.split_once('/') {
                let ip: IpAddr = addr.parse().map_err(|_| bad("not an IP network"))?;
                let prefix: u8 = prefix.parse().map_err(|_| bad("bad prefix length"))?;
                let max = if ip.is_ipv4() { 32 } else { 128 };
                if prefix > max {
                    return Err(bad("prefix length too long"));
                }
                entries.push(Allowed::Net(ip, prefix));
            } else if let Ok(ip) = item.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
                entries.push(Allowed::Net(ip, if ip.is_ipv4() { 32 } else { 128 }));
            } else if item.contains(['/', ':', '@']) {
                return Err(bad("not a host name, address or network"));
            } else {
                entries.push(Allowed::Host(item.trim_end_matches('.').to_ascii_lowercase()));
            }
        }
        Ok(Self { entries })
    }

    /// The list in `LECTOR_ALLOW_HOSTS`, empty when it is not set.
    pub fn from_env() -> Result<Self, FetchError> {
        match std::env::var(ALLOW_HOSTS_ENV) {
            Ok(v) => Self::parse(&v),
            Err(_) => Ok(Self::default()),
        }
    }

    /// This list and `other` together.
    pub fn merged(mut self, other: AllowList) -> Self {
        self.entries.extend(other.entries);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn allows_host(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.entries.iter().any(|e| matches!(e, Allowed::Host(h) if *h == host))
    }

    fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        self.entries.iter().any(|e| match e {
            Allowed::Net(net, prefix) => in_network(ip, canonical(*net), *prefix),
            Allowed::Host(_) => false,
        })
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Why an address may not be fetched from, or `None` when it is a public unicast address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match canonical(ip) {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    let within =
        |net: [u8; 4], prefix: u8| in_network(IpAddr::V4(ip), IpAddr::V4(Ipv4Addr::from(net)), prefix);
    Some(if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(169, 254, 170, 2) {
        "a cloud metadata address"
    } else if o[0] == 127 {
        "a loopback address"
    } else if o[0] == 0 {
        "an unspecified address"
    } else if ip.is_private() {
        "a private address"
    } else if o[0] == 169 && o[1] == 254 {
        "a link-local address"
    } else if within([100, 64, 0, 0], 10) {
        "a carrier-grade NAT address"
    } else if ip.is_multicast() || ip.is_broadcast() || o[0] >= 240 {
        "a multicast, broadcast or reserved address"
    } else if within([192, 0, 0, 0], 24)
        || within([192, 0, 2, 0], 24)
        || within([198, 18, 0, 0], 15)
        || within([198, 51, 100, 0], 24)
        || within([203, 0, 113, 0], 24)
    {
        "a reserved or documentation address"
    } else {
        return None;
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    let embedded_v4 = |bits: u128| Ipv4Addr::from((bits & 0xFFFF_FFFF) as u32);
    let n = u128::from(ip);
    if ip == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x254) {
        return Some("a cloud metadata address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if seg[0] & 0xfe00 == 0xfc00 {
        return Some("a unique-local address");
    }
    if seg[0] & 0xffc0 == 0xfe80 {
        return Some("a link-local address");
    }
    if seg[0] & 0xff00 == 0xff00 {
        return Some("a multicast address");
    }
    if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        return Some("a documentation address");
    }
    // Addresses that carry an IPv4 address inside: NAT64, 6to4 and IPv4-compatible.
    if seg[0] == 0x64 && seg[1] == 0xff9b {
        return forbidden_v4(embedded_v4(n));
    }
    if seg[0] == 0x2002 {
        return forbidden_v4(Ipv4Addr::new(
            (seg[1] >> 8) as u8,
            seg[1] as u8,
            (seg[2] >> 8) as u8,
            seg[2] as u8,
        ));
    }
    if seg[..6].iter().all(|&s| s == 0) {
        return forbidden_v4(embedded_v4(n)).or(Some("an IPv4-compatible address"));
    }
    None
}

/// Limits and the allow list.
#[derive(Debug, Clone)]
pub struct FetchPolicy {
    pub allow: AllowList,
    /// Time to open a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request, body included.
    pub timeout: Duration,
    /// The longest silence while reading.
    pub read_timeout: Duration,
    /// The longest a whole fetch may take: every redirect, every retry and the waits between
    /// them. A server that answers one byte at a time, or sends its headers slowly, meets this
    /// bound rather than the per-request timeouts, which each retry would start again.
    pub deadline: Duration,
    /// Redirects followed before giving up.
    pub max_redirects: usize,
    pub user_agent: String,
}

impl Default for FetchPolicy {
    fn default() -> Self {
        Self {
            allow: AllowList::default(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(15),
            deadline: Duration::from_secs(20),
            max_redirects: 5,
            user_agent: format!("Lector/{} (+https://github.com/lector)", env!("CARGO_PKG_VERSION")),
        }
    }
}

impl FetchPolicy {
    /// The defaults with the allow list of `LECTOR_ALLOW_HOSTS`.
    pub fn from_env() -> Result<Self, FetchError> {
        Ok(Self { allow: AllowList::from_env()?, ..Self::default() })
    }
}

/// A fetched body.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The address the body came from, after redirects.
    pub url: Url,
    /// The media type, lower case, without parameters.
    pub content_type: Option<String>,
    /// The charset the server declared.
    pub charset: Option<String>,
    /// The decoded (decompressed) body.
    pub body: Bytes,
    /// Redirects followed.
    pub redirects: usize,
}

/// Why a fetch failed. [`FetchError::kind`] says whether retrying can help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("'{url}' is not a valid address: {reason}")]
    InvalidUrl { url: String, reason: String },
    #[error("'{url}': only http and https addresses are fetched, not {scheme}")]
    SchemeNotAllowed { url: String, scheme: String },
    #[error("'{url}': {host} is {reason} ({addr}); allow it with --allow-host or LECTOR_ALLOW_HOSTS")]
    AddressNotAllowed { url: String, host: String, addr: IpAddr, reason: String },
    #[error("'{url}': host {host} not found: {reason}")]
    HostNotFound { url: String, host: String, reason: String },
    #[error("'{url}': more than {limit} redirects")]
    TooManyRedirects { url: String, limit: usize },
    #[error("'{url}': redirect loop back to {location}")]
    RedirectLoop { url: String, location: String },
    #[error("'{url}': redirect without a usable Location ({reason})")]
    BadRedirect { url: String, reason: String },
    #[error("'{url}': not found (HTTP {status})")]
    NotFound { url: String, status: u16 },
    #[error("'{url}': refused with HTTP {status}")]
    Refused { url: String, status: u16 },
    /// HTTP 5xx, 408 or 429; `retry_after` is the server's `Retry-After`, when it sent one.
    #[error("'{url}': server unavailable (HTTP {status}){}", retry_note(.retry_after))]
    Unavailable { url: String, status: u16, retry_after: Option<RetryAfter> },
    #[error("'{url}': content type {content_type} is not {expected}")]
    UnsupportedContentType { url: String, content_type: String, expected: String },
    #[error("'{url}': body larger than the limit of {limit} bytes")]
    TooLarge { url: String, limit: u64 },
    #[error("'{url}': timed out")]
    Timeout { url: String },
    /// The whole fetch, redirects and retries included, took longer than the policy's
    /// deadline.
    #[error("'{url}': no complete answer within the deadline of {} s{}", .limit.as_secs_f64(), .last.as_ref().map(|l| format!(" (last failure: {l})")).unwrap_or_default())]
    DeadlineExceeded { url: String, limit: Duration, last: Option<String> },
    #[error("'{url}': connection failed: {reason}")]
    Connection { url: String, reason: String },
    #[error("'{url}': body could not be decoded: {reason}")]
    Decode { url: String, reason: String },
    #[error("allow-list entry '{entry}' is invalid: {reason}")]
    InvalidAllowList { entry: String, reason: String },
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
}

impl FetchError {
    /// The step error kind: only server failures, timeouts and broken connections are
    /// transient; every refusal is permanent.
    pub fn kind(&self) -> ErrorKind {
        match self {
            FetchError::InvalidUrl { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::RedirectLoop { .. }
            | FetchError::BadRedirect { .. }
            | FetchError::Refused { .. }
            | FetchError::Decode { .. }
            | FetchError::InvalidAllowList { .. } => ErrorKind::InvalidInput,
            FetchError::SchemeNotAllowed { .. } | FetchError::AddressNotAllowed { .. } => {
                ErrorKind::NotAllowed
            }
            FetchError::HostNotFound { .. } | FetchError::NotFound { .. } => ErrorKind::NotFound,
            FetchError::Unavailable { .. }
            | FetchError::Timeout { .. }
            | FetchError::DeadlineExceeded { .. }
            | FetchError::Connection { .. } => ErrorKind::Transient,
            FetchError::UnsupportedContentType { .. } => ErrorKind::Unsupported,
            FetchError::TooLarge { .. } => ErrorKind::TooLarge,
            FetchError::Client(_) => ErrorKind::Internal,
        }
    }

    pub fn is_transient(&self) -> bool {
        self.kind().is_transient()
    }
}

impl From<FetchError> for StepError {
    fn from(e: FetchError) -> Self {
        StepError::new(e.kind(), e.to_string())
    }
}

/// A refusal raised inside the resolver, found again in reqwest's error chain.
#[derive(Debug)]
struct Refusal {
    host: String,
    addr: Option<IpAddr>,
    reason: String,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} refused: {}", self.host, self.reason)
    }
}

impl std::error::Error for Refusal {}

/// Resolves each host once and hands the HTTP client only addresses that passed the check, so
/// the connection goes to a checked address and a second lookup cannot rebind it.
#[derive(Debug)]
struct GuardedResolver {
    allow: AllowList,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let allow = self.allow.clone();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(Refusal { host: host.clone(), addr: None, reason: e.to_string() }))?
                .collect();
            let host_allowed = allow.allows_host(&host);
            let mut refused = None;
            let ok: Vec<SocketAddr> = found
                .into_iter()
                .filter(|sa| match forbidden_reason(sa.ip()) {
                    None => true,
                    Some(_) if host_allowed || allow.allows_ip(sa.ip()) => true,
                    Some(reason) => {
                        refused.get_or_insert((sa.ip(), reason));
                        false
                    }
                })
                .collect();
            if ok.is_empty() {
                let (addr, reason) = match refused {
                    Some((ip, reason)) => (Some(ip), reason.to_string()),
                    None => (None, "no addresses".to_string()),
                };
                return Err(
                    Box::new(Refusal { host, addr, reason }) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// Fetches with the checks of a [`FetchPolicy`]. Cheap to clone; build one and share it.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<FetchPolicy>,
}

/// How often and how patiently [`Fetcher::fetch_retrying`] retries transient failures.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self { attempts: 4, first_delay: Duration::from_millis(300), max_delay: Duration::from_secs(5) }
    }
}

impl Fetcher {
    pub fn new(policy: FetchPolicy) -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow: policy.allow.clone() }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(policy.connect_timeout)
            .timeout(policy.timeout)
            .read_timeout(policy.read_timeout)
            .user_agent(policy.user_agent.clone())
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Self { client, policy: Arc::new(policy) })
    }

    pub fn policy(&self) -> &FetchPolicy {
        &self.policy
    }

    /// Checks an address without fetching it: scheme, and the host when it is an IP literal.
    /// Names are checked when they are resolved.
    pub fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::SchemeNotAllowed {
                url: url.to_string(),
                scheme: url.scheme().to_string(),
            });
        }
        let ip = match url.host() {
            None => {
                return Err(FetchError::InvalidUrl { url: url.to_string(), reason: "no host".into() });
            }
            Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(Host::Domain(_)) => return Ok(()),
        };
        match forbidden_reason(ip) {
            Some(reason) if !self.policy.allow.allows_ip(ip) => Err(FetchError::AddressNotAllowed {
                url: url.to_string(),
                host: ip.to_string(),
                addr: ip,
                reason: reason.to_string(),
            }),
            _ => Ok(()),
        }
    }

    /// Fetches `url` once, following redirects, within the policy's deadline. Transient
    /// failures are returned, not retried.
    pub async fn fetch(&self, url: &str, what: Resource) -> Result<Fetched, FetchError> {
        let deadline = Instant::now() + self.policy.deadline;
        self.fetch_by(url, what, deadline, None).await
    }

    /// One fetch that must end by `deadline`; `last` is the failure of the attempt before it,
    /// named in the error when the deadline passes.
    async fn fetch_by(
        &self,
        url: &str,
        what: Resource,
        deadline: Instant,
        last: Option<&FetchError>,
    ) -> Result<Fetched, FetchError> {
        match self.within(deadline, url, last, self.get(url, what, None)).await? {
            Conditional::Modified { fetched, .. } => Ok(fetched),
            // Only an answer to validators is "not modified"; this one was sent none.
            Conditional::NotModified(meta) => {
                Err(FetchError::Refused { url: meta.url.to_string(), status: meta.status })
            }
        }
    }

    /// `work`, cut off with [`FetchError::DeadlineExceeded`] when `deadline` passes.
    async fn within<T>(
        &self,
        deadline: Instant,
        url: &str,
        last: Option<&FetchError>,
        work: impl std::future::Future<Output = Result<T, FetchError>>,
    ) -> Result<T, FetchError> {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, work).await {
            Ok(result) => result,
            Err(_) => Err(self.deadline_exceeded(url, last)),
        }
    }

    fn deadline_exceeded(&self, url: &str, last: Option<&FetchError>) -> FetchError {
        FetchError::DeadlineExceeded {
            url: url.to_string(),
            limit: self.policy.deadline,
            last: last.map(ToString::to_string),
        }
    }

    /// Sends a form (`application/x-www-form-urlencoded`) to `url` with the same guards as a
    /// fetch, following no redirect, and returns the HTTP status; the body is not read. For a
    /// WebSub hub's subscription request.
    pub async fn post_form(&self, url: &str, form: &[(&str, &str)]) -> Result<u16, FetchError> {
        let target = Url::parse(url.trim())
            .map_err(|e| FetchError::InvalidUrl { url: url.to_string(), reason: e.to_string() })?;
        self.check_url(&target)?;
        let response =
            self.client.post(target.clone()).form(form).send().await.map_err(|e| classify(&target, &e))?;
        Ok(response.status().as_u16())
    }

    /// Fetches `url` once as [`Fetcher::fetch`] does, with the same guards, sending the
    /// validators of the last answer (`If-None-Match`, `If-Modified-Since`). A 304 is
    /// [`Conditional::NotModified`] and its body is never read. Either way the answer's
    /// caching and polling headers come back in a [`ResponseMeta`]; a 429 or 503 carries its
    /// `Retry-After` in [`FetchError::Unavailable`].
    pub async fn fetch_conditional(
        &self,
        url: &str,
        what: Resource,
        validators: &Validators,
    ) -> Result<Conditional, FetchError> {
        let deadline = Instant::now() + self.policy.deadline;
        self.within(deadline, url, None, self.get(url, what, Some(validators).filter(|v| !v.is_empty())))
            .await
    }

    /// One guarded GET with its redirects; `validators`, when given, make it conditional.
    #[tracing::instrument(skip(self, validators), fields(url = %url))]
    async fn get(
        &self,
        url: &str,
        what: Resource,
        validators: Option<&Validators>,
    ) -> Result<Conditional, FetchError> {
        let mut current = Url::parse(url.trim())
            .map_err(|e| FetchError::InvalidUrl { url: url.to_string(), reason: e.to_string() })?;
        let mut seen = HashSet::new();
        let mut redirects = 0;
        loop {
            self.check_url(&current)?;
            seen.insert(current.clone());
            let response = self
                .client
                .get(current.clone())
                .header(reqwest::header::ACCEPT, accept_header(what))
                .headers(validators.map(Validators::headers).unwrap_or_default())
                .send()
                .await
                .map_err(|e| classify(&current, &e))?;
            let status = response.status();
            if status.is_redirection() && status != reqwest::StatusCode::NOT_MODIFIED {
                let location =
                    response.headers().get(LOCATION).and_then(|v| v.to_str().ok()).ok_or_else(|| {
                        FetchError::BadRedirect { url: current.to_string(), reason: "no Location".into() }
                    })?;
                let next = current.join(location).map_err(|e| FetchError::BadRedirect {
                    url: current.to_string(),
                    reason: format!("Location '{location}': {e}"),
                })?;
                if seen.contains(&next) {
                    return Err(FetchError::RedirectLoop {
                        url: url.to_string(),
                        location: next.to_string(),
                    });
                }
                redirects += 1;
                if redirects > self.policy.max_redirects {
                    return Err(FetchError::TooManyRedirects {
                        url: url.to_string(),
                        limit: self.policy.max_redirects,
                    });
                }
                tracing::debug!(from = %current, to = %next, "redirect");
                current = next;
                continue;
            }
            let code = status.as_u16();
            if code == 304 && validators.is_some() {
                return Ok(Conditional::NotModified(ResponseMeta::read(&current, redirects, &response)));
            }
            if code == 404 || code == 410 {
                return Err(FetchError::NotFound { url: current.to_string(), status: code });
            }
            if status.is_server_error() || code == 429 || code == 408 {
                let retry_after = header_str(response.headers(), RETRY_AFTER).and_then(RetryAfter::parse);
                return Err(FetchError::Unavailable { url: current.to_string(), status: code, retry_after });
            }
            if !status.is_success() {
                return Err(FetchError::Refused { url: current.to_string(), status: code });
            }
            let (content_type, charset) = media_type(response.headers().get(CONTENT_TYPE));
            if let Some(ct) = &content_type
                && !what.accepts(ct)
            {
                return Err(FetchError::UnsupportedContentType {
                    url: current.to_string(),
                    content_type: ct.clone(),
                    expected: what.expected().to_string(),
                });
            }
            let limit = what.max_bytes();
            let declared = response
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok());
            // Refuse at once when even the (possibly compressed) declared length is over.
            if declared.is_some_and(|n| n > limit) {
                return Err(FetchError::TooLarge { url: current.to_string(), limit });
            }
            let meta = ResponseMeta::read(&current, redirects, &response);
            let mut body = BytesMut::new();
            let mut stream = response.bytes_stream();
            while let Some(part) = stream.next().await {
                let part = part.map_err(|e| classify(&current, &e))?;
                if body.len() as u64 + part.len() as u64 > limit {
                    return Err(FetchError::TooLarge { url: current.to_string(), limit });
                }
                body.extend_from_slice(&part);
            }
            let fetched = Fetched { url: current, content_type, charset, body: body.freeze(), redirects };
            return Ok(Conditional::Modified { fetched, meta });
        }
    }

    /// Fetches `url`, retrying transient failures with exponential backoff and jitter, all of it
    /// within the policy's deadline: an attempt is cut off when the deadline passes, and no
    /// retry starts that could not end before it.
    pub async fn fetch_retrying(
        &self,
        url: &str,
        what: Resource,
        backoff: Backoff,
    ) -> Result<Fetched, FetchError> {
        let deadline = Instant::now() + self.policy.deadline;
        let mut delay = backoff.first_delay;
        let mut attempt = 1;
        let mut last: Option<FetchError> = None;
        loop {
            match self.fetch_by(url, what, deadline, last.as_ref()).await {
                Err(e) if e.is_transient() && attempt < backoff.attempts => {
                    if matches!(e, FetchError::DeadlineExceeded { .. }) {
                        return Err(e);
                    }
                    let jitter = jitter_fraction(url, attempt);
                    let wait = delay.mul_f64(0.5 + jitter);
                    if Instant::now() + wait >= deadline {
                        return Err(self.deadline_exceeded(url, Some(&e)));
                    }
                    tracing::warn!(error = %e, attempt, wait_ms = wait.as_millis() as u64, "transient fetch failure, retrying");
                    tokio::time::sleep(wait).await;
                    delay = (delay * 2).min(backoff.max_delay);
                    attempt += 1;
                    last = Some(e);
                }
                other => return other,
            }
        }
    }
}

/// A fraction in `0..1` that varies between calls, so that retries of many clients spread.
fn jitter_fraction(seed: &str, attempt: u32) -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write(seed.as_bytes());
    h.write_u32(attempt);
    (h.finish() % 10_000) as f64 / 10_000.0
}

fn accept_header(what: Resource) -> &'static str {
    match what {
        Resource::Feed => {
            "application/rss+xml, application/atom+xml, application/feed+json, application/xml;q=0.9, \
             text/xml;q=0.9, application/json;q=0.8, */*;q=0.1"
        }
        Resource::Page => "text/html, application/xhtml+xml;q=0.9, text/plain;q=0.5",
        Resource::Image => "image/png, image/jpeg;q=0.9, image/*;q=0.5",
    }
}

fn media_type(value: Option<&reqwest::header::HeaderValue>) -> (Option<String>, Option<String>) {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else { return (None, None) };
    let mut parts = value.split(';');
    let mime = parts.next().map(|m| m.trim().to_ascii_lowercase()).filter(|m| !m.is_empty());
    let charset = parts.find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim().eq_ignore_ascii_case("charset").then(|| v.trim().trim_matches('"').to_ascii_lowercase())
    });
    (mime, charset)
}

/// Names a reqwest failure: a refusal from the resolver, a timeout, a broken body or a
/// connection failure.
fn classify(url: &Url, e: &reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(r) = err.downcast_ref::<Refusal>() {
            return match r.addr {
                Some(addr) => FetchError::AddressNotAllowed {
                    url: url.to_string(),
                    host: r.host.clone(),
                    addr,
                    reason: r.reason.clone(),
                },
                None => FetchError::HostNotFound {
                    url: url.to_string(),
                    host: r.host.clone(),
                    reason: r.reason.clone(),
                },
            };
        }
        source = err.source();
    }
    if e.is_timeout() {
        return FetchError::Timeout { url: url.to_string() };
    }
    if e.is_decode() {
        return FetchError::Decode { url: url.to_string(), reason: error_chain(e) };
    }
    if e.is_body() {
        // A gzip body that does not inflate is the sender's fault, not the network's.
        let chain = error_chain(e);
        if chain.contains("invalid gzip")
            || chain.contains("corrupt deflate")
            || chain.contains("invalid deflate")
        {
            return FetchError::Decode { url: url.to_string(), reason: chain };
        }
    }
    FetchError::Connection { url: url.to_string(), reason: error_chain(e) }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// Decodes an HTML page to text: the declared charset, else a byte-order mark, else a
/// `<meta charset>` in the first 1 KB, else UTF-8 (invalid bytes replaced).
pub fn decode_html(body: &[u8], declared: Option<&str>) -> String {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(body) {
        return enc.decode_without_bom_handling(&body[bom..]).0.into_owned();
    }
    let from_label = |label: &str| encoding_rs::Encoding::for_label(label.trim().as_bytes());
    let enc = declared.and_then(from_label).or_else(|| sniff_meta_charset(body).and_then(|l| from_label(&l)));
    enc.unwrap_or(encoding_rs::UTF_8).decode_without_bom_handling(body).0.into_owned()
}

fn sniff_meta_charset(body: &[u8]) -> Option<String> {
    let head = &body[..body.len().min(1024)];
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    let at = text.find("charset=")? + "charset=".len();
    let rest = text[at..].trim_start_matches(['"', '\'']);
    let end = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))?;
    Some(rest[..end].to_string()).filter(|s| !s.is_empty())
}

/// The validators of the last answer, sent back so that an unchanged feed costs a 304 and no
/// parse.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Validators {
    /// `ETag`, as the server sent it (quotes and `W/` included), for `If-None-Match`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// `Last-Modified`, as the server sent it, for `If-Modified-Since`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<String>,
}

impl Validators {
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }

    /// The validators to send next time: a new body's own (none where it has none), or after a
    /// 304, which need not repeat them, ours updated by what it does repeat.
    pub fn updated_by(&self, meta: &ResponseMeta) -> Validators {
        if meta.status != 304 {
            return Validators { etag: meta.etag.clone(), last_modified: meta.last_modified.clone() };
        }
        Validators {
            etag: meta.etag.clone().or_else(|| self.etag.clone()),
            last_modified: meta.last_modified.clone().or_else(|| self.last_modified.clone()),
        }
    }

    fn headers(&self) -> reqwest::header::HeaderMap {
        use reqwest::header::{HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH};
        let mut headers = HeaderMap::new();
        // A value that cannot be a header (it came from a header, so this is rare) is left out.
        if let Some(v) = self.etag.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(IF_NONE_MATCH, v);
        }
        if let Some(v) = self.last_modified.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(IF_MODIFIED_SINCE, v);
        }
        headers
    }
}

/// A `Retry-After` header: a number of seconds, or an HTTP date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    Seconds(u64),
    At(DateTime<Utc>),
}

impl RetryAfter {
    /// Reads either form; anything else is `None`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            // More digits than a u64 holds is "a very long time".
            return Some(RetryAfter::Seconds(value.parse().unwrap_or(u64::MAX)));
        }
        parse_http_date(value).map(RetryAfter::At)
    }

    /// The time it names, for an answer received at `received`.
    pub fn at(self, received: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            RetryAfter::Seconds(s) => i64::try_from(s)
                .ok()
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|d| received.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC),
            RetryAfter::At(at) => at,
        }
    }
}

impl fmt::Display for RetryAfter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetryAfter::Seconds(s) => write!(f, "{s} s"),
            RetryAfter::At(at) => write!(f, "{}", at.to_rfc3339()),
        }
    }
}

fn retry_note(retry_after: &Option<RetryAfter>) -> String {
    retry_after.map(|r| format!(", retry after {r}")).unwrap_or_default()
}

/// What the headers of an answer say about caching and polling the address again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseMeta {
    /// The HTTP status: 304, or the 2xx of a body.
    pub status: u16,
    /// The address that answered, after redirects.
    pub url: Url,
    /// Redirects followed.
    pub redirects: usize,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// `Cache-Control: max-age` (none when `no-cache` or `no-store` say not to reuse it).
    pub max_age: Option<Duration>,
    /// `Expires`, as the server's clock has it (see [`ResponseMeta::expires_at`]).
    pub expires: Option<DateTime<Utc>>,
    /// `Date`: the server's clock when it answered.
    pub date: Option<DateTime<Utc>>,
    pub retry_after: Option<RetryAfter>,
    /// `Link: <...>; rel="hub"`: the WebSub hub, absolute.
    pub hub: Option<Url>,
    /// `Link: <...>; rel="self"`: the feed's canonical address, absolute.
    pub self_url: Option<Url>,
}

impl ResponseMeta {
    /// The meta of a feed a WebSub hub pushed: a body, and nothing said about caching.
    pub fn pushed(url: Url) -> Self {
        Self {
            status: 200,
            url,
            redirects: 0,
            etag: None,
            last_modified: None,
            max_age: None,
            expires: None,
            date: None,
            retry_after: None,
            hub: None,
            self_url: None,
        }
    }

    fn read(url: &Url, redirects: usize, response: &reqwest::Response) -> Self {
        use reqwest::header::{CACHE_CONTROL, DATE, ETAG, EXPIRES, LAST_MODIFIED, LINK};
        let headers = response.headers();
        let text = |name| header_str(headers, name).map(str::to_string);
        let links: Vec<(Url, String)> = headers
            .get_all(LINK)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| parse_link_header(v, url))
            .collect();
        let rel = |want: &str| {
            links.iter().find(|(_, rels)| rels.split_whitespace().any(|r| r.eq_ignore_ascii_case(want)))
        };
        ResponseMeta {
            status: response.status().as_u16(),
            url: url.clone(),
            redirects,
            etag: text(ETAG),
            last_modified: text(LAST_MODIFIED),
            max_age: header_str(headers, CACHE_CONTROL).and_then(max_age),
            expires: header_str(headers, EXPIRES).and_then(parse_http_date),
            date: header_str(headers, DATE).and_then(parse_http_date),
            retry_after: header_str(headers, RETRY_AFTER).and_then(RetryAfter::parse),
            hub: rel("hub").map(|(u, _)| u.clone()),
            self_url: rel("self").map(|(u, _)| u.clone()),
        }
    }

    /// `Expires` on the local clock: `received + (Expires - Date)` when the server sent its
    /// `Date`, so a server whose clock is off does not shift the next poll; else `Expires`.
    pub fn expires_at(&self, received: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let expires = self.expires?;
        Some(match self.date {
            Some(date) => received.checked_add_signed(expires - date).unwrap_or(expires),
            None => expires,
        })
    }
}

/// The answer to a conditional GET.
#[derive(Debug, Clone)]
pub enum Conditional {
    /// 304: what the validators named has not changed; no body was read.
    NotModified(ResponseMeta),
    /// A body, with what the headers said.
    Modified { fetched: Fetched, meta: ResponseMeta },
}

impl Conditional {
    pub fn meta(&self) -> &ResponseMeta {
        match self {
            Conditional::NotModified(meta) | Conditional::Modified { meta, .. } => meta,
        }
    }
}

fn header_str(headers: &reqwest::header::HeaderMap, name: reqwest::header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// An HTTP date in any of the three forms RFC 9110 accepts: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime
/// (`Sun Nov  6 08:49:37 1994`).
pub fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    use chrono::NaiveDateTime;
    let value = value.trim();
    if let Ok(d) = DateTime::parse_from_rfc2822(value) {
        return Some(d.with_timezone(&Utc));
    }
    if let Some((_, rest)) = value.split_once(", ")
        && let Some(rest) = rest.strip_suffix(" GMT")
        && let Ok(d) = NaiveDateTime::parse_from_str(rest, "%d-%b-%y %H:%M:%S")
    {
        return Some(d.and_utc());
    }
    let single_spaced = value.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(&single_spaced, "%a %b %e %H:%M:%S %Y").ok().map(|d| d.and_utc())
}

/// `max-age` of a `Cache-Control` value, unless `no-cache` or `no-store` forbid reusing the
/// answer.
fn max_age(value: &str) -> Option<Duration> {
    let mut age = None;
    for directive in value.split(',').map(str::trim) {
        let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "no-cache" | "no-store" => return None,
            "max-age" => age = arg.trim().trim_matches('"').parse::<u64>().ok().map(Duration::from_secs),
            _ => {}
        }
    }
    age
}

/// The links of a `Link` header (RFC 8288) with their `rel`, resolved against `base`:
/// `<https://hub.test/>; rel="hub", <feed.xml>; rel=self`. Malformed parts are skipped.
fn parse_link_header(value: &str, base: &Url) -> Vec<(Url, String)> {
    let mut out = Vec::new();
    let mut rest = value;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        let Some(after) = rest.strip_prefix('<') else { break };
        let Some(end) = after.find('>') else { break };
        let target = after[..end].trim();
        rest = &after[end + 1..];
        // Parameters run to the next comma outside quotes.
        let mut rel = None;
        let mut in_quotes = false;
        let stop = rest
            .char_indices()
            .find(|&(_, c)| {
                if c == '"' {
                    in_quotes = !in_quotes;
                }
                c == ',' && !in_quotes
            })
            .map_or(rest.len(), |(i, _)| i);
        for param in rest[..stop].split(';').map(str::trim) {
            if let Some((name, v)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("rel")
            {
                rel = Some(v.trim().trim_matches('"').to_string());
            }
        }
        rest = &rest[stop..];
        if let (Some(rel), Ok(url)) = (rel, base.join(target)) {
            out.push((url, rel));
        }
    }
    out
}

impl FetchError {
    /// What this failure means for a subscription's schedule: server trouble is retried,
    /// 404/410 (and a host that is not found) may pause it after a while, a body that is no
    /// feed after a few polls, and a refusal at once.
    pub fn failure_kind(&self) -> FailureKind {
        match self {
            FetchError::Unavailable { .. }
            | FetchError::Timeout { .. }
            | FetchError::DeadlineExceeded { .. }
            | FetchError::Connection { .. }
            | FetchError::Client(_) => FailureKind::Transient,
            FetchError::NotFound { .. } | FetchError::HostNotFound { .. } => FailureKind::Gone,
            FetchError::UnsupportedContentType { .. } | FetchError::Decode { .. } => FailureKind::NotAFeed,
            FetchError::InvalidUrl { .. }
            | FetchError::SchemeNotAllowed { .. }
            | FetchError::AddressNotAllowed { .. }
            | FetchError::TooManyRedirects { .. }
            | FetchError::RedirectLoop { .. }
            | FetchError::BadRedirect { .. }
            | FetchError::Refused { .. }
            | FetchError::TooLarge { .. }
            | FetchError::InvalidAllowList { .. } => FailureKind::Refused,
        }
    }

    /// The server's `Retry-After`, when it sent one with a 429 or 5xx.
    pub fn retry_after(&self) -> Option<RetryAfter> {
        match self {
            FetchError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_metadata_addresses_are_named() {
        for (ip, why) in [
            ("127.0.0.1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("0.0.0.0", "unspecified"),
            ("::1", "loopback"),
            ("fd00:ec2::254", "metadata"),
            ("fc00::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "metadata"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            let reason = forbidden_reason(ip.parse().unwrap());
            assert!(reason.is_some_and(|r| r.contains(why)), "{ip}: {reason:?}");
        }
        for ok in ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946", "1.1.1.1"] {
            assert_eq!(forbidden_reason(ok.parse().unwrap()), None, "{ok}");
        }
    }

    #[test]
    fn allow_lists_take_hosts_addresses_and_networks() {
        let list = AllowList::parse("localhost, 127.0.0.1 10.0.0.0/8,[::1]").unwrap();
        assert!(list.allows_host("LOCALHOST."));
        assert!(list.allows_ip("127.0.0.1".parse().unwrap()));
        assert!(list.allows_ip("::ffff:127.0.0.1".parse().unwrap()));
        assert!(list.allows_ip("10.200.0.1".parse().unwrap()));
        assert!(list.allows_ip("::1".parse().unwrap()));
        assert!(!list.allows_ip("127.0.0.2".parse().unwrap()));
        assert!(matches!(AllowList::parse("10.0.0.0/40"), Err(FetchError::InvalidAllowList { .. })));
        assert!(matches!(AllowList::parse("http://x"), Err(FetchError::InvalidAllowList { .. })));
    }

    #[test]
    fn refusals_are_permanent_and_server_failures_transient() {
        let url = "http://x/".to_string();
        assert_eq!(
            FetchError::Unavailable { url: url.clone(), status: 503, retry_after: None }.kind(),
            ErrorKind::Transient
        );
        assert_eq!(FetchError::Timeout { url: url.clone() }.kind(), ErrorKind::Transient);
        assert_eq!(FetchError::NotFound { url: url.clone(), status: 404 }.kind(), ErrorKind::NotFound);
        assert_eq!(FetchError::TooLarge { url: url.clone(), limit: 1 }.kind(), ErrorKind::TooLarge);
        assert_eq!(FetchError::SchemeNotAllowed { url, scheme: "file".into() }.kind(), ErrorKind::NotAllowed);
    }

    #[test]
    fn pages_decode_by_declared_then_meta_charset() {
        let latin1 = b"<meta charset=\"iso-8859-1\"><p>caf\xe9</p>";
        assert!(decode_html(latin1, None).contains("café"));
        assert!(decode_html("<p>café</p>".as_bytes(), Some("utf-8")).contains("café"));
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn http_dates_read_in_all_three_forms() {
        let want = utc("1994-11-06T08:49:37Z");
        for raw in
            ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]
        {
            assert_eq!(parse_http_date(raw), Some(want), "{raw}");
        }
        assert_eq!(parse_http_date("0"), None);
        assert_eq!(parse_http_date("yesterday"), None);
    }

    #[test]
    fn retry_after_reads_seconds_or_a_date() {
        let now = utc("2026-01-01T00:00:00Z");
        assert_eq!(RetryAfter::parse(" 120 "), Some(RetryAfter::Seconds(120)));
        assert_eq!(RetryAfter::parse("120").map(|r| r.at(now)), Some(utc("2026-01-01T00:02:00Z")));
        let at = RetryAfter::parse("Thu, 01 Jan 2026 01:00:00 GMT");
        assert_eq!(at.map(|r| r.at(now)), Some(utc("2026-01-01T01:00:00Z")));
        assert_eq!(
            RetryAfter::parse("99999999999999999999999").map(|r| r.at(now)),
            Some(DateTime::<Utc>::MAX_UTC)
        );
        for bad in ["", "-5", "soon", "1.5"] {
            assert_eq!(RetryAfter::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn cache_control_max_age_unless_no_cache_or_no_store() {
        assert_eq!(max_age("public, max-age=600"), Some(Duration::from_secs(600)));
        assert_eq!(max_age("Max-Age=\"60\", must-revalidate"), Some(Duration::from_secs(60)));
        assert_eq!(max_age("no-cache, max-age=600"), None);
        assert_eq!(max_age("max-age=600, no-store"), None);
        assert_eq!(max_age("private"), None);
        assert_eq!(max_age("max-age=soon"), None);
    }

    #[test]
    fn link_headers_give_hub_and_self_resolved() {
        let base = Url::parse("https://blog.test/feeds/main.xml").unwrap();
        let links = parse_link_header(
            "<https://hub.test/?a=1,2>; rel=\"hub\", </feeds/main.xml>; title=\"x, y\"; rel=self,\
             <https://blog.test/alt>; rel=\"alternate nofollow\", garbage, <no-rel>",
            &base,
        );
        let got: Vec<(String, String)> = links.into_iter().map(|(u, r)| (u.to_string(), r)).collect();
        assert_eq!(
            got,
            vec![
                ("https://hub.test/?a=1,2".to_string(), "hub".to_string()),
                ("https://blog.test/feeds/main.xml".to_string(), "self".to_string()),
                ("https://blog.test/alt".to_string(), "alternate nofollow".to_string()),
            ]
        );
    }

    #[test]
    fn expires_is_corrected_for_the_servers_clock() {
        let url = Url::parse("https://blog.test/feed").unwrap();
        let meta = ResponseMeta {
            status: 200,
            url,
            redirects: 0,
            etag: None,
            last_modified: None,
            max_age: None,
            // The server's clock is an hour behind; its answer is fresh for ten minutes.
            expires: Some(utc("2026-01-01T11:10:00Z")),
            date: Some(utc("2026-01-01T11:00:00Z")),
            retry_after: None,
            hub: None,
            self_url: None,
        };
        assert_eq!(meta.expires_at(utc("2026-01-01T12:00:00Z")), Some(utc("2026-01-01T12:10:00Z")));
        let no_date = ResponseMeta { date: None, ..meta };
        assert_eq!(no_date.expires_at(utc("2026-01-01T12:00:00Z")), Some(utc("2026-01-01T11:10:00Z")));
    }

    #[test]
    fn validators_follow_a_new_body_and_survive_a_terse_304() {
        let old = Validators {
            etag: Some("\"a\"".into()),
            last_modified: Some("Mon, 01 Jan 2024 00:00:00 GMT".into()),
        };
        let meta = |status, etag: Option<&str>| ResponseMeta {
            status,
            url: Url::parse("https://blog.test/feed").unwrap(),
            redirects: 0,
            etag: etag.map(str::to_string),
            last_modified: None,
            max_age: None,
            expires: None,
            date: None,
            retry_after: None,
            hub: None,
            self_url: None,
        };
        // A 304 that repeats only its ETag keeps the date.
        let after_304 = old.updated_by(&meta(304, Some("\"b\"")));
        assert_eq!(
            (after_304.etag.as_deref(), after_304.last_modified),
            (Some("\"b\""), old.last_modified.clone())
        );
        // A new body without validators leaves none: the old ones named another version.
        assert!(old.updated_by(&meta(200, None)).is_empty());
        assert_eq!(old.updated_by(&meta(200, Some("\"c\""))).etag.as_deref(), Some("\"c\""));
    }

    #[test]
    fn failures_map_to_what_a_schedule_does_with_them() {
        let url = "http://x/".to_string();
        let retry = Some(RetryAfter::Seconds(30));
        let busy = FetchError::Unavailable { url: url.clone(), status: 429, retry_after: retry };
        assert_eq!((busy.failure_kind(), busy.retry_after()), (FailureKind::Transient, retry));
        assert!(busy.to_string().contains("retry after 30 s"), "{busy}");
        assert_eq!(FetchError::NotFound { url: url.clone(), status: 410 }.failure_kind(), FailureKind::Gone);
        assert_eq!(
            FetchError::UnsupportedContentType {
                url: url.clone(),
                content_type: "image/png".into(),
                expected: String::new()
            }
            .failure_kind(),
            FailureKind::NotAFeed
        );
        assert_eq!(
            FetchError::RedirectLoop { url: url.clone(), location: url.clone() }.failure_kind(),
            FailureKind::Refused
        );
        assert_eq!(FetchError::TooLarge { url, limit: 1 }.failure_kind(), FailureKind::Refused);
    }
}
