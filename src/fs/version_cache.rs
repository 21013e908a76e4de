//! Caches keyed by version. Versions never change once committed, so what was
//! derived from one (its extent list, the blake3 state at its end) stays true;
//! only a batch that failed to commit can take version ids back, and then every
//! cache empties itself (see [`Db::rollbacks`]).

use crate::digest::ContentHasher;
use crate::ids::VersionId;
use crate::store::{Db, Extents};
use std::collections::HashMap;
use std::sync::Mutex;

/// A map from version to `T`, bounded by the total weight of its values (a
/// value's weight approximates its memory: 1 for a hasher, the extent count
/// for an extent list).
pub(super) struct VersionCache<T> {
    /// For metrics: "extents" or "hashes".
    name: &'static str,
    cap: usize,
    weigh: fn(&T) -> usize,
    inner: Mutex<Inner<T>>,
}

struct Inner<T> {
    epoch: u64,
    weight: usize,
    map: HashMap<VersionId, T>,
}

impl<T: Clone> VersionCache<T> {
    pub(super) fn new(name: &'static str, cap: usize, weigh: fn(&T) -> usize) -> Self {
        VersionCache {
            name,
            cap,
            weigh,
            inner: Mutex::new(Inner {
                epoch: 0,
                weight: 0,
                map: HashMap::new(),
            }),
        }
    }

    fn with<R>(&self, db: &Db, f: impl FnOnce(&mut Inner<T>) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let epoch = db.rollbacks();
        if g.epoch != epoch {
            g.epoch = epoch;
            g.weight = 0;
            g.map.clear();
        }
        f(&mut g)
    }

    pub(super) fn get(&self, db: &Db, version: VersionId) -> Option<T> {
        let found = self.with(db, |c| c.map.get(&version).cloned());
        crate::metrics::cache_lookup(self.name, found.is_some());
        found
    }

    pub(super) fn put(&self, db: &Db, version: VersionId, value: T) {
        let (cap, w) = (self.cap, (self.weigh)(&value).max(1));
        if w > cap {
            return;
        }
        self.with(db, |c| {
            if c.weight + w > cap {
                // Coarse eviction keeps this O(1) amortized; a miss only costs a re-read.
                c.map.clear();
                c.weight = 0;
            }
            if let Some(old) = c.map.insert(version, value) {
                c.weight -= (self.weigh)(&old).max(1).min(c.weight);
            }
            c.weight += w;
        })
    }
}

/// blake3 states at the end of recent versions, so that the content hash of an
/// appended version costs the appended bytes, not a re-read of the whole file.
pub(super) type HashCache = VersionCache<(u64, ContentHasher)>;

impl HashCache {
    /// The hasher state after the first `len` bytes of `version`, if cached.
    pub(super) fn hasher(
        &self,
        db: &Db,
        version: Option<VersionId>,
        len: u64,
    ) -> Option<ContentHasher> {
        if len == 0 {
            return Some(ContentHasher::new());
        }
        match self.get(db, version?) {
            Some((size, h)) if size == len => Some(h),
            _ => None,
        }
    }
}

/// Extent lists of recent versions: opening a file, or appending to it, would
/// otherwise decode its delta chain from the database each time.
pub(super) type ExtentCache = VersionCache<Extents>;
