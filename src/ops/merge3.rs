//! Three-way merge of text, line by line: what two sides changed against
//! their common base is combined where the changes do not touch each other;
//! where they do (overlapping or adjacent lines, unless both made the same
//! change) it is a conflict, reported with both sides and left for a person.
//! Used by draft merges and offered by the console's conflict page.

use similar::{capture_diff_slices, Algorithm, DiffOp};

/// One side's change: base lines `[start, end)` replaced by `lines`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Hunk<'a> {
    start: usize,
    end: usize,
    lines: Vec<&'a str>,
    /// 0: ours, 1: theirs.
    side: u8,
}

/// Where the two sides' changes touched.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Conflict {
    /// Base lines (1-based, inclusive start; `base_end` exclusive) involved.
    pub base_start: usize,
    pub base_end: usize,
    pub base: String,
    pub ours: String,
    pub theirs: String,
}

/// The outcome of a merge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Merged {
    /// The combined text.
    Clean(String),
    /// The changes touched: the text with git-style conflict markers, and
    /// each conflict.
    Conflicts(String, Vec<Conflict>),
}

/// Lines of `s`, each with its line break (the last may have none).
fn lines(s: &str) -> Vec<&str> {
    s.split_inclusive('\n').collect()
}

fn hunks<'a>(base: &[&'a str], other: &[&'a str], side: u8) -> Vec<Hunk<'a>> {
    capture_diff_slices(Algorithm::Myers, base, other)
        .into_iter()
        .filter_map(|op| match op {
            DiffOp::Equal { .. } => None,
            DiffOp::Delete {
                old_index, old_len, ..
            } => Some(Hunk {
                start: old_index,
                end: old_index + old_len,
                lines: Vec::new(),
                side,
            }),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => Some(Hunk {
                start: old_index,
                end: old_index,
                lines: other[new_index..new_index + new_len].to_vec(),
                side,
            }),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => Some(Hunk {
                start: old_index,
                end: old_index + old_len,
                lines: other[new_index..new_index + new_len].to_vec(),
                side,
            }),
        })
        .collect()
}

/// What one side makes of base lines `[start, end)`, given its hunks there.
fn side_text<'a>(base: &[&'a str], start: usize, end: usize, hs: &[&Hunk<'a>]) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut pos = start;
    for h in hs {
        out.extend_from_slice(&base[pos..h.start]);
        out.extend_from_slice(&h.lines);
        pos = h.end;
    }
    out.extend_from_slice(&base[pos..end]);
    out
}

/// Merges `ours` and `theirs`, both derived from `base`.
pub fn merge3(base: &str, ours: &str, theirs: &str) -> Merged {
    if ours == theirs {
        return Merged::Clean(ours.to_string());
    }
    let b = lines(base);
    let (o, t) = (lines(ours), lines(theirs));
    let mut all = hunks(&b, &o, 0);
    all.extend(hunks(&b, &t, 1));
    all.sort_by_key(|h| (h.start, h.end, h.side));
    let mut out = String::new();
    let mut conflicts = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while i < all.len() {
        // A group: hunks that touch one another (overlap, or meet at a line).
        let (start, mut end) = (all[i].start, all[i].end);
        let mut j = i + 1;
        while j < all.len() && all[j].start <= end {
            end = end.max(all[j].end);
            j += 1;
        }
        let group = &all[i..j];
        out.push_str(&b[pos..start].concat());
        let mine: Vec<&Hunk> = group.iter().filter(|h| h.side == 0).collect();
        let yours: Vec<&Hunk> = group.iter().filter(|h| h.side == 1).collect();
        let o_text = side_text(&b, start, end, &mine);
        let t_text = side_text(&b, start, end, &yours);
        if mine.is_empty() || yours.is_empty() || o_text == t_text {
            let text = if mine.is_empty() { &t_text } else { &o_text };
            out.push_str(&text.concat());
        } else {
            let c = Conflict {
                base_start: start + 1,
                base_end: end + 1,
                base: b[start..end].concat(),
                ours: o_text.concat(),
                theirs: t_text.concat(),
            };
            let nl = |s: &str| {
                if s.is_empty() || s.ends_with('\n') {
                    ""
                } else {
                    "\n"
                }
            };
            out.push_str("<<<<<<< ours\n");
            out.push_str(&c.ours);
            out.push_str(nl(&c.ours));
            out.push_str("=======\n");
            out.push_str(&c.theirs);
            out.push_str(nl(&c.theirs));
            out.push_str(">>>>>>> theirs\n");
            conflicts.push(c);
        }
        pos = end;
        i = j;
    }
    out.push_str(&b[pos..].concat());
    if conflicts.is_empty() {
        Merged::Clean(out)
    } else {
        Merged::Conflicts(out, conflicts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "a\nb\nc\nd\ne\nf\ng\n";

    #[test]
    fn changes_apart_merge_and_touching_ones_conflict() {
        // Ours edits line 2, theirs line 6: both kept.
        let ours = "a\nB\nc\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\nd\ne\nF\ng\n";
        assert_eq!(
            merge3(BASE, ours, theirs),
            Merged::Clean("a\nB\nc\nd\ne\nF\ng\n".into())
        );
        // One side only, or both the same.
        assert_eq!(merge3(BASE, ours, BASE), Merged::Clean(ours.into()));
        assert_eq!(merge3(BASE, BASE, theirs), Merged::Clean(theirs.into()));
        assert_eq!(merge3(BASE, ours, ours), Merged::Clean(ours.into()));
        // Inserts at both ends and a delete in the middle.
        let ours = "top\na\nb\nc\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\ne\nf\ng\nbottom\n";
        assert_eq!(
            merge3(BASE, ours, theirs),
            Merged::Clean("top\na\nb\nc\ne\nf\ng\nbottom\n".into())
        );
        // The same line changed two ways: a conflict with both sides.
        let ours = "a\nb\nC1\nd\ne\nf\ng\n";
        let theirs = "a\nb\nC2\nd\ne\nf\ng\n";
        match merge3(BASE, ours, theirs) {
            Merged::Conflicts(text, cs) => {
                assert_eq!(cs.len(), 1);
                assert_eq!(
                    (cs[0].ours.as_str(), cs[0].theirs.as_str()),
                    ("C1\n", "C2\n")
                );
                assert_eq!(cs[0].base, "c\n");
                assert!(text.contains("<<<<<<< ours\nC1\n=======\nC2\n>>>>>>> theirs\n"));
                assert!(text.starts_with("a\nb\n") && text.ends_with("d\ne\nf\ng\n"));
            }
            m => panic!("expected a conflict, got {m:?}"),
        }
        // Adjacent lines count as touching.
        let ours = "a\nb\nC\nd\ne\nf\ng\n";
        let theirs = "a\nb\nc\nD\ne\nf\ng\n";
        assert!(matches!(merge3(BASE, ours, theirs), Merged::Conflicts(..)));
        // Both inserting at the same place differently.
        let ours = "a\nx\nb\nc\nd\ne\nf\ng\n";
        let theirs = "a\ny\nb\nc\nd\ne\nf\ng\n";
        assert!(matches!(merge3(BASE, ours, theirs), Merged::Conflicts(..)));
    }

    #[test]
    fn files_without_a_final_newline_and_empty_bases() {
        assert_eq!(merge3("", "mine\n", ""), Merged::Clean("mine\n".into()));
        assert!(matches!(
            merge3("", "mine", "theirs"),
            Merged::Conflicts(..)
        ));
        // A last line without a newline that one side extends.
        assert_eq!(
            merge3("a\nb\nc", "A\nb\nc", "a\nb\nc\nd"),
            Merged::Clean("A\nb\nc\nd".into())
        );
    }
}
