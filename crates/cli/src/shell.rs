//! The shell around the commands (`ZooKeeperMain`): its own options, the connection,
//! the line loop with history, `redo`, `printwatches`, `connect` and `quit`, the
//! watcher that prints events, and zkCli.sh's exit codes.

use crate::client::{Client, WatchedEvent};
use crate::commands::{self, CliError};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc;

/// zkCli.sh's options (`MyCommandOptions`).
pub struct Options {
    pub server: String,
    pub timeout: i32,
    pub read_only: bool,
    /// A command to run instead of reading lines.
    pub command: Option<Vec<String>>,
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Options, String> {
        let mut o = Options {
            server: "localhost:2181".into(),
            timeout: 30000,
            read_only: false,
            command: None,
        };
        let mut it = args.iter();
        while let Some(opt) = it.next() {
            let mut value = |name: &str| {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("Error: no argument found for option {name}"))
            };
            match opt.as_str() {
                "-server" => o.server = value("-server")?,
                "-timeout" => {
                    let v = value("-timeout")?;
                    o.timeout = v
                        .parse()
                        .map_err(|_| format!("Error: -timeout needs milliseconds, got {v}"))?;
                }
                "-r" => o.read_only = true,
                // Accepted for zkCli.sh's sake; TLS settings are not supported here.
                "-client-configuration" => {
                    value("-client-configuration")?;
                }
                "-waitforconnection" => {}
                s if !s.starts_with('-') => {
                    let mut cmd = vec![opt.clone()];
                    cmd.extend(it.cloned());
                    o.command = Some(cmd);
                    break;
                }
                _ => {}
            }
        }
        Ok(o)
    }
}

/// The state of one shell.
pub struct Shell {
    pub rt: tokio::runtime::Runtime,
    pub client: Client,
    pub host: String,
    timeout: i32,
    read_only: bool,
    print_watches: Arc<AtomicBool>,
    events: mpsc::UnboundedSender<WatchedEvent>,
    history: BTreeMap<i64, String>,
    command_count: i64,
    exit_code: i32,
}

/// What the loop does after a line.
enum Next {
    Go,
    Quit,
}

/// Prints each event the watcher is given, as `ZooKeeperMain.MyWatcher`.
async fn print_events(mut rx: mpsc::UnboundedReceiver<WatchedEvent>, on: Arc<AtomicBool>) {
    while let Some(e) = rx.recv().await {
        if on.load(Ordering::Relaxed) {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\nWATCHER::\n\n{e}\n");
            let _ = out.flush();
        }
    }
}

pub fn run(opts: Options) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return 1;
        }
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let print_watches = Arc::new(AtomicBool::new(true));
    rt.spawn(print_events(rx, print_watches.clone()));
    println!("Connecting to {}", opts.server);
    let client = {
        let _guard = rt.enter();
        Client::connect(&opts.server, opts.timeout, opts.read_only, tx.clone())
    };
    let mut shell = Shell {
        rt,
        client,
        host: opts.server.clone(),
        timeout: opts.timeout,
        read_only: opts.read_only,
        print_watches,
        events: tx,
        history: BTreeMap::new(),
        command_count: 0,
        exit_code: 0,
    };
    let code = match opts.command {
        Some(cmd) => {
            if let Next::Quit = shell.process(cmd) {
                return shell.finish();
            }
            shell.exit_code
        }
        None => {
            println!("Welcome to ZooKeeper!");
            if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
                println!("JLine support is enabled");
                crate::commands::interactive(&mut shell);
            } else {
                println!("JLine support is disabled");
                let stdin = std::io::stdin();
                for line in stdin.lock().lines() {
                    let Ok(line) = line else { break };
                    if let Next::Quit = shell.execute_line(&line) {
                        return shell.finish();
                    }
                }
            }
            shell.exit_code
        }
    };
    let _ = std::io::stdout().flush();
    // As zkCli.sh at the end of its input: the process ends, the session is left to
    // expire on the server.
    code
}

impl Shell {
    /// The prompt, `[zk: host(STATE) N] `.
    pub fn prompt(&self) -> String {
        format!(
            "[zk: {}({}) {}] ",
            self.host,
            self.client.state().name(),
            self.command_count
        )
    }

    /// One line typed or read: recorded in the history, then run.
    fn execute_line(&mut self, line: &str) -> Next {
        if line.is_empty() {
            return Next::Go;
        }
        let args = split_line(line);
        self.history.insert(self.command_count, line.to_string());
        let next = if args.is_empty() {
            Next::Go
        } else {
            self.process(args)
        };
        self.command_count += 1;
        next
    }

    /// `processCmd`: runs one command and keeps its exit code.
    fn process(&mut self, args: Vec<String>) -> Next {
        match self.process_zk(args) {
            Ok(Next::Quit) => Next::Quit,
            Ok(Next::Go) => {
                self.exit_code = 0;
                Next::Go
            }
            Err(e) => {
                self.exit_code = e.code;
                eprintln!("{}", e.message);
                Next::Go
            }
        }
    }

    fn process_zk(&mut self, args: Vec<String>) -> Result<Next, CliError> {
        let cmd = args[0].clone();
        if !commands::is_command(&cmd) {
            commands::usage();
            return Err(CliError {
                message: format!("Command not found: Command not found {cmd}"),
                code: 127,
            });
        }
        match cmd.as_str() {
            "quit" => return Ok(Next::Quit),
            "redo" if args.len() >= 2 => {
                let i = parse_java_int(&args[1]).ok_or_else(|| {
                    CliError::new(format!(
                        "java.lang.NumberFormatException: For input string: \"{}\"",
                        args[1]
                    ))
                })?;
                if self.command_count <= i || i < 0 {
                    return Err(CliError::new("Command index out of range".into()));
                }
                let line = self.history.get(&i).cloned().unwrap_or_default();
                let again = split_line(&line);
                if again.first().map(String::as_str) == Some("redo") {
                    return Err(CliError::new("No redoing redos".into()));
                }
                self.history.insert(self.command_count, line);
                if !again.is_empty() {
                    if let Next::Quit = self.process(again) {
                        return Ok(Next::Quit);
                    }
                }
            }
            "history" => {
                for i in (self.command_count - 10).max(0)..=self.command_count {
                    match self.history.get(&i) {
                        Some(l) => println!("{i} - {l}"),
                        None => println!("{i} - null"),
                    }
                }
            }
            "printwatches" => {
                if args.len() == 1 {
                    let on = self.print_watches.load(Ordering::Relaxed);
                    println!("printwatches is {}", if on { "on" } else { "off" });
                } else {
                    self.print_watches.store(args[1] == "on", Ordering::Relaxed);
                }
            }
            "connect" => {
                let host = args.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.reconnect(&host);
            }
            _ => {}
        }
        if !self.client.state().is_alive() {
            println!("Not connected");
            return Ok(Next::Go);
        }
        commands::run(self, &args)?;
        Ok(Next::Go)
    }

    /// `connect host:port`: closes the session, if any, and opens a new one.
    fn reconnect(&mut self, host: &str) {
        let old = self.client.clone();
        if old.state().is_alive() {
            self.rt.block_on(old.close());
        }
        self.host = host.to_string();
        let _guard = self.rt.enter();
        self.client = Client::connect(host, self.timeout, self.read_only, self.events.clone());
    }

    /// `quit`: closes the session and ends with the exit code of the command before.
    fn finish(&mut self) -> i32 {
        let client = self.client.clone();
        self.rt.block_on(async move {
            client.close().await;
            // Let the watcher print Closed.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        });
        let _ = std::io::stdout().flush();
        self.exit_code
    }

    /// Runs one typed line (the interactive loop's entry).
    pub fn typed(&mut self, line: &str) -> bool {
        matches!(self.execute_line(line), Next::Quit)
    }

    pub fn quit(&mut self) -> i32 {
        self.finish()
    }
}

/// `Integer.decode`: decimal, `0x`/`#` hex or leading-zero octal.
fn parse_java_int(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = s
        .strip_prefix("0x")
        .or(s.strip_prefix("0X"))
        .or(s.strip_prefix('#'))
    {
        i64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        i64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// `MyCommandOptions.parseCommand`: words, or quoted strings with the quotes removed.
pub fn split_line(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let c = chars[i];
        if c == '"' || c == '\'' {
            if let Some(end) = chars[i + 1..].iter().position(|&x| x == c) {
                out.push(chars[i + 1..i + 1 + end].iter().collect());
                i += end + 2;
                continue;
            }
            // An unclosed quote: the regex skips the quote character.
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() {
            i += 1;
        }
        out.push(chars[start..i].iter().collect());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_into_words_and_quoted_strings() {
        assert_eq!(
            split_line("  create /a \"hello world\" 'x y'  "),
            vec!["create", "/a", "hello world", "x y"]
        );
        assert_eq!(split_line("set /a ab\"c"), vec!["set", "/a", "ab\"c"]);
        assert!(split_line("   ").is_empty());
    }

    #[test]
    fn the_shell_options_are_zkclis() {
        let args: Vec<String> = ["-server", "h:1", "-timeout", "5000", "-r", "ls", "-s", "/"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let o = Options::parse(&args).unwrap();
        assert_eq!(o.server, "h:1");
        assert_eq!(o.timeout, 5000);
        assert!(o.read_only);
        assert_eq!(o.command.unwrap(), vec!["ls", "-s", "/"]);
        assert!(Options::parse(&["-server".to_string()]).is_err());
    }

    #[test]
    fn redo_numbers_are_read_as_integer_decode() {
        assert_eq!(parse_java_int("12"), Some(12));
        assert_eq!(parse_java_int("0x10"), Some(16));
        assert_eq!(parse_java_int("010"), Some(8));
        assert_eq!(parse_java_int("x"), None);
    }
}
