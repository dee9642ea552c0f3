//! A fixed bitset of rule indexes, on the stack (at most `MAX_RULES`).

use super::MAX_RULES;

const WORDS: usize = MAX_RULES.div_ceil(64);

#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Bits([u64; WORDS]);

impl Bits {
    pub fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    pub fn has(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    pub fn and(self, o: Bits) -> Bits {
        let mut r = self;
        for (a, b) in r.0.iter_mut().zip(o.0) {
            *a &= b;
        }
        r
    }
    pub fn and_not(self, o: Bits) -> Bits {
        let mut r = self;
        for (a, b) in r.0.iter_mut().zip(o.0) {
            *a &= !b;
        }
        r
    }
    pub fn any(&self) -> bool {
        self.0.iter().any(|w| *w != 0)
    }
    /// Set indexes in increasing order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        self.0.into_iter().enumerate().flat_map(|(w, mut word)| {
            std::iter::from_fn(move || {
                if word == 0 {
                    return None;
                }
                let b = word.trailing_zeros() as usize;
                word &= word - 1;
                Some(w * 64 + b)
            })
        })
    }
}
