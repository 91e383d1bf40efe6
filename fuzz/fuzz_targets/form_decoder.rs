//! Any bytes into the signed-form decoder (and the recap decoder): never a panic; whatever decodes
//! re-encodes canonically and decodes to the same form.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(form) = saksi_election::SignedForm::decode(data) {
        let again = saksi_election::SignedForm::decode(&form.encode())
            .expect("a canonical encoding decodes");
        assert_eq!(again, form);
        let _ = form.signature_valid();
    }
    if let Ok(recap) = saksi_election::recap::SignedRecap::decode(data) {
        let again = saksi_election::recap::SignedRecap::decode(&recap.encode())
            .expect("a canonical encoding decodes");
        assert_eq!(again, recap);
    }
});
