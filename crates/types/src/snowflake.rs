//! Time-ordered 64-bit IDs: 41 bits of milliseconds since [`EPOCH_MS`], 10 bits of
//! node, 12 bits of sequence. The node part is leased from the database at start
//! (see `hearth-store`), so two live nodes never mint the same ID.

use parking_lot::Mutex;

use crate::Snowflake;

/// 2025-01-01T00:00:00Z: IDs count milliseconds from here (good for ~69 years).
pub const EPOCH_MS: i64 = 1_735_689_600_000;
/// Node IDs are 10 bits.
pub const MAX_NODE_ID: u16 = (1 << 10) - 1;
const SEQ_BITS: u32 = 12;
const NODE_BITS: u32 = 10;
const MAX_SEQ: i64 = (1 << SEQ_BITS) - 1;

/// Mints IDs for one node. Cheap to share: one short critical section per ID.
#[derive(Debug)]
pub struct IdGenerator {
    node: i64,
    state: Mutex<(i64, i64)>, // (last ms, sequence)
}

impl IdGenerator {
    /// # Panics
    /// If `node` exceeds [`MAX_NODE_ID`]: that is a programming error in the lease code.
    pub fn new(node: u16) -> Self {
        assert!(node <= MAX_NODE_ID, "node id {node} out of range");
        IdGenerator {
            node: i64::from(node),
            state: Mutex::new((0, 0)),
        }
    }

    pub fn node(&self) -> u16 {
        self.node as u16
    }

    /// The next ID. Strictly increasing on this node, even if the clock steps back
    /// (we keep counting from the last millisecond we used).
    pub fn next(&self) -> Snowflake {
        let now = crate::now_ms() - EPOCH_MS;
        let mut st = self.state.lock();
        let (last, seq) = *st;
        let (ms, seq) = if now > last {
            (now, 0)
        } else if seq < MAX_SEQ {
            (last, seq + 1)
        } else {
            // Sequence exhausted within one millisecond: borrow the next millisecond.
            (last + 1, 0)
        };
        *st = (ms, seq);
        Snowflake((ms << (NODE_BITS + SEQ_BITS)) | (self.node << SEQ_BITS) | seq)
    }

    /// The next ID, and greater than `floor` (an ID another node minted): if
    /// this node's clock is behind it, this node jumps ahead of it, and
    /// stays ahead, since IDs never go back.
    pub fn next_above(&self, floor: i64) -> Snowflake {
        let id = self.next();
        if id.0 > floor {
            return id;
        }
        let floor_ms = floor >> (NODE_BITS + SEQ_BITS);
        {
            let mut st = self.state.lock();
            if st.0 <= floor_ms {
                // `next` continues from here: the first ID of floor_ms + 1.
                *st = (floor_ms + 1, -1);
            }
        }
        let id = self.next();
        debug_assert!(id.0 > floor);
        id
    }

    /// The smallest ID that could have been minted at `unix_ms` (for time cursors).
    pub fn floor_for(unix_ms: i64) -> Snowflake {
        Snowflake((unix_ms - EPOCH_MS).max(0) << (NODE_BITS + SEQ_BITS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_above_jumps_past_another_nodes_id() {
        let g = IdGenerator::new(1);
        let other = IdGenerator::new(900);
        let theirs = other.next();
        // Same millisecond, lower node: a plain next() could be below theirs.
        let mine = g.next_above(theirs.0);
        assert!(mine > theirs);
        assert!(g.next() > mine, "and stays ahead");
        let far = Snowflake(theirs.0 + (5 << (NODE_BITS + SEQ_BITS)));
        let jumped = g.next_above(far.0);
        assert!(jumped > far && jumped.timestamp_ms() == far.timestamp_ms() + 1);
    }

    #[test]
    fn ids_increase_and_carry_node() {
        let g = IdGenerator::new(7);
        let mut prev = g.next();
        for _ in 0..100_000 {
            let id = g.next();
            assert!(id > prev);
            assert_eq!((id.0 >> SEQ_BITS) & 0x3ff, 7);
            prev = id;
        }
        let age = crate::now_ms() - prev.timestamp_ms();
        assert!(age.abs() < 5_000, "timestamp decodes to now (age {age} ms)");
    }

    #[test]
    fn different_nodes_never_collide() {
        let a = IdGenerator::new(1);
        let b = IdGenerator::new(2);
        let xs: std::collections::HashSet<_> = (0..10_000).map(|_| a.next()).collect();
        assert!((0..10_000).all(|_| !xs.contains(&b.next())));
    }
}
