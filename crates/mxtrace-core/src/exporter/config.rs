//! The exporter's TOML configuration: where to listen, how many probes at once, and named
//! modules. A module is the exporter's own keys (`allowed_targets`, `scenario`, `hop`,
//! `tenant`) plus any session setting of a scenario file, written in the same table and taken
//! out into a `SessionSpec` (which stays `deny_unknown_fields`) before the rest is read. A
//! module may also say `data = true` (with `header`), and read an AUTH password from
//! `auth_password_file`; nothing is ever asked on a terminal.
//!
//! Loading checks everything before the exporter listens, passwords and TLS files included,
//! and reports each mistake as `FILE:LINE:COL: what`.
//!
//! ```toml
//! listen = "127.0.0.1:9125"
//! max_concurrency = 8
//! header_timeout = "10s"      # the HTTP front end's limits (`HttpLimits`)
//! idle_timeout = "90s"
//! max_connections = 512
//! max_request_bytes = 16384
//! [modules.eop_inbound]
//! allowed_targets = ["contoso.com", "*.contoso.com", "192.0.2.0/24"]
//! from = "probe@fabrikam.com"
//! rcpt = ["user@contoso.com"]
//! starttls = "require"
//! ```

use super::allow::{AllowError, Allowlist};
use crate::job::{Job, Target};
use crate::probe::ProbeOptions;
use crate::run::ExpectationResult;
use crate::scenario_file::roundtrip::{self as rt, RawRoundtrip, RoundtripSpec};
use crate::scenario_file::{
    expectations, read_small, roundtrip_expectations, take_layer, tenant_key, Expectations,
    FileError, FileProblem, HopTarget, Layer, Locator, RawExpect, StartTlsExpect,
};
use mxtrace_knowledge::PathContext;
use mxtrace_net::tls::TlsConfigError;
use mxtrace_proto::model::JobReport;
use mxtrace_proto::spec::{
    parse_scenario, path_context, Field, Naming, SessionSpec, SpecError, TargetError,
    UnknownScenario,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Loopback: the exporter is reachable from elsewhere only when its config or `--listen` says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9125";
/// Probes running at once; a scrape beyond it is refused with 503 (and counted).
pub const DEFAULT_MAX_CONCURRENCY: usize = 8;
/// A higher limit is a typo: every probe holds a socket and a task for up to its timeouts.
const MAX_CONCURRENCY_LIMIT: usize = 1024;

/// The HTTP front end's limits, so that clients that open connections and send nothing, or
/// half a request, cannot hold the exporter's sockets or memory (docs/serve.md "Limits").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// A request's line and headers must have arrived this long after the connection opened
    /// or its first byte came; otherwise the connection is closed.
    pub header_timeout: Duration,
    /// A connection with no request in progress is closed after this long without one.
    pub idle_timeout: Duration,
    /// Connections open at once; one beyond it is closed at accept (and counted).
    pub max_connections: usize,
    /// Largest request line plus headers (bytes): a larger head gets 431, a larger declared
    /// body 413.
    pub max_request_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            // Generous for any HTTP client on a real network, short for a slowloris.
            header_timeout: Duration::from_secs(10),
            // Longer than Prometheus's default 1 min scrape interval: its connection is reused.
            idle_timeout: Duration::from_secs(90),
            // Under the usual 1,024 open files a process gets, leaving room for the probes.
            max_connections: 512,
            // A scrape's request is well under 1 KB; hyper's floor is 8 KiB.
            max_request_bytes: 16 * 1024,
        }
    }
}

/// hyper's smallest read buffer: a head limit under it is refused at load.
const MIN_REQUEST_BYTES: usize = 8192;
const MAX_REQUEST_BYTES: usize = 1024 * 1024;
const MAX_CONNECTIONS_LIMIT: usize = 65_536;

#[derive(Debug, Clone)]
pub struct ExporterConfig {
    pub path: PathBuf,
    /// From the file; `--listen` overrides it; `DEFAULT_LISTEN` when neither says.
    pub listen: Option<SocketAddr>,
    pub max_concurrency: usize,
    pub http: HttpLimits,
    pub modules: BTreeMap<String, Module>,
    /// `[roundtrips.NAME]`: round trips run on their own schedule (they take longer than a
    /// scrape); `/metrics` shows the last result of each.
    pub roundtrips: BTreeMap<String, RoundtripEntry>,
}

/// How often a round trip runs when its table does not say.
pub const DEFAULT_ROUNDTRIP_INTERVAL: Duration = Duration::from_secs(300);

/// One scheduled round trip.
#[derive(Debug, Clone)]
pub struct RoundtripEntry {
    pub name: String,
    /// From the start of one run to the start of the next.
    pub interval: Duration,
    pub spec: RoundtripSpec,
}

#[derive(Debug, Clone)]
pub struct Module {
    pub name: String,
    pub allowed_targets: Allowlist,
    pub ctx: PathContext,
    /// The Microsoft 365 tenant, for scenario B hop 2.
    pub tenant: Option<String>,
    /// `[modules.NAME.expect]`, checked as a scenario file hop's; each is a metric.
    pub expect: Option<Expectations>,
    /// Checked, TLS paths made absolute; the password is read per probe.
    spec: SessionSpec,
}

/// Why a scrape's target cannot be probed with a module.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    #[error("target {target:?} is not in module {module:?}'s allowed_targets")]
    NotAllowed { module: String, target: String },
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("module {module:?}: {}", .source.describe(Naming::Key))]
    Spec {
        module: String,
        #[source]
        source: SpecError,
    },
}

impl ExporterConfig {
    pub fn read(path: &Path) -> Result<ExporterConfig, ConfigError> {
        let text = read_small(path, "an exporter config").map_err(FileError::widen)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        parse(&text, path, &base)
    }

    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules.get(name)
    }

    /// The address to listen on: `over` (the command line), the file's, or the default.
    pub fn listen_addr(&self, over: Option<SocketAddr>) -> SocketAddr {
        over.or(self.listen)
            .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 9125)))
    }
}

impl Module {
    /// The module's session settings, as checked at load.
    pub fn spec(&self) -> &SessionSpec {
        &self.spec
    }

    /// The module's expectations checked against a scrape's report (none without `expect`).
    pub fn expectations(&self, report: &JobReport) -> Vec<ExpectationResult> {
        match &self.expect {
            Some(e) => crate::run::evaluate(e, self.spec.all.unwrap_or(false), report),
            None => Vec::new(),
        }
    }

    /// The check a scrape of `target` runs: an IP address or `host:port` is probed, a domain
    /// is traced. Refuses targets outside `allowed_targets`.
    pub fn job(&self, target: &str) -> Result<Job, JobError> {
        self.job_within(target, None)
    }

    /// As `job`, every timeout capped at `budget` (the scrape's deadline).
    pub fn job_within(&self, target: &str, budget: Option<Duration>) -> Result<Job, JobError> {
        let t = Target::parse(target, self.spec.port_or_default())?;
        self.job_for(&t, budget)
    }

    /// The check for a target already parsed (a sweep's line), as `job_within`.
    pub fn job_for(&self, target: &Target, budget: Option<Duration>) -> Result<Job, JobError> {
        if !self.allowed_targets.allows(target.host()) {
            return Err(JobError::NotAllowed {
                module: self.name.clone(),
                target: target.text(),
            });
        }
        let spec = match budget {
            Some(b) => capped(&self.spec, b),
            None => self.spec.clone(),
        };
        let tenant = self.tenant.as_deref();
        Job::new(target, &spec, self.ctx, tenant, Naming::Key).map_err(|source| JobError::Spec {
            module: self.name.clone(),
            source,
        })
    }
}

/// The settings with each timeout at most `budget`.
fn capped(spec: &SessionSpec, budget: Duration) -> SessionSpec {
    let mut s = spec.clone();
    s.connect_timeout = Some(spec.connect_timeout().min(budget));
    s.stage_timeout = Some(spec.stage_timeout().min(budget));
    s.dns_timeout = Some(spec.dns_timeout().min(budget));
    s
}

/// The session settings a module may write: all but the open-relay address of `run`.
fn module_keys(f: Field) -> bool {
    f != Field::RelayTestRcpt
}

/// What an exporter config can get wrong: a scenario file's mistakes (a module's settings and
/// `expect` are read as a hop's), and its own. Settings are named by their keys.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigProblem {
    #[error(transparent)]
    File(#[from] FileProblem),
    #[error("listen {0:?}: expected IP:PORT, e.g. {DEFAULT_LISTEN}")]
    Listen(String),
    #[error("max_concurrency: 1-{MAX_CONCURRENCY_LIMIT}")]
    MaxConcurrency,
    #[error("{key} {value:?}: {source}")]
    Duration {
        key: &'static str,
        value: String,
        #[source]
        source: mxtrace_proto::spec::DurationError,
    },
    #[error("{key}: {lo}-{hi}")]
    Range {
        key: &'static str,
        lo: usize,
        hi: usize,
    },
    #[error(
        "oauth_grant = \"device\" needs a person at a terminal, which the exporter has not: use \
         the client-credentials grant"
    )]
    DeviceGrant,
    #[error("no [modules.NAME]: the exporter needs at least one module (or [roundtrips.NAME])")]
    NoModule,
    #[error("module {0:?}: allowed_targets is empty (the exporter is not an open proxy)")]
    EmptyAllowlist(String),
    #[error("allowed_targets: {0}")]
    Allowlist(#[source] AllowError),
    #[error("scenario {value:?}: {source}")]
    Scenario {
        value: String,
        #[source]
        source: UnknownScenario,
    },
    #[error(
        "auth_user needs auth_password_env or auth_password_file, or an OAuth token source \
         (the exporter never prompts, and passwords are never written in its config)"
    )]
    NoPassword,
    #[error("module {module:?}: {}", .source.describe(Naming::Key))]
    Setting {
        module: String,
        #[source]
        source: SettingError,
    },
    #[error(
        "expect: open_relay and starttls = \"required\" need a session of their own, which a \
         scrape does not run (check them with `mxtrace run`)"
    )]
    ExpectNeedsSession,
}

/// A module's settings that a probe could not run with: a value, the password, a TLS file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingError {
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

impl SettingError {
    pub fn field(&self) -> Option<Field> {
        match self {
            SettingError::Spec(e) => e.field(),
            SettingError::Tls(e) => e.field(),
        }
    }

    pub fn describe(&self, naming: Naming) -> String {
        match self {
            SettingError::Spec(e) => e.describe(naming),
            SettingError::Tls(e) => e.describe(naming),
        }
    }
}

/// A mistake in an exporter config, with where.
pub type ConfigError = FileError<ConfigProblem>;

pub fn parse(text: &str, path: &Path, base: &Path) -> Result<ExporterConfig, ConfigError> {
    let at = Locator {
        text,
        path: path.display().to_string(),
    };
    let terr = |e| at.toml(e);
    let mut doc = DeTable::parse(text).map_err(terr)?;
    let mut layers = BTreeMap::new();
    if let Some(v) = doc.get_mut().get_mut("modules") {
        if let DeValue::Table(t) = v.get_mut() {
            for (name, m) in t.iter_mut() {
                layers.insert(
                    name.get_ref().to_string(),
                    take_layer(m, &module_keys).map_err(terr)?,
                );
            }
        }
    }
    let mut rt_layers = BTreeMap::new();
    if let Some(v) = doc.get_mut().get_mut("roundtrips") {
        if let DeValue::Table(t) = v.get_mut() {
            for (name, m) in t.iter_mut() {
                rt_layers.insert(
                    name.get_ref().to_string(),
                    take_layer(m, &rt::session_keys).map_err(terr)?,
                );
            }
        }
    }
    let raw = RawConfig::deserialize(toml::de::Deserializer::from(doc)).map_err(terr)?;
    let (listen, max_concurrency) = server_keys(&at, &raw)?;
    let http = http_limits(&at, &raw)?;
    if raw.modules.is_empty() && raw.roundtrips.is_empty() {
        return Err(at.error(&(0..0), ConfigProblem::NoModule));
    }
    let mut roundtrips = BTreeMap::new();
    for (name, r) in &raw.roundtrips {
        let layer = rt_layers.remove(name).unwrap_or_default();
        let entry = roundtrip_entry(&at, base, name, r, layer)?;
        roundtrips.insert(name.clone(), entry);
    }
    let mut modules = BTreeMap::new();
    for (name, rm) in raw.modules {
        let layer = layers.remove(&name).unwrap_or_default();
        let m = module(&at, base, name.clone(), rm, layer)?;
        modules.insert(name, m);
    }
    Ok(ExporterConfig {
        path: path.to_path_buf(),
        listen,
        max_concurrency,
        http,
        modules,
        roundtrips,
    })
}

/// The HTTP limits: each key the file sets, checked; the defaults for the others.
fn http_limits(at: &Locator<'_>, raw: &RawConfig) -> Result<HttpLimits, ConfigError> {
    let mut l = HttpLimits::default();
    let duration = |key: &'static str, v: &Spanned<String>| {
        // Zero is refused there: a connection that may not wait at all serves nothing.
        mxtrace_proto::spec::parse_duration(v.get_ref()).map_err(|source| {
            let value = v.get_ref().clone();
            at.error(&v.span(), ConfigProblem::Duration { key, value, source })
        })
    };
    let count = |key: &'static str, v: &Spanned<usize>, lo: usize, hi: usize| {
        if (lo..=hi).contains(v.get_ref()) {
            Ok(*v.get_ref())
        } else {
            Err(at.error(&v.span(), ConfigProblem::Range { key, lo, hi }))
        }
    };
    if let Some(v) = &raw.header_timeout {
        l.header_timeout = duration("header_timeout", v)?;
    }
    if let Some(v) = &raw.idle_timeout {
        l.idle_timeout = duration("idle_timeout", v)?;
    }
    if let Some(v) = &raw.max_connections {
        l.max_connections = count("max_connections", v, 1, MAX_CONNECTIONS_LIMIT)?;
    }
    if let Some(v) = &raw.max_request_bytes {
        l.max_request_bytes = count("max_request_bytes", v, MIN_REQUEST_BYTES, MAX_REQUEST_BYTES)?;
    }
    Ok(l)
}

/// File settings are relative to the config file's folder.
fn anchor_files(spec: &mut SessionSpec, base: &Path) {
    for (_, slot) in spec.files_mut() {
        if let Some(p) = slot {
            *p = base.join(&*p);
        }
    }
}

fn roundtrip_entry(
    at: &Locator<'_>,
    base: &Path,
    name: &str,
    raw: &RawRoundtrip,
    layer: Layer,
) -> Result<RoundtripEntry, ConfigError> {
    let Layer { mut spec, spans } = layer;
    anchor_files(&mut spec, base);
    if spec.oauth_grant == Some(mxtrace_proto::spec::OAuthGrant::Device) {
        let span = spans.get(&Field::OAuthGrant).cloned().unwrap_or(0..0);
        return Err(at.error(&span, ConfigProblem::DeviceGrant));
    }
    let interval = match &raw.interval {
        Some(i) if i.get_ref().0 < Duration::from_secs(10) => {
            return Err(at.error(&i.span(), FileProblem::RoundtripInterval(name.to_string())))
        }
        Some(i) => i.get_ref().0,
        None => DEFAULT_ROUNDTRIP_INTERVAL,
    };
    let span_of = |f: Field| spans.get(&f).cloned();
    let cx = rt::TableContext {
        at,
        base,
        span_of: &span_of,
        default_via: None,
        read_secrets: true,
    };
    Ok(RoundtripEntry {
        name: name.to_string(),
        interval,
        spec: rt::read(&cx, raw, spec).map_err(FileError::widen)?,
    })
}

/// `listen` and `max_concurrency`, checked.
fn server_keys(
    at: &Locator<'_>,
    raw: &RawConfig,
) -> Result<(Option<SocketAddr>, usize), ConfigError> {
    let listen = match &raw.listen {
        None => None,
        Some(l) => Some(
            l.get_ref()
                .parse::<SocketAddr>()
                .map_err(|_| at.error(&l.span(), ConfigProblem::Listen(l.get_ref().clone())))?,
        ),
    };
    let max_concurrency = match &raw.max_concurrency {
        None => DEFAULT_MAX_CONCURRENCY,
        Some(n) if (1..=MAX_CONCURRENCY_LIMIT).contains(n.get_ref()) => *n.get_ref(),
        Some(n) => return Err(at.error(&n.span(), ConfigProblem::MaxConcurrency)),
    };
    Ok((listen, max_concurrency))
}

fn module(
    at: &Locator<'_>,
    base: &Path,
    name: String,
    rm: RawModule,
    layer: Layer,
) -> Result<Module, ConfigError> {
    let targets_span = rm.allowed_targets.span();
    if rm.allowed_targets.get_ref().is_empty() {
        return Err(at.error(&targets_span, ConfigProblem::EmptyAllowlist(name)));
    }
    let allowed_targets = Allowlist::parse(rm.allowed_targets.get_ref())
        .map_err(|e| at.error(&targets_span, ConfigProblem::Allowlist(e)))?;
    let ctx = module_context(at, &rm)?;
    let tenant = rm
        .tenant
        .as_ref()
        .map(|t| tenant_key(at, t))
        .transpose()
        .map_err(FileError::widen)?;
    let expect = rm
        .expect
        .as_ref()
        .map(|e| module_expect(at, e))
        .transpose()?;
    let spec = module_spec(at, base, &name, layer, &targets_span)?;
    Ok(Module {
        name,
        allowed_targets,
        ctx,
        tenant,
        expect,
        spec,
    })
}

/// The module's place in a delivery path (`scenario`, `hop`).
fn module_context(at: &Locator<'_>, rm: &RawModule) -> Result<PathContext, ConfigError> {
    let scenario = match &rm.scenario {
        None => None,
        Some(s) => Some(parse_scenario(s.get_ref()).map_err(|source| {
            let value = s.get_ref().clone();
            at.error(&s.span(), ConfigProblem::Scenario { value, source })
        })?),
    };
    let hop = rm.hop.as_ref().map(|h| *h.get_ref());
    let hop_span = rm
        .hop
        .as_ref()
        .map_or(rm.allowed_targets.span(), Spanned::span);
    path_context(scenario, hop).map_err(|e| at.error(&hop_span, FileProblem::Hop(e)))
}

/// The module's session settings: TLS and password files relative to the config, then
/// every check a probe would make. A mistake points at the key (else at `allowed_targets`).
fn module_spec(
    at: &Locator<'_>,
    base: &Path,
    name: &str,
    layer: Layer,
    targets_span: &Range<usize>,
) -> Result<SessionSpec, ConfigError> {
    let Layer { mut spec, spans } = layer;
    let span_of = |f: Option<Field>| {
        f.and_then(|f| spans.get(&f).cloned())
            .unwrap_or(targets_span.clone())
    };
    anchor_files(&mut spec, base);
    if spec.oauth_grant == Some(mxtrace_proto::spec::OAuthGrant::Device) {
        return Err(at.error(
            &span_of(Some(Field::OAuthGrant)),
            ConfigProblem::DeviceGrant,
        ));
    }
    if spec.auth_user.is_some()
        && spec.auth_password_env.is_none()
        && spec.auth_password_file.is_none()
        && spec.oauth_source().is_none()
    {
        return Err(at.error(&span_of(Some(Field::AuthUser)), ConfigProblem::NoPassword));
    }
    check_spec(&spec).map_err(|source| {
        let span = span_of(source.field());
        let module = name.to_string();
        at.error(&span, ConfigProblem::Setting { module, source })
    })?;
    Ok(spec)
}

/// A module's `expect`, read as a scenario file hop's. A scrape's target may be a domain, so
/// the walk's keys are accepted; the two checks that need a session of their own are not
/// (a scrape runs one probe or trace): `mxtrace run` makes them.
fn module_expect(at: &Locator<'_>, e: &Spanned<RawExpect>) -> Result<Expectations, ConfigError> {
    let x = expectations(at, e.get_ref(), &HopTarget::Domain(String::new()))
        .map_err(FileError::widen)?;
    let x = roundtrip_expectations(at, e.get_ref(), None, x).map_err(FileError::widen)?;
    if x.open_relay.is_some() || x.starttls == Some(StartTlsExpect::Required) {
        return Err(at.error(&e.span(), ConfigProblem::ExpectNeedsSession));
    }
    Ok(x)
}

/// Every check a probe would make, at load: values, the password (read once, then dropped)
/// and the TLS files. A TLS file's error names the file's own setting when it has one.
fn check_spec(spec: &SessionSpec) -> Result<(), SettingError> {
    let o = ProbeOptions::from_spec(spec, "mxtrace.invalid".to_string(), spec.port_or_default())?;
    if spec.tls_ca_file.is_some() || spec.tls_client_cert.is_some() {
        mxtrace_net::tls::client_config(&o.tls)?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    max_concurrency: Option<Spanned<usize>>,
    header_timeout: Option<Spanned<String>>,
    idle_timeout: Option<Spanned<String>>,
    max_connections: Option<Spanned<usize>>,
    max_request_bytes: Option<Spanned<usize>>,
    #[serde(default)]
    modules: BTreeMap<String, RawModule>,
    #[serde(default)]
    roundtrips: BTreeMap<String, RawRoundtrip>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModule {
    allowed_targets: Spanned<Vec<String>>,
    scenario: Option<Spanned<String>>,
    hop: Option<Spanned<u8>>,
    tenant: Option<Spanned<String>>,
    expect: Option<Spanned<RawExpect>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxtrace_proto::spec::StartTls;

    fn load(text: &str) -> Result<ExporterConfig, ConfigError> {
        parse(text, Path::new("exp.toml"), Path::new("/etc/mxtrace"))
    }

    const GOOD: &str = r#"
listen = "127.0.0.1:9200"
max_concurrency = 3
[modules.eop_inbound]
allowed_targets = ["contoso.com", "*.contoso.com", "192.0.2.0/24"]
from = "probe@fabrikam.com"
rcpt = ["user@contoso.com"]
starttls = "require"
stage_timeout = "20s"
scenario = "B"
hop = 2
tenant = "contoso"
[modules.smarthost]
allowed_targets = ["mail.contoso.com"]
"#;

    #[test]
    fn modules_split_into_exporter_keys_and_session_settings() {
        let c = load(GOOD).unwrap();
        assert_eq!(c.listen_addr(None), "127.0.0.1:9200".parse().unwrap());
        assert_eq!(c.max_concurrency, 3);
        let m = c.module("eop_inbound").unwrap();
        assert_eq!(m.spec().starttls, Some(StartTls::Require));
        assert_eq!(
            m.spec().rcpt.as_deref(),
            Some(&["user@contoso.com".to_string()][..])
        );
        assert_eq!(m.ctx.hop, Some(2));
        assert_eq!(m.tenant.as_deref(), Some("contoso.mail.onmicrosoft.com"));
        let s = c.module("smarthost").unwrap();
        assert_eq!(s.spec(), &SessionSpec::default());
        assert_eq!(
            load("[modules.m]\nallowed_targets = [\"a.example\"]\n")
                .unwrap()
                .listen_addr(None),
            DEFAULT_LISTEN.parse().unwrap()
        );
    }

    #[test]
    fn http_limits_have_defaults_and_are_checked() {
        let m = "[modules.m]\nallowed_targets = [\"a.example\"]\n";
        assert_eq!(load(m).unwrap().http, HttpLimits::default());
        let set = format!(
            "header_timeout = \"2s\"\nidle_timeout = \"500ms\"\nmax_connections = 3\n\
             max_request_bytes = 9000\n{m}"
        );
        let l = load(&set).unwrap().http;
        assert_eq!(l.header_timeout, Duration::from_secs(2));
        assert_eq!(l.idle_timeout, Duration::from_millis(500));
        assert_eq!((l.max_connections, l.max_request_bytes), (3, 9000));
        for (bad, want) in [
            (
                "header_timeout = \"0s\"",
                "exp.toml:1:18: header_timeout \"0s\": must be more than zero",
            ),
            (
                "idle_timeout = \"soon\"",
                "exp.toml:1:16: idle_timeout \"soon\": ",
            ),
            (
                "max_connections = 0",
                "exp.toml:1:19: max_connections: 1-65536",
            ),
            (
                "max_request_bytes = 100",
                "exp.toml:1:21: max_request_bytes: 8192-1048576",
            ),
        ] {
            let e = load(&format!("{bad}\n{m}")).unwrap_err().to_string();
            assert!(e.starts_with(want), "{bad}: {e}");
        }
    }

    #[test]
    fn a_port_or_an_address_is_probed_a_domain_traced() {
        let c = load(GOOD).unwrap();
        let m = c.module("eop_inbound").unwrap();
        match m.job("mail.contoso.com:2525").unwrap() {
            Job::Probe(o) => {
                assert_eq!((o.host.as_str(), o.port), ("mail.contoso.com", 2525));
                assert_eq!(o.ctx.hop, Some(2));
            }
            j => panic!("{j:?}"),
        }
        assert!(matches!(m.job("192.0.2.9").unwrap(), Job::Probe(o) if o.port == 25));
        match m
            .job_within("contoso.com", Some(Duration::from_secs(4)))
            .unwrap()
        {
            Job::Trace(o) => {
                assert_eq!(o.domain, "contoso.com");
                assert_eq!(o.probe.stage_timeout, Duration::from_secs(4));
                assert_eq!(o.dns_timeout, Duration::from_secs(4));
                assert_eq!(o.tenant.as_deref(), Some("contoso.mail.onmicrosoft.com"));
            }
            j => panic!("{j:?}"),
        }
        for bad in ["fabrikam.com", "192.0.3.1:25", "contoso.com.evil.example"] {
            let e = m.job(bad).unwrap_err();
            assert!(matches!(e, JobError::NotAllowed { .. }), "{bad}: {e}");
        }
        assert!(matches!(m.job("a b"), Err(JobError::Target(_))));
    }

    #[test]
    fn data_is_opt_in() {
        let c = load(GOOD).unwrap();
        let Job::Probe(o) = c.module("eop_inbound").unwrap().job("192.0.2.1").unwrap() else {
            panic!()
        };
        assert!(!o.data);
        let c = load(
            "[modules.m]\nallowed_targets = [\"127.0.0.1\"]\ndata = true\nrcpt = [\"a@b.example\"]\n",
        )
        .unwrap();
        let Job::Probe(o) = c.module("m").unwrap().job("127.0.0.1").unwrap() else {
            panic!()
        };
        assert!(o.data);
    }

    #[test]
    fn mistakes_say_file_line_and_column() {
        let cases = [
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\nbogus = 1\n",
                "exp.toml:3:1:",
            ),
            (
                "[modules.m]\nallowed_targets = []\n",
                "exp.toml:2:19: module \"m\": allowed_targets is empty",
            ),
            (
                "[modules.m]\nallowed_targets = [\"*\"]\n",
                "exp.toml:2:19: allowed_targets:",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\nport = 0\n",
                "exp.toml:3:8: port 0",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\nrcpt = [\"x\"]\n",
                "exp.toml:3:8: module \"m\": rcpt \"x\"",
            ),
            // Settings are named by their keys, as the config writes them.
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\ndata = true\n",
                "exp.toml:3:8: module \"m\": data needs at least one rcpt",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\nstarttls = \"require\"\n\
                 tls_implicit = true\n",
                "exp.toml:3:12: module \"m\": starttls and tls_implicit exclude each other",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\ntls_ca_file = \"none.pem\"\n",
                "exp.toml:3:15: module \"m\": tls_ca_file /etc/mxtrace/none.pem: ",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\nauth_user = \"u\"\n",
                "exp.toml:3:13: auth_user needs",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\nauth_user = \"u\"\noauth_grant = \"device\"\n",
                "exp.toml:4:15: oauth_grant = \"device\" needs a person at a terminal",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\noauth_token_env = \"T\"\n",
                "exp.toml:3:19: module \"m\": oauth_token_env needs auth_user",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\nrelay_test_rcpt = \"a@b.c\"\n",
                "exp.toml:3:1:",
            ),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\nscenario = \"A\"\nhop = 2\n",
                "exp.toml:4:7: hop = 2",
            ),
            (
                "listen = \"localhost\"\n[modules.m]\nallowed_targets = [\"a\"]\n",
                "exp.toml:1:10: listen",
            ),
            (
                "max_concurrency = 0\n[modules.m]\nallowed_targets = [\"a\"]\n",
                "exp.toml:1:19: max_concurrency",
            ),
            (
                "listen = \"127.0.0.1:1\"\n",
                "exp.toml:1:1: no [modules.NAME]",
            ),
            ("[modules.m]\nfrom = \"a@b.example\"\n", "exp.toml:1:1:"),
            (
                "[modules.m]\nallowed_targets = [\"a.example\"]\n[modules.m.expect]\n\
                 roundtrip.delivered = true\n",
                "exp.toml:4:1: roundtrip.* expectations need a [hop.roundtrip] table",
            ),
            // A round trip's mailbox logs in with a token from the table's OAuth settings;
            // without auth_user they are the mailbox's alone, so the grant must be whole.
            (
                "[roundtrips.r]\nrcpt = \"u@contoso.test\"\nmailbox = \"imaps://u@contoso.test@h\"\n\
                 mailbox_oauth = true\noauth_tenant = \"contoso.onmicrosoft.com\"\n\
                 oauth_client_id = \"id\"\n",
                "exp.toml:5:16: oauth_tenant needs oauth_client_secret_env",
            ),
            (
                "[roundtrips.r]\nrcpt = \"u@contoso.test\"\nmailbox = \"imaps://u@contoso.test@h\"\n\
                 mailbox_oauth_token_env = \"PATH\"\noauth_grant = \"device\"\n",
                "exp.toml:5:15: oauth_grant = \"device\" needs a person",
            ),
        ];
        for (text, want) in cases {
            let e = load(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}\n got {e}\nwant {want}");
        }
    }

    #[test]
    fn a_round_trip_mailbox_takes_the_tables_grant() {
        use crate::roundtrip::MailboxLogin;
        use crate::scenario_file::roundtrip::LoginSpec;
        let c = load(
            "[roundtrips.r]\nrcpt = \"u@contoso.test\"\nmailbox = \"imaps://u@contoso.test@h\"\n\
             mailbox_oauth = true\noauth_tenant = \"contoso.onmicrosoft.com\"\n\
             oauth_client_id = \"id\"\noauth_client_secret_env = \"PATH\"\n",
        )
        .unwrap();
        let spec = &c.roundtrips["r"].spec;
        assert!(matches!(spec.mailbox.login, LoginSpec::Shared));
        let o = spec.options().unwrap();
        assert!(matches!(o.mailbox.login, MailboxLogin::OAuth { .. }));
        // No auth_user: the message goes without AUTH; the grant is the mailbox's.
        let crate::job::Job::Trace(t) = &o.send else {
            panic!("no via: the recipient domain's MX");
        };
        assert!(t.probe.auth.is_none());
    }

    #[test]
    fn expect_is_read_as_a_scenario_hops() {
        let c = load(
            "[modules.m]\nallowed_targets = [\"a.example\"]\n[modules.m.expect]\n\
             passes = false\nmx_matches = \"*.example\"\nstage.rcpt_to = \"accepted\"\n\
             latency.total = \"2s\"\n",
        )
        .unwrap();
        let e = c.module("m").unwrap().expect.as_ref().unwrap();
        assert_eq!(e.passes, Some(false));
        assert_eq!(e.mx_matches.as_deref(), Some("*.example"));
        assert_eq!(e.stages.len(), 1);
        assert_eq!(e.latency.len(), 1);
        assert!(load(GOOD)
            .unwrap()
            .module("smarthost")
            .unwrap()
            .expect
            .is_none());
        let base = "[modules.m]\nallowed_targets = [\"a.example\"]\n[modules.m.expect]\n";
        for (bad, want) in [
            ("bogus = 1\n", "exp.toml:4:1:"),
            ("stage.rcpt_to = \"nope\"\n", "exp.toml:4:17:"),
            ("open_relay = false\n", "exp.toml:3:1: expect: open_relay"),
            (
                "starttls = \"required\"\n",
                "exp.toml:3:1: expect: open_relay",
            ),
        ] {
            let e = load(&format!("{base}{bad}")).unwrap_err().to_string();
            assert!(e.starts_with(want), "{bad:?}\n got {e}\nwant {want}");
        }
    }

    #[test]
    fn passwords_come_from_a_variable_or_a_file_and_are_checked_at_load() {
        let e = load(
            "[modules.m]\nallowed_targets = [\"a.example\"]\nauth_user = \"u\"\n\
             auth_password_env = \"MXTRACE_TEST_UNSET_VARIABLE_0\"\n",
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("MXTRACE_TEST_UNSET_VARIABLE_0 is not set"),
            "{e}"
        );
        let e = load(
            "[modules.m]\nallowed_targets = [\"a.example\"]\nauth_user = \"u\"\n\
             auth_password_file = \"no-such-file\"\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("/etc/mxtrace/no-such-file"), "{e}");
    }
}

#[cfg(test)]
mod example_tests {
    #[test]
    fn the_shipped_example_loads() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../monitoring/mxtrace-exporter.toml");
        let c = super::ExporterConfig::read(&p).unwrap();
        assert_eq!(c.listen_addr(None).to_string(), super::DEFAULT_LISTEN);
        assert!(c.module("eop_inbound").is_some() && c.module("smarthost").is_some());
        let e = c.module("eop_inbound").and_then(|m| m.expect.as_ref());
        assert!(e.is_some_and(|e| e.tls_verified == Some(true) && e.stages.len() == 1));
    }
}
