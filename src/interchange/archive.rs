//! Tar members as the format writes them: POSIX ustar headers, with a pax
//! extended header (`path`, `linkpath`) when a name does not fit ustar's fields,
//! and a reader that hashes what it reads.

use std::io::{self, Read, Write};
use tar::{EntryType, Header};

/// Ownership, permissions and time of one member.
#[derive(Debug, Clone, Copy)]
pub struct MemberMeta {
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Seconds since the epoch (negative times are written as 0).
    pub mtime: i64,
}

impl MemberMeta {
    /// For the metadata members: rw-r--r--, root, at `mtime`.
    pub fn plain(mtime: i64) -> MemberMeta {
        MemberMeta {
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime,
        }
    }
}

/// Writes the members of an archive.
pub struct Writer<W: Write> {
    b: tar::Builder<W>,
}

/// One pax record: "<len> <key>=<value>\n", where len counts the whole record.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3;
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

impl<W: Write> Writer<W> {
    pub fn new(out: W) -> Writer<W> {
        let mut b = tar::Builder::new(out);
        b.mode(tar::HeaderMode::Complete);
        Writer { b }
    }

    fn header(kind: EntryType, size: u64, m: &MemberMeta) -> Header {
        let mut h = Header::new_ustar();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(m.mode);
        h.set_uid(m.uid);
        h.set_gid(m.gid);
        h.set_mtime(u64::try_from(m.mtime).unwrap_or(0));
        h
    }

    /// Sets the name (and link target) in `h`, writing a pax header first when
    /// either does not fit ustar.
    fn names(&mut self, h: &mut Header, name: &str, link: Option<&str>) -> io::Result<()> {
        let mut pax = Vec::new();
        if h.set_path(name).is_err() {
            pax.extend(pax_record("path", name.as_bytes()));
            h.set_path("@PaxLongName")?;
        }
        if let Some(l) = link {
            if h.set_link_name_literal(l).is_err() {
                pax.extend(pax_record("linkpath", l.as_bytes()));
                h.set_link_name_literal("@PaxLongLink")?;
            }
        }
        if !pax.is_empty() {
            let mut x = Header::new_ustar();
            x.set_entry_type(EntryType::XHeader);
            x.set_size(pax.len() as u64);
            x.set_mode(0o644);
            x.set_path("PaxHeader")?;
            x.set_cksum();
            self.b.append(&x, pax.as_slice())?;
        }
        h.set_cksum();
        Ok(())
    }

    /// A regular file member of `size` bytes read from `data`.
    pub fn file(
        &mut self,
        name: &str,
        size: u64,
        m: &MemberMeta,
        data: impl Read,
    ) -> io::Result<()> {
        let mut h = Self::header(EntryType::Regular, size, m);
        self.names(&mut h, name, None)?;
        self.b.append(&h, data)
    }

    /// A directory member (`name` ends in '/').
    pub fn dir(&mut self, name: &str, m: &MemberMeta) -> io::Result<()> {
        let mut h = Self::header(EntryType::Directory, 0, m);
        self.names(&mut h, name, None)?;
        self.b.append(&h, io::empty())
    }

    pub fn symlink(&mut self, name: &str, target: &str, m: &MemberMeta) -> io::Result<()> {
        let mut h = Self::header(EntryType::Symlink, 0, m);
        self.names(&mut h, name, Some(target))?;
        self.b.append(&h, io::empty())
    }

    /// A hard link to an earlier member: the same content, stored once.
    pub fn hard_link(&mut self, name: &str, to: &str, m: &MemberMeta) -> io::Result<()> {
        let mut h = Self::header(EntryType::Link, 0, m);
        self.names(&mut h, name, Some(to))?;
        self.b.append(&h, io::empty())
    }

    /// Writes the end-of-archive blocks and returns the output.
    pub fn finish(self) -> io::Result<W> {
        self.b.into_inner()
    }
}

/// Passes bytes through, hashing and counting them.
pub struct HashingReader<R> {
    inner: R,
    hasher: blake3::Hasher,
    count: u64,
}

impl<R: Read> HashingReader<R> {
    pub fn new(inner: R) -> Self {
        HashingReader {
            inner,
            hasher: blake3::Hasher::new(),
            count: 0,
        }
    }

    /// Bytes read so far and their blake3 (hex).
    pub fn result(&self) -> (u64, String) {
        (self.count, self.hasher.finalize().to_hex().to_string())
    }
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        let r = pax_record("path", b"abc");
        assert_eq!(r, b"12 path=abc\n");
        let long = vec![b'x'; 95];
        let r = pax_record("path", &long);
        let text = String::from_utf8(r.clone()).unwrap();
        let len: usize = text.split(' ').next().unwrap().parse().unwrap();
        assert_eq!(len, r.len());
    }

    #[test]
    fn long_names_round_trip_through_pax() {
        let long = format!("head/{}/{}", "d".repeat(200), "f".repeat(200));
        let target = format!("{}/x", "t".repeat(150));
        let mut w = Writer::new(Vec::new());
        let m = MemberMeta::plain(1);
        w.file(&long, 3, &m, &b"abc"[..]).unwrap();
        w.symlink("head/l", &target, &m).unwrap();
        let data = w.finish().unwrap();
        let mut ar = tar::Archive::new(data.as_slice());
        let mut it = ar.entries().unwrap();
        let e = it.next().unwrap().unwrap();
        assert_eq!(e.path_bytes().as_ref(), long.as_bytes());
        let e = it.next().unwrap().unwrap();
        assert_eq!(e.link_name_bytes().unwrap().as_ref(), target.as_bytes());
        assert!(it.next().is_none());
    }
}
