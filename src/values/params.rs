//! Request parameters: each case of a protobuf `Value` becomes the value the
//! binary protocol sends. The text forms of dates, times and decimals are
//! checked here so that bad input fails before it reaches the database.
use mysql_async::Value as MyValue;

use super::ValueError;
use crate::api::{self, value::Kind};

/// The most characters a `decimal_value` parameter may have.
const MAX_DECIMAL_LEN: usize = 100;

/// The largest TIME magnitude MySQL accepts, in hours.
const MAX_TIME_HOURS: u32 = 838;

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
        // `5.` is a decimal to the server (as a literal and in CAST); `.` alone is not.
        if fraction == 0 && whole == 0 {
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

/// The most fractional digits of a DECIMAL (MySQL's limit; MariaDB's is 38).
const MAX_DECIMAL_SCALE: i64 = 30;

/// The most digits of a DECIMAL.
const MAX_DECIMAL_PRECISION: i64 = 65;

/// The scale `s` at which a valid `decimal_value` text fits
/// `DECIMAL(65, s)` exactly: its fractional digits, trailing zeros kept
/// (`1.50` → 2, `1.5e-3` → 4, `15e2` → 0). `None` when it does not fit
/// (more than 30 fractional digits, or more than 65 digits in all).
pub fn decimal_scale(text: &str) -> Option<u32> {
    let text = text.as_bytes();
    if !is_decimal(text) {
        return None;
    }
    let unsigned = strip_sign(text);
    let (mantissa, exponent) = match unsigned.iter().position(|b| matches!(b, b'e' | b'E')) {
        Some(e) => (&unsigned[..e], &unsigned[e + 1..]),
        None => (unsigned, &b""[..]),
    };
    let exponent: i64 = match exponent {
        [] => 0,
        [b'-', digits @ ..] => -i64::from(number(digits).filter(|&e| e <= 9999)?),
        [b'+', digits @ ..] | digits => i64::from(number(digits).filter(|&e| e <= 9999)?),
    };
    let (whole, fraction) = match mantissa.iter().position(|&b| b == b'.') {
        Some(point) => (&mantissa[..point], &mantissa[point + 1..]),
        None => (mantissa, &b""[..]),
    };
    let digits = (whole.len() + fraction.len()) as i64;
    // Where the decimal point falls among the digits once the exponent moved it.
    let point = whole.len() as i64 + exponent;
    let scale = (digits - point).max(0);
    let leading_zeros = whole
        .iter()
        .chain(fraction)
        .take_while(|&&b| b == b'0')
        .count() as i64;
    let integer_digits = (point - leading_zeros).max(0);
    (scale <= MAX_DECIMAL_SCALE && integer_digits + scale <= MAX_DECIMAL_PRECISION)
        .then_some(scale as u32)
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
