//! Converting between protobuf `Value`s and MySQL values.
//!
//! Results: which case a cell takes follows only from its column's type (see
//! [`CellKind::for_column`] and the README's type table). Parameters: each case
//! becomes the MySQL value the binary protocol sends; text forms of dates,
//! times and decimals are checked here so that bad input fails before it
//! reaches the database. Messages never contain the values themselves.
use mysql_async::{
    Column, Value as MyValue,
    consts::{ColumnFlags, ColumnType},
};

use crate::api::{self, value::Kind};

/// Character set number of binary strings.
const BINARY_CHARSET: u16 = 63;

/// Why a value could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// A request parameter is malformed (the client's fault).
    #[error("invalid parameter: {0}")]
    BadParameter(String),
    /// A result cell does not fit its column's case (the gateway's or server's fault).
    #[error("cannot convert a result cell: {0}")]
    BadCell(String),
}

impl ValueError {
    /// True for errors caused by the request.
    pub fn is_client_error(&self) -> bool {
        matches!(self, ValueError::BadParameter(_))
    }
}

fn bad_param(message: &str) -> ValueError {
    ValueError::BadParameter(message.to_string())
}

/// Converts one request parameter.
pub fn param_to_mysql(value: &api::Value) -> Result<MyValue, ValueError> {
    let Some(kind) = &value.kind else {
        return Err(bad_param(
            "a parameter has no value set; use null_value for NULL",
        ));
    };
    Ok(match kind {
        Kind::NullValue(_) => MyValue::NULL,
        Kind::Int64Value(v) => MyValue::Int(*v),
        Kind::Uint64Value(v) => MyValue::UInt(*v),
        Kind::DoubleValue(v) => MyValue::Double(*v),
        Kind::FloatValue(v) => MyValue::Float(*v),
        Kind::BoolValue(v) => MyValue::Int(i64::from(*v)),
        Kind::StringValue(v) | Kind::JsonValue(v) => MyValue::Bytes(v.clone().into_bytes()),
        Kind::BytesValue(v) => MyValue::Bytes(v.clone()),
        Kind::DecimalValue(v) => {
            if !is_decimal(v) {
                return Err(bad_param(
                    "decimal_value must be decimal text like -123.45 (digits, optional sign, point and exponent)",
                ));
            }
            MyValue::Bytes(v.clone().into_bytes())
        }
        Kind::DateValue(v) => {
            let (y, m, d) = parse_date(v)
                .ok_or_else(|| bad_param("date_value must be a valid date YYYY-MM-DD"))?;
            MyValue::Date(y, m, d, 0, 0, 0, 0)
        }
        Kind::DatetimeValue(v) => parse_datetime(v).ok_or_else(|| {
            bad_param("datetime_value must be a valid YYYY-MM-DD hh:mm:ss[.ffffff]")
        })?,
        Kind::TimeValue(v) => parse_time(v).ok_or_else(|| {
            bad_param("time_value must be [-]hhh:mm:ss[.ffffff] with hours up to 838")
        })?,
    })
}

fn is_decimal(text: &str) -> bool {
    if text.is_empty() || text.len() > 100 {
        return false;
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(whole)
        && digits(fraction)
        && !(whole.is_empty() && fraction.is_empty())
        && !(mantissa.ends_with('.') && whole.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Parses a fixed-width number of ASCII digits.
fn number(text: &str) -> Option<u32> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        _ => 28,
    }
}

fn parse_date(text: &str) -> Option<(u16, u8, u8)> {
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let (y, m, d) = (
        number(&text[0..4])?,
        number(&text[5..7])?,
        number(&text[8..10])?,
    );
    let zero_date = y == 0 && m == 0 && d == 0;
    let valid = (1..=12).contains(&m) && (1..=days_in_month(y, m)).contains(&d);
    if !zero_date && !valid {
        return None;
    }
    Some((y as u16, m as u8, d as u8))
}

/// Parses "hh:mm:ss[.f{1,6}]" with any number of hour digits; returns
/// (hours, minutes, seconds, microseconds).
fn parse_clock(text: &str) -> Option<(u32, u8, u8, u32)> {
    let (clock, fraction) = match text.split_once('.') {
        Some((clock, fraction)) => (clock, Some(fraction)),
        None => (text, None),
    };
    let mut parts = clock.split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || m.len() != 2 || s.len() != 2 || h.len() > 3 {
        return None;
    }
    let (h, m, s) = (number(h)?, number(m)?, number(s)?);
    if m > 59 || s > 59 {
        return None;
    }
    let micros = match fraction {
        None => 0,
        Some(f) if (1..=6).contains(&f.len()) => number(f)? * 10u32.pow(6 - f.len() as u32),
        Some(_) => return None,
    };
    Some((h, m as u8, s as u8, micros))
}

fn parse_datetime(text: &str) -> Option<MyValue> {
    if text.len() < 19 || !matches!(text.as_bytes()[10], b' ' | b'T') {
        return None;
    }
    let (y, mo, d) = parse_date(text.get(..10)?)?;
    let (h, mi, s, us) = parse_clock(text.get(11..)?)?;
    if h > 23
        || text
            .get(11..13)
            .is_none_or(|hh| !hh.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    Some(MyValue::Date(y, mo, d, h as u8, mi, s, us))
}

fn parse_time(text: &str) -> Option<MyValue> {
    let (negative, clock) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (h, m, s, us) = parse_clock(clock)?;
    if h > 838 {
        return None;
    }
    Some(MyValue::Time(negative, h / 24, (h % 24) as u8, m, s, us))
}

/// How cells of one result column are converted; computed once per column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
    /// Signed integers, UNSIGNED integers narrower than BIGINT, YEAR.
    Int64,
    /// BIGINT UNSIGNED.
    Uint64,
    /// DOUBLE.
    Double,
    /// FLOAT.
    Float,
    /// Text strings, ENUM, SET.
    Text,
    /// Binary strings, BLOBs, BIT, GEOMETRY.
    Bytes,
    /// DECIMAL.
    Decimal,
    /// DATE.
    Date,
    /// DATETIME and TIMESTAMP, with the column's number of fraction digits.
    Datetime {
        /// Digits after the seconds' point (0-6).
        fraction_digits: u8,
    },
    /// TIME, with the column's number of fraction digits.
    Time {
        /// Digits after the seconds' point (0-6).
        fraction_digits: u8,
    },
    /// MySQL's JSON type.
    Json,
}

impl CellKind {
    /// The case that cells of this column take.
    pub fn for_column(column: &Column) -> CellKind {
        let unsigned = column.flags().contains(ColumnFlags::UNSIGNED_FLAG);
        let binary = column.character_set() == BINARY_CHARSET;
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
            _ if binary => CellKind::Bytes,
            _ => CellKind::Text,
        }
    }
}

fn bad_cell(kind: CellKind, cell: &MyValue) -> ValueError {
    let got = match cell {
        MyValue::NULL => "NULL",
        MyValue::Bytes(_) => "bytes",
        MyValue::Int(_) => "a signed integer",
        MyValue::UInt(_) => "an unsigned integer",
        MyValue::Float(_) => "a float",
        MyValue::Double(_) => "a double",
        MyValue::Date(..) => "a date",
        MyValue::Time(..) => "a time",
    };
    ValueError::BadCell(format!("a {kind:?} column sent {got}"))
}

/// Parses integer text (some servers send integers of expressions as text).
fn integer_text<T: std::str::FromStr>(bytes: &[u8]) -> Option<T> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Converts one result cell of a column of this kind. NULL is always null_value.
pub fn cell_to_value(kind: CellKind, cell: MyValue) -> Result<api::Value, ValueError> {
    let converted = match (kind, cell) {
        (_, MyValue::NULL) => Kind::NullValue(0),
        (CellKind::Int64, MyValue::Int(v)) => Kind::Int64Value(v),
        (CellKind::Int64, MyValue::UInt(v)) if i64::try_from(v).is_ok() => {
            Kind::Int64Value(v as i64)
        }
        (CellKind::Uint64, MyValue::UInt(v)) => Kind::Uint64Value(v),
        (CellKind::Uint64, MyValue::Int(v)) if v >= 0 => Kind::Uint64Value(v as u64),
        (CellKind::Int64, MyValue::Bytes(b)) if integer_text::<i64>(&b).is_some() => {
            Kind::Int64Value(integer_text(&b).unwrap_or_default())
        }
        (CellKind::Uint64, MyValue::Bytes(b)) if integer_text::<u64>(&b).is_some() => {
            Kind::Uint64Value(integer_text(&b).unwrap_or_default())
        }
        (CellKind::Double, MyValue::Double(v)) => Kind::DoubleValue(v),
        (CellKind::Double, MyValue::Float(v)) => Kind::DoubleValue(f64::from(v)),
        (CellKind::Float, MyValue::Float(v)) => Kind::FloatValue(v),
        (CellKind::Float, MyValue::Double(v)) => Kind::FloatValue(v as f32),
        (CellKind::Text, MyValue::Bytes(b)) => Kind::StringValue(utf8(kind, b)?),
        (CellKind::Json, MyValue::Bytes(b)) => Kind::JsonValue(utf8(kind, b)?),
        (CellKind::Decimal, MyValue::Bytes(b)) => Kind::DecimalValue(utf8(kind, b)?),
        (CellKind::Bytes, MyValue::Bytes(b)) => Kind::BytesValue(b),
        (CellKind::Date, MyValue::Date(y, m, d, ..)) => {
            let mut text = String::with_capacity(10);
            push_date(&mut text, y, m, d);
            Kind::DateValue(text)
        }
        (CellKind::Datetime { fraction_digits }, MyValue::Date(y, mo, d, h, mi, s, us)) => {
            let mut text = String::with_capacity(26);
            push_date(&mut text, y, mo, d);
            text.push(' ');
            push_clock(&mut text, u32::from(h), mi, s);
            push_fraction(&mut text, us, fraction_digits);
            Kind::DatetimeValue(text)
        }
        (CellKind::Time { fraction_digits }, MyValue::Time(negative, days, h, m, s, us)) => {
            let mut text = String::with_capacity(18);
            if negative {
                text.push('-');
            }
            push_clock(&mut text, days * 24 + u32::from(h), m, s);
            push_fraction(&mut text, us, fraction_digits);
            Kind::TimeValue(text)
        }
        // Text forms of temporal values (e.g. from expressions) pass through.
        (CellKind::Date, MyValue::Bytes(b)) => Kind::DateValue(utf8(kind, b)?),
        (CellKind::Datetime { .. }, MyValue::Bytes(b)) => Kind::DatetimeValue(utf8(kind, b)?),
        (CellKind::Time { .. }, MyValue::Bytes(b)) => Kind::TimeValue(utf8(kind, b)?),
        (kind, cell) => return Err(bad_cell(kind, &cell)),
    };
    Ok(api::Value {
        kind: Some(converted),
    })
}

fn utf8(kind: CellKind, bytes: Vec<u8>) -> Result<String, ValueError> {
    String::from_utf8(bytes)
        .map_err(|_| ValueError::BadCell(format!("a {kind:?} column sent invalid UTF-8")))
}

// Temporal values are formatted by hand: `write!` showed up in profiles of
// large streams, and these fixed-width forms need nothing from it.

/// Appends `value` as exactly `width` decimal digits (zero-padded).
fn push_digits(text: &mut String, value: u32, width: u32) {
    let mut divisor = 10u32.pow(width - 1);
    while divisor > 0 {
        text.push(char::from(b'0' + (value / divisor % 10) as u8));
        divisor /= 10;
    }
}

fn push_date(text: &mut String, year: u16, month: u8, day: u8) {
    push_digits(text, u32::from(year), 4);
    text.push('-');
    push_digits(text, u32::from(month), 2);
    text.push('-');
    push_digits(text, u32::from(day), 2);
}

/// "hh:mm:ss", with as many hour digits as needed (at least two).
fn push_clock(text: &mut String, hours: u32, minutes: u8, seconds: u8) {
    let hour_digits = if hours >= 100 { hours.ilog10() + 1 } else { 2 };
    push_digits(text, hours, hour_digits);
    text.push(':');
    push_digits(text, u32::from(minutes), 2);
    text.push(':');
    push_digits(text, u32::from(seconds), 2);
}

fn push_fraction(text: &mut String, micros: u32, digits: u8) {
    if digits > 0 {
        text.push('.');
        push_digits(
            text,
            micros / 10u32.pow(6 - u32::from(digits)),
            u32::from(digits),
        );
    }
}

/// Describes a column for clients.
pub fn describe_column(column: &Column) -> api::Column {
    let flags = column.flags();
    // Numbers and dates also carry the binary character set: only strings
    // and blobs count as binary data.
    let binary = CellKind::for_column(column) == CellKind::Bytes;
    api::Column {
        name: column.name_str().into_owned(),
        table: column.table_str().into_owned(),
        database: column.schema_str().into_owned(),
        r#type: type_name(column, binary).to_string(),
        unsigned: flags.contains(ColumnFlags::UNSIGNED_FLAG),
        nullable: !flags.contains(ColumnFlags::NOT_NULL_FLAG),
        binary,
        length: column.column_length(),
        decimals: u32::from(column.decimals()),
    }
}

fn type_name(column: &Column, binary: bool) -> &'static str {
    let flags = column.flags();
    use ColumnType::*;
    match column.column_type() {
        MYSQL_TYPE_TINY => "TINYINT",
        MYSQL_TYPE_SHORT => "SMALLINT",
        MYSQL_TYPE_INT24 => "MEDIUMINT",
        MYSQL_TYPE_LONG => "INT",
        MYSQL_TYPE_LONGLONG => "BIGINT",
        MYSQL_TYPE_FLOAT => "FLOAT",
        MYSQL_TYPE_DOUBLE => "DOUBLE",
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => "DECIMAL",
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => "DATE",
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => "DATETIME",
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => "TIMESTAMP",
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => "TIME",
        MYSQL_TYPE_YEAR => "YEAR",
        MYSQL_TYPE_BIT => "BIT",
        MYSQL_TYPE_JSON => "JSON",
        MYSQL_TYPE_GEOMETRY => "GEOMETRY",
        MYSQL_TYPE_NULL => "NULL",
        MYSQL_TYPE_ENUM => "ENUM",
        MYSQL_TYPE_SET => "SET",
        _ if flags.contains(ColumnFlags::ENUM_FLAG) => "ENUM",
        _ if flags.contains(ColumnFlags::SET_FLAG) => "SET",
        MYSQL_TYPE_STRING if binary => "BINARY",
        MYSQL_TYPE_STRING => "CHAR",
        MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR if binary => "VARBINARY",
        MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR => "VARCHAR",
        MYSQL_TYPE_TINY_BLOB | MYSQL_TYPE_MEDIUM_BLOB | MYSQL_TYPE_LONG_BLOB | MYSQL_TYPE_BLOB => {
            blob_name(column.column_length(), binary)
        }
        _ => "UNKNOWN",
    }
}

/// Servers report every BLOB/TEXT as MYSQL_TYPE_BLOB; the length tells the size
/// (for text, in bytes of the connection's character set).
fn blob_name(length: u32, binary: bool) -> &'static str {
    let scale = if binary { 1 } else { 4 };
    match (u64::from(length) / scale, binary) {
        (0..=255, true) => "TINYBLOB",
        (0..=65_535, true) => "BLOB",
        (0..=16_777_215, true) => "MEDIUMBLOB",
        (_, true) => "LONGBLOB",
        (0..=255, false) => "TINYTEXT",
        (0..=65_535, false) => "TEXT",
        (0..=16_777_215, false) => "MEDIUMTEXT",
        (_, false) => "LONGTEXT",
    }
}

/// Rough encoded size of a value in bytes, for result caps and stream batches.
pub fn approximate_size(value: &api::Value) -> usize {
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

#[cfg(test)]
mod tests;
