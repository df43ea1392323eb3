//! Where the binary's log goes: stderr by default, or a file rotated daily under
//! `--log-dir` / `ZOO_LOG_DIR`, named as zkServer.sh names ZooKeeper's
//! (`ZOO_LOG_FILE`, `zookeeper-<user>-server-<host>.log` when the script sets it).
//! The level comes from `--log-level`, else `ENSEMBLE_LOG`, else `RUST_LOG`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;

/// The level when nothing names one: openraft's own info lines are noise to an operator.
const DEFAULT_FILTER: &str = "info,openraft=warn";

/// Dated files kept besides the current one (ZooKeeper's logback keeps ten too).
const KEPT_FILES: usize = 10;

/// The file name when `ZOO_LOG_FILE` is unset.
const DEFAULT_FILE: &str = "ensemble.log";

/// Where and how much to log.
pub struct LogOptions {
    pub dir: Option<PathBuf>,
    pub level: Option<String>,
}

impl LogOptions {
    /// `--log-dir`, else `ZOO_LOG_DIR`; `--log-level`, else the environment.
    pub fn resolve(dir: Option<PathBuf>, level: Option<String>) -> LogOptions {
        let dir = dir.or_else(|| {
            std::env::var_os("ZOO_LOG_DIR")
                .filter(|d| !d.is_empty())
                .map(PathBuf::from)
        });
        LogOptions { dir, level }
    }
}

/// The filter: an explicit level, else `ENSEMBLE_LOG`, else `RUST_LOG`, else the default.
pub fn filter(level: Option<&str>) -> Result<EnvFilter, String> {
    if let Some(l) = level {
        return EnvFilter::try_new(l).map_err(|e| format!("bad --log-level {l:?}: {e}"));
    }
    for var in ["ENSEMBLE_LOG", "RUST_LOG"] {
        if let Ok(v) = std::env::var(var) {
            if !v.trim().is_empty() {
                return EnvFilter::try_new(&v).map_err(|e| format!("bad {var}={v:?}: {e}"));
            }
        }
    }
    Ok(EnvFilter::new(DEFAULT_FILTER))
}

/// The appender for `dir`: `<name>.YYYY-MM-DD` files, a new one each day, with `<name>`
/// a link to the current one.
fn file_appender(dir: &Path) -> Result<RollingFileAppender, String> {
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create log directory {}: {e}", dir.display()))?;
    let name = std::env::var("ZOO_LOG_FILE")
        .ok()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| DEFAULT_FILE.to_string());
    RollingFileAppender::builder()
        .rotation(Rotation::DAILY)
        .filename_prefix(name.clone())
        .latest_symlink(name)
        .max_log_files(KEPT_FILES)
        .build(dir)
        .map_err(|e| format!("cannot open a log file in {}: {e}", dir.display()))
}

/// Installs the subscriber. Keep the guard until exit: dropping it flushes the file.
pub fn init(opts: &LogOptions) -> Result<Option<WorkerGuard>, String> {
    let filter = filter(opts.level.as_deref())?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    match &opts.dir {
        Some(dir) => {
            let (writer, guard) = tracing_appender::non_blocking(file_appender(dir)?);
            builder.with_writer(writer).with_ansi(false).init();
            Ok(Some(guard))
        }
        None => {
            builder
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal())
                .init();
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_level_wins_and_a_bad_one_is_an_error() {
        assert!(filter(Some("debug")).is_ok());
        assert!(filter(Some("info,openraft=warn")).is_ok());
        assert!(filter(Some("no=such=level")).is_err());
    }

    #[test]
    fn the_file_appender_creates_its_directory_and_a_link_to_the_current_file() {
        let dir = std::env::temp_dir().join(format!("ensemble-logtest-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut appender = file_appender(&dir.join("logs")).expect("appender");
        use std::io::Write;
        appender.write_all(b"hello\n").expect("write");
        appender.flush().expect("flush");
        let link = dir.join("logs").join(DEFAULT_FILE);
        assert_eq!(std::fs::read_to_string(&link).expect("read"), "hello\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
