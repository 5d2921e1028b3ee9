//! Converting between protobuf `Value`s and MySQL values.
//!
//! Results: which case a cell takes follows only from its column's type (see
//! [`CellKind::for_column`] and the README's type table), never from the
//! value. Parameters: each case becomes the value the binary protocol sends;
//! the text forms of dates, times and decimals are checked here so that bad
//! input fails before it reaches the database.
//!
//! Error messages are static text: they name the case and the expected form
//! and never contain the value itself (values may be secrets).
use mysql_async::{
    Column, Value as MyValue,
    consts::{ColumnFlags, ColumnType},
};

use crate::api::{self, value::Kind};

/// Character set number of binary strings (`binary`, collation 63).
const BINARY_CHARSET: u16 = 63;

/// The most characters a `decimal_value` parameter may have.
const MAX_DECIMAL_LEN: usize = 100;

/// The largest TIME magnitude MySQL accepts, in hours.
const MAX_TIME_HOURS: u32 = 838;

/// Why a value could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ValueError {
    /// A request parameter is malformed: the client's fault.
    #[error("invalid parameter: {0}")]
    BadParameter(&'static str),
    /// A result cell does not fit its column's case: the server's or the gateway's fault.
    #[error("cannot convert a result cell: a {column} column sent {problem}")]
    BadCell {
        /// The column's case, e.g. "DATETIME".
        column: &'static str,
        /// What arrived, e.g. "invalid UTF-8".
        problem: &'static str,
    },
}

impl ValueError {
    /// True for errors caused by the request (INVALID_ARGUMENT), false for
    /// result cells the gateway could not convert (INTERNAL).
    pub fn is_client_error(&self) -> bool {
        matches!(self, ValueError::BadParameter(_))
    }
}

/// Converts one request parameter.
pub fn param_to_mysql(value: &api::Value) -> Result<MyValue, ValueError> {
    let bad = ValueError::BadParameter;
    let Some(kind) = &value.kind else {
        return Err(bad("a parameter has no value set; use null_value for NULL"));
    };
    Ok(match kind {
        Kind::NullValue(_) => MyValue::NULL,
        Kind::Int64Value(v) => MyValue::Int(*v),
        Kind::Uint64Value(v) => MyValue::UInt(*v),
        Kind::DoubleValue(v) => MyValue::Double(*v),
        Kind::FloatValue(v) => MyValue::Float(*v),
        Kind::BoolValue(v) => MyValue::Int(i64::from(*v)),
        Kind::StringValue(v) | Kind::JsonValue(v) => MyValue::Bytes(v.as_bytes().to_vec()),
        Kind::BytesValue(v) => MyValue::Bytes(v.clone()),
        Kind::DecimalValue(v) if is_decimal(v.as_bytes()) => MyValue::Bytes(v.as_bytes().to_vec()),
        Kind::DecimalValue(_) => {
            return Err(bad(
                "decimal_value must be decimal text like -123.45 or 1.5e-3 (at most 100 characters)",
            ));
        }
        Kind::DateValue(v) => {
            let (y, m, d) = parse_date(v.as_bytes()).ok_or(bad(
                "date_value must be a valid date YYYY-MM-DD (or 0000-00-00)",
            ))?;
            MyValue::Date(y, m, d, 0, 0, 0, 0)
        }
        Kind::DatetimeValue(v) => parse_datetime(v.as_bytes()).ok_or(bad(
            "datetime_value must be a valid YYYY-MM-DD hh:mm:ss[.ffffff] (or with T as separator)",
        ))?,
        Kind::TimeValue(v) => parse_time(v.as_bytes()).ok_or(bad(
            "time_value must be [-]hhh:mm:ss[.ffffff] with hours up to 838",
        ))?,
    })
}

/// `[+-]?(digits[.digits]|.digits)([eE][+-]?digits)?`, at most 100 characters.
fn is_decimal(text: &[u8]) -> bool {
    if text.is_empty() || text.len() > MAX_DECIMAL_LEN {
        return false;
    }
    let mut rest = strip_sign(text);
    let whole = leading_digits(rest);
    rest = &rest[whole..];
    if let Some(after_point) = rest.strip_prefix(b".") {
        let fraction = leading_digits(after_point);
        if fraction == 0 {
            return false;
        }
        rest = &after_point[fraction..];
    } else if whole == 0 {
        return false;
    }
    match rest {
        [] => true,
        [b'e' | b'E', exponent @ ..] => {
            let exponent = strip_sign(exponent);
            !exponent.is_empty() && leading_digits(exponent) == exponent.len()
        }
        _ => false,
    }
}

fn strip_sign(text: &[u8]) -> &[u8] {
    match text {
        [b'+' | b'-', rest @ ..] => rest,
        _ => text,
    }
}

fn leading_digits(text: &[u8]) -> usize {
    text.iter().take_while(|b| b.is_ascii_digit()).count()
}

/// The value of a non-empty run of ASCII digits (None on anything else or overflow).
fn number(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u32, |total, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        total.checked_mul(10)?.checked_add(u32::from(digit))
    })
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

/// "YYYY-MM-DD", a real calendar date or the zero date.
fn parse_date(text: &[u8]) -> Option<(u16, u8, u8)> {
    let [y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = *text else {
        return None;
    };
    let (y, m, d) = (
        number(&[y0, y1, y2, y3])?,
        number(&[m0, m1])?,
        number(&[d0, d1])?,
    );
    let zero_date = y == 0 && m == 0 && d == 0;
    if !zero_date && !(1..=days_in_month(y, m)).contains(&d) {
        return None;
    }
    Some((y as u16, m as u8, d as u8))
}

/// "h+:mm:ss[.f{1,6}]"; returns (hours, minutes, seconds, microseconds).
/// With `two_digit_hours`, the hours must be exactly two digits.
fn parse_clock(text: &[u8], two_digit_hours: bool) -> Option<(u32, u8, u8, u32)> {
    let hour_digits = leading_digits(text);
    if hour_digits == 0 || (two_digit_hours && hour_digits != 2) {
        return None;
    }
    let (hours, rest) = text.split_at(hour_digits);
    let [b':', m0, m1, b':', s0, s1, fraction @ ..] = rest else {
        return None;
    };
    let (m, s) = (number(&[*m0, *m1])?, number(&[*s0, *s1])?);
    if m > 59 || s > 59 {
        return None;
    }
    let micros = match fraction {
        [] => 0,
        [b'.', digits @ ..] if (1..=6).contains(&digits.len()) => {
            number(digits)? * 10u32.pow(6 - digits.len() as u32)
        }
        _ => return None,
    };
    Some((number(hours)?, m as u8, s as u8, micros))
}

/// "YYYY-MM-DD hh:mm:ss[.f{1,6}]", also with 'T' between date and time.
fn parse_datetime(text: &[u8]) -> Option<MyValue> {
    if text.len() < 19 || !matches!(text[10], b' ' | b'T') {
        return None;
    }
    let (y, mo, d) = parse_date(&text[..10])?;
    let (h, mi, s, us) = parse_clock(&text[11..], true)?;
    if h > 23 {
        return None;
    }
    Some(MyValue::Date(y, mo, d, h as u8, mi, s, us))
}

/// "[-]h+:mm:ss[.f{1,6}]" with at most 838 hours.
fn parse_time(text: &[u8]) -> Option<MyValue> {
    let (negative, clock) = match text {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, text),
    };
    let (h, m, s, us) = parse_clock(clock, false)?;
    if h > MAX_TIME_HOURS {
        return None;
    }
    Some(MyValue::Time(negative, h / 24, (h % 24) as u8, m, s, us))
}

/// How cells of one result column are converted; computed once per column
/// from its metadata (never from the values).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CellKind {
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
    pub fn for_column(column: &Column) -> CellKind {
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

/// Converts one result cell of a column of this kind. NULL always gives null_value.
pub fn cell_to_value(kind: CellKind, cell: MyValue) -> Result<api::Value, ValueError> {
    Ok(cell::convert(kind, &cell)?.to_value())
}

/// Describes a column for clients.
pub fn describe_column(column: &Column) -> api::Column {
    let flags = column.flags();
    // Numbers and dates carry the binary character set too: only strings,
    // BLOBs, BIT and GEOMETRY count as binary data.
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

/// The MySQL type name, in capitals.
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
        MYSQL_TYPE_VECTOR => "VECTOR",
        MYSQL_TYPE_NULL => "NULL",
        MYSQL_TYPE_ENUM => "ENUM",
        MYSQL_TYPE_SET => "SET",
        // ENUM and SET columns arrive as MYSQL_TYPE_STRING with a flag.
        _ if flags.contains(ColumnFlags::ENUM_FLAG) => "ENUM",
        _ if flags.contains(ColumnFlags::SET_FLAG) => "SET",
        MYSQL_TYPE_STRING if binary => "BINARY",
        MYSQL_TYPE_STRING => "CHAR",
        MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR if binary => "VARBINARY",
        MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_VARCHAR => "VARCHAR",
        MYSQL_TYPE_TINY_BLOB if binary => "TINYBLOB",
        MYSQL_TYPE_TINY_BLOB => "TINYTEXT",
        MYSQL_TYPE_MEDIUM_BLOB if binary => "MEDIUMBLOB",
        MYSQL_TYPE_MEDIUM_BLOB => "MEDIUMTEXT",
        MYSQL_TYPE_LONG_BLOB if binary => "LONGBLOB",
        MYSQL_TYPE_LONG_BLOB => "LONGTEXT",
        MYSQL_TYPE_BLOB => blob_name(column.column_length(), binary),
        MYSQL_TYPE_TYPED_ARRAY | MYSQL_TYPE_UNKNOWN => "UNKNOWN",
    }
}

/// Servers report every BLOB and TEXT as MYSQL_TYPE_BLOB; the length (in
/// bytes: characters times up to 4 for text) tells the size.
fn blob_name(length: u32, binary: bool) -> &'static str {
    let bytes_per_char = if binary { 1 } else { 4 };
    let size = |max_chars: u64| u64::from(length) <= max_chars * bytes_per_char;
    match binary {
        true if size(255) => "TINYBLOB",
        true if size(65_535) => "BLOB",
        true if size(16_777_215) => "MEDIUMBLOB",
        true => "LONGBLOB",
        false if size(255) => "TINYTEXT",
        false if size(65_535) => "TEXT",
        false if size(16_777_215) => "MEDIUMTEXT",
        false => "LONGTEXT",
    }
}

/// Rough encoded size of a value in bytes (tags and lengths included), for
/// result caps and stream batches. Cheap: nothing is encoded.
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

pub mod cell;

// The first tests live in values/tests.rs; the edge cases below complete them.
#[cfg(test)]
mod tests;

#[cfg(test)]
mod edge_tests {
    use super::*;

    fn v(kind: Kind) -> api::Value {
        api::Value { kind: Some(kind) }
    }

    fn param(kind: Kind) -> Result<MyValue, ValueError> {
        param_to_mysql(&v(kind))
    }

    /// Asserts that a parameter is refused as the client's fault, with a
    /// message that names the case and does not repeat the value.
    fn refused(kind: Kind, case: &str) {
        let text = match &kind {
            Kind::DecimalValue(t) | Kind::DateValue(t) | Kind::DatetimeValue(t) => t.clone(),
            Kind::TimeValue(t) => t.clone(),
            _ => String::new(),
        };
        let error = param(kind).expect_err(&text);
        assert!(error.is_client_error(), "{text}");
        let message = error.to_string();
        assert!(message.contains(case), "{message}");
        if text.len() > 3 {
            assert!(!message.contains(&text), "{message} repeats {text}");
        }
    }

    fn cell(kind: CellKind, value: MyValue) -> Kind {
        cell_to_value(kind, value)
            .expect("convertible")
            .kind
            .unwrap()
    }

    fn cell_err(kind: CellKind, value: MyValue) -> ValueError {
        let error = cell_to_value(kind, value).expect_err("not convertible");
        assert!(!error.is_client_error());
        error
    }

    #[test]
    fn every_parameter_case() {
        assert_eq!(param(Kind::NullValue(0)).unwrap(), MyValue::NULL);
        assert_eq!(
            param(Kind::Int64Value(i64::MAX)).unwrap(),
            MyValue::Int(i64::MAX)
        );
        assert_eq!(param(Kind::Uint64Value(0)).unwrap(), MyValue::UInt(0));
        assert_eq!(
            param(Kind::DoubleValue(-0.25)).unwrap(),
            MyValue::Double(-0.25)
        );
        assert_eq!(
            param(Kind::FloatValue(f32::MAX)).unwrap(),
            MyValue::Float(f32::MAX)
        );
        assert_eq!(param(Kind::BoolValue(false)).unwrap(), MyValue::Int(0));
        assert_eq!(
            param(Kind::StringValue(String::new())).unwrap(),
            MyValue::Bytes(vec![])
        );
        assert_eq!(
            param(Kind::BytesValue(vec![0, 0xff])).unwrap(),
            MyValue::Bytes(vec![0, 0xff])
        );
        assert_eq!(
            param(Kind::JsonValue(r#"{"a":[1]}"#.into())).unwrap(),
            MyValue::Bytes(br#"{"a":[1]}"#.to_vec())
        );
        let unset = param_to_mysql(&api::Value { kind: None }).unwrap_err();
        assert!(unset.is_client_error());
        assert_eq!(
            unset.to_string(),
            "invalid parameter: a parameter has no value set; use null_value for NULL"
        );
    }

    #[test]
    fn decimal_parameters() {
        // DECIMAL(65,30) at its widest, with a sign: 67 characters.
        let widest = format!("-{}.{}", "9".repeat(35), "9".repeat(30));
        let hundred = format!("{}.{}", "1".repeat(49), "2".repeat(50));
        for ok in [
            &widest, &hundred, "-0", ".5", "-.5", "+0.0", "1e+5", "1E5", "7.25e-10",
        ] {
            assert_eq!(
                param(Kind::DecimalValue(ok.to_string())).unwrap(),
                MyValue::Bytes(ok.as_bytes().to_vec()),
                "{ok}"
            );
        }
        let too_long = format!("{hundred}3");
        for bad in [
            too_long.as_str(),
            "1.",
            "-1.e5",
            "+",
            "e5",
            ".e5",
            "1e5.5",
            "1e+",
            " 1",
            "1 ",
            "１",
            "1_000",
            "secret-token",
            "Infinity",
        ] {
            refused(Kind::DecimalValue(bad.into()), "decimal_value");
        }
    }

    #[test]
    fn date_parameters() {
        for (text, expected) in [
            ("2000-02-29", (2000, 2, 29)),
            ("2024-02-29", (2024, 2, 29)),
            ("0001-01-01", (1, 1, 1)),
            ("9999-12-31", (9999, 12, 31)),
            ("0000-00-00", (0, 0, 0)),
        ] {
            let (y, m, d) = expected;
            assert_eq!(
                param(Kind::DateValue(text.into())).unwrap(),
                MyValue::Date(y, m, d, 0, 0, 0, 0)
            );
        }
        for bad in [
            "1900-02-29",
            "2023-02-29",
            "2024-02-30",
            "2024-04-31",
            "2024-00-01",
            "2024-13-01",
            "2024-01-00",
            "2024-01-32",
            "0000-01-00",
            "2024-01-01 ",
            "+024-01-01",
            "２０２４-01-01",
            "2024-01-01T00:00:00",
            "",
            "secret-date",
        ] {
            refused(Kind::DateValue(bad.into()), "date_value");
        }
    }

    #[test]
    fn datetime_parameters() {
        let fractions = [
            ("", 0),
            (".1", 100_000),
            (".12", 120_000),
            (".123", 123_000),
            (".1234", 123_400),
            (".12345", 123_450),
            (".123456", 123_456),
            (".000001", 1),
        ];
        for (fraction, micros) in fractions {
            for separator in [' ', 'T'] {
                let text = format!("2024-02-29{separator}23:59:59{fraction}");
                assert_eq!(
                    param(Kind::DatetimeValue(text)).unwrap(),
                    MyValue::Date(2024, 2, 29, 23, 59, 59, micros)
                );
            }
        }
        assert_eq!(
            param(Kind::DatetimeValue("0000-00-00 00:00:00".into())).unwrap(),
            MyValue::Date(0, 0, 0, 0, 0, 0, 0)
        );
        for bad in [
            "2024-02-30 00:00:00",
            "2024-01-02 24:00:00",
            "2024-01-02 23:60:00",
            "2024-01-02 23:00:60",
            "2024-01-02 003:04:05",
            "2024-01-02  03:04:05",
            "2024-01-02 03:04:05Z",
            "2024-01-02 03:04:05.",
            "2024-01-02 03:04:05.1234567",
            "2024-01-02 03:04:05,5",
            "2024-01-02_03:04:05",
            "2024-01-02 03:04",
            "2024-01-02",
            "",
        ] {
            refused(Kind::DatetimeValue(bad.into()), "datetime_value");
        }
    }

    #[test]
    fn time_parameters() {
        for (text, expected) in [
            ("00:00:00", MyValue::Time(false, 0, 0, 0, 0, 0)),
            ("0:00:00.5", MyValue::Time(false, 0, 0, 0, 0, 500_000)),
            ("23:59:59", MyValue::Time(false, 0, 23, 59, 59, 0)),
            ("24:00:00", MyValue::Time(false, 1, 0, 0, 0, 0)),
            ("-25:30:00.25", MyValue::Time(true, 1, 1, 30, 0, 250_000)),
            (
                "838:59:59.999999",
                MyValue::Time(false, 34, 22, 59, 59, 999_999),
            ),
            ("-838:59:59", MyValue::Time(true, 34, 22, 59, 59, 0)),
            ("0838:00:00", MyValue::Time(false, 34, 22, 0, 0, 0)),
        ] {
            assert_eq!(
                param(Kind::TimeValue(text.into())).unwrap(),
                expected,
                "{text}"
            );
        }
        for bad in [
            "839:00:00",
            "-839:00:00",
            "99999999999:00:00",
            "--1:00:00",
            "+1:00:00",
            "1:00:00 ",
            "01:00",
            "01:00:00:00",
            "1.5:00:00",
            "01:0:00",
            "01:00:60",
            "01:00:00.1234567",
            ":00:00",
            "",
        ] {
            refused(Kind::TimeValue(bad.into()), "time_value");
        }
    }

    #[test]
    fn temporal_parameters_round_trip_through_cells() {
        let datetime = CellKind::Datetime { fraction_digits: 6 };
        let time = CellKind::Time { fraction_digits: 6 };
        let cases = [
            (Kind::DateValue("2024-02-29".into()), CellKind::Date),
            (Kind::DateValue("0000-00-00".into()), CellKind::Date),
            (
                Kind::DatetimeValue("1999-12-31 23:59:59.000001".into()),
                datetime,
            ),
            (Kind::TimeValue("-838:59:59.000000".into()), time),
            (Kind::TimeValue("101:02:03.400000".into()), time),
        ];
        for (kind, cell_kind) in cases {
            let mysql = param(kind.clone()).unwrap();
            assert_eq!(cell(cell_kind, mysql), kind);
        }
        let decimal = Kind::DecimalValue("-12345.678900".into());
        assert_eq!(
            cell(CellKind::Decimal, param(decimal.clone()).unwrap()),
            decimal
        );
    }

    #[test]
    fn integer_cells_are_checked() {
        use CellKind::{Int64, Uint64};
        assert_eq!(
            cell(Int64, MyValue::Int(i64::MAX)),
            Kind::Int64Value(i64::MAX)
        );
        assert_eq!(cell(Int64, MyValue::UInt(255)), Kind::Int64Value(255));
        assert_eq!(
            cell(Int64, MyValue::UInt(i64::MAX as u64)),
            Kind::Int64Value(i64::MAX)
        );
        assert_eq!(
            cell(Int64, MyValue::Bytes(b"-9223372036854775808".to_vec())),
            Kind::Int64Value(i64::MIN)
        );
        assert_eq!(cell(Uint64, MyValue::Int(0)), Kind::Uint64Value(0));
        assert_eq!(
            cell(Uint64, MyValue::Bytes(b"18446744073709551615".to_vec())),
            Kind::Uint64Value(u64::MAX)
        );
        cell_err(Int64, MyValue::UInt(i64::MAX as u64 + 1));
        cell_err(Uint64, MyValue::Int(i64::MIN));
        cell_err(Int64, MyValue::Bytes(b"9223372036854775808".to_vec()));
        cell_err(Uint64, MyValue::Bytes(b"18446744073709551616".to_vec()));
        cell_err(Uint64, MyValue::Bytes(b"-1".to_vec()));
        cell_err(Int64, MyValue::Bytes(b"1.5".to_vec()));
        cell_err(Int64, MyValue::Bytes(vec![0xff]));
        cell_err(Int64, MyValue::Double(1.0));
        cell_err(Uint64, MyValue::Float(1.0));
    }

    #[test]
    fn floating_cells() {
        assert_eq!(
            cell(CellKind::Double, MyValue::Double(f64::MIN_POSITIVE)),
            Kind::DoubleValue(f64::MIN_POSITIVE)
        );
        assert_eq!(
            cell(CellKind::Double, MyValue::Float(0.5)),
            Kind::DoubleValue(0.5)
        );
        assert_eq!(
            cell(CellKind::Double, MyValue::Bytes(b"-1.5e3".to_vec())),
            Kind::DoubleValue(-1500.0)
        );
        assert_eq!(
            cell(CellKind::Float, MyValue::Float(f32::MAX)),
            Kind::FloatValue(f32::MAX)
        );
        assert_eq!(
            cell(CellKind::Float, MyValue::Bytes(b"0.25".to_vec())),
            Kind::FloatValue(0.25)
        );
        cell_err(CellKind::Double, MyValue::Int(1));
        cell_err(CellKind::Float, MyValue::Bytes(b"abc".to_vec()));
    }

    #[test]
    fn text_and_binary_cells() {
        let decimal = format!("-{}.{}", "9".repeat(35), "9".repeat(30));
        assert_eq!(
            cell(
                CellKind::Decimal,
                MyValue::Bytes(decimal.clone().into_bytes())
            ),
            Kind::DecimalValue(decimal)
        );
        assert_eq!(
            cell(CellKind::Json, MyValue::Bytes(br#"{"k": null}"#.to_vec())),
            Kind::JsonValue(r#"{"k": null}"#.into())
        );
        assert_eq!(
            cell(CellKind::Text, MyValue::Bytes(Vec::new())),
            Kind::StringValue(String::new())
        );
        assert_eq!(
            cell(CellKind::Bytes, MyValue::Bytes(vec![0xff, 0, 0xfe])),
            Kind::BytesValue(vec![0xff, 0, 0xfe])
        );
        for kind in [
            CellKind::Text,
            CellKind::Json,
            CellKind::Decimal,
            CellKind::Date,
        ] {
            let error = cell_err(kind, MyValue::Bytes(b"secret\xff".to_vec()));
            let message = error.to_string();
            assert!(message.contains("invalid UTF-8"), "{message}");
            assert!(!message.contains("secret"), "{message}");
        }
        cell_err(CellKind::Text, MyValue::Int(1));
        cell_err(CellKind::Bytes, MyValue::UInt(1));
        cell_err(CellKind::Decimal, MyValue::Double(1.5));
        cell_err(CellKind::Json, MyValue::Date(2024, 1, 1, 0, 0, 0, 0));
    }

    #[test]
    fn temporal_cells() {
        let date = MyValue::Date(2024, 2, 29, 13, 14, 15, 123_456);
        assert_eq!(
            cell(CellKind::Date, date.clone()),
            Kind::DateValue("2024-02-29".into())
        );
        let expected = [
            "2024-02-29 13:14:15",
            "2024-02-29 13:14:15.1",
            "2024-02-29 13:14:15.12",
            "2024-02-29 13:14:15.123",
            "2024-02-29 13:14:15.1234",
            "2024-02-29 13:14:15.12345",
            "2024-02-29 13:14:15.123456",
        ];
        for (digits, text) in expected.iter().enumerate() {
            let kind = CellKind::Datetime {
                fraction_digits: digits as u8,
            };
            assert_eq!(
                cell(kind, date.clone()),
                Kind::DatetimeValue(text.to_string())
            );
        }
        let datetime = CellKind::Datetime { fraction_digits: 0 };
        assert_eq!(
            cell(datetime, MyValue::Date(0, 0, 0, 0, 0, 0, 0)),
            Kind::DatetimeValue("0000-00-00 00:00:00".into())
        );
        assert_eq!(
            cell(datetime, MyValue::Date(1, 2, 3, 4, 5, 6, 0)),
            Kind::DatetimeValue("0001-02-03 04:05:06".into())
        );
        let time = |digits| CellKind::Time {
            fraction_digits: digits,
        };
        for (value, digits, text) in [
            (MyValue::Time(false, 0, 0, 0, 0, 0), 0, "00:00:00"),
            (MyValue::Time(true, 0, 0, 0, 1, 0), 0, "-00:00:01"),
            (MyValue::Time(true, 1, 1, 0, 0, 0), 0, "-25:00:00"),
            (MyValue::Time(false, 4, 4, 5, 6, 0), 0, "100:05:06"),
            (
                MyValue::Time(true, 34, 22, 59, 59, 999_999),
                6,
                "-838:59:59.999999",
            ),
            (MyValue::Time(false, 0, 1, 2, 3, 50_000), 1, "01:02:03.0"),
            (MyValue::Time(false, 0, 1, 2, 3, 7), 6, "01:02:03.000007"),
        ] {
            assert_eq!(cell(time(digits), value), Kind::TimeValue(text.into()));
        }
        // Nothing a server could send makes the formatting panic or wrap.
        assert_eq!(
            cell(time(0), MyValue::Time(false, u32::MAX, 23, 0, 0, 0)),
            Kind::TimeValue("103079215103:00:00".into())
        );
        assert_eq!(
            cell(datetime, MyValue::Date(u16::MAX, 99, 99, 99, 99, 99, 0)),
            Kind::DatetimeValue("65535-99-99 99:99:99".into())
        );
        cell_err(time(6), MyValue::Time(false, 0, 0, 0, 0, 1_000_000));
        // Text forms pass through.
        assert_eq!(
            cell(time(0), MyValue::Bytes(b"-01:00:00".to_vec())),
            Kind::TimeValue("-01:00:00".into())
        );
        assert_eq!(
            cell(datetime, MyValue::Bytes(b"2024-01-01 00:00:00".to_vec())),
            Kind::DatetimeValue("2024-01-01 00:00:00".into())
        );
        cell_err(CellKind::Date, MyValue::Time(false, 0, 0, 0, 0, 0));
        cell_err(time(0), MyValue::Date(2024, 1, 1, 0, 0, 0, 0));
        cell_err(datetime, MyValue::Int(20240101));
    }

    #[test]
    fn null_cells_of_every_kind() {
        let mut kinds = vec![
            CellKind::Int64,
            CellKind::Uint64,
            CellKind::Double,
            CellKind::Float,
            CellKind::Text,
            CellKind::Bytes,
            CellKind::Decimal,
            CellKind::Date,
            CellKind::Json,
        ];
        for fraction_digits in 0..=6 {
            kinds.push(CellKind::Datetime { fraction_digits });
            kinds.push(CellKind::Time { fraction_digits });
        }
        for kind in kinds {
            assert_eq!(cell(kind, MyValue::NULL), Kind::NullValue(0), "{kind:?}");
        }
    }

    fn col(column_type: ColumnType, charset: u16) -> Column {
        Column::new(column_type).with_character_set(charset)
    }

    #[test]
    fn cell_kinds_of_every_column_type() {
        use ColumnType::*;
        let (utf8mb4, binary) = (45, BINARY_CHARSET);
        let unsigned = ColumnFlags::UNSIGNED_FLAG;
        let datetime = |digits| CellKind::Datetime {
            fraction_digits: digits,
        };
        let time = |digits| CellKind::Time {
            fraction_digits: digits,
        };
        let cases = [
            (
                col(MYSQL_TYPE_TINY, binary).with_flags(unsigned),
                CellKind::Int64,
            ),
            (
                col(MYSQL_TYPE_SHORT, binary).with_flags(unsigned),
                CellKind::Int64,
            ),
            (
                col(MYSQL_TYPE_INT24, binary).with_flags(unsigned),
                CellKind::Int64,
            ),
            (col(MYSQL_TYPE_LONG, binary), CellKind::Int64),
            (col(MYSQL_TYPE_LONGLONG, binary), CellKind::Int64),
            (
                col(MYSQL_TYPE_LONGLONG, binary).with_flags(unsigned),
                CellKind::Uint64,
            ),
            (
                col(MYSQL_TYPE_YEAR, binary).with_flags(unsigned | ColumnFlags::ZEROFILL_FLAG),
                CellKind::Int64,
            ),
            (col(MYSQL_TYPE_DECIMAL, binary), CellKind::Decimal),
            (
                col(MYSQL_TYPE_NEWDECIMAL, binary).with_decimals(30),
                CellKind::Decimal,
            ),
            (col(MYSQL_TYPE_NEWDATE, binary), CellKind::Date),
            (
                col(MYSQL_TYPE_DATETIME2, binary).with_decimals(2),
                datetime(2),
            ),
            (
                col(MYSQL_TYPE_TIMESTAMP, binary).with_decimals(6),
                datetime(6),
            ),
            (col(MYSQL_TYPE_TIMESTAMP2, binary), datetime(0)),
            (
                col(MYSQL_TYPE_DATETIME, binary).with_decimals(31),
                datetime(6),
            ),
            (col(MYSQL_TYPE_TIME, binary).with_decimals(39), time(6)),
            (col(MYSQL_TYPE_TIME2, binary).with_decimals(1), time(1)),
            (col(MYSQL_TYPE_JSON, binary), CellKind::Json),
            (col(MYSQL_TYPE_BIT, 0), CellKind::Bytes),
            (col(MYSQL_TYPE_GEOMETRY, binary), CellKind::Bytes),
            (col(MYSQL_TYPE_ENUM, utf8mb4), CellKind::Text),
            (col(MYSQL_TYPE_SET, binary), CellKind::Text),
            (
                col(MYSQL_TYPE_STRING, binary).with_flags(ColumnFlags::SET_FLAG),
                CellKind::Text,
            ),
            (col(MYSQL_TYPE_STRING, binary), CellKind::Bytes),
            (col(MYSQL_TYPE_STRING, utf8mb4), CellKind::Text),
            (
                col(MYSQL_TYPE_VAR_STRING, utf8mb4).with_flags(ColumnFlags::BINARY_FLAG),
                CellKind::Text,
            ),
            (col(MYSQL_TYPE_VARCHAR, binary), CellKind::Bytes),
            (col(MYSQL_TYPE_TINY_BLOB, binary), CellKind::Bytes),
            (col(MYSQL_TYPE_MEDIUM_BLOB, utf8mb4), CellKind::Text),
            (col(MYSQL_TYPE_LONG_BLOB, binary), CellKind::Bytes),
            // MariaDB's JSON: LONGTEXT with utf8mb4_bin.
            (
                col(MYSQL_TYPE_BLOB, 46).with_column_length(u32::MAX),
                CellKind::Text,
            ),
            (col(MYSQL_TYPE_NULL, binary), CellKind::Bytes),
        ];
        for (column, expected) in cases {
            assert_eq!(CellKind::for_column(&column), expected, "{column:?}");
        }
    }

    fn type_of(column: Column) -> String {
        describe_column(&column).r#type
    }

    #[test]
    fn type_names() {
        use ColumnType::*;
        let (utf8mb4, binary) = (45, BINARY_CHARSET);
        for (column_type, name) in [
            (MYSQL_TYPE_TINY, "TINYINT"),
            (MYSQL_TYPE_SHORT, "SMALLINT"),
            (MYSQL_TYPE_INT24, "MEDIUMINT"),
            (MYSQL_TYPE_LONG, "INT"),
            (MYSQL_TYPE_LONGLONG, "BIGINT"),
            (MYSQL_TYPE_FLOAT, "FLOAT"),
            (MYSQL_TYPE_DOUBLE, "DOUBLE"),
            (MYSQL_TYPE_NEWDECIMAL, "DECIMAL"),
            (MYSQL_TYPE_DATE, "DATE"),
            (MYSQL_TYPE_DATETIME, "DATETIME"),
            (MYSQL_TYPE_TIMESTAMP, "TIMESTAMP"),
            (MYSQL_TYPE_TIME, "TIME"),
            (MYSQL_TYPE_YEAR, "YEAR"),
            (MYSQL_TYPE_BIT, "BIT"),
            (MYSQL_TYPE_JSON, "JSON"),
            (MYSQL_TYPE_GEOMETRY, "GEOMETRY"),
            (MYSQL_TYPE_NULL, "NULL"),
            (MYSQL_TYPE_ENUM, "ENUM"),
            (MYSQL_TYPE_SET, "SET"),
            (MYSQL_TYPE_STRING, "BINARY"),
            (MYSQL_TYPE_VAR_STRING, "VARBINARY"),
            (MYSQL_TYPE_TINY_BLOB, "TINYBLOB"),
            (MYSQL_TYPE_LONG_BLOB, "LONGBLOB"),
        ] {
            assert_eq!(type_of(col(column_type, binary)), name);
        }
        assert_eq!(type_of(col(MYSQL_TYPE_STRING, utf8mb4)), "CHAR");
        assert_eq!(type_of(col(MYSQL_TYPE_VAR_STRING, utf8mb4)), "VARCHAR");
        assert_eq!(type_of(col(MYSQL_TYPE_MEDIUM_BLOB, utf8mb4)), "MEDIUMTEXT");
        let flagged = |flag| col(MYSQL_TYPE_STRING, utf8mb4).with_flags(flag);
        assert_eq!(type_of(flagged(ColumnFlags::ENUM_FLAG)), "ENUM");
        assert_eq!(type_of(flagged(ColumnFlags::SET_FLAG)), "SET");
        // BLOB and TEXT sizes from the length (text: 4 bytes per character).
        for (length, charset, name) in [
            (255, binary, "TINYBLOB"),
            (65_535, binary, "BLOB"),
            (16_777_215, binary, "MEDIUMBLOB"),
            (u32::MAX, binary, "LONGBLOB"),
            (1_020, utf8mb4, "TINYTEXT"),
            (262_140, utf8mb4, "TEXT"),
            (67_108_860, utf8mb4, "MEDIUMTEXT"),
            (u32::MAX, utf8mb4, "LONGTEXT"),
            (255, 8, "TINYTEXT"),
            (65_535, 8, "TEXT"),
            (16_777_215, 8, "MEDIUMTEXT"),
        ] {
            let column = col(MYSQL_TYPE_BLOB, charset).with_column_length(length);
            assert_eq!(type_of(column), name, "{length} {charset}");
        }
    }

    #[test]
    fn column_descriptions() {
        let column = col(ColumnType::MYSQL_TYPE_DATETIME, BINARY_CHARSET)
            .with_name(b"created")
            .with_table(b"o")
            .with_org_table(b"orders")
            .with_schema(b"shop")
            .with_column_length(26)
            .with_decimals(6);
        let described = describe_column(&column);
        assert_eq!(
            described,
            api::Column {
                name: "created".into(),
                table: "o".into(),
                database: "shop".into(),
                r#type: "DATETIME".into(),
                unsigned: false,
                nullable: true,
                binary: false,
                length: 26,
                decimals: 6,
            }
        );
        let blob = col(ColumnType::MYSQL_TYPE_BLOB, BINARY_CHARSET)
            .with_flags(ColumnFlags::NOT_NULL_FLAG | ColumnFlags::BLOB_FLAG)
            .with_column_length(65_535);
        let described = describe_column(&blob);
        assert!(described.binary && !described.nullable && !described.unsigned);
        assert_eq!(described.name, "");
        assert!(describe_column(&col(ColumnType::MYSQL_TYPE_BIT, BINARY_CHARSET)).binary);
        let text = col(ColumnType::MYSQL_TYPE_VAR_STRING, 45).with_flags(ColumnFlags::BINARY_FLAG);
        assert!(!describe_column(&text).binary);
    }

    #[test]
    fn sizes_grow_with_content() {
        let size = |kind| approximate_size(&v(kind));
        assert!(size(Kind::NullValue(0)) < size(Kind::Int64Value(1)));
        assert_eq!(size(Kind::Int64Value(1)), size(Kind::Uint64Value(u64::MAX)));
        let short = size(Kind::StringValue("a".into()));
        let long = size(Kind::StringValue("a".repeat(1001)));
        assert_eq!(long - short, 1000);
        assert_eq!(
            size(Kind::BytesValue(vec![0; 100])),
            size(Kind::JsonValue("x".repeat(100)))
        );
        assert!(size(Kind::DatetimeValue("2024-01-01 00:00:00".into())) >= 19);
        assert!(approximate_size(&api::Value { kind: None }) > 0);
    }
}
