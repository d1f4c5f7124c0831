//! The features object of one record, read straight into the model's input row: each key is
//! looked up in the compiled schema and its value checked and converted as it is read.

use crate::error::Code;
use crate::parse::ctx::{feature_tail, Ctx, Step};
use crate::parse::json::{Number, Reader};
use crate::parse::value::{read_scalar, skip_value, Scalar};
use crate::precision::Precision;
use crate::schema::{ContextField, Feature, Kind, Missing};

/// Marks a column no key has written yet; distinct from the NaN that stands for "missing".
const UNSEEN: u64 = 0x7ff8_dead_beef_0001;

/// Fills the current row from a features object.
pub(crate) fn read_features(r: &mut Reader<'_>, ctx: &mut Ctx<'_>) -> Step<()> {
    if r.peek() != Some(b'{') {
        skip_value(r, ctx)?;
        ctx.report(
            || "/features".into(),
            Code::Type,
            "\"features\" must be an object of feature values".into(),
        );
        return Ok(());
    }
    ctx.enter()?;
    let schema = ctx.schema;
    for f in schema.features() {
        ctx.current_row()[f.column] = f64::from_bits(UNSEEN);
    }
    let mut n_keys = 0;
    let mut next = 0;
    let mut seen_context = 0u64;
    let mut more = r.begin_object()?;
    while more {
        n_keys += 1;
        if n_keys > ctx.limits.max_features {
            let msg = format!(
                "more than max_features = {} features",
                ctx.limits.max_features
            );
            return Err(ctx.exceed(Code::TooManyFeatures, msg));
        }
        // Clients mostly send features in schema order: try the next one in place first.
        let found = match schema.features().get(next) {
            Some(f) if f.plain && r.eat_key(f.name.as_bytes()) => Some((next, f)),
            _ => {
                let key = r.key()?;
                ctx.check_string(key.raw.len())?;
                let found = schema.lookup_bytes(&key.raw);
                if let Some((slot, field)) = found
                    .is_none()
                    .then(|| schema.lookup_context_bytes(&key.raw))
                    .flatten()
                {
                    read_context(r, ctx, slot, field, &mut seen_context)?;
                } else if found.is_none() {
                    let key = r.text(&key)?.into_owned();
                    skip_value(r, ctx)?;
                    if !schema.allow_unknown() {
                        ctx.report(
                            || feature_tail(&key),
                            Code::UnknownFeature,
                            format!("\"{key}\" is not a feature of this model"),
                        );
                    }
                }
                found
            }
        };
        if let Some((index, feature)) = found {
            next = index + 1;
            let value = read_scalar(r, ctx)?;
            if feature.enriched {
                ctx.report(
                    || feature_tail(&feature.name),
                    Code::EnrichmentOnly,
                    format!(
                        "feature \"{}\" is supplied by the service, not by callers",
                        feature.name
                    ),
                );
                ctx.current_row()[feature.column] = f64::NAN;
            } else if ctx.current_row()[feature.column].to_bits() != UNSEEN {
                ctx.report(
                    || feature_tail(&feature.name),
                    Code::DuplicateKey,
                    format!("feature \"{}\" appears more than once", feature.name),
                );
            } else {
                let x = match check(feature, &value, ctx.precision) {
                    Ok(x) => {
                        if let Some((code, msg, bound)) = flag(feature, &value, x) {
                            ctx.warn(&feature.name, code, msg, bound);
                        }
                        x
                    }
                    Err((code, msg)) => {
                        ctx.report(|| feature_tail(&feature.name), code, msg);
                        // Seen, so that "missing" does not pile on.
                        f64::NAN
                    }
                };
                ctx.current_row()[feature.column] = x;
            }
        }
        more = r.more(b'}')?;
    }
    ctx.leave();
    for f in schema.features() {
        let slot = &mut ctx.current_row()[f.column];
        if slot.to_bits() == UNSEEN {
            *slot = missing_value(f);
            // An enriched feature is filled after validation, by `enrich`.
            if f.required && !f.enriched {
                ctx.report(
                    || feature_tail(&f.name),
                    Code::Missing,
                    format!("required feature \"{}\" is missing", f.name),
                );
            }
        }
    }
    for (slot, field) in schema.context().iter().enumerate() {
        if field.required && seen_context & (1 << slot) == 0 {
            ctx.report(
                || feature_tail(&field.name),
                Code::Missing,
                format!("required feature \"{}\" is missing", field.name),
            );
        }
    }
    Ok(())
}

/// Reads the value of context field `slot` into the current row's context.
fn read_context(
    r: &mut Reader<'_>,
    ctx: &mut Ctx<'_>,
    slot: usize,
    field: &ContextField,
    seen: &mut u64,
) -> Step<()> {
    let value = read_scalar(r, ctx)?;
    if *seen & (1 << slot) != 0 {
        ctx.report(
            || feature_tail(&field.name),
            Code::DuplicateKey,
            format!("feature \"{}\" appears more than once", field.name),
        );
        return Ok(());
    }
    *seen |= 1 << slot;
    let text = match value {
        Scalar::Null if field.nullable => return Ok(()),
        Scalar::Str(s) => s,
        other => {
            let msg = format!("expected a string, got {}", other.describe());
            ctx.report(|| feature_tail(&field.name), Code::Type, msg);
            return Ok(());
        }
    };
    let n = text.chars().count();
    let problem = if n < field.min_length {
        Some((
            Code::MinLength,
            format!("{n} characters; the minimum is {}", field.min_length),
        ))
    } else if n > field.max_length {
        Some((
            Code::MaxLength,
            format!("{n} characters; the maximum is {}", field.max_length),
        ))
    } else if text.contains('\0') {
        // PostgreSQL's jsonb cannot hold U+0000: the decision log could not store it.
        Some((
            Code::NulCharacter,
            "a context string may not contain U+0000, which the decision log cannot store"
                .to_owned(),
        ))
    } else {
        None
    };
    match problem {
        Some((code, msg)) => ctx.report(|| feature_tail(&field.name), code, msg),
        None => {
            let n_context = ctx.rows.n_context;
            let start = ctx.rows.context.len() - n_context;
            ctx.rows.context[start + slot] = Some(text.into());
        }
    }
    Ok(())
}

pub(crate) fn missing_value(f: &Feature) -> f64 {
    match f.missing {
        Missing::Nan => f64::NAN,
        Missing::Default(x) => x,
    }
}

/// A warning about a value `check` accepted as `x`: outside the training range, or an unknown
/// category scored as missing. Cheap when there is none: a range test, or nothing unless
/// `x` is the NaN of a missing category.
#[inline]
pub(crate) fn flag(
    feature: &Feature,
    value: &Scalar<'_>,
    x: f64,
) -> Option<(Code, String, Option<f64>)> {
    match (&feature.kind, value) {
        (
            Kind::Number {
                trained: Some((lo, hi)),
                ..
            },
            Scalar::Num(_),
        ) if x < *lo || x > *hi => Some(out_of_range(x, *lo, *hi)),
        (Kind::Categorical { .. }, Scalar::Str(s)) if x.is_nan() => Some((
            Code::UnknownCategory,
            format!("\"{s}\" is not a category the model was trained on: scored as missing"),
            None,
        )),
        _ => None,
    }
}

#[cold]
fn out_of_range(x: f64, lo: f64, hi: f64) -> (Code, String, Option<f64>) {
    let (bound, side) = if x < lo { (lo, "below") } else { (hi, "above") };
    let message = format!("{x} is {side} the training range [{lo}, {hi}]: scored, but look");
    (Code::OutOfTrainingRange, message, Some(bound))
}

/// Checks one value against its feature; on success, the number the model reads.
///
/// What counts as missing: an absent key, and `null` when the feature's type admits it. A
/// categorical feature whose unknown categories are scored as missing
/// (`x-ferroscore-unknown-category: missing`) takes `null` as missing too, so that `null`
/// and an unseen string agree; with `error`, both are refused unless the type admits null.
#[inline]
pub(crate) fn check(
    feature: &Feature,
    value: &Scalar<'_>,
    precision: Precision,
) -> Result<f64, (Code, String)> {
    match (&feature.kind, value) {
        (_, Scalar::Null) if feature.nullable => Ok(missing_value(feature)),
        (
            Kind::Categorical {
                unknown_as_missing: true,
                ..
            },
            Scalar::Null,
        ) => Ok(missing_value(feature)),
        (
            Kind::Number {
                integer,
                minimum,
                maximum,
                allowed,
                ..
            },
            Scalar::Num(n),
        ) => {
            let x = match *n {
                Number::Int(i) if precision.holds_exactly(i) => i as f64,
                Number::Int(_) | Number::HugeInt => {
                    return Err((
                        Code::IntegerRange,
                        format!(
                            "this integer is not exactly representable as the model's {} input",
                            precision.name()
                        ),
                    ));
                }
                Number::Float(x) if *integer && x.fract() != 0.0 => {
                    return Err((Code::Type, format!("expected an integer, got {x}")));
                }
                Number::Float(x) => x,
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
                unknown_as_missing,
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
            if *unknown_as_missing {
                return Ok(codes.get(s.as_ref()).copied().unwrap_or(f64::NAN));
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
