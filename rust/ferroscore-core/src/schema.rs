//! The model's input schema: a JSON Schema (2020-12) subset compiled once into the table the
//! record parser consults per key. Anything not enforced is refused here, so what a client reads
//! in the published schema is exactly what is checked.

use crate::error::{escape_token, SchemaError};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};

/// Binds a feature to its column in the model's input vector.
pub const COLUMN_KEYWORD: &str = "x-ferroscore-column";

/// Keywords that only annotate and change nothing about validation.
const ANNOTATIONS: [&str; 4] = ["title", "description", "examples", "$comment"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureType {
    Number,
    Integer,
}

/// One bound of a numeric range; `exclusive` says whether the bound itself is refused.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bound {
    pub value: f64,
    pub exclusive: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Feature {
    pub name: String,
    pub column: usize,
    pub ty: FeatureType,
    pub nullable: bool,
    pub required: bool,
    pub minimum: Option<Bound>,
    pub maximum: Option<Bound>,
}

impl Feature {
    /// The JSON Pointer of this feature inside a single-record request.
    #[cold]
    pub fn pointer(&self) -> String {
        format!("/features/{}", escape_token(&self.name))
    }
}

/// A compiled input schema.
#[derive(Debug, Clone)]
pub struct Schema {
    features: Vec<Feature>,
    by_name: FxHashMap<Box<str>, usize>,
    allow_unknown: bool,
}

impl Schema {
    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    pub fn lookup(&self, name: &str) -> Option<&Feature> {
        self.by_name.get(name).map(|&i| &self.features[i])
    }

    /// Whether keys the schema does not name are skipped rather than refused.
    pub fn allow_unknown(&self) -> bool {
        self.allow_unknown
    }

    /// The largest column any feature binds to, plus one.
    pub fn width(&self) -> usize {
        self.features
            .iter()
            .map(|f| f.column + 1)
            .max()
            .unwrap_or(0)
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
    let mut by_name = FxHashMap::default();
    let mut columns = FxHashMap::default();
    for (name, spec) in properties {
        let pointer = format!("/properties/{}", escape_token(name));
        let feature = compile_feature(name, spec, required.contains(&name.as_str()), &pointer)?;
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
    // Model column order, so whatever iterates the features reads the input vector in order.
    features.sort_by_key(|f| f.column);
    for (i, f) in features.iter().enumerate() {
        by_name.insert(f.name.as_str().into(), i);
    }
    if let Some(name) = required.iter().find(|n| !properties.contains_key(**n)) {
        return Err(SchemaError::new(
            "/required",
            format!("\"{name}\" is not a declared feature"),
        ));
    }
    Ok(Schema {
        features,
        by_name,
        allow_unknown,
    })
}

fn compile_feature(
    name: &str,
    spec: &Value,
    required: bool,
    pointer: &str,
) -> Result<Feature, SchemaError> {
    let spec = as_object(spec, pointer)?;
    let at = |k: &str| format!("{pointer}/{k}");
    let (ty, nullable) = match spec.get("type") {
        Some(t) => feature_type(t, &at("type"))?,
        None => return Err(SchemaError::new(at("type"), "every feature needs a type")),
    };
    let column = spec
        .get(COLUMN_KEYWORD)
        .and_then(Value::as_u64)
        .and_then(|c| usize::try_from(c).ok())
        .ok_or_else(|| {
            SchemaError::new(
                at(COLUMN_KEYWORD),
                "every feature needs its model column (an integer >= 0)",
            )
        })?;
    let mut feature = Feature {
        name: name.to_owned(),
        column,
        ty,
        nullable,
        required,
        minimum: None,
        maximum: None,
    };
    for (key, value) in spec {
        let number = || {
            value
                .as_f64()
                .ok_or_else(|| SchemaError::new(at(key), "must be a number"))
        };
        match key.as_str() {
            "type" | COLUMN_KEYWORD => {}
            "minimum" => feature.minimum = tighter_min(feature.minimum, number()?, false),
            "exclusiveMinimum" => feature.minimum = tighter_min(feature.minimum, number()?, true),
            "maximum" => feature.maximum = tighter_max(feature.maximum, number()?, false),
            "exclusiveMaximum" => feature.maximum = tighter_max(feature.maximum, number()?, true),
            k if ANNOTATIONS.contains(&k) => {}
            k => return Err(unsupported(pointer, k)),
        }
    }
    if let (Some(lo), Some(hi)) = (feature.minimum, feature.maximum) {
        if lo.value > hi.value || (lo.value == hi.value && (lo.exclusive || hi.exclusive)) {
            return Err(SchemaError::new(pointer, "the bounds admit no value"));
        }
    }
    Ok(feature)
}

fn feature_type(t: &Value, pointer: &str) -> Result<(FeatureType, bool), SchemaError> {
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
    let mut types = names.iter().filter(|n| **n != "null");
    let ty = match (types.next(), types.next()) {
        (Some(&"number"), None) => FeatureType::Number,
        (Some(&"integer"), None) => FeatureType::Integer,
        (Some(other), None) => {
            return Err(SchemaError::new(
                pointer,
                format!("feature type \"{other}\" is not supported"),
            ))
        }
        _ => {
            return Err(SchemaError::new(
                pointer,
                "give exactly one type besides \"null\"",
            ))
        }
    };
    Ok((ty, nullable))
}

fn tighter_min(old: Option<Bound>, value: f64, exclusive: bool) -> Option<Bound> {
    let new = Bound { value, exclusive };
    match old {
        Some(o) if o.value > value || (o.value == value && o.exclusive) => Some(o),
        _ => Some(new),
    }
}

fn tighter_max(old: Option<Bound>, value: f64, exclusive: bool) -> Option<Bound> {
    let new = Bound { value, exclusive };
    match old {
        Some(o) if o.value < value || (o.value == value && o.exclusive) => Some(o),
        _ => Some(new),
    }
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
    fn compiles_bounds_types_and_columns() {
        let s = compile(
            r#"{"a": {"type": "number", "minimum": 0, "exclusiveMaximum": 5, "x-ferroscore-column": 1},
                "b": {"type": ["integer", "null"], "x-ferroscore-column": 0}}"#,
        )
        .expect("valid schema");
        let a = s.lookup("a").expect("a");
        assert_eq!(a.column, 1);
        assert!(a.required);
        assert_eq!(
            a.minimum,
            Some(Bound {
                value: 0.0,
                exclusive: false
            })
        );
        assert_eq!(
            a.maximum,
            Some(Bound {
                value: 5.0,
                exclusive: true
            })
        );
        let b = s.lookup("b").expect("b");
        assert_eq!(
            (b.ty, b.nullable, b.required),
            (FeatureType::Integer, true, false)
        );
        assert_eq!(s.width(), 2);
        assert!(!s.allow_unknown());
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
                r#"{"a": {"type": "number"}}"#,
                "/properties/a/x-ferroscore-column",
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
        ];
        for (props, pointer) in cases {
            let err = compile(props).expect_err(props);
            assert_eq!(err.pointer, pointer, "{props}: {err}");
        }
    }
}
