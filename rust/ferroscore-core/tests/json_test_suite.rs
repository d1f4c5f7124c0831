//! The JSONTestSuite corpus (tests/data/JSONTestSuite) against the request parser: every `n_`
//! file refused as malformed or over a limit, every `y_` file parsed (and, not being a feature
//! record, refused by the schema), every `i_` file with the outcome documented below.

use ferroscore_core::{compile_schema, parse_request, Format, Limits, Precision, RequestError};
use std::path::PathBuf;

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
enum Outcome {
    /// Parsed and valid.
    Accepted,
    /// Parsed; refused by the schema (422).
    Invalid,
    /// Not RFC 8259 JSON (400).
    Malformed,
    /// Over a limit (413).
    Limit,
}

/// What the parser does with each implementation-defined case, and why.
const IMPLEMENTATION_DEFINED: &[(&str, Outcome)] = &[
    // Numbers beyond f64 are refused, never rounded to infinity.
    ("i_number_double_huge_neg_exp.json", Outcome::Invalid), // underflows to 0, a valid f64
    ("i_number_huge_exp.json", Outcome::Malformed),
    ("i_number_neg_int_huge_exp.json", Outcome::Malformed),
    ("i_number_pos_double_huge_exp.json", Outcome::Malformed),
    ("i_number_real_neg_overflow.json", Outcome::Malformed),
    ("i_number_real_pos_overflow.json", Outcome::Malformed),
    ("i_number_real_underflow.json", Outcome::Invalid), // 0.0, as Python's float() gives
    // Integers beyond u64 parse as the nearest f64, as Python's float() does.
    ("i_number_too_big_neg_int.json", Outcome::Invalid),
    ("i_number_too_big_pos_int.json", Outcome::Invalid),
    ("i_number_very_big_negative_int.json", Outcome::Invalid),
    // Text must be valid UTF-8 without lone surrogates; no BOM, no UTF-16.
    ("i_object_key_lone_2nd_surrogate.json", Outcome::Malformed),
    (
        "i_string_1st_surrogate_but_2nd_missing.json",
        Outcome::Malformed,
    ),
    (
        "i_string_1st_valid_surrogate_2nd_invalid.json",
        Outcome::Malformed,
    ),
    ("i_string_UTF-16LE_with_BOM.json", Outcome::Malformed),
    ("i_string_UTF-8_invalid_sequence.json", Outcome::Malformed),
    ("i_string_UTF8_surrogate_U+D800.json", Outcome::Malformed),
    (
        "i_string_incomplete_surrogate_and_escape_valid.json",
        Outcome::Malformed,
    ),
    (
        "i_string_incomplete_surrogate_pair.json",
        Outcome::Malformed,
    ),
    (
        "i_string_incomplete_surrogates_escape_valid.json",
        Outcome::Malformed,
    ),
    ("i_string_invalid_lonely_surrogate.json", Outcome::Malformed),
    ("i_string_invalid_surrogate.json", Outcome::Malformed),
    ("i_string_invalid_utf-8.json", Outcome::Malformed),
    (
        "i_string_inverted_surrogates_U+1D11E.json",
        Outcome::Malformed,
    ),
    ("i_string_iso_latin_1.json", Outcome::Malformed),
    ("i_string_lone_second_surrogate.json", Outcome::Malformed),
    (
        "i_string_lone_utf8_continuation_byte.json",
        Outcome::Malformed,
    ),
    ("i_string_not_in_unicode_range.json", Outcome::Malformed),
    (
        "i_string_overlong_sequence_2_bytes.json",
        Outcome::Malformed,
    ),
    (
        "i_string_overlong_sequence_6_bytes.json",
        Outcome::Malformed,
    ),
    (
        "i_string_overlong_sequence_6_bytes_null.json",
        Outcome::Malformed,
    ),
    ("i_string_truncated-utf-8.json", Outcome::Malformed),
    ("i_string_utf16BE_no_BOM.json", Outcome::Malformed),
    ("i_string_utf16LE_no_BOM.json", Outcome::Malformed),
    // 500 levels: over max_depth (32).
    ("i_structure_500_nested_arrays.json", Outcome::Limit),
    (
        "i_structure_UTF-8_BOM_empty_object.json",
        Outcome::Malformed,
    ),
];

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/JSONTestSuite/test_parsing")
}

fn outcome(body: &[u8]) -> Outcome {
    let schema = compile_schema(
        r#"{"type": "object", "properties": {"x": {"type": "number", "x-ferroscore-column": 0}}}"#,
    )
    .expect("schema");
    match parse_request(
        body,
        &schema,
        &Limits::default(),
        Precision::F64,
        1,
        Format::Json,
        false,
    ) {
        Ok(_) => Outcome::Accepted,
        Err(RequestError::Invalid(_)) => Outcome::Invalid,
        Err(RequestError::Malformed(_)) => Outcome::Malformed,
        Err(RequestError::TooLarge(_)) => Outcome::Limit,
    }
}

#[test]
fn every_file_has_the_expected_outcome() {
    let mut files: Vec<_> = std::fs::read_dir(corpus())
        .expect("the corpus is in tests/data")
        .map(|e| e.expect("entry").path())
        .collect();
    files.sort();
    let mut checked = [0usize; 3];
    let mut wrong = Vec::new();
    for path in &files {
        let name = path.file_name().and_then(|n| n.to_str()).expect("name");
        let body = std::fs::read(path).expect("readable");
        let got = outcome(&body);
        let ok = match &name[..2] {
            "y_" => {
                checked[0] += 1;
                matches!(got, Outcome::Accepted | Outcome::Invalid)
            }
            "n_" => {
                checked[1] += 1;
                matches!(got, Outcome::Malformed | Outcome::Limit)
            }
            _ => {
                checked[2] += 1;
                let expected = IMPLEMENTATION_DEFINED.iter().find(|(n, _)| *n == name);
                expected.is_some_and(|(_, e)| *e == got)
            }
        };
        if !ok {
            wrong.push(format!("{name}: {got:?}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected outcomes:\n{}",
        wrong.join("\n")
    );
    assert_eq!(
        checked[2],
        IMPLEMENTATION_DEFINED.len(),
        "every i_ file is documented"
    );
    assert!(
        checked[0] > 90 && checked[1] > 180,
        "the corpus is complete: {checked:?}"
    );
}
