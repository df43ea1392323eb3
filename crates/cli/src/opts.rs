//! The option parsing of zkCli.sh's commands (Apache commons-cli's `DefaultParser`):
//! single-letter options anywhere on the line, with or without a value, and the same
//! error texts, so that a mistyped command reads as it does in zkCli.sh.

use std::collections::HashMap;

/// One option a command accepts: its letter(s) and whether a value follows.
pub struct OptSpec {
    pub name: &'static str,
    pub takes_value: bool,
    pub description: &'static str,
}

pub const fn flag(name: &'static str, description: &'static str) -> OptSpec {
    OptSpec {
        name,
        takes_value: false,
        description,
    }
}

pub const fn value(name: &'static str, description: &'static str) -> OptSpec {
    OptSpec {
        name,
        takes_value: true,
        description,
    }
}

/// A parsed command line: options and the remaining arguments (command name first).
#[derive(Debug, Default)]
pub struct Parsed {
    opts: HashMap<String, Option<String>>,
    pub args: Vec<String>,
}

impl Parsed {
    pub fn has(&self, name: &str) -> bool {
        self.opts.contains_key(name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts.get(name).and_then(|v| v.as_deref())
    }
}

fn is_negative_number(s: &str) -> bool {
    s.len() > 1 && s.starts_with('-') && s[1..].parse::<f64>().is_ok()
}

/// Parses `args` against `specs`. The error is the text zkCli.sh prints.
pub fn parse(specs: &[OptSpec], args: &[String]) -> Result<Parsed, String> {
    let mut p = Parsed::default();
    let mut it = args.iter().peekable();
    let mut only_args = false;
    while let Some(tok) = it.next() {
        if only_args || tok == "-" || !tok.starts_with('-') || is_negative_number(tok) {
            p.args.push(tok.clone());
            continue;
        }
        if tok == "--" {
            only_args = true;
            continue;
        }
        let name = tok.trim_start_matches('-');
        let (name, inline) = match specs.iter().find(|s| s.name == name) {
            Some(_) => (name.to_string(), None),
            None => {
                // "-v7": a one-letter option with its value attached.
                let mut chars = name.chars();
                let first: String = chars.next().map(String::from).unwrap_or_default();
                match specs.iter().find(|s| s.name == first && s.takes_value) {
                    Some(_) if name.len() > first.len() => {
                        (first.clone(), Some(name[first.len()..].to_string()))
                    }
                    _ => {
                        return Err(format!(
                            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: {tok}"
                        ))
                    }
                }
            }
        };
        let spec = specs.iter().find(|s| s.name == name).expect("found above");
        let v = if spec.takes_value {
            match inline {
                Some(v) => Some(v),
                None => match it.peek() {
                    Some(next)
                        if !next.starts_with('-')
                            || is_negative_number(next)
                            || next.as_str() == "-" =>
                    {
                        it.next().cloned()
                    }
                    Some(next) if !specs.iter().any(|s| s.name == next.trim_start_matches('-')) => {
                        it.next().cloned()
                    }
                    _ => {
                        return Err(format!(
                            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: {name}"
                        ))
                    }
                },
            }
        } else {
            None
        };
        p.opts.insert(name, v);
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn options_mix_with_arguments_as_in_commons_cli() {
        let specs = [flag("s", "stats"), value("v", "version")];
        let p = parse(&specs, &s(&["set", "-s", "/a", "-v", "3", "data"])).unwrap();
        assert!(p.has("s"));
        assert_eq!(p.value("v"), Some("3"));
        assert_eq!(p.args, s(&["set", "/a", "data"]));
        let p = parse(&specs, &s(&["set", "-v7", "/a", "-1"])).unwrap();
        assert_eq!(p.value("v"), Some("7"));
        assert_eq!(p.args, s(&["set", "/a", "-1"]));
    }

    #[test]
    fn unknown_and_valueless_options_read_as_in_zkcli() {
        let specs = [value("v", "version")];
        assert_eq!(
            parse(&specs, &s(&["ls", "-Q", "/"])).unwrap_err(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -Q"
        );
        assert_eq!(
            parse(&specs, &s(&["delete", "-v"])).unwrap_err(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: v"
        );
    }
}
