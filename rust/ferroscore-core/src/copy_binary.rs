//! PostgreSQL's binary COPY format, the little of it the decision log writes: each tuple is
//! its field count, then each field as a big-endian length (-1 for NULL) and its bytes in the
//! type's binary (`*_recv`) form. PostgreSQL reads these without parsing text: no number to
//! convert, no jsonb of feature names to build per row.
//!
//! The stream around the tuples (`SIGNATURE`, flags and header extension, then `TRAILER`) is
//! written by whoever sends them, once per COPY.

/// The stream's first bytes: the signature, no flags, no header extension.
pub const HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// The stream's end: a tuple of -1 fields.
pub const TRAILER: &[u8] = b"\xff\xff";
/// `float8`'s type oid, named in an array's header.
const FLOAT8_OID: i32 = 701;
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01 UTC).
const PG_EPOCH_US: i64 = 946_684_800_000_000;
/// jsonb's binary form: a version byte, then the JSON text.
const JSONB_VERSION: u8 = 1;

/// A tuple of `fields` fields starts.
pub(crate) fn tuple(out: &mut Vec<u8>, fields: i16) {
    out.extend_from_slice(&fields.to_be_bytes());
}

pub(crate) fn null(out: &mut Vec<u8>) {
    out.extend_from_slice(&(-1i32).to_be_bytes());
}

/// A field of `len` bytes follows (the caller writes them).
fn length(out: &mut Vec<u8>, len: usize) {
    // A field is far below 2 GiB: the request that made it is bounded by the body limit.
    out.extend_from_slice(&(len as i32).to_be_bytes());
}

/// `text` (or any type whose binary form is its UTF-8 bytes).
pub(crate) fn text(out: &mut Vec<u8>, s: &str) {
    length(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

pub(crate) fn text_or_null(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => text(out, s),
        None => null(out),
    }
}

pub(crate) fn int4(out: &mut Vec<u8>, x: i32) {
    length(out, 4);
    out.extend_from_slice(&x.to_be_bytes());
}

/// `timestamptz` for nanoseconds since the Unix epoch (kept to the microsecond).
pub(crate) fn timestamptz(out: &mut Vec<u8>, ns: u128) {
    let micros = (ns / 1_000) as i64 - PG_EPOCH_US;
    length(out, 8);
    out.extend_from_slice(&micros.to_be_bytes());
}

/// `float8[]`, one dimension; with `nan_is_null` a NaN is a NULL element (a missing value),
/// else it is NaN. One pass over the values (this runs per logged row, on the request path):
/// the field's length and the header's has-nulls flag are filled in after.
pub(crate) fn float8_array(
    out: &mut Vec<u8>,
    values: impl ExactSizeIterator<Item = f64>,
    nan_is_null: bool,
) {
    let at = out.len();
    let n = values.len() as i32;
    // The field's length, then the header: ndim, has-nulls, element type, length, lower bound.
    for word in [0, 1, 0, FLOAT8_OID, n, 1] {
        out.extend_from_slice(&word.to_be_bytes());
    }
    let mut nulls = false;
    for x in values {
        if nan_is_null && x.is_nan() {
            nulls = true;
            null(out);
        } else {
            length(out, 8);
            out.extend_from_slice(&x.to_be_bytes());
        }
    }
    let len = (out.len() - at - 4) as i32;
    out[at..at + 4].copy_from_slice(&len.to_be_bytes());
    out[at + 8..at + 12].copy_from_slice(&i32::from(nulls).to_be_bytes());
}

/// `jsonb` from JSON text the caller writes into `out` with `write` (valid JSON).
pub(crate) fn jsonb(out: &mut Vec<u8>, write: impl FnOnce(&mut Vec<u8>)) {
    let at = out.len();
    out.extend_from_slice(&[0; 4]);
    out.push(JSONB_VERSION);
    write(out);
    let len = out.len() - at - 4;
    out[at..at + 4].copy_from_slice(&(len as i32).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_length_prefixed_big_endian() {
        let mut out = Vec::new();
        tuple(&mut out, 3);
        int4(&mut out, 7);
        text_or_null(&mut out, None);
        text(&mut out, "ab");
        assert_eq!(
            out,
            b"\0\x03\0\0\0\x04\0\0\0\x07\xff\xff\xff\xff\0\0\0\x02ab"
        );
    }

    #[test]
    fn timestamps_count_from_2000() {
        let mut out = Vec::new();
        timestamptz(&mut out, 946_684_800_000_001_000);
        assert_eq!(out, [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1]);
    }

    #[test]
    fn arrays_say_where_values_are_missing() {
        let mut out = Vec::new();
        float8_array(&mut out, [1.5, f64::NAN].into_iter(), true);
        let mut expected = (20 + 8 + 8i32).to_be_bytes().to_vec();
        for word in [1i32, 1, 701, 2, 1, 8] {
            expected.extend_from_slice(&word.to_be_bytes());
        }
        expected.extend_from_slice(&1.5f64.to_be_bytes());
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(out, expected);
        let mut kept = Vec::new();
        float8_array(&mut kept, [f64::NAN].into_iter(), false);
        assert_eq!(&kept[8..12], &0i32.to_be_bytes(), "no NULL: NaN is kept");
        assert!(f64::from_be_bytes(kept[28..36].try_into().unwrap_or_default()).is_nan());
    }

    #[test]
    fn jsonb_is_versioned_text() {
        let mut out = Vec::new();
        jsonb(&mut out, |o| o.extend_from_slice(b"[1]"));
        assert_eq!(out, b"\0\0\0\x04\x01[1]");
    }
}
