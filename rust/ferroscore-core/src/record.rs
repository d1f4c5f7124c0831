//! Parses one feature record straight from the request bytes into the model's input vector,
//! validating each value against the compiled schema as it is read: no intermediate tree.

use crate::error::{escape_token, Code, FieldError, RequestError};
use crate::schema::{Feature, FeatureType, Schema};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// At most this many problems are reported for one request.
pub const MAX_ERRORS: usize = 50;

/// Integers beyond ±2^53 have no exact f64 and would be scored as another number.
const MAX_EXACT_INTEGER: i128 = 1 << 53;

/// Marks a column no key has written yet; distinct from the NaN that stands for "missing".
const UNSEEN: u64 = 0x7ff8_dead_beef_0001;

/// Hard limits applied before any work proportional to the input.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1 << 20,
        }
    }
}

/// Fills `out` (the model's input vector, NaN = missing) from a `{"features": {...}}` body.
pub fn parse_record(
    body: &[u8],
    schema: &Schema,
    limits: &Limits,
    out: &mut [f64],
) -> Result<(), RequestError> {
    if body.len() > limits.max_body_bytes {
        return Err(too_large(body.len(), limits.max_body_bytes));
    }
    let mut errors = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(body);
    let seed = BodySeed {
        schema,
        out,
        errors: &mut errors,
    };
    seed.deserialize(&mut de)
        .and_then(|()| de.end())
        .map_err(malformed)?;
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RequestError::Invalid(errors))
    }
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
fn malformed(e: serde_json::Error) -> RequestError {
    // serde_json's message already ends with "at line L column C".
    let message = format!("malformed JSON: {e}");
    RequestError::Malformed(FieldError::new(String::new(), Code::Syntax, message))
}

/// Collects errors up to the cap; the pointer is only built when the error is kept.
fn report(errors: &mut Vec<FieldError>, pointer: impl FnOnce() -> String, code: Code, msg: String) {
    if errors.len() < MAX_ERRORS {
        errors.push(FieldError::new(pointer(), code, msg));
    }
}

struct BodySeed<'s, 'o, 'e> {
    schema: &'s Schema,
    out: &'o mut [f64],
    errors: &'e mut Vec<FieldError>,
}

impl<'de> DeserializeSeed<'de> for BodySeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for BodySeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object with a \"features\" object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen_features = false;
        while let Some(Key(key)) = map.next_key()? {
            if key != "features" {
                map.next_value::<IgnoredAny>()?;
                report(
                    self.errors,
                    || format!("/{}", escape_token(&key)),
                    Code::UnknownField,
                    format!("unknown field \"{key}\"; a record is {{\"features\": {{...}}}}"),
                );
            } else if seen_features {
                map.next_value::<IgnoredAny>()?;
                report(
                    self.errors,
                    || "/features".into(),
                    Code::DuplicateKey,
                    "\"features\" appears more than once".into(),
                );
            } else {
                seen_features = true;
                map.next_value_seed(FeaturesSeed {
                    schema: self.schema,
                    out: &mut *self.out,
                    errors: &mut *self.errors,
                })?;
            }
        }
        if !seen_features {
            report(
                self.errors,
                || "/features".into(),
                Code::Missing,
                "the request has no \"features\" object".into(),
            );
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)?;
        self.not_an_object()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_an_object()
    }
}

impl BodySeed<'_, '_, '_> {
    #[cold]
    fn not_an_object<E>(self) -> Result<(), E> {
        report(
            self.errors,
            String::new,
            Code::Type,
            "the request body must be a JSON object like {\"features\": {...}}".into(),
        );
        Ok(())
    }
}

struct FeaturesSeed<'s, 'o, 'e> {
    schema: &'s Schema,
    out: &'o mut [f64],
    errors: &'e mut Vec<FieldError>,
}

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of feature values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let FeaturesSeed {
            schema,
            out,
            errors,
        } = self;
        for f in schema.features() {
            out[f.column] = f64::from_bits(UNSEEN);
        }
        while let Some(Key(key)) = map.next_key()? {
            let Some(feature) = schema.lookup(&key) else {
                map.next_value::<IgnoredAny>()?;
                if !schema.allow_unknown() {
                    report(
                        errors,
                        || format!("/features/{}", escape_token(&key)),
                        Code::UnknownFeature,
                        format!("\"{key}\" is not a feature of this model"),
                    );
                }
                continue;
            };
            let value = map.next_value::<Scalar>()?;
            let slot = &mut out[feature.column];
            if slot.to_bits() != UNSEEN {
                report(
                    errors,
                    || feature.pointer(),
                    Code::DuplicateKey,
                    format!("feature \"{key}\" appears more than once"),
                );
                continue;
            }
            match check(feature, value) {
                Ok(x) => *slot = x,
                Err((code, msg)) => {
                    // Mark as seen so a later "missing" error does not pile on.
                    *slot = f64::NAN;
                    report(errors, || feature.pointer(), code, msg);
                }
            }
        }
        for f in schema.features() {
            let slot = &mut out[f.column];
            if slot.to_bits() == UNSEEN {
                *slot = f64::NAN;
                if f.required {
                    report(
                        errors,
                        || f.pointer(),
                        Code::Missing,
                        format!("required feature \"{}\" is missing", f.name),
                    );
                }
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<(), A::Error> {
        drain_seq(seq)?;
        self.not_an_object()
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_an_object()
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_an_object()
    }
}

impl FeaturesSeed<'_, '_, '_> {
    #[cold]
    fn not_an_object<E>(self) -> Result<(), E> {
        report(
            self.errors,
            || "/features".into(),
            Code::Type,
            "\"features\" must be an object of feature values".into(),
        );
        Ok(())
    }
}

/// Checks one value against its feature; on success, the number to score.
fn check(feature: &Feature, value: Scalar) -> Result<f64, (Code, String)> {
    let x = match value {
        Scalar::Float(x) => {
            if feature.ty == FeatureType::Integer && x.fract() != 0.0 {
                return Err((Code::Type, format!("expected an integer, got {x}")));
            }
            x
        }
        Scalar::Int(i) => {
            if i.abs() > MAX_EXACT_INTEGER {
                return Err((
                    Code::IntegerRange,
                    format!("{i} is beyond ±2^53, the range where numbers are exact"),
                ));
            }
            i as f64
        }
        Scalar::Null if feature.nullable => return Ok(f64::NAN),
        other => {
            let expected = match feature.ty {
                FeatureType::Number => "a number",
                FeatureType::Integer => "an integer",
            };
            return Err((
                Code::Type,
                format!("expected {expected}, got {}", other.describe()),
            ));
        }
    };
    if let Some(b) = feature.minimum {
        if x < b.value || (b.exclusive && x == b.value) {
            let op = if b.exclusive { ">" } else { ">=" };
            return Err((Code::Minimum, format!("must be {op} {}, got {x}", b.value)));
        }
    }
    if let Some(b) = feature.maximum {
        if x > b.value || (b.exclusive && x == b.value) {
            let op = if b.exclusive { "<" } else { "<=" };
            return Err((Code::Maximum, format!("must be {op} {}, got {x}", b.value)));
        }
    }
    Ok(x)
}

/// A feature value as it appeared in the JSON; compound values are skipped, not built.
enum Scalar {
    Float(f64),
    Int(i128),
    Bool,
    Str,
    Null,
    Array,
    Object,
}

impl Scalar {
    #[cold]
    fn describe(&self) -> &'static str {
        match self {
            Scalar::Float(_) | Scalar::Int(_) => "a number",
            Scalar::Bool => "a boolean",
            Scalar::Str => "a string",
            Scalar::Null => "null",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }
}

impl<'de> de::Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a feature value")
            }
            fn visit_f64<E>(self, x: f64) -> Result<Scalar, E> {
                Ok(Scalar::Float(x))
            }
            fn visit_u64<E>(self, x: u64) -> Result<Scalar, E> {
                Ok(Scalar::Int(x.into()))
            }
            fn visit_i64<E>(self, x: i64) -> Result<Scalar, E> {
                Ok(Scalar::Int(x.into()))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Scalar, E> {
                Ok(Scalar::Bool)
            }
            fn visit_str<E>(self, _: &str) -> Result<Scalar, E> {
                Ok(Scalar::Str)
            }
            fn visit_unit<E>(self) -> Result<Scalar, E> {
                Ok(Scalar::Null)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Scalar, A::Error> {
                drain_seq(seq).map(|()| Scalar::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Object)
            }
        }
        d.deserialize_any(V)
    }
}

/// An object key, borrowed from the body unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::compile_schema;

    fn schema() -> Schema {
        compile_schema(
            r#"{"type": "object", "required": ["a", "b"], "additionalProperties": false,
                "properties": {
                  "a": {"type": "number", "minimum": 0, "x-ferroscore-column": 0},
                  "b": {"type": "integer", "maximum": 10, "x-ferroscore-column": 1},
                  "c/d": {"type": ["number", "null"], "x-ferroscore-column": 2}}}"#,
        )
        .expect("schema")
    }

    fn parse(body: &str) -> Result<Vec<f64>, RequestError> {
        let mut out = vec![0.0; 3];
        parse_record(body.as_bytes(), &schema(), &Limits::default(), &mut out).map(|()| out)
    }

    fn codes(body: &str) -> Vec<(String, &'static str)> {
        parse(body)
            .expect_err(body)
            .errors()
            .iter()
            .map(|e| (e.pointer.clone(), e.code.as_str()))
            .collect()
    }

    #[test]
    fn fills_columns_and_missing_as_nan() {
        let out = parse(r#"{"features": {"b": 3, "a": 0.25}}"#).expect("valid");
        assert_eq!(&out[..2], &[0.25, 3.0]);
        assert!(out[2].is_nan());
        let out = parse(r#"{"features": {"a": 1e0, "b": 2.0, "c\/d": null}}"#).expect("valid");
        assert!(out[2].is_nan());
    }

    #[test]
    fn reports_every_problem_with_a_pointer() {
        let got = codes(r#"{"features": {"a": -1, "b": 1.5, "c/d": "x", "zz": 1}, "extra": 1}"#);
        assert_eq!(
            got,
            vec![
                ("/features/a".to_string(), "minimum"),
                ("/features/b".to_string(), "type"),
                ("/features/c~1d".to_string(), "type"),
                ("/features/zz".to_string(), "unknown_feature"),
                ("/extra".to_string(), "unknown_field"),
            ]
        );
        assert_eq!(
            codes(r#"{"features": {"a": 1}}"#),
            vec![("/features/b".to_string(), "missing")]
        );
        assert_eq!(
            codes(r#"{"features": {"a": 1, "a": 2, "b": 11}}"#),
            vec![
                ("/features/a".to_string(), "duplicate_key"),
                ("/features/b".to_string(), "maximum")
            ]
        );
        assert_eq!(codes(r#"[1, 2]"#), vec![(String::new(), "type")]);
        assert_eq!(codes(r#"{}"#), vec![("/features".to_string(), "missing")]);
        assert_eq!(
            codes(r#"{"features": {"a": 1, "b": 9007199254740993}}"#),
            vec![("/features/b".to_string(), "integer_range")]
        );
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
        ] {
            match parse(body) {
                Err(RequestError::Malformed(e)) => assert_eq!(e.code, Code::Syntax, "{body}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn oversized_bodies_are_refused_before_parsing() {
        let mut out = vec![0.0; 3];
        let limits = Limits { max_body_bytes: 8 };
        let err =
            parse_record(b"{\"features\": {}}", &schema(), &limits, &mut out).expect_err("big");
        assert!(matches!(err, RequestError::TooLarge(_)));
    }

    #[test]
    fn errors_are_capped() {
        let many: Vec<String> = (0..200).map(|i| format!("\"u{i}\": 1")).collect();
        let body = format!("{{\"features\": {{{}}}}}", many.join(","));
        assert_eq!(parse(&body).expect_err("many").errors().len(), MAX_ERRORS);
    }
}
