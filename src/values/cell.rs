//! Result cells: the one place that decides what a MySQL cell becomes, and
//! two ways to deliver it — as a protobuf [`api::Value`] (unary results), or
//! written straight into a stream's wire bytes without building one.
//!
//! Streams convert millions of cells; a `Value` per cell costs an allocation
//! for every text cell plus the `Vec` of each row, and profiles showed that
//! work (and freeing it) as a large share of the gateway's CPU per row.
//!
//! Which case a cell takes follows only from its column's type
//! ([`CellKind::for_column`]), never from the value.
use mysql_async::{
    Column, Value as MyValue,
    consts::{ColumnFlags, ColumnType},
};
use prost::bytes::BufMut;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint};

use super::ValueError;
use crate::api::{self, value::Kind};

/// Character set number of binary strings (`binary`, collation 63).
pub(super) const BINARY_CHARSET: u16 = 63;

/// How cells of one result column are converted; computed once per column
/// from its metadata (never from the values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CellKind {
    /// Signed integers, UNSIGNED integers narrower than BIGINT, YEAR → int64_value.
    Int64,
    /// BIGINT UNSIGNED → uint64_value.
    Uint64,
    /// DOUBLE → double_value.
    Double,
    /// FLOAT → float_value.
    Float,
    /// Text strings (non-binary character set), ENUM, SET → string_value.
    Text,
    /// Binary strings and BLOBs (character set 63), BIT, GEOMETRY → bytes_value.
    Bytes,
    /// DECIMAL → decimal_value, the server's exact text.
    Decimal,
    /// DATE → date_value.
    Date,
    /// DATETIME and TIMESTAMP → datetime_value.
    Datetime {
        /// Digits after the seconds' point: the column's decimals (0-6).
        fraction_digits: u8,
    },
    /// TIME → time_value.
    Time {
        /// Digits after the seconds' point: the column's decimals (0-6).
        fraction_digits: u8,
    },
    /// MySQL's JSON type → json_value.
    Json,
}

impl CellKind {
    /// The case that cells of this column take.
    pub(crate) fn for_column(column: &Column) -> CellKind {
        let flags = column.flags();
        let unsigned = flags.contains(ColumnFlags::UNSIGNED_FLAG);
        // Servers send 31 (MySQL) or 39 (MariaDB) for "not fixed"; 6 is the most TIME has.
        let fraction_digits = column.decimals().min(6);
        use ColumnType::*;
        match column.column_type() {
            MYSQL_TYPE_LONGLONG if unsigned => CellKind::Uint64,
            MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
            | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => CellKind::Int64,
            MYSQL_TYPE_FLOAT => CellKind::Float,
            MYSQL_TYPE_DOUBLE => CellKind::Double,
            MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => CellKind::Decimal,
            MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => CellKind::Date,
            MYSQL_TYPE_DATETIME
            | MYSQL_TYPE_DATETIME2
            | MYSQL_TYPE_TIMESTAMP
            | MYSQL_TYPE_TIMESTAMP2 => CellKind::Datetime { fraction_digits },
            MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => CellKind::Time { fraction_digits },
            MYSQL_TYPE_JSON => CellKind::Json,
            MYSQL_TYPE_BIT | MYSQL_TYPE_GEOMETRY | MYSQL_TYPE_VECTOR => CellKind::Bytes,
            MYSQL_TYPE_ENUM | MYSQL_TYPE_SET => CellKind::Text,
            // ENUM and SET columns arrive as MYSQL_TYPE_STRING with a flag.
            _ if flags.intersects(ColumnFlags::ENUM_FLAG | ColumnFlags::SET_FLAG) => CellKind::Text,
            _ if column.character_set() == BINARY_CHARSET => CellKind::Bytes,
            _ => CellKind::Text,
        }
    }

    /// The name used in error messages.
    fn name(self) -> &'static str {
        match self {
            CellKind::Int64 => "signed integer",
            CellKind::Uint64 => "BIGINT UNSIGNED",
            CellKind::Double => "DOUBLE",
            CellKind::Float => "FLOAT",
            CellKind::Text => "text",
            CellKind::Bytes => "binary",
            CellKind::Decimal => "DECIMAL",
            CellKind::Date => "DATE",
            CellKind::Datetime { .. } => "DATETIME",
            CellKind::Time { .. } => "TIME",
            CellKind::Json => "JSON",
        }
    }

    fn error(self, problem: &'static str) -> ValueError {
        ValueError::BadCell {
            column: self.name(),
            problem,
        }
    }
}

/// Converts one result cell of a column of this kind. NULL always gives null_value.
pub(crate) fn cell_to_value(kind: CellKind, cell: MyValue) -> Result<api::Value, ValueError> {
    Ok(convert(kind, &cell)?.to_value())
}

/// Rough encoded size of a value in bytes (tags and lengths included), for
/// result caps and stream batches. Cheap: nothing is encoded.
pub(crate) fn approximate_size(value: &api::Value) -> usize {
    2 + match &value.kind {
        None | Some(Kind::NullValue(_)) | Some(Kind::BoolValue(_)) => 1,
        Some(Kind::Int64Value(_)) | Some(Kind::Uint64Value(_)) | Some(Kind::DoubleValue(_)) => 8,
        Some(Kind::FloatValue(_)) => 4,
        Some(Kind::StringValue(s))
        | Some(Kind::DecimalValue(s))
        | Some(Kind::DateValue(s))
        | Some(Kind::DatetimeValue(s))
        | Some(Kind::TimeValue(s))
        | Some(Kind::JsonValue(s)) => s.len() + 2,
        Some(Kind::BytesValue(b)) => b.len() + 2,
    }
}

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
pub(crate) enum TextCase {
    /// string_value.
    String,
    /// decimal_value.
    Decimal,
    /// date_value.
    Date,
    /// datetime_value.
    Datetime,
    /// time_value.
    Time,
    /// json_value.
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
pub(crate) enum Cell<'a> {
    /// null_value.
    Null,
    /// int64_value.
    Int64(i64),
    /// uint64_value.
    Uint64(u64),
    /// double_value.
    Double(f64),
    /// float_value.
    Float(f32),
    /// Text from the row, in one of the text cases.
    Text(TextCase, &'a str),
    /// Dates and times, formatted on the stack.
    Formatted(TextCase, Formatted),
    /// bytes_value.
    Bytes(&'a [u8]),
}

/// Converts one result cell of a column of this kind. NULL always gives null.
pub(crate) fn convert(kind: CellKind, cell: &MyValue) -> Result<Cell<'_>, ValueError> {
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
    pub(super) fn to_value(&self) -> api::Value {
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
    pub(crate) fn encode_as_field(&self, tag: u32, buf: &mut impl BufMut) {
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

/// What a cell was, for error messages (never its value).
fn describe_cell(cell: &MyValue) -> &'static str {
    match cell {
        MyValue::NULL => "NULL",
        MyValue::Bytes(_) => "bytes",
        MyValue::Int(_) => "a signed integer",
        MyValue::UInt(_) => "an unsigned integer",
        MyValue::Float(_) => "a float",
        MyValue::Double(_) => "a double",
        MyValue::Date(..) => "a date",
        MyValue::Time(..) => "a time",
    }
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
pub(crate) struct Formatted {
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
    fn as_str(&self) -> &str {
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
