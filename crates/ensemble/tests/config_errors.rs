//! The binary's handling of zoo.cfg: a bad value is one line naming file, line
//! and key with exit code 2; keys accepted but unused are warned about once.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_cfg(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ensemble-cfg-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("zoo.cfg");
    let mut f = std::fs::File::create(&path).expect("create");
    f.write_all(text.as_bytes()).expect("write");
    path
}

#[test]
fn bad_value_is_one_line_naming_file_line_and_key_and_exit_code_2() {
    let cfg = write_cfg("bad", "dataDir=/tmp/x\nclientPort=2181\ntickTime=abc\n");
    let out = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .args(["server", "--config"])
        .arg(&cfg)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("zoo.cfg:3"), "{err}");
    assert!(lines[0].contains("tickTime"), "{err}");
}

#[test]
fn missing_config_file_is_one_line_and_exit_code_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .args(["server", "--config", "/nonexistent/zoo.cfg"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("/nonexistent/zoo.cfg"), "{err}");
}

#[test]
fn accepted_but_unused_keys_are_warned_once_and_the_server_runs() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let dir = std::env::temp_dir().join(format!("ensemble-cfg-{}-warn", std::process::id()));
    let cfg = write_cfg(
        "warn",
        &format!(
            "dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\nsyncEnabled=true\n",
            dir.join("data").display()
        ),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .args(["server", "--config"])
        .arg(&cfg)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("output");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("syncEnabled").count(), 1, "{text}");
}
