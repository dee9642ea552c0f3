//! One pass over the matching documents: keeps only those in the caller's
//! channels (so totals and pages never count anything else), counts them,
//! and keeps the best `k` by score or by ID.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::sync::Arc;

use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::ColumnValues;
use tantivy::index::SegmentReader;
use tantivy::{DocAddress, DocId, Score, SegmentOrdinal};

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

pub(crate) struct HitCollector {
    /// Sorted channel IDs the caller may read.
    pub scope: Arc<Vec<u64>>,
    pub order: Order,
    pub k: usize,
    /// Date order: only IDs strictly past this one.
    pub after: Option<u64>,
}

impl Collector for HitCollector {
    type Fruit = Fruit;
    type Child = SegmentHits;

    fn for_segment(
        &self,
        segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentHits> {
        let ff = reader.fast_fields();
        Ok(SegmentHits {
            segment,
            channel: ff.u64("channel")?.first_or_default_col(0),
            id: ff.u64("id")?.first_or_default_col(0),
            scope: self.scope.clone(),
            order: self.order,
            k: self.k,
            after: self.after,
            total: 0,
            eligible: 0,
            heap: BinaryHeap::with_capacity(self.k + 1),
        })
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

pub(crate) struct SegmentHits {
    segment: SegmentOrdinal,
    channel: Arc<dyn ColumnValues<u64>>,
    id: Arc<dyn ColumnValues<u64>>,
    scope: Arc<Vec<u64>>,
    order: Order,
    k: usize,
    after: Option<u64>,
    total: usize,
    eligible: usize,
    /// A min-heap of the best `k`.
    heap: BinaryHeap<Reverse<Entry>>,
}

impl SegmentCollector for SegmentHits {
    type Fruit = Fruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        let channel = self.channel.get_val(doc);
        if self.scope.binary_search(&channel).is_err() {
            return;
        }
        self.total += 1;
        let id = self.id.get_val(doc);
        let key = match (self.order, self.after) {
            (Order::IdDesc, Some(a)) if id >= a => return,
            (Order::IdAsc, Some(a)) if id <= a => return,
            (Order::Score, _) => (score, id),
            (Order::IdDesc, _) => (0.0, id),
            (Order::IdAsc, _) => (0.0, u64::MAX - id),
        };
        self.eligible += 1;
        let entry = Entry {
            score,
            id,
            addr: DocAddress::new(self.segment, doc),
            key,
        };
        if self.heap.len() < self.k {
            self.heap.push(Reverse(entry));
        } else if self.heap.peek().is_some_and(|Reverse(min)| entry > *min) {
            self.heap.pop();
            self.heap.push(Reverse(entry));
        }
    }

    fn harvest(self) -> Fruit {
        Fruit {
            total: self.total,
            eligible: self.eligible,
            top: self.heap.into_iter().map(|Reverse(e)| e).collect(),
        }
    }
}
