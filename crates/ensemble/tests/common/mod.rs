//! What the integration tests share: a real `ensemble` server on a free port.

use std::io::Write;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct ServerProc {
    child: Child,
    pub port: u16,
    dir: std::path::PathBuf,
}

impl ServerProc {
    #[allow(dead_code)]
    pub fn start() -> ServerProc {
        ServerProc::start_with("")
    }

    /// A server whose zoo.cfg has `extra` (lines ending in newlines) added.
    pub fn start_with(extra: &str) -> ServerProc {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let dir = std::env::temp_dir().join(format!("ensemble-zkc-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cfg = dir.join("zoo.cfg");
        let mut f = std::fs::File::create(&cfg).expect("config file");
        writeln!(
            f,
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n{extra}",
            dir.join("data").display()
        )
        .expect("write config");
        let child = Command::new(env!("CARGO_BIN_EXE_ensemble"))
            .args(["server", "--config"])
            .arg(&cfg)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start ensemble");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not open its port");
            std::thread::sleep(Duration::from_millis(50));
        }
        ServerProc { child, port, dir }
    }

    /// The server's dataDir.
    #[allow(dead_code)]
    pub fn data_dir(&self) -> std::path::PathBuf {
        self.dir.join("data")
    }

    pub fn cluster(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Runs `ensemble bench --json --quiet` against `server` with `args` and
/// returns its JSON summary; a failed run, or a log line on stderr despite
/// `--quiet`, fails the test.
#[allow(dead_code)]
pub fn bench_json(server: &ServerProc, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_ensemble"))
        .args(["bench", "--hosts", &server.cluster(), "--json", "--quiet"])
        .args(args)
        .output()
        .expect("run ensemble bench");
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // --quiet: the result alone, none of the client library's info lines.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(" INFO "),
        "bench {args:?} --quiet: {stderr}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let last = text.lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("bench {args:?}: {e}: {text}"))
}

impl Drop for ServerProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
