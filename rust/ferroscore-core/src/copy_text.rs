//! PostgreSQL's COPY text format, the little of it the decision log writes: what a field's
//! bytes become so that its delimiters stay delimiters.

/// COPY text escapes: backslash, and the tab, newline and carriage return that delimit.
/// Runs without them are copied whole.
pub(crate) fn escape(out: &mut Vec<u8>, text: &[u8]) {
    let mut start = 0;
    for (i, &b) in text.iter().enumerate() {
        let escaped: &[u8] = match b {
            b'\\' => b"\\\\",
            b'\t' => b"\\t",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            _ => continue,
        };
        out.extend_from_slice(&text[start..i]);
        out.extend_from_slice(escaped);
        start = i + 1;
    }
    out.extend_from_slice(&text[start..]);
}
