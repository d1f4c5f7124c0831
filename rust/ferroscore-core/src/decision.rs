//! A scored request as tuples of PostgreSQL's binary COPY format, ready for the decision
//! log's `COPY decisions (request_id, row_index, model, version, features, context, score,
//! created_at, decision, role, tenant, reference, warnings) FROM STDIN (FORMAT binary)`.
//! Formatting here, in one pass per row, keeps Python out of the per-row work; the binary
//! form keeps PostgreSQL's per-row work to copying bytes (no text to parse, no jsonb of
//! feature names: they are the version's, in the registry).

use crate::copy_binary::{self as copy, float8_array, int4, jsonb, text, text_or_null};
use crate::endpoint::{write_number, Endpoint, Scored};
use crate::error::Warning;

/// The fields of a decision's tuple (`COLUMNS`' count).
pub const FIELDS: i16 = 13;
/// The columns of a tuple, in order.
pub const COLUMNS: &str = "request_id, row_index, model, version, features, context, score, \
                           created_at, decision, role, tenant, reference, warnings";

/// Appends one binary COPY tuple per scored row of `scored` to `out`; `role` says whether the
/// version answered the caller ("champion") or was scored beside it ("shadow"); `tenant`
/// owns the model. `decisions`, one per row, replaces the thresholds' (a decision hook's
/// final say).
pub fn copy_rows(
    endpoint: &Endpoint,
    scored: &Scored,
    role: &str,
    tenant: &str,
    decisions: Option<&[Option<String>]>,
    out: &mut Vec<u8>,
) {
    // A request's warnings are in row order: each row takes its own off the front.
    let mut warnings = scored.rows.warnings.as_slice();
    let version = i32::try_from(endpoint.version()).unwrap_or(i32::MAX);
    for i in (0..scored.rows.len()).filter(|&i| scored.rows.valid[i]) {
        let before = warnings.iter().take_while(|w| w.row < i).count();
        let mine = warnings[before..].iter().take_while(|w| w.row == i).count();
        let (row_warnings, rest) = warnings[before..].split_at(mine);
        warnings = rest;
        copy::tuple(out, FIELDS);
        text(out, &scored.request_id);
        int4(out, i32::try_from(i).unwrap_or(i32::MAX));
        text(out, endpoint.name());
        int4(out, version);
        endpoint.copy_features(scored, i, out);
        endpoint.copy_context(scored, i, out);
        float8_array(out, scored.row_scores(i).iter().copied(), false);
        copy::timestamptz(out, scored.scored_at_ns);
        let decision = match decisions {
            Some(d) => d.get(i).and_then(Option::as_deref),
            None => endpoint.decision(scored, i),
        };
        text_or_null(out, decision);
        text(out, role);
        text(out, tenant);
        text_or_null(out, scored.rows.reference.as_deref());
        write_row_warnings(out, row_warnings);
    }
}

/// One row's warnings as a jsonb array of `{"feature", "code"[, "bound"]}`, or NULL.
fn write_row_warnings(out: &mut Vec<u8>, warnings: &[Warning]) {
    if warnings.is_empty() {
        copy::null(out);
        return;
    }
    jsonb(out, |json| {
        for (k, w) in warnings.iter().enumerate() {
            json.push(if k == 0 { b'[' } else { b',' });
            json.extend_from_slice(b"{\"feature\":");
            // Serialising a str into a Vec cannot fail.
            serde_json::to_writer(&mut *json, &w.feature).unwrap_or_default();
            json.extend_from_slice(b",\"code\":\"");
            json.extend_from_slice(w.code.as_str().as_bytes());
            json.push(b'"');
            if let Some(bound) = w.bound {
                json.extend_from_slice(b",\"bound\":");
                write_number(json, bound);
            }
            json.push(b'}');
        }
        json.push(b']');
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{compile_schema, load_model, Format, Limits, Thresholds};

    type Tuple = Vec<Option<Vec<u8>>>;

    /// Tuples back from binary COPY bytes, each field's bytes (None for NULL).
    fn tuples(mut b: &[u8]) -> Vec<Tuple> {
        let mut found = Vec::new();
        let take = |b: &mut &[u8], n: usize| {
            let (head, rest) = b.split_at(n);
            *b = rest;
            head.to_vec()
        };
        while !b.is_empty() {
            let n = i16::from_be_bytes([b[0], b[1]]);
            b = &b[2..];
            let mut fields = Vec::new();
            for _ in 0..n {
                let len = i32::from_be_bytes([b[0], b[1], b[2], b[3]]);
                b = &b[4..];
                fields.push((len >= 0).then(|| take(&mut b, len as usize)));
            }
            found.push(fields);
        }
        found
    }

    fn floats(array: &[u8]) -> Vec<Option<f64>> {
        let n = i32::from_be_bytes([array[12], array[13], array[14], array[15]]) as usize;
        let mut at = 20;
        (0..n)
            .map(|_| {
                let len =
                    i32::from_be_bytes([array[at], array[at + 1], array[at + 2], array[at + 3]]);
                at += 4;
                (len == 8).then(|| {
                    at += 8;
                    f64::from_be_bytes(array[at - 8..at].try_into().unwrap_or_default())
                })
            })
            .collect()
    }

    fn endpoint(model: &[u8], schema: &str) -> Endpoint {
        let model = load_model(model, None).expect("model");
        let schema = compile_schema(schema).expect("schema");
        Endpoint::new(
            "m",
            1,
            model,
            schema,
            Limits::default(),
            Thresholds::default(),
        )
        .expect("endpoint")
    }

    #[test]
    fn a_rows_features_are_its_inputs_by_column_and_its_context_a_jsonb() {
        let endpoint = endpoint(
            br#"{"format": "ferroscore-linear", "link": "identity", "features": ["a\\b", "c"],
                 "coefficients": {"a\\b": 1.5, "c": -2}, "intercept": 0.25}"#,
            r#"{"type": "object", "required": ["c"], "properties": {
                 "c": {"type": "number", "x-ferroscore-column": 1},
                 "a\\b": {"type": ["number", "null"], "default": 1, "x-ferroscore-column": 0},
                 "note": {"type": "string", "x-ferroscore-source": "context"}}}"#,
        );
        let body = br#"{"id": "ref-1", "features": {"a\\b": 0.1, "c": 1e300, "note": "tab\there \\ back"}}"#;
        let scored = endpoint
            .score(body, Format::Json, false, 0, None)
            .expect("scored");
        let mut out = Vec::new();
        copy_rows(&endpoint, &scored, "champion", "t", None, &mut out);
        let rows = tuples(&out);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.len(), FIELDS as usize);
        assert_eq!(row[0].as_deref(), Some(scored.request_id.as_bytes()));
        assert_eq!(row[1].as_deref(), Some(&0i32.to_be_bytes()[..]));
        assert_eq!(row[2].as_deref(), Some(&b"m"[..]));
        // By column: a\b (column 0) first, then c.
        let features = floats(row[4].as_deref().unwrap_or_default());
        assert_eq!(features, [Some(0.1), Some(1e300)]);
        let context = row[5].as_deref().unwrap_or_default();
        assert_eq!(context[0], 1, "jsonb version");
        let parsed: serde_json::Value = serde_json::from_slice(&context[1..]).expect("json");
        assert_eq!(parsed, serde_json::json!({"note": "tab\there \\ back"}));
        assert_eq!(row[9].as_deref(), Some(&b"champion"[..]));
        assert_eq!(row[10].as_deref(), Some(&b"t"[..]));
        assert_eq!(row[11].as_deref(), Some(&b"ref-1"[..]));
        assert_eq!(row[12], None, "no warnings");
    }

    #[test]
    fn defaults_are_logged_and_absent_fields_are_null() {
        let endpoint = endpoint(
            br#"{"format": "ferroscore-linear", "link": "identity", "features": ["a", "b"],
                 "coefficients": {"a": 1, "b": 1}, "intercept": 0}"#,
            r#"{"type": "object", "required": ["b"], "properties": {
                 "a": {"type": "number", "default": 0, "x-ferroscore-column": 0},
                 "b": {"type": "number", "x-ferroscore-column": 1}}}"#,
        );
        let scored = endpoint
            .score(br#"{"features": {"b": 3}}"#, Format::Json, false, 0, None)
            .expect("scored");
        let mut out = Vec::new();
        copy_rows(&endpoint, &scored, "shadow", "t", None, &mut out);
        let row = &tuples(&out)[0];
        assert_eq!(row[5], None, "no context fields: NULL");
        assert_eq!(row[8], None, "no thresholds: no decision");
        assert_eq!(row[11], None, "no reference");
        let features = floats(row[4].as_deref().unwrap_or_default());
        assert_eq!(features, [Some(0.0), Some(3.0)], "a took its default");
    }

    #[test]
    fn request_ids_sort_in_the_order_they_are_made() {
        let first = crate::endpoint::new_request_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = crate::endpoint::new_request_id();
        assert!(first < second, "{first} then {second}");
        assert_eq!(&first[14..15], "7", "a UUID v7: {first}");
    }

    #[test]
    fn each_logged_row_keeps_its_own_warnings() {
        let endpoint = endpoint(
            br#"{"format": "ferroscore-linear", "link": "identity", "features": ["a"],
                 "coefficients": {"a": 1}, "intercept": 0}"#,
            r#"{"type": "object", "required": ["a"], "properties": {"a": {"type": "number", "maximum": 100,
                 "x-ferroscore-training-range": [0, 1], "x-ferroscore-column": 0}}}"#,
        );
        // Row 1 is refused (a partial batch), row 2 has nothing to say, rows 0 and 3 a warning.
        let body = br#"{"partial": true, "rows": [{"features": {"a": 5}},
            {"features": {"a": 500}}, {"features": {"a": 0.5}}, {"features": {"a": -1}}]}"#;
        let scored = endpoint
            .score(body, Format::Json, false, 0, None)
            .expect("scored");
        let mut out = Vec::new();
        copy_rows(&endpoint, &scored, "champion", "t", None, &mut out);
        let warnings: Vec<(i32, Option<String>)> = tuples(&out)
            .iter()
            .map(|row| {
                let index = row[1].as_deref().unwrap_or_default();
                let w = row[12]
                    .as_ref()
                    .map(|j| String::from_utf8_lossy(&j[1..]).into_owned());
                (i32::from_be_bytes(index.try_into().unwrap_or_default()), w)
            })
            .collect();
        assert_eq!(
            warnings,
            [
                (
                    0,
                    Some(r#"[{"feature":"a","code":"out_of_training_range","bound":1.0}]"#.into())
                ),
                (2, None),
                (
                    3,
                    Some(r#"[{"feature":"a","code":"out_of_training_range","bound":0.0}]"#.into())
                ),
            ]
        );
    }
}
