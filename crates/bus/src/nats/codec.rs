//! Envelope <-> NATS message, CloudEvents 1.0 *binary content mode*: each
//! attribute is a `ce-*` header, `datacontenttype` is `content-type`, and the
//! payload is `data` untouched. Binary mode keeps the bus blind to `data` and
//! lets any CloudEvents-aware NATS tool read the events.

use std::collections::HashSet;
use std::sync::Mutex;

use async_nats::HeaderMap;
use bytes::Bytes;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::Envelope;

pub const CE_ID: &str = "ce-id";
pub const CE_SOURCE: &str = "ce-source";
pub const CE_TYPE: &str = "ce-type";
pub const CE_TIME: &str = "ce-time";
pub const CE_SUBJECT: &str = "ce-subject";
pub const CE_SPECVERSION: &str = "ce-specversion";
pub const CONTENT_TYPE: &str = "content-type";
/// JetStream de-duplication key; `publish_durable` sets it to the envelope id.
pub const NATS_MSG_ID: &str = "Nats-Msg-Id";

/// Headers carrying every attribute of `event`.
pub fn to_headers(event: &Envelope) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(CE_SPECVERSION, "1.0");
    h.insert(CE_ID, event.id.as_str());
    h.insert(CE_SOURCE, event.source.as_str());
    h.insert(CE_TYPE, event.ty.as_str());
    h.insert(CE_TIME, format_time(event.time));
    h.insert(CE_SUBJECT, event.subject.as_str());
    h.insert(CONTENT_TYPE, event.datacontenttype);
    h
}

/// Rebuilds an envelope; `Err` names what is missing or malformed.
pub fn from_message(headers: Option<&HeaderMap>, payload: Bytes) -> Result<Envelope, String> {
    let h = headers.ok_or("no headers: not a CloudEvent")?;
    let get = |name: &str| {
        h.get(name)
            .map(|v| v.as_str().to_string())
            .ok_or_else(|| format!("missing header {name}"))
    };
    let time = get(CE_TIME)?;
    Ok(Envelope {
        id: get(CE_ID)?,
        source: get(CE_SOURCE)?,
        ty: get(CE_TYPE)?,
        time: parse_time(&time).ok_or_else(|| format!("bad {CE_TIME}: {time}"))?,
        subject: get(CE_SUBJECT)?,
        datacontenttype: h.get(CONTENT_TYPE).map_or("application/octet-stream", |v| {
            intern_content_type(v.as_str())
        }),
        data: payload,
    })
}

/// Unix milliseconds as RFC 3339 (UTC, millisecond precision when non-zero).
pub fn format_time(ms: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

pub fn parse_time(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Distinct content types seen beyond [`KNOWN`] that have been interned.
const INTERN_CAP: usize = 64;
const KNOWN: &[&str] = &[
    "application/json",
    "application/octet-stream",
    "application/cbor",
    "application/x-protobuf",
    "application/protobuf",
    "text/plain",
    "text/plain; charset=utf-8",
];

/// `Envelope::datacontenttype` is `&'static str`, so a received value must be
/// mapped to a static string. Known types map directly; others are leaked
/// once each, up to [`INTERN_CAP`] distinct values (a remote publisher must
/// not be able to grow memory without bound), after which they read as
/// `application/octet-stream`.
fn intern_content_type(s: &str) -> &'static str {
    if let Some(k) = KNOWN.iter().find(|k| **k == s) {
        return k;
    }
    static SEEN: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    let mut guard = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let seen = guard.get_or_insert_with(HashSet::new);
    if let Some(k) = seen.get(s) {
        return k;
    }
    if seen.len() >= INTERN_CAP {
        return "application/octet-stream";
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    seen.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_round_trips_at_millisecond_precision() {
        for ms in [0, 1, 1_700_000_000_123, 1_700_000_000_000] {
            assert_eq!(parse_time(&format_time(ms)), Some(ms));
        }
        assert_eq!(format_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn headers_round_trip() {
        let mut e = Envelope::json(
            "42".into(),
            "hearth://node/1".into(),
            "hearth.t",
            "chat.private.9",
            vec![1, 2, 3],
        );
        e.datacontenttype = "application/vnd.hearth+cbor";
        let h = to_headers(&e);
        assert_eq!(h.get(CE_SPECVERSION).map(|v| v.as_str()), Some("1.0"));
        let back = from_message(Some(&h), e.data.clone()).expect("decodes");
        assert_eq!(back, e);
        assert!(from_message(None, Bytes::new()).is_err());
    }
}
