//! `sqlgate.v1.RowBatch`, written by hand instead of generated (build.rs maps
//! it with `extern_path`) so that the gateway can send rows it encoded
//! straight from MySQL cells. On the wire it is the message of the proto:
//! clients in any language, and this crate's own client, see `rows`.
use prost::{
    DecodeError, Message,
    bytes::{Buf, BufMut, Bytes},
    encoding::{DecodeContext, WireType, encode_key, encode_varint, message, skip_field},
};

use super::Row;

/// Field number of `repeated Row rows`.
const ROWS: u32 = 1;

/// Field number of `Row.values`: the field an encoded row's cells are
/// written as (see `crate::values::cell::Cell::encode_as_field`).
pub const ROW_VALUES: u32 = 1;

/// Rows of an ExecuteStream result (`sqlgate.v1.RowBatch`).
///
/// Equality compares `rows` and the pre-encoded bytes as they are: a batch
/// made with [`RowBatch::from_encoded`] equals the decoded one only after a
/// round trip through the wire.
#[derive(Clone, PartialEq, Default, Debug)]
pub struct RowBatch {
    /// The rows of the batch, in order.
    pub rows: Vec<Row>,
    /// More rows, already in wire form (a sequence of `rows` fields), sent
    /// after `rows`. Set only by the gateway; decoding fills `rows` instead.
    encoded_rows: Bytes,
}

impl RowBatch {
    /// A batch of rows already encoded as consecutive `rows` fields (see
    /// `crate::values::cell::Cell::encode_as_field`).
    pub fn from_encoded(encoded_rows: Bytes) -> RowBatch {
        RowBatch {
            rows: Vec::new(),
            encoded_rows,
        }
    }

    /// Appends one row to `encoded_rows` (for [`RowBatch::from_encoded`]),
    /// given its cells already encoded as consecutive [`ROW_VALUES`] fields.
    pub fn append_encoded_row(cells: &[u8], encoded_rows: &mut impl BufMut) {
        encode_key(ROWS, WireType::LengthDelimited, encoded_rows);
        encode_varint(cells.len() as u64, encoded_rows);
        encoded_rows.put_slice(cells);
    }
}

impl Message for RowBatch {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        message::encode_repeated(ROWS, &self.rows, buf);
        buf.put_slice(&self.encoded_rows);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        if tag == ROWS {
            message::merge_repeated(wire_type, &mut self.rows, buf, ctx).map_err(|mut error| {
                error.push("RowBatch", "rows");
                error
            })
        } else {
            skip_field(wire_type, tag, buf, ctx)
        }
    }

    fn encoded_len(&self) -> usize {
        message::encoded_len_repeated(ROWS, &self.rows) + self.encoded_rows.len()
    }

    fn clear(&mut self) {
        self.rows.clear();
        self.encoded_rows = Bytes::new();
    }
}
