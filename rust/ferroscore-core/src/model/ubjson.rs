//! Universal Binary JSON as xgboost writes it (`save_model("m.ubj")`), rewritten as JSON text
//! so one loader serves both encodings. Written as it is read, with every byte charged to the
//! load's memory budget: a tree of JSON values would take ~32 bytes per 1-byte element.

use super::limits::Budget;
use crate::error::ModelError;
use std::io::Write;

/// Containers nest no deeper than this in any model xgboost writes.
const MAX_DEPTH: usize = 64;

/// The document as JSON text.
pub fn to_json_text(bytes: &[u8], budget: &mut Budget) -> Result<Vec<u8>, ModelError> {
    let mut r = Ubj {
        bytes,
        pos: 0,
        out: Vec::new(),
        budget,
    };
    let marker = r.byte()?;
    r.value(marker, 0)?;
    if r.pos != bytes.len() {
        return Err(r.bad("trailing bytes after the document"));
    }
    Ok(r.out)
}

struct Ubj<'a, 'b> {
    bytes: &'a [u8],
    pos: usize,
    out: Vec<u8>,
    budget: &'b mut Budget,
}

impl Ubj<'_, '_> {
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

    fn string(&mut self) -> Result<&str, ModelError> {
        let n = self.length()?;
        let start = self.pos;
        self.take(n)?;
        std::str::from_utf8(&self.bytes[start..start + n])
            .map_err(|_| self.bad("a string that is not UTF-8"))
    }

    /// Appends `text` to the output, charged to the budget.
    fn emit(&mut self, text: &[u8]) -> Result<(), ModelError> {
        self.budget.charge(text.len(), "the UBJSON document")?;
        self.out
            .try_reserve(text.len())
            .map_err(|_| self.bad("out of memory"))?;
        self.out.extend_from_slice(text);
        Ok(())
    }

    fn emit_string(&mut self) -> Result<(), ModelError> {
        let s = self.string()?;
        let quoted = serde_json::to_vec(s)?;
        self.emit(&quoted)
    }

    fn emit_display(&mut self, x: impl std::fmt::Display) -> Result<(), ModelError> {
        let mut text = Vec::with_capacity(24);
        // Writing to a Vec cannot fail.
        let _ = write!(text, "{x}");
        self.emit(&text)
    }

    fn value(&mut self, marker: u8, depth: usize) -> Result<(), ModelError> {
        if depth > MAX_DEPTH {
            return Err(self.bad("nested too deep"));
        }
        match marker {
            b'Z' => self.emit(b"null"),
            b'T' => self.emit(b"true"),
            b'F' => self.emit(b"false"),
            b'i' | b'U' | b'I' | b'l' | b'L' => {
                let n = self.int(marker)?;
                self.emit_display(n)
            }
            b'd' => {
                let x = f32::from_be_bytes(self.array()?);
                // Shortest text that reads back as the same float32.
                let text = finite(x.is_finite(), || ryu::Buffer::new().format(x).to_owned())?;
                self.emit(text.as_bytes())
            }
            b'D' => {
                let x = f64::from_be_bytes(self.array()?);
                let text = finite(x.is_finite(), || ryu::Buffer::new().format(x).to_owned())?;
                self.emit(text.as_bytes())
            }
            b'S' | b'H' => self.emit_string(),
            b'C' => {
                let c = char::from(self.byte()?).to_string();
                let quoted = serde_json::to_vec(&c)?;
                self.emit(&quoted)
            }
            b'[' => {
                self.emit(b"[")?;
                self.container(depth, b']', |r, m, d| r.value(m, d))?;
                self.emit(b"]")
            }
            b'{' => {
                self.emit(b"{")?;
                self.container(depth, b'}', |r, m, d| {
                    r.emit_string()?;
                    r.emit(b":")?;
                    let marker = match m {
                        0 => r.byte()?,
                        typed => typed,
                    };
                    r.value(marker, d)
                })?;
                self.emit(b"}")
            }
            _ => Err(self.bad("unknown marker")),
        }
    }

    /// The elements of an array or object, comma-separated: `read` gets each element's
    /// marker (or, for objects, the container's value type, 0 when untyped) and the depth.
    fn container(
        &mut self,
        depth: usize,
        close: u8,
        read: impl Fn(&mut Self, u8, usize) -> Result<(), ModelError>,
    ) -> Result<(), ModelError> {
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
        let mut first = true;
        let mut element = |r: &mut Self, marker: u8| -> Result<(), ModelError> {
            if !std::mem::take(&mut first) {
                r.emit(b",")?;
            }
            read(r, marker, depth + 1)
        };
        match count {
            Some(n) => {
                // Each element takes at least one byte: a count past the input is a lie.
                if n > self.bytes.len() - self.pos {
                    return Err(self.bad("a count larger than the input"));
                }
                for _ in 0..n {
                    let marker = if is_object || typed != 0 {
                        typed
                    } else {
                        self.byte()?
                    };
                    element(self, marker)?;
                }
            }
            None => loop {
                if self.bytes.get(self.pos) == Some(&close) {
                    self.pos += 1;
                    break;
                }
                let marker = if is_object { 0 } else { self.byte()? };
                element(self, marker)?;
            },
        }
        Ok(())
    }
}

fn finite(ok: bool, text: impl FnOnce() -> String) -> Result<String, ModelError> {
    if ok {
        Ok(text())
    } else {
        Err(ModelError::Inconsistent(
            "a model number that is not finite".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::LoadLimits;

    fn json(doc: &[u8]) -> Result<serde_json::Value, ModelError> {
        let mut budget = Budget::new(&LoadLimits::default());
        Ok(serde_json::from_slice(&to_json_text(doc, &mut budget)?)?)
    }

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
        let v = json(&doc).expect("valid");
        assert_eq!(v["a"], serde_json::json!([1, 2.5]));
        assert_eq!(v["b"][0].as_f64().map(|x| x as f32), Some(0.1f32));
        assert_eq!(v["s"], "x");
    }

    #[test]
    fn refuses_truncated_and_lying_input() {
        assert!(json(b"[").is_err());
        assert!(json(&[b'[', b'$', b'd', b'#', b'L', 0, 0, 0, 0, 0xff, 0, 0, 0]).is_err());
        assert!(json(b"{}x").is_err());
    }

    #[test]
    fn the_text_is_charged_to_the_budget() {
        // 200 one-byte integers: ~400 bytes of text, past a 100-byte budget.
        let mut doc = vec![b'[', b'$', b'U', b'#', b'U', 200];
        doc.extend([7u8; 200]);
        let mut budget = Budget::new(&LoadLimits {
            memory_bytes: 100,
            ..LoadLimits::default()
        });
        let e = to_json_text(&doc, &mut budget).err();
        assert!(matches!(
            e,
            Some(ModelError::TooLarge {
                limit: "memory_bytes",
                ..
            })
        ));
    }
}
