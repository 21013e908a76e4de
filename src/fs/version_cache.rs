//! Caches keyed by version. Versions never change once committed, so what was
//! derived from one (its extent list, the blake3 state at its end) stays true;
//! only a batch that failed to commit can take version ids back, and then every
//! cache empties itself (see [`Db::rollbacks`]).

use crate::ids::VersionId;
use crate::store::{Db, Extents};
use std::collections::HashMap;
use std::sync::Mutex;

pub(super) struct VersionCache<T> {
    cap: usize,
    inner: Mutex<(u64, HashMap<VersionId, T>)>,
}

impl<T: Clone> VersionCache<T> {
    pub(super) fn new(cap: usize) -> Self {
        VersionCache {
            cap,
            inner: Mutex::new((0, HashMap::new())),
        }
    }

    fn with<R>(&self, db: &Db, f: impl FnOnce(&mut HashMap<VersionId, T>) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let epoch = db.rollbacks();
        if g.0 != epoch {
            g.0 = epoch;
            g.1.clear();
        }
        f(&mut g.1)
    }

    pub(super) fn get(&self, db: &Db, version: VersionId) -> Option<T> {
        self.with(db, |m| m.get(&version).cloned())
    }

    pub(super) fn put(&self, db: &Db, version: VersionId, value: T) {
        let cap = self.cap;
        self.with(db, |m| {
            if m.len() >= cap {
                // Coarse eviction keeps this O(1) amortized; a miss only costs a re-read.
                m.clear();
            }
            m.insert(version, value);
        })
    }
}

/// blake3 states at the end of recent versions, so that the content hash of an
/// appended version costs the appended bytes, not a re-read of the whole file.
pub(super) type HashCache = VersionCache<(u64, blake3::Hasher)>;

impl HashCache {
    /// The hasher state after the first `len` bytes of `version`, if cached.
    pub(super) fn hasher(
        &self,
        db: &Db,
        version: Option<VersionId>,
        len: u64,
    ) -> Option<blake3::Hasher> {
        if len == 0 {
            return Some(blake3::Hasher::new());
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
