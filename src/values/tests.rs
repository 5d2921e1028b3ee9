use mysql_async::{
    Column, Value as MyValue,
    consts::{ColumnFlags, ColumnType},
};

use super::*;

fn v(kind: Kind) -> api::Value {
    api::Value { kind: Some(kind) }
}

fn param_ok(kind: Kind) -> MyValue {
    param_to_mysql(&v(kind)).expect("valid parameter")
}

fn param_err(kind: Kind) -> ValueError {
    param_to_mysql(&v(kind)).expect_err("invalid parameter")
}

#[test]
fn simple_parameters() {
    assert_eq!(param_ok(Kind::NullValue(0)), MyValue::NULL);
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
    assert!(
        param_to_mysql(&api::Value { kind: None })
            .unwrap_err()
            .is_client_error()
    );
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
    assert_eq!(
        param_ok(Kind::DateValue("2024-02-29".into())),
        MyValue::Date(2024, 2, 29, 0, 0, 0, 0)
    );
    assert_eq!(
        param_ok(Kind::DateValue("0000-00-00".into())),
        MyValue::Date(0, 0, 0, 0, 0, 0, 0)
    );
    for bad in [
        "2023-02-29",
        "2024-13-01",
        "2024-00-10",
        "2024-1-1",
        "24-01-01",
        "2024/01/01",
        "x",
    ] {
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
    for bad in [
        "2024-01-02 24:00:00",
        "2024-01-02 03:60:00",
        "2024-01-02",
        "2024-01-02 3:04:05",
        "2024-01-02 03:04:05.1234567",
    ] {
        assert!(
            param_err(Kind::DatetimeValue(bad.into())).is_client_error(),
            "{bad}"
        );
    }
    assert_eq!(
        param_ok(Kind::TimeValue("-838:59:59".into())),
        MyValue::Time(true, 34, 22, 59, 59, 0)
    );
    assert_eq!(
        param_ok(Kind::TimeValue("25:00:00.000001".into())),
        MyValue::Time(false, 1, 1, 0, 0, 1)
    );
    for bad in [
        "839:00:00",
        "12:60:00",
        "12:00",
        "-",
        "1:2:3",
        "12:00:00.",
        "aa:00:00",
    ] {
        assert!(
            param_err(Kind::TimeValue(bad.into())).is_client_error(),
            "{bad}"
        );
    }
}

fn column(column_type: ColumnType) -> Column {
    Column::new(column_type).with_character_set(45)
}

#[test]
fn cell_kinds_follow_column_types() {
    use ColumnType::*;
    let unsigned = ColumnFlags::UNSIGNED_FLAG;
    let cases = [
        (
            column(MYSQL_TYPE_LONGLONG).with_flags(unsigned),
            CellKind::Uint64,
        ),
        (
            column(MYSQL_TYPE_LONG).with_flags(unsigned),
            CellKind::Int64,
        ),
        (column(MYSQL_TYPE_TINY), CellKind::Int64),
        (column(MYSQL_TYPE_YEAR), CellKind::Int64),
        (column(MYSQL_TYPE_FLOAT), CellKind::Float),
        (column(MYSQL_TYPE_DOUBLE), CellKind::Double),
        (column(MYSQL_TYPE_NEWDECIMAL), CellKind::Decimal),
        (column(MYSQL_TYPE_DATE), CellKind::Date),
        (
            column(MYSQL_TYPE_DATETIME).with_decimals(6),
            CellKind::Datetime { fraction_digits: 6 },
        ),
        (
            column(MYSQL_TYPE_TIMESTAMP),
            CellKind::Datetime { fraction_digits: 0 },
        ),
        (
            column(MYSQL_TYPE_TIME).with_decimals(3),
            CellKind::Time { fraction_digits: 3 },
        ),
        (column(MYSQL_TYPE_JSON), CellKind::Json),
        (
            column(MYSQL_TYPE_BIT).with_character_set(63),
            CellKind::Bytes,
        ),
        (
            column(MYSQL_TYPE_BLOB).with_character_set(63),
            CellKind::Bytes,
        ),
        (column(MYSQL_TYPE_BLOB), CellKind::Text),
        (column(MYSQL_TYPE_VAR_STRING), CellKind::Text),
        (
            column(MYSQL_TYPE_STRING).with_flags(ColumnFlags::ENUM_FLAG),
            CellKind::Text,
        ),
        (
            column(MYSQL_TYPE_VAR_STRING).with_character_set(63),
            CellKind::Bytes,
        ),
    ];
    for (column, expected) in cases {
        assert_eq!(
            CellKind::for_column(&column),
            expected,
            "{:?}",
            column.column_type()
        );
    }
}

fn cell(kind: CellKind, value: MyValue) -> Kind {
    cell_to_value(kind, value)
        .expect("convertible")
        .kind
        .unwrap()
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
fn null_is_null_for_every_kind() {
    for kind in [
        CellKind::Int64,
        CellKind::Uint64,
        CellKind::Double,
        CellKind::Float,
        CellKind::Text,
        CellKind::Bytes,
        CellKind::Decimal,
        CellKind::Date,
        CellKind::Datetime { fraction_digits: 6 },
        CellKind::Time { fraction_digits: 0 },
        CellKind::Json,
    ] {
        assert_eq!(cell(kind, MyValue::NULL), Kind::NullValue(0));
    }
}

#[test]
fn columns_are_described() {
    let column = Column::new(ColumnType::MYSQL_TYPE_LONGLONG)
        .with_name(b"id")
        .with_table(b"t")
        .with_schema(b"db")
        .with_flags(ColumnFlags::UNSIGNED_FLAG | ColumnFlags::NOT_NULL_FLAG)
        .with_column_length(20)
        .with_character_set(63);
    let described = describe_column(&column);
    assert_eq!(described.name, "id");
    assert_eq!(described.table, "t");
    assert_eq!(described.database, "db");
    assert_eq!(described.r#type, "BIGINT");
    assert!(described.unsigned && !described.nullable);
    assert_eq!(described.length, 20);
    let text = Column::new(ColumnType::MYSQL_TYPE_BLOB)
        .with_character_set(45)
        .with_column_length(262_140);
    assert_eq!(describe_column(&text).r#type, "TEXT");
    let blob = Column::new(ColumnType::MYSQL_TYPE_BLOB)
        .with_character_set(63)
        .with_column_length(4_294_967_295);
    assert_eq!(describe_column(&blob).r#type, "LONGBLOB");
}
