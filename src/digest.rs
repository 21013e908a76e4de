//! The two digests of a version's content, computed in one pass: blake3 (the
//! integrity hash memfs checks with `fsck` and chains history with) and
//! SHA-256 (the API's `content_sha256`, what clients compute locally for
//! preconditions). Both are kept per version at commit, so reading a digest
//! never re-reads content.

use sha2::Digest;

/// Hashes content with both digests at once. Cloneable, so the state at the
/// end of a version can be cached and an append hashes only its new bytes.
#[derive(Clone, Default)]
pub struct ContentHasher {
    b3: blake3::Hasher,
    sha: sha2::Sha256,
}

/// The digests of one content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Digests {
    pub blake3: blake3::Hash,
    pub sha256: [u8; 32],
}

impl ContentHasher {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn update(&mut self, data: &[u8]) {
        self.b3.update(data);
        self.sha.update(data);
    }

    pub fn finalize(&self) -> Digests {
        Digests {
            blake3: self.b3.finalize(),
            sha256: self.sha.clone().finalize().into(),
        }
    }
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(data).into()
}

/// Lowercase hex of a digest (what the API shows).
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(b"0123456789abcdef"[usize::from(x >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(x & 15)]));
    }
    s
}

/// Parses 64 lowercase hex characters (a `content_sha256` from a client).
pub fn parse_sha256(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let nib = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        out[i] = nib(pair[0])? << 4 | nib(pair[1])?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incremental_digests_equal_one_shot_ones() {
        let mut h = ContentHasher::new();
        h.update(b"hello ");
        let mid = h.clone();
        h.update(b"world");
        let d = h.finalize();
        assert_eq!(d.blake3, blake3::hash(b"hello world"));
        assert_eq!(d.sha256, sha256(b"hello world"));
        assert_eq!(
            hex(&sha256(b"")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut m = mid;
        m.update(b"world");
        assert_eq!(m.finalize(), d);
        assert_eq!(parse_sha256(&hex(&d.sha256)), Some(d.sha256));
        assert_eq!(parse_sha256(&hex(&d.sha256).to_uppercase()), None);
        assert_eq!(parse_sha256("abc"), None);
    }
}
