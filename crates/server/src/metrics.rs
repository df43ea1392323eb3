//! `/metrics` in Prometheus' text format, served on
//! `metricsProvider.httpHost:metricsProvider.httpPort` (default 0.0.0.0:7000)
//! when zoo.cfg names ZooKeeper's `PrometheusMetricsProvider`.
//!
//! The values are `mntr`'s (`mntr::report`), so both always agree, written
//! the way ZooKeeper's provider (Prometheus simpleclient 0.9) writes them:
//! each gauge and counter under its ZooKeeper name, a metric set with a
//! `key` label, each summary as `name{quantile=...}`, `name_count` and
//! `name_sum` (quantiles 0.5, 0.9 and 0.99 for ZooKeeper's advanced
//! summaries, 0.5 for its basic ones, NaN while empty). As simpleclient's,
//! quantiles cover the last ten minutes or so (the histograms are compared
//! with a copy taken at least two minutes and at most ten minutes earlier),
//! counts and sums the whole run. `exportJvmInfo=true` adds the `process_*`
//! metrics of the Ensemble process; there is no JVM to add `jvm_*` for.
//!
//! The text is rendered here rather than through a metrics registry crate:
//! the values already live in `ServerStats`, a registry would hold a second
//! copy, and ZooKeeper's names, types and quantiles are easier to keep
//! exact in forty lines of formatting.

use crate::mntr::{self, Detail, Kind, Metric};
use crate::stats::{java_double, HistogramSnapshot};
use crate::{ServerError, Shared};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use ensemble_config::{Config, MetricsProvider};
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tracing::{info, warn};

/// How far back the quantiles look, and how often a copy is kept.
const WINDOW: Duration = Duration::from_secs(600);
const AGE_STEP: Duration = Duration::from_secs(120);

/// Earlier copies of the histograms, by summary (name and key).
type Histograms = HashMap<(String, Option<String>), HistogramSnapshot>;

#[derive(Default)]
struct Window {
    copies: VecDeque<(Instant, Histograms)>,
}

impl Window {
    /// The copy to compare with now (the oldest within the window), after
    /// keeping `now` when the newest copy is older than a step.
    fn baseline(&mut self, now: Instant, current: &Histograms) -> Option<&Histograms> {
        while self
            .copies
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > WINDOW)
        {
            self.copies.pop_front();
        }
        if self
            .copies
            .back()
            .is_none_or(|(t, _)| now.duration_since(*t) >= AGE_STEP)
        {
            self.copies.push_back((now, current.clone()));
        }
        self.copies
            .front()
            .filter(|(t, _)| *t != now)
            .map(|(_, h)| h)
    }
}

struct MetricsState {
    shared: Arc<Shared>,
    process_info: bool,
    window: Mutex<Window>,
}

/// Binds the `/metrics` port when the Prometheus provider is configured.
/// As in ZooKeeper, a port that cannot be bound stops the server.
pub async fn bind(config: &Config) -> Result<Option<(TcpListener, bool)>, ServerError> {
    let MetricsProvider::Prometheus {
        http_host,
        http_port,
        export_process_info,
    } = &config.metrics_provider
    else {
        return Ok(None);
    };
    let addr = format!("{}:{http_port}", crate::admin::bracket(http_host));
    match TcpListener::bind(&addr).await {
        Ok(l) => Ok(Some((l, *export_process_info))),
        Err(source) => Err(ServerError::Http {
            what: "the Prometheus /metrics endpoint",
            addr,
            source,
        }),
    }
}

/// Serves `/metrics` on `listener` until the runtime stops.
pub async fn serve(shared: Arc<Shared>, listener: TcpListener, process_info: bool) {
    if let Ok(addr) = listener.local_addr() {
        info!("Prometheus metrics on http://{addr}/metrics");
    }
    let state = Arc::new(MetricsState {
        shared,
        process_info,
        window: Mutex::new(Window::default()),
    });
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(state);
    if let Err(e) = axum::serve(listener, router).await {
        warn!("Prometheus metrics endpoint stopped: {e}");
    }
}

async fn scrape(State(state): State<Arc<MetricsState>>) -> impl IntoResponse {
    let text = tokio::task::spawn_blocking(move || render(&state))
        .await
        .unwrap_or_default();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
}

fn render(state: &MetricsState) -> String {
    let shared = &state.shared;
    let metrics = match shared.mode() {
        Some(mode) => mntr::report(shared, mode).metrics,
        // ZooKeeper unregisters its server's metrics while it does not serve.
        None => Vec::new(),
    };
    let current: Histograms = metrics
        .iter()
        .filter_map(|m| match &m.kind {
            Kind::Summary {
                histogram: Some(h), ..
            } => Some(((m.name.clone(), m.key.clone()), h.clone())),
            _ => None,
        })
        .collect();
    let baseline = state
        .window
        .lock()
        .baseline(Instant::now(), &current)
        .cloned();
    let mut out = exposition(&metrics, baseline.as_ref());
    if state.process_info {
        process_metrics(shared, &mut out);
    }
    out
}

/// The text of `metrics`: one family per name, in order of first
/// appearance, its samples together.
fn exposition(metrics: &[Metric], baseline: Option<&Histograms>) -> String {
    let mut families: Vec<(&str, Vec<&Metric>)> = Vec::new();
    for m in metrics {
        match families.iter_mut().find(|(n, _)| *n == m.name) {
            Some((_, members)) => members.push(m),
            None => families.push((&m.name, vec![m])),
        }
    }
    let mut out = String::new();
    for (name, members) in families {
        let kind = match members[0].kind {
            Kind::Gauge(_) => "gauge",
            Kind::Counter(_) => "counter",
            Kind::Summary { .. } => "summary",
        };
        let _ = writeln!(out, "# HELP {name} {name}\n# TYPE {name} {kind}");
        for m in members {
            let key = m.key.as_deref();
            match &m.kind {
                Kind::Gauge(v) => sample(&mut out, name, key, None, v.as_f64()),
                Kind::Counter(v) => sample(&mut out, name, key, None, *v as f64),
                Kind::Summary { detail, histogram } => {
                    let window = histogram.as_ref().map(|h| {
                        baseline
                            .and_then(|b| b.get(&(m.name.clone(), m.key.clone())))
                            .map_or_else(|| h.clone(), |earlier| h.since(earlier))
                    });
                    let quantiles: &[(&str, f64)] = match detail {
                        Detail::Advanced => &[("0.5", 0.5), ("0.9", 0.9), ("0.99", 0.99)],
                        Detail::Basic => &[("0.5", 0.5)],
                    };
                    for (label, q) in quantiles {
                        let v = window
                            .as_ref()
                            .and_then(|w| w.quantile(*q))
                            .map_or(f64::NAN, |v| v as f64);
                        sample(&mut out, name, key, Some(label), v);
                    }
                    let values = histogram.as_ref().map(|h| h.values);
                    let (count, sum) = values.map_or((0, 0), |v| (v.count, v.total));
                    sample(&mut out, &format!("{name}_count"), key, None, count as f64);
                    sample(&mut out, &format!("{name}_sum"), key, None, sum as f64);
                }
            }
        }
    }
    out
}

/// One sample line, labels written as simpleclient writes them
/// (`name{key="a",quantile="0.5",} 1.0`).
fn sample(out: &mut String, name: &str, key: Option<&str>, quantile: Option<&str>, v: f64) {
    out.push_str(name);
    if key.is_some() || quantile.is_some() {
        out.push('{');
        if let Some(k) = key {
            let _ = write!(out, "key=\"{}\",", escape_label(k));
        }
        if let Some(q) = quantile {
            let _ = write!(out, "quantile=\"{q}\",");
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&go_double(v));
    out.push('\n');
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// simpleclient's `doubleToGoString`: Java's `Double.toString`, with
/// `+Inf`, `-Inf` and `NaN` spelled as Prometheus spells them.
fn go_double(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        java_double(v)
    }
}

/// simpleclient's `StandardExports` for this process, from /proc.
fn process_metrics(shared: &Shared, out: &mut String) {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name, which may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
    // utime and stime are fields 14 and 15 of the line: 11 and 12 here.
    let cpu = ticks(11).zip(ticks(12)).map(|(u, s)| (u + s) / 100.0);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
            .map(|v| v * 1024.0)
    };
    let start = (shared.wall_clock_ms() as f64 - shared.stats.uptime_ms() as f64) / 1000.0;
    let (open_fds, max_fds) = crate::mntr::file_descriptors();
    let mut family = |name: &str, kind: &str, help: &str, v: Option<f64>| {
        if let Some(v) = v {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
            sample(out, name, None, None, v);
        }
    };
    family(
        "process_cpu_seconds_total",
        "counter",
        "Total user and system CPU time spent in seconds.",
        cpu,
    );
    family(
        "process_start_time_seconds",
        "gauge",
        "Start time of the process since unix epoch in seconds.",
        Some((start * 1000.0).round() / 1000.0),
    );
    family(
        "process_open_fds",
        "gauge",
        "Number of open file descriptors.",
        Some(open_fds as f64),
    );
    family(
        "process_max_fds",
        "gauge",
        "Maximum number of open file descriptors.",
        Some(max_fds as f64),
    );
    family(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory size in bytes.",
        kb("VmSize:"),
    );
    family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory size in bytes.",
        kb("VmRSS:"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mntr::Number;
    use crate::stats::PercentileSummary;

    fn summary(name: &str, detail: Detail, values: &[u64]) -> Metric {
        let p = PercentileSummary::new();
        for v in values {
            p.add(*v);
        }
        Metric {
            name: name.into(),
            key: None,
            kind: Kind::Summary {
                detail,
                histogram: Some(p.snapshot()),
            },
        }
    }

    #[test]
    fn families_are_written_as_simpleclient_writes_them() {
        let metrics = vec![
            Metric {
                name: "znode_count".into(),
                key: None,
                kind: Kind::Gauge(Number::Int(5)),
            },
            Metric {
                name: "quota_count_limit_per_namespace".into(),
                key: Some("app".into()),
                kind: Kind::Gauge(Number::Int(10)),
            },
            Metric {
                name: "quota_count_limit_per_namespace".into(),
                key: Some("b".into()),
                kind: Kind::Gauge(Number::Int(-1)),
            },
            Metric {
                name: "watch_bytes".into(),
                key: None,
                kind: Kind::Counter(120),
            },
            summary("readlatency", Detail::Advanced, &[1, 2, 3, 4]),
            summary("fsynctime", Detail::Basic, &[]),
        ];
        assert_eq!(
            exposition(&metrics, None),
            "# HELP znode_count znode_count\n# TYPE znode_count gauge\nznode_count 5.0\n\
             # HELP quota_count_limit_per_namespace quota_count_limit_per_namespace\n\
             # TYPE quota_count_limit_per_namespace gauge\n\
             quota_count_limit_per_namespace{key=\"app\",} 10.0\n\
             quota_count_limit_per_namespace{key=\"b\",} -1.0\n\
             # HELP watch_bytes watch_bytes\n# TYPE watch_bytes counter\nwatch_bytes 120.0\n\
             # HELP readlatency readlatency\n# TYPE readlatency summary\n\
             readlatency{quantile=\"0.5\",} 2.0\nreadlatency{quantile=\"0.9\",} 4.0\n\
             readlatency{quantile=\"0.99\",} 4.0\nreadlatency_count 4.0\nreadlatency_sum 10.0\n\
             # HELP fsynctime fsynctime\n# TYPE fsynctime summary\n\
             fsynctime{quantile=\"0.5\",} NaN\nfsynctime_count 0.0\nfsynctime_sum 0.0\n"
        );
    }

    #[test]
    fn quantiles_cover_the_values_since_the_baseline() {
        let p = PercentileSummary::new();
        for _ in 0..100 {
            p.add(50);
        }
        let key = ("readlatency".to_string(), None);
        let earlier: Histograms = [(key.clone(), p.snapshot())].into();
        for _ in 0..10 {
            p.add(3);
        }
        let m = Metric {
            name: "readlatency".into(),
            key: None,
            kind: Kind::Summary {
                detail: Detail::Basic,
                histogram: Some(p.snapshot()),
            },
        };
        let text = exposition(std::slice::from_ref(&m), Some(&earlier));
        assert!(
            text.contains("readlatency{quantile=\"0.5\",} 3.0\n"),
            "{text}"
        );
        assert!(text.contains("readlatency_count 110.0\n"), "{text}");
    }

    #[test]
    fn the_window_keeps_a_copy_every_step_for_ten_minutes() {
        let mut w = Window::default();
        let t0 = Instant::now();
        let h = Histograms::new();
        assert!(w.baseline(t0, &h).is_none());
        assert!(w.baseline(t0 + Duration::from_secs(30), &h).is_some());
        w.baseline(t0 + AGE_STEP, &h);
        assert_eq!(w.copies.len(), 2);
        w.baseline(t0 + WINDOW + Duration::from_secs(1), &h);
        assert_eq!(w.copies.len(), 2, "the first copy aged out, a new one kept");
    }
}
