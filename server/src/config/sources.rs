//! Where raw flag values come from: the command line (Go flag syntax, parsed with clap), the
//! `ETCD_*` environment, or a `--config-file` YAML document. Each value keeps its origin so
//! errors name it the way etcd does.

use std::collections::BTreeMap;
use std::ffi::OsString;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, Command};

use super::error::ConfigError;
use super::flags::{self, Kind};

/// Where a raw value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Default,
    Flag,
    Env(String),
    File,
}

/// Raw string values by flag name, each with its origin.
#[derive(Debug, Default)]
pub struct RawValues {
    pub values: BTreeMap<&'static str, (String, Origin)>,
}

impl RawValues {
    /// Whether the user set the flag (any origin but the default).
    pub fn is_set(&self, name: &str) -> bool {
        self.values
            .get(name)
            .is_some_and(|(_, o)| *o != Origin::Default)
    }
}

/// What the command line asked for.
pub enum CommandLine {
    Help,
    Version,
    ConfigFile(String),
    Flags(RawValues),
}

fn command() -> Command {
    let mut cmd = Command::new("etcd")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .args_override_self(true)
        .arg(
            Arg::new("help")
                .long("help")
                .short('h')
                .action(ArgAction::SetTrue),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .action(ArgAction::SetTrue),
        )
        .arg(
            Arg::new("config-file")
                .long("config-file")
                .num_args(1)
                .allow_hyphen_values(true),
        )
        .arg(
            Arg::new("positional")
                .num_args(1..)
                .action(ArgAction::Append),
        );
    for f in flags::all() {
        let arg = Arg::new(f.name).long(f.name).allow_hyphen_values(true);
        cmd = cmd.arg(match f.kind {
            Kind::Value => arg.num_args(1),
            Kind::Bool => arg
                .num_args(0..=1)
                .require_equals(true)
                .default_missing_value("true"),
        });
    }
    cmd
}

fn takes_value(arg: &str) -> bool {
    let name = arg.trim_start_matches('-');
    !name.contains('=')
        && (name == "config-file" || flags::find(name).is_some_and(|f| f.kind == Kind::Value))
}

/// Go's flag package accepts `-name` as well as `--name`; clap wants the latter.
fn normalise(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut value_next = false;
    for (i, arg) in args.into_iter().enumerate() {
        let s = arg.to_string_lossy().into_owned();
        if i == 0 || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let is_short = s.starts_with('-') && !s.starts_with("--") && s.len() > 2;
        let long = if is_short { format!("-{s}") } else { s };
        value_next = long.starts_with("--") && takes_value(&long);
        out.push(long.into());
    }
    out
}

fn context(err: &clap::Error) -> String {
    match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s
            .split([' ', '='])
            .next()
            .unwrap_or(s)
            .trim_start_matches('-')
            .to_string(),
        _ => String::new(),
    }
}

fn clap_error(err: clap::Error) -> ConfigError {
    match err.kind() {
        ErrorKind::UnknownArgument => ConfigError::UnknownFlag(context(&err)),
        ErrorKind::InvalidValue | ErrorKind::WrongNumberOfValues => {
            ConfigError::MissingValue(context(&err))
        }
        _ => ConfigError::Usage(
            err.to_string()
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_string(),
        ),
    }
}

/// Parses the command line (program name first).
pub fn command_line(args: impl IntoIterator<Item = OsString>) -> Result<CommandLine, ConfigError> {
    let matches = command()
        .try_get_matches_from(normalise(args))
        .map_err(clap_error)?;
    if let Some(first) = matches
        .get_many::<String>("positional")
        .and_then(|mut p| p.next())
    {
        return Err(ConfigError::NotAFlag(first.clone()));
    }
    if matches.get_flag("help") {
        return Ok(CommandLine::Help);
    }
    if matches.get_flag("version") {
        return Ok(CommandLine::Version);
    }
    if let Some(path) = matches.get_one::<String>("config-file") {
        return Ok(CommandLine::ConfigFile(path.clone()));
    }
    let mut raw = RawValues::default();
    for f in flags::all() {
        if let Some(value) = matches.get_one::<String>(f.name) {
            raw.values.insert(f.name, (value.clone(), Origin::Flag));
        }
    }
    Ok(CommandLine::Flags(raw))
}

/// Fills unset flags from `ETCD_*` variables. Returns warnings for unknown variables and for
/// variables shadowed by a command-line flag (the flag wins).
pub fn apply_env(
    raw: &mut RawValues,
    env: impl IntoIterator<Item = (String, String)>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix("ETCD_") else {
            continue;
        };
        // Variables of this implementation that are not etcd flags.
        if rest == "LOG_FILTER" {
            continue;
        }
        let name = rest.to_lowercase().replace('_', "-");
        match flags::find(&name) {
            None => warnings.push(format!("unrecognized environment variable {var}={value}")),
            Some(_) if raw.is_set(&name) => warnings.push(format!(
                "environment variable {var:?} is shadowed by the corresponding command-line flag; the flag wins"
            )),
            Some(f) => {
                raw.values.insert(f.name, (value, Origin::Env(var)));
            }
        }
    }
    warnings
}

fn yaml_scalar(value: &serde_yaml::Value) -> Option<String> {
    match value {
        serde_yaml::Value::String(s) => Some(s.clone()),
        serde_yaml::Value::Bool(b) => Some(b.to_string()),
        serde_yaml::Value::Number(n) => Some(n.to_string()),
        serde_yaml::Value::Null => Some(String::new()),
        serde_yaml::Value::Sequence(items) => Some(
            items
                .iter()
                .filter_map(yaml_scalar)
                .collect::<Vec<_>>()
                .join(","),
        ),
        _ => None,
    }
}

/// Reads etcd's YAML configuration file. Keys are flag names; the transport security
/// sections nest the TLS keys as etcd's file format does. Returns warnings for unknown keys.
pub fn config_file(path: &str, text: &str) -> Result<(RawValues, Vec<String>), ConfigError> {
    let doc: serde_yaml::Value =
        serde_yaml::from_str(text).map_err(|e| ConfigError::ConfigYaml {
            path: path.to_string(),
            reason: e.to_string(),
        })?;
    let mut raw = RawValues::default();
    let mut warnings = Vec::new();
    let serde_yaml::Value::Mapping(map) = doc else {
        return Ok((raw, warnings));
    };
    for (key, value) in &map {
        let key = key.as_str().unwrap_or_default();
        let (prefix, nested) = match key {
            "client-transport-security" => ("", value.as_mapping()),
            "peer-transport-security" => ("peer-", value.as_mapping()),
            _ => ("", None),
        };
        let entries: Vec<(String, &serde_yaml::Value)> = match nested {
            Some(m) => m
                .iter()
                .map(|(k, v)| (format!("{prefix}{}", k.as_str().unwrap_or_default()), v))
                .collect(),
            None => vec![(key.to_string(), value)],
        };
        for (name, value) in entries {
            match (flags::find(&name), yaml_scalar(value)) {
                (Some(f), Some(s)) => {
                    raw.values.insert(f.name, (s, Origin::File));
                }
                _ => warnings.push(format!(
                    "ignoring unknown configuration file key {name:?} in {path}"
                )),
            }
        }
    }
    Ok((raw, warnings))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<CommandLine, ConfigError> {
        command_line(
            std::iter::once("etcd")
                .chain(args.iter().copied())
                .map(OsString::from),
        )
    }

    fn flags_of(args: &[&str]) -> RawValues {
        match cli(args) {
            Ok(CommandLine::Flags(raw)) => raw,
            _ => panic!("expected flags for {args:?}"),
        }
    }

    #[test]
    fn go_flag_syntax_is_accepted() {
        let raw = flags_of(&[
            "-name",
            "a",
            "--data-dir=/x",
            "-debug",
            "--strict-reconfig-check=false",
            "--name",
            "-b",
        ]);
        assert_eq!(
            raw.values["name"].0, "-b",
            "a later flag wins and values may start with '-'"
        );
        assert_eq!(raw.values["data-dir"].0, "/x");
        assert_eq!(raw.values["debug"].0, "true");
        assert_eq!(raw.values["strict-reconfig-check"].0, "false");
    }

    #[test]
    fn command_line_errors_match_etcd() {
        let msg = |args: &[&str]| cli(args).err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg(&["--foo"]), "flag provided but not defined: -foo");
        assert_eq!(msg(&["-foo=1"]), "flag provided but not defined: -foo");
        assert_eq!(msg(&["--name"]), "flag needs an argument: -name");
        assert_eq!(msg(&["extra"]), "'extra' is not a valid flag");
        assert_eq!(msg(&["--debug", "false"]), "'false' is not a valid flag");
    }

    #[test]
    fn env_fills_unset_flags_and_flags_win() {
        let mut raw = flags_of(&["--name", "flag"]);
        let env = [
            ("ETCD_NAME", "env"),
            ("ETCD_SNAPSHOT_COUNT", "7"),
            ("ETCD_BOGUS", "1"),
            ("HOME", "/"),
        ];
        let warnings = apply_env(
            &mut raw,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        );
        assert_eq!(raw.values["name"].0, "flag");
        assert_eq!(
            raw.values["snapshot-count"],
            ("7".to_string(), Origin::Env("ETCD_SNAPSHOT_COUNT".into()))
        );
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[1].contains("unrecognized environment variable ETCD_BOGUS=1"));
    }

    #[test]
    fn yaml_file_uses_flag_names_and_nested_tls() {
        let text = "name: etcd-1\nheartbeat-interval: 200\nlisten-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379\n\
                    client-transport-security:\n  cert-file: /c.pem\npeer-transport-security:\n  client-cert-auth: true\nbogus: 1\n";
        let (raw, warnings) = config_file("c.yml", text).unwrap();
        assert_eq!(raw.values["name"].0, "etcd-1");
        assert_eq!(raw.values["heartbeat-interval"].0, "200");
        assert_eq!(raw.values["cert-file"].0, "/c.pem");
        assert_eq!(raw.values["peer-client-cert-auth"].0, "true");
        assert_eq!(warnings.len(), 1);
        assert!(config_file("c.yml", "name: [").is_err());
    }
}
