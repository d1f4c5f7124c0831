//! A scored request as rows of PostgreSQL's COPY text format, ready for the decision log's
//! `COPY decisions (request_id, row_index, model, version, features, score, created_at,
//! decision, role, tenant, reference, warnings)`.
//! Formatting here, in one pass per row, keeps Python out of the per-row work.

use crate::copy_text::escape;
use crate::endpoint::{write_number, Endpoint, Scored};
use crate::error::Warning;

/// Appends one COPY line per scored row of `scored` to `out`; `role` says whether the
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
    let mut created_at = Vec::with_capacity(32);
    write_timestamp(&mut created_at, scored.scored_at_ns);
    // A request's warnings are in row order: each row takes its own off the front.
    let mut warnings = scored.rows.warnings.as_slice();
    for i in (0..scored.rows.len()).filter(|&i| scored.rows.valid[i]) {
        let before = warnings.iter().take_while(|w| w.row < i).count();
        let mine = warnings[before..].iter().take_while(|w| w.row == i).count();
        let (row_warnings, rest) = warnings[before..].split_at(mine);
        warnings = rest;
        escape(out, scored.request_id.as_bytes());
        out.push(b'\t');
        out.extend_from_slice(i.to_string().as_bytes());
        out.push(b'\t');
        escape(out, endpoint.name().as_bytes());
        out.push(b'\t');
        out.extend_from_slice(endpoint.version().to_string().as_bytes());
        out.push(b'\t');
        endpoint.copy_features(scored, i, out);
        out.push(b'\t');
        out.push(b'{');
        for (k, &x) in scored.row_scores(i).iter().enumerate() {
            if k > 0 {
                out.push(b',');
            }
            write_double(out, x);
        }
        out.push(b'}');
        out.push(b'\t');
        out.extend_from_slice(&created_at);
        out.push(b'\t');
        let decision = match decisions {
            Some(d) => d.get(i).and_then(Option::as_deref),
            None => endpoint.decision(scored, i),
        };
        match decision {
            Some(d) => escape(out, d.as_bytes()),
            None => out.extend_from_slice(b"\\N"),
        }
        out.push(b'\t');
        escape(out, role.as_bytes());
        out.push(b'\t');
        escape(out, tenant.as_bytes());
        out.push(b'\t');
        match &scored.rows.reference {
            Some(r) => escape(out, r.as_bytes()),
            None => out.extend_from_slice(b"\\N"),
        }
        out.push(b'\t');
        write_row_warnings(out, row_warnings);
        out.push(b'\n');
    }
}

/// One row's warnings as a jsonb array of `{"feature", "code"[, "bound"]}`, or NULL.
fn write_row_warnings(out: &mut Vec<u8>, warnings: &[Warning]) {
    let mut first = true;
    for w in warnings {
        let mut json = Vec::with_capacity(64);
        json.push(if first { b'[' } else { b',' });
        json.extend_from_slice(b"{\"feature\":");
        // Serialising a str into a Vec cannot fail.
        serde_json::to_writer(&mut json, &w.feature).unwrap_or_default();
        json.extend_from_slice(b",\"code\":\"");
        json.extend_from_slice(w.code.as_str().as_bytes());
        json.push(b'"');
        if let Some(bound) = w.bound {
            json.extend_from_slice(b",\"bound\":");
            write_number(&mut json, bound);
        }
        json.push(b'}');
        escape(out, &json);
        first = false;
    }
    if first {
        out.extend_from_slice(b"\\N");
    } else {
        out.push(b']');
    }
}

/// A double as PostgreSQL reads it: JSON's shortest form, or NaN / ±Infinity.
fn write_double(out: &mut Vec<u8>, x: f64) {
    if x.is_finite() {
        write_number(out, x);
    } else if x.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if x > 0.0 {
        out.extend_from_slice(b"Infinity");
    } else {
        out.extend_from_slice(b"-Infinity");
    }
}

/// `YYYY-MM-DD HH:MM:SS.ffffff+00` for nanoseconds since the Unix epoch (UTC).
fn write_timestamp(out: &mut Vec<u8>, ns: u128) {
    let micros = ns / 1_000;
    let secs = (micros / 1_000_000) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let text = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}+00",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        micros % 1_000_000
    );
    out.extend_from_slice(text.as_bytes());
}

/// Year, month, day of a count of days since 1970-01-01 (H. Hinnant's civil_from_days).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        let ts = |ns: u128| {
            let mut out = Vec::new();
            write_timestamp(&mut out, ns);
            String::from_utf8(out).unwrap_or_default()
        };
        assert_eq!(ts(0), "1970-01-01 00:00:00.000000+00");
        // 2000-02-29 12:34:56.789012 UTC
        assert_eq!(ts(951_827_696_789_012_345), "2000-02-29 12:34:56.789012+00");
        assert_eq!(
            ts(1_795_000_000_000_000_000),
            "2026-11-18 11:06:40.000000+00"
        );
    }

    #[test]
    fn a_rows_features_are_its_json_escaped_for_copy() {
        use crate::{compile_schema, load_model, Endpoint, Format, Limits, Thresholds};
        let model = load_model(
            br#"{"format": "ferroscore-linear", "link": "identity", "features": ["a\\b", "c"],
                 "coefficients": {"a\\b": 1.5, "c": -2}, "intercept": 0.25}"#,
            None,
        )
        .expect("model");
        let schema = compile_schema(
            r#"{"type": "object", "required": ["a\\b", "c"], "properties": {
                 "a\\b": {"type": "number", "x-ferroscore-column": 0},
                 "c": {"type": "number", "x-ferroscore-column": 1},
                 "note": {"type": "string", "x-ferroscore-source": "context"}}}"#,
        )
        .expect("schema");
        let endpoint = Endpoint::new(
            "m",
            1,
            model,
            schema,
            Limits::default(),
            Thresholds::default(),
        )
        .expect("endpoint");
        let body = br#"{"features": {"a\\b": 0.1, "c": 1e300, "note": "tab\there \\ back"}}"#;
        let scored = endpoint
            .score(body, Format::Json, false, 0, None)
            .expect("scored");
        let mut copied = Vec::new();
        endpoint.copy_features(&scored, 0, &mut copied);
        let mut expected = Vec::new();
        escape(&mut expected, endpoint.features_json(&scored, 0).as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&copied),
            String::from_utf8_lossy(&expected)
        );
        assert!(copied.windows(2).any(|w| w == b"\\t"));
    }

    #[test]
    fn each_logged_row_keeps_its_own_warnings() {
        use crate::{compile_schema, load_model, Endpoint, Format, Limits, Thresholds};
        let model = load_model(
            br#"{"format": "ferroscore-linear", "link": "identity", "features": ["a"],
                 "coefficients": {"a": 1}, "intercept": 0}"#,
            None,
        )
        .expect("model");
        let schema = compile_schema(
            r#"{"type": "object", "required": ["a"], "properties": {"a": {"type": "number", "maximum": 100,
                 "x-ferroscore-training-range": [0, 1], "x-ferroscore-column": 0}}}"#,
        )
        .expect("schema");
        let endpoint = Endpoint::new(
            "m",
            1,
            model,
            schema,
            Limits::default(),
            Thresholds::default(),
        )
        .expect("endpoint");
        // Row 1 is refused (a partial batch), row 2 has nothing to say, rows 0 and 3 a warning.
        let body = br#"{"partial": true, "rows": [{"features": {"a": 5}},
            {"features": {"a": 500}}, {"features": {"a": 0.5}}, {"features": {"a": -1}}]}"#;
        let scored = endpoint
            .score(body, Format::Json, false, 0, None)
            .expect("scored");
        let mut out = Vec::new();
        copy_rows(&endpoint, &scored, "champion", "t", None, &mut out);
        let text = String::from_utf8(out).expect("utf-8");
        let warnings: Vec<(&str, &str)> = text
            .lines()
            .map(|l| {
                let fields: Vec<&str> = l.split('\t').collect();
                (fields[1], fields[11])
            })
            .collect();
        assert_eq!(
            warnings,
            [
                (
                    "0",
                    r#"[{"feature":"a","code":"out_of_training_range","bound":1.0}]"#
                ),
                ("2", "\\N"),
                (
                    "3",
                    r#"[{"feature":"a","code":"out_of_training_range","bound":0.0}]"#
                ),
            ]
        );
    }

    #[test]
    fn copy_escapes_delimiters() {
        let mut out = Vec::new();
        escape(&mut out, b"a\\b\tc\nd");
        assert_eq!(out, b"a\\\\b\\tc\\nd");
        let mut d = Vec::new();
        write_double(&mut d, f64::NAN);
        assert_eq!(d, b"NaN");
    }
}
