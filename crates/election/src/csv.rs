//! The little CSV this crate reads: comma-separated, fields optionally double-quoted with `""` as an
//! escaped quote, one record per line (no newlines inside fields; none of our sources has them).

/// Maximum fields in one record, a bound on work per line of untrusted input.
pub const MAX_FIELDS: usize = 64;

/// Splits one line into fields. Returns `None` for an unterminated quote or too many fields.
pub fn split_line(line: &str) -> Option<Vec<String>> {
    let line = line.strip_suffix('\r').unwrap_or(line);
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars().peekable();
    let mut quoted = false;
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' && at_field_start {
            quoted = true;
            at_field_start = false;
        } else if c == ',' {
            fields.push(std::mem::take(&mut field));
            if fields.len() >= MAX_FIELDS {
                return None;
            }
            at_field_start = true;
        } else {
            field.push(c);
            at_field_start = false;
        }
    }
    if quoted {
        return None;
    }
    fields.push(field);
    Some(fields)
}

/// Quotes a field if it needs it.
pub fn quote(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_quoted_fields() {
        assert_eq!(
            split_line("2,9901,200002,\"Abu Dhabi, Uni Emirat Arab\",99").unwrap(),
            vec!["2", "9901", "200002", "Abu Dhabi, Uni Emirat Arab", "99"]
        );
        assert_eq!(split_line("a,,\"b\"\"c\"").unwrap(), vec!["a", "", "b\"c"]);
        assert!(split_line("\"open").is_none());
        assert_eq!(split_line(&quote("x, \"y\"")).unwrap(), vec!["x, \"y\""]);
    }
}
