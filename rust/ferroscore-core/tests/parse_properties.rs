//! Properties of the request parser: arbitrary and adversarial bytes never panic and are
//! refused with a 4xx-class error; numbers read exactly as a correctly rounded parse (Python's
//! `float()`) reads them.

use ferroscore_core::{
    compile_schema, parse_request, Format, Limits, Precision, RequestError, Rows, Schema,
};
use proptest::prelude::*;
use std::sync::OnceLock;

fn schema() -> &'static Schema {
    static SCHEMA: OnceLock<Schema> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        compile_schema(
            r#"{"type": "object", "additionalProperties": true, "properties": {
                "x": {"type": ["number", "null"], "x-ferroscore-column": 0},
                "n": {"type": "integer", "x-ferroscore-column": 1},
                "c": {"type": "string", "x-ferroscore-categories": {"a": 0, "b": 1}, "x-ferroscore-column": 2}}}"#,
        )
        .expect("schema")
    })
}

fn parse(body: &[u8], format: Format) -> Result<Rows, RequestError> {
    parse_request(
        body,
        schema(),
        &Limits::default(),
        Precision::F64,
        3,
        format,
        true,
    )
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |x| x.is_finite())
            .prop_map(Value::from),
        "[a-c\\\\\"\u{0}-\u{7f}\u{80}-\u{10ffff}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[xnc]|[a-z]{1,4}|features|rows", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse(&bytes, Format::Json);
        let _ = parse(&bytes, Format::Ndjson);
    }

    #[test]
    fn valid_json_is_never_malformed(value in json_value()) {
        let text = serde_json::to_vec(&value).expect("serialise");
        if let Err(RequestError::Malformed(e)) = parse(&text, Format::Json) {
            prop_assert!(false, "{e:?} for {value}");
        }
    }

    #[test]
    fn records_of_any_shape_are_read_or_refused_cleanly(features in json_value()) {
        let body = serde_json::json!({"features": features, "rows": [{"features": features}]});
        let text = serde_json::to_vec(&body).expect("serialise");
        if let Err(RequestError::Malformed(e)) = parse(&text, Format::Json) {
            prop_assert!(false, "{e:?}");
        }
    }

    #[test]
    fn numbers_read_exactly(
        mantissa in "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,24})?",
        exponent in prop::option::of(-340i32..320),
    ) {
        let literal = match exponent {
            Some(e) => format!("{mantissa}e{e}"),
            None => mantissa,
        };
        let expected: f64 = literal.parse().expect("a decimal literal");
        let body = format!("{{\"features\": {{\"x\": {literal}}}}}");
        // An integer literal the model's float cannot hold exactly is refused, not rounded.
        let integer_literal = !literal.contains(['.', 'e']);
        let inexact_integer = integer_literal
            && literal.parse::<i128>().map_or(true, |i| !Precision::F64.holds_exactly(i));
        match parse(body.as_bytes(), Format::Json) {
            Err(RequestError::Invalid(e)) if inexact_integer => {
                prop_assert_eq!(e[0].code.as_str(), "integer_range")
            }
            Ok(rows) => prop_assert_eq!(rows.row(0)[0].to_bits(), expected.to_bits(), "{}", literal),
            // Beyond f64: refused, never infinity.
            Err(RequestError::Malformed(_)) => prop_assert!(expected.is_infinite(), "{}", literal),
            Err(e) => prop_assert!(false, "{literal}: {e:?}"),
        }
    }

    #[test]
    fn deep_nesting_is_refused_fast(depth in 33usize..200_000, open in prop::sample::select(vec!["[", "{\"a\":"])) {
        let body = open.repeat(depth);
        match parse(body.as_bytes(), Format::Json) {
            Err(RequestError::TooLarge(e)) => prop_assert_eq!(e.code.as_str(), "too_deep"),
            other => prop_assert!(false, "{:?}", other.map(|r| r.len())),
        }
    }
}
