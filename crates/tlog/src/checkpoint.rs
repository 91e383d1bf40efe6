//! C2SP tlog-checkpoint: a signed note whose text is `origin\nsize\nbase64(root)\n[extensions]`.

use crate::hash::Hash;
use crate::note::{self, Note, NoteError, Verifier};

/// Extension lines we accept (the spec discourages them; a bound keeps parsing cheap).
pub const MAX_EXTENSION_LINES: usize = 16;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn text(&self) -> String {
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            self.root.to_base64()
        );
        for line in &self.extensions {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// Parses checkpoint note text (not a whole signed note: see [`open`]).
    pub fn parse_text(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |why: &str| NoteError::Malformed(format!("checkpoint: {why}"));
        let body = text
            .strip_suffix('\n')
            .ok_or_else(|| bad("must end in a newline"))?;
        let lines: Vec<&str> = body.split('\n').collect();
        if lines.len() < 3 || lines.len() > 3 + MAX_EXTENSION_LINES {
            return Err(bad(
                "expected origin, size, root and at most 16 extension lines",
            ));
        }
        let origin = lines[0];
        if origin.is_empty() {
            return Err(bad("empty origin"));
        }
        let size_text = lines[1];
        let canonical = !size_text.is_empty()
            && size_text.bytes().all(|b| b.is_ascii_digit())
            && (size_text == "0" || !size_text.starts_with('0'));
        let size: u64 = if canonical {
            size_text.parse().map_err(|_| bad("size out of range"))?
        } else {
            return Err(bad("bad size"));
        };
        let root =
            Hash::from_base64(lines[2]).ok_or_else(|| bad("root is not base64 of 32 bytes"))?;
        if root.to_base64() != lines[2] {
            return Err(bad("root is not canonical base64"));
        }
        let extensions: Vec<String> = lines[3..].iter().map(|l| l.to_string()).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(bad("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

/// A checkpoint verified against `known` keys, with the note it came in.
#[derive(Clone, Debug)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: Note,
}

/// Opens a signed checkpoint. The log's own key must be among `known` and must have signed it; other
/// known keys (witnesses) are verified too, unknown ones set aside.
pub fn open(
    message: &[u8],
    log_key: &Verifier,
    others: &[Verifier],
) -> Result<SignedCheckpoint, NoteError> {
    let mut known = vec![log_key.clone()];
    known.extend_from_slice(others);
    let note = note::open(message, &known)?;
    if !note
        .verified
        .iter()
        .any(|s| s.name == log_key.name && s.id == log_key.id)
    {
        return Err(NoteError::Unverified);
    }
    let checkpoint = Checkpoint::parse_text(&note.text)?;
    if checkpoint.origin != log_key.name {
        return Err(NoteError::Malformed(format!(
            "checkpoint origin {:?} is not the log key's name {:?}",
            checkpoint.origin, log_key.name
        )));
    }
    Ok(SignedCheckpoint { checkpoint, note })
}
