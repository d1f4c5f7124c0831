//! One JSON value of a request: a scalar read as it appeared, or a compound value skipped
//! (still strictly, and within the limits).

use crate::parse::ctx::{Ctx, Step};
use crate::parse::json::{Number, Reader};
use std::borrow::Cow;

/// A value as it appeared in the JSON; compound values are skipped, not built.
pub(crate) enum Scalar<'a> {
    Num(Number),
    Bool(bool),
    Str(Cow<'a, str>),
    Null,
    Array,
    Object,
}

impl Scalar<'_> {
    #[cold]
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Scalar::Num(_) => "a number",
            Scalar::Bool(_) => "a boolean",
            Scalar::Str(_) => "a string",
            Scalar::Null => "null",
            Scalar::Array => "an array",
            Scalar::Object => "an object",
        }
    }
}

/// Reads one value; arrays and objects are skipped (within the limits) and only named.
#[inline]
pub(crate) fn read_scalar<'a>(r: &mut Reader<'a>, ctx: &mut Ctx<'_>) -> Step<Scalar<'a>> {
    Ok(match r.peek() {
        Some(b'"') => {
            let s = r.string()?;
            ctx.check_string(s.len())?;
            Scalar::Str(s)
        }
        Some(b'-' | b'0'..=b'9') => Scalar::Num(r.number()?),
        Some(b't') => {
            r.literal(b"true")?;
            Scalar::Bool(true)
        }
        Some(b'f') => {
            r.literal(b"false")?;
            Scalar::Bool(false)
        }
        Some(b'n') => {
            r.literal(b"null")?;
            Scalar::Null
        }
        Some(b'[') => {
            skip_value(r, ctx)?;
            Scalar::Array
        }
        Some(b'{') => {
            skip_value(r, ctx)?;
            Scalar::Object
        }
        Some(_) => return Err(r.fail("expected a JSON value").into()),
        None => return Err(r.fail("unexpected end of input").into()),
    })
}

/// Reads past one value nobody needs, still enforcing strictness and the limits.
pub(crate) fn skip_value(r: &mut Reader<'_>, ctx: &mut Ctx<'_>) -> Step<()> {
    match r.peek() {
        Some(b'{') => {
            ctx.enter()?;
            let mut more = r.begin_object()?;
            while more {
                let key = r.key()?;
                ctx.check_string(key.raw.len())?;
                r.text(&key)?;
                skip_value(r, ctx)?;
                more = r.more(b'}')?;
            }
            ctx.leave();
        }
        Some(b'[') => {
            ctx.enter()?;
            let mut more = r.begin_array()?;
            while more {
                skip_value(r, ctx)?;
                more = r.more(b']')?;
            }
            ctx.leave();
        }
        _ => {
            read_scalar(r, ctx)?;
        }
    }
    Ok(())
}
