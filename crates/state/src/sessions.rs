//! Gateway sessions that outlive their node: what each session was sent,
//! frame by frame, so `resume` works on any node, even after the node the
//! client was on died.
//!
//! A session's frames are mostly events from the bus log, which every node
//! keeps a recent window of; those are recorded as their log position (8
//! bytes), not their bytes. Frames that are not in the log (presence, or a
//! CHANNEL_DELETE made up for one user when a permission change hides a
//! channel) are recorded inline. READY and RESUMED are markers: never sent
//! again. The node hosting a session records frames *before* it sends them
//! (write-ahead), so a client can never hold a frame the record lacks.
//!
//! Each take-over (a resume on another node) starts a new generation; a
//! node still writing an older generation writes nowhere, so two nodes can
//! never interleave frames of one session.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;

use crate::{StateError, StateResult};

/// One recorded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A log event, by position.
    Log(u64),
    /// A frame that is not in the log: its dispatch tail, kept whole.
    Inline(String),
    /// READY or RESUMED: counted, never re-sent. Carries the log position
    /// the session had reached, so what follows it is known.
    Marker(u64),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionMeta {
    pub user: i64,
    pub auth_session: i64,
}

/// A session's record: `frames[i]` was sent with sequence `first_seq + i`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    pub meta: SessionMeta,
    pub generation: u64,
    pub first_seq: u64,
    pub frames: Vec<Frame>,
}

impl SessionRecord {
    /// The last sequence recorded (`first_seq - 1` when there are no frames).
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.frames.len() as u64 - 1
    }
}

/// Frames to record for one session, in one [`SessionLog::append`] batch.
#[derive(Clone, Debug)]
pub struct Append {
    pub session: String,
    pub generation: u64,
    /// The sequence of `frames[0]`; must follow what is recorded.
    pub first_seq: u64,
    pub frames: Vec<Frame>,
    /// Replace what is recorded (trimming an old prefix) instead of adding.
    pub replace: bool,
}

#[async_trait]
pub trait SessionLog: Send + Sync + 'static {
    /// Starts a session's record, or takes it over (a new generation):
    /// `frames` were sent from `first_seq` on. Returns the generation.
    async fn open(
        &self,
        session: &str,
        meta: &SessionMeta,
        first_seq: u64,
        frames: &[Frame],
        ttl: Duration,
    ) -> StateResult<u64>;
    /// Records frames for many sessions in one round trip; a stale
    /// generation is ignored (another node took the session over). Every
    /// write extends the record's life to `ttl`. Returns the indexes, into
    /// `batch`, of the appends whose session has no record any more
    /// (expired, or the shared state restarted empty): their frames were
    /// not kept, and the holder may `open` the record again.
    async fn append(&self, batch: &[Append], ttl: Duration) -> StateResult<Vec<usize>>;
    async fn load(&self, session: &str) -> StateResult<Option<SessionRecord>>;
    /// Forgets a session that can never be resumed (revoked, failed).
    async fn remove(&self, session: &str) -> StateResult<()>;
}

/// The binary form of a run of frames (shared by the Redis implementation
/// and the tests): `first_seq` (u64 LE), count (u32 LE), then per frame a
/// tag (0 log, 1 inline, 2 marker) and a u64 LE, or a u32 LE length and
/// that many bytes of UTF-8.
pub fn encode_run(first_seq: u64, frames: &[Frame]) -> Vec<u8> {
    let mut out = Vec::with_capacity(12 + frames.len() * 9);
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&(frames.len() as u32).to_le_bytes());
    for f in frames {
        match f {
            Frame::Log(p) => {
                out.push(0);
                out.extend_from_slice(&p.to_le_bytes());
            }
            Frame::Inline(t) => {
                out.push(1);
                out.extend_from_slice(&(t.len() as u32).to_le_bytes());
                out.extend_from_slice(t.as_bytes());
            }
            Frame::Marker(p) => {
                out.push(2);
                out.extend_from_slice(&p.to_le_bytes());
            }
        }
    }
    out
}

/// Decodes concatenated runs into (first_seq, frames). Runs must follow on
/// from each other; a run that does not (or a truncated one) is an error.
pub fn decode_runs(mut b: &[u8]) -> StateResult<Option<(u64, Vec<Frame>)>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> StateResult<&'a [u8]> {
        if b.len() < n {
            return Err(StateError::Protocol("truncated session record".into()));
        }
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h)
    }
    fn u64_at(b: &mut &[u8]) -> StateResult<u64> {
        Ok(u64::from_le_bytes(take(b, 8)?.try_into().unwrap_or([0; 8])))
    }
    fn u32_at(b: &mut &[u8]) -> StateResult<u32> {
        Ok(u32::from_le_bytes(take(b, 4)?.try_into().unwrap_or([0; 4])))
    }
    let mut first = None;
    let mut frames = Vec::new();
    while !b.is_empty() {
        let seq = u64_at(&mut b)?;
        let n = u32_at(&mut b)?;
        match first {
            None => first = Some(seq),
            Some(f) if f + frames.len() as u64 == seq => {}
            Some(_) => return Err(StateError::Protocol("session record has a gap".into())),
        }
        for _ in 0..n {
            let tag = take(&mut b, 1)?[0];
            frames.push(match tag {
                0 => Frame::Log(u64_at(&mut b)?),
                2 => Frame::Marker(u64_at(&mut b)?),
                1 => {
                    let len = u32_at(&mut b)? as usize;
                    let bytes = take(&mut b, len)?;
                    Frame::Inline(
                        String::from_utf8(bytes.to_vec())
                            .map_err(|_| StateError::Protocol("session frame not UTF-8".into()))?,
                    )
                }
                _ => return Err(StateError::Protocol("unknown session frame tag".into())),
            });
        }
    }
    Ok(first.map(|f| (f, frames)))
}

struct Entry {
    record: SessionRecord,
    deadline: Instant,
}

/// One node's session records (the embedded server: resuming elsewhere
/// means resuming here).
#[derive(Default)]
pub struct MemorySessionLog {
    sessions: Mutex<HashMap<String, Entry>>,
}

#[async_trait]
impl SessionLog for MemorySessionLog {
    async fn open(
        &self,
        session: &str,
        meta: &SessionMeta,
        first_seq: u64,
        frames: &[Frame],
        ttl: Duration,
    ) -> StateResult<u64> {
        let now = Instant::now();
        let mut all = self.sessions.lock();
        all.retain(|_, e| e.deadline > now);
        let generation = all.get(session).map_or(0, |e| e.record.generation) + 1;
        all.insert(
            session.to_string(),
            Entry {
                record: SessionRecord {
                    meta: meta.clone(),
                    generation,
                    first_seq,
                    frames: frames.to_vec(),
                },
                deadline: now + ttl,
            },
        );
        Ok(generation)
    }

    async fn append(&self, batch: &[Append], ttl: Duration) -> StateResult<Vec<usize>> {
        let now = Instant::now();
        let mut all = self.sessions.lock();
        let mut lost = Vec::new();
        for (i, a) in batch.iter().enumerate() {
            let Some(e) = all.get_mut(&a.session).filter(|e| e.deadline > now) else {
                lost.push(i);
                continue;
            };
            if e.record.generation != a.generation {
                continue;
            }
            if a.replace {
                e.record.first_seq = a.first_seq;
                e.record.frames = a.frames.clone();
            } else if e.record.last_seq() + 1 == a.first_seq {
                e.record.frames.extend(a.frames.iter().cloned());
            } else {
                return Err(StateError::Protocol(format!(
                    "frames for {} do not follow on",
                    a.session
                )));
            }
            e.deadline = now + ttl;
        }
        Ok(lost)
    }

    async fn load(&self, session: &str) -> StateResult<Option<SessionRecord>> {
        let now = Instant::now();
        Ok(self
            .sessions
            .lock()
            .get(session)
            .filter(|e| e.deadline > now)
            .map(|e| e.record.clone()))
    }

    async fn remove(&self, session: &str) -> StateResult<()> {
        self.sessions.lock().remove(session);
        Ok(())
    }
}
