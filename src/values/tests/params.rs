//! Request parameters: every case of `Value`, and the checked text forms of
//! decimals, dates, datetimes and times.
use super::*;

fn param_ok(kind: Kind) -> MyValue {
    param_to_mysql(&v(kind)).expect("valid parameter")
}

fn param_err(kind: Kind) -> ValueError {
    param_to_mysql(&v(kind)).expect_err("invalid parameter")
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
fn simple_parameters() {
    assert_eq!(param_ok(Kind::Int64Value(i64::MIN)), MyValue::Int(i64::MIN));
    assert_eq!(
        param_ok(Kind::Uint64Value(u64::MAX)),
        MyValue::UInt(u64::MAX)
    );
    assert_eq!(param_ok(Kind::BoolValue(true)), MyValue::Int(1));
    assert_eq!(param_ok(Kind::DoubleValue(1.5)), MyValue::Double(1.5));
    assert_eq!(param_ok(Kind::FloatValue(2.5)), MyValue::Float(2.5));
    assert_eq!(
        param_ok(Kind::StringValue("é😀".into())),
        MyValue::Bytes("é😀".as_bytes().to_vec())
    );
    assert_eq!(param_ok(Kind::BytesValue(vec![])), MyValue::Bytes(vec![]));
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
fn decimal_parameters_are_checked_text() {
    let long = format!("{}.{}", "9".repeat(35), "1".repeat(30));
    for ok in [
        "0",
        "-1.50",
        "+.5",
        "12345678901234567890.123",
        "1e10",
        "-2.5E-3",
        long.as_str(),
    ] {
        assert_eq!(
            param_ok(Kind::DecimalValue(ok.into())),
            MyValue::Bytes(ok.as_bytes().to_vec())
        );
    }
    for bad in [
        "",
        "-",
        ".",
        "1.2.3",
        "abc",
        "1e",
        "NaN",
        "1,5",
        "0x10",
        &"1".repeat(101),
    ] {
        assert!(
            param_err(Kind::DecimalValue(bad.into())).is_client_error(),
            "{bad}"
        );
    }
}

#[test]
fn date_and_time_parameters() {
    for bad in ["2024-00-10", "2024-1-1", "24-01-01", "2024/01/01", "x"] {
        assert!(
            param_err(Kind::DateValue(bad.into())).is_client_error(),
            "{bad}"
        );
    }
    assert_eq!(
        param_ok(Kind::DatetimeValue("2024-01-02 03:04:05.5".into())),
        MyValue::Date(2024, 1, 2, 3, 4, 5, 500_000)
    );
    assert_eq!(
        param_ok(Kind::DatetimeValue("9999-12-31T23:59:59.999999".into())),
        MyValue::Date(9999, 12, 31, 23, 59, 59, 999_999)
    );
    for bad in ["2024-01-02 03:60:00", "2024-01-02 3:04:05"] {
        assert!(
            param_err(Kind::DatetimeValue(bad.into())).is_client_error(),
            "{bad}"
        );
    }
    assert_eq!(
        param_ok(Kind::TimeValue("25:00:00.000001".into())),
        MyValue::Time(false, 1, 1, 0, 0, 1)
    );
    for bad in ["12:60:00", "12:00", "-", "1:2:3", "12:00:00.", "aa:00:00"] {
        assert!(
            param_err(Kind::TimeValue(bad.into())).is_client_error(),
            "{bad}"
        );
    }
}

#[test]
fn decimal_scales_are_the_digits_after_the_point() {
    for (text, scale) in [
        ("37.12", Some(2)),
        ("1.50", Some(2)),
        ("-0", Some(0)),
        ("+7", Some(0)),
        (".5", Some(1)),
        ("000123.40", Some(2)),
        ("1.5e-3", Some(4)),
        ("0.0015e3", Some(1)),
        ("15e2", Some(0)),
        ("15E+2", Some(0)),
        ("12345678901234567890123", Some(0)),
        // 65 digits in all fit; 66 do not.
        (&"9".repeat(65), Some(0)),
        (&"9".repeat(66), None),
        (&format!("{}.{}", "9".repeat(35), "9".repeat(30)), Some(30)),
        (&format!("{}.{}", "9".repeat(36), "9".repeat(30)), None),
        // Leading zeros are not digits of the value.
        (&format!("{}1.5", "0".repeat(70)), Some(1)),
        // More than 30 fractional digits.
        (&format!("0.{}", "1".repeat(31)), None),
        ("1e-31", None),
        ("1e64", Some(0)),
        ("1e65", None),
        ("1e99999", None),
        // Not decimals at all.
        ("1.", Some(0)),
        ("-1.e5", Some(0)),
        (".", None),
        ("abc", None),
        ("", None),
    ] {
        assert_eq!(decimal_scale(text), scale, "{text:?}");
    }
}
