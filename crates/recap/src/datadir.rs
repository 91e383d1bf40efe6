//! A data directory: the one place that knows where its files are and how its keys are kept.
//!
//! ```text
//! DATA/log/               the transparency log (C2SP tlog-tiles layout, served as-is)
//! DATA/log.vkey           the log's verifier key, one line
//! DATA/evidence/          evidence photos by SHA-256 (`sha256/<2 hex>/<64 hex>`), never in the log
//! DATA/keys/log.key       the log's signing key (Go note format), mode 0600
//! DATA/keys/operator.key  the operator's key (signs transcriptions of published data), mode 0600
//! ```
//! The election authority's key, which signs the genesis and every later registry change and witness
//! policy, is never here: whoever held it on the server could enrol a corrector and "correct" any TPS
//! under the commission's name. It signs offline; [`DataDir::refuse_authority_key`] refuses a
//! directory that holds it where earlier versions kept it.

use std::path::{Path, PathBuf};

use saksi_election::sign::{PublicKey, SecretKey};
use saksi_tlog::note::{Signer, Verifier, TYPE_ED25519};

use crate::error::EngineError;
use crate::keyfile;

/// The paths of one data directory.
#[derive(Clone, Debug)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: &Path) -> DataDir {
        DataDir {
            root: root.to_path_buf(),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The log's directory, exactly as `/log/` serves it.
    pub fn log(&self) -> PathBuf {
        self.root.join("log")
    }

    /// Evidence photos, by content (see `crate::evidence`): beside the log, not in it.
    pub fn evidence(&self) -> PathBuf {
        self.root.join("evidence")
    }

    /// Citizens' report texts, by content (see `crate::report_texts`): beside the log, not in it.
    pub fn report_texts(&self) -> PathBuf {
        self.root.join("reports")
    }

    /// The log's verifier key, for verifiers and witnesses to pin.
    pub fn vkey(&self) -> PathBuf {
        self.root.join("log.vkey")
    }

    fn log_key(&self) -> PathBuf {
        self.root.join("keys/log.key")
    }

    fn operator_key(&self) -> PathBuf {
        self.root.join("keys/operator.key")
    }

    /// Where earlier versions kept the authority's secret key: its presence is refused.
    pub fn authority_secret(&self) -> PathBuf {
        self.root.join("keys/authority.key")
    }

    /// Whether a log was created here (its `checkpoint` is written when it is created).
    pub fn holds_log(&self) -> bool {
        self.log().join(saksi_tlog::CHECKPOINT_PATH).exists()
    }

    pub(crate) fn refuse_existing_log(&self) -> Result<(), EngineError> {
        if self.holds_log() {
            return Err(EngineError::data_dir(&self.root, "already holds a log"));
        }
        Ok(())
    }

    /// Refuses a directory holding the authority's secret key (see the module docs).
    pub(crate) fn refuse_authority_key(&self) -> Result<(), EngineError> {
        let secret = self.authority_secret();
        if secret.exists() {
            return Err(EngineError::data_dir(
                secret,
                "this is the election authority's secret key, and it must not be on the server: \
                 whoever holds it can enrol a corrector and change any TPS result under the \
                 commission's name. Move it to offline storage and sign registry changes there \
                 (saksi enroll --authority-key KEY --out STATEMENT), then log them here \
                 (saksi log-statement --data DIR STATEMENT). Nothing was changed.",
            ));
        }
        Ok(())
    }

    /// Makes the directory's own keys: the log's signing key, the operator's key, and `log.vkey`.
    /// Refuses a directory that has them already (key files are only ever written new).
    pub fn create_keys(&self, origin: &str) -> Result<ServerKeys, EngineError> {
        std::fs::create_dir_all(self.root.join("keys"))
            .map_err(EngineError::io("creating the data directory"))?;
        let log_signer = Signer::generate(origin, TYPE_ED25519)
            .map_err(|e| EngineError::data_dir(self.log_key(), e.to_string()))?;
        let operator = SecretKey::generate();
        write_secret(&self.log_key(), &format!("{}\n", log_signer.encode()))?;
        write_secret(&self.operator_key(), &keyfile::secret_key_text(&operator))?;
        let vkey = log_signer.verifier().encode();
        std::fs::write(self.vkey(), format!("{vkey}\n"))
            .map_err(EngineError::io("writing log.vkey"))?;
        Ok(ServerKeys {
            origin: origin.to_string(),
            log_vkey: vkey,
            operator: operator.public(),
        })
    }

    /// The public keys of a directory made by [`DataDir::create_keys`].
    pub fn server_keys(&self) -> Result<ServerKeys, EngineError> {
        let signer = self.log_signer()?;
        Ok(ServerKeys {
            origin: signer.name.clone(),
            log_vkey: signer.verifier().encode(),
            operator: self.operator()?.public(),
        })
    }

    /// The log's signing key.
    pub(crate) fn log_signer(&self) -> Result<Signer, EngineError> {
        let path = self.log_key();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| EngineError::data_dir(&path, e.to_string()))?;
        Signer::parse(text.trim()).map_err(|e| EngineError::data_dir(&path, e.to_string()))
    }

    /// The operator's key (signs transcriptions and intake settings).
    pub fn operator(&self) -> Result<SecretKey, EngineError> {
        keyfile::read_secret_key(&self.operator_key())
            .map_err(|problem| EngineError::data_dir(self.operator_key(), problem))
    }
}

fn write_secret(path: &Path, text: &str) -> Result<(), EngineError> {
    keyfile::write_new_secret(path, text)
        .map_err(|e| EngineError::data_dir(path, format!("creating the key file: {e}")))
}

/// The public half of a data directory's own keys: what the authority's genesis must name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerKeys {
    pub origin: String,
    pub log_vkey: String,
    pub operator: PublicKey,
}

impl ServerKeys {
    /// As JSON, for the authority to sign a genesis with (`saksi genesis --request`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "origin": self.origin,
            "log_vkey": self.log_vkey,
            "operator": self.operator.to_base64(),
        })
    }

    pub fn from_json(value: &serde_json::Value) -> Result<ServerKeys, EngineError> {
        let problem = |what: String| EngineError::Config(format!("the key request: {what}"));
        let text = |key: &str| {
            value[key]
                .as_str()
                .map(String::from)
                .ok_or_else(|| problem(format!("no {key}")))
        };
        let operator = PublicKey::from_base64(&text("operator")?)
            .map_err(|e| problem(format!("operator key: {e}")))?;
        let log_vkey = text("log_vkey")?;
        Verifier::parse(&log_vkey).map_err(|e| problem(format!("log key: {e}")))?;
        Ok(ServerKeys {
            origin: text("origin")?,
            log_vkey,
            operator,
        })
    }
}
