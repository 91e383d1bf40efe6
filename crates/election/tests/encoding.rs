//! Properties of the signed-form encoding: canonical JSON round-trips, agrees with a generic RFC 8785
//! encoder, and any changed byte either fails to decode or breaks the signature.

use proptest::prelude::*;
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
