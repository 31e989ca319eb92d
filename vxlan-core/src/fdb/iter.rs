//! Iteration for dumps.

use crate::sync::Ordering;
use crate::wire::MacAddr;

use super::table::Fdb;
use super::word::{decode_entry, ends_probe, same_gen, split_key, Cold, Entry};

/// One live entry as a dump sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Record {
    /// Bridge domain.
    pub bd: u16,
    /// The MAC.
    pub mac: MacAddr,
    /// The entry.
    pub entry: Entry,
    /// Its MAC-mobility sequence number.
    pub seq: u32,
}

/// Iterator over the live entries, in slot order. Each record is one
/// consistent snapshot of its entry; the dump as a whole is not a snapshot
/// of the table (entries inserted or removed during the walk may or may not
/// appear).
#[derive(Debug)]
pub struct Iter<'f, 'a> {
    fdb: &'f Fdb<'a>,
    next: usize,
}

impl Iterator for Iter<'_, '_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        while self.next < self.fdb.slots.len() {
            let i = self.next;
            self.next += 1;
            let s = self.fdb.slot(i);
            // Acquire: pairs with the inserter's key CAS.
            let k = s.key.load(Ordering::Acquire);
            if ends_probe(k) {
                continue;
            }
            // Acquire: pairs with the Release that published the value (and
            // the cold word with it).
            let v = s.value.load(Ordering::Acquire);
            // Another generation: the slot was trimmed (and maybe reused)
            // after we read `k`; see `read_slot`.
            if !same_gen(v, k) {
                continue;
            }
            // Relaxed: the cold word was published with `v`. (A move racing
            // the dump may update it right after; the record's sequence
            // number is then that move's.)
            let cold = Cold::unpack(self.fdb.cold(i).word.load(Ordering::Relaxed));
            if let Some(entry) = decode_entry(v) {
                let (bd, mac) = split_key(k);
                return Some(Record {
                    bd,
                    mac,
                    entry,
                    seq: cold.seq,
                });
            }
        }
        None
    }
}

impl<'a> Fdb<'a> {
    /// Iterates over the live entries (for dumps).
    pub fn iter(&self) -> Iter<'_, 'a> {
        Iter { fdb: self, next: 0 }
    }
}
