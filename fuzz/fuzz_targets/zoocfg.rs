//! The zoo.cfg parser on arbitrary text: a `Config` or a `ConfigError`,
//! never a panic.
//!
//! Byte 0 even: the rest is zoo.cfg. Byte 0 odd: the rest is the
//! `dynamicConfigFile` that a fixed zoo.cfg names. A zoo.cfg that names a
//! `dynamicConfigFile` of its own is skipped: the parser would read whatever
//! file it names (`/dev/zero` never ends).
#![no_main]

use ensemble_config::Config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        let text = decode(rest);
        if mentions_dynamic_file(&text) {
            return;
        }
        if let Ok(c) = Config::parse_str(&text, "zoo.cfg") {
            let _ = c.is_quorum();
            let _ = c.client_addr();
            let _ = c.config_version();
        }
    } else {
        let dir = ensemble_fuzz::scratch_dir();
        let dynamic = dir.join("zoo.cfg.dynamic.100000000");
        std::fs::write(&dynamic, rest).expect("write the dynamic config file");
        let text = format!(
            "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort=2181\n\
             dynamicConfigFile={}\n",
            dir.display(),
            dynamic.display()
        );
        if let Ok(c) = Config::parse_str(&text, "zoo.cfg") {
            let _ = c.is_quorum();
            let _ = c.config_version();
        }
    }
});

/// How `Config::from_file` turns the file's bytes into text: UTF-8 without
/// a BOM, else ISO-8859-1.
fn decode(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.strip_prefix('\u{feff}').unwrap_or(text).to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// Whether the text might set `dynamicConfigFile`, once the escapes of
/// `java.util.Properties` (`\uXXXX`, a backslash before any character, a
/// backslash-newline continuation) are undone. Errs on the side of yes.
fn mentions_dynamic_file(text: &str) -> bool {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            plain.push(c);
            continue;
        }
        match chars.next() {
            Some('u') => {
                let hex: String = chars.clone().take(4).collect();
                if let Some(d) = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                    plain.push(d);
                    for _ in 0..4 {
                        chars.next();
                    }
                }
            }
            Some('\r' | '\n') => {
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
            }
            Some(c) => plain.push(c),
            None => {}
        }
    }
    plain.contains("dynamicConfigFile")
}
