//! Result cells: the one place that decides what a MySQL cell becomes, and
//! two ways to deliver it — as a protobuf [`api::Value`] (unary results), or
//! written straight into a stream's wire bytes without building one.
//!
//! Streams convert millions of cells; a `Value` per cell costs an allocation
//! for every text cell plus the `Vec` of each row, and profiles showed that
//! work (and freeing it) as a large share of the gateway's CPU per row.
use mysql_async::Value as MyValue;
use prost::bytes::BufMut;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

use super::{CellKind, ValueError, describe_cell};
use crate::api::{self, value::Kind};

/// Field numbers of `sqlgate.v1.Value`'s oneof, as in the proto.
mod field {
    pub const NULL: u32 = 1;
    pub const INT64: u32 = 2;
    pub const UINT64: u32 = 3;
    pub const DOUBLE: u32 = 4;
    pub const FLOAT: u32 = 5;
    pub const STRING: u32 = 7;
    pub const BYTES: u32 = 8;
    pub const DECIMAL: u32 = 9;
    pub const DATE: u32 = 10;
    pub const DATETIME: u32 = 11;
    pub const TIME: u32 = 12;
    pub const JSON: u32 = 13;
}

/// Which text case of `Value` a text cell takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextCase {
    String,
    Decimal,
    Date,
    Datetime,
    Time,
    Json,
}

impl TextCase {
    fn field(self) -> u32 {
        match self {
            TextCase::String => field::STRING,
            TextCase::Decimal => field::DECIMAL,
            TextCase::Date => field::DATE,
            TextCase::Datetime => field::DATETIME,
            TextCase::Time => field::TIME,
            TextCase::Json => field::JSON,
        }
    }

    fn kind(self, text: String) -> Kind {
        match self {
            TextCase::String => Kind::StringValue(text),
            TextCase::Decimal => Kind::DecimalValue(text),
            TextCase::Date => Kind::DateValue(text),
            TextCase::Datetime => Kind::DatetimeValue(text),
            TextCase::Time => Kind::TimeValue(text),
            TextCase::Json => Kind::JsonValue(text),
        }
    }
}

/// A converted cell, borrowing its text from the row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int64(i64),
    Uint64(u64),
    Double(f64),
    Float(f32),
    Text(TextCase, &'a str),
    /// Dates and times, formatted on the stack.
    Formatted(TextCase, Formatted),
    Bytes(&'a [u8]),
}

/// Converts one result cell of a column of this kind. NULL always gives null.
pub fn convert(kind: CellKind, cell: &MyValue) -> Result<Cell<'_>, ValueError> {
    let out_of_range = || kind.error("an integer out of range");
    Ok(match (kind, cell) {
        (_, MyValue::NULL) => Cell::Null,
        (CellKind::Int64, MyValue::Int(v)) => Cell::Int64(*v),
        (CellKind::Int64, MyValue::UInt(v)) => {
            Cell::Int64(i64::try_from(*v).map_err(|_| out_of_range())?)
        }
        (CellKind::Uint64, MyValue::UInt(v)) => Cell::Uint64(*v),
        (CellKind::Uint64, MyValue::Int(v)) => {
            Cell::Uint64(u64::try_from(*v).map_err(|_| out_of_range())?)
        }
        // Integers, floats and doubles of some expressions may arrive as text.
        (CellKind::Int64, MyValue::Bytes(b)) => Cell::Int64(parse_text(kind, b)?),
        (CellKind::Uint64, MyValue::Bytes(b)) => Cell::Uint64(parse_text(kind, b)?),
        (CellKind::Double, MyValue::Double(v)) => Cell::Double(*v),
        (CellKind::Double, MyValue::Float(v)) => Cell::Double(f64::from(*v)),
        (CellKind::Double, MyValue::Bytes(b)) => Cell::Double(parse_text(kind, b)?),
        (CellKind::Float, MyValue::Float(v)) => Cell::Float(*v),
        (CellKind::Float, MyValue::Bytes(b)) => Cell::Float(parse_text(kind, b)?),
        (CellKind::Text, MyValue::Bytes(b)) => Cell::Text(TextCase::String, utf8(kind, b)?),
        (CellKind::Json, MyValue::Bytes(b)) => Cell::Text(TextCase::Json, utf8(kind, b)?),
        (CellKind::Decimal, MyValue::Bytes(b)) => Cell::Text(TextCase::Decimal, utf8(kind, b)?),
        (CellKind::Bytes, MyValue::Bytes(b)) => Cell::Bytes(b),
        (CellKind::Date, MyValue::Date(y, m, d, ..)) => {
            let mut text = Formatted::default();
            text.push_date(*y, *m, *d);
            Cell::Formatted(TextCase::Date, text)
        }
        (CellKind::Datetime { fraction_digits }, MyValue::Date(y, mo, d, h, mi, s, us)) => {
            let mut text = Formatted::default();
            text.push_date(*y, *mo, *d);
            text.push(b' ');
            text.push_clock(u64::from(*h), *mi, *s);
            text.push_fraction(*us, fraction_digits, kind)?;
            Cell::Formatted(TextCase::Datetime, text)
        }
        (CellKind::Time { fraction_digits }, MyValue::Time(negative, days, h, m, s, us)) => {
            let mut text = Formatted::default();
            if *negative {
                text.push(b'-');
            }
            text.push_clock(u64::from(*days) * 24 + u64::from(*h), *m, *s);
            text.push_fraction(*us, fraction_digits, kind)?;
            Cell::Formatted(TextCase::Time, text)
        }
        // Text forms of temporal values (from the text protocol) pass through.
        (CellKind::Date, MyValue::Bytes(b)) => Cell::Text(TextCase::Date, utf8(kind, b)?),
        (CellKind::Datetime { .. }, MyValue::Bytes(b)) => {
            Cell::Text(TextCase::Datetime, utf8(kind, b)?)
        }
        (CellKind::Time { .. }, MyValue::Bytes(b)) => Cell::Text(TextCase::Time, utf8(kind, b)?),
        (kind, cell) => return Err(kind.error(describe_cell(cell))),
    })
}

impl Cell<'_> {
    /// The cell as a protobuf value.
    pub fn to_value(&self) -> api::Value {
        let kind = match self {
            Cell::Null => Kind::NullValue(api::NullValue::NullValue as i32),
            Cell::Int64(v) => Kind::Int64Value(*v),
            Cell::Uint64(v) => Kind::Uint64Value(*v),
            Cell::Double(v) => Kind::DoubleValue(*v),
            Cell::Float(v) => Kind::FloatValue(*v),
            Cell::Text(case, text) => case.kind(text.to_string()),
            Cell::Formatted(case, text) => case.kind(text.as_str().to_string()),
            Cell::Bytes(bytes) => Kind::BytesValue(bytes.to_vec()),
        };
        api::Value { kind: Some(kind) }
    }

    /// Length of the `Value` message this cell encodes to.
    fn message_len(&self) -> usize {
        // Every field number of `Value` is below 16: its key takes one byte.
        1 + match self {
            Cell::Null => 1,
            Cell::Int64(v) => encoded_len_varint(*v as u64),
            Cell::Uint64(v) => encoded_len_varint(*v),
            Cell::Double(_) => 8,
            Cell::Float(_) => 4,
            Cell::Text(_, text) => delimited_len(text.len()),
            Cell::Formatted(_, text) => delimited_len(text.len()),
            Cell::Bytes(bytes) => delimited_len(bytes.len()),
        }
    }

    /// Appends this cell as field `tag` of type `Value`, exactly as prost
    /// would encode [`Cell::to_value`] (a test checks they agree).
    pub fn encode_as_field(&self, tag: u32, buf: &mut impl BufMut) {
        encode_key(tag, WireType::LengthDelimited, buf);
        encode_varint(self.message_len() as u64, buf);
        match self {
            Cell::Null => {
                encode_key(field::NULL, WireType::Varint, buf);
                encode_varint(0, buf);
            }
            Cell::Int64(v) => {
                encode_key(field::INT64, WireType::Varint, buf);
                encode_varint(*v as u64, buf);
            }
            Cell::Uint64(v) => {
                encode_key(field::UINT64, WireType::Varint, buf);
                encode_varint(*v, buf);
            }
            Cell::Double(v) => {
                encode_key(field::DOUBLE, WireType::SixtyFourBit, buf);
                buf.put_f64_le(*v);
            }
            Cell::Float(v) => {
                encode_key(field::FLOAT, WireType::ThirtyTwoBit, buf);
                buf.put_f32_le(*v);
            }
            Cell::Text(case, text) => put_bytes(case.field(), text.as_bytes(), buf),
            Cell::Formatted(case, text) => put_bytes(case.field(), text.as_bytes(), buf),
            Cell::Bytes(bytes) => put_bytes(field::BYTES, bytes, buf),
        }
    }
}

/// Bytes of a length-delimited payload of `len` bytes, its length included.
fn delimited_len(len: usize) -> usize {
    encoded_len_varint(len as u64) + len
}

fn put_bytes(field: u32, bytes: &[u8], buf: &mut impl BufMut) {
    encode_key(field, WireType::LengthDelimited, buf);
    encode_varint(bytes.len() as u64, buf);
    buf.put_slice(bytes);
}

/// Parses number text that some servers send for numeric expressions.
fn parse_text<T: std::str::FromStr>(kind: CellKind, bytes: &[u8]) -> Result<T, ValueError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .ok_or_else(|| kind.error("text that is not a number in range"))
}

fn utf8(kind: CellKind, bytes: &[u8]) -> Result<&str, ValueError> {
    std::str::from_utf8(bytes).map_err(|_| kind.error("invalid UTF-8"))
}

/// A date or time in text, formatted by hand on the stack: `write!` showed
/// up in profiles of large streams, and these fixed forms need nothing from it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Formatted {
    bytes: [u8; Formatted::CAPACITY],
    len: u8,
}

impl Default for Formatted {
    fn default() -> Self {
        Formatted {
            bytes: [0; Formatted::CAPACITY],
            len: 0,
        }
    }
}

impl std::fmt::Debug for Formatted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.as_str().fmt(f)
    }
}

impl Formatted {
    /// The longest form: "-" + 11 hour digits (u32 days × 24) + ":mm:ss.ffffff".
    const CAPACITY: usize = 32;

    /// The text (only ASCII digits and separators are ever pushed).
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).expect("ASCII")
    }

    fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    fn len(&self) -> usize {
        usize::from(self.len)
    }

    fn push(&mut self, byte: u8) {
        self.bytes[usize::from(self.len)] = byte;
        self.len += 1;
    }

    /// Appends `value` in decimal, zero-padded to at least `width` digits.
    fn push_digits(&mut self, value: u64, width: u32) {
        let digits = value.checked_ilog10().unwrap_or(0) + 1;
        let mut divisor = 10u64.pow(digits.max(width) - 1);
        while divisor > 0 {
            self.push(b'0' + (value / divisor % 10) as u8);
            divisor /= 10;
        }
    }

    fn push_date(&mut self, year: u16, month: u8, day: u8) {
        self.push_digits(u64::from(year), 4);
        self.push(b'-');
        self.push_digits(u64::from(month), 2);
        self.push(b'-');
        self.push_digits(u64::from(day), 2);
    }

    /// "hh:mm:ss", with as many hour digits as needed (at least two).
    fn push_clock(&mut self, hours: u64, minutes: u8, seconds: u8) {
        self.push_digits(hours, 2);
        self.push(b':');
        self.push_digits(u64::from(minutes), 2);
        self.push(b':');
        self.push_digits(u64::from(seconds), 2);
    }

    /// ".f" with exactly `digits` digits (nothing for 0), truncating the microseconds.
    fn push_fraction(&mut self, micros: u32, digits: u8, kind: CellKind) -> Result<(), ValueError> {
        if micros > 999_999 {
            return Err(kind.error("more than 999999 microseconds"));
        }
        if digits > 0 {
            let digits = u32::from(digits.min(6));
            self.push(b'.');
            self.push_digits(u64::from(micros / 10u32.pow(6 - digits)), digits);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use prost::{Message, bytes::Bytes};

    use super::*;

    /// Owned material for a cell, since cells borrow their text.
    #[derive(Debug, Clone)]
    enum Source {
        Null,
        Int64(i64),
        Uint64(u64),
        Double(f64),
        Float(f32),
        Text(usize, String),
        Bytes(Vec<u8>),
        Datetime(MyValue, u8),
        Time(MyValue, u8),
    }

    const CASES: [TextCase; 6] = [
        TextCase::String,
        TextCase::Decimal,
        TextCase::Date,
        TextCase::Datetime,
        TextCase::Time,
        TextCase::Json,
    ];

    impl Source {
        fn cell(&self) -> Cell<'_> {
            match self {
                Source::Null => Cell::Null,
                Source::Int64(v) => Cell::Int64(*v),
                Source::Uint64(v) => Cell::Uint64(*v),
                Source::Double(v) => Cell::Double(*v),
                Source::Float(v) => Cell::Float(*v),
                Source::Text(case, text) => Cell::Text(CASES[*case], text),
                Source::Bytes(bytes) => Cell::Bytes(bytes),
                Source::Datetime(value, digits) => convert(
                    CellKind::Datetime {
                        fraction_digits: *digits,
                    },
                    value,
                )
                .expect("a valid datetime"),
                Source::Time(value, digits) => convert(
                    CellKind::Time {
                        fraction_digits: *digits,
                    },
                    value,
                )
                .expect("a valid time"),
            }
        }
    }

    fn source() -> impl Strategy<Value = Source> {
        prop_oneof![
            Just(Source::Null),
            any::<i64>().prop_map(Source::Int64),
            any::<u64>().prop_map(Source::Uint64),
            any::<f64>().prop_map(Source::Double),
            any::<f32>().prop_map(Source::Float),
            (0..CASES.len(), ".{0,200}").prop_map(|(case, text)| Source::Text(case, text)),
            proptest::collection::vec(any::<u8>(), 0..300).prop_map(Source::Bytes),
            (
                0u16..10000,
                1u8..13,
                1u8..29,
                0u8..24,
                0u8..60,
                0u8..60,
                0u32..1_000_000,
                0u8..7
            )
                .prop_map(|(y, mo, d, h, mi, s, us, digits)| {
                    Source::Datetime(MyValue::Date(y, mo, d, h, mi, s, us), digits)
                }),
            (
                any::<bool>(),
                any::<u32>(),
                0u8..24,
                0u8..60,
                0u8..60,
                0u32..1_000_000,
                0u8..7
            )
                .prop_map(|(negative, days, h, m, s, us, digits)| {
                    Source::Time(MyValue::Time(negative, days, h, m, s, us), digits)
                }),
        ]
    }

    proptest! {
        /// The hand encoding is byte for byte what prost makes of the value.
        #[test]
        fn encoding_a_cell_matches_prost(source in source(), tag in 1u32..20) {
            let cell = source.cell();
            let mut by_hand = Vec::new();
            cell.encode_as_field(tag, &mut by_hand);
            let mut by_prost = Vec::new();
            prost::encoding::message::encode(tag, &cell.to_value(), &mut by_prost);
            prop_assert_eq!(by_hand, by_prost);
        }

        /// A batch of rows encoded by hand decodes to the rows of values.
        #[test]
        fn encoded_rows_decode_as_rows(
            rows in proptest::collection::vec(proptest::collection::vec(source(), 0..8), 0..6)
        ) {
            let mut encoded = Vec::new();
            let mut expected = Vec::new();
            for row in &rows {
                let mut cells = Vec::new();
                for source in row {
                    source.cell().encode_as_field(api::ROW_VALUES, &mut cells);
                }
                api::RowBatch::append_encoded_row(&cells, &mut encoded);
                expected.push(api::Row {
                    values: row.iter().map(|source| source.cell().to_value()).collect(),
                });
            }
            let wire = api::RowBatch::from_encoded(Bytes::from(encoded)).encode_to_vec();
            let decoded = api::RowBatch::decode(wire.as_slice()).expect("decodes");
            // NaN is not equal to itself: compare the encodings of the values.
            prop_assert_eq!(&decoded.encode_to_vec(), &wire);
            prop_assert_eq!(decoded.rows.len(), expected.len());
            let mut by_prost = api::RowBatch::default();
            by_prost.rows = expected;
            prop_assert_eq!(&by_prost.encode_to_vec(), &wire);
        }
    }
}
