//! saksi's election model: region codes and the registry, contests, form C.Hasil and its signed
//! envelope, and the rulebook every form is checked against. Knows nothing of logs, storage or HTTP.

pub mod canonical;
pub mod checker;
pub mod code;
pub mod contest;
pub mod copy;
mod csv;
pub mod form;
pub mod parallel;
pub mod recap;
pub mod registry;
pub mod report;
pub mod rules;
pub mod sheet;
pub mod sign;
pub mod sirekap;

pub use code::{Code, Level};
pub use contest::Election;
pub use form::{CHasil, SignedForm};
pub use registry::{Registry, Tps, TpsKind};
pub use rules::{Finding, Verdict};
