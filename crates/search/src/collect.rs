//! One pass over the matching documents: keeps only those in the caller's
//! channels (so totals and pages never count anything else), counts them,
//! and keeps the best `k` by score or by ID.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnIndex, ColumnValues};
use tantivy::fastfield::AliveBitSet;
use tantivy::index::{SegmentId, SegmentReader};
use tantivy::query::Weight;
use tantivy::schema::Field;
use tantivy::{
    DocAddress, DocId, DocSet, Score, Searcher, SearcherGeneration, SegmentOrdinal, TERMINATED,
    Warmer,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    Score,
    IdDesc,
    IdAsc,
}

/// A kept document: its score (0 in date order), its message ID, where it is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    pub score: Score,
    pub id: u64,
    pub addr: DocAddress,
    /// Larger is better.
    key: (Score, u64),
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        self.key
            .0
            .total_cmp(&o.key.0)
            .then(self.key.1.cmp(&o.key.1))
    }
}

pub(crate) struct Fruit {
    /// Matching documents in scope.
    pub total: usize,
    /// Of those, the ones after the cursor.
    pub eligible: usize,
    /// The best `k` eligible, best first.
    pub top: Vec<Entry>,
}

/// A set of channel IDs (never 0) with a lookup of a few nanoseconds: it
/// is asked once per matching document.
///
/// An open-addressed table of `2^bits` slots indexed by a multiplicative
/// hash. For scopes of up to [`ONE_PROBE_MAX`] channels a multiplier is
/// searched for that puts every channel of the scope in its own home slot;
/// then a lookup is one load and one comparison, with no branch (a
/// channel outside the scope lands on some slot and differs from what is
/// there). A profile of a common word in a 20-channel scope spent half its
/// time in the probe loop's mispredicted branches before this. Larger
/// scopes probe linearly.
pub(crate) struct ChannelSet {
    slots: Vec<u64>,
    shift: u32,
    multiplier: u64,
    one_probe: bool,
}

/// Scopes up to this many channels get a collision-free table.
const ONE_PROBE_MAX: usize = 256;
/// Its largest size: 2^15 slots (256 KiB).
const ONE_PROBE_BITS_MAX: u32 = 15;
/// Multipliers tried per table size.
const MULTIPLIERS_TRIED: u64 = 16;
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

impl ChannelSet {
    pub fn new(ids: &[u64]) -> ChannelSet {
        let mut ids: Vec<u64> = ids.iter().copied().filter(|&id| id != 0).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() <= ONE_PROBE_MAX {
            // Start at ~8 slots per channel: a random table of that load
            // is collision-free with probability ~e^(-1/16 · n) per try.
            let first = (ids.len().max(1) * 8).next_power_of_two().trailing_zeros();
            for bits in first.max(3)..=ONE_PROBE_BITS_MAX {
                for t in 0..MULTIPLIERS_TRIED {
                    let multiplier = GOLDEN.wrapping_add(t.wrapping_mul(0x5851_F42D_4C95_7F2D)) | 1;
                    if let Some(set) = Self::one_probe(&ids, bits, multiplier) {
                        return set;
                    }
                }
            }
        }
        Self::probing(&ids)
    }

    fn one_probe(ids: &[u64], bits: u32, multiplier: u64) -> Option<ChannelSet> {
        let mut set = ChannelSet {
            slots: vec![0; 1 << bits],
            shift: 64 - bits,
            multiplier,
            one_probe: true,
        };
        for &id in ids {
            let i = set.slot(id);
            if set.slots[i] != 0 {
                return None;
            }
            set.slots[i] = id;
        }
        Some(set)
    }

    fn probing(ids: &[u64]) -> ChannelSet {
        let bits = (ids.len().max(1) * 2)
            .next_power_of_two()
            .trailing_zeros()
            .max(1);
        let mut set = ChannelSet {
            slots: vec![0; 1 << bits],
            shift: 64 - bits,
            multiplier: GOLDEN,
            one_probe: false,
        };
        for &id in ids {
            let mut i = set.slot(id);
            while set.slots[i] != 0 && set.slots[i] != id {
                i = (i + 1) & (set.slots.len() - 1);
            }
            set.slots[i] = id;
        }
        set
    }

    #[inline]
    fn slot(&self, id: u64) -> usize {
        (id.wrapping_mul(self.multiplier) >> self.shift) as usize
    }

    #[inline]
    pub fn contains(&self, id: u64) -> bool {
        if self.one_probe {
            // The slot is in range by construction (`shift` = 64 - bits).
            return self.slots[self.slot(id)] == id && id != 0;
        }
        let mut i = self.slot(id);
        loop {
            match self.slots[i] {
                0 => return false,
                s if s == id => return id != 0,
                _ => i = (i + 1) & (self.slots.len() - 1),
            }
        }
    }
}

/// Documents per block of [`IdBlocks`].
const BLOCK_DOCS: u32 = 4096;

/// The lowest and highest message ID in each run of [`BLOCK_DOCS`]
/// documents of one segment. Documents are added in log order, so a block
/// covers a short stretch of time and a date-ordered page is found in the
/// few blocks with the newest (or oldest) IDs, without visiting the
/// thousands of older matches of a common word.
pub(crate) type IdBlocks = Arc<Vec<(u64, u64)>>;

/// What a query needs of one segment besides its postings, prepared once
/// per segment (segments never change): its channel and ID columns opened
/// (opening the ID column decodes a header per 512 documents), the
/// channels it holds, and its [`IdBlocks`].
pub(crate) struct SegmentInfo {
    pub channel: Arc<dyn ColumnValues<u64>>,
    pub id: Arc<dyn ColumnValues<u64>>,
    /// Every channel with a document in the segment (deleted ones too).
    pub channels: Vec<u64>,
    pub blocks: IdBlocks,
}

impl SegmentInfo {
    fn read(reader: &SegmentReader, channel_field: Field) -> tantivy::Result<SegmentInfo> {
        let ff = reader.fast_fields();
        let channel = values(ff.u64("channel")?);
        let id = values(ff.u64("id")?);
        let mut channels = Vec::new();
        let inverted = reader.inverted_index(channel_field)?;
        let mut terms = inverted.terms().stream()?;
        while terms.advance() {
            // A key that is not a u64 cannot be in any scope; 0 is in none.
            let c = <[u8; 8]>::try_from(terms.key()).map_or(0, u64::from_be_bytes);
            channels.push(c);
        }
        let blocks = id_blocks(reader.max_doc(), id.as_ref());
        Ok(SegmentInfo {
            channel,
            id,
            channels,
            blocks,
        })
    }

    /// Whether every channel with a document here is in `scope` (then the
    /// per-document check can be skipped and tantivy's fast paths used:
    /// counts from posting lengths, block-max pruning).
    fn within(&self, scope: &ChannelSet) -> bool {
        self.channels.iter().all(|&c| scope.contains(c))
    }
}

fn id_blocks(max_doc: u32, id: &dyn ColumnValues<u64>) -> IdBlocks {
    let mut blocks = Vec::with_capacity((max_doc / BLOCK_DOCS + 1) as usize);
    let mut start = 0;
    while start < max_doc {
        let end = (start + BLOCK_DOCS).min(max_doc);
        let (mut lo, mut hi) = (u64::MAX, 0);
        for doc in start..end {
            let v = id.get_val(doc);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        blocks.push((lo, hi));
        start = end;
    }
    Arc::new(blocks)
}

/// [`SegmentInfo`] per segment. It is the reader's warmer: a new segment's
/// is prepared when the reader reloads (in the committer, off the query
/// path: ~5 ms for a segment of a million messages), and a merged-away
/// segment's dropped. A profile of a rare word (20 hits) spent a fifth of
/// the query opening columns and listing channels before this.
pub(crate) struct SegmentCache {
    channel_field: Field,
    segments: Mutex<HashMap<SegmentId, Arc<SegmentInfo>>>,
}

impl Warmer for SegmentCache {
    fn warm(&self, searcher: &Searcher) -> tantivy::Result<()> {
        for reader in searcher.segment_readers() {
            self.info(reader)?;
        }
        Ok(())
    }

    fn garbage_collect(&self, live: &[&SearcherGeneration]) {
        let live: HashSet<SegmentId> = live
            .iter()
            .flat_map(|g| g.segments().keys().copied())
            .collect();
        self.segments.lock().retain(|id, _| live.contains(id));
    }
}

impl SegmentCache {
    pub fn new(channel_field: Field) -> SegmentCache {
        SegmentCache {
            channel_field,
            segments: Mutex::default(),
        }
    }

    #[cfg(test)]
    pub fn cached_segments(&self) -> HashSet<SegmentId> {
        self.segments.lock().keys().copied().collect()
    }

    /// A backstop only: the warmer's garbage collection keeps the cache to
    /// the live segments.
    const MAX_SEGMENTS: usize = 4096;

    pub fn info(&self, reader: &SegmentReader) -> tantivy::Result<Arc<SegmentInfo>> {
        let key = reader.segment_id();
        if let Some(info) = self.segments.lock().get(&key) {
            return Ok(info.clone());
        }
        let info = Arc::new(SegmentInfo::read(reader, self.channel_field)?);
        let mut map = self.segments.lock();
        if map.len() >= Self::MAX_SEGMENTS {
            map.clear();
        }
        map.insert(key, info.clone());
        Ok(info)
    }
}

/// The best `k` entries seen, in amortized constant time per offer: a
/// buffer of `2k` cut back to `k` when full, below a rising threshold.
struct TopN {
    k: usize,
    buf: Vec<Entry>,
    threshold: Option<Entry>,
}

impl TopN {
    fn new(k: usize) -> TopN {
        TopN {
            k,
            buf: Vec::with_capacity(2 * k.max(1)),
            threshold: None,
        }
    }

    #[inline]
    fn offer(&mut self, e: Entry) {
        if self.k == 0 || self.threshold.is_some_and(|t| e <= t) {
            return;
        }
        self.buf.push(e);
        if self.buf.len() >= 2 * self.k {
            self.cut();
        }
    }

    /// Settles the threshold once `k` entries are held (a pass over a
    /// block may leave up to `2k` unsorted).
    fn cut_if_full(&mut self) {
        if self.buf.len() >= self.k {
            self.cut();
        }
    }

    fn cut(&mut self) {
        if self.k > 0 && self.buf.len() >= self.k {
            self.buf.select_nth_unstable_by(self.k - 1, |a, b| b.cmp(a));
            self.buf.truncate(self.k);
            self.threshold = Some(self.buf[self.k - 1]);
        }
    }

    /// The score a document must beat to enter (for pruning): just below
    /// the k-th, since a tie may still enter by its ID, and pages of
    /// different `k` must agree.
    fn min_score(&self) -> Score {
        self.threshold.map_or(Score::MIN, |t| t.score.next_down())
    }

    fn finish(mut self) -> Vec<Entry> {
        self.cut();
        self.buf.sort_unstable_by(|a, b| b.cmp(a));
        self.buf
    }
}

pub(crate) struct HitCollector {
    /// The channel IDs the caller may read.
    pub scope: Arc<ChannelSet>,
    pub order: Order,
    pub k: usize,
    /// Date order: only IDs strictly past this one.
    pub after: Option<u64>,
    pub segments: Arc<SegmentCache>,
}

impl Collector for HitCollector {
    type Fruit = Fruit;
    type Child = SegmentHits;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentHits> {
        let info = self.segments.info(reader)?;
        Ok(SegmentHits {
            segment,
            channel: info.channel.clone(),
            id: info.id.clone(),
            whole: info.within(&self.scope),
            blocks: info.blocks.clone(),
            scope: self.scope.clone(),
            order: self.order,
            after: self.after,
            total: 0,
            eligible: 0,
            top: TopN::new(self.k),
        })
    }

    fn collect_segment(
        &self,
        weight: &dyn Weight,
        ord: u32,
        reader: &SegmentReader,
    ) -> tantivy::Result<Fruit> {
        let mut seg = self.for_segment(ord, reader)?;
        let alive = reader.alive_bitset();
        let is_alive = |doc: DocId| alive.is_none_or(|a| a.is_alive(doc));
        match self.order {
            Order::Score => {
                // Relevance pages by offset (no `after`): every match in
                // scope is eligible. Count first (from the postings when the
                // whole segment is in scope, else one pass without scoring),
                // then take the top k with block-max pruning.
                let n = if seg.whole {
                    weight.count(reader)? as usize
                } else {
                    let mut n = 0;
                    weight.for_each_no_score(reader, &mut |docs| {
                        n += seg.count_in_scope(docs, alive);
                    })?;
                    n
                };
                weight.for_each_pruning(Score::MIN, reader, &mut |doc, score| {
                    if is_alive(doc) && (seg.whole || seg.scope.contains(seg.channel.get_val(doc)))
                    {
                        seg.offer(doc, score);
                    }
                    seg.top.min_score()
                })?;
                seg.total = n;
                seg.eligible = n;
            }
            Order::IdDesc | Order::IdAsc => {
                // The total (every match in scope, whatever the cursor):
                // from the postings when the whole segment is in scope,
                // else one pass checking each match's channel.
                seg.total = if seg.whole {
                    weight.count(reader)? as usize
                } else {
                    let mut n = 0;
                    weight.for_each_no_score(reader, &mut |docs| {
                        n += seg.count_in_scope(docs, alive);
                    })?;
                    n
                };
                seg.eligible = if seg.total <= WINDOWS_FROM {
                    seg.top_by_id_in_one_pass(weight, reader, &is_alive)?
                } else {
                    let blocks = seg.blocks.clone();
                    seg.top_by_id(weight, reader, &blocks, &is_alive)?
                };
            }
        }
        Ok(seg.harvest())
    }

    fn requires_scoring(&self) -> bool {
        self.order == Order::Score
    }

    fn merge_fruits(&self, fruits: Vec<Fruit>) -> tantivy::Result<Fruit> {
        let mut out = Fruit {
            total: 0,
            eligible: 0,
            top: Vec::new(),
        };
        for f in fruits {
            out.total += f.total;
            out.eligible += f.eligible;
            out.top.extend(f.top);
        }
        out.top.sort_unstable_by(|a, b| b.cmp(a));
        out.top.truncate(self.k);
        Ok(out)
    }
}

/// A column's values by document. Every message has one channel and one
/// ID, so the column is full and its values are read directly (row =
/// document), without the per-read dispatch through the column's index
/// that `first_or_default_col` adds (a profile of a scoped common word put
/// 17 % of the query there).
fn values(column: Column<u64>) -> Arc<dyn ColumnValues<u64>> {
    match column.index {
        ColumnIndex::Full => column.values,
        _ => column.first_or_default_col(0),
    }
}

/// Documents per batch read from a column (tantivy hands matches over in
/// buffers of 64).
const BATCH: usize = 64;

pub(crate) struct SegmentHits {
    segment: SegmentOrdinal,
    channel: Arc<dyn ColumnValues<u64>>,
    id: Arc<dyn ColumnValues<u64>>,
    scope: Arc<ChannelSet>,
    order: Order,
    after: Option<u64>,
    /// Every channel of this segment is in scope.
    whole: bool,
    blocks: IdBlocks,
    total: usize,
    eligible: usize,
    top: TopN,
}

impl SegmentHits {
    /// How many of `docs` are alive and in scope: their channels read in
    /// one batch per [`BATCH`] documents, then checked.
    #[inline]
    fn count_in_scope(&self, docs: &[DocId], alive: Option<&AliveBitSet>) -> usize {
        let mut channels = [0u64; BATCH];
        let mut n = 0;
        for chunk in docs.chunks(BATCH) {
            let channels = &mut channels[..chunk.len()];
            self.channel.get_vals(chunk, channels);
            match alive {
                // No deletes in the segment: a count without a branch.
                None => {
                    for &c in channels.iter() {
                        n += usize::from(self.scope.contains(c));
                    }
                }
                Some(a) => {
                    for (&doc, &c) in chunk.iter().zip(channels.iter()) {
                        n += usize::from(self.scope.contains(c) & a.is_alive(doc));
                    }
                }
            }
        }
        n
    }

    /// Offers a document already known to be in scope and eligible.
    #[inline]
    fn offer(&mut self, doc: DocId, score: Score) {
        let id = self.id.get_val(doc);
        let key = match self.order {
            Order::Score => (score, id),
            Order::IdDesc => (0.0, id),
            Order::IdAsc => (0.0, u64::MAX - id),
        };
        self.top.offer(Entry {
            score,
            id,
            addr: DocAddress::new(self.segment, doc),
            key,
        });
    }
}

/// Below this many matches in a segment, a date-ordered page is found in
/// one pass over them (cheaper than opening a scorer per block).
const WINDOWS_FROM: usize = 2 * BLOCK_DOCS as usize;

impl SegmentHits {
    /// The page in date order from every eligible match; returns how many
    /// were eligible.
    fn top_by_id_in_one_pass(
        &mut self,
        weight: &dyn Weight,
        reader: &SegmentReader,
        is_alive: &dyn Fn(DocId) -> bool,
    ) -> tantivy::Result<usize> {
        let mut eligible = 0;
        weight.for_each_no_score(reader, &mut |docs| {
            for &doc in docs {
                if is_alive(doc)
                    && (self.whole || self.scope.contains(self.channel.get_val(doc)))
                    && self.past_cursor(self.id.get_val(doc))
                {
                    eligible += 1;
                    self.offer(doc, 0.0);
                }
            }
        })?;
        Ok(eligible)
    }

    /// Date order: whether `id` is past the cursor (always, without one).
    #[inline]
    fn past_cursor(&self, id: u64) -> bool {
        match (self.after, self.order) {
            (None, _) | (_, Order::Score) => true,
            (Some(a), Order::IdDesc) => id < a,
            (Some(a), Order::IdAsc) => id > a,
        }
    }

    /// The page in date order, reading only the blocks that can hold it:
    /// blocks in order of their newest (oldest) ID, until the next block's
    /// best ID cannot beat the `k + 1`-th kept. One more than the page is
    /// kept so that "is there a next page" is answered; the count returned
    /// is the eligible documents seen, which exceeds `k` exactly when there
    /// are more than `k` eligible in this segment.
    fn top_by_id(
        &mut self,
        weight: &dyn Weight,
        reader: &SegmentReader,
        blocks: &[(u64, u64)],
        is_alive: &dyn Fn(DocId) -> bool,
    ) -> tantivy::Result<usize> {
        let desc = self.order == Order::IdDesc;
        let k = self.top.k;
        self.top = TopN::new(k + 1);
        let mut order: Vec<u32> = (0..blocks.len() as u32)
            .filter(|&b| {
                let (lo, hi) = blocks[b as usize];
                match self.after {
                    Some(a) if desc => lo < a,
                    Some(a) => hi > a,
                    None => true,
                }
            })
            .collect();
        if desc {
            order.sort_unstable_by_key(|&b| std::cmp::Reverse(blocks[b as usize].1));
        } else {
            order.sort_unstable_by_key(|&b| blocks[b as usize].0);
        }
        let mut seen = 0;
        for b in order {
            let (lo, hi) = blocks[b as usize];
            if let Some(t) = self.top.threshold {
                // k + 1 are held and every ID in this block (and in the
                // blocks after it) is worse than all of them.
                if (desc && hi <= t.id) || (!desc && lo >= t.id) {
                    break;
                }
            }
            let start = b * BLOCK_DOCS;
            let end = start + BLOCK_DOCS;
            let mut scorer = weight.scorer(reader, 1.0)?;
            let mut doc = if scorer.doc() >= start {
                scorer.doc()
            } else {
                scorer.seek(start)
            };
            while doc != TERMINATED && doc < end {
                if is_alive(doc)
                    && (self.whole || self.scope.contains(self.channel.get_val(doc)))
                    && self.past_cursor(self.id.get_val(doc))
                {
                    seen += 1;
                    self.offer(doc, 0.0);
                }
                doc = scorer.advance();
            }
            // Keep the threshold current so the next block can be skipped.
            self.top.cut_if_full();
        }
        Ok(seen)
    }
}

impl SegmentCollector for SegmentHits {
    type Fruit = Fruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        if !self.whole && !self.scope.contains(self.channel.get_val(doc)) {
            return;
        }
        self.total += 1;
        if let Some(a) = self.after {
            let id = self.id.get_val(doc);
            let past = match self.order {
                Order::IdDesc => id < a,
                Order::IdAsc => id > a,
                Order::Score => true,
            };
            if !past {
                return;
            }
        }
        self.eligible += 1;
        self.offer(doc, score);
    }

    fn harvest(self) -> Fruit {
        Fruit {
            total: self.total,
            eligible: self.eligible,
            top: self.top.finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Channel IDs shaped like snowflakes: large, close together.
    fn ids(n: u64, seed: u64) -> Vec<u64> {
        (0..n)
            .map(|i| (1 << 60) + seed * 1_000_003 + i * 4_194_304 + (i * i) % 977)
            .collect()
    }

    #[test]
    fn small_scopes_get_one_probe_and_answer_exactly() {
        for n in [1, 2, 5, 20, 100, 256] {
            let inside = ids(n, 1);
            let set = ChannelSet::new(&inside);
            assert!(set.one_probe, "{n} channels should fit one probe");
            assert!(inside.iter().all(|&c| set.contains(c)));
            // Neighbours, other snowflakes and 0 are outside.
            let outside: Vec<u64> = ids(2_000, 7)
                .into_iter()
                .chain(inside.iter().map(|c| c + 1))
                .chain([0, u64::MAX])
                .filter(|c| !inside.contains(c))
                .collect();
            assert!(outside.iter().all(|&c| !set.contains(c)), "{n} channels");
        }
    }

    #[test]
    fn large_scopes_probe_and_answer_exactly() {
        let inside = ids(5_000, 3);
        let set = ChannelSet::new(&inside);
        assert!(!set.one_probe);
        assert!(inside.iter().all(|&c| set.contains(c)));
        assert!(
            ids(5_000, 11)
                .iter()
                .all(|&c| inside.contains(&c) || !set.contains(c))
        );
        assert!(!set.contains(0));
    }

    #[test]
    fn an_empty_scope_holds_nothing() {
        let set = ChannelSet::new(&[]);
        assert!(!set.contains(0) && !set.contains(1) && !set.contains(1 << 60));
    }

    proptest::proptest! {
        #[test]
        fn any_set_answers_exactly(
            inside in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..300),
            probes in proptest::collection::vec(proptest::prelude::any::<u64>(), 0..100),
        ) {
            let set = ChannelSet::new(&inside);
            for &c in inside.iter().chain(probes.iter()) {
                proptest::prop_assert_eq!(set.contains(c), c != 0 && inside.contains(&c));
            }
        }
    }
}
