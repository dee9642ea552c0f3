//! Link previews (issue #11 item 6): a durable consumer of the log
//! (`link-previews`, one per cluster, on `chat.community.` and
//! `chat.private.`) reads MESSAGE_CREATE and MESSAGE_UPDATE of edited
//! messages **behind the log** (sends never wait for it), fetches each URL
//! of the message (`hearth_media::unfurl` says which), stores the previews
//! as the message's embeds and announces MESSAGE_UPDATE.
//!
//! Every fetch goes through [`Unfurler::fetch`], the guard, and nothing else
//! here makes a request:
//! - http and https only, no credentials in the URL;
//! - the host: an IP literal (decimal, octal and hex forms are IPv4
//!   literals to the URL parser) must be public (`netguard::is_public`:
//!   no loopback, RFC 1918, CGNAT, link-local, multicast, unspecified,
//!   broadcast, documentation, reserved, or IPv6 carrying IPv4); a name
//!   must not be a local one (`localhost`, `.local`, `.internal`) and
//!   *every* address it resolves to must be public, and the client's own
//!   resolver drops non-public addresses again when it connects (a name
//!   that rebinds between the two checks cannot reach one either);
//! - redirects are followed by hand, at most 3, each hop checked again;
//! - one time limit for a fetch, redirects included
//!   (`media.link_preview_timeout_ms`),
//!   pages and oEmbed answers at most 1 MiB of `text/html` or JSON,
//!   images at most 8 MiB of `image/*`, decoded within the media crate's
//!   limits and turned into a WebP of at most 400 px stored in the blob
//!   store (`emb/<id>.webp`), so clients never load a third-party URL;
//! - at most 2 requests at once per host and 16 in all on a node.
//!
//! Only `media.link_preview_allow_addresses` are exempt from the address
//! rule (tests; a wiki on the operator's network).
//!
//! The cache is the store's `link_previews` (shared by every node): a URL's
//! answer is kept an hour when it gave a preview and ten minutes when it did
//! not, and a URL is fetched by one task at a time on a node, so the same
//! URL in a thousand messages is fetched once. Embeds copy the cached answer
//! (and share its image); they go with their message, and an image nothing
//! names any more is deleted by the sweep.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use hearth_bus::Envelope;
use hearth_bus::journal::{ConsumerConfig, Handler};
use hearth_media::ImageLimits;
use hearth_media::unfurl::{self as parse, Preview};
use hearth_store::{EmbedImage, EmbedRecord, LinkPreviewRecord, PreviewData, StoreError};
use hearth_types::{ChannelId, EmbedId, IdGenerator, MessageId, now_ms};
use parking_lot::Mutex;
use prometheus::{IntCounter, IntCounterVec, Opts};
use serde::Deserialize;
use tokio::sync::Semaphore;
use tracing::Instrument;
use url::{Host, Url};

use crate::config::Config;
use crate::metrics::Metrics;
use crate::netguard::{AddressPolicy, GuardedResolver, is_local_name};
use crate::state::Inner;

/// The consumer's name (its cursor and dead letters).
pub const CONSUMER: &str = "link-previews";
/// Redirects followed for one fetch; one more is a refusal.
pub const MAX_REDIRECTS: usize = 3;
/// Largest page or oEmbed answer read.
pub const PAGE_CAP: u64 = 1024 * 1024;
/// Largest image read.
pub const IMAGE_CAP: u64 = 8 * 1024 * 1024;
/// A preview's image fits in this many pixels a side.
pub const IMAGE_EDGE: u32 = 400;
/// How long an answer that gave a preview is kept.
const FOUND_TTL: Duration = Duration::from_secs(3600);
/// How long an answer that gave none (failed, refused, empty) is kept.
const EMPTY_TTL: Duration = Duration::from_secs(600);
/// Requests at once to one host, and in all, on this node.
const PER_HOST: usize = 2;
const IN_ALL: usize = 16;
/// Messages unfurled at once from one batch of the log.
const MESSAGES_AT_ONCE: usize = 8;
/// Images younger than this are never collected (a fetch may be about to
/// name one).
const IMAGE_GRACE: Duration = Duration::from_secs(3600);
const USER_AGENT: &str = concat!(
    "Mozilla/5.0 (compatible; HearthBot/",
    env!("CARGO_PKG_VERSION"),
    "; link previews)"
);

/// Why a URL was not fetched (a metric label each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// Not http or https.
    Scheme,
    /// User info in the URL.
    Credentials,
    /// A private, loopback or reserved address (literal, local name, or resolved).
    Address,
    /// More than [`MAX_REDIRECTS`].
    Redirects,
    /// Not a URL, or a redirect to nothing.
    Malformed,
}

impl Blocked {
    fn as_str(self) -> &'static str {
        match self {
            Blocked::Scheme => "scheme",
            Blocked::Credentials => "credentials",
            Blocked::Address => "address",
            Blocked::Redirects => "redirects",
            Blocked::Malformed => "malformed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("refused: {0:?}")]
    Blocked(Blocked),
    #[error("more than {0} bytes")]
    TooLarge(u64),
    #[error("timed out")]
    Timeout,
    #[error("answered {0}")]
    Status(u16),
    #[error("not the expected type: {0}")]
    Type(String),
    #[error("{0}")]
    Network(String),
}

impl FetchError {
    fn label(&self) -> &'static str {
        match self {
            FetchError::Blocked(_) => "blocked",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Timeout => "timeout",
            FetchError::Status(_) => "status",
            FetchError::Type(_) => "type",
            FetchError::Network(_) => "network",
        }
    }
}

/// What a fetch is for: the types accepted and the size cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Want {
    Page,
    OEmbed,
    Image,
}

impl Want {
    fn accept(self) -> &'static str {
        match self {
            Want::Page => "text/html,application/xhtml+xml;q=0.9",
            Want::OEmbed => "application/json",
            Want::Image => "image/png,image/jpeg,image/gif,image/webp",
        }
    }

    fn accepts(self, content_type: &str) -> bool {
        match self {
            Want::Page => matches!(content_type, "text/html" | "application/xhtml+xml"),
            Want::OEmbed => matches!(
                content_type,
                "application/json" | "text/json" | "application/json+oembed" | "text/javascript"
            ),
            Want::Image => content_type.starts_with("image/"),
        }
    }

    fn cap(self) -> u64 {
        match self {
            Want::Page | Want::OEmbed => PAGE_CAP,
            Want::Image => IMAGE_CAP,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Want::Page => "page",
            Want::OEmbed => "oembed",
            Want::Image => "image",
        }
    }
}

#[derive(Clone)]
struct UnfurlMetrics {
    /// Requests by what they were for and how they ended.
    fetched: IntCounterVec,
    /// URLs refused before any request, by reason.
    blocked: IntCounterVec,
    /// Cache lookups: hit or miss.
    cache: IntCounterVec,
    /// Images no longer named, deleted.
    collected: IntCounter,
}

impl UnfurlMetrics {
    fn new(metrics: &Metrics) -> UnfurlMetrics {
        let vec = |name: &str, help: &str, label: &str| {
            IntCounterVec::new(Opts::new(name, help), &[label])
                .unwrap_or_else(|e| unreachable!("static metric definition: {e}"))
        };
        let m = UnfurlMetrics {
            fetched: IntCounterVec::new(
                Opts::new(
                    "hearth_link_preview_fetches_total",
                    "Link-preview requests by kind (page, oembed, image) and result",
                ),
                &["kind", "result"],
            )
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}")),
            blocked: vec(
                "hearth_link_preview_blocked_total",
                "Link-preview URLs refused before any request, by reason",
                "reason",
            ),
            cache: vec(
                "hearth_link_preview_cache_total",
                "Link-preview cache lookups (hit or miss)",
                "result",
            ),
            collected: IntCounter::new(
                "hearth_link_preview_images_collected_total",
                "Preview images no longer named by any embed or cached answer, deleted",
            )
            .unwrap_or_else(|e| unreachable!("static metric definition: {e}")),
        };
        for c in [
            Box::new(m.fetched.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(m.blocked.clone()),
            Box::new(m.cache.clone()),
            Box::new(m.collected.clone()),
        ] {
            if let Err(e) = metrics.registry().register(c) {
                tracing::warn!(error = %e, "registering a link-preview metric");
            }
        }
        m
    }
}

pub struct Unfurler {
    enabled: bool,
    http: reqwest13::Client,
    policy: AddressPolicy,
    timeout: Duration,
    ids: Arc<IdGenerator>,
    /// One slot set per host being fetched from (dropped when idle).
    hosts: Mutex<HashMap<String, Arc<Semaphore>>>,
    in_all: Semaphore,
    /// One lock per URL being unfurled, so a URL is fetched once at a time.
    urls: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    metrics: UnfurlMetrics,
    consumer: Mutex<Option<hearth_bus::Consumer>>,
}

/// A slot from a map of per-key slots, created on first use; entries
/// nobody holds are dropped once the map grows.
fn slot<T>(map: &Mutex<HashMap<String, Arc<T>>>, key: &str, make: impl FnOnce() -> T) -> Arc<T> {
    let mut m = map.lock();
    if m.len() >= 1024 {
        m.retain(|_, v| Arc::strong_count(v) > 1);
    }
    m.entry(key.to_string())
        .or_insert_with(|| Arc::new(make()))
        .clone()
}

impl Unfurler {
    pub fn new(cfg: &Config, ids: Arc<IdGenerator>, metrics: &Metrics) -> Result<Unfurler, String> {
        let timeout = Duration::from_millis(cfg.media.link_preview_timeout_ms);
        let policy = AddressPolicy {
            allow_private: false,
            exempt: cfg.media.link_preview_allow_addresses.clone(),
        };
        let http = reqwest13::Client::builder()
            .dns_resolver(GuardedResolver {
                policy: policy.clone(),
            })
            .redirect(reqwest13::redirect::Policy::none())
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(USER_AGENT)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Unfurler {
            enabled: cfg.media.link_previews,
            http,
            policy,
            timeout,
            ids,
            hosts: Mutex::new(HashMap::new()),
            in_all: Semaphore::new(IN_ALL),
            urls: Mutex::new(HashMap::new()),
            metrics: UnfurlMetrics::new(metrics),
            consumer: Mutex::new(None),
        })
    }

    /// Starts the cluster's consumer and this node's image sweep.
    pub async fn start(state: &crate::state::AppState) -> Result<(), String> {
        if !state.unfurl.enabled {
            return Ok(());
        }
        let consumer = state
            .bus
            .consume(
                ConsumerConfig::new(CONSUMER, &["chat.community.", "chat.private."]),
                Arc::new(MessageConsumer(Arc::downgrade(&state.0))),
            )
            .await
            .map_err(|e| e.to_string())?;
        *state.unfurl.consumer.lock() = Some(consumer);
        spawn_sweep(Arc::downgrade(&state.0));
        Ok(())
    }

    /// Whether the URL may be requested now: scheme, credentials, and the
    /// host's addresses (a literal, or every address the name resolves to).
    async fn check(&self, url: &Url) -> Result<(), Blocked> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Blocked::Scheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(Blocked::Credentials);
        }
        let ip = |ip: IpAddr| {
            if self.policy.permits(ip) {
                Ok(())
            } else {
                Err(Blocked::Address)
            }
        };
        match url.host() {
            None => Err(Blocked::Malformed),
            Some(Host::Ipv4(v4)) => ip(IpAddr::V4(v4)),
            Some(Host::Ipv6(v6)) => ip(IpAddr::V6(v6)),
            Some(Host::Domain(name)) => {
                if is_local_name(name) {
                    return Err(Blocked::Address);
                }
                let port = url.port_or_known_default().unwrap_or(80);
                let found =
                    tokio::time::timeout(self.timeout, tokio::net::lookup_host((name, port))).await;
                match found {
                    // Every address must pass, not just one.
                    Ok(Ok(addrs)) => addrs.map(|a| a.ip()).try_for_each(ip),
                    // Not resolving is not a refusal: the request fails below.
                    _ => Ok(()),
                }
            }
        }
    }

    /// The guard: fetches `url` for `want`, following at most
    /// [`MAX_REDIRECTS`] redirects, checking every hop before it is
    /// requested. Returns the final URL (relative links resolve against it)
    /// and the body.
    async fn fetch(&self, url: Url, want: Want) -> Result<(Url, Bytes), FetchError> {
        let out = self.fetch_inner(url, want).await;
        let result = match &out {
            Ok(_) => "ok",
            Err(e) => e.label(),
        };
        self.metrics
            .fetched
            .with_label_values(&[want.label(), result])
            .inc();
        if let Err(FetchError::Blocked(b)) = &out {
            self.metrics.blocked.with_label_values(&[b.as_str()]).inc();
        }
        out
    }

    async fn fetch_inner(&self, mut url: Url, want: Want) -> Result<(Url, Bytes), FetchError> {
        let mut redirects = 0;
        // One time limit for the whole fetch, redirects included, counted
        // from the first request (waiting for a slot is not the site's time).
        let mut deadline: Option<tokio::time::Instant> = None;
        loop {
            self.check(&url).await.map_err(FetchError::Blocked)?;
            let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
            let per_host = slot(&self.hosts, &host, || Semaphore::new(PER_HOST));
            let _host = per_host
                .acquire()
                .await
                .map_err(|e| FetchError::Network(e.to_string()))?;
            let _all = self
                .in_all
                .acquire()
                .await
                .map_err(|e| FetchError::Network(e.to_string()))?;
            let until = *deadline.get_or_insert_with(|| tokio::time::Instant::now() + self.timeout);
            let left = until.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(FetchError::Timeout);
            }
            let span = tracing::info_span!("unfurl.fetch", kind = want.label(), %host, redirects);
            let resp = self
                .http
                .get(url.clone())
                .header(reqwest13::header::ACCEPT, want.accept())
                .timeout(left)
                .send()
                .instrument(span)
                .await
                .map_err(network)?;
            let status = resp.status();
            if status.is_redirection() {
                let to = resp
                    .headers()
                    .get(reqwest13::header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or(FetchError::Status(status.as_u16()))?;
                if redirects == MAX_REDIRECTS {
                    return Err(FetchError::Blocked(Blocked::Redirects));
                }
                redirects += 1;
                url = url
                    .join(to)
                    .map_err(|_| FetchError::Blocked(Blocked::Malformed))?;
                continue;
            }
            if !status.is_success() {
                return Err(FetchError::Status(status.as_u16()));
            }
            let ty = resp
                .headers()
                .get(reqwest13::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.split(';').next())
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            if !want.accepts(&ty) {
                return Err(FetchError::Type(ty));
            }
            let cap = want.cap();
            if resp.content_length().is_some_and(|n| n > cap) {
                return Err(FetchError::TooLarge(cap));
            }
            let mut body = Vec::new();
            let mut stream = resp.bytes_stream();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(network)?;
                if body.len() as u64 + chunk.len() as u64 > cap {
                    return Err(FetchError::TooLarge(cap));
                }
                body.extend_from_slice(&chunk);
            }
            return Ok((url, Bytes::from(body)));
        }
    }

    /// The preview of one URL, from the cache or fetched (and then cached).
    async fn preview(&self, state: &Inner, url: &Url) -> Result<Option<PreviewData>, StoreError> {
        let key = url.as_str();
        let lock = slot(&self.urls, key, || tokio::sync::Mutex::new(()));
        let _one = lock.lock().await;
        let now = now_ms();
        if let Some(c) = state.store.link_preview(key).await?
            && c.expires_at > now
        {
            self.metrics.cache.with_label_values(&["hit"]).inc();
            return Ok(c.preview);
        }
        self.metrics.cache.with_label_values(&["miss"]).inc();
        let preview = self.unfurl(state, url.clone()).await;
        let ttl = if preview.is_some() {
            FOUND_TTL
        } else {
            EMPTY_TTL
        };
        state
            .store
            .put_link_preview(&LinkPreviewRecord {
                url: key.to_string(),
                preview: preview.clone(),
                fetched_at: now,
                expires_at: now_ms() + ttl.as_millis() as i64,
            })
            .await?;
        Ok(preview)
    }

    /// Fetches a page, its oEmbed answer and its image; `None` when there
    /// is nothing to show (or it could not or must not be fetched).
    async fn unfurl(&self, state: &Inner, url: Url) -> Option<PreviewData> {
        let (page_url, body) = self
            .fetch(url, Want::Page)
            .await
            .inspect_err(|e| tracing::debug!(error = %e, "no page for a link preview"))
            .ok()?;
        let page = tokio::task::spawn_blocking(move || parse::parse_html(&body))
            .await
            .ok()?;
        let mut oembed = None;
        if let Some(href) = &page.oembed_url
            && let Ok(u) = page_url.join(href)
            && let Ok((_, json)) = self.fetch(u, Want::OEmbed).await
        {
            oembed = parse::parse_oembed(&json);
        }
        let Preview {
            title,
            description,
            site_name,
            author_name,
            provider,
            image,
        } = parse::combine(&page, oembed.as_ref())?;
        let image = match image.and_then(|i| page_url.join(&i.url).ok()) {
            Some(u) => self.image(state, u).await,
            None => None,
        };
        Some(PreviewData {
            title,
            description,
            site_name,
            author_name,
            provider: provider.as_str().to_string(),
            image,
        })
    }

    /// Fetches an image and stores a WebP of it (at most [`IMAGE_EDGE`] a
    /// side) in the blob store; `None` if it cannot be had or decoded.
    async fn image(&self, state: &Inner, url: Url) -> Option<EmbedImage> {
        let (_, bytes) = self.fetch(url, Want::Image).await.ok()?;
        let limits = ImageLimits {
            max_pixels: 16_000_000,
            max_alloc: 128 * 1024 * 1024,
            preview_edge: IMAGE_EDGE,
        };
        let processed =
            tokio::task::spawn_blocking(move || hearth_media::process_image(&bytes, &limits))
                .await
                .ok()?
                .inspect_err(|e| tracing::debug!(error = %e, "a preview's image does not decode"))
                .ok()?;
        let key = image_key(EmbedId(self.ids.next().0));
        let len = processed.preview_webp.len() as u64;
        let body = futures::stream::once(async move { Ok(Bytes::from(processed.preview_webp)) });
        state
            .media
            .blobs
            .put(&key, body.boxed(), len)
            .await
            .inspect_err(|e| tracing::warn!(error = %e, "storing a preview's image"))
            .ok()?;
        Some(EmbedImage {
            key,
            width: processed.preview_width as i32,
            height: processed.preview_height as i32,
        })
    }

    /// Makes, stores and announces a message's previews; nothing when they
    /// are what it has already (so its own MESSAGE_UPDATE ends here).
    async fn on_message(&self, state: &Inner, m: &MessageEvent) -> Result<(), String> {
        let mut urls: Vec<(String, Url)> = Vec::new();
        for raw in parse::extract_urls(&m.content) {
            if let Ok(u) = Url::parse(&raw)
                && !urls.iter().any(|(_, seen)| seen == &u)
            {
                urls.push((raw, u));
            }
        }
        let found = futures::future::join_all(urls.iter().map(|(_, u)| self.preview(state, u)))
            .await
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        let wanted: Vec<(String, PreviewData)> = urls
            .into_iter()
            .zip(found)
            .filter_map(|((raw, _), p)| p.map(|p| (raw, p)))
            .collect();
        let current = state
            .store
            .embeds(&[m.id])
            .await
            .map_err(|e| e.to_string())?;
        let same = current.len() == wanted.len()
            && current
                .iter()
                .zip(&wanted)
                .all(|(c, (url, p))| &c.url == url && &c.preview == p);
        if same {
            return Ok(());
        }
        let records: Vec<EmbedRecord> = wanted
            .into_iter()
            .enumerate()
            .map(|(i, (url, preview))| EmbedRecord {
                id: EmbedId(self.ids.next().0),
                message_id: m.id,
                position: i as i32,
                url,
                preview,
            })
            .collect();
        let stored = state
            .store
            .set_embeds(m.channel_id, m.id, &records)
            .await
            .map_err(|e| e.to_string())?;
        if !stored {
            return Ok(()); // deleted meanwhile
        }
        match state.chat.announce_files_changed(m.channel_id, m.id).await {
            Ok(()) | Err(hearth_chat::ChatError::NotFound) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Forgets expired answers and deletes images nothing names any more.
    async fn sweep(&self, state: &Inner) -> Result<u64, String> {
        state
            .store
            .prune_link_previews(now_ms())
            .await
            .map_err(|e| e.to_string())?;
        let old = now_ms() - IMAGE_GRACE.as_millis() as i64;
        let mut n = 0;
        for blob in state
            .media
            .blobs
            .list("emb/")
            .await
            .map_err(|e| e.to_string())?
        {
            let made = blob
                .key
                .strip_prefix("emb/")
                .and_then(|k| k.strip_suffix(".webp"))
                .and_then(|id| id.parse::<EmbedId>().ok())
                .map(EmbedId::created_ms);
            if made.is_none_or(|t| t > old) {
                continue;
            }
            if !state
                .store
                .embed_image_in_use(&blob.key)
                .await
                .map_err(|e| e.to_string())?
            {
                state
                    .media
                    .blobs
                    .delete(&blob.key)
                    .await
                    .map_err(|e| e.to_string())?;
                self.metrics.collected.inc();
                n += 1;
            }
        }
        Ok(n)
    }
}

pub fn image_key(id: EmbedId) -> String {
    format!("emb/{id}.webp")
}

fn network(e: reqwest13::Error) -> FetchError {
    if e.is_timeout() {
        FetchError::Timeout
    } else {
        FetchError::Network(e.to_string())
    }
}

/// A message event's payload, as far as previews need it.
#[derive(Debug, Deserialize)]
struct MessageEvent {
    id: MessageId,
    channel_id: ChannelId,
    #[serde(default)]
    content: String,
    #[serde(default)]
    edited_at: Option<String>,
}

/// The message an event asks to unfurl: every MESSAGE_CREATE, and a
/// MESSAGE_UPDATE of an edited message (others — pins, files, previews —
/// leave the content as it was unfurled).
fn wanted(event: &Envelope) -> Option<MessageEvent> {
    let create = match event.ty.as_str() {
        "hearth.MESSAGE_CREATE" => true,
        "hearth.MESSAGE_UPDATE" => false,
        _ => return None,
    };
    let v: serde_json::Value = serde_json::from_slice(&event.data).ok()?;
    let m: MessageEvent = serde_json::from_value(v.get("d")?.clone())
        .inspect_err(
            |e| tracing::warn!(id = %event.id, error = %e, "a message event that cannot be read"),
        )
        .ok()?;
    (create || m.edited_at.is_some()).then_some(m)
}

/// The durable consumer's handler: what one read of the log found, at most
/// [`MESSAGES_AT_ONCE`] messages at a time, the last event of each message.
struct MessageConsumer(Weak<Inner>);

#[async_trait]
impl Handler for MessageConsumer {
    async fn handle(&self, position: u64, event: &Envelope) -> Result<(), String> {
        self.handle_batch(&[(position, event)]).await
    }

    fn batched(&self) -> bool {
        true
    }

    async fn handle_batch(&self, events: &[(u64, &Envelope)]) -> Result<(), String> {
        let mut latest: Vec<MessageEvent> = Vec::new();
        for (_, e) in events {
            if let Some(m) = wanted(e) {
                latest.retain(|x| x.id != m.id);
                latest.push(m);
            }
        }
        if latest.is_empty() {
            return Ok(());
        }
        let Some(state) = self.0.upgrade() else {
            return Err("the server is stopping".into());
        };
        let results: Vec<Result<(), String>> = futures::stream::iter(latest)
            .map(|m| {
                let state = state.clone();
                async move {
                    let span = tracing::info_span!("unfurl.message", message = %m.id, channel = %m.channel_id);
                    state.unfurl.on_message(&state, &m).instrument(span).await
                }
            })
            .buffer_unordered(MESSAGES_AT_ONCE)
            .collect()
            .await;
        match results.into_iter().find_map(Result::err) {
            None => Ok(()),
            Some(e) => {
                tracing::warn!(error = %e, "link previews failed");
                Err(e)
            }
        }
    }
}

/// Every node sweeps every 10 minutes (deleting twice is harmless).
fn spawn_sweep(state: Weak<Inner>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(state) = state.upgrade() else { return };
            match state.unfurl.sweep(&state).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(n, "collected link-preview images"),
                Err(e) => tracing::warn!(error = %e, "collecting link-preview images"),
            }
        }
    });
}
