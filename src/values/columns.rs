//! Result columns: the metadata clients see (name, MySQL type name, flags),
//! and its protobuf encoding kept per result shape.
use std::{cell::RefCell, num::NonZeroUsize};

use lru::LruCache;
use mysql_async::{
    Column,
    consts::{ColumnFlags, ColumnType},
};
use prost::bytes::{Bytes, BytesMut};

use super::CellKind;
use crate::api;

/// Describes a column for clients.
pub(crate) fn describe_column(column: &Column) -> api::Column {
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

/// Result shapes whose encoded descriptions each thread keeps (least
/// recently used first out).
const CACHED_SHAPES: usize = 128;

/// A shape whose key and encoding together are larger than this is encoded
/// afresh for every call instead of kept (very wide results), bytes.
const MAX_CACHED_SHAPE_BYTES: usize = 8 << 10;

/// The encoded descriptions of recent result shapes, per thread (no lock on
/// the hot path; a tokio worker sees the shapes of the calls it runs), and
/// the key being built.
struct Shapes {
    encoded: LruCache<Box<[u8]>, Bytes>,
    key: Vec<u8>,
}

thread_local! {
    static SHAPES: RefCell<Shapes> = RefCell::new(Shapes {
        encoded: LruCache::new(NonZeroUsize::new(CACHED_SHAPES).expect("not zero")),
        key: Vec::new(),
    });
}

/// The descriptions of `columns` ([`describe_column`]) as protobuf bytes:
/// consecutive `columns` fields of `ExecuteResponse` (field
/// [`api::EXECUTE_RESPONSE_COLUMNS`]), the same bytes as encoding
/// `describe_column` of each. Kept per result shape, so that a statement
/// sent again costs a lookup instead of building and encoding its
/// descriptions.
pub(crate) fn encoded_columns(columns: &[Column]) -> Bytes {
    if columns.is_empty() {
        return Bytes::new();
    }
    SHAPES.with(|shapes| {
        let Ok(mut shapes) = shapes.try_borrow_mut() else {
            return encode_columns(columns);
        };
        let Shapes { encoded, key } = &mut *shapes;
        key.clear();
        for column in columns {
            shape_key(column, key);
        }
        if let Some(bytes) = encoded.get(key.as_slice()) {
            return bytes.clone();
        }
        let bytes = encode_columns(columns);
        if key.len() + bytes.len() <= MAX_CACHED_SHAPE_BYTES {
            encoded.put(key.as_slice().into(), bytes.clone());
        }
        bytes
    })
}

fn encode_columns(columns: &[Column]) -> Bytes {
    let mut bytes = BytesMut::new();
    for column in columns {
        prost::encoding::message::encode(
            api::EXECUTE_RESPONSE_COLUMNS,
            &describe_column(column),
            &mut bytes,
        );
    }
    bytes.freeze()
}

/// Appends to `key` everything [`describe_column`] reads of `column`.
fn shape_key(column: &Column, key: &mut Vec<u8>) {
    for text in [column.name_ref(), column.table_ref(), column.schema_ref()] {
        key.extend_from_slice(&(text.len() as u32).to_le_bytes());
        key.extend_from_slice(text);
    }
    key.extend_from_slice(&column.column_length().to_le_bytes());
    key.extend_from_slice(&column.character_set().to_le_bytes());
    key.push(column.column_type() as u8);
    key.extend_from_slice(&column.flags().bits().to_le_bytes());
    key.push(column.decimals());
}
