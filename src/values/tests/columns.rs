//! Result columns: which `CellKind` each column type takes, MySQL type names
//! and the descriptions clients get.
use super::*;
use crate::values::cell::BINARY_CHARSET;

fn col(column_type: ColumnType, charset: u16) -> Column {
    Column::new(column_type).with_character_set(charset)
}

fn column(column_type: ColumnType) -> Column {
    Column::new(column_type).with_character_set(45)
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

/// `id BIGINT UNSIGNED NOT NULL` of table `db.t`.
fn id_column() -> Column {
    Column::new(ColumnType::MYSQL_TYPE_LONGLONG)
        .with_name(b"id")
        .with_table(b"t")
        .with_schema(b"db")
        .with_flags(ColumnFlags::UNSIGNED_FLAG | ColumnFlags::NOT_NULL_FLAG)
        .with_column_length(20)
        .with_character_set(63)
}

#[test]
fn columns_are_described() {
    let column = id_column();
    let described = describe_column(&column);
    assert_eq!(described.name, "id");
    assert_eq!(described.table, "t");
    assert_eq!(described.database, "db");
    assert_eq!(described.r#type, "BIGINT");
    assert!(described.unsigned && !described.nullable);
    assert_eq!(described.length, 20);
}

/// The cached encoding of a result shape is what encoding its descriptions
/// gives, and a shape differing in anything a description reads is another
/// entry.
#[test]
fn encoded_columns_are_the_descriptions_encoded() {
    use prost::Message;
    let id = id_column();
    let name = col(ColumnType::MYSQL_TYPE_VAR_STRING, 45)
        .with_name(b"name")
        .with_table(b"t")
        .with_schema(b"db")
        .with_column_length(400);
    let variants = [
        vec![id.clone(), name.clone()],
        vec![name.clone(), id.clone()],
        vec![id.clone().with_name(b"ID"), name.clone()],
        vec![id.clone(), name.clone().with_character_set(BINARY_CHARSET)],
        vec![id.clone(), name.clone().with_column_length(401)],
        vec![id.clone(), name.clone().with_decimals(2)],
        vec![
            id.clone().with_flags(ColumnFlags::NOT_NULL_FLAG),
            name.clone(),
        ],
        vec![id.clone().with_table(b"u"), name.clone()],
        vec![id.clone().with_schema(b"db2"), name.clone()],
        vec![id.clone()],
        vec![],
    ];
    // Twice: built, then from the cache.
    for _ in 0..2 {
        for columns in &variants {
            let described: Vec<api::Column> = columns.iter().map(describe_column).collect();
            let mut response = api::ExecuteResponse::default();
            response.set_encoded_columns(encoded_columns(columns));
            let bytes = response.encode_to_vec();
            let decoded = api::ExecuteResponse::decode(bytes.as_slice()).unwrap();
            assert_eq!(decoded.columns, described);
            let mut plain = api::ExecuteResponse::default();
            plain.columns = described;
            assert_eq!(bytes, plain.encode_to_vec());
        }
    }
}
