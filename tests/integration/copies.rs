//! Poll witnesses' copies through the real binary: every disagreement the generator injects is
//! reported with its fields and no other (audit, API, verifier agree); unentitled copies are refused
//! with the documented status and never logged; a copy may come before or after the official form;
//! a revoked witness is refused; a correction that brings the result in line with the copies says so.

use std::collections::BTreeMap;

use saksi_election::copy::{SignedCopy, WitnessCopy};
use saksi_election::form::{Correction, SignedForm};
use saksi_election::Level;

use crate::util::{gen_and_init, get_json, http, import, saksi, text, Server, TempDir};

const SEED: u64 = 2024;

type Disagreements = BTreeMap<(String, String), Vec<String>>;

fn disagreements_of(items: &serde_json::Value) -> Disagreements {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let mut fields: Vec<String> = d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            fields.sort();
            (
                (
                    d["tps"].as_str().unwrap().to_string(),
                    d["participant"].as_str().unwrap().to_string(),
                ),
                fields,
            )
        })
        .collect()
}

#[test]
fn every_injected_disagreement_is_reported_with_its_fields_and_no_other() {
    let dir = TempDir::new("copies-truth");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(
        &election,
        &data,
        &["--tps", "10000", "--fault-rate", "0.02"],
    );
    import(&data, &format!("{election}/forms.ndjson"), 1);
    // Misread copies break their own arithmetic: logged, rejected by the rulebook, still compared.
    import(&data, &format!("{election}/copies.ndjson"), 1);

    let truth: serde_json::Value =
        serde_json::from_slice(&std::fs::read(format!("{election}/truth.json")).unwrap()).unwrap();
    let want = disagreements_of(&truth["copy_disagreements"]);
    let kinds: std::collections::BTreeSet<&str> = truth["copy_disagreements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["copy_misread", "copy_wrong_tps", "official_raised"],
        "the test election injects every kind"
    );

    // The audit, from the data directory: exactly the injected ones, exit 1.
    let out = saksi(&["audit", "copies", "--data", &data, "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let audited: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(disagreements_of(&audited), want);
    // Each item says both values of every field it names.
    for item in audited.as_array().unwrap() {
        for field in item["fields"].as_array().unwrap() {
            let field = field.as_str().unwrap();
            assert_ne!(item["official"][field], item["copy"][field], "{item}");
        }
    }

    // The API, page by page, says the same, and its counts are the audit's.
    let server = Server::serve(&data, &["--rate-limit", "0"]);
    let mut listed = serde_json::Value::Array(Vec::new());
    let mut after = String::new();
    loop {
        let page = get_json(&format!(
            "{}/api/v1/disagreements?limit=50&after={after}",
            server.base
        ));
        listed
            .as_array_mut()
            .unwrap()
            .extend(page["disagreements"].as_array().unwrap().iter().cloned());
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    assert_eq!(disagreements_of(&listed), want);
    let national = get_json(&format!("{}/api/v1/regions", server.base));
    let tps_disagreeing: std::collections::BTreeSet<&String> =
        want.keys().map(|(t, _)| t).collect();
    assert_eq!(
        national["tally"]["copies"]["tps_disagreeing"].as_u64(),
        Some(tps_disagreeing.len() as u64)
    );
    for participant in ["01", "02", "03"] {
        let count = want
            .keys()
            .filter(|(_, p)| p == participant)
            .map(|(t, _)| t)
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        assert_eq!(
            national["tally"]["copies"]["tps_disagreeing_by_participant"][participant].as_u64(),
            Some(count as u64),
            "participant {participant}"
        );
    }
    assert!(national["tally"]["copies"]["tps_witness_only"].as_u64() > Some(0));
    // A region's page counts only its own.
    let (tps, _) = want.keys().next().unwrap();
    let province = &tps[..2];
    let region = get_json(&format!(
        "{}/api/v1/disagreements?region={province}&limit=5000",
        server.base
    ));
    assert_eq!(
        disagreements_of(&region["disagreements"]),
        want.iter()
            .filter(|((t, _), _)| t.starts_with(province))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Disagreements>()
    );

    // The verifier re-derives every enrolment, copy verdict and comparison, and the API's counts.
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    let out = saksi(&["verify", "--url", &server.base, "--vkey", vkey.trim()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("({} disagreeing)", tps_disagreeing.len())),
        "{}",
        text(&out)
    );
}

fn post(server: &Server, path: &str, body: &[u8]) -> (u16, serde_json::Value) {
    let (status, _, body) = http("POST", &format!("{}{path}", server.base), body);
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

fn log_size(server: &Server) -> u64 {
    get_json(&format!("{}/api/v1/log", server.base))["checkpoint"]["size"]
        .as_u64()
        .unwrap()
}

#[test]
fn copies_are_refused_unless_entitled_and_compared_whenever_they_come() {
    let dir = TempDir::new("copies-auth");
    let (election, data) = (dir.path("election"), dir.path("data"));
    gen_and_init(&election, &data, &["--tps", "300", "--fault-rate", "0"]);
    // No forms yet: copies come first here.
    let forms: Vec<SignedForm> = std::fs::read_to_string(format!("{election}/forms.ndjson"))
        .unwrap()
        .lines()
        .map(|l| SignedForm::decode(l.as_bytes()).unwrap())
        .collect();
    let copies: Vec<SignedCopy> = std::fs::read_to_string(format!("{election}/copies.ndjson"))
        .unwrap()
        .lines()
        .map(|l| SignedCopy::decode(l.as_bytes()).unwrap())
        .collect();
    let server = Server::serve(&data, &["--rate-limit", "0"]);
    // A copy by pair 01's witness at a TPS with some invalid ballots (to raise the official form by).
    let honest = copies
        .iter()
        .find(|c| c.copy.participant == "01" && c.copy.form.invalid >= 2)
        .expect("pair 01 has a copy somewhere")
        .clone();
    let tps = honest.copy.form.tps;
    let desa = tps.ancestor(Level::Desa).unwrap();
    let witness = saksi_gen::copies::poll_witness_key(SEED, "01", desa);
    assert_eq!(witness.public(), honest.copy.form.signer);
    let resign = |mut copy: WitnessCopy, key: &saksi_election::sign::SecretKey| {
        copy.form.signer = key.public();
        copy.sign(key).encode()
    };

    let before = log_size(&server);
    // Not enrolled at all; a witness of 01 speaking as 02; a TPS outside its desa.
    let stranger = saksi_election::sign::SecretKey::from_seed([9; 32]);
    let (status, body) = post(
        &server,
        "/api/v1/copies",
        &resign(honest.copy.clone(), &stranger),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("POLL_WITNESS_NOT_ENROLLED")),
        "{body}"
    );
    let mut as_02 = honest.copy.clone();
    as_02.participant = "02".into();
    let (status, body) = post(&server, "/api/v1/copies", &resign(as_02, &witness));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("POLL_WITNESS_NOT_ENROLLED")),
        "{body}"
    );
    let elsewhere = forms
        .iter()
        .map(|f| f.form.tps)
        .find(|t| t.ancestor(Level::Desa) != Some(desa))
        .unwrap();
    let mut out_of_scope = honest.copy.clone();
    out_of_scope.form.tps = elsewhere;
    let (status, body) = post(&server, "/api/v1/copies", &resign(out_of_scope, &witness));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("POLL_WITNESS_OUT_OF_SCOPE")),
        "{body}"
    );
    // A bad signature, an officer's form signature passed off as a copy's, malformed, oversized.
    let mut forged = honest.clone();
    forged.signature.0[3] ^= 1;
    let (status, body) = post(&server, "/api/v1/copies", &forged.encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("SIGNATURE_INVALID")),
        "{body}"
    );
    let as_form = honest.copy.form.clone().sign(&witness);
    let replayed = SignedCopy {
        copy: honest.copy.clone(),
        signature: as_form.signature,
    };
    let (status, _) = post(&server, "/api/v1/copies", &replayed.encode());
    assert_eq!(status, 401);
    let (status, body) = post(&server, "/api/v1/copies", &as_form.encode());
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("MALFORMED")),
        "{body}"
    );
    let (status, _) = post(&server, "/api/v1/copies", &vec![b' '; 40_000]);
    assert_eq!(status, 413);
    assert_eq!(log_size(&server), before, "nothing refused was logged");

    // Before the official form: logged with a receipt; the TPS has only a witness's word.
    let (status, body) = post(&server, "/api/v1/copies", &honest.encode());
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
    assert!(body["receipt"]
        .as_str()
        .unwrap()
        .starts_with("c2sp.org/tlog-proof@v1"));
    let (status, body) = post(&server, "/api/v1/copies", &honest.encode());
    assert_eq!(
        (status, body["duplicate"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let page = get_json(&format!("{}/api/v1/tps/{tps}", server.base));
    assert_eq!(page["copies"]["status"], "witness_only", "{page}");
    assert_eq!(
        page["copies"]["items"][0]["evidence"]
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // The official form arrives with pair 02 raised (invalid ballots counted as its votes, so the
    // form's own arithmetic holds): the copy now disagrees, field by field.
    let official = forms.iter().find(|f| f.form.tps == tps).unwrap();
    let mut raised = official.form.clone();
    let by = raised.invalid.min(5);
    raised.votes[1].1 += by;
    raised.valid += by;
    raised.invalid -= by;
    let officer = saksi_gen::officer_key(SEED, tps);
    let (status, body) = post(&server, "/api/v1/forms", &raised.sign(&officer).encode());
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
    let page = get_json(&format!("{}/api/v1/tps/{tps}", server.base));
    assert_eq!(page["copies"]["status"], "disagree", "{page}");
    assert_eq!(
        page["copies"]["disagreeing_participants"],
        serde_json::json!(["01"])
    );
    let differences = &page["copies"]["items"][0]["differences"];
    assert_eq!(differences[0]["field"], "votes.02", "{differences}");
    assert_eq!(
        differences[0]["official"].as_i64().unwrap() - differences[0]["copy"].as_i64().unwrap(),
        by
    );
    assert_eq!(differences[1]["field"], "valid");
    assert_eq!(differences[2]["field"], "invalid");
    assert_eq!(differences.as_array().unwrap().len(), 3);
    // The site says so on the TPS page, marking exactly the differing figures, and lists the TPS.
    let (_, _, page_html) = http("GET", &format!("{}/tps/{tps}", server.base), b"");
    let page_html = String::from_utf8(page_html).unwrap();
    assert!(
        page_html.contains("data-copies=\"disagree\""),
        "{page_html}"
    );
    let marked: Vec<&str> = page_html
        .match_indices("data-differs=\"")
        .map(|(at, m)| page_html[at + m.len()..].split('"').next().unwrap())
        .collect();
    assert_eq!(marked, ["votes.02", "valid", "invalid"]);
    let (_, _, list) = http("GET", &format!("{}/salinan", server.base), b"");
    assert!(String::from_utf8(list)
        .unwrap()
        .contains(&format!("data-tps=\"{tps}\"")));

    // The commission corrects the result back to what the witness saw: shown as aligned.
    let mut corrected = official.form.clone();
    corrected.correction = Some(Correction {
        reason: "recount: the copies of the pairs' witnesses were right".into(),
    });
    let corrector = saksi_gen::corrector_key(SEED, tps.ancestor(Level::KabKota).unwrap());
    corrected.signer = corrector.public();
    let (status, body) = post(
        &server,
        "/api/v1/forms",
        &corrected.sign(&corrector).encode(),
    );
    assert_eq!(
        (status, body["accepted"].as_bool()),
        (201, Some(true)),
        "{body}"
    );
    let page = get_json(&format!("{}/api/v1/tps/{tps}", server.base));
    assert_eq!(page["copies"]["status"], "agree", "{page}");
    assert_eq!(
        page["copies"]["corrections"][0]["effect"], "aligned",
        "{page}"
    );

    // A TPS takes a bounded number of copies (the witness's own resends included); then 403.
    let logged = page["copies"]["items"].as_array().unwrap().len();
    let mut accepted = 0;
    for n in 0.. {
        let mut resend = honest.copy.clone();
        resend.form.ballots.damaged += 1 + n;
        let (status, body) = post(&server, "/api/v1/copies", &resign(resend, &witness));
        if status == 403 {
            assert_eq!(body["error"]["code"], "COPY_LIMIT", "{body}");
            break;
        }
        assert_eq!(status, 201, "{body}");
        accepted += 1;
    }
    assert_eq!(logged + accepted, saksi_recap::state::MAX_COPIES_PER_TPS);
    // Only the witness's latest copy is compared: still one row per witness in the status.
    let page = get_json(&format!("{}/api/v1/tps/{tps}", server.base));
    assert_eq!(
        page["copies"]["items"].as_array().unwrap().len(),
        saksi_recap::state::MAX_COPIES_PER_TPS
    );
    let latest: Vec<&serde_json::Value> = page["copies"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["latest"] == true)
        .collect();
    assert_eq!(latest.len(), 1);

    // The participant revokes its witness (signed with its own key, through the CLI): the witness's
    // next copy is refused; what it sent before stays.
    let key_file = dir.path("participant-01.key");
    std::fs::write(
        &key_file,
        saksi_recap::keyfile::secret_key_text(&saksi_gen::copies::participant_key(SEED, "01")),
    )
    .unwrap();
    let out = saksi(&[
        "poll-witnesses",
        "--participant",
        "01",
        "--key",
        &key_file,
        "--revoke",
        &witness.public().to_base64(),
        "--url",
        &server.base,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // A statement by a key that is not the participant's is refused.
    let out = saksi(&[
        "poll-witnesses",
        "--participant",
        "02",
        "--key",
        &key_file,
        "--revoke",
        &witness.public().to_base64(),
        "--url",
        &server.base,
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let mut again = honest.copy.clone();
    again.form.evidence.pop();
    let (status, body) = post(&server, "/api/v1/copies", &resign(again, &witness));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("POLL_WITNESS_REVOKED")),
        "{body}"
    );
    let page = get_json(&format!("{}/api/v1/tps/{tps}", server.base));
    assert_eq!(
        page["copies"]["items"].as_array().unwrap().len(),
        saksi_recap::state::MAX_COPIES_PER_TPS
    );

    // Everything above re-derives from the log alone.
    let vkey = std::fs::read_to_string(format!("{data}/log.vkey")).unwrap();
    drop(server);
    let out = saksi(&[
        "verify",
        "--dir",
        &format!("{data}/log"),
        "--vkey",
        vkey.trim(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
}
