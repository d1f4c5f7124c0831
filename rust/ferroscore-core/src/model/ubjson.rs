//! Universal Binary JSON as xgboost writes it (`save_model("m.ubj")`), read into a JSON value
//! so one loader serves both encodings. Model loading is a cold path: clarity over speed.

use crate::error::ModelError;
use serde_json::{Map, Number, Value};

/// Containers nest no deeper than this in any model xgboost writes.
const MAX_DEPTH: usize = 64;

pub fn to_json(bytes: &[u8]) -> Result<Value, ModelError> {
    let mut r = Ubj { bytes, pos: 0 };
    let marker = r.byte()?;
    let v = r.value(marker, 0)?;
    if r.pos != bytes.len() {
        return Err(r.bad("trailing bytes after the document"));
    }
    Ok(v)
}

struct Ubj<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Ubj<'_> {
    #[cold]
    fn bad(&self, what: &str) -> ModelError {
        ModelError::Inconsistent(format!("UBJSON at byte {}: {what}", self.pos))
    }

    fn take(&mut self, n: usize) -> Result<&[u8], ModelError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| self.bad("truncated"))?;
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, ModelError> {
        Ok(self.take(1)?[0])
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ModelError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    /// An integer of the type `marker` names (big-endian).
    fn int(&mut self, marker: u8) -> Result<i64, ModelError> {
        Ok(match marker {
            b'i' => i64::from(i8::from_be_bytes(self.array()?)),
            b'U' => i64::from(self.byte()?),
            b'I' => i64::from(i16::from_be_bytes(self.array()?)),
            b'l' => i64::from(i32::from_be_bytes(self.array()?)),
            b'L' => i64::from_be_bytes(self.array()?),
            _ => return Err(self.bad("expected an integer")),
        })
    }

    fn length(&mut self) -> Result<usize, ModelError> {
        let marker = self.byte()?;
        let n = self.int(marker)?;
        usize::try_from(n).map_err(|_| self.bad("negative length"))
    }

    fn string(&mut self) -> Result<String, ModelError> {
        let n = self.length()?;
        let raw = self.take(n)?;
        String::from_utf8(raw.to_vec()).map_err(|_| self.bad("a string that is not UTF-8"))
    }

    fn value(&mut self, marker: u8, depth: usize) -> Result<Value, ModelError> {
        if depth > MAX_DEPTH {
            return Err(self.bad("nested too deep"));
        }
        Ok(match marker {
            b'Z' => Value::Null,
            b'T' => Value::Bool(true),
            b'F' => Value::Bool(false),
            b'i' | b'U' | b'I' | b'l' | b'L' => Value::from(self.int(marker)?),
            b'd' => float(f64::from(f32::from_be_bytes(self.array()?)))?,
            b'D' => float(f64::from_be_bytes(self.array()?))?,
            b'S' | b'H' => Value::String(self.string()?),
            b'C' => Value::String(char::from(self.byte()?).to_string()),
            b'[' => Value::Array(self.container(depth, |r, m, d| r.value(m, d), b']')?),
            b'{' => {
                let entries = self.container(
                    depth,
                    |r, m, d| {
                        let key = r.string()?;
                        let marker = match m {
                            0 => r.byte()?,
                            typed => typed,
                        };
                        Ok((key, r.value(marker, d)?))
                    },
                    b'}',
                )?;
                Value::Object(entries.into_iter().collect::<Map<_, _>>())
            }
            _ => return Err(self.bad("unknown marker")),
        })
    }

    /// The elements of an array or object: `read` gets each element's marker (or, for
    /// objects, the container's value type, 0 when untyped) and the depth.
    fn container<T>(
        &mut self,
        depth: usize,
        read: impl Fn(&mut Self, u8, usize) -> Result<T, ModelError>,
        close: u8,
    ) -> Result<Vec<T>, ModelError> {
        let mut typed = 0;
        let mut count = None;
        if self.bytes.get(self.pos) == Some(&b'$') {
            self.pos += 1;
            typed = self.byte()?;
        }
        if self.bytes.get(self.pos) == Some(&b'#') {
            self.pos += 1;
            count = Some(self.length()?);
        }
        let is_object = close == b'}';
        let mut out = Vec::new();
        match count {
            Some(n) => {
                // Each element takes at least one byte: a count past the input is a lie.
                if n > self.bytes.len() - self.pos {
                    return Err(self.bad("a count larger than the input"));
                }
                out.reserve(n);
                for _ in 0..n {
                    let marker = if is_object || typed != 0 {
                        typed
                    } else {
                        self.byte()?
                    };
                    out.push(read(self, marker, depth + 1)?);
                }
            }
            None => loop {
                if self.bytes.get(self.pos) == Some(&close) {
                    self.pos += 1;
                    break;
                }
                let marker = if is_object { 0 } else { self.byte()? };
                out.push(read(self, marker, depth + 1)?);
            },
        }
        Ok(out)
    }
}

fn float(x: f64) -> Result<Value, ModelError> {
    Number::from_f64(x)
        .map(Value::Number)
        .ok_or_else(|| ModelError::Inconsistent("a model number that is not finite".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_typed_and_untyped_containers() {
        // {"a": [1, 2.5f32], "b": [$d#i2 ...], "s": "x"}
        let mut doc = vec![b'{'];
        doc.extend([b'i', 1, b'a', b'[', b'i', 1, b'd']);
        doc.extend(2.5f32.to_be_bytes());
        doc.push(b']');
        doc.extend([b'i', 1, b'b', b'[', b'$', b'd', b'#', b'i', 2]);
        doc.extend(0.1f32.to_be_bytes());
        doc.extend((-3.0f32).to_be_bytes());
        doc.extend([b'i', 1, b's', b'S', b'i', 1, b'x', b'}']);
        let v = to_json(&doc).expect("valid");
        assert_eq!(v["a"], serde_json::json!([1, 2.5]));
        assert_eq!(v["b"][0].as_f64().map(|x| x as f32), Some(0.1f32));
        assert_eq!(v["s"], "x");
    }

    #[test]
    fn refuses_truncated_and_lying_input() {
        assert!(to_json(b"[").is_err());
        assert!(to_json(&[b'[', b'$', b'd', b'#', b'L', 0, 0, 0, 0, 0xff, 0, 0, 0]).is_err());
        assert!(to_json(b"{}x").is_err());
    }
}
