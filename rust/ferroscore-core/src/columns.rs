//! A table's columns (Arrow record batches, scored offline) read into the model's input rows
//! by the rules a JSON record is read by: the same checks, codes and messages, with pointers
//! `/rows/{n}/features/{name}` numbered across the whole input.
//!
//! A table cannot omit a value, only leave it null, so a null counts as an absent key: the
//! feature's missing value, or `missing` when the feature is required. Columns the schema
//! does not name are the table's own (ids, labels) and are not refused.

use crate::error::{Code, FieldError, Warning};
use crate::parse::ctx::feature_tail;
use crate::parse::json::{Number, Reader};
use crate::parse::record::{check, flag, missing_value};
use crate::parse::rows::{Rows, MAX_WARNINGS};
use crate::parse::value::Scalar;
use crate::precision::Precision;
use crate::schema::{Feature, Kind, Schema};
use std::borrow::Cow;

/// The values of one column, as Arrow lays them out once nulls are split off.
pub enum Cells<'a> {
    /// Floating point; NaN is null (as pandas writes it).
    Float(&'a [f64]),
    Int(&'a [i64]),
    Bool(&'a [bool]),
    /// Dictionary-encoded strings: per row, an index into `words`; negative is null. Each
    /// distinct word is checked once, however many rows carry it. `text` words are untyped
    /// (a CSV file's): each is read as its feature's type, a number by JSON's grammar.
    Words {
        codes: &'a [i32],
        words: &'a [String],
        text: bool,
    },
    /// A type no feature reads (a date, a list...), named: every non-null value is refused.
    Other(&'a str),
}

pub struct Column<'a> {
    pub name: &'a str,
    pub cells: Cells<'a>,
    /// Per row, whether the value is null (None: no nulls besides those `cells` encode).
    pub nulls: Option<&'a [bool]>,
}

type Checked = Result<f64, (Code, String)>;

/// Reads `n_rows` rows of `columns` (each at least that long) through `schema`. Every row is
/// kept; `valid` says which passed. At most `max_errors` problems are kept, in row order per
/// feature; `first_row` numbers the rows in the pointers.
pub fn read_columns(
    schema: &Schema,
    precision: Precision,
    width: usize,
    columns: &[Column<'_>],
    n_rows: usize,
    first_row: usize,
    max_errors: usize,
) -> Rows {
    let mut rows = Rows {
        width,
        values: vec![f64::NAN; n_rows * width],
        valid: vec![true; n_rows],
        errors: Vec::new(),
        warnings: Vec::new(),
        batch: true,
        explain: None,
        reference: None,
        // Context columns stay the table's own, carried to the output as they are.
        context: Vec::new(),
        n_context: 0,
    };
    for feature in schema.features() {
        let column = columns.iter().find(|c| c.name == feature.name);
        let words: Vec<Checked> = match column.map(|c| &c.cells) {
            Some(Cells::Words { words, text, .. }) => words
                .iter()
                .map(|w| match text {
                    true => read_text(feature, w).and_then(|x| check(feature, &x, precision)),
                    false => check(feature, &Scalar::Str(Cow::Borrowed(w)), precision),
                })
                .collect(),
            _ => Vec::new(),
        };
        for i in 0..n_rows {
            let value = match column {
                Some(c) if !c.nulls.is_some_and(|n| n[i]) => cell(feature, c, &words, i, precision),
                _ => None,
            };
            let x = match value {
                Some(Ok(x)) => {
                    if let Some(c) = column {
                        warn_of(&mut rows, feature, c, i, first_row, x);
                    }
                    x
                }
                None if !feature.required => missing_value(feature),
                None => {
                    let msg = format!("required feature \"{}\" is missing", feature.name);
                    reject(
                        &mut rows,
                        feature,
                        i,
                        first_row,
                        max_errors,
                        Code::Missing,
                        msg,
                    );
                    continue;
                }
                Some(Err((code, msg))) => {
                    reject(&mut rows, feature, i, first_row, max_errors, code, msg);
                    continue;
                }
            };
            rows.values[i * width + feature.column] = x;
        }
    }
    rows
}

/// The warning, if any, about row `i`'s value `x` of `column` (see `record::flag`).
#[inline]
fn warn_of(
    rows: &mut Rows,
    feature: &Feature,
    column: &Column<'_>,
    i: usize,
    first: usize,
    x: f64,
) {
    let value = match (&feature.kind, &column.cells) {
        (Kind::Categorical { .. }, Cells::Words { codes, words, .. }) => {
            match usize::try_from(codes[i]) {
                Ok(c) => Scalar::Str(Cow::Borrowed(words[c].as_str())),
                Err(_) => return,
            }
        }
        (Kind::Number { .. }, _) => Scalar::Num(Number::Float(x)),
        _ => return,
    };
    if let Some((code, message, bound)) = flag(feature, &value, x) {
        if rows.warnings.len() < MAX_WARNINGS {
            rows.warnings.push(Warning {
                pointer: format!("/rows/{}{}", first + i, feature_tail(&feature.name)),
                code,
                message,
                feature: feature.name.clone(),
                row: first + i,
                bound,
            });
        }
    }
}

/// Row `i` of a column checked against its feature; None when it is null.
#[inline]
fn cell(
    feature: &Feature,
    column: &Column<'_>,
    words: &[Checked],
    i: usize,
    precision: Precision,
) -> Option<Checked> {
    let scalar = match column.cells {
        Cells::Float(v) if v[i].is_nan() => return None,
        Cells::Float(v) if v[i].is_infinite() => {
            let msg = format!("expected {}, got {}", feature.kind.expected(), v[i]);
            return Some(Err((Code::Type, msg)));
        }
        Cells::Float(v) => Scalar::Num(Number::Float(v[i])),
        Cells::Int(v) => Scalar::Num(Number::Int(i128::from(v[i]))),
        Cells::Bool(v) => Scalar::Bool(v[i]),
        Cells::Words { codes, .. } => {
            return usize::try_from(codes[i])
                .ok()
                .and_then(|c| words.get(c).cloned())
        }
        Cells::Other(kind) => {
            let msg = format!("expected {}, got {kind}", feature.kind.expected());
            return Some(Err((Code::Type, msg)));
        }
    };
    Some(check(feature, &scalar, precision))
}

/// An untyped word as the value its feature reads: a number by JSON's grammar (so that an
/// integer's exactness is judged as in a request), `true`/`false` in any case, or a string.
fn read_text<'w>(feature: &Feature, word: &'w str) -> Result<Scalar<'w>, (Code, String)> {
    let trimmed = word.trim();
    match feature.kind {
        Kind::Categorical { .. } => return Ok(Scalar::Str(Cow::Borrowed(word))),
        Kind::Number { .. } => {
            let mut r = Reader::new(trimmed.as_bytes());
            if let Ok(n) = r.number().and_then(|n| r.end().map(|()| n)) {
                return Ok(Scalar::Num(n));
            }
        }
        Kind::Boolean { .. } if trimmed.eq_ignore_ascii_case("true") => {
            return Ok(Scalar::Bool(true))
        }
        Kind::Boolean { .. } if trimmed.eq_ignore_ascii_case("false") => {
            return Ok(Scalar::Bool(false))
        }
        Kind::Boolean { .. } => {}
    }
    let msg = format!(
        "expected {}, got the text {word:?}",
        feature.kind.expected()
    );
    Err((Code::Type, msg))
}

#[cold]
fn reject(
    rows: &mut Rows,
    feature: &Feature,
    i: usize,
    first_row: usize,
    max_errors: usize,
    code: Code,
    message: String,
) {
    rows.valid[i] = false;
    if rows.errors.len() < max_errors {
        let pointer = format!("/rows/{}{}", first_row + i, feature_tail(&feature.name));
        rows.errors.push(FieldError::new(pointer, code, message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::compile_schema;

    fn schema() -> Schema {
        compile_schema(
            r#"{"type": "object", "required": ["amount", "country"], "properties": {
                "amount": {"type": "number", "minimum": 0, "x-ferroscore-column": 0},
                "count": {"type": ["integer", "null"], "x-ferroscore-column": 1},
                "country": {"type": "string", "x-ferroscore-column": 2,
                            "x-ferroscore-categories": {"ES": 0, "FR": 1}},
                "new": {"type": "boolean", "default": false, "x-ferroscore-column": 3}}}"#,
        )
        .expect("schema")
    }

    fn codes(rows: &Rows) -> Vec<(&str, &str)> {
        rows.errors
            .iter()
            .map(|e| (e.pointer.as_str(), e.code.as_str()))
            .collect()
    }

    #[test]
    fn reads_rows_with_the_record_rules() {
        let words = ["FR".to_owned(), "XX".to_owned(), "ES".to_owned()];
        let columns = [
            Column {
                name: "amount",
                cells: Cells::Float(&[1.5, -1.0, 3.0]),
                nulls: None,
            },
            Column {
                name: "count",
                cells: Cells::Float(&[2.0, f64::NAN, 2.5]),
                nulls: None,
            },
            Column {
                name: "country",
                cells: Cells::Words {
                    codes: &[0, 1, 2],
                    words: &words,
                    text: false,
                },
                nulls: None,
            },
            Column {
                name: "id",
                cells: Cells::Other("timestamp[us]"),
                nulls: None,
            },
        ];
        let rows = read_columns(&schema(), Precision::F64, 4, &columns, 3, 100, 50);
        assert_eq!(rows.valid, [true, false, false]);
        assert_eq!(
            codes(&rows),
            [
                ("/rows/101/features/amount", "minimum"),
                ("/rows/102/features/count", "type"),
                ("/rows/101/features/country", "enum"),
            ]
        );
        // The absent boolean takes its default; the null count is missing.
        assert_eq!(rows.row(0)[..3], [1.5, 2.0, 1.0]);
        assert_eq!(rows.row(0)[3], 0.0);
    }

    #[test]
    fn a_null_or_absent_required_feature_is_missing() {
        let words = ["ES".to_owned()];
        let columns = [Column {
            name: "country",
            cells: Cells::Words {
                codes: &[0, -1],
                words: &words,
                text: false,
            },
            nulls: Some(&[false, false]),
        }];
        let rows = read_columns(&schema(), Precision::F64, 4, &columns, 2, 0, 2);
        assert_eq!(rows.valid, [false, false]);
        assert_eq!(
            codes(&rows),
            [
                ("/rows/0/features/amount", "missing"),
                ("/rows/1/features/amount", "missing"),
            ]
        );
    }

    #[test]
    fn refuses_types_no_feature_reads() {
        let columns = [Column {
            name: "amount",
            cells: Cells::Other("date32[day]"),
            nulls: Some(&[true, false]),
        }];
        let rows = read_columns(&schema(), Precision::F64, 4, &columns, 2, 0, 50);
        let e = &rows.errors[1];
        assert_eq!(
            (e.pointer.as_str(), e.code),
            ("/rows/1/features/amount", Code::Type)
        );
        assert_eq!(e.message, "expected a number, got date32[day]");
    }

    #[test]
    fn reads_text_as_each_feature_reads_it() {
        let words: Vec<String> = ["2.5", "x", " 7 ", "9007199254740993", "TRUE", "ES", "1e400"]
            .map(str::to_owned)
            .into();
        let text = |codes| Cells::Words {
            codes,
            words: &words,
            text: true,
        };
        let columns = [
            Column {
                name: "amount",
                cells: text(&[0, 1, 6]),
                nulls: None,
            },
            Column {
                name: "count",
                cells: text(&[2, 3, 0]),
                nulls: None,
            },
            Column {
                name: "country",
                cells: text(&[5, 5, 2]),
                nulls: None,
            },
            Column {
                name: "new",
                cells: text(&[4, 0, 4]),
                nulls: None,
            },
        ];
        let rows = read_columns(&schema(), Precision::F64, 4, &columns, 3, 0, 50);
        assert_eq!(rows.row(0), [2.5, 7.0, 0.0, 1.0]);
        assert_eq!(
            codes(&rows),
            [
                ("/rows/1/features/amount", "type"),
                ("/rows/2/features/amount", "type"),
                ("/rows/1/features/count", "integer_range"),
                ("/rows/2/features/count", "type"),
                ("/rows/2/features/country", "enum"),
                ("/rows/1/features/new", "type"),
            ]
        );
    }
}
