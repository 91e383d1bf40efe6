//! Gathering witness cosignatures (C2SP tlog-witness): every witness asked at once on its own
//! thread, through the tools' one HTTP client, within named deadlines; the first `quorum` valid
//! cosignatures win. Knows nothing of when to ask: that is [`crate::publication`]'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use saksi_tlog::note::Verifier;
use saksi_tlog::{Storage, TileReader};

/// One witness's request: connect, send and read its answer (per the C2SP tlog-witness spec).
pub const WITNESS_REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// All witnesses together: past this the checkpoint stays unpublished until the next commit.
pub const WITNESS_DEADLINE: Duration = Duration::from_secs(4);
/// A witness answers with cosignature lines (or a size): a few hundred bytes.
const WITNESS_MAX_RESPONSE_BYTES: u64 = 64 << 10;

/// Asks every witness at once, each on its own thread; returns the valid cosignature lines (and who
/// gave them) as soon as `quorum` arrived, or whatever arrived by WITNESS_DEADLINE. A witness still
/// answering then is left to its thread, which ends within WITNESS_REQUEST_TIMEOUT.
pub(crate) fn gather_cosignatures(
    requests: Vec<WitnessRequest>,
    quorum: u32,
) -> (Vec<String>, Vec<u32>) {
    let (sender, answers) = std::sync::mpsc::channel::<(u32, Option<String>)>();
    let mut asked = 0usize;
    for request in requests {
        let sender = sender.clone();
        let spawned = std::thread::Builder::new()
            .name("saksi-witness".into())
            .spawn(move || {
                let id = request.witness.id;
                let _ = sender.send((id, request.ask()));
            });
        if spawned.is_ok() {
            asked += 1;
        }
    }
    drop(sender);
    let deadline = Instant::now() + WITNESS_DEADLINE;
    let (mut lines, mut cosigned) = (Vec::new(), Vec::new());
    let mut heard = 0usize;
    while lines.len() < quorum as usize && heard < asked {
        let left = deadline.saturating_duration_since(Instant::now());
        match answers.recv_timeout(left) {
            Ok((id, Some(line))) => {
                lines.push(line);
                cosigned.push(id);
            }
            Ok((_, None)) => {}
            Err(_) => break,
        }
        heard += 1;
    }
    (lines, cosigned)
}

/// What one witness thread needs: all owned, so the thread outlives nothing it borrows.
pub(crate) struct WitnessRequest {
    pub(crate) client: saksi_client::Client,
    pub(crate) storage: Arc<dyn Storage>,
    /// The committed checkpoint to cosign, and its size.
    pub(crate) note: String,
    pub(crate) size: u64,
    /// The size this witness last cosigned, as far as we know (0: never).
    pub(crate) old: u64,
    /// The witness's add-checkpoint URL.
    pub(crate) url: String,
    pub(crate) log: Verifier,
    pub(crate) witness: Verifier,
}

/// The HTTP client witness requests share: every bound is a witness's.
pub(crate) fn witness_client() -> Result<saksi_client::Client, String> {
    saksi_client::Client::new(saksi_client::Options {
        timeout: WITNESS_REQUEST_TIMEOUT,
        connect_timeout: WITNESS_REQUEST_TIMEOUT,
        max_response_bytes: WITNESS_MAX_RESPONSE_BYTES,
    })
    .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

impl WitnessRequest {
    /// The witness's valid cosignature line, or `None`. Once, or twice when the witness answers 409
    /// with the size it last saw (then with a proof from that size).
    fn ask(&self) -> Option<String> {
        let mut old = self.old;
        for _attempt in 0..2 {
            let proof = if old == 0 || old >= self.size {
                Vec::new()
            } else {
                let mut reader = TileReader::new(self.storage.clone(), self.size);
                saksi_tlog::merkle::consistency_proof(&mut reader, old, self.size).ok()?
            };
            let mut body = format!("old {old}\n");
            for hash in &proof {
                body.push_str(&hash.to_base64());
                body.push('\n');
            }
            body.push('\n');
            body.push_str(&self.note);
            let response = self.client.post(&self.url, body.as_bytes()).ok()?;
            match response.status {
                200 => {
                    let reply = String::from_utf8_lossy(&response.body);
                    let cosigned = format!("{}{reply}", self.note);
                    let known = [self.log.clone(), self.witness.clone()];
                    let note = saksi_tlog::note::open(cosigned.as_bytes(), &known).ok()?;
                    return note
                        .verified
                        .iter()
                        .find(|s| s.name == self.witness.name && s.id == self.witness.id)
                        .map(|line| line.encode());
                }
                409 => match String::from_utf8_lossy(&response.body)
                    .trim()
                    .parse::<u64>()
                {
                    Ok(latest) if latest <= self.size && latest != old => old = latest,
                    _ => return None,
                },
                _ => return None,
            }
        }
        None
    }
}
