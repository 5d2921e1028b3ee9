//! Property tests (proptest) over what the gateway does with untrusted
//! bytes before any database is involved: decoding requests, converting
//! parameters, checking SQL. Nothing may panic; valid forms are accepted and
//! converted exactly; everything else is a clean error.
use crate::{
    api::{ExecuteBatchRequest, ExecuteRequest, Value, value::Kind},
    statement::{Statement, StatementRules, guard},
    values::param_to_mysql,
};
use proptest::prelude::*;
use prost::Message;

const RULES: StatementRules = StatementRules {
    max_params: 4096,
    read_only: false,
    in_transaction: false,
    schema: false,
};

fn any_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        any::<i64>().prop_map(Kind::Int64Value),
        any::<u64>().prop_map(Kind::Uint64Value),
        any::<f64>().prop_map(Kind::DoubleValue),
        any::<bool>().prop_map(Kind::BoolValue),
        ".*".prop_map(Kind::StringValue),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(Kind::BytesValue),
        ".{0,40}".prop_map(Kind::DecimalValue),
        ".{0,20}".prop_map(Kind::DateValue),
        ".{0,30}".prop_map(Kind::DatetimeValue),
        ".{0,20}".prop_map(Kind::TimeValue),
        "[-+]?[0-9]{1,30}(\\.[0-9]{1,30})?".prop_map(Kind::DecimalValue),
        "[0-9]{4}-[0-9]{2}-[0-9]{2}".prop_map(Kind::DateValue),
        "-?[0-9]{1,3}:[0-9]{2}:[0-9]{2}(\\.[0-9]{1,6})?".prop_map(Kind::TimeValue),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes as a request: decoding fails cleanly or yields a
    /// request whose checking fails cleanly; nothing panics.
    #[test]
    fn arbitrary_request_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(request) = ExecuteRequest::decode(bytes.as_slice()) {
            let _ = Statement::new(&request.sql, &request.params, &RULES);
        }
        if let Ok(batch) = ExecuteBatchRequest::decode(bytes.as_slice()) {
            for statement in batch.statements {
                let _ = Statement::new(&statement.sql, &statement.params, &RULES);
            }
        }
    }

    /// Any parameter converts or is refused as the client's error.
    #[test]
    fn parameters_convert_or_are_refused(kind in any_kind()) {
        match param_to_mysql(&Value { kind: Some(kind) }) {
            Ok(_) => {}
            Err(error) => prop_assert!(error.is_client_error()),
        }
    }

    /// Valid dates are accepted exactly; the rest are refused.
    #[test]
    fn dates_are_exact(year in 1000u16..=9999, month in 1u8..=12, day in 1u8..=31) {
        let text = format!("{year:04}-{month:02}-{day:02}");
        let valid = chrono_like_valid(year, month, day);
        let converted = param_to_mysql(&Value { kind: Some(Kind::DateValue(text)) });
        prop_assert_eq!(converted.is_ok(), valid);
        if let Ok(mysql_async::Value::Date(y, m, d, ..)) = converted {
            prop_assert_eq!((y, m, d), (year, month, day));
        }
    }

    /// The SQL guard never panics, whatever the text.
    #[test]
    fn the_guard_never_panics(sql in ".{0,200}") {
        for in_transaction in [false, true] {
            for read_only in [false, true] {
                for schema in [false, true] {
                    let context = guard::GuardContext { in_transaction, read_only, schema, sql_mode: None };
                    let _ = guard::check_statement(&sql, context);
                }
            }
        }
    }
}

fn chrono_like_valid(year: u16, month: u8, day: u8) -> bool {
    let leap = (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if leap => 29,
        _ => 28,
    };
    day <= days
}
