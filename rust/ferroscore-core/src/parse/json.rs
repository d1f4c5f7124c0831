//! A strict RFC 8259 pull reader over the request bytes, made for one job: walking a request
//! into the model's input rows with no tree, no allocation on the usual path, and every limit
//! checked as bytes are read. serde_json took 3.1 µs to parse and validate a 30-feature
//! record through visitors (criterion, `make bench-core`); this reader is what gets it under
//! 1.5 µs. Strictness is held by the JSONTestSuite corpus and the property tests.

use std::borrow::Cow;

/// Where and why the bytes are not JSON.
#[derive(Debug)]
pub(crate) struct SyntaxError {
    pub offset: usize,
    pub message: &'static str,
}

pub(crate) type Result<T> = std::result::Result<T, SyntaxError>;

/// A number as written: integer literals stay integers so their exactness can be judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Number {
    Int(i128),
    /// An integer literal of more digits than i128 holds.
    HugeInt,
    Float(f64),
}

/// Bytes that end the plain run of a string: the quote, a backslash, control characters.
/// One table load per byte is the cheapest test in the scan every key and string goes through.
const STOPS_STRING: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// An object key as read: see `Reader::key`.
pub(crate) struct Key<'a> {
    pub raw: Cow<'a, [u8]>,
    offset: usize,
}

pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    #[cold]
    pub fn fail(&self, message: &'static str) -> SyntaxError {
        SyntaxError {
            offset: self.pos,
            message,
        }
    }

    #[cold]
    pub fn error<T>(&self, message: &'static str) -> Result<T> {
        Err(self.fail(message))
    }

    #[inline]
    pub fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.bytes.get(self.pos) {
            self.pos += 1;
        }
    }

    /// The next significant byte, not consumed.
    #[inline]
    pub fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    pub fn eat(&mut self, b: u8) -> bool {
        if self.peek() == Some(b) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    pub fn expect(&mut self, b: u8, message: &'static str) -> Result<()> {
        if self.eat(b) {
            Ok(())
        } else {
            self.error(message)
        }
    }

    /// After a value inside an object or array: a comma (more to come) or the closing byte.
    #[inline]
    pub fn more(&mut self, close: u8) -> Result<bool> {
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                Ok(true)
            }
            Some(c) if c == close => {
                self.pos += 1;
                Ok(false)
            }
            _ => self.error(if close == b'}' {
                "expected ',' or '}' after an object member"
            } else {
                "expected ',' or ']' after an array element"
            }),
        }
    }

    /// Opens an object; returns false for `{}`. The caller has checked the `{`.
    pub fn begin_object(&mut self) -> Result<bool> {
        self.pos += 1;
        Ok(!self.eat(b'}'))
    }

    /// Opens an array; returns false for `[]`. The caller has checked the `[`.
    pub fn begin_array(&mut self) -> Result<bool> {
        self.pos += 1;
        Ok(!self.eat(b']'))
    }

    /// A member's key and its colon, as bytes not yet checked for UTF-8: keys are compared
    /// with the schema's names byte for byte, and only a key that matches none is checked
    /// (with `text`), which spares the common case a UTF-8 pass.
    #[inline]
    pub fn key(&mut self) -> Result<Key<'a>> {
        if self.peek() != Some(b'"') {
            return self.error("expected a string key");
        }
        let offset = self.pos + 1;
        let raw = self.raw_string()?;
        self.expect(b':', "expected ':' after a key")?;
        Ok(Key { raw, offset })
    }

    /// Reads the key `"name":` if it is next, byte for byte; `name` holds no quote,
    /// backslash or control character, so equal bytes mean an equal key. Otherwise reads
    /// nothing and returns false.
    #[inline]
    pub fn eat_key(&mut self, name: &[u8]) -> bool {
        if self.peek() != Some(b'"') {
            return false;
        }
        let (start, end) = (self.pos + 1, self.pos + 1 + name.len());
        if self.bytes.get(start..end) != Some(name) || self.bytes.get(end) != Some(&b'"') {
            return false;
        }
        let save = self.pos;
        self.pos = end + 1;
        if self.eat(b':') {
            return true;
        }
        // No colon: the general path reads the key again and reports the error.
        self.pos = save;
        false
    }

    /// A key's text; a key that is not UTF-8 is a syntax error here.
    pub fn text<'k>(&self, key: &'k Key<'a>) -> Result<Cow<'k, str>> {
        match &key.raw {
            Cow::Borrowed(b) => Ok(Cow::Borrowed(self.utf8(b, key.offset)?)),
            // Decoded escapes were written from chars: valid UTF-8.
            Cow::Owned(b) => Ok(String::from_utf8_lossy(b)),
        }
    }

    /// A string; the reader is at its opening quote. Borrowed unless it has escapes.
    #[inline]
    pub fn string(&mut self) -> Result<Cow<'a, str>> {
        let start = self.pos + 1;
        match self.raw_string()? {
            Cow::Borrowed(b) => Ok(Cow::Borrowed(self.utf8(b, start)?)),
            Cow::Owned(b) => Ok(Cow::Owned(String::from_utf8_lossy(&b).into_owned())),
        }
    }

    /// A string's bytes: borrowed and unchecked, or owned, decoded and valid UTF-8.
    #[inline]
    fn raw_string(&mut self) -> Result<Cow<'a, [u8]>> {
        self.pos += 1;
        let start = self.pos;
        let bytes = self.bytes;
        let rest = &bytes[start..];
        // One tight scan to the first byte that needs a decision.
        match rest.iter().position(|&b| STOPS_STRING[usize::from(b)]) {
            Some(n) if rest[n] == b'"' => {
                self.pos = start + n + 1;
                Ok(Cow::Borrowed(&bytes[start..start + n]))
            }
            Some(n) if rest[n] == b'\\' => {
                self.pos = start + n;
                self.escaped_string(start)
                    .map(|s| Cow::Owned(s.into_bytes()))
            }
            Some(n) => {
                self.pos = start + n;
                self.error("control character in a string")
            }
            None => {
                self.pos = bytes.len();
                self.error("unterminated string")
            }
        }
    }

    fn utf8(&self, raw: &'a [u8], start: usize) -> Result<&'a str> {
        std::str::from_utf8(raw).map_err(|e| SyntaxError {
            offset: start + e.valid_up_to(),
            message: "invalid UTF-8 in a string",
        })
    }

    #[cold]
    fn escaped_string(&mut self, start: usize) -> Result<String> {
        let bytes = self.bytes;
        let mut out = String::from(self.utf8(&bytes[start..self.pos], start)?);
        loop {
            let run = self.pos;
            while let Some(&b) = bytes.get(self.pos) {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(self.utf8(&bytes[run..self.pos], run)?);
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let c = match bytes.get(self.pos) {
                        Some(b'"') => '"',
                        Some(b'\\') => '\\',
                        Some(b'/') => '/',
                        Some(b'b') => '\u{8}',
                        Some(b'f') => '\u{c}',
                        Some(b'n') => '\n',
                        Some(b'r') => '\r',
                        Some(b't') => '\t',
                        Some(b'u') => {
                            self.pos += 1;
                            out.push(self.unicode_escape()?);
                            continue;
                        }
                        _ => return self.error("invalid escape in a string"),
                    };
                    self.pos += 1;
                    out.push(c);
                }
                Some(_) => return self.error("control character in a string"),
                None => return self.error("unterminated string"),
            }
        }
    }

    /// After `\u`: one code point, from a pair when it is a surrogate. Lone surrogates are errors.
    fn unicode_escape(&mut self) -> Result<char> {
        let hi = self.hex4()?;
        let code = match hi {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return self.error("lone leading surrogate in a \\u escape");
                }
                self.pos += 2;
                let lo = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&lo) {
                    return self.error("a leading surrogate not followed by a trailing one");
                }
                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
            }
            0xDC00..=0xDFFF => return self.error("lone trailing surrogate in a \\u escape"),
            _ => hi,
        };
        char::from_u32(code).map_or_else(|| self.error("invalid \\u escape"), Ok)
    }

    fn hex4(&mut self) -> Result<u32> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            return self.error("truncated \\u escape");
        };
        let mut v = 0;
        for &d in digits {
            let x = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return self.error("invalid hex digit in a \\u escape"),
            };
            v = v * 16 + u32::from(x);
        }
        self.pos += 4;
        Ok(v)
    }

    /// A number; the reader is at its first byte (`-` or a digit).
    #[inline]
    pub fn number(&mut self) -> Result<Number> {
        let bytes = self.bytes;
        let start = self.pos;
        if bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let int_start = self.pos;
        match bytes.get(self.pos) {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return self.error("invalid number"),
        }
        let int_digits = self.pos - int_start;
        let mut integer = true;
        if bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if !matches!(bytes.get(self.pos), Some(b'0'..=b'9')) {
                return self.error("a digit must follow the decimal point");
            }
            self.digits();
            integer = false;
        }
        if let Some(b'e' | b'E') = bytes.get(self.pos) {
            self.pos += 1;
            if let Some(b'+' | b'-') = bytes.get(self.pos) {
                self.pos += 1;
            }
            if !matches!(bytes.get(self.pos), Some(b'0'..=b'9')) {
                return self.error("a digit must follow the exponent");
            }
            self.digits();
            integer = false;
        }
        let text = &bytes[start..self.pos];
        if integer {
            if int_digits <= 18 {
                let mut v: i64 = 0;
                for &d in &bytes[int_start..self.pos] {
                    v = v * 10 + i64::from(d - b'0');
                }
                return Ok(match (start == int_start, v) {
                    (true, v) => Number::Int(v.into()),
                    // "-0" is negative zero to Python's float(); keep its sign.
                    (false, 0) => Number::Float(-0.0),
                    (false, v) => Number::Int((-v).into()),
                });
            }
            // The grammar above admits only ASCII.
            let digits = std::str::from_utf8(text).unwrap_or_default();
            return Ok(digits.parse::<i128>().map_or(Number::HugeInt, Number::Int));
        }
        // fast-float rounds correctly, as Python's float() does, straight from the bytes.
        match fast_float2::parse::<f64, _>(text) {
            Ok(x) if x.is_finite() => Ok(Number::Float(x)),
            _ => {
                self.pos = start;
                self.error("number out of range of a double")
            }
        }
    }

    #[inline]
    fn digits(&mut self) {
        let rest = &self.bytes[self.pos..];
        self.pos += rest
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(rest.len());
    }

    /// `true`, `false` or `null`; the reader is at its first byte.
    pub fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.error("invalid literal")
        }
    }

    /// Nothing but whitespace may follow the document.
    pub fn end(&mut self) -> Result<()> {
        match self.peek() {
            None => Ok(()),
            Some(_) => self.error("trailing characters after the JSON value"),
        }
    }

    /// Line and column (1-based) of a byte offset, for messages.
    #[cold]
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        let before = &self.bytes[..offset.min(self.bytes.len())];
        let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        (line, column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(s: &str) -> Result<Number> {
        Reader::new(s.as_bytes()).number()
    }

    #[test]
    fn numbers_keep_integers_apart() {
        assert_eq!(number("-12").ok(), Some(Number::Int(-12)));
        assert_eq!(
            number("123456789012345678901").ok(),
            Some(Number::Int(123456789012345678901))
        );
        assert_eq!(number(&"9".repeat(50)).ok(), Some(Number::HugeInt));
        assert_eq!(number("0.1").ok(), Some(Number::Float(0.1)));
        assert_eq!(
            number("-0")
                .map(|n| matches!(n, Number::Float(z) if z == 0.0 && z.is_sign_negative()))
                .ok(),
            Some(true)
        );
        assert_eq!(number("1E-2").ok(), Some(Number::Float(0.01)));
        for bad in ["01x", "-", ".5", "1.", "1e", "1e+", "+1"] {
            let mut r = Reader::new(bad.as_bytes());
            let parsed = r.number().and_then(|_| r.end());
            assert!(parsed.is_err(), "{bad}");
        }
        assert!(number("1e400").is_err());
    }

    #[test]
    fn strings_decode_escapes_and_refuse_lone_surrogates() {
        let s = |t: &str| Reader::new(t.as_bytes()).string().map(|c| c.into_owned());
        assert_eq!(s(r#""plain""#).ok().as_deref(), Some("plain"));
        assert_eq!(
            s(r#""a\"b\\c\u00e9\ud83d\ude00""#).ok().as_deref(),
            Some("a\"b\\cé😀")
        );
        for bad in [
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""\ud800\u0041""#,
            "\"a\u{1}\"",
            r#""\x""#,
            r#""abc"#,
        ] {
            assert!(s(bad).is_err(), "{bad}");
        }
        assert!(Reader::new(b"\"\xff\"").string().is_err());
    }
}
