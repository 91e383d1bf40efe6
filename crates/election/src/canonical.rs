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

/// Whether `value` is within +-(2^53-1). A range test, never `abs()`: `i64::MIN.abs()` overflows
/// (it wraps to itself in release builds and would pass a `<=` test).
pub fn is_safe_integer(value: i64) -> bool {
    (-MAX_SAFE_INTEGER..=MAX_SAFE_INTEGER).contains(&value)
}

/// Characters refused in free text (reasons, names, sources) because they make a text display as
/// something other than what it is: bidirectional overrides, embeddings and isolates (U+202A..U+202E,
/// U+2066..U+2069, the marks U+200E, U+200F, U+061C), zero-width and invisible characters (U+200B..
/// U+200D, U+2060..U+2064, U+FEFF, U+180E, U+00AD), and every control character.
pub fn spoofing_char(text: &str) -> Option<char> {
    text.chars().find(|&c| {
        c.is_control()
            || matches!(c,
                '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2060}'..='\u{2064}'
                | '\u{061c}' | '\u{feff}' | '\u{180e}' | '\u{00ad}')
    })
}

/// Checks free text for [`spoofing_char`]; the error names the character by its code point.
pub fn check_free_text(what: &str, text: &str) -> Result<(), String> {
    match spoofing_char(text) {
        Some(c) => Err(format!(
            "{what} holds U+{:04X}: control, bidirectional and invisible characters are refused \
             (they make a text display as something it is not)",
            c as u32
        )),
        None => Ok(()),
    }
}

/// Parses JSON like `serde_json::from_slice::<Value>`, but refuses an object with a repeated member
/// name at any depth (serde_json keeps the last silently, so two readers could see different values).
pub fn parse_strict(bytes: &[u8]) -> Result<Value, String> {
    use serde::de::DeserializeSeed;
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue
        .deserialize(&mut deserializer)
        .map_err(|e| e.to_string())?;
    deserializer.end().map_err(|e| e.to_string())?;
    Ok(value)
}

/// A `Value` deserializer that refuses duplicate member names.
struct StrictValue;

impl<'de> serde::de::DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for StrictValue {
    type Value = Value;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(StrictValue)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(serde::de::Error::custom(format!(
                    "member {key:?} appears twice"
                )));
            }
            let value = map.next_value_seed(StrictValue)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

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
            Some(i) if is_safe_integer(i) => write_int(out, i),
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
    debug_assert!(is_safe_integer(value));
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
    fn strict_parse_refuses_repeated_members_at_any_depth() {
        assert!(parse_strict(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_strict(br#"{"x":[{"b":1,"b":1}]}"#).is_err());
        assert_eq!(
            parse_strict(br#"{"a":{"a":1}}"#).unwrap(),
            json!({"a": {"a": 1}})
        );
        assert!(parse_strict(br#"{"a":1} x"#).is_err());
    }

    #[test]
    fn free_text_refuses_spoofing_characters() {
        for bad in [
            "a\u{202e}b",
            "a\u{200b}",
            "\u{2066}x",
            "x\u{feff}",
            "x\ny",
            "\u{200f}",
        ] {
            assert!(check_free_text("reason", bad).is_err(), "{bad:?}");
        }
        assert!(
            check_free_text("reason", "salah baca angka: 385 -> 85 (é, 中文, العربية)").is_ok()
        );
    }

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
        assert!(to_vec(&json!(i64::MIN)).is_err());
        assert!(to_vec(&json!(u64::MAX)).is_err());
        assert_eq!(
            to_vec(&json!(9007199254740991i64)).unwrap(),
            b"9007199254740991"
        );
    }
}
