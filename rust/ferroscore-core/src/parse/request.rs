//! Request bodies in their three shapes — one record `{"features": {...}}`, a batch
//! `{"rows": [{"features": {...}}, ...]}` and NDJSON, one record per line — parsed in one pass
//! from the bytes into the model's input rows, with every limit enforced as the bytes are read.

use crate::error::{escape_token, Code, FieldError, RequestError};
use crate::parse::ctx::{Ctx, Loc, Step, Stop};
use crate::parse::json::Number;
use crate::parse::json::{Key, Reader, SyntaxError};
use crate::parse::record::read_features;
use crate::parse::rows::{Format, Limits, Rows};
use crate::parse::value::{read_scalar, skip_value, Scalar};
use crate::precision::Precision;
use crate::schema::Schema;

/// Parses a request body into rows of `width` model inputs.
///
/// `partial` is the caller's default for batches (a JSON body's `"partial"` overrides it):
/// with it, invalid rows are kept out of scoring and reported; without, any problem refuses
/// the whole request.
pub fn parse_request(
    body: &[u8],
    schema: &Schema,
    limits: &Limits,
    precision: Precision,
    width: usize,
    format: Format,
    partial: bool,
) -> Result<Rows, RequestError> {
    if body.len() > limits.max_body_bytes {
        return Err(too_large(body.len(), limits.max_body_bytes));
    }
    let mut ctx = Ctx {
        schema,
        limits,
        precision,
        rows: Rows {
            width,
            n_context: schema.context().len(),
            ..Rows::default()
        },
        loc: Loc::Single,
        row_invalid: false,
        partial: None,
        depth: 0,
    };
    let parsed = match format {
        Format::Json => {
            let mut r = Reader::new(body);
            read_request(&mut r, &mut ctx)
                .and_then(|()| Ok(r.end()?))
                .map_err(|e| (e, r))
        }
        Format::Ndjson => read_lines(body, &mut ctx),
    };
    match parsed {
        Ok(()) => {}
        Err((Stop::Limit(e), _)) => return Err(RequestError::TooLarge(*e)),
        Err((Stop::Syntax(e), r)) => return Err(malformed(&ctx, &r, &e)),
    }
    let mut rows = ctx.rows;
    let partial = ctx.partial.unwrap_or(partial) && rows.batch;
    if !rows.errors.is_empty() && !partial {
        return Err(RequestError::Invalid(std::mem::take(&mut rows.errors)));
    }
    Ok(rows)
}

fn read_lines<'b>(body: &'b [u8], ctx: &mut Ctx<'_>) -> Result<(), (Stop, Reader<'b>)> {
    ctx.rows.batch = true;
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let mut r = Reader::new(line);
        let step = ctx.push_row(Loc::Line(i)).and_then(|()| {
            read_record(&mut r, ctx)?;
            ctx.finish_row();
            Ok(r.end()?)
        });
        step.map_err(|e| (e, r))?;
    }
    Ok(())
}

#[cold]
fn too_large(len: usize, limit: usize) -> RequestError {
    RequestError::TooLarge(FieldError::new(
        String::new(),
        Code::TooLarge,
        format!("request body is {len} bytes; the limit (max_body_bytes) is {limit}"),
    ))
}

#[cold]
fn malformed(ctx: &Ctx<'_>, r: &Reader<'_>, e: &SyntaxError) -> RequestError {
    let (line, column) = r.line_column(e.offset);
    let (pointer, message) = match ctx.loc {
        Loc::Line(i) => (
            format!("/{i}"),
            format!(
                "malformed JSON on line {}, column {column}: {}",
                i + 1,
                e.message
            ),
        ),
        _ => (
            String::new(),
            format!(
                "malformed JSON at line {line}, column {column}: {}",
                e.message
            ),
        ),
    };
    RequestError::Malformed(FieldError::new(pointer, Code::Syntax, message))
}

const RECORD_SHAPE: &str = "a record is an object like {\"features\": {...}}";

/// Enters a record object, or skips and reports a value of another shape (returns false).
fn open_record(r: &mut Reader<'_>, ctx: &mut Ctx<'_>) -> Step<bool> {
    if r.peek() != Some(b'{') {
        skip_value(r, ctx)?;
        ctx.report(String::new, Code::Type, RECORD_SHAPE.into());
        return Ok(false);
    }
    ctx.enter()?;
    Ok(true)
}

/// Top level of a JSON body: one record, or a batch under "rows".
fn read_request(r: &mut Reader<'_>, ctx: &mut Ctx<'_>) -> Step<()> {
    if !open_record(r, ctx)? {
        return Ok(());
    }
    let (mut features, mut rows) = (false, false);
    let mut more = r.begin_object()?;
    while more {
        let key = r.key()?;
        ctx.check_string(key.raw.len())?;
        // Top-level problems point from the root, whatever rows were read before.
        ctx.loc = Loc::Single;
        match key.raw.as_ref() {
            b"features" | b"rows" if features || rows => {
                skip_value(r, ctx)?;
                let tail = format!("/{}", String::from_utf8_lossy(&key.raw));
                ctx.report(
                    || tail,
                    Code::DuplicateKey,
                    "a request holds \"features\" (one record) or \"rows\" (a batch), once".into(),
                );
            }
            b"features" => {
                features = true;
                ctx.push_row(Loc::Single)?;
                read_features(r, ctx)?;
                ctx.finish_row();
            }
            b"rows" => {
                rows = true;
                ctx.rows.batch = true;
                read_rows(r, ctx)?;
            }
            b"explain" => match read_scalar(r, ctx)? {
                Scalar::Num(Number::Int(k)) if (0..=ctx.width() as i128).contains(&k) => {
                    ctx.rows.explain = Some(k as usize)
                }
                _ => ctx.report(
                    || "/explain".into(),
                    Code::Type,
                    format!(
                        "\"explain\" must be an integer from 0 to {}, the model's input count",
                        ctx.width()
                    ),
                ),
            },
            b"id" => match read_scalar(r, ctx)? {
                // PostgreSQL's text cannot hold U+0000: the decision log could not store it.
                Scalar::Str(id) if id.contains('\0') => ctx.report(
                    || "/id".into(),
                    Code::NulCharacter,
                    "\"id\" may not contain U+0000, which the decision log cannot store".into(),
                ),
                Scalar::Str(id) if !id.is_empty() => ctx.rows.reference = Some(id.into_owned()),
                Scalar::Num(Number::Int(id)) => ctx.rows.reference = Some(id.to_string()),
                _ => ctx.report(
                    || "/id".into(),
                    Code::Type,
                    "\"id\", your own reference for the request, must be a non-empty string or an \
                     integer"
                        .into(),
                ),
            },
            b"partial" => match read_scalar(r, ctx)? {
                Scalar::Bool(p) => ctx.partial = Some(p),
                _ => ctx.report(
                    || "/partial".into(),
                    Code::Type,
                    "\"partial\" must be true or false".into(),
                ),
            },
            _ => unknown_field(r, ctx, &key)?,
        }
        more = r.more(b'}')?;
    }
    ctx.leave();
    ctx.loc = Loc::Single;
    if !features && !rows {
        ctx.report(
            || "/features".into(),
            Code::Missing,
            "the request has neither \"features\" (one record) nor \"rows\" (a batch)".into(),
        );
    }
    Ok(())
}

/// One record object: `{"features": {...}}`, in "rows" or on an NDJSON line.
fn read_record(r: &mut Reader<'_>, ctx: &mut Ctx<'_>) -> Step<()> {
    if !open_record(r, ctx)? {
        return Ok(());
    }
    let mut features = false;
    let mut more = r.begin_object()?;
    while more {
        let key = r.key()?;
        ctx.check_string(key.raw.len())?;
        match key.raw.as_ref() {
            b"features" if features => {
                skip_value(r, ctx)?;
                ctx.report(
                    || "/features".into(),
                    Code::DuplicateKey,
                    "\"features\" appears more than once".into(),
                );
            }
            b"features" => {
                features = true;
                read_features(r, ctx)?;
            }
            _ => unknown_field(r, ctx, &key)?,
        }
        more = r.more(b'}')?;
    }
    ctx.leave();
    if !features {
        ctx.report(
            || "/features".into(),
            Code::Missing,
            "the record has no \"features\" object".into(),
        );
    }
    Ok(())
}

/// The "rows" array of a batch.
fn read_rows(r: &mut Reader<'_>, ctx: &mut Ctx<'_>) -> Step<()> {
    if r.peek() != Some(b'[') {
        skip_value(r, ctx)?;
        ctx.report(
            || "/rows".into(),
            Code::Type,
            "\"rows\" must be an array of records".into(),
        );
        return Ok(());
    }
    ctx.enter()?;
    let mut more = r.begin_array()?;
    let mut i = 0;
    while more {
        ctx.push_row(Loc::Row(i))?;
        read_record(r, ctx)?;
        ctx.finish_row();
        i += 1;
        more = r.more(b']')?;
    }
    ctx.leave();
    Ok(())
}

#[cold]
fn unknown_field(r: &mut Reader<'_>, ctx: &mut Ctx<'_>, key: &Key<'_>) -> Step<()> {
    let key = r.text(key)?.into_owned();
    skip_value(r, ctx)?;
    let tail = format!("/{}", escape_token(&key));
    ctx.report(
        || tail,
        Code::UnknownField,
        format!("unknown field \"{key}\"; {RECORD_SHAPE}"),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::MAX_ERRORS;
    use crate::schema::compile_schema;

    const SCHEMA: &str = r#"{"type": "object", "required": ["a", "b"], "additionalProperties": false,
        "properties": {
          "a": {"type": "number", "minimum": 0, "x-ferroscore-column": 0},
          "b": {"type": "integer", "maximum": 10, "x-ferroscore-column": 1},
          "c/d": {"type": ["number", "null"], "x-ferroscore-column": 2},
          "e": {"type": "boolean", "default": true, "x-ferroscore-column": 3},
          "f": {"type": "string", "maxLength": 3, "x-ferroscore-categories": {"FR": 0, "DE": 5},
                "x-ferroscore-column": 4}}}"#;

    fn parse_with(
        body: &str,
        format: Format,
        partial: bool,
        limits: Limits,
    ) -> Result<Rows, RequestError> {
        let schema = compile_schema(SCHEMA).expect("schema");
        parse_request(
            body.as_bytes(),
            &schema,
            &limits,
            Precision::F32,
            5,
            format,
            partial,
        )
    }

    fn parse(body: &str) -> Result<Rows, RequestError> {
        parse_with(body, Format::Json, false, Limits::default())
    }

    fn codes(result: Result<Rows, RequestError>) -> Vec<(String, &'static str)> {
        let errors = match result {
            Ok(rows) => rows.errors,
            Err(e) => e.errors().to_vec(),
        };
        errors
            .iter()
            .map(|e| (e.pointer.clone(), e.code.as_str()))
            .collect()
    }

    fn pair(p: &str, c: &'static str) -> (String, &'static str) {
        (p.to_string(), c)
    }

    #[test]
    fn outside_the_training_range_and_unknown_categories_are_scored_with_warnings() {
        let schema = compile_schema(
            r#"{"type": "object", "properties": {
                "year": {"type": "integer", "x-ferroscore-training-range": [2006, 2010],
                         "x-ferroscore-column": 0},
                "island": {"type": "string", "x-ferroscore-column": 1,
                           "x-ferroscore-categories": {"Biscoe": 0, "Dream": 1},
                           "x-ferroscore-unknown-category": "missing"},
                "sex": {"type": "string", "x-ferroscore-column": 2,
                        "x-ferroscore-categories": {"male": 0, "female": 1}}}}"#,
        )
        .expect("schema");
        let read = |body: &str| {
            let limits = Limits::default();
            parse_request(
                body.as_bytes(),
                &schema,
                &limits,
                Precision::F64,
                3,
                Format::Json,
                true,
            )
        };
        let rows = read(
            r#"{"rows": [{"features": {"year": 2011, "island": "Antarctica"}},
                         {"features": {"year": 2008, "island": "Dream"}},
                         {"features": {"year": 1999, "island": null}}]}"#,
        )
        .expect("scored, not refused");
        assert_eq!(rows.valid, [true, true, true]);
        assert_eq!(rows.row(0)[0], 2011.0);
        assert!(rows.row(0)[1].is_nan() && rows.row(2)[1].is_nan());
        let got: Vec<_> = rows
            .warnings
            .iter()
            .map(|w| (w.pointer.as_str(), w.code.as_str(), w.row, w.bound))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "/rows/0/features/year",
                    "out_of_training_range",
                    0,
                    Some(2010.0)
                ),
                ("/rows/0/features/island", "unknown_category", 0, None),
                (
                    "/rows/2/features/year",
                    "out_of_training_range",
                    2,
                    Some(2006.0)
                ),
            ]
        );
        // Unseen categories refused (the default) refuse null as well, as one rule.
        assert_eq!(
            codes(read(r#"{"features": {"sex": null}}"#)),
            [pair("/features/sex", "type")]
        );
        assert_eq!(
            codes(read(r#"{"features": {"sex": "MALE"}}"#)),
            [pair("/features/sex", "enum")]
        );
    }

    #[test]
    fn fills_columns_defaults_and_missing() {
        let rows = parse(r#"{"features": {"b": 3, "a": 0.25, "f": "DE"}}"#).expect("valid");
        assert!(!rows.batch);
        let row = rows.row(0);
        assert_eq!((row[0], row[1], row[3], row[4]), (0.25, 3.0, 1.0, 5.0));
        assert!(row[2].is_nan());
        let rows = parse(r#"{"features": {"a": 1e0, "b": 2.0, "c\/d": null, "e": false}}"#)
            .expect("valid");
        assert!(rows.row(0)[2].is_nan());
        assert_eq!(rows.row(0)[3], 0.0);
    }

    #[test]
    fn reports_every_problem_with_a_pointer() {
        let got = codes(parse(
            r#"{"features": {"a": -1, "b": 1.5, "c/d": "x", "zz": 1, "e": 1, "f": "ES"}, "extra": 1}"#,
        ));
        assert_eq!(
            got,
            vec![
                pair("/features/a", "minimum"),
                pair("/features/b", "type"),
                pair("/features/c~1d", "type"),
                pair("/features/zz", "unknown_feature"),
                pair("/features/e", "type"),
                pair("/features/f", "enum"),
                pair("/extra", "unknown_field"),
            ]
        );
        assert_eq!(
            codes(parse(r#"{"features": {"a": 1}}"#)),
            vec![pair("/features/b", "missing")]
        );
        assert_eq!(
            codes(parse(r#"{"features": {"a": 1, "a": 2, "b": 11}}"#)),
            vec![
                pair("/features/a", "duplicate_key"),
                pair("/features/b", "maximum")
            ]
        );
        assert_eq!(codes(parse("[1, 2]")), vec![pair("", "type")]);
        assert_eq!(codes(parse("{}")), vec![pair("/features", "missing")]);
        assert_eq!(
            codes(parse(r#"{"features": 3}"#)),
            vec![pair("/features", "type")]
        );
        assert_eq!(
            codes(parse(r#"{"features": {"a": 1, "b": 2, "f": "FRAN"}}"#)),
            vec![pair("/features/f", "max_length")]
        );
    }

    #[test]
    fn integers_must_be_exact_in_the_model_precision() {
        // float32 holds every integer up to 2^24, and 2^24 + 2, but not 2^24 + 1.
        assert!(parse(r#"{"features": {"a": 16777216, "b": 1}}"#).is_ok());
        assert!(parse(r#"{"features": {"a": 16777218, "b": 1}}"#).is_ok());
        assert_eq!(
            codes(parse(r#"{"features": {"a": 16777217, "b": 1}}"#)),
            vec![pair("/features/a", "integer_range")]
        );
    }

    #[test]
    fn batches_point_into_rows_and_may_be_partial() {
        let body = r#"{"rows": [{"features": {"a": 1, "b": 2}}, {"features": {"a": -1, "b": 2}},
                                 {"features": {"a": 3, "b": 4}}]}"#;
        assert_eq!(
            codes(parse(body)),
            vec![pair("/rows/1/features/a", "minimum")]
        );
        let partial = body.replacen("{\"rows\"", "{\"partial\": true, \"rows\"", 1);
        let rows = parse(&partial).expect("partial batch");
        assert!(rows.batch);
        assert_eq!(rows.valid, vec![true, false, true]);
        assert_eq!(rows.row(2)[0], 3.0);
        assert_eq!(codes(Ok(rows)), vec![pair("/rows/1/features/a", "minimum")]);
        let rows = parse_with(body, Format::Json, true, Limits::default()).expect("caller default");
        assert_eq!(rows.valid, vec![true, false, true]);
        assert_eq!(parse(r#"{"rows": []}"#).expect("empty batch").len(), 0);
        assert_eq!(codes(parse(r#"{"rows": {}}"#)), vec![pair("/rows", "type")]);
        assert_eq!(
            codes(parse(r#"{"rows": [], "partial": 1}"#)),
            vec![pair("/partial", "type")]
        );
        assert_eq!(
            codes(parse(r#"{"rows": [], "features": {}}"#)),
            vec![pair("/features", "duplicate_key")]
        );
    }

    #[test]
    fn ndjson_lines_are_records() {
        let body = "{\"features\": {\"a\": 1, \"b\": 2}}\r\n\n{\"features\": {\"a\": 2}}\n";
        assert_eq!(
            codes(parse_with(body, Format::Ndjson, false, Limits::default())),
            vec![pair("/2/features/b", "missing")]
        );
        let rows = parse_with(body, Format::Ndjson, true, Limits::default()).expect("partial");
        assert_eq!(rows.valid, vec![true, false]);
        match parse_with(
            "{\"features\": {}}\n{oops",
            Format::Ndjson,
            true,
            Limits::default(),
        ) {
            Err(RequestError::Malformed(e)) => assert_eq!(e.pointer, "/1"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        for body in [
            "",
            "{",
            r#"{"features": {"a": NaN}}"#,
            r#"{"features": {"a": 1,}}"#,
            r#"{"features": {"a": 1e400}}"#,
            r#"{"features": {}} x"#,
            "{\"\\ud800\": 1}",
            "{\"features\": {\"zz\": \"\\udc00\"}}",
            "\u{feff}{}",
        ] {
            match parse(body) {
                Err(RequestError::Malformed(e)) => assert_eq!(e.code, Code::Syntax, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn limits_name_themselves() {
        let small = Limits {
            max_body_bytes: 64,
            max_depth: 4,
            max_string_bytes: 8,
            max_features: 3,
            max_rows: 2,
        };
        let cases = [
            (
                format!(
                    "{{\"features\": {{\"a\": 1, \"b\": 2, \"zz\": \"{}\"}}}}",
                    "x".repeat(40)
                ),
                "too_large",
            ),
            (r#"{"features": {"zz": [[[1]]]}}"#.to_string(), "too_deep"),
            (
                r#"{"features": {"zz": "abcdefghij"}}"#.to_string(),
                "string_too_long",
            ),
            (
                r#"{"features": {"a": 1, "b": 2, "e": true, "f": "FR"}}"#.to_string(),
                "too_many_features",
            ),
            (
                r#"{"rows": [{"features": {}}, {"features": {}}, {}]}"#.to_string(),
                "too_many_rows",
            ),
        ];
        for (body, code) in cases {
            match parse_with(&body, Format::Json, true, small) {
                Err(RequestError::TooLarge(e)) => assert_eq!(e.code.as_str(), code, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
        assert!(parse_with(
            r#"{"rows": [{"features": {}}, {"features": {}}]}"#,
            Format::Json,
            true,
            small
        )
        .is_ok());
        let deep = "[".repeat(150_000);
        assert!(matches!(parse(&deep), Err(RequestError::TooLarge(e)) if e.code == Code::TooDeep));
    }

    #[test]
    fn keys_match_by_meaning_whatever_their_order_or_escapes() {
        // In schema order (the in-place path), out of order, escaped, and a longer key
        // that starts with a feature's name.
        let in_order = parse(r#"{"features": {"a": 1, "b": 2}}"#).expect("in order");
        let shuffled = parse(r#"{"features": {"b": 2, "\u0061": 1}}"#).expect("escaped");
        let bits = |r: &Rows| r.values.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&in_order), bits(&shuffled));
        assert_eq!(
            codes(parse(r#"{"features": {"ab": 1, "a": 1, "b": 2}}"#)),
            vec![pair("/features/ab", "unknown_feature")]
        );
        assert!(matches!(
            parse(r#"{"features": {"a" 1}}"#),
            Err(RequestError::Malformed(_))
        ));
    }

    #[test]
    fn errors_are_capped() {
        let many: Vec<String> = (0..200).map(|i| format!("\"u{i}\": 1")).collect();
        let body = format!("{{\"features\": {{{}}}}}", many.join(","));
        assert_eq!(parse(&body).expect_err("many").errors().len(), MAX_ERRORS);
    }

    #[test]
    fn context_fields_are_checked_and_kept_beside_the_row() {
        let schema = compile_schema(
            r#"{"type": "object", "required": ["card"],
                "properties": {
                  "a": {"type": "number", "x-ferroscore-column": 0},
                  "card": {"type": "string", "minLength": 2, "maxLength": 8,
                           "x-ferroscore-source": "context"},
                  "device": {"type": ["string", "null"], "x-ferroscore-source": "context"}}}"#,
        )
        .expect("schema");
        let run = |body: &str| {
            parse_request(
                body.as_bytes(),
                &schema,
                &Limits::default(),
                Precision::F64,
                1,
                Format::Json,
                true,
            )
        };
        let rows = run(r#"{"rows": [{"features": {"card": "c\u00e91", "a": 1}},
                                    {"features": {"a": 2, "device": null, "card": "c2"}}]}"#)
        .expect("valid");
        assert_eq!(rows.n_context, 2);
        assert_eq!(rows.context_row(0), [Some("cé1".into()), None]);
        assert_eq!(rows.context_row(1), [Some("c2".into()), None]);
        assert_eq!(rows.row(1), [2.0]);
        let bad = r#"{"rows": [{"features": {"a": 1}},
                               {"features": {"card": 7}},
                               {"features": {"card": "x"}},
                               {"features": {"card": "c1", "card": "c2"}},
                               {"features": {"card": "a\u0000b"}},
                               {"features": {"card": "c1", "device": "d1"}}]}"#;
        let rows = run(bad).expect("partial");
        assert_eq!(rows.valid, [false, false, false, false, false, true]);
        let found: Vec<(&str, &str)> = rows
            .errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.code.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                ("/rows/0/features/card", "missing"),
                ("/rows/1/features/card", "type"),
                ("/rows/2/features/card", "min_length"),
                ("/rows/3/features/card", "duplicate_key"),
                ("/rows/4/features/card", "nul_character"),
            ]
        );
        assert_eq!(rows.context_row(5), [Some("c1".into()), Some("d1".into())]);
    }
}
