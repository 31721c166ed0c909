//! Scenario files (`mxtrace run FILE.toml`): the hops of a delivery path and what must be true
//! of each, in TOML. See `scenarios/` for commented examples and docs/run.md#scenario-files
//! for the reference. (A "scenario" alone is one of the delivery scenarios A-D, `mxtrace_knowledge::Scenario`;
//! hence the module's name.)
//!
//! Loading is all-or-nothing and happens before anything touches the network: syntax, unknown
//! keys (typos), names (categories, stages, scenario letters), durations, ports, addresses and
//! TLS files are checked here, and every mistake is reported as `FILE:LINE:COL: what` (exit 2).
//! Values are validated while TOML deserializes them, so the parser's span points at the value;
//! checks that need several keys run afterwards and point at the key they are about.

pub mod roundtrip;

use crate::job::{Job, Target};
use crate::probe::ProbeOptions;
use crate::trace::TraceOptions;
use mxtrace_knowledge::{Category, PathContext, Scenario};
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::EnhancedCode;
use mxtrace_proto::spec::{
    check_domain, parse_scenario, parse_target, path_context, Field, Naming, SessionSpec,
    SpecError, COMMAND_LINE_ONLY,
};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::de::{DeTable, DeValue};
use toml::Spanned;

mod problem;
use problem::ValueProblem;
pub use problem::{line_col, FileError, FileProblem};
pub(crate) use problem::{read_small, Locator};

/// The outside address of the open-relay check when the file names none: `.invalid` (RFC
/// 2606) can never be delivered to, so a relay that accepts it still sends nothing.
pub const DEFAULT_RELAY_TEST_RCPT: &str = "mxtrace-relay-test@example.invalid";

/// A loaded, checked scenario file.
#[derive(Debug, Clone)]
pub struct ScenarioFile {
    /// The path as the user gave it.
    pub path: PathBuf,
    pub name: String,
    pub description: Option<String>,
    pub scenario: Option<Scenario>,
    pub tenant: Option<String>,
    pub hops: Vec<HopSpec>,
}

impl ScenarioFile {
    /// The file name without directory and `.toml`, for JUnit class names.
    pub fn stem(&self) -> String {
        self.path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".to_string())
    }
}

#[derive(Debug, Clone)]
pub struct HopSpec {
    pub name: String,
    /// The scenario hop (1, or 2 in B and D); 1 when the file names no scenario.
    pub hop: u8,
    pub ctx: PathContext,
    pub target: HopTarget,
    /// Every session setting, layers merged (command line over hop over `[defaults]`), checked;
    /// the password is read by `prepare`, not here.
    pub session: SessionSpec,
    /// The outside address of the open-relay check.
    pub relay_test_rcpt: String,
    pub expect: Expectations,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HopTarget {
    /// Walk the domain's MX hosts as a sending MTA does (`trace`).
    Domain(String),
    /// Probe each host (`probe`), in order.
    Hosts(Vec<(String, u16)>),
}

/// What must be true of a hop. Every set field is one expectation (one JUnit test case).
#[derive(Debug, Clone, Default)]
pub struct Expectations {
    pub passes: Option<bool>,
    pub mx_matches: Option<String>,
    pub reachable: Option<bool>,
    pub starttls: Option<StartTlsExpect>,
    pub tls_verified: Option<bool>,
    pub certificate_name: Option<String>,
    pub certificate_min_days: Option<u32>,
    /// In stage order.
    pub stages: Vec<(Stage, ReplyExpect)>,
    /// In stage order, then `dns`, then `total`.
    pub latency: Vec<(LatencyKey, Duration)>,
    /// Only `false` (must not be an open relay) is accepted.
    pub open_relay: Option<bool>,
}

impl Expectations {
    fn is_empty(&self) -> bool {
        self.passes.is_none()
            && self.mx_matches.is_none()
            && self.reachable.is_none()
            && self.starttls.is_none()
            && self.tls_verified.is_none()
            && self.certificate_name.is_none()
            && self.certificate_min_days.is_none()
            && self.stages.is_empty()
            && self.latency.is_empty()
            && self.open_relay.is_none()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartTlsExpect {
    /// EHLO lists STARTTLS.
    Offered,
    /// EHLO does not list STARTTLS (a listener that must stay plain, or a middlebox check).
    NotOffered,
    /// STARTTLS and the handshake succeeded.
    Negotiated,
    /// A session without TLS is refused before RCPT (`tls_required`): checked by an extra
    /// plaintext probe.
    Required,
}

impl StartTlsExpect {
    pub fn as_str(self) -> &'static str {
        match self {
            StartTlsExpect::Offered => "offered",
            StartTlsExpect::NotOffered => "not_offered",
            StartTlsExpect::Negotiated => "negotiated",
            StartTlsExpect::Required => "required",
        }
    }
}

/// The reply expected at a stage: each given part must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplyExpect {
    pub category: Option<Category>,
    pub code: Option<u16>,
    pub enhanced: Option<String>,
}

impl std::fmt::Display for ReplyExpect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if let Some(c) = self.code {
            parts.push(c.to_string());
        }
        if let Some(e) = &self.enhanced {
            parts.push(e.clone());
        }
        if let Some(c) = self.category {
            parts.push(c.as_str().to_string());
        }
        f.write_str(&parts.join(" "))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyKey {
    Stage(Stage),
    /// A domain hop's DNS lookups (MX, addresses, PTR).
    Dns,
    /// The whole probe, connect to QUIT.
    Total,
}

impl LatencyKey {
    pub fn as_str(self) -> &'static str {
        match self {
            LatencyKey::Stage(s) => s.as_str(),
            LatencyKey::Dns => "dns",
            LatencyKey::Total => "total",
        }
    }

    fn order(self) -> usize {
        match self {
            LatencyKey::Stage(s) => stage_order(s),
            LatencyKey::Dns => Stage::ALL.len(),
            LatencyKey::Total => Stage::ALL.len() + 1,
        }
    }
}

fn stage_order(s: Stage) -> usize {
    Stage::ALL.iter().position(|x| *x == s).unwrap_or(0)
}

/// A stage as a scenario file names it: the JSON names exactly (`connect` is the TCP
/// connection), else the short forms of `explain --stage` (`mail`, `rcpt`, `eod`).
fn parse_stage(s: &str) -> Option<Stage> {
    Stage::ALL
        .into_iter()
        .find(|st| st.as_str() == s)
        .or_else(|| Stage::from_user(s))
}

/// Reads, parses and checks a scenario file; `overrides` (the command line) replace the
/// file's settings in every hop.
pub fn load(path: &Path, overrides: &SessionSpec) -> Result<ScenarioFile, FileError> {
    let text = read_small(path, "a scenario file")?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse(&text, path, &base, overrides)
}

/// One layer of settings as written (`[defaults]` or a `[[hop]]`), with where each value is.
#[derive(Debug, Default)]
pub(crate) struct Layer {
    pub(crate) spec: SessionSpec,
    pub(crate) spans: BTreeMap<Field, Range<usize>>,
}

/// The file's own keys, and its setting layers: `[defaults]`, then one per `[[hop]]`.
type Parsed = (RawFile, Layer, Vec<Layer>);

/// Parses the TOML, moving each table's setting keys into a `SessionSpec` layer (the rest,
/// unknown keys included, is for `RawFile`). Values keep their position in errors.
fn read_toml(at: &Locator<'_>, text: &str) -> Result<Parsed, FileError> {
    let terr = |e| at.toml(e);
    let mut doc = DeTable::parse(text).map_err(terr)?;
    let defaults = match doc.get_mut().get_mut("defaults") {
        Some(v) => take_layer(v, FILE_KEYS).map_err(terr)?,
        None => Layer::default(),
    };
    let mut hops = Vec::new();
    if let Some(v) = doc.get_mut().get_mut("hop") {
        if let DeValue::Array(list) = v.get_mut() {
            for h in list.iter_mut() {
                hops.push(take_layer(h, FILE_KEYS).map_err(terr)?);
            }
        }
    }
    let raw = RawFile::deserialize(toml::de::Deserializer::from(doc)).map_err(terr)?;
    Ok((raw, defaults, hops))
}

/// The settings a scenario file may write.
fn file_keys(f: Field) -> bool {
    !COMMAND_LINE_ONLY.contains(&f)
}
const FILE_KEYS: &dyn Fn(Field) -> bool = &file_keys;

/// Moves the setting keys `keep` accepts out of the table `v` into a layer (the exporter's
/// modules use it too, with their own list of keys).
pub(crate) fn take_layer(
    v: &mut Spanned<DeValue<'_>>,
    keep: &dyn Fn(Field) -> bool,
) -> Result<Layer, toml::de::Error> {
    let span = v.span();
    let DeValue::Table(table) = v.get_mut() else {
        // Not a table: left for RawFile, whose deserializer says so.
        return Ok(Layer::default());
    };
    let mut settings = DeTable::new();
    let mut spans = BTreeMap::new();
    for f in Field::ALL.iter().filter(|f| keep(**f)) {
        if let Some((k, val)) = table.remove_entry(f.key()) {
            spans.insert(*f, val.span());
            settings.insert(k, val);
        }
    }
    let spec =
        SessionSpec::deserialize(toml::de::Deserializer::from(Spanned::new(span, settings)))?;
    Ok(Layer { spec, spans })
}

/// Parses and checks scenario text; `base` is the directory relative TLS paths are resolved
/// against (the file's own).
pub fn parse(
    text: &str,
    path: &Path,
    base: &Path,
    overrides: &SessionSpec,
) -> Result<ScenarioFile, FileError> {
    let at = Locator {
        text,
        path: path.display().to_string(),
    };
    let (raw, defaults, layers) = read_toml(&at, text)?;
    let scenario = raw.scenario.as_ref().map(|s| s.get_ref().0);
    let tenant = raw
        .tenant
        .as_ref()
        .map(|t| tenant_key(&at, t))
        .transpose()?;
    if raw.hop.is_empty() {
        return Err(at.error(&(0..0), FileProblem::NoHop));
    }
    let mut names = HashSet::new();
    let mut hops = Vec::new();
    for (h, layer) in raw.hop.iter().zip(layers) {
        let name = h.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(at.error(&h.name.span(), FileProblem::EmptyHopName));
        }
        if !names.insert(name.clone()) {
            return Err(at.error(&h.name.span(), FileProblem::DuplicateHop(name)));
        }
        let file = FileContext {
            at: &at,
            scenario,
            tenant: tenant.as_deref(),
            base,
            overrides,
            defaults: &defaults,
        };
        hops.push(hop_spec(&file, h, &name, layer)?);
    }
    Ok(ScenarioFile {
        path: path.to_path_buf(),
        name: raw.name.trim().to_string(),
        description: raw.description.clone(),
        scenario,
        tenant,
        hops,
    })
}

/// A `tenant` key (scenario files, exporter modules): the tenant's routing domain.
pub(crate) fn tenant_key(at: &Locator<'_>, t: &Spanned<String>) -> Result<String, FileError> {
    mxtrace_knowledge::tenant_routing_domain(t.get_ref())
        .ok_or_else(|| at.error(&t.span(), FileProblem::Tenant(t.get_ref().clone())))
}

/// What every hop of a file shares.
struct FileContext<'a> {
    at: &'a Locator<'a>,
    scenario: Option<Scenario>,
    tenant: Option<&'a str>,
    base: &'a Path,
    overrides: &'a SessionSpec,
    defaults: &'a Layer,
}

/// One hop's settings: the layers merged, and where each value was written.
struct HopSettings<'a> {
    file: &'a FileContext<'a>,
    hop: &'a Layer,
    name_span: Range<usize>,
}

impl HopSettings<'_> {
    /// Where `field`'s value was written: the hop, else `[defaults]`, else the hop's name
    /// (a value from the command line).
    fn span(&self, field: Field) -> Range<usize> {
        self.hop
            .spans
            .get(&field)
            .or_else(|| self.file.defaults.spans.get(&field))
            .cloned()
            .unwrap_or_else(|| self.name_span.clone())
    }

    fn error(&self, field: Field, problem: FileProblem) -> FileError {
        self.file.at.error(&self.span(field), problem)
    }

    fn spec_error(&self, e: SpecError) -> FileError {
        let span = e.field().map_or(self.name_span.clone(), |f| self.span(f));
        self.file.at.error(&span, FileProblem::Setting(e))
    }
}

fn hop_spec(
    file: &FileContext<'_>,
    h: &RawHop,
    name: &str,
    layer: Layer,
) -> Result<HopSpec, FileError> {
    let at = file.at;
    let name_span = h.name.span();
    let hop_no = h.hop.as_ref().map(|s| *s.get_ref());
    let hop_span = h
        .hop
        .as_ref()
        .map(Spanned::span)
        .unwrap_or(name_span.clone());
    let ctx = path_context(file.scenario, hop_no)
        .map_err(|e| at.error(&hop_span, FileProblem::Hop(e)))?;
    if file.scenario.is_none() && hop_no.is_some_and(|n| !(1..=2).contains(&n)) {
        return Err(at.error(&hop_span, FileProblem::HopNumber));
    }
    let settings = HopSettings {
        file,
        hop: &layer,
        name_span: name_span.clone(),
    };
    let mut session = file
        .overrides
        .clone()
        .or(&layer.spec.clone().or(&file.defaults.spec));
    let target = hop_target(&settings, h, name, &ctx, &session)?;
    resolve_files(&settings, &mut session)?;
    check_session(&settings, &session)?;
    let relay_test_rcpt = session
        .relay_test_rcpt
        .clone()
        .unwrap_or_else(|| DEFAULT_RELAY_TEST_RCPT.to_string());
    let expect = expectations(at, &h.expect, &target)?;
    Ok(HopSpec {
        name: name.to_string(),
        hop: ctx.hop.or(hop_no).unwrap_or(1),
        ctx,
        target,
        session,
        relay_test_rcpt,
        expect,
    })
}

/// The domain to walk or the hosts to probe. `--port` replaces every port, those written as
/// `host:port` included.
fn hop_target(
    s: &HopSettings<'_>,
    h: &RawHop,
    name: &str,
    ctx: &PathContext,
    session: &SessionSpec,
) -> Result<HopTarget, FileError> {
    let at = s.file.at;
    let port = session.port_or_default();
    Ok(match (&h.domain, &h.hosts) {
        (Some(d), Some(hs)) => {
            let span = hs.span().start.max(d.span().start);
            return Err(at.error(&(span..span), FileProblem::DomainAndHosts));
        }
        (Some(d), None) => HopTarget::Domain(
            check_domain(d.get_ref()).map_err(|e| at.error(&d.span(), FileProblem::Target(e)))?,
        ),
        (None, Some(hs)) => {
            if hs.get_ref().is_empty() {
                return Err(at.error(&hs.span(), FileProblem::NoHosts));
            }
            let mut list = Vec::new();
            for t in hs.get_ref() {
                let (host, p) = parse_target(t, port)
                    .map_err(|e| at.error(&hs.span(), FileProblem::Target(e)))?;
                list.push((host, s.file.overrides.port.unwrap_or(p)));
            }
            HopTarget::Hosts(list)
        }
        (None, None) => match (s.file.scenario, ctx.hop, s.file.tenant) {
            // Scenario B hop 2 goes to the tenant's routing domain by definition.
            (Some(Scenario::B), Some(2), Some(t)) => HopTarget::Domain(t.to_string()),
            _ => return Err(at.error(&s.name_span, FileProblem::NoTarget(name.to_string()))),
        },
    })
}

/// TLS and OAuth certificate files named in the file are relative to it and must exist (a `--tls-ca-file` override
/// is taken as given).
fn resolve_files(s: &HopSettings<'_>, session: &mut SessionSpec) -> Result<(), FileError> {
    let fields = [
        Field::TlsCaFile,
        Field::TlsClientCert,
        Field::TlsClientKey,
        Field::OAuthClientCert,
        Field::OAuthClientKey,
    ];
    for field in fields {
        let slot = match field {
            Field::TlsCaFile => &mut session.tls_ca_file,
            Field::TlsClientCert => &mut session.tls_client_cert,
            Field::OAuthClientCert => &mut session.oauth_client_cert,
            Field::OAuthClientKey => &mut session.oauth_client_key,
            _ => &mut session.tls_client_key,
        };
        let from_command_line = field == Field::TlsCaFile && s.file.overrides.tls_ca_file.is_some();
        if let (Some(p), false) = (slot.as_mut(), from_command_line) {
            let full: PathBuf = s.file.base.join(&*p);
            if !full.is_file() {
                return Err(s.error(field, FileProblem::NoSuchFile(full)));
            }
            *p = full;
        }
    }
    Ok(())
}

/// The checks `probe` makes of its flags, without reading the password yet, and the TLS files
/// loaded once; errors point at the key.
fn check_session(s: &HopSettings<'_>, session: &SessionSpec) -> Result<(), FileError> {
    let secret_source = session.auth_password_env.is_some() || session.oauth_source().is_some();
    if session.auth_user.is_some() && !secret_source {
        return Err(s.error(Field::AuthUser, FileProblem::NoPasswordVariable));
    }
    session.validate(None).map_err(|e| s.spec_error(e))?;
    if session.tls_ca_file.is_some() || session.tls_client_cert.is_some() {
        let spec = SessionSpec {
            auth_user: None,
            ..session.clone()
        };
        let probe =
            ProbeOptions::from_spec(&spec, "mxtrace.invalid".to_string(), spec.port_or_default())
                .map_err(|e| s.spec_error(e))?;
        mxtrace_net::tls::client_config(&probe.tls).map_err(|e| {
            let field = e.field().unwrap_or(match session.tls_client_cert {
                Some(_) => Field::TlsClientCert,
                None => Field::TlsCaFile,
            });
            s.error(field, FileProblem::TlsFile(e))
        })?;
    }
    Ok(())
}

/// Checks a hop's `expect` table (the exporter's modules use it too).
pub(crate) fn expectations(
    at: &Locator<'_>,
    e: &RawExpect,
    target: &HopTarget,
) -> Result<Expectations, FileError> {
    let mx_matches = match &e.mx_matches {
        None => None,
        Some(g) => {
            if !matches!(target, HopTarget::Domain(_)) {
                return Err(at.error(&g.span(), FileProblem::MxMatchesNeedsDomain));
            }
            Some(g.get_ref().0.clone())
        }
    };
    let open_relay = match &e.open_relay {
        None => None,
        Some(v) if !*v.get_ref() => Some(false),
        Some(v) => return Err(at.error(&v.span(), FileProblem::OpenRelayExpected)),
    };
    let mut stages: Vec<(Stage, ReplyExpect)> =
        e.stage.iter().map(|(k, v)| (k.1, v.clone())).collect();
    stages.sort_by_key(|(s, _)| stage_order(*s));
    let mut latency = Vec::new();
    for (k, v) in &e.latency {
        let key = k.get_ref().0;
        if key == LatencyKey::Dns && !matches!(target, HopTarget::Domain(_)) {
            return Err(at.error(&k.span(), FileProblem::LatencyDnsNeedsDomain));
        }
        latency.push((key, v.0));
    }
    latency.sort_by_key(|(k, _)| k.order());
    let mut out = Expectations {
        passes: e.passes,
        mx_matches,
        reachable: e.reachable,
        starttls: e.starttls,
        tls_verified: e.tls_verified,
        certificate_name: e.certificate_name.as_ref().map(|n| n.0.clone()),
        certificate_min_days: e.certificate_min_days,
        stages,
        latency,
        open_relay,
    };
    // A hop with nothing to check checks that it passes, as `probe`/`trace` would.
    if out.is_empty() {
        out.passes = Some(true);
    }
    Ok(out)
}

/// Builds the engine options of every hop, reading passwords; called once before any hop
/// runs, so a missing password variable stops the run before it touches the network.
#[derive(Debug, Clone)]
pub enum Prepared {
    Trace(Box<TraceOptions>),
    Hosts(Vec<ProbeOptions>),
}

/// A hop whose options could not be built (a password variable not set, most often): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("hop {hop:?}: {}", .source.describe(Naming::Key))]
#[non_exhaustive]
pub struct PrepareError {
    pub hop: String,
    #[source]
    pub source: SpecError,
}

pub fn prepare(hop: &HopSpec) -> Result<Prepared, PrepareError> {
    let err = |source| PrepareError {
        hop: hop.name.clone(),
        source,
    };
    match &hop.target {
        HopTarget::Domain(d) => {
            let t = Target::trace(d).map_err(|e| err(e.into()))?;
            match Job::new(&t, &hop.session, hop.ctx, None, Naming::Key).map_err(err)? {
                Job::Trace(o) => Ok(Prepared::Trace(o)),
                Job::Probe(o) => Ok(Prepared::Hosts(vec![*o])),
            }
        }
        HopTarget::Hosts(hosts) => {
            let mut list = Vec::new();
            for (host, port) in hosts {
                let t = Target::Probe {
                    host: host.clone(),
                    port: *port,
                };
                let job = Job::new(&t, &hop.session, hop.ctx, None, Naming::Key).map_err(err)?;
                if let Job::Probe(o) = job {
                    list.push(*o);
                }
            }
            Ok(Prepared::Hosts(list))
        }
    }
}

// ---- The TOML shape ------------------------------------------------------------------------
// The session settings of `[defaults]` and each `[[hop]]` are taken out first (`read_toml`)
// into `SessionSpec` layers; what is left deserializes here, unknown keys being errors.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: String,
    description: Option<String>,
    scenario: Option<Spanned<ScenarioLetter>>,
    tenant: Option<Spanned<String>>,
    #[serde(default)]
    #[allow(dead_code)] // its settings were taken out; it must be a table with no other key
    defaults: RawDefaults,
    #[serde(default)]
    hop: Vec<RawHop>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDefaults {}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHop {
    name: Spanned<String>,
    hop: Option<Spanned<u8>>,
    domain: Option<Spanned<String>>,
    hosts: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    expect: RawExpect,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    passes: Option<bool>,
    mx_matches: Option<Spanned<Glob>>,
    reachable: Option<bool>,
    starttls: Option<StartTlsExpect>,
    tls_verified: Option<bool>,
    certificate_name: Option<CertName>,
    certificate_min_days: Option<u32>,
    #[serde(default)]
    stage: BTreeMap<StageKey, ReplyExpect>,
    #[serde(default)]
    latency: BTreeMap<Spanned<LatencyKeyName>, Dur>,
    open_relay: Option<Spanned<bool>>,
}

// ---- Values checked while they are read (the parser then reports their position) -----------

/// The problem as the TOML parser reports it (it adds the position).
fn custom<E: de::Error>(problem: ValueProblem) -> E {
    E::custom(problem)
}

/// Deserializes a string and converts it, or fails with the converter's problem.
macro_rules! from_str_value {
    ($name:ident($inner:ty), |$s:ident| $body:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let $s = String::deserialize(d)?;
                let r: Result<$inner, ValueProblem> = $body;
                r.map($name).map_err(custom)
            }
        }
    };
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ScenarioLetter(pub(crate) Scenario);
from_str_value!(ScenarioLetter(Scenario), |s| parse_scenario(&s)
    .map_err(|source| ValueProblem::Scenario { value: s, source }));

#[derive(Debug, Clone, Copy)]
pub(crate) struct Dur(pub(crate) Duration);
from_str_value!(Dur(Duration), |s| mxtrace_proto::spec::parse_duration(&s)
    .map_err(|source| ValueProblem::Duration { value: s, source }));

#[derive(Debug, Clone)]
struct Glob(String);
from_str_value!(Glob(String), |s| {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._*?".contains(&b));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(ValueProblem::Glob(s))
    }
});

#[derive(Debug, Clone)]
struct CertName(String);
from_str_value!(CertName(String), |s| {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._*".contains(&b));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(ValueProblem::CertName(s))
    }
});

/// Ordered by the stage order; the stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StageKey(usize, Stage);

impl PartialOrd for StageKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for StageKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

impl<'de> Deserialize<'de> for StageKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match parse_stage(&s) {
            Some(st) => Ok(StageKey(stage_order(st), st)),
            None => Err(custom(ValueProblem::Stage(s))),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LatencyKeyName(LatencyKey);

impl PartialOrd for LatencyKeyName {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for LatencyKeyName {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.order().cmp(&other.0.order())
    }
}

from_str_value!(LatencyKeyName(LatencyKey), |s| match s.as_str() {
    "dns" => Ok(LatencyKey::Dns),
    "total" => Ok(LatencyKey::Total),
    other => parse_stage(other)
        .map(LatencyKey::Stage)
        .ok_or(ValueProblem::LatencyKey(s)),
});

#[derive(Debug, Clone, Copy)]
struct CategoryName(Category);

impl<'de> Deserialize<'de> for CategoryName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        category(&s).map(CategoryName).map_err(custom)
    }
}

fn category(s: &str) -> Result<Category, ValueProblem> {
    Category::from_name(s).ok_or_else(|| ValueProblem::Category(s.to_string()))
}

#[derive(Debug, Clone, Copy)]
struct ReplyCode(u16);

impl<'de> Deserialize<'de> for ReplyCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = i64::deserialize(d)?;
        u16::try_from(n)
            .ok()
            .filter(|c| (200..=599).contains(c))
            .map(ReplyCode)
            .ok_or_else(|| custom(ValueProblem::Code(n)))
    }
}

#[derive(Debug, Clone)]
struct Enhanced(String);
from_str_value!(Enhanced(String), |s| match EnhancedCode::parse(&s) {
    Some(e) => Ok(e.to_string()),
    None => Err(ValueProblem::Enhanced(s)),
});

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplyDetail {
    category: Option<CategoryName>,
    code: Option<ReplyCode>,
    enhanced: Option<Enhanced>,
}

/// `"accepted"` (a category) or `{ category = "...", code = 250, enhanced = "2.1.5" }`.
impl<'de> Deserialize<'de> for ReplyExpect {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ReplyExpect;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a category such as \"accepted\", or a table such as { code = 250, \
                     enhanced = \"2.1.5\", category = \"accepted\" }",
                )
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ReplyExpect, E> {
                Ok(ReplyExpect {
                    category: Some(category(s).map_err(E::custom)?),
                    ..ReplyExpect::default()
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<ReplyExpect, A::Error> {
                let d = ReplyDetail::deserialize(de::value::MapAccessDeserializer::new(m))?;
                if d.category.is_none() && d.code.is_none() && d.enhanced.is_none() {
                    return Err(de::Error::custom(
                        "give at least one of category, code, enhanced",
                    ));
                }
                Ok(ReplyExpect {
                    category: d.category.map(|c| c.0),
                    code: d.code.map(|c| c.0),
                    enhanced: d.enhanced.map(|e| e.0),
                })
            }
        }
        d.deserialize_any(V)
    }
}

/// Case-insensitive glob: `*` any run of characters (dots included), `?` one character.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_ascii_lowercase().chars().collect();
    let t: Vec<char> = text
        .trim_end_matches('.')
        .to_ascii_lowercase()
        .chars()
        .collect();
    // Iterative matcher with one backtrack point: linear in practice, no recursion.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(&c) if c == '?' || Some(&c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
}

/// A certificate name (SAN) covers `name`: equal, or a `*.` wildcard for exactly one label
/// (RFC 6125 6.4.3).
pub fn cert_name_matches(san: &str, name: &str) -> bool {
    let san = san.trim_end_matches('.').to_ascii_lowercase();
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    if san == name {
        return true;
    }
    match (san.strip_prefix("*."), name.split_once('.')) {
        (Some(suffix), Some((label, rest))) => !label.is_empty() && rest == suffix,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> Result<ScenarioFile, FileError> {
        parse(
            text,
            Path::new("t.toml"),
            Path::new("."),
            &SessionSpec::default(),
        )
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "*.mail.protection.outlook.com",
            "contoso-com.mail.protection.outlook.com"
        ));
        assert!(glob_match(
            "*.MAIL.protection.outlook.com",
            "a.b.mail.protection.outlook.com."
        ));
        assert!(!glob_match(
            "*.mail.protection.outlook.com",
            "mail.protection.outlook.com"
        ));
        assert!(glob_match("mx?.contoso.com", "mx1.contoso.com"));
        assert!(!glob_match("mx?.contoso.com", "mx10.contoso.com"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*b*c", "aXXbYYc"));
        assert!(!glob_match("a*b*c", "aXXbYY"));
    }

    #[test]
    fn certificate_names() {
        assert!(cert_name_matches("mail.contoso.com", "MAIL.contoso.com"));
        assert!(cert_name_matches("*.contoso.com", "mail.contoso.com"));
        assert!(!cert_name_matches("*.contoso.com", "a.mail.contoso.com"));
        assert!(!cert_name_matches("*.contoso.com", "contoso.com"));
    }

    #[test]
    fn line_and_column() {
        assert_eq!(line_col("ab\ncd\n", 0), (1, 1));
        assert_eq!(line_col("ab\ncd\n", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn minimal_file_and_defaults() {
        let f = parse_str(
            "name = \"x\"\nscenario = \"b\"\ntenant = \"contoso\"\n\
             [defaults]\nfrom = \"probe@fabrikam.com\"\nport = 2525\n\
             [[hop]]\nname = \"in\"\ndomain = \"contoso.com\"\n\
             [hop.expect]\nstage.rcpt = \"accepted\"\nlatency = { connect = \"500ms\", total = \"2s\" }\n\
             [[hop]]\nname = \"to eop\"\nhop = 2\n",
        )
        .unwrap();
        assert_eq!(f.scenario, Some(Scenario::B));
        assert_eq!(f.tenant.as_deref(), Some("contoso.mail.onmicrosoft.com"));
        let h = &f.hops[0];
        assert_eq!(h.session.port_or_default(), 2525);
        assert_eq!(h.session.from.as_deref(), Some("probe@fabrikam.com"));
        assert_eq!(h.expect.stages[0].0, Stage::RcptTo);
        assert_eq!(h.expect.latency.len(), 2);
        assert_eq!(
            f.hops[1].target,
            HopTarget::Domain("contoso.mail.onmicrosoft.com".into())
        );
        assert_eq!(
            f.hops[1].expect.passes,
            Some(true),
            "empty expect means passes"
        );
    }

    #[test]
    fn command_line_overrides_win_and_their_errors_point_at_the_hop() {
        let text =
            "name = \"x\"\n[defaults]\nport = 2525\n[[hop]]\nname = \"a\"\nhosts = [\"mx:26\"]\n";
        let mut ov = SessionSpec {
            port: Some(2600),
            ..SessionSpec::default()
        };
        let f = parse(text, Path::new("t.toml"), Path::new("."), &ov).unwrap();
        assert_eq!(
            f.hops[0].target,
            HopTarget::Hosts(vec![("mx".into(), 2600)])
        );
        ov.ehlo = Some("bad name".into());
        let e = parse(text, Path::new("t.toml"), Path::new("."), &ov).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml:5:8: ehlo \"bad name\": not a valid EHLO name"
        );
        assert!(matches!(
            e.spec_error().and_then(SpecError::field),
            Some(Field::Ehlo)
        ));
    }

    #[test]
    fn errors_point_at_the_line() {
        let cases = [
            ("name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"c.com\"\nbogus = 1\n", "t.toml:5:1: unknown field `bogus`"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"c.com\"\nport = 0\n", "t.toml:5:8: port 0"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"c.com\"\nconnect_timeout = \"5 parsecs\"\n", "t.toml:5:19: invalid duration"),
            ("name = \"x\"\nscenario = \"E\"\n[[hop]]\nname = \"a\"\ndomain = \"c.com\"\n", "t.toml:2:12: scenario \"E\""),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"c.com\"\n[hop.expect]\nstage.rcpt = \"acepted\"\n", "t.toml:6:14: unknown category \"acepted\""),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"c.com\"\n[hop.expect]\nstage.rcpx = \"accepted\"\n", "t.toml:6:7: unknown stage \"rcpx\""),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\ndomain = \"c.com\"\n\n[[hop]]\nname = \"b\"\n", "t.toml:7:8: hop \"b\" needs domain"),
            ("name = \"x\"\nscenario = \"A\"\n[[hop]]\nname = \"a\"\nhop = 2\ndomain = \"c.com\"\n", "t.toml:5:7: hop = 2: scenario A has one hop"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx:99999\"]\n", "t.toml:4:9: invalid target"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\nrcpt = [\"nobody\"]\n", "t.toml:5:8: rcpt \"nobody\""),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\n[hop.expect]\nopen_relay = true\n", "t.toml:6:14: open_relay = true"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\n[hop.expect]\nmx_matches = \"*.c.com\"\n", "t.toml:6:14: mx_matches needs a domain hop"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\n[hop.expect]\nstage.rcpt = { code = 250, color = 1 }\n", "unknown field `color`"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\ntls_ca_file = \"nope.pem\"\n", "t.toml:5:15: ./nope.pem: no such file"),
            // A TLS file that does not load is named by its key.
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\ntls_ca_file = \"Cargo.toml\"\n", "t.toml:5:15: tls_ca_file ./Cargo.toml: no PEM certificate found"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\nauth_user = \"u\"\n", "t.toml:5:13: auth_user needs auth_password_env"),
            ("name = \"x\"\n[[hop]\n", "t.toml:2:"),
            ("name = \"x\"\n", "no [[hop]]"),
            // Command-line-only settings are not keys of a file: `run` never sends DATA.
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\ndata = true\n", "t.toml:5:1: unknown field `data`"),
            // A setting from [defaults] is pointed at there.
            ("name = \"x\"\n[defaults]\nehlo = \"a b\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\n", "t.toml:3:8: ehlo \"a b\": not a valid EHLO name"),
            ("name = \"x\"\n[defaults]\nstarttls = \"require\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\ntls_implicit = true\n", "t.toml:3:12: starttls and tls_implicit exclude each other"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\nrelay_test_rcpt = \"x\"\n", "t.toml:5:19: relay_test_rcpt \"x\""),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\nresolver = \"dns.example\"\n", "t.toml:5:12: resolver \"dns.example\": expected IP"),
            // OAuth: tokens and secrets only from variables in a file; the checks name the key.
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\noauth_token_file = \"t\"\n", "t.toml:5:1: unknown field `oauth_token_file`"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\nauth_user = \"u\"\noauth_tenant = \"contoso.onmicrosoft.com\"\n", "oauth_tenant needs oauth_client_id"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\nauth_user = \"u\"\noauth_token_env = \"T\"\nauth_password_env = \"P\"\n", "oauth_token_env and auth_password_env exclude each other"),
        ];
        for (text, want) in cases {
            let e = parse_str(text).expect_err(text).to_string();
            assert!(e.contains(want), "{text:?}\n got: {e}\nwant: {want}");
        }
    }
}
