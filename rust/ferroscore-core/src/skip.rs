//! Skipping values nobody reads (unknown features, compound values in the wrong place) while
//! still enforcing the depth and string limits and RFC 8259 strictness: serde's own
//! `IgnoredAny` would neither count depth below its fixed 128 nor decode every string.

use crate::request::Ctx;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

pub(crate) struct Skip<'c, 'a>(pub &'c mut Ctx<'a>);

impl<'de> DeserializeSeed<'de> for Skip<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.0.check_string(s)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let ctx = self.0;
        ctx.enter()?;
        while seq.next_element_seed(Skip(&mut *ctx))?.is_some() {}
        ctx.leave();
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ctx = self.0;
        ctx.enter()?;
        while map.next_key_seed(Skip(&mut *ctx))?.is_some() {
            map.next_value_seed(Skip(&mut *ctx))?;
        }
        ctx.leave();
        Ok(())
    }
}
