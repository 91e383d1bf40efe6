//! `saksi serve --config FILE`: a TOML file of settings, one per flag of `serve`, named as the flag
//! (`rate-limit = 0`). Each becomes the environment variable clap already reads for that flag
//! (`SAKSI_RATE_LIMIT`) unless the environment sets it, so the order of precedence is clap's own:
//! the command line, then the environment, then the file, then the default. One parser, one set
//! of checks for all three.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

/// A configuration file larger than this is refused: a few dozen settings take a few KiB.
const MAX_CONFIG_BYTES: u64 = 64 * 1024;

/// The environment variable a setting of `serve` is read from: `rate-limit` -> `SAKSI_RATE_LIMIT`.
fn env_name(setting: &str) -> String {
    format!("SAKSI_{}", setting.to_uppercase().replace('-', "_"))
}

/// If `args` run `serve` with a configuration file (`--config FILE`, `--config=FILE`, or
/// `SAKSI_CONFIG`), sets the environment from it. Must run before any other thread starts.
pub(crate) fn apply(args: Vec<OsString>) -> Result<()> {
    if args.get(1).and_then(|a| a.to_str()) != Some("serve") {
        return Ok(());
    }
    let mut file: Option<PathBuf> = std::env::var_os("SAKSI_CONFIG").map(PathBuf::from);
    let mut rest = args.iter().skip(2);
    while let Some(arg) = rest.next() {
        let Some(arg) = arg.to_str() else { continue };
        if arg == "--config" {
            file = rest.next().map(PathBuf::from);
        } else if let Some(value) = arg.strip_prefix("--config=") {
            file = Some(PathBuf::from(value));
        }
    }
    let Some(file) = file else { return Ok(()) };
    for (name, value) in settings(&file)? {
        if std::env::var_os(&name).is_none() {
            std::env::set_var(&name, value);
        }
    }
    Ok(())
}

/// The file's settings as (environment variable, value), each checked against `serve`'s flags.
fn settings(file: &std::path::Path) -> Result<Vec<(String, String)>> {
    let size = std::fs::metadata(file)
        .with_context(|| format!("reading the configuration file {}", file.display()))?
        .len();
    if size > MAX_CONFIG_BYTES {
        bail!(
            "the configuration file {} has {size} bytes; at most {MAX_CONFIG_BYTES}",
            file.display()
        );
    }
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("reading the configuration file {}", file.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("{} is not TOML", file.display()))?;
    let command = crate::cli::Cli::command();
    let serve = command
        .find_subcommand("serve")
        .expect("serve is a subcommand");
    let known: Vec<&str> = serve
        .get_arguments()
        .filter_map(|arg| arg.get_long())
        .filter(|long| *long != "config" && *long != "help")
        .collect();
    let mut out = Vec::new();
    for (key, value) in table {
        if !known.contains(&key.as_str()) {
            bail!(
                "{}: unknown setting {key:?} (the settings are serve's flags: {})",
                file.display(),
                known.join(", ")
            );
        }
        let text = match value {
            toml::Value::String(s) => s,
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            toml::Value::Array(items) => items
                .iter()
                .map(|item| match item {
                    toml::Value::String(s) => Ok(s.clone()),
                    toml::Value::Integer(n) => Ok(n.to_string()),
                    _ => bail!("{}: {key} takes strings or numbers", file.display()),
                })
                .collect::<Result<Vec<_>>>()?
                .join(","),
            _ => bail!(
                "{}: {key} takes a string, a number, true/false, or a list",
                file.display()
            ),
        };
        out.push((env_name(&key), text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(text: &str) -> (PathBuf, impl Drop) {
        struct Gone(PathBuf);
        impl Drop for Gone {
            fn drop(&mut self) {
                let _ = std::fs::remove_file(&self.0);
            }
        }
        let path = std::env::temp_dir().join(format!(
            "saksi-config-{}-{}.toml",
            std::process::id(),
            text.len()
        ));
        std::fs::write(&path, text).unwrap();
        (path.clone(), Gone(path))
    }

    #[test]
    fn settings_become_the_flags_environment_variables() {
        let (path, _gone) = write(
            "data = \"/srv/saksi\"\nrate-limit = 0\nread-only = false\ntrusted-proxy = [\"10.0.0.1\", \"10.0.0.2\"]\n",
        );
        let mut got = settings(&path).unwrap();
        got.sort();
        assert_eq!(
            got,
            [
                ("SAKSI_DATA".into(), "/srv/saksi".into()),
                ("SAKSI_RATE_LIMIT".into(), "0".into()),
                ("SAKSI_READ_ONLY".into(), "false".into()),
                ("SAKSI_TRUSTED_PROXY".into(), "10.0.0.1,10.0.0.2".into()),
            ]
        );
    }

    #[test]
    fn an_unknown_setting_or_a_table_is_refused_with_its_name() {
        let (path, _gone) = write("rate_limit = 0\n");
        let error = format!("{:#}", settings(&path).unwrap_err());
        assert!(error.contains("unknown setting \"rate_limit\""), "{error}");
        let (path, _gone) = write("[addr]\nhost = 1\n");
        assert!(settings(&path).is_err());
        let (path, _gone) = write("not toml at all = = =");
        assert!(format!("{:#}", settings(&path).unwrap_err()).contains("is not TOML"));
    }

    #[test]
    fn the_example_configuration_is_valid() {
        let example = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/saksi.toml"));
        let got = settings(&example).unwrap();
        assert!(got.contains(&("SAKSI_LOG_FORMAT".into(), "json".into())));
    }

    #[test]
    fn every_serve_flag_reads_the_environment_variable_named_after_it() {
        let command = crate::cli::Cli::command();
        let serve = command.find_subcommand("serve").unwrap();
        for arg in serve.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            if long == "help" {
                continue;
            }
            assert_eq!(
                arg.get_env().and_then(|e| e.to_str()),
                Some(env_name(long).as_str()),
                "--{long}"
            );
        }
    }
}
