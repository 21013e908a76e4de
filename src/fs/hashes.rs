//! A cache of blake3 states at the end of recent versions, so that the content hash
//! of an appended version costs the appended bytes, not a re-read of the whole file.

use crate::ids::VersionId;
use std::collections::HashMap;
use std::sync::Mutex;

pub(super) struct HashCache {
    cap: usize,
    map: Mutex<HashMap<VersionId, (u64, blake3::Hasher)>>,
}

impl HashCache {
    pub(super) fn new(cap: usize) -> Self {
        HashCache {
            cap,
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The hasher state after the first `len` bytes of `version`, if cached.
    pub(super) fn get(&self, version: Option<VersionId>, len: u64) -> Option<blake3::Hasher> {
        if len == 0 {
            return Some(blake3::Hasher::new());
        }
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        match map.get(&version?) {
            Some((size, h)) if *size == len => Some(h.clone()),
            _ => None,
        }
    }

    pub(super) fn put(&self, version: VersionId, size: u64, h: blake3::Hasher) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.cap {
            // Coarse eviction keeps this O(1) amortized; a miss only costs a re-read.
            map.clear();
        }
        map.insert(version, (size, h));
    }
}
