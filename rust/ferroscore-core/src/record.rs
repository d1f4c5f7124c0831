//! The features object of one record, read straight into the model's input row: each key is
//! looked up in the compiled schema and its value checked and converted as it is read.

use crate::error::{escape_token, Code};
use crate::request::{Ctx, KeySeed, Precision};
use crate::schema::{Feature, Kind, Missing};
use crate::skip::Skip;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::borrow::Cow;
use std::fmt;

/// Marks a column no key has written yet; distinct from the NaN that stands for "missing".
const UNSEEN: u64 = 0x7ff8_dead_beef_0001;

pub(crate) struct FeaturesSeed<'c, 'a>(pub &'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        match ValueSeed::features(&mut *self.0).deserialize(d)? {
            Scalar::Object => Ok(()),
            _ => {
                self.0.report(
                    || "/features".into(),
                    Code::Type,
                    "\"features\" must be an object of feature values".into(),
                );
                Ok(())
            }
        }
    }
}

/// Fills the current row from a features object; called by `ValueSeed` on seeing a map.
fn read_features<'de, A: MapAccess<'de>>(ctx: &mut Ctx<'_>, mut map: A) -> Result<(), A::Error> {
    let schema = ctx.schema;
    for f in schema.features() {
        ctx.current_row()[f.column] = f64::from_bits(UNSEEN);
    }
    let mut n_keys = 0;
    while let Some(key) = map.next_key_seed(KeySeed(&mut *ctx))? {
        n_keys += 1;
        if n_keys > ctx.limits.max_features {
            let msg = format!(
                "more than max_features = {} features",
                ctx.limits.max_features
            );
            return Err(ctx.exceed(Code::TooManyFeatures, msg));
        }
        let Some(feature) = schema.lookup(&key) else {
            map.next_value_seed(Skip(&mut *ctx))?;
            if !schema.allow_unknown() {
                ctx.report(
                    || feature_tail(&key),
                    Code::UnknownFeature,
                    format!("\"{key}\" is not a feature of this model"),
                );
            }
            continue;
        };
        let value = map.next_value_seed(ValueSeed::value(&mut *ctx))?;
        if ctx.current_row()[feature.column].to_bits() != UNSEEN {
            ctx.report(
                || feature_tail(&key),
                Code::DuplicateKey,
                format!("feature \"{key}\" appears more than once"),
            );
            continue;
        }
        let x = match check(feature, &value, ctx.precision) {
            Ok(x) => x,
            Err((code, msg)) => {
                ctx.report(|| feature_tail(&feature.name), code, msg);
                // Seen, so that "missing" does not pile on.
                f64::NAN
            }
        };
        ctx.current_row()[feature.column] = x;
    }
    for f in schema.features() {
        let slot = &mut ctx.current_row()[f.column];
        if slot.to_bits() == UNSEEN {
            *slot = missing_value(f);
            if f.required {
                ctx.report(
                    || feature_tail(&f.name),
                    Code::Missing,
                    format!("required feature \"{}\" is missing", f.name),
                );
            }
        }
    }
    Ok(())
}

#[cold]
fn feature_tail(name: &str) -> String {
    format!("/features/{}", escape_token(name))
}

fn missing_value(f: &Feature) -> f64 {
    match f.missing {
        Missing::Nan => f64::NAN,
        Missing::Default(x) => x,
    }
}

/// Checks one value against its feature; on success, the number the model reads.
fn check(
    feature: &Feature,
    value: &Scalar<'_>,
    precision: Precision,
) -> Result<f64, (Code, String)> {
    match (&feature.kind, value) {
        (_, Scalar::Null) if feature.nullable => Ok(missing_value(feature)),
        (
            Kind::Number {
                integer,
                minimum,
                maximum,
                allowed,
            },
            Scalar::Int(_) | Scalar::Float(_),
        ) => {
            let x = match *value {
                Scalar::Int(i) if !precision.holds_exactly(i) => {
                    return Err((
                        Code::IntegerRange,
                        format!(
                            "{i} is not exactly representable as the model's {} input",
                            precision.name()
                        ),
                    ));
                }
                Scalar::Int(i) => i as f64,
                Scalar::Float(x) if *integer && x.fract() != 0.0 => {
                    return Err((Code::Type, format!("expected an integer, got {x}")));
                }
                Scalar::Float(x) => x,
                _ => unreachable!("matched numbers only"),
            };
            if let Some(b) = minimum {
                if x < b.value || (b.exclusive && x == b.value) {
                    let op = if b.exclusive { ">" } else { ">=" };
                    return Err((Code::Minimum, format!("must be {op} {}, got {x}", b.value)));
                }
            }
            if let Some(b) = maximum {
                if x > b.value || (b.exclusive && x == b.value) {
                    let op = if b.exclusive { "<" } else { "<=" };
                    return Err((Code::Maximum, format!("must be {op} {}, got {x}", b.value)));
                }
            }
            match allowed {
                Some(a) if !a.contains(&x) => Err((Code::Enum, format!("{x} is not one of {a:?}"))),
                _ => Ok(x),
            }
        }
        (Kind::Boolean { allowed }, Scalar::Bool(b)) => match allowed {
            Some(a) if !a.contains(b) => Err((Code::Enum, format!("{b} is not allowed"))),
            _ => Ok(f64::from(u8::from(*b))),
        },
        (
            Kind::Categorical {
                codes,
                min_length,
                max_length,
            },
            Scalar::Str(s),
        ) => {
            let n = s.chars().count();
            if n < *min_length {
                return Err((
                    Code::MinLength,
                    format!("{n} characters; the minimum is {min_length}"),
                ));
            }
            if n > *max_length {
                return Err((
                    Code::MaxLength,
                    format!("{n} characters; the maximum is {max_length}"),
                ));
            }
            codes.get(s.as_ref()).copied().ok_or_else(|| {
                let mut known: Vec<&str> = codes.keys().map(AsRef::as_ref).collect();
                known.sort_unstable();
                known.truncate(10);
                (
                    Code::Enum,
                    format!(
                        "\"{s}\" is not a known category (known: {})",
                        known.join(", ")
                    ),
                )
            })
        }
        (kind, other) => Err((
            Code::Type,
            format!("expected {}, got {}", kind.expected(), other.describe()),
        )),
    }
}

/// A value as it appeared in the JSON; compound values are skipped, not built, except a
/// features object, which `ValueSeed` reads into the current row.
pub(crate) enum Scalar<'de> {
    Float(f64),
    Int(i128),
    Bool(bool),
    Str(Cow<'de, str>),
    Null,
    Array,
    Object,
}

impl Scalar<'_> {
    #[cold]
    fn describe(&self) -> &'static str {
        match self {
            Scalar::Float(_) | Scalar::Int(_) => "a number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Str(_) => "a string",
            Scalar::Null => "null",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }
}

/// Reads one value; with `as_features`, an object is read as the features of the current row.
pub(crate) struct ValueSeed<'c, 'a> {
    ctx: &'c mut Ctx<'a>,
    as_features: bool,
}

impl<'c, 'a> ValueSeed<'c, 'a> {
    pub fn value(ctx: &'c mut Ctx<'a>) -> Self {
        ValueSeed {
            ctx,
            as_features: false,
        }
    }

    fn features(ctx: &'c mut Ctx<'a>) -> Self {
        ValueSeed {
            ctx,
            as_features: true,
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_, '_> {
    type Value = Scalar<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_, '_> {
    type Value = Scalar<'de>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_f64<E>(self, x: f64) -> Result<Self::Value, E> {
        Ok(Scalar::Float(x))
    }
    fn visit_u64<E>(self, x: u64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(x.into()))
    }
    fn visit_i64<E>(self, x: i64) -> Result<Self::Value, E> {
        Ok(Scalar::Int(x.into()))
    }
    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Scalar::Bool(b))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Scalar::Null)
    }
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        self.ctx.check_string(s)?;
        Ok(Scalar::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        self.ctx.check_string(s)?;
        Ok(Scalar::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Skip(self.ctx).visit_seq(seq).map(|()| Scalar::Array)
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        if !self.as_features {
            return Skip(self.ctx).visit_map(map).map(|()| Scalar::Object);
        }
        let ctx = self.ctx;
        ctx.enter()?;
        read_features(ctx, map)?;
        ctx.leave();
        Ok(Scalar::Object)
    }
}
