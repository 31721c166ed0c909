//! `mxtrace serve`: the Prometheus exporter's HTTP front end (axum). The engine
//! (`mxtrace_core::exporter`) reads the config, turns a scrape's target into a job, and
//! renders the report as metrics; this file serves them, following blackbox_exporter's
//! conventions (<https://github.com/prometheus/blackbox_exporter>):
//! `/probe?module=M&target=T[&debug=true]`, `/metrics`, `/-/healthy`, `/-/ready`,
//! `/-/reload` (POST) and SIGHUP.
//!
//! Safety: targets outside the module's allowlist get 400; at most `max_concurrency` probes
//! run at once and a scrape beyond it gets 503 at once (not queued, so a stuck target cannot
//! pile up scrapes); every refusal is counted. Connections are held to the config's HTTP
//! limits (`serve_conn`): a head deadline, an idle timeout, a cap on connections and sizes. Passwords never reach a response or a log line:
//! transcripts carry `<redacted>` and only the config's variable or file name is ever shown.

mod roundtrips;

use super::CliError;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use clap::Args;
use mxtrace_core::exporter::config::{ConfigError, ExporterConfig, HttpLimits, JobError};
use mxtrace_core::job::{execute, Job};
use mxtrace_proto::exit;
use mxtrace_proto::model::JobReport;
use mxtrace_proto::spec::Naming;
use mxtrace_render::human::{render_probe, render_trace};
use mxtrace_render::metrics;
use mxtrace_render::style::Style;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Taken off Prometheus's scrape timeout so the answer arrives before Prometheus gives up
/// (blackbox_exporter's default `--timeout-offset` is 0.5 s as well).
const TIMEOUT_MARGIN: Duration = Duration::from_millis(500);
/// The deadline of a probe when the scrape sends no timeout header (curl, a browser).
const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// The shortest deadline given to a probe, however short the scrape timeout.
const MIN_DEADLINE: Duration = Duration::from_millis(500);
/// Prometheus's own text format for `/probe`.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The exporter's config (TOML): `listen`, `max_concurrency` and `[modules.NAME]`.
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Address to listen on, overriding the config's `listen` [default: 127.0.0.1:9125].
    #[arg(long, value_name = "IP:PORT")]
    pub listen: Option<SocketAddr>,
}

type Labels = Vec<(String, String)>;

/// The exporter's own metrics (`/metrics`).
struct OwnMetrics {
    registry: Registry,
    probes: Family<Labels, Counter>,
    durations: Family<Labels, Histogram>,
    rejected: Family<Labels, Counter>,
    reloads: Family<Labels, Counter>,
    reload_ok: Gauge,
    in_flight: Gauge,
    connections: Gauge,
    closed: Family<Labels, Counter>,
}

fn duration_histogram() -> Histogram {
    // 50 ms to about 51 s: an SMTP probe is rarely faster and never allowed longer.
    Histogram::new(exponential_buckets(0.05, 2.0, 11))
}

impl OwnMetrics {
    fn new(max_concurrency: usize, http: &HttpLimits) -> OwnMetrics {
        let mut registry = Registry::default();
        let probes = Family::<Labels, Counter>::default();
        let durations =
            Family::<Labels, Histogram>::new_with_constructor(duration_histogram as fn() -> _);
        let rejected = Family::<Labels, Counter>::default();
        let reloads = Family::<Labels, Counter>::default();
        let reload_ok = Gauge::default();
        let in_flight = Gauge::default();
        let limit = Gauge::<i64>::default();
        limit.set(i64::try_from(max_concurrency).unwrap_or(i64::MAX));
        let connections = Gauge::default();
        let max_connections = Gauge::<i64>::default();
        max_connections.set(i64::try_from(http.max_connections).unwrap_or(i64::MAX));
        let closed = Family::<Labels, Counter>::default();
        registry.register(
            "mxtrace_exporter_probes",
            "Probes run, by module and result (success or failure)",
            probes.clone(),
        );
        registry.register(
            "mxtrace_exporter_probe_duration_seconds",
            "Time each probe took, by module",
            durations.clone(),
        );
        registry.register(
            "mxtrace_exporter_rejected",
            "Scrapes refused, by reason (target_not_allowed, unknown_module, bad_request, concurrency_limit, request_too_large, connection_limit)",
            rejected.clone(),
        );
        registry.register(
            "mxtrace_exporter_config_reloads",
            "Config reloads, by result (success or failure)",
            reloads.clone(),
        );
        registry.register(
            "mxtrace_exporter_config_last_reload_successful",
            "1 when the last reload (or the start) read the config",
            reload_ok.clone(),
        );
        registry.register(
            "mxtrace_exporter_probes_in_flight",
            "Probes running now",
            in_flight.clone(),
        );
        registry.register(
            "mxtrace_exporter_max_concurrency",
            "Probes allowed at once (max_concurrency at start)",
            limit,
        );
        registry.register(
            "mxtrace_exporter_connections",
            "HTTP connections open now",
            connections.clone(),
        );
        registry.register(
            "mxtrace_exporter_max_connections",
            "HTTP connections allowed at once (max_connections at start)",
            max_connections,
        );
        registry.register(
            "mxtrace_exporter_connections_closed",
            "HTTP connections closed by a limit, by reason (header_timeout, idle_timeout)",
            closed.clone(),
        );
        reload_ok.set(1);
        OwnMetrics {
            registry,
            probes,
            durations,
            rejected,
            reloads,
            reload_ok,
            in_flight,
            connections,
            closed,
        }
    }

    fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&vec![("reason".to_string(), reason.to_string())])
            .inc();
    }
}

struct AppState {
    config: RwLock<Arc<ExporterConfig>>,
    roundtrips: Arc<roundtrips::RoundtripMetrics>,
    path: PathBuf,
    limit: Semaphore,
    metrics: OwnMetrics,
}

impl AppState {
    fn config(&self) -> Arc<ExporterConfig> {
        match self.config.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rereads the config; on a mistake the running one stays. The number of probes allowed
    /// at once is fixed at start.
    fn reload(&self) -> Result<(), ConfigError> {
        let result = ExporterConfig::read(&self.path);
        let label = |r: &str| vec![("result".to_string(), r.to_string())];
        match result {
            Ok(c) => {
                self.roundtrips.schedule(&c);
                match self.config.write() {
                    Ok(mut g) => *g = Arc::new(c),
                    Err(poisoned) => *poisoned.into_inner() = Arc::new(c),
                }
                self.metrics.reloads.get_or_create(&label("success")).inc();
                self.metrics.reload_ok.set(1);
                eprintln!(
                    "mxtrace serve: config reloaded from {}",
                    self.path.display()
                );
                Ok(())
            }
            Err(e) => {
                self.metrics.reloads.get_or_create(&label("failure")).inc();
                self.metrics.reload_ok.set(0);
                eprintln!("mxtrace serve: reload failed, keeping the running config: {e}");
                Err(e)
            }
        }
    }
}

pub async fn run(args: &ServeArgs) -> Result<u8, CliError> {
    let config = ExporterConfig::read(&args.config)?;
    let addr = config.listen_addr(args.listen);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| CliError::Io {
            what: "binding the exporter's address",
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| CliError::Io {
        what: "binding the exporter's address",
        source,
    })?;
    let http = config.http;
    let rt = Arc::new(roundtrips::RoundtripMetrics::default());
    let mut metrics = OwnMetrics::new(config.max_concurrency, &http);
    rt.register(&mut metrics.registry);
    rt.schedule(&config);
    let state = Arc::new(AppState {
        limit: Semaphore::new(config.max_concurrency),
        metrics,
        roundtrips: rt,
        config: RwLock::new(Arc::new(config)),
        path: args.config.clone(),
    });
    tokio::spawn(reload_on_hangup(state.clone()));
    let app = Router::new()
        .route("/probe", get(probe))
        .route("/metrics", get(own_metrics))
        .route("/-/healthy", get(|| async { "Healthy\n" }))
        .route("/-/ready", get(|| async { "Ready\n" }))
        .route("/-/reload", post(reload))
        .layer(axum::middleware::from_fn_with_state(
            (state.clone(), http.max_request_bytes),
            refuse_large_bodies,
        ))
        .with_state(state.clone());
    // The first line says where it listens (port 0 picks one): scripts and tests read it.
    super::dispatch::emit(format!("mxtrace serve: listening on http://{bound}\n").as_bytes())?;
    let events: Arc<dyn super::serve_conn::ConnEvents> = Arc::new(MetricsOf(state));
    let stop = async {
        if let Err(e) = super::dispatch::wait_for_stop().await {
            eprintln!("mxtrace serve: {e}");
        }
    };
    super::serve_conn::serve(listener, app, http, events, stop).await;
    eprintln!("mxtrace serve: stopped");
    Ok(exit::PASS)
}

/// The front end's events go to the exporter's own metrics.
struct MetricsOf(Arc<AppState>);

impl super::serve_conn::ConnEvents for MetricsOf {
    fn refused(&self) {
        self.0.metrics.reject("connection_limit");
    }

    fn open(&self, delta: i64) {
        self.0.metrics.connections.inc_by(delta);
    }

    fn closed_by(&self, limit: &'static str) {
        let reason = vec![("reason".to_string(), limit.to_string())];
        self.0.metrics.closed.get_or_create(&reason).inc();
    }
}

/// No handler reads a body: one declared larger than `max_request_bytes` is refused (413)
/// before it is sent (the head itself is capped by hyper's buffer: 431).
async fn refuse_large_bodies(
    State((state, max)): State<(Arc<AppState>, usize)>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        state.metrics.reject("request_too_large");
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large (max_request_bytes)\n",
        )
            .into_response();
    }
    next.run(req).await
}

#[cfg(unix)]
async fn reload_on_hangup(state: Arc<AppState>) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        eprintln!("mxtrace serve: cannot catch SIGHUP; use POST /-/reload");
        return;
    };
    while hup.recv().await.is_some() {
        let _ = state.reload();
    }
}

#[cfg(not(unix))]
async fn reload_on_hangup(_: Arc<AppState>) {}

async fn reload(State(state): State<Arc<AppState>>) -> Response {
    match state.reload() {
        Ok(()) => (StatusCode::OK, "Reloaded\n").into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// OpenMetrics when the scraper asks for it (Prometheus does), else the text format 0.0.4
/// that every other client and `promtool check metrics` read.
async fn own_metrics(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let mut text = String::new();
    if encode(&mut text, &state.metrics.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    if openmetrics {
        return ([(header::CONTENT_TYPE, OPENMETRICS)], text).into_response();
    }
    ([(header::CONTENT_TYPE, TEXT_FORMAT)], text_format(&text)).into_response()
}

/// prometheus-client writes OpenMetrics only. In the text format a counter's HELP and TYPE
/// name its sample (`_total`), and there is no `# EOF` or `# UNIT`; the rest is the same.
fn text_format(openmetrics: &str) -> String {
    let mut counters = std::collections::HashSet::new();
    for l in openmetrics.lines() {
        if let Some(name) = l
            .strip_prefix("# TYPE ")
            .and_then(|r| r.strip_suffix(" counter"))
        {
            counters.insert(name);
        }
    }
    let mut out = String::with_capacity(openmetrics.len());
    for l in openmetrics.lines() {
        if l == "# EOF" || l.starts_with("# UNIT ") {
            continue;
        }
        let meta = ["# HELP ", "# TYPE "].into_iter().find_map(|p| {
            let rest = l.strip_prefix(p)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{p}{name}_total {tail}"))
        });
        out.push_str(meta.as_deref().unwrap_or(l));
        out.push('\n');
    }
    out
}

/// The probe's deadline: the scrape timeout Prometheus sends, less the margin.
fn deadline(headers: &HeaderMap) -> Duration {
    headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .map_or(DEFAULT_DEADLINE, |t| {
            t.saturating_sub(TIMEOUT_MARGIN)
                .clamp(MIN_DEADLINE, DEFAULT_DEADLINE)
        })
}

fn bad_request(state: &AppState, reason: &str, message: String) -> Response {
    state.metrics.reject(reason);
    eprintln!("mxtrace serve: refused ({reason}): {message}");
    (StatusCode::BAD_REQUEST, format!("{message}\n")).into_response()
}

async fn probe(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let config = state.config();
    let name = q.get("module").map(String::as_str).unwrap_or("");
    let Some(module) = config.module(name) else {
        return bad_request(&state, "unknown_module", format!("unknown module {name:?}"));
    };
    let Some(target) = q.get("target").filter(|t| !t.is_empty()) else {
        return bad_request(&state, "bad_request", "target parameter is missing".into());
    };
    let budget = deadline(&headers);
    let job = match module.job_within(target, Some(budget)) {
        Ok(j) => j,
        Err(e @ JobError::NotAllowed { .. }) => {
            return bad_request(&state, "target_not_allowed", e.to_string())
        }
        Err(e) => return bad_request(&state, "bad_request", e.to_string()),
    };
    let Ok(_permit) = state.limit.try_acquire() else {
        state.metrics.reject("concurrency_limit");
        eprintln!("mxtrace serve: refused {target:?}: max_concurrency probes already running");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "too many probes at once (max_concurrency)\n",
        )
            .into_response();
    };
    let debug = q.get("debug").is_some_and(|d| d == "true");
    let (text, passed) = run_job(&state, name, &job, budget, debug).await;
    eprintln!("mxtrace serve: module={name:?} target={target:?} success={passed}");
    let kind = if debug {
        "text/plain; charset=utf-8"
    } else {
        TEXT_FORMAT
    };
    ([(header::CONTENT_TYPE, kind)], text).into_response()
}

/// Runs the job within the deadline; the metrics (after the transcript with `debug`), and
/// whether it passed.
async fn run_job(
    state: &AppState,
    module: &str,
    job: &Job,
    budget: Duration,
    debug: bool,
) -> (String, bool) {
    let m = &state.metrics;
    m.in_flight.inc();
    let t0 = Instant::now();
    let outcome = tokio::time::timeout(budget, execute(job)).await;
    m.in_flight.dec();
    let took = t0.elapsed();
    let secs = took.as_secs_f64();
    let (metrics_text, transcript, passed) = match outcome {
        Ok(Ok(report)) => {
            // The module's expectations, each a metric; one not met fails the scrape.
            let ex = state
                .config()
                .module(module)
                .map(|m| m.expectations(&report))
                .unwrap_or_default();
            (
                metrics::render(&report, &ex),
                transcript(&report),
                metrics::success(&report, &ex),
            )
        }
        Ok(Err(e)) => (
            metrics::render_failure(took),
            format!("the probe could not run: {e}\n"),
            false,
        ),
        Err(_) => (
            metrics::render_failure(took),
            format!("deadline of {budget:?} (scrape timeout less margin) reached\n"),
            false,
        ),
    };
    let result = if passed { "success" } else { "failure" };
    let labels = vec![
        ("module".to_string(), module.to_string()),
        ("result".to_string(), result.to_string()),
    ];
    m.probes.get_or_create(&labels).inc();
    m.durations
        .get_or_create(&vec![("module".to_string(), module.to_string())])
        .observe(secs);
    let text = if debug {
        format!("Transcript:\n{transcript}\nMetrics:\n{metrics_text}")
    } else {
        metrics_text
    };
    (text, passed)
}

fn transcript(report: &JobReport) -> String {
    let style = Style::new(false);
    match report {
        JobReport::Probe(p) => render_probe(p, style),
        // A module's settings are its keys.
        JobReport::Trace(t) => render_trace(t, style, Naming::Key),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_metrics_in_the_text_format_name_counters_by_their_samples() {
        let om = "# HELP a_probes Probes.\n# TYPE a_probes counter\na_probes_total{r=\"x\"} 1\n\
                  # HELP a_up Up.\n# TYPE a_up gauge\na_up 1\n# EOF\n";
        assert_eq!(
            text_format(om),
            "# HELP a_probes_total Probes.\n# TYPE a_probes_total counter\n\
             a_probes_total{r=\"x\"} 1\n# HELP a_up Up.\n# TYPE a_up gauge\na_up 1\n"
        );
    }

    #[test]
    fn the_deadline_is_the_scrape_timeout_less_the_margin() {
        let mut h = HeaderMap::new();
        assert_eq!(deadline(&h), DEFAULT_DEADLINE);
        h.insert("X-Prometheus-Scrape-Timeout-Seconds", "10".parse().unwrap());
        assert_eq!(deadline(&h), Duration::from_millis(9500));
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            "0.2".parse().unwrap(),
        );
        assert_eq!(deadline(&h), MIN_DEADLINE);
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            "junk".parse().unwrap(),
        );
        assert_eq!(deadline(&h), DEFAULT_DEADLINE);
        assert_eq!(
            mxtrace_core::exporter::config::DEFAULT_LISTEN,
            "127.0.0.1:9125"
        );
    }
}
