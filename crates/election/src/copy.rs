//! A poll witness's copy (salinan) of a TPS's result.
//!
//! At every TPS each participant (a candidate pair: 01, 02, 03) may have a poll witness (saksi TPS)
//! who watches the count and receives a copy of form C.Hasil. saksi calls these people *poll
//! witnesses* and what they send a *copy*, to keep them apart from the log's C2SP witnesses
//! (cosigners). A copy is the figures the witness received, in the same schema as the officer's form
//! (the form's `signer` is the poll witness's key), and the participant the witness speaks for:
//!
//! ```text
//! {"copy":{"form":<C.Hasil>,"participant":"01"},"signature":"<base64>"}
//! ```
//!
//! The signature covers `CONTEXT_SALINAN || JCS({"form":...,"participant":...})`. A copy never
//! carries a correction: only a commission corrects, and only the official result.

use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::canonical;
use crate::form::{CHasil, DecodeError, SignedForm, MAX_FORM_BYTES};
use crate::sign::{self, SecretKey, Signature};

/// Context of a poll witness's signature on a copy.
pub const CONTEXT_SALINAN: &[u8] = b"saksi/sig/v1/salinan\n";

/// A copy is a form plus its participant and the envelope's few bytes.
pub const MAX_COPY_BYTES: usize = MAX_FORM_BYTES + 256;

/// Participant identifiers are ballot positions ("01") or, later, party numbers: short and plain.
pub const MAX_PARTICIPANT_BYTES: usize = 8;

/// A copy as its poll witness signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessCopy {
    /// The figures as the witness received them; `form.signer` is the poll witness's key.
    pub form: CHasil,
    /// Whom the witness speaks for: a ballot position of the contest.
    pub participant: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCopy {
    pub copy: WitnessCopy,
    pub signature: Signature,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireEnvelope<'a> {
    #[serde(borrow)]
    copy: WireCopy<'a>,
    signature: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WireCopy<'a> {
    #[serde(borrow)]
    form: &'a serde_json::value::RawValue,
    participant: String,
}

/// Whether a participant identifier is well-formed (ASCII digits, 1..=8 of them).
pub fn valid_participant(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_PARTICIPANT_BYTES
        && text.bytes().all(|b| b.is_ascii_digit())
}

impl WitnessCopy {
    /// JCS of `{"form":<form>,"participant":"01"}`: what the witness signs, after the context.
    pub fn canonical_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1100);
        self.write_canonical(&mut out);
        out
    }

    fn write_canonical(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"form\":");
        self.form.write_canonical(out);
        out.extend_from_slice(b",\"participant\":");
        canonical::write_str(out, &self.participant);
        out.push(b'}');
    }

    pub fn sign(self, key: &SecretKey) -> SignedCopy {
        let signature = key.sign(CONTEXT_SALINAN, &self.canonical_json());
        SignedCopy {
            copy: self,
            signature,
        }
    }
}

impl SignedCopy {
    /// Decodes one copy (a request body, or a line of `copies.ndjson`), as strictly as a form:
    /// every field present, none unknown or repeated, bounded.
    pub fn decode(bytes: &[u8]) -> Result<SignedCopy, DecodeError> {
        if bytes.len() > MAX_COPY_BYTES {
            return Err(DecodeError::TooLarge { bytes: bytes.len() });
        }
        let wire: WireEnvelope =
            serde_json::from_slice(bytes).map_err(|e| DecodeError::Json(e.to_string()))?;
        if !valid_participant(&wire.copy.participant) {
            return Err(DecodeError::Format(format!(
                "participant {:?} is not a ballot position (1 to {MAX_PARTICIPANT_BYTES} digits)",
                wire.copy.participant
            )));
        }
        // The form inside is decoded by the form's own strict decoder.
        let SignedForm { form, signature } =
            SignedForm::from_parts(wire.copy.form.get().as_bytes(), &wire.signature)?;
        if form.correction.is_some() {
            return Err(DecodeError::Format(
                "a copy cannot carry a correction: only a commission corrects the official result"
                    .into(),
            ));
        }
        Ok(SignedCopy {
            copy: WitnessCopy {
                form,
                participant: wire.copy.participant,
            },
            signature,
        })
    }

    /// Canonical envelope: `{"copy":{"form":...,"participant":...},"signature":"..."}`, one line.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1200);
        out.extend_from_slice(b"{\"copy\":");
        self.copy.write_canonical(&mut out);
        out.extend_from_slice(b",\"signature\":");
        canonical::write_str(&mut out, &self.signature.to_base64());
        out.push(b'}');
        out
    }

    /// This copy's signature as an item of a batch check ([`sign::verify_batch`]), over `message`,
    /// which must be [`SignedCopy::signed_message`].
    pub fn batch_item<'a>(&self, message: &'a [u8]) -> sign::BatchItem<'a> {
        sign::BatchItem {
            key: self.copy.form.signer,
            point: None,
            message,
            signature: self.signature,
        }
    }

    /// What the poll witness signs: the context, then the copy's canonical JSON.
    pub fn signed_message(&self) -> Vec<u8> {
        [CONTEXT_SALINAN, &self.copy.canonical_json()].concat()
    }

    /// Whether the signature is the named poll witness's over this copy (entitlement is separate:
    /// [`crate::Registry::poll_witness_entitlement`]).
    pub fn signature_valid(&self) -> bool {
        sign::verify(
            &self.copy.form.signer,
            CONTEXT_SALINAN,
            &self.copy.canonical_json(),
            &self.signature,
        )
    }

    /// SHA-256 of the encoded envelope: identifies an exact copy (a resubmission is the same copy).
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::form::tests::sample_form;

    fn key(n: u8) -> SecretKey {
        SecretKey::from_seed([n; 32])
    }

    fn copy(n: u8) -> SignedCopy {
        WitnessCopy {
            form: sample_form(key(n).public()),
            participant: "02".into(),
        }
        .sign(&key(n))
    }

    #[test]
    fn round_trips_and_verifies() {
        let signed = copy(7);
        let bytes = signed.encode();
        let decoded = SignedCopy::decode(&bytes).unwrap();
        assert_eq!(decoded, signed);
        assert!(decoded.signature_valid());
        assert_eq!(decoded.encode(), bytes);
        // The canonical bytes are JCS of the generic value.
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(canonical::to_vec(&value).unwrap(), bytes);
    }

    #[test]
    fn a_form_signature_is_not_a_copy_signature() {
        // The same key signing the same figures as a form: the contexts differ, so neither passes
        // for the other.
        let form = sample_form(key(3).public());
        let as_form = form.clone().sign(&key(3));
        let forged = SignedCopy {
            copy: WitnessCopy {
                form,
                participant: "01".into(),
            },
            signature: as_form.signature,
        };
        assert!(!forged.signature_valid());
    }

    #[test]
    fn changing_the_participant_breaks_the_signature() {
        let mut signed = copy(5);
        signed.copy.participant = "01".into();
        assert!(!signed.signature_valid());
    }

    #[test]
    fn refuses_bad_shapes() {
        let good = String::from_utf8(copy(9).encode()).unwrap();
        let cases = [
            good.replace("\"participant\":\"02\"", "\"participant\":\"x1\""),
            good.replace("\"participant\":\"02\"", "\"participant\":\"\""),
            good.replace("{\"copy\":{", "{\"copy\":{\"extra\":1,"),
            good.replace(
                "\"participant\":\"02\"}",
                "\"participant\":\"02\",\"participant\":\"03\"}",
            ),
            good.replace(
                "\"evidence\":",
                "\"correction\":{\"reason\":\"x\"},\"evidence\":",
            ),
            good.replace(",\"signature\":", ",\"signature\":\"AAAA\",\"x\":"),
            good[..good.len() - 1].to_string(),
            format!("{}{}", &good[..good.len() - 1], " ".repeat(MAX_COPY_BYTES)),
        ];
        for (n, case) in cases.iter().enumerate() {
            assert!(
                SignedCopy::decode(case.as_bytes()).is_err(),
                "case {n}: {case}"
            );
        }
    }
}
