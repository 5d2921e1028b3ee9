//! The hand-written wire encoding of cells agrees with prost.
use mysql_async::Value as MyValue;
use proptest::prelude::*;
use prost::{Message, bytes::Bytes};

use crate::api;
use crate::values::cell::{Cell, CellKind, TextCase, convert};

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
