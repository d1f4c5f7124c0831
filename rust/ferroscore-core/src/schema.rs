//! The model's input schema: a JSON Schema (2020-12) subset compiled once into the table the
//! record parser consults per key. Anything not enforced is refused here, so what a client reads
//! in the published schema is exactly what is checked.

use crate::error::{escape_token, SchemaError};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

/// Binds a feature to its column in the model's input vector.
pub const COLUMN_KEYWORD: &str = "x-ferroscore-column";
/// Maps each accepted string of a categorical feature to the model's category code.
pub const CATEGORIES_KEYWORD: &str = "x-ferroscore-categories";
/// What an absent or null value becomes: "nan", "default" or "error".
pub const MISSING_KEYWORD: &str = "x-ferroscore-missing";
/// What a string outside the vocabulary does: "error" (refuse the record) or "missing"
/// (score it as a missing value, the tree's default branch).
pub const UNKNOWN_KEYWORD: &str = "x-ferroscore-unknown-category";

/// The range a number was seen in when the model was trained, `[low, high]`: a value outside
/// it is scored (a tree takes its last branch) and carries an `out_of_training_range`
/// warning. Unlike `minimum`/`maximum`, it refuses nothing.
pub const TRAINING_RANGE_KEYWORD: &str = "x-ferroscore-training-range";

/// Who supplies the feature: "request" (the caller; the default) or "enrichment" (a hook of
/// the service, after validation: callers may not send it). "context" marks a string the
/// caller sends that the model does not read (see `ContextField`).
pub const SOURCE_KEYWORD: &str = "x-ferroscore-source";

/// At most this many context fields: the record reader tracks them in one 64-bit set.
pub const MAX_CONTEXT_FIELDS: usize = 64;

/// Keywords that only annotate and change nothing about validation.
const ANNOTATIONS: [&str; 5] = ["title", "description", "examples", "$comment", "deprecated"];

/// One bound of a numeric range; `exclusive` says whether the bound itself is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub exclusive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// JSON numbers, within bounds and, when given, one of `allowed`; outside `trained`
    /// (low, high), scored with a warning.
    Number {
        integer: bool,
        minimum: Option<Bound>,
        maximum: Option<Bound>,
        allowed: Option<Vec<f64>>,
        trained: Option<(f64, f64)>,
    },
    /// true → 1, false → 0.
    Boolean { allowed: Option<Vec<bool>> },
    /// Strings mapped to category codes; `codes` holds exactly the accepted strings.
    Categorical {
        codes: FxHashMap<Box<str>, f64>,
        min_length: usize,
        max_length: usize,
        /// An unknown string scores as missing (NaN) rather than refusing the record.
        unknown_as_missing: bool,
    },
}

impl Kind {
    #[cold]
    pub fn expected(&self) -> &'static str {
        match self {
            Kind::Number { integer: true, .. } => "an integer",
            Kind::Number { .. } => "a number",
            Kind::Boolean { .. } => "a boolean",
            Kind::Categorical { .. } => "a string",
        }
    }
}

/// What the parser writes for an absent (not required) or null (nullable) value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Missing {
    /// NaN: trees take the default branch.
    Nan,
    /// The schema's `default`, already converted to the model's number.
    Default(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub name: String,
    /// The name holds no quote, backslash or control character: a key equal to it byte for
    /// byte is this feature, with no decoding (see `Reader::eat_key`).
    pub plain: bool,
    pub column: usize,
    pub kind: Kind,
    pub nullable: bool,
    pub required: bool,
    pub missing: Missing,
    /// Supplied by an enrichment hook, never by the caller.
    pub enriched: bool,
}

/// A string sent with each record that the model does not read — a card, device or customer
/// id: checked like a feature, kept in the decision log and shown to hooks, so the log can be
/// searched by the entity a decision was about.
#[derive(Debug, Clone, PartialEq)]
pub struct ContextField {
    pub name: String,
    pub nullable: bool,
    pub required: bool,
    pub min_length: usize,
    pub max_length: usize,
}

/// A compiled input schema.
#[derive(Debug, Clone)]
pub struct Schema {
    features: Vec<Feature>,
    by_name: FxHashMap<Box<[u8]>, usize>,
    context: Vec<ContextField>,
    context_by_name: FxHashMap<Box<[u8]>, usize>,
    allow_unknown: bool,
}

impl Schema {
    /// The features in model column order.
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    pub fn lookup(&self, name: &str) -> Option<&Feature> {
        self.by_name
            .get(name.as_bytes())
            .map(|&i| &self.features[i])
    }

    /// Looks a key up by its raw bytes; returns the feature's index too.
    #[inline]
    pub fn lookup_bytes(&self, name: &[u8]) -> Option<(usize, &Feature)> {
        self.by_name.get(name).map(|&i| (i, &self.features[i]))
    }

    /// The context fields, in the schema's order; their values are `Rows::context`.
    pub fn context(&self) -> &[ContextField] {
        &self.context
    }

    /// Looks a key up among the context fields by its raw bytes.
    pub fn lookup_context_bytes(&self, name: &[u8]) -> Option<(usize, &ContextField)> {
        self.context_by_name
            .get(name)
            .map(|&i| (i, &self.context[i]))
    }

    /// Whether keys the schema does not name are skipped rather than refused.
    pub fn allow_unknown(&self) -> bool {
        self.allow_unknown
    }
}

/// Compiles the schema text of a model; refuses keywords it would not enforce.
pub fn compile_schema(text: &str) -> Result<Schema, SchemaError> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| SchemaError::new("", format!("not valid JSON: {e}")))?;
    let root = as_object(&root, "")?;
    let mut properties = None;
    let mut required: Vec<&str> = Vec::new();
    let mut allow_unknown = false;
    for (key, value) in root {
        match key.as_str() {
            "$schema" | "$id" => {}
            "type" if value == "object" => {}
            "type" => {
                return Err(SchemaError::new(
                    "/type",
                    "the root must be of type \"object\"",
                ))
            }
            "properties" => properties = Some(as_object(value, "/properties")?),
            "required" => required = string_list(value, "/required")?,
            "additionalProperties" => {
                allow_unknown = value.as_bool().ok_or_else(|| {
                    SchemaError::new("/additionalProperties", "must be true or false")
                })?
            }
            k if ANNOTATIONS.contains(&k) => {}
            k => return Err(unsupported("", k)),
        }
    }
    let properties = properties
        .ok_or_else(|| SchemaError::new("/properties", "the schema names no features"))?;
    let mut features = Vec::with_capacity(properties.len());
    let mut context = Vec::new();
    let mut columns = FxHashMap::default();
    for (name, spec) in properties {
        let pointer = format!("/properties/{}", escape_token(name));
        let required = required.contains(&name.as_str());
        if spec.get(SOURCE_KEYWORD).and_then(Value::as_str) == Some("context") {
            if context.len() == MAX_CONTEXT_FIELDS {
                return Err(SchemaError::new(
                    pointer,
                    format!("more than {MAX_CONTEXT_FIELDS} context fields"),
                ));
            }
            context.push(compile_context(name, spec, required, &pointer)?);
            continue;
        }
        let feature = compile_feature(name, spec, required, &pointer)?;
        if let Some(other) = columns.insert(feature.column, name) {
            return Err(SchemaError::new(
                format!("{pointer}/{COLUMN_KEYWORD}"),
                format!(
                    "column {} is already bound to feature \"{other}\"",
                    feature.column
                ),
            ));
        }
        features.push(feature);
    }
    if let Some(name) = required.iter().find(|n| !properties.contains_key(**n)) {
        return Err(SchemaError::new(
            "/required",
            format!("\"{name}\" is not a declared feature"),
        ));
    }
    // Model column order, so whatever iterates the features reads the input vector in order.
    features.sort_by_key(|f| f.column);
    let by_name = features
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_bytes().into(), i))
        .collect();
    let context_by_name = context
        .iter()
        .enumerate()
        .map(|(i, f)| (f.name.as_bytes().into(), i))
        .collect();
    Ok(Schema {
        features,
        by_name,
        context,
        context_by_name,
        allow_unknown,
    })
}

/// A context field: a string (or null, when nullable) with optional length bounds, and no
/// model column.
fn compile_context(
    name: &str,
    spec: &Value,
    required: bool,
    pointer: &str,
) -> Result<ContextField, SchemaError> {
    let (obj, ty, nullable) = typed(spec, pointer)?;
    let at = |k: &str| format!("{pointer}/{k}");
    if ty != "string" {
        return Err(SchemaError::new(
            at("type"),
            "a context field is a \"string\" (send numeric ids as strings)",
        ));
    }
    let mut field = ContextField {
        name: name.to_owned(),
        nullable,
        required,
        min_length: 0,
        max_length: usize::MAX,
    };
    for (key, value) in obj {
        let length = || length(value, || at(key));
        match key.as_str() {
            "type" | SOURCE_KEYWORD => {}
            "minLength" => field.min_length = length()?,
            "maxLength" => field.max_length = length()?,
            COLUMN_KEYWORD => {
                return Err(SchemaError::new(
                    at(key),
                    "a context field is not a model input: it has no column",
                ))
            }
            k if ANNOTATIONS.contains(&k) => {}
            k => return Err(unsupported(pointer, k)),
        }
    }
    Ok(field)
}

/// The keywords of one feature, gathered before they are checked against each other.
#[derive(Default)]
struct Spec<'a> {
    minimum: Option<Bound>,
    maximum: Option<Bound>,
    enumeration: Option<&'a Vec<Value>>,
    default: Option<&'a Value>,
    categories: Option<&'a Map<String, Value>>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    missing: Option<&'a str>,
    unknown: Option<&'a str>,
    trained: Option<(f64, f64)>,
    enriched: bool,
}

fn compile_feature(
    name: &str,
    spec: &Value,
    required: bool,
    pointer: &str,
) -> Result<Feature, SchemaError> {
    let (obj, ty, nullable) = typed(spec, pointer)?;
    let at = |k: &str| format!("{pointer}/{k}");
    let column = obj
        .get(COLUMN_KEYWORD)
        .and_then(Value::as_u64)
        .and_then(|c| usize::try_from(c).ok())
        .ok_or_else(|| {
            SchemaError::new(
                at(COLUMN_KEYWORD),
                "every feature needs its model column (an integer >= 0)",
            )
        })?;
    let mut s = Spec::default();
    for (key, value) in obj {
        let number = || {
            value
                .as_f64()
                .ok_or_else(|| SchemaError::new(at(key), "must be a number"))
        };
        let length = || length(value, || at(key));
        match key.as_str() {
            "type" | COLUMN_KEYWORD => {}
            "minimum" => s.minimum = tighter(s.minimum, number()?, false, true),
            "exclusiveMinimum" => s.minimum = tighter(s.minimum, number()?, true, true),
            "maximum" => s.maximum = tighter(s.maximum, number()?, false, false),
            "exclusiveMaximum" => s.maximum = tighter(s.maximum, number()?, true, false),
            "enum" => {
                s.enumeration = Some(
                    value
                        .as_array()
                        .filter(|a| !a.is_empty())
                        .ok_or_else(|| SchemaError::new(at(key), "must be a non-empty list"))?,
                )
            }
            "default" => s.default = Some(value),
            "minLength" => s.min_length = Some(length()?),
            "maxLength" => s.max_length = Some(length()?),
            CATEGORIES_KEYWORD => s.categories = Some(as_object(value, &at(key))?),
            TRAINING_RANGE_KEYWORD => {
                s.trained = Some(
                    match value
                        .as_array()
                        .map(|a| a.iter().map(Value::as_f64).collect())
                    {
                        Some(Some::<Vec<f64>>(r)) if r.len() == 2 && r[0] <= r[1] => (r[0], r[1]),
                        _ => {
                            return Err(SchemaError::new(
                                at(key),
                                "must be [low, high]: two numbers, low <= high",
                            ))
                        }
                    },
                )
            }
            MISSING_KEYWORD => {
                s.missing = Some(value.as_str().ok_or_else(|| {
                    SchemaError::new(at(key), "must be \"nan\", \"default\" or \"error\"")
                })?)
            }
            UNKNOWN_KEYWORD => {
                s.unknown = Some(
                    value
                        .as_str()
                        .filter(|v| ["error", "missing"].contains(v))
                        .ok_or_else(|| {
                            SchemaError::new(at(key), "must be \"error\" or \"missing\"")
                        })?,
                )
            }
            SOURCE_KEYWORD => {
                s.enriched = match value.as_str() {
                    Some("request") => false,
                    Some("enrichment") => true,
                    _ => {
                        return Err(SchemaError::new(
                            at(key),
                            "must be \"request\", \"enrichment\" or \"context\"",
                        ))
                    }
                }
            }
            k if ANNOTATIONS.contains(&k) => {}
            k => return Err(unsupported(pointer, k)),
        }
    }
    let kind = match ty {
        "number" | "integer" => number_kind(&s, ty == "integer", pointer)?,
        "boolean" => boolean_kind(&s, pointer)?,
        _ => categorical_kind(&s, pointer)?,
    };
    let missing = missing_policy(&s, &kind, required, nullable, pointer)?;
    let plain = !name.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20);
    Ok(Feature {
        name: name.to_owned(),
        plain,
        column,
        kind,
        nullable,
        required,
        missing,
        enriched: s.enriched,
    })
}

fn refuse_keywords(
    s: &Spec<'_>,
    pointer: &str,
    ty: &str,
    numeric: bool,
) -> Result<(), SchemaError> {
    let present = [
        ("minimum", !numeric && s.minimum.is_some()),
        ("maximum", !numeric && s.maximum.is_some()),
        ("minLength", ty != "string" && s.min_length.is_some()),
        ("maxLength", ty != "string" && s.max_length.is_some()),
        (CATEGORIES_KEYWORD, ty != "string" && s.categories.is_some()),
        (UNKNOWN_KEYWORD, ty != "string" && s.unknown.is_some()),
        (TRAINING_RANGE_KEYWORD, !numeric && s.trained.is_some()),
    ];
    match present.iter().find(|(_, bad)| *bad) {
        Some((k, _)) => Err(SchemaError::new(
            format!("{pointer}/{k}"),
            format!("\"{k}\" does not apply to a feature of type \"{ty}\""),
        )),
        None => Ok(()),
    }
}

fn number_kind(s: &Spec<'_>, integer: bool, pointer: &str) -> Result<Kind, SchemaError> {
    refuse_keywords(s, pointer, if integer { "integer" } else { "number" }, true)?;
    if let (Some(lo), Some(hi)) = (s.minimum, s.maximum) {
        if lo.value > hi.value || (lo.value == hi.value && (lo.exclusive || hi.exclusive)) {
            return Err(SchemaError::new(pointer, "the bounds admit no value"));
        }
    }
    let allowed = enum_values(s, pointer, Value::as_f64, "numbers")?;
    Ok(Kind::Number {
        integer,
        minimum: s.minimum,
        maximum: s.maximum,
        allowed,
        trained: s.trained,
    })
}

fn boolean_kind(s: &Spec<'_>, pointer: &str) -> Result<Kind, SchemaError> {
    refuse_keywords(s, pointer, "boolean", false)?;
    let allowed = enum_values(s, pointer, Value::as_bool, "booleans")?;
    Ok(Kind::Boolean { allowed })
}

/// The `enum` of a number or boolean feature, each value converted by `get`.
fn enum_values<T>(
    s: &Spec<'_>,
    pointer: &str,
    get: fn(&Value) -> Option<T>,
    what: &str,
) -> Result<Option<Vec<T>>, SchemaError> {
    let Some(values) = s.enumeration else {
        return Ok(None);
    };
    values
        .iter()
        .map(get)
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| SchemaError::new(format!("{pointer}/enum"), format!("must list {what}")))
}

fn categorical_kind(s: &Spec<'_>, pointer: &str) -> Result<Kind, SchemaError> {
    refuse_keywords(s, pointer, "string", false)?;
    let vocabulary = s.categories.ok_or_else(|| {
        SchemaError::new(
            format!("{pointer}/{CATEGORIES_KEYWORD}"),
            "a string feature needs its vocabulary: an object mapping each string to the model's category code",
        )
    })?;
    let mut codes = FxHashMap::default();
    for (word, code) in vocabulary {
        let code = code.as_u64().filter(|&c| c < 1 << 24).ok_or_else(|| {
            SchemaError::new(
                format!("{pointer}/{CATEGORIES_KEYWORD}/{}", escape_token(word)),
                "category codes are integers from 0 to 2^24 - 1",
            )
        })?;
        codes.insert(word.as_str().into(), code as f64);
    }
    if let Some(values) = s.enumeration {
        let mut kept = FxHashMap::default();
        for v in values {
            let word = v
                .as_str()
                .ok_or_else(|| SchemaError::new(format!("{pointer}/enum"), "must list strings"))?;
            let code = codes.get(word).ok_or_else(|| {
                SchemaError::new(
                    format!("{pointer}/enum"),
                    format!("\"{word}\" has no category code in {CATEGORIES_KEYWORD}"),
                )
            })?;
            kept.insert(word.into(), *code);
        }
        codes = kept;
    }
    Ok(Kind::Categorical {
        codes,
        min_length: s.min_length.unwrap_or(0),
        max_length: s.max_length.unwrap_or(usize::MAX),
        unknown_as_missing: s.unknown == Some("missing"),
    })
}

fn missing_policy(
    s: &Spec<'_>,
    kind: &Kind,
    required: bool,
    nullable: bool,
    pointer: &str,
) -> Result<Missing, SchemaError> {
    let default = match s.default {
        Some(v) => Some(default_value(kind, v).ok_or_else(|| {
            SchemaError::new(
                format!("{pointer}/default"),
                "the default must itself be a valid value of the feature",
            )
        })?),
        None => None,
    };
    let at = format!("{pointer}/{MISSING_KEYWORD}");
    match (s.missing, default) {
        (None | Some("default"), Some(d)) => Ok(Missing::Default(d)),
        (Some("default"), None) => Err(SchemaError::new(at, "\"default\" needs a default value")),
        (None | Some("nan"), _) => Ok(Missing::Nan),
        (Some("error"), _) if required && !nullable => Ok(Missing::Nan),
        (Some("error"), _) => Err(SchemaError::new(
            at,
            "\"error\" means the feature is listed in required and its type excludes null",
        )),
        (Some(other), _) => Err(SchemaError::new(
            at,
            format!("\"{other}\" is not \"nan\", \"default\" or \"error\""),
        )),
    }
}

/// The model number of a schema `default`, if the default is a valid value of its feature.
fn default_value(kind: &Kind, v: &Value) -> Option<f64> {
    match (kind, v) {
        (
            Kind::Number {
                integer,
                minimum,
                maximum,
                allowed,
                ..
            },
            Value::Number(n),
        ) => {
            let x = n.as_f64()?;
            let in_range = minimum.is_none_or(|b| x > b.value || (!b.exclusive && x == b.value))
                && maximum.is_none_or(|b| x < b.value || (!b.exclusive && x == b.value));
            let ok = in_range
                && (!integer || x.fract() == 0.0)
                && allowed.as_ref().is_none_or(|a| a.contains(&x));
            ok.then_some(x)
        }
        (Kind::Boolean { allowed }, Value::Bool(b)) => allowed
            .as_ref()
            .is_none_or(|a| a.contains(b))
            .then_some(f64::from(u8::from(*b))),
        (Kind::Categorical { codes, .. }, Value::String(s)) => codes.get(s.as_str()).copied(),
        _ => None,
    }
}

fn feature_type<'a>(t: &'a Value, pointer: &str) -> Result<(&'a str, bool), SchemaError> {
    let names: Vec<&str> = match t {
        Value::String(s) => vec![s.as_str()],
        Value::Array(_) => string_list(t, pointer)?,
        _ => {
            return Err(SchemaError::new(
                pointer,
                "must be a type name or a list of them",
            ))
        }
    };
    let nullable = names.contains(&"null");
    let mut types = names.into_iter().filter(|n| *n != "null");
    match (types.next(), types.next()) {
        (Some(ty @ ("number" | "integer" | "boolean" | "string")), None) => Ok((ty, nullable)),
        (Some(other), None) => Err(SchemaError::new(
            pointer,
            format!("feature type \"{other}\" is not supported"),
        )),
        _ => Err(SchemaError::new(
            pointer,
            "give exactly one type besides \"null\"",
        )),
    }
}

/// Keeps the stricter of two bounds on the same side.
fn tighter(old: Option<Bound>, value: f64, exclusive: bool, lower: bool) -> Option<Bound> {
    let new = Bound { value, exclusive };
    match old {
        Some(o) if o.value == value => Some(Bound {
            value,
            exclusive: o.exclusive || exclusive,
        }),
        Some(o) if (o.value > value) == lower => Some(o),
        _ => Some(new),
    }
}

/// A property's keywords, its type and whether it admits null.
fn typed<'a>(
    spec: &'a Value,
    pointer: &str,
) -> Result<(&'a Map<String, Value>, &'a str, bool), SchemaError> {
    let obj = as_object(spec, pointer)?;
    let at = format!("{pointer}/type");
    match obj.get("type") {
        Some(t) => feature_type(t, &at).map(|(ty, nullable)| (obj, ty, nullable)),
        None => Err(SchemaError::new(at, "every feature needs a type")),
    }
}

/// The value of `minLength` or `maxLength`.
fn length(value: &Value, at: impl FnOnce() -> String) -> Result<usize, SchemaError> {
    value
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| SchemaError::new(at(), "must be an integer >= 0"))
}

fn as_object<'a>(v: &'a Value, pointer: &str) -> Result<&'a Map<String, Value>, SchemaError> {
    v.as_object()
        .ok_or_else(|| SchemaError::new(pointer, "must be a JSON object"))
}

fn string_list<'a>(v: &'a Value, pointer: &str) -> Result<Vec<&'a str>, SchemaError> {
    v.as_array()
        .and_then(|items| items.iter().map(Value::as_str).collect::<Option<Vec<_>>>())
        .ok_or_else(|| SchemaError::new(pointer, "must be a list of strings"))
}

#[cold]
fn unsupported(pointer: &str, keyword: &str) -> SchemaError {
    SchemaError::new(
        format!("{pointer}/{}", escape_token(keyword)),
        format!("keyword \"{keyword}\" is not supported, so it would not be enforced"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile(props: &str) -> Result<Schema, SchemaError> {
        compile_schema(&format!(
            r#"{{"type": "object", "properties": {props}, "required": ["a"], "additionalProperties": false}}"#
        ))
    }

    #[test]
    fn compiles_every_kind() {
        let s = compile(
            r#"{"a": {"type": "number", "minimum": 0, "exclusiveMaximum": 5, "x-ferroscore-column": 3},
                "b": {"type": ["integer", "null"], "default": 2, "x-ferroscore-column": 0},
                "c": {"type": "boolean", "x-ferroscore-column": 1},
                "d": {"type": "string", "enum": ["FR", "DE"], "maxLength": 2,
                      "x-ferroscore-categories": {"FR": 4, "DE": 7, "IT": 9}, "x-ferroscore-column": 2}}"#,
        )
        .expect("valid schema");
        let columns: Vec<_> = s.features().iter().map(|f| f.name.as_str()).collect();
        assert_eq!(columns, ["b", "c", "d", "a"]);
        let a = s.lookup("a").expect("a");
        assert!(a.required);
        assert_eq!(
            a.kind,
            Kind::Number {
                integer: false,
                minimum: Some(Bound {
                    value: 0.0,
                    exclusive: false
                }),
                maximum: Some(Bound {
                    value: 5.0,
                    exclusive: true
                }),
                allowed: None,
                trained: None
            }
        );
        let b = s.lookup("b").expect("b");
        assert_eq!(
            (b.nullable, b.required, b.missing),
            (true, false, Missing::Default(2.0))
        );
        let Kind::Categorical {
            codes, max_length, ..
        } = &s.lookup("d").expect("d").kind
        else {
            panic!("d is categorical")
        };
        assert_eq!(codes.len(), 2, "enum narrows the vocabulary");
        assert_eq!((codes.get("DE"), *max_length), (Some(&7.0), 2));
    }

    #[test]
    fn bounds_keep_the_stricter() {
        let s = compile(
            r#"{"a": {"type": "number", "minimum": 1, "exclusiveMinimum": 1, "maximum": 3, "exclusiveMaximum": 9, "x-ferroscore-column": 0}}"#,
        )
        .expect("valid");
        let Kind::Number {
            minimum, maximum, ..
        } = s.lookup("a").expect("a").kind
        else {
            panic!("number")
        };
        assert_eq!(
            minimum,
            Some(Bound {
                value: 1.0,
                exclusive: true
            })
        );
        assert_eq!(
            maximum,
            Some(Bound {
                value: 3.0,
                exclusive: false
            })
        );
    }

    #[test]
    fn refuses_what_it_would_not_enforce() {
        let cases = [
            (
                r#"{"a": {"type": "number", "x-ferroscore-column": 0, "pattern": "x"}}"#,
                "/properties/a/pattern",
            ),
            (
                r#"{"a": {"type": "object", "x-ferroscore-column": 0}}"#,
                "/properties/a/type",
            ),
            (
                r#"{"a": {"type": "number", "x-ferroscore-column": 0, "x-ferroscore-source": "db"}}"#,
                "/properties/a/x-ferroscore-source",
            ),
            (
                r#"{"a": {"type": "number"}}"#,
                "/properties/a/x-ferroscore-column",
            ),
            (
                r#"{"a": {"type": "integer", "x-ferroscore-source": "context"}}"#,
                "/properties/a/type",
            ),
            (
                r#"{"a": {"type": "string", "x-ferroscore-source": "context", "x-ferroscore-column": 0}}"#,
                "/properties/a/x-ferroscore-column",
            ),
            (
                r#"{"a": {"type": "string", "x-ferroscore-source": "context", "enum": ["x"]}}"#,
                "/properties/a/enum",
            ),
            (
                r#"{"a": {"type": "number", "x-ferroscore-column": 0}, "b": {"type": "number", "x-ferroscore-column": 0}}"#,
                "/properties/b/x-ferroscore-column",
            ),
            (
                r#"{"a": {"type": "number", "minimum": 2, "maximum": 1, "x-ferroscore-column": 0}}"#,
                "/properties/a",
            ),
            (
                r#"{"b": {"type": "number", "x-ferroscore-column": 0}}"#,
                "/required",
            ),
            (
                r#"{"a": {"type": "string", "x-ferroscore-column": 0}}"#,
                "/properties/a/x-ferroscore-categories",
            ),
            (
                r#"{"a": {"type": "string", "enum": ["x"], "x-ferroscore-categories": {"y": 0}, "x-ferroscore-column": 0}}"#,
                "/properties/a/enum",
            ),
            (
                r#"{"a": {"type": "number", "maxLength": 3, "x-ferroscore-column": 0}}"#,
                "/properties/a/maxLength",
            ),
            (
                r#"{"a": {"type": "number", "minimum": 0, "default": -1, "x-ferroscore-column": 0}}"#,
                "/properties/a/default",
            ),
            (
                r#"{"a": {"type": ["number", "null"], "x-ferroscore-missing": "error", "x-ferroscore-column": 0}}"#,
                "/properties/a/x-ferroscore-missing",
            ),
            (
                r#"{"a": {"type": "number", "x-ferroscore-missing": "default", "x-ferroscore-column": 0}}"#,
                "/properties/a/x-ferroscore-missing",
            ),
        ];
        for (props, pointer) in cases {
            let err = compile(props).expect_err(props);
            assert_eq!(err.pointer, pointer, "{props}: {err}");
        }
    }
}
