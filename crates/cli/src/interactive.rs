//! The shell at a terminal: rustyline for line editing and history (arrow keys,
//! Ctrl-R), and tab completion of command names and znode paths, as zkCli.sh's
//! JLine completer does.

use crate::client::Client;
use crate::shell::Shell;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};
use std::sync::Arc;
use std::time::Duration;

/// Completes the first word as a command and any word starting with `/` as a znode.
struct ZkHelper {
    client: Arc<parking_lot::Mutex<Client>>,
    rt: tokio::runtime::Handle,
}

impl Completer for ZkHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        let start = before
            .rfind(char::is_whitespace)
            .map(|i| i + 1)
            .unwrap_or(0);
        let word = &before[start..];
        let pair = |s: String| Pair {
            display: s.clone(),
            replacement: s,
        };
        if let Some(rest) = word.strip_prefix('/') {
            let (dir, prefix) = match word.rfind('/') {
                Some(0) | None => ("/", rest),
                Some(i) => (&word[..i], &word[i + 1..]),
            };
            let client = self.client.lock().clone();
            let children = self.rt.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(2),
                    crate::commands::get_children(&client, dir, false),
                )
                .await
            });
            let mut names: Vec<String> = match children {
                Ok(Ok(ch)) => ch.into_iter().filter(|c| c.starts_with(prefix)).collect(),
                _ => Vec::new(),
            };
            names.sort();
            let base = if dir == "/" {
                String::new()
            } else {
                dir.to_string()
            };
            let out = names
                .into_iter()
                .map(|n| pair(format!("{base}/{n}")))
                .collect();
            return Ok((start, out));
        }
        if start == 0 {
            let out = crate::commands::command_names()
                .filter(|c| c.starts_with(word))
                .map(|c| pair(format!("{c} ")))
                .collect();
            return Ok((start, out));
        }
        Ok((start, Vec::new()))
    }
}

impl Hinter for ZkHelper {
    type Hint = String;
}
impl Highlighter for ZkHelper {}
impl Validator for ZkHelper {}
impl Helper for ZkHelper {}

/// Reads lines at the terminal until `quit` or end of input.
pub fn interactive(shell: &mut Shell) {
    let client = Arc::new(parking_lot::Mutex::new(shell.client.clone()));
    let mut editor: Editor<ZkHelper, rustyline::history::DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot open the terminal: {e}");
            return;
        }
    };
    editor.set_helper(Some(ZkHelper {
        client: client.clone(),
        rt: shell.rt.handle().clone(),
    }));
    loop {
        *client.lock() = shell.client.clone();
        match editor.readline(&shell.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if shell.typed(&line) {
                    let code = shell.quit();
                    std::process::exit(code);
                }
            }
            // Ctrl-C drops the line being typed, as JLine does.
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
}
