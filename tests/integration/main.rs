//! The one integration-test binary: drives the real `saksi` binary (arguments in; files, exit codes,
//! HTTP out). Modules by area; shared helpers in `util`.

mod bad_input;
mod browser;
mod cli;
mod client;
mod copies;
mod data_safety;
mod evidence;
mod forensics;
mod hostile;
mod operations;
mod postgres;
mod recap;
mod relay;
mod replica;
mod reports;
mod resilience;
mod server;
mod site;
mod util;
mod verify;
