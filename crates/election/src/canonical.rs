//! RFC 8785 canonical JSON (JCS), for the subset saksi signs: objects, arrays, strings, booleans, null
//! and integers of magnitude at most 2^53 - 1. Floats are refused rather than canonicalised: no form field
//! is fractional, and refusing them removes the one hard part of JCS (ECMAScript number formatting).
//!
//! The encoding: no whitespace; object members sorted by their names' UTF-16 code units; strings with
//! only `"`, `\` and control characters escaped (`\b \t \n \f \r`, others as lowercase `\u00xx`), all
//! else literal UTF-8; integers in plain decimal.

use serde_json::Value;

/// The largest integer JCS (through IEEE 754 doubles) represents exactly.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanonicalError {
    /// A fractional or out-of-range number.
    Number(String),
}

impl std::fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CanonicalError::Number(n) => {
                write!(f, "number {n} is not an integer within +-(2^53-1)")
            }
        }
    }
}

impl std::error::Error for CanonicalError {}

pub fn to_vec(value: &Value) -> Result<Vec<u8>, CanonicalError> {
    let mut out = Vec::new();
    write_value(&mut out, value)?;
    Ok(out)
}

fn write_value(out: &mut Vec<u8>, value: &Value) -> Result<(), CanonicalError> {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => match n.as_i64() {
            Some(i) if i.abs() <= MAX_SAFE_INTEGER => write_int(out, i),
            _ => return Err(CanonicalError::Number(n.to_string())),
        },
        Value::String(s) => write_str(out, s),
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(out, item)?;
            }
            out.push(b']');
        }
        Value::Object(map) => {
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.encode_utf16().cmp(b.0.encode_utf16()));
            out.push(b'{');
            for (i, (name, item)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, name);
                out.push(b':');
                write_value(out, item)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

pub fn write_int(out: &mut Vec<u8>, value: i64) {
    debug_assert!(value.abs() <= MAX_SAFE_INTEGER);
    // Digits into a stack buffer, right to left: no allocation (a form has some sixty integers).
    let mut buffer = [0u8; 20];
    let mut at = buffer.len();
    let mut rest = value.unsigned_abs();
    loop {
        at -= 1;
        buffer[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    if value < 0 {
        at -= 1;
        buffer[at] = b'-';
    }
    out.extend_from_slice(&buffer[at..]);
}

pub fn write_str(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    // Nearly every string we write (keys, codes, base64, hex) needs no escaping: copy it whole.
    if !text.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return;
    }
    for &byte in text.as_bytes() {
        match byte {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0x00..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(byte >> 4) as usize]);
                out.push(HEX[(byte & 0xf) as usize]);
            }
            // UTF-8 bytes pass through: the input is a &str, so they form valid sequences.
            _ => out.push(byte),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rfc8785_examples() {
        // Members sort by UTF-16 code units: U+1F600 (surrogates D83D DE00) before U+FB33, although
        // code point order and UTF-8 byte order put U+FB33 first.
        let value = json!({"\u{fb33}": 1, "\u{1f600}": 2, "b": [true, null, "x\n\u{1}"], "a": -5});
        assert_eq!(
            String::from_utf8(to_vec(&value).unwrap()).unwrap(),
            "{\"a\":-5,\"b\":[true,null,\"x\\n\\u0001\"],\"\u{1f600}\":2,\"\u{fb33}\":1}"
        );
    }

    #[test]
    fn integers_print_as_json_numbers() {
        for value in [
            0i64,
            1,
            -1,
            9,
            10,
            -10,
            306,
            1_000_000,
            MAX_SAFE_INTEGER,
            -MAX_SAFE_INTEGER,
        ] {
            let mut out = Vec::new();
            write_int(&mut out, value);
            assert_eq!(String::from_utf8(out).unwrap(), value.to_string());
        }
    }

    #[test]
    fn refuses_floats_and_unsafe_integers() {
        assert!(to_vec(&json!(1.5)).is_err());
        assert!(to_vec(&json!(9007199254740992i64)).is_err());
        assert_eq!(
            to_vec(&json!(9007199254740991i64)).unwrap(),
            b"9007199254740991"
        );
    }
}
