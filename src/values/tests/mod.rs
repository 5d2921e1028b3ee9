//! Tests of the values module, one file per concern like the module itself:
//! parameters, result cells, result columns, and the hand-written wire
//! encoding of cells. The helpers here are shared by several of them.
use mysql_async::{
    Column, Value as MyValue,
    consts::{ColumnFlags, ColumnType},
};

use super::*;
use crate::api::{self, value::Kind};

mod cells;
mod columns;
mod encoding;
mod params;

fn v(kind: Kind) -> api::Value {
    api::Value { kind: Some(kind) }
}

fn param(kind: Kind) -> Result<MyValue, ValueError> {
    param_to_mysql(&v(kind))
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
