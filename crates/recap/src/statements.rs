//! The election authority's statements (the genesis, registry changes, witness policies): made
//! offline with the authority's key, and checked here before the engine logs them. Pure functions
//! of the state: nothing here writes.

use saksi_election::rules::{self, Rulebook};
use saksi_election::sign::SecretKey;
use saksi_election::{Election, Registry};

use crate::datadir::ServerKeys;
use crate::entry::{registry_parts, Admin, Entry, Genesis, RegistryPart, WitnessPolicy};
use crate::state::State;

/// Statements submitted from outside are at most one log entry (a registry change enrolling some
/// hundreds of keys; larger changes go in several statements). Larger would fail the append and
/// poison the engine; it is refused before.
pub const MAX_STATEMENT_BYTES: usize = saksi_tlog::tile::MAX_ENTRY_BYTES;

/// The genesis (election, rulebook, the authority's and the server's keys) and the registry, as
/// statements signed by `authority`: what an authority signs offline for
/// [`crate::Engine::init_from_statements`].
pub fn genesis_statements(
    keys: &ServerKeys,
    election: Election,
    registry: &Registry,
    authority: &SecretKey,
) -> Vec<Vec<u8>> {
    let genesis = Genesis {
        election,
        authority: authority.public(),
        operator: keys.operator,
        log_vkey: keys.log_vkey.clone(),
        rulebook_version: rules::RULEBOOK_VERSION.to_string(),
        rulebook_sha256: rules::digest(),
    };
    let mut statements = vec![Admin::Genesis(genesis).sign(authority).encode()];
    statements.extend(
        registry_parts(registry)
            .into_iter()
            .map(|part| Admin::Registry(part).sign(authority).encode()),
    );
    statements
}

/// Checks the statements a new log starts with: the genesis names this directory's log and operator
/// keys (`keys`) and a rulebook this build knows (with its digest), and every statement applies,
/// signed by the authority the genesis names. Returns why not.
pub fn check_genesis_statements(keys: &ServerKeys, statements: &[Vec<u8>]) -> Result<(), String> {
    let mut state = State::default();
    for (n, bytes) in statements.iter().enumerate() {
        let entry = match Entry::decode(bytes) {
            Ok(entry @ Entry::Admin { .. }) => entry,
            Ok(_) => return Err(format!("statement {n} is not an authority statement")),
            Err(e) => return Err(format!("statement {n}: {e}")),
        };
        if let Entry::Admin {
            statement: Admin::Genesis(genesis),
            ..
        } = &entry
        {
            if genesis.log_vkey != keys.log_vkey || genesis.operator != keys.operator {
                return Err(format!(
                    "the genesis names log key {} and operator {}, but this directory's are {} and {}",
                    genesis.log_vkey, genesis.operator, keys.log_vkey, keys.operator
                ));
            }
            match Rulebook::named(&genesis.rulebook_version) {
                Some(r) if r.digest() == genesis.rulebook_sha256 => {}
                _ => {
                    return Err(format!(
                        "the genesis names rulebook {} (sha256 {}), which this saksi does not have",
                        genesis.rulebook_version, genesis.rulebook_sha256
                    ))
                }
            }
        }
        state.apply(n as u64, &entry).map_err(|e| e.to_string())?;
    }
    if state.genesis.is_none() {
        return Err("no statements".into());
    }
    Ok(())
}

/// Checks a statement submitted to a running log: a registry change or a witness policy (as made by
/// `Admin::sign(...).encode()`, `saksi enroll`/`saksi witnesses --out`), within one entry, not logged
/// before, signed by the authority the genesis names, and applying to `state` (keys enrollable,
/// codes registered, the policy well-formed). Returns the entry to log with its canonical encoding
/// (the bytes the log will hold), or why not.
pub fn check_statement(state: &State, bytes: &[u8]) -> Result<(Entry, Vec<u8>), String> {
    let too_large =
        || format!("larger than one log entry ({MAX_STATEMENT_BYTES} bytes): split the change");
    if bytes.len() > MAX_STATEMENT_BYTES {
        return Err(too_large());
    }
    let entry = Entry::decode(bytes).map_err(|e| format!("not a saksi statement: {e}"))?;
    let signature = match &entry {
        Entry::Admin { signature, .. }
        | Entry::Participant { signature, .. }
        | Entry::Intake { signature, .. }
        | Entry::Moderation { signature, .. } => signature,
        _ => {
            return Err(
                "not an authority, participant, moderator or operator intake statement".into(),
            )
        }
    };
    // Logged as re-encoded, which may differ in length from what was sent.
    let encoded = entry.encode();
    if encoded.len() > MAX_STATEMENT_BYTES {
        return Err(too_large());
    }
    if let Some(index) = state.logged_statement(&signature.0) {
        return Err(format!(
            "this statement is already in the log (entry {index}); a statement is logged once"
        ));
    }
    let Some(authority) = state.genesis.as_ref().map(|g| g.authority) else {
        return Err("the log has no genesis".into());
    };
    match &entry {
        Entry::Admin { statement, .. } => {
            if !entry.admin_signature_valid(&authority) {
                return Err(format!(
                    "not signed by the authority named in the genesis ({authority})"
                ));
            }
            match statement {
                Admin::Genesis(_) => return Err("a log has one genesis".into()),
                // Every key is checked here (enrollable: canonical, not of small order) since the
                // state trusts logged keys.
                Admin::Registry(part) => dry_run_registry(state, part)?,
                Admin::Witnesses(policy) => check_witness_policy(policy)?,
            }
        }
        Entry::Participant {
            statement, signer, ..
        } => {
            let participant = &statement.change.participant;
            if !state.registry.is_participant_key(participant, signer) {
                return Err(format!(
                    "signed by {signer}, which the authority has not enrolled for participant {participant}"
                ));
            }
            if !entry.participant_signature_valid() {
                return Err(format!("the signature is not {signer}'s"));
            }
            if statement.change.enrol.is_empty() && statement.change.revoke.is_empty() {
                return Err("the statement enrols and revokes nobody".into());
            }
            // A dry run on the live registry: nothing changes until the entry is logged.
            state
                .registry
                .check_poll_witness_change(&statement.change, signer)
                .map_err(|e| e.to_string())?;
        }
        Entry::Moderation {
            statement,
            moderator,
            ..
        } => {
            if !entry.moderation_signature_valid() {
                return Err(format!("the signature is not {moderator}'s"));
            }
            state.check_moderation(statement, moderator)?;
        }
        Entry::Intake { .. } => state.check_intake(&entry)?,
        _ => unreachable!("matched above"),
    }
    Ok((entry, encoded))
}

/// Applies a registry change to a copy of `registry`, in the order `State::apply` takes the parts,
/// checking every key, so a bad change is refused before it is logged.
fn dry_run_registry(state: &State, part: &RegistryPart) -> Result<(), String> {
    for (participant, _) in &part.participants {
        if state.participant_index(participant).is_none() {
            return Err(format!(
                "participant {participant} is not a ballot position of the contest"
            ));
        }
    }
    if let Some(recipient) = &part.oversight_recipient {
        crate::contact::check_recipient(recipient)?;
    }
    let mut registry = state.registry.clone();
    for (code, name) in &part.regions {
        saksi_election::canonical::check_free_text("a region name", name)?;
        registry
            .add_region(*code, name)
            .map_err(|e| e.to_string())?;
    }
    for tps in &part.tps {
        registry.add_tps(tps.clone()).map_err(|e| e.to_string())?;
    }
    for (region, key) in &part.correctors {
        registry
            .add_corrector(*region, *key)
            .map_err(|e| e.to_string())?;
    }
    for (tps, key) in &part.enrollments {
        registry.enroll(*tps, *key).map_err(|e| e.to_string())?;
    }
    for (region, key) in &part.recap_officers {
        key.check_enrollable()
            .map_err(|e| format!("key {key}: {e}"))?;
        registry
            .add_recap_officer(*region, *key)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// A witness policy's own shape: a quorum it can meet, keys of the cosignature type (0x04).
pub fn check_witness_policy(policy: &WitnessPolicy) -> Result<(), String> {
    if policy.quorum as usize > policy.witnesses.len() {
        return Err("the quorum is larger than the number of witnesses".into());
    }
    for (vkey, _) in &policy.witnesses {
        let key =
            saksi_tlog::note::Verifier::parse(vkey).map_err(|e| format!("witness key: {e}"))?;
        if key.kind != saksi_tlog::note::TYPE_COSIGNATURE_V1 {
            return Err(format!("{vkey}: a witness key has type 0x04"));
        }
    }
    Ok(())
}
