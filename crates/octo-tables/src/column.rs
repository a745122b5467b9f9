//! Columns: how one column of a segment is held in memory while rows are appended, how it is
//! encoded in a segment file, and the decoded form queries scan.
//!
//! Integers are stored frame-of-reference: the smallest value once, then each value's distance
//! from it in 1, 2, 4 or 8 bytes, whichever the column's range needs (the times of an hour fit
//! in 4). Text is stored as a dictionary of the distinct values and one code per row, in the
//! fewest bytes the dictionary needs. In both, the all-ones pattern of the chosen width is the
//! null (no value in this row). The encoded bytes are then compressed with zstd.
//!
//! Sealed dictionaries are sorted, so a code's order is its value's: the groups a segment
//! counts come out in value order, and the groups of many segments are merged like sorted
//! lists instead of being looked up one by one in a hash table.

use rustc_hash::FxHashMap;

use crate::schema::Storage;

/// The null of a decoded integer column.
pub const NULL_INT: i64 = i64::MIN;
/// The null of a decoded text column's codes.
pub const NULL_CODE: u32 = u32::MAX;

/// A decoded column, as queries scan it.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// One integer per row, [`NULL_INT`] where there is none.
    Int(Vec<i64>),
    /// Text.
    Text(TextColumn),
}

/// A dictionary-encoded text column, as decoded from a segment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TextColumn {
    /// The distinct values, sorted; shared, so a query can keep a segment's dictionary to name
    /// its groups after letting go of the codes.
    pub dict: std::sync::Arc<Vec<String>>,
    /// One index into `dict` per row, [`NULL_CODE`] where there is none.
    pub codes: Vec<u32>,
}

/// A borrowed view of a column, the same for open and sealed segments.
#[derive(Debug, Clone, Copy)]
pub enum ColumnView<'a> {
    /// Integers.
    Int(&'a [i64]),
    /// Text.
    Text {
        /// Distinct values.
        dict: &'a [String],
        /// Codes.
        codes: &'a [u32],
    },
}

impl ColumnData {
    /// Its view.
    pub fn view(&self) -> ColumnView<'_> {
        match self {
            ColumnData::Int(v) => ColumnView::Int(v),
            ColumnData::Text(t) => ColumnView::Text { dict: &t.dict, codes: &t.codes },
        }
    }

    /// Rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Int(v) => v.len(),
            ColumnData::Text(t) => t.codes.len(),
        }
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How it is stored.
    pub fn storage(&self) -> Storage {
        match self {
            ColumnData::Int(_) => Storage::Int,
            ColumnData::Text(_) => Storage::Text,
        }
    }

    /// Bytes held in memory, roughly.
    pub fn heap_bytes(&self) -> usize {
        match self {
            ColumnData::Int(v) => v.len() * 8,
            ColumnData::Text(t) => t.codes.len() * 4 + t.dict.iter().map(|s| s.len() + 24).sum::<usize>(),
        }
    }
}

impl ColumnView<'_> {
    /// The value of a row as JSON (`null` when it has none).
    pub fn json(&self, row: usize) -> serde_json::Value {
        match self {
            ColumnView::Int(v) => match v[row] {
                NULL_INT => serde_json::Value::Null,
                x => x.into(),
            },
            ColumnView::Text { dict, codes } => match codes[row] {
                NULL_CODE => serde_json::Value::Null,
                c => dict[c as usize].clone().into(),
            },
        }
    }
}

/// A column being appended to.
#[derive(Debug)]
pub enum ColumnBuilder {
    /// Integers.
    Int(Vec<i64>),
    /// Text, with the index that finds a value's code.
    Text {
        /// Value → code.
        index: FxHashMap<Box<str>, u32>,
        /// The distinct values, in order of first appearance.
        dict: Vec<String>,
        /// One code per row.
        codes: Vec<u32>,
        /// The code of the last value appended: consecutive rows often repeat a value (the same
        /// device, service or level), which is then found without hashing.
        last: u32,
    },
}

impl ColumnBuilder {
    /// An empty column of `rows` nulls.
    pub fn new(storage: Storage, rows: usize) -> ColumnBuilder {
        match storage {
            Storage::Int => ColumnBuilder::Int(vec![NULL_INT; rows]),
            Storage::Text => ColumnBuilder::Text {
                index: FxHashMap::default(),
                dict: Vec::new(),
                codes: vec![NULL_CODE; rows],
                last: 0,
            },
        }
    }

    /// Makes room for `rows` more rows.
    pub fn reserve(&mut self, rows: usize) {
        match self {
            ColumnBuilder::Int(v) => v.reserve(rows),
            ColumnBuilder::Text { codes, .. } => codes.reserve(rows),
        }
    }

    /// Rows so far.
    pub fn len(&self) -> usize {
        match self {
            ColumnBuilder::Int(v) => v.len(),
            ColumnBuilder::Text { codes, .. } => codes.len(),
        }
    }

    /// Whether it has no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends an integer (a text column stores its decimal form).
    pub fn push_int(&mut self, v: i64) {
        match self {
            ColumnBuilder::Int(x) => x.push(v),
            ColumnBuilder::Text { .. } => self.push_text(&v.to_string()),
        }
    }

    /// Appends text (an integer column holds a null for it: the schema decides the type).
    pub fn push_text(&mut self, v: &str) {
        match self {
            ColumnBuilder::Int(x) => x.push(NULL_INT),
            ColumnBuilder::Text { index, dict, codes, last } => {
                if dict.get(*last as usize).is_some_and(|l| l == v) {
                    codes.push(*last);
                    return;
                }
                let code = match index.get(v) {
                    Some(&c) => c,
                    None => {
                        let c = dict.len() as u32;
                        dict.push(v.to_owned());
                        index.insert(v.into(), c);
                        c
                    }
                };
                codes.push(code);
                *last = code;
            }
        }
    }

    /// Appends a null.
    pub fn push_null(&mut self) {
        match self {
            ColumnBuilder::Int(x) => x.push(NULL_INT),
            ColumnBuilder::Text { codes, .. } => codes.push(NULL_CODE),
        }
    }

    /// Its view.
    pub fn view(&self) -> ColumnView<'_> {
        match self {
            ColumnBuilder::Int(v) => ColumnView::Int(v),
            ColumnBuilder::Text { dict, codes, .. } => ColumnView::Text { dict, codes },
        }
    }
}

/// The codes of a dictionary in the order of their values.
pub fn sorted_order(dict: &[String]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..dict.len() as u32).collect();
    order.sort_unstable_by(|&a, &b| dict[a as usize].cmp(&dict[b as usize]));
    order
}

/// A text column with its dictionary sorted and its codes changed to match (how segments are
/// sealed).
pub fn sorted(dict: &[String], codes: &[u32]) -> (Vec<String>, Vec<u32>) {
    let order = sorted_order(dict);
    let mut new_code = vec![0u32; dict.len()];
    for (new, &old) in order.iter().enumerate() {
        new_code[old as usize] = new as u32;
    }
    let sorted_dict = order.iter().map(|&o| dict[o as usize].clone()).collect();
    let codes = codes.iter().map(|&c| if c == NULL_CODE { NULL_CODE } else { new_code[c as usize] }).collect();
    (sorted_dict, codes)
}

/// The width in bytes (1, 2, 4 or 8) that holds `0..=max` with the all-ones null left free.
fn width_for(max: u64) -> u8 {
    if max < 0xff {
        1
    } else if max < 0xffff {
        2
    } else if max < 0xffff_ffff {
        4
    } else {
        8
    }
}

fn put_packed(out: &mut Vec<u8>, width: u8, v: u64) {
    out.extend_from_slice(&v.to_le_bytes()[..width as usize]);
}

fn ones(width: u8) -> u64 {
    if width == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * width as u32)) - 1
    }
}

/// Encodes a column (before compression).
pub fn encode(view: ColumnView<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    match view {
        ColumnView::Int(values) => {
            let present = values.iter().copied().filter(|&v| v != NULL_INT);
            let (min, max) = present.fold((i64::MAX, i64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
            let (base, width) = if min > max { (0, 1) } else { (min, width_for(max.abs_diff(min))) };
            out.push(b'I');
            out.extend_from_slice(&base.to_le_bytes());
            out.push(width);
            out.extend_from_slice(&(values.len() as u64).to_le_bytes());
            let null = ones(width);
            for &v in values {
                put_packed(&mut out, width, if v == NULL_INT { null } else { v.abs_diff(base) });
            }
        }
        ColumnView::Text { dict, codes } => {
            out.push(b'T');
            out.extend_from_slice(&(dict.len() as u64).to_le_bytes());
            for s in dict {
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s.as_bytes());
            }
            let width = width_for(dict.len() as u64);
            out.push(width);
            out.extend_from_slice(&(codes.len() as u64).to_le_bytes());
            let null = ones(width);
            for &c in codes {
                put_packed(&mut out, width, if c == NULL_CODE { null } else { c as u64 });
            }
        }
    }
    out
}

/// Reads what [`encode`] wrote; `None` when the bytes are not a column.
pub fn decode(bytes: &[u8]) -> Option<ColumnData> {
    let mut r = Reader(bytes);
    match r.take(1)?[0] {
        b'I' => {
            let base = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
            let width = r.width()?;
            let n = r.len()?;
            let packed = r.take(n.checked_mul(width as usize)?)?;
            let null = ones(width);
            let values = packed
                .chunks_exact(width as usize)
                .map(|c| match unpack(c) {
                    v if v == null => NULL_INT,
                    v => base.wrapping_add(v as i64),
                })
                .collect();
            Some(ColumnData::Int(values))
        }
        b'T' => {
            let entries = r.len()?;
            let mut dict = Vec::with_capacity(entries.min(bytes.len()));
            for _ in 0..entries {
                let n = u32::from_le_bytes(r.take(4)?.try_into().ok()?) as usize;
                dict.push(std::str::from_utf8(r.take(n)?).ok()?.to_owned());
            }
            let width = r.width()?;
            let n = r.len()?;
            let packed = r.take(n.checked_mul(width as usize)?)?;
            let null = ones(width);
            let mut codes = Vec::with_capacity(n);
            for c in packed.chunks_exact(width as usize) {
                match unpack(c) {
                    v if v == null => codes.push(NULL_CODE),
                    v if (v as usize) < dict.len() => codes.push(v as u32),
                    _ => return None,
                }
            }
            // Queries rely on sorted dictionaries; one that is not (written otherwise) is sorted here.
            if !dict.windows(2).all(|w| w[0] < w[1]) {
                (dict, codes) = sorted(&dict, &codes);
                dict.dedup();
                if dict.len() != entries {
                    return None; // a value twice in one dictionary
                }
            }
            Some(ColumnData::Text(TextColumn { dict: std::sync::Arc::new(dict), codes }))
        }
        _ => None,
    }
}

fn unpack(c: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b[..c.len()].copy_from_slice(c);
    u64::from_le_bytes(b)
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn len(&mut self) -> Option<usize> {
        usize::try_from(u64::from_le_bytes(self.take(8)?.try_into().ok()?)).ok()
    }

    fn width(&mut self) -> Option<u8> {
        match self.take(1)?[0] {
            w @ (1 | 2 | 4 | 8) => Some(w),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text(values: &[Option<&str>]) -> ColumnBuilder {
        let mut b = ColumnBuilder::new(Storage::Text, 0);
        for v in values {
            match v {
                Some(v) => b.push_text(v),
                None => b.push_null(),
            }
        }
        b
    }

    #[test]
    fn text_columns_share_codes_and_keep_nulls() {
        let b = text(&[Some("b"), None, Some("a"), Some("b")]);
        let ColumnView::Text { dict, codes } = b.view() else { panic!() };
        assert_eq!(dict, ["b", "a"]);
        assert_eq!(codes, [0, NULL_CODE, 1, 0]);
        // Decoded dictionaries are sorted, the codes following them.
        let back = decode(&encode(b.view())).unwrap();
        let sorted =
            TextColumn { dict: std::sync::Arc::new(vec!["a".into(), "b".into()]), codes: vec![1, NULL_CODE, 0, 1] };
        assert_eq!(back, ColumnData::Text(sorted));
    }

    #[test]
    fn integer_width_follows_the_range() {
        let times: Vec<i64> = (0..1000).map(|i| 1_764_547_200_000_000 + i * 3_600_000).collect();
        let e = encode(ColumnView::Int(&times));
        // Base, width, count, then 4 bytes a row: an hour of microseconds fits in 32 bits.
        assert_eq!(e.len(), 1 + 8 + 1 + 8 + 4 * 1000);
        assert_eq!(decode(&e), Some(ColumnData::Int(times)));
    }

    #[test]
    fn truncated_or_corrupt_columns_are_refused() {
        let e = encode(text(&[Some("x"), Some("y")]).view());
        for cut in 0..e.len() {
            assert_eq!(decode(&e[..cut]), None, "cut at {cut}");
        }
        let mut bad = e.clone();
        let last = bad.len() - 1;
        bad[last] = 7; // a code past the dictionary
        assert_eq!(decode(&bad), None);
    }

    proptest! {
        #[test]
        fn integers_round_trip(values in proptest::collection::vec(prop_oneof![Just(NULL_INT), any::<i64>(), -300i64..300], 0..200)) {
            let back = decode(&encode(ColumnView::Int(&values)));
            prop_assert_eq!(back, Some(ColumnData::Int(values)));
        }

        #[test]
        fn text_round_trips(values in proptest::collection::vec(proptest::option::of("[a-c]{0,3}"), 0..300)) {
            let b = text(&values.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
            let back = decode(&encode(b.view())).unwrap();
            let ColumnData::Text(t) = back else { panic!() };
            let got: Vec<Option<&str>> = t.codes.iter().map(|&c| (c != NULL_CODE).then(|| t.dict[c as usize].as_str())).collect();
            prop_assert_eq!(got, values.iter().map(|v| v.as_deref()).collect::<Vec<_>>());
        }
    }
}
