//! Result cells: every `CellKind` with the cells servers send, NULL, the
//! round trip of temporal parameters, and approximate sizes.
use super::*;

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

#[test]
fn cells_convert_exactly() {
    assert_eq!(
        cell(CellKind::Uint64, MyValue::UInt(u64::MAX)),
        Kind::Uint64Value(u64::MAX)
    );
    assert_eq!(
        cell(CellKind::Int64, MyValue::Int(i64::MIN)),
        Kind::Int64Value(i64::MIN)
    );
    assert_eq!(
        cell(CellKind::Int64, MyValue::Bytes(b"42".to_vec())),
        Kind::Int64Value(42)
    );
    assert!(cell_to_value(CellKind::Int64, MyValue::UInt(u64::MAX)).is_err());
    assert!(cell_to_value(CellKind::Uint64, MyValue::Int(-1)).is_err());
    assert_eq!(
        cell(CellKind::Decimal, MyValue::Bytes(b"-12345.678900".to_vec())),
        Kind::DecimalValue("-12345.678900".into())
    );
    assert_eq!(
        cell(
            CellKind::Datetime { fraction_digits: 6 },
            MyValue::Date(2024, 1, 2, 3, 4, 5, 60)
        ),
        Kind::DatetimeValue("2024-01-02 03:04:05.000060".into())
    );
    assert_eq!(
        cell(
            CellKind::Datetime { fraction_digits: 3 },
            MyValue::Date(2024, 1, 2, 3, 4, 5, 123_000)
        ),
        Kind::DatetimeValue("2024-01-02 03:04:05.123".into())
    );
    assert_eq!(
        cell(
            CellKind::Datetime { fraction_digits: 0 },
            MyValue::Date(2024, 1, 2, 0, 0, 0, 0)
        ),
        Kind::DatetimeValue("2024-01-02 00:00:00".into())
    );
    assert_eq!(
        cell(CellKind::Date, MyValue::Date(0, 0, 0, 0, 0, 0, 0)),
        Kind::DateValue("0000-00-00".into())
    );
    assert_eq!(
        cell(
            CellKind::Time { fraction_digits: 0 },
            MyValue::Time(true, 34, 22, 59, 59, 0)
        ),
        Kind::TimeValue("-838:59:59".into())
    );
    assert_eq!(
        cell(
            CellKind::Time { fraction_digits: 2 },
            MyValue::Time(false, 0, 1, 2, 3, 450_000)
        ),
        Kind::TimeValue("01:02:03.45".into())
    );
    assert_eq!(
        cell(CellKind::Bytes, MyValue::Bytes(vec![])),
        Kind::BytesValue(vec![])
    );
    assert_eq!(
        cell(CellKind::Text, MyValue::Bytes("😀".as_bytes().to_vec())),
        Kind::StringValue("😀".into())
    );
    let invalid = cell_to_value(CellKind::Text, MyValue::Bytes(vec![0xff, 0xfe])).unwrap_err();
    assert!(!invalid.is_client_error());
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
