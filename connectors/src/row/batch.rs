//! [`RowBatch`]: the one shape rows travel in, from the rules' output through a sink's buffer
//! to its destination.

/// Rows back to back in one buffer, each a JSON object's text, with where each ends: two
/// allocations per batch rather than one per row. The rules write their output rows into one,
/// a sink's buffer appends one and reads one back, and the delivery driver turns one into
/// [`crate::row::Row`]s for the destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowBatch {
    /// The rows' bytes, back to back.
    data: Vec<u8>,
    /// Where each row ends in `data`.
    ends: Vec<usize>,
}

impl RowBatch {
    /// An empty batch with room for `rows` rows of `bytes` bytes in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> RowBatch {
        RowBatch { data: Vec::with_capacity(bytes), ends: Vec::with_capacity(rows) }
    }

    /// Adds one row, written by `write` at the end of the batch's bytes: rows are encoded in
    /// place rather than built apart and copied in.
    pub fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        write(&mut self.data);
        self.ends.push(self.data.len());
    }

    /// Adds one row.
    pub fn push(&mut self, row: &[u8]) {
        self.push_with(|data| data.extend_from_slice(row));
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the batch has no row.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of all the rows.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Row `i`, if the batch has it.
    pub fn get(&self, i: usize) -> Option<&[u8]> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.data.get(start..end)
    }

    /// The rows, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u8]> + '_ {
        let start = |i: usize| if i == 0 { 0 } else { self.ends[i - 1] };
        self.ends.iter().enumerate().map(move |(i, &end)| &self.data[start(i)..end])
    }

    /// Makes room for `bytes` more bytes and `rows` more rows.
    pub fn reserve(&mut self, rows: usize, bytes: usize) {
        self.ends.reserve(rows);
        self.data.reserve(bytes);
    }

    /// The batch's bytes, for a reader that appends a row's bytes itself and then closes it
    /// with [`RowBatch::end_row`].
    pub(crate) fn data_mut(&mut self) -> &mut Vec<u8> {
        &mut self.data
    }

    /// Ends the row whose bytes were appended through [`RowBatch::data_mut`].
    pub(crate) fn end_row(&mut self) {
        self.ends.push(self.data.len());
    }

    /// The bytes and the row ends, taken apart.
    pub(crate) fn into_parts(self) -> (Vec<u8>, Vec<usize>) {
        (self.data, self.ends)
    }
}

impl<R: AsRef<[u8]>> FromIterator<R> for RowBatch {
    fn from_iter<I: IntoIterator<Item = R>>(rows: I) -> RowBatch {
        let mut batch = RowBatch::default();
        for row in rows {
            batch.push(row.as_ref());
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_come_back_as_they_went_in() {
        let mut batch: RowBatch = [&b"{\"a\":1}"[..], b"{}"].into_iter().collect();
        batch.push_with(|out| out.extend_from_slice(b"{\"b\":2}"));
        batch.push(b"");
        assert_eq!(batch.len(), 4);
        assert_eq!(batch.bytes(), 16);
        let rows: Vec<&[u8]> = batch.iter().collect();
        assert_eq!(rows, [&b"{\"a\":1}"[..], b"{}", b"{\"b\":2}", b""]);
        assert_eq!(batch.get(2), Some(&b"{\"b\":2}"[..]));
        assert_eq!(batch.get(4), None);
        assert!(RowBatch::default().is_empty());
    }
}
