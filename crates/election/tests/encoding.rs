//! Properties of the signed-form encoding: canonical JSON round-trips, agrees with a generic RFC 8785
//! encoder, and any changed byte either fails to decode or breaks the signature.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use saksi_election::canonical;
use saksi_election::code::Code;
use saksi_election::form::{Ballots, CHasil, Disability, Lpj, PhotoDigest, SignedForm, VoterRows};
use saksi_election::sign::SecretKey;

const LIMIT: i64 = canonical::MAX_SAFE_INTEGER;

fn count() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..400, -LIMIT..=LIMIT]
}

fn lpj() -> impl Strategy<Value = Lpj> {
    (count(), count(), count()).prop_map(|(l, p, j)| Lpj { l, p, j })
}

fn rows() -> impl Strategy<Value = VoterRows> {
    (lpj(), lpj(), lpj(), lpj()).prop_map(|(dpt, dptb, dpk, total)| VoterRows {
        dpt,
        dptb,
        dpk,
        total,
    })
}

fn form() -> impl Strategy<Value = (CHasil, [u8; 32])> {
    let code = (11u64..99, 0u64..100_000_000_000)
        .prop_map(|(p, rest)| Code::parse(&format!("{p}{rest:011}")).unwrap());
    let votes = prop::collection::btree_map("[0-9a-z.-]{1,8}", count(), 0..6);
    let evidence = prop::collection::vec(any::<[u8; 32]>(), 0..4);
    (
        (
            "[a-z0-9-]{1,20}",
            "[a-z0-9.]{1,10}",
            code,
            rows(),
            rows(),
            lpj(),
            lpj(),
        ),
        (
            (count(), count(), count(), count()),
            votes,
            count(),
            count(),
            count(),
            evidence,
            any::<[u8; 32]>(),
        ),
    )
        .prop_map(
            |(
                (election, contest, tps, registered, voted, dis_r, dis_v),
                ((rc, us, dm, un), votes, valid, invalid, total, evidence, seed),
            )| {
                let key = SecretKey::from_seed(seed);
                let form = CHasil {
                    election,
                    contest,
                    correction: if seed[0] % 3 == 0 {
                        Some(saksi_election::form::Correction {
                            reason: format!("reason {}", seed[1]),
                        })
                    } else {
                        None
                    },
                    tps,
                    registered,
                    voted,
                    disability: Disability {
                        registered: dis_r,
                        voted: dis_v,
                    },
                    ballots: Ballots {
                        received: rc,
                        used: us,
                        damaged: dm,
                        unused: un,
                    },
                    votes: votes.into_iter().collect(),
                    valid,
                    invalid,
                    total,
                    evidence: evidence.into_iter().map(PhotoDigest).collect(),
                    signer: key.public(),
                };
                (form, seed)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn canonical_encoding_round_trips((form, seed) in form()) {
        let signed = form.sign(&SecretKey::from_seed(seed));
        let bytes = signed.encode();
        let decoded = SignedForm::decode(&bytes).unwrap();
        prop_assert_eq!(&decoded, &signed);
        prop_assert_eq!(decoded.encode(), bytes.clone());
        prop_assert!(decoded.signature_valid());
        // The direct writer is RFC 8785: a generic JCS encoder of the same JSON gives the same bytes.
        let value: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(canonical::to_vec(&value).unwrap(), bytes);
    }

    #[test]
    fn a_changed_byte_breaks_the_form((form, seed) in form(), position in any::<prop::sample::Index>(), xor in 1u8..=255) {
        let signed = form.sign(&SecretKey::from_seed(seed));
        let mut bytes = signed.encode();
        let at = position.index(bytes.len());
        bytes[at] ^= xor;
        match SignedForm::decode(&bytes) {
            // Either it no longer parses, or it parses to something the signature does not cover.
            Err(_) => {}
            Ok(changed) => {
                prop_assert!(changed != signed, "a changed byte decoded to the same form");
                prop_assert!(!changed.signature_valid(), "changed byte {} kept a valid signature", at);
            }
        }
    }
}

/// Integers no RFC 8785 encoder represents exactly: beyond +-(2^53-1), up to i64::MIN and past u64.
fn unsafe_integer() -> impl Strategy<Value = String> {
    prop_oneof![
        (i64::MIN..=-(LIMIT + 1)).prop_map(|v| v.to_string()),
        ((LIMIT + 1)..=i64::MAX).prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| (v | (1 << 63)).to_string()),
        Just(i64::MIN.to_string()),
        Just("18446744073709551616".to_string()),
        Just("-9007199254740992".to_string()),
    ]
}

/// `bytes` with its `n`-th JSON integer (counting every run of digits outside strings) replaced.
fn replace_integer(bytes: &[u8], n: usize, with: &str) -> Option<Vec<u8>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (mut in_string, mut escaped, mut seen) = (false, false, 0);
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
        } else if c == '-' || c.is_ascii_digit() {
            let end = chars[i + 1..]
                .iter()
                .find(|(_, d)| !d.is_ascii_digit())
                .map_or(text.len(), |(e, _)| *e);
            if seen == n {
                return Some(format!("{}{with}{}", &text[..at], &text[end..]).into_bytes());
            }
            seen += 1;
            while i + 1 < chars.len() && chars[i + 1].0 < end {
                i += 1;
            }
        }
        i += 1;
    }
    None
}

fn recap(seed: [u8; 32], values: [i64; 4]) -> saksi_election::recap::SignedRecap {
    use saksi_election::recap::{Figures, RecapForm, RecapLevel, RecapRow};
    let figures = Figures {
        votes: vec![("01".into(), values[0]), ("02".into(), values[1])],
        valid: values[2],
        invalid: values[3],
        voters: values[2] + values[3],
    };
    RecapForm {
        election: "pemilu-2024".into(),
        contest: "ppwp".into(),
        level: RecapLevel::Kecamatan,
        region: Some(Code::parse("110101").unwrap()),
        rows: vec![RecapRow {
            child: Code::parse("1101012001").unwrap(),
            figures: figures.clone(),
        }],
        total: figures,
        signer: SecretKey::from_seed(seed).public(),
        correction: None,
    }
    .sign(&SecretKey::from_seed(seed))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Every integer outside +-(2^53-1), in any numeric field, is refused by the form decoder, the
    /// recap decoder and the canonical encoder, and none of them panics (these tests run with
    /// overflow checks on).
    #[test]
    fn unsafe_integers_are_refused_everywhere(
        (form, seed) in form(),
        which in any::<prop::sample::Index>(),
        values in [0i64..1000, 0i64..1000, 0i64..1000, 0i64..1000],
        number in unsafe_integer(),
    ) {
        let bytes = form.sign(&SecretKey::from_seed(seed)).encode();
        let fields = (0..).take_while(|&n| replace_integer(&bytes, n, "0").is_some()).count();
        prop_assume!(fields > 0);
        let changed = replace_integer(&bytes, which.index(fields), &number).unwrap();
        prop_assert!(SignedForm::decode(&changed).is_err(), "form accepted {}", number);
        if let Ok(value) = serde_json::from_slice::<serde_json::Value>(&changed) {
            prop_assert!(canonical::to_vec(&value).is_err(), "encoder accepted {}", number);
        }

        let bytes = recap(seed, values).encode();
        let fields = (0..).take_while(|&n| replace_integer(&bytes, n, "0").is_some()).count();
        let changed = replace_integer(&bytes, which.index(fields), &number).unwrap();
        prop_assert!(
            saksi_election::recap::SignedRecap::decode(&changed).is_err(),
            "recap accepted {}", number
        );
    }
}

#[test]
fn recap_decoder_refuses_repeated_members() {
    let bytes = recap([7; 32], [1, 2, 3, 0]).encode();
    let text = String::from_utf8(bytes).unwrap();
    assert!(saksi_election::recap::SignedRecap::decode(text.as_bytes()).is_ok());
    // The same envelope with a member repeated: serde_json alone would keep the last.
    let repeated = text.replacen("{\"form\":{", "{\"form\":{\"contest\":\"other\",", 1);
    let err = saksi_election::recap::SignedRecap::decode(repeated.as_bytes()).unwrap_err();
    assert!(err.0.contains("twice"), "{err:?}");
    // And a repeated vote position inside a row.
    let repeated = text.replacen("\"votes\":{\"01\":", "\"votes\":{\"02\":5,\"01\":", 1);
    assert!(saksi_election::recap::SignedRecap::decode(repeated.as_bytes()).is_err());
}

#[test]
fn reasons_with_bidirectional_or_invisible_characters_are_refused() {
    for reason in [
        "salah \u{202e}tulis",
        "koreksi\u{200b}",
        "\u{2066}x\u{2069}",
    ] {
        let (mut form, seed) = {
            let mut runner = proptest::test_runner::TestRunner::deterministic();
            form().new_tree(&mut runner).unwrap().current()
        };
        form.correction = Some(saksi_election::form::Correction {
            reason: reason.to_string(),
        });
        let bytes = form.sign(&SecretKey::from_seed(seed)).encode();
        let err = SignedForm::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("U+"), "{reason:?}: {err}");
    }
}
