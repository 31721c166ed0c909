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
use crate::roundtrip::RoundtripOptions;
use crate::trace::TraceOptions;
use mxtrace_knowledge::{Category, PathContext, Scenario};
use mxtrace_proto::model::roundtrip::FolderKind;
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
    /// `[hop.roundtrip]`: a message sent and looked for in a mailbox, after the hop's probes.
    pub roundtrip: Option<roundtrip::RoundtripSpec>,
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
    /// About the hop's round trip (`roundtrip.KEY`), checked after it.
    pub roundtrip: RoundtripExpect,
}

/// What must be true of a hop's round trip. A hop with a round trip and none of these checks
/// that the round trip passes (delivered to the inbox, no error finding).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RoundtripExpect {
    pub passes: Option<bool>,
    /// Found in the mailbox, inbox or Junk (or, with false, not found).
    pub delivered: Option<bool>,
    pub folder: Option<FolderKind>,
    /// Found within this time of the end of DATA (by mxtrace's clock).
    pub within: Option<Duration>,
    /// The scenario (A-D) the delivered copy's Received chain shows.
    pub scenario: Option<Scenario>,
}

impl RoundtripExpect {
    fn is_empty(&self) -> bool {
        *self == RoundtripExpect::default()
    }
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

/// A hop's setting layers: its own, and its `[hop.roundtrip]`'s.
#[derive(Debug, Default)]
struct HopLayers {
    hop: Layer,
    roundtrip: Option<Layer>,
}

/// The file's own keys, and its setting layers: `[defaults]`, then one per `[[hop]]`.
type Parsed = (RawFile, Layer, Vec<HopLayers>);

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
                let hop = take_layer(h, FILE_KEYS).map_err(terr)?;
                let roundtrip = match h.get_mut() {
                    DeValue::Table(t) => match t.get_mut("roundtrip") {
                        Some(rt) => Some(take_layer(rt, RT_FILE_KEYS).map_err(terr)?),
                        None => None,
                    },
                    _ => None,
                };
                hops.push(HopLayers { hop, roundtrip });
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

/// The settings a `[hop.roundtrip]` may write: a file's, and headers (it sends a message).
fn roundtrip_file_keys(f: Field) -> bool {
    roundtrip::session_keys(f) && (file_keys(f) || f == Field::Header)
}
const RT_FILE_KEYS: &dyn Fn(Field) -> bool = &roundtrip_file_keys;

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
    for (h, layers) in raw.hop.iter().zip(layers) {
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
        hops.push(hop_spec(&file, h, &name, layers)?);
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

/// One hop's settings (or its round trip's): the layers merged, and where each value was
/// written.
struct HopSettings<'a> {
    file: &'a FileContext<'a>,
    /// `[hop.roundtrip]`'s own layer, over the hop's, for the round trip's settings.
    roundtrip: Option<&'a Layer>,
    hop: &'a Layer,
    name_span: Range<usize>,
}

impl HopSettings<'_> {
    /// Where `field`'s value was written: the round trip's table, the hop, else
    /// `[defaults]`, else the hop's name (a value from the command line).
    fn span(&self, field: Field) -> Range<usize> {
        self.written(field)
            .unwrap_or_else(|| self.name_span.clone())
    }

    /// Where `field`'s value was written in the file, when it was.
    fn written(&self, field: Field) -> Option<Range<usize>> {
        self.roundtrip
            .and_then(|r| r.spans.get(&field))
            .or_else(|| self.hop.spans.get(&field))
            .or_else(|| self.file.defaults.spans.get(&field))
            .cloned()
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
    layers: HopLayers,
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
    let layer = layers.hop;
    let settings = HopSettings {
        file,
        roundtrip: None,
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
    let roundtrip = match &h.roundtrip {
        Some(raw) => {
            let rt_layer = layers.roundtrip.unwrap_or_default();
            let settings = HopSettings {
                roundtrip: Some(&rt_layer),
                ..settings
            };
            Some(hop_roundtrip(&settings, raw, &target, &h.expect)?)
        }
        None => None,
    };
    let expect = expectations(at, &h.expect, &target)?;
    let expect = roundtrip_expectations(at, &h.expect, roundtrip.as_ref(), expect)?;
    Ok(HopSpec {
        name: name.to_string(),
        hop: ctx.hop.or(hop_no).unwrap_or(1),
        ctx,
        target,
        session,
        relay_test_rcpt,
        expect,
        roundtrip,
    })
}

/// A hop's `[hop.roundtrip]`: its settings over the hop's (the command line over both), sent
/// where the hop probes unless it says `via`, waiting `within` (else the `roundtrip.within`
/// expectation, else 5 minutes). Secrets from variables only, as everywhere in the file.
fn hop_roundtrip(
    s: &HopSettings<'_>,
    raw: &roundtrip::RawRoundtrip,
    target: &HopTarget,
    expect: &RawExpect,
) -> Result<roundtrip::RoundtripSpec, FileError> {
    let at = s.file.at;
    if let Some(i) = &raw.interval {
        return Err(at.error(&i.span(), FileProblem::RoundtripIntervalInFile));
    }
    for (key, key_env, f) in [
        (
            "mailbox_password_file",
            "mailbox_password_env",
            &raw.mailbox_password_file,
        ),
        (
            "mailbox_oauth_token_file",
            "mailbox_oauth_token_env",
            &raw.mailbox_oauth_token_file,
        ),
        (
            "ndr_mailbox_password_file",
            "ndr_mailbox_password_env",
            &raw.ndr_mailbox_password_file,
        ),
        (
            "ndr_mailbox_oauth_token_file",
            "ndr_mailbox_oauth_token_env",
            &raw.ndr_mailbox_oauth_token_file,
        ),
    ] {
        if let Some(f) = f {
            return Err(at.error(&f.span(), FileProblem::SecretFile { key, key_env }));
        }
    }
    let rt = s.roundtrip.map(|r| &r.spec).cloned().unwrap_or_default();
    let hop = s.hop.spec.clone().or(&s.file.defaults.spec);
    let mut session = s.file.overrides.clone().or(&rt.or(&hop));
    // The hop's recipients are its probes'; the round trip has its own.
    session.rcpt = None;
    resolve_files(s, &mut session)?;
    let default_via = match target {
        HopTarget::Domain(d) => Target::trace(d).ok(),
        HopTarget::Hosts(list) => list.first().map(|(host, port)| Target::Probe {
            host: host.clone(),
            port: *port,
        }),
    };
    let span_of = |f: Field| s.written(f);
    let cx = roundtrip::TableContext {
        at,
        base: s.file.base,
        span_of: &span_of,
        default_via,
        read_secrets: false,
    };
    let sending = crate::roundtrip::sending_session(session.clone(), raw.shares_oauth());
    check_session(s, &sending)?;
    let mut spec = roundtrip::read(&cx, raw, session)?;
    let budget = expect.roundtrip.as_ref().and_then(|r| r.get_ref().within);
    if let (None, Some(b)) = (&raw.within, budget) {
        spec.within = b.0;
    }
    Ok(spec)
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
    // Secrets' files are not keys of a scenario file (variables only), so these are the
    // certificate files; --tls-ca-file from the command line is already the user's path.
    for (field, slot) in session.files_mut() {
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
        roundtrip: RoundtripExpect::default(),
    };
    // A hop with nothing to check checks that it passes, as `probe`/`trace` would.
    if out.is_empty() {
        out.passes = Some(true);
    }
    Ok(out)
}

/// The `roundtrip.KEY` expectations of a hop whose round trip is `rt` (None: the table has
/// none, or an exporter module, which has none either).
pub(crate) fn roundtrip_expectations(
    at: &Locator<'_>,
    e: &RawExpect,
    rt: Option<&roundtrip::RoundtripSpec>,
    mut out: Expectations,
) -> Result<Expectations, FileError> {
    let raw = e.roundtrip.as_ref();
    let Some(rt) = rt else {
        return match raw {
            Some(r) => Err(at.error(&r.span(), FileProblem::RoundtripExpectWithoutTable)),
            None => Ok(out),
        };
    };
    if let Some(r) = raw {
        let x = r.get_ref();
        if let Some(w) = x.within.filter(|w| w.0 > rt.within) {
            let problem = FileProblem::RoundtripWithinTooLong {
                budget: humantime::format_duration(w.0).to_string(),
                wait: humantime::format_duration(rt.within).to_string(),
            };
            return Err(at.error(&r.span(), problem));
        }
        out.roundtrip = RoundtripExpect {
            passes: x.passes,
            delivered: x.delivered,
            folder: x.folder.map(|f| f.0),
            within: x.within.map(|w| w.0),
            scenario: x.scenario.map(|s| s.0),
        };
    }
    if out.roundtrip.is_empty() {
        out.roundtrip.passes = Some(true);
    }
    Ok(out)
}

/// A hop's engine options, passwords read: built for every hop before any runs, so a
/// missing password variable stops the run before it touches the network.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub job: HopJob,
    /// The round trip's options, its passwords read (its tokens are had when it runs).
    pub roundtrip: Option<Box<RoundtripOptions>>,
}

#[derive(Debug, Clone)]
pub enum HopJob {
    Trace(Box<TraceOptions>),
    Hosts(Vec<ProbeOptions>),
}

/// A hop whose options could not be built (a password variable not set, most often): exit 2.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrepareError {
    #[error("hop {hop:?}: {}", .source.describe(Naming::Key))]
    Session {
        hop: String,
        #[source]
        source: SpecError,
    },
    #[error("hop {hop:?}: round trip: {source}")]
    Roundtrip {
        hop: String,
        #[source]
        source: roundtrip::RunSetupError,
    },
}

pub fn prepare(hop: &HopSpec) -> Result<Prepared, PrepareError> {
    let err = |source| PrepareError::Session {
        hop: hop.name.clone(),
        source,
    };
    let job = match &hop.target {
        HopTarget::Domain(d) => {
            let t = Target::trace(d).map_err(|e| err(e.into()))?;
            match Job::new(&t, &hop.session, hop.ctx, None, Naming::Key).map_err(err)? {
                Job::Trace(o) => HopJob::Trace(o),
                Job::Probe(o) => HopJob::Hosts(vec![*o]),
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
            HopJob::Hosts(list)
        }
    };
    let roundtrip = match &hop.roundtrip {
        Some(rt) => Some(Box::new(rt.options().map_err(|source| {
            PrepareError::Roundtrip {
                hop: hop.name.clone(),
                source,
            }
        })?)),
        None => None,
    };
    Ok(Prepared { job, roundtrip })
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
    roundtrip: Option<roundtrip::RawRoundtrip>,
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
    roundtrip: Option<Spanned<RawRoundtripExpect>>,
}

/// `roundtrip.passes`, `.delivered`, `.folder`, `.within`, `.scenario` in `[hop.expect]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoundtripExpect {
    passes: Option<bool>,
    delivered: Option<bool>,
    folder: Option<FolderName>,
    within: Option<Dur>,
    scenario: Option<ScenarioLetter>,
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

#[derive(Debug, Clone, Copy)]
struct FolderName(FolderKind);
from_str_value!(FolderName(FolderKind), |s| match s.as_str() {
    "inbox" => Ok(FolderKind::Inbox),
    "junk" => Ok(FolderKind::Junk),
    _ => Err(ValueProblem::Folder(s)),
});

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

    /// A hop with a round trip; `PATH` stands in for a password variable that is set.
    const RT: &str = "name = \"x\"\n[defaults]\nfrom = \"probe@fabrikam.test\"\n\
        [[hop]]\nname = \"in\"\nhosts = [\"mx.contoso.test:2525\"]\nehlo = \"probe.test\"\n\
        [hop.roundtrip]\nrcpt = \"user@contoso.test\"\n\
        mailbox = \"imaps://user@contoso.test@imap.contoso.test\"\nmailbox_password_env = \"PATH\"\n";

    #[test]
    fn a_hop_round_trip_sends_where_the_hop_probes() {
        let f = parse_str(&format!(
            "{RT}within = \"2m\"\nheader = [\"X-Test: 1\"]\n[hop.expect]\nreachable = true\n\
             roundtrip.delivered = true\nroundtrip.folder = \"inbox\"\nroundtrip.within = \"90s\"\n\
             roundtrip.scenario = \"B\"\n"
        ))
        .unwrap();
        let h = &f.hops[0];
        let rt = h.roundtrip.as_ref().unwrap();
        assert_eq!(
            rt.via,
            Some(Target::Probe {
                host: "mx.contoso.test".into(),
                port: 2525
            })
        );
        assert_eq!(rt.within, Duration::from_secs(120));
        // The hop's settings and [defaults] under the table's own.
        assert_eq!(rt.session.ehlo.as_deref(), Some("probe.test"));
        assert_eq!(rt.session.from.as_deref(), Some("probe@fabrikam.test"));
        assert_eq!(
            rt.session.header.as_deref(),
            Some(&["X-Test: 1".to_string()][..])
        );
        let e = &h.expect.roundtrip;
        assert_eq!(e.delivered, Some(true));
        assert_eq!(e.folder, Some(FolderKind::Inbox));
        assert_eq!(e.within, Some(Duration::from_secs(90)));
        assert_eq!(e.scenario, Some(Scenario::B));
        assert_eq!(e.passes, None);
        assert_eq!(h.expect.reachable, Some(true));
        // Without roundtrip.* keys: the round trip passes; the wait is the expectation's.
        let f = parse_str(RT).unwrap();
        assert_eq!(f.hops[0].expect.roundtrip.passes, Some(true));
        assert_eq!(f.hops[0].expect.passes, Some(true));
        let f = parse_str(&format!("{RT}[hop.expect]\nroundtrip.within = \"45s\"\n")).unwrap();
        let rt = f.hops[0].roundtrip.as_ref().unwrap();
        assert_eq!(rt.within, Duration::from_secs(45));
        // A domain hop's round trip walks that domain's MX.
        let f = parse_str(&RT.replace(
            "hosts = [\"mx.contoso.test:2525\"]",
            "domain = \"contoso.test\"",
        ))
        .unwrap();
        let rt = f.hops[0].roundtrip.as_ref().unwrap();
        assert_eq!(
            rt.via,
            Some(Target::Trace {
                domain: "contoso.test".into()
            })
        );
    }

    #[test]
    fn round_trip_errors_point_at_the_line() {
        let cases = [
            (format!("{RT}bogus = 1\n"), "t.toml:12:1: unknown field `bogus`"),
            (format!("{RT}interval = \"5m\"\n"), "t.toml:12:12: interval: a scenario file's round trip runs once"),
            (RT.replace("mailbox_password_env = \"PATH\"", "mailbox_password_file = \"pw\""), "t.toml:11:25: mailbox_password_file: in a scenario file secrets come from variables (mailbox_password_env)"),
            (RT.replace("mailbox_password_env = \"PATH\"\n", ""), "t.toml:10:11: mailbox needs exactly one of mailbox_password_env"),
            (RT.replace("user@contoso.test\"\nmailbox", "nobody\"\nmailbox"), "t.toml:9:8: rcpt \"nobody\": expected user@domain"),
            (RT.replace("imaps://", "pop3://"), "t.toml:10:11: mailbox \"pop3://"),
            (format!("{RT}ehlo = \"a b\"\n"), "t.toml:12:8: ehlo \"a b\": not a valid EHLO name"),
            (format!("{RT}mailbox_auth_mech = \"plain\"\n"), "t.toml:12:21: mailbox_auth_mech \"plain\": xoauth2 or oauthbearer"),
            (format!("{RT}mailbox_auth_mech = \"xoauth2\"\n"), "t.toml:10:11: mailbox_auth_mech needs a token for the mailbox"),
            (RT.replace("mailbox_password_env = \"PATH\"", "mailbox_oauth = true"), "mailbox_oauth needs oauth_tenant or oauth_token_url"),
            (RT.replace("mailbox_password_env = \"PATH\"", "mailbox_oauth = true\noauth_tenant = \"contoso.onmicrosoft.com\""), "t.toml:12:16: oauth_tenant needs oauth_client_id"),
            (format!("{RT}oauth_tenant = \"contoso.onmicrosoft.com\"\n"), "t.toml:12:16: oauth_tenant needs auth_user"),
            (format!("{RT}data = true\n"), "t.toml:12:1: unknown field `data`"),
            (format!("{RT}[hop.expect]\nroundtrip.folder = \"spam\"\n"), "t.toml:13:20: roundtrip.folder \"spam\": inbox or junk"),
            (format!("{RT}[hop.expect]\nroundtrip.deliverd = true\n"), "t.toml:13:11: unknown field `deliverd`"),
            (format!("{RT}within = \"1m\"\n[hop.expect]\nroundtrip.within = \"2m\"\n"), "t.toml:14:1: roundtrip.within 2m is longer than the round trip waits ([hop.roundtrip] within = 1m)"),
            ("name = \"x\"\n[[hop]]\nname = \"a\"\nhosts = [\"mx\"]\n[hop.expect]\nroundtrip.delivered = true\n".to_string(), "t.toml:6:1: roundtrip.* expectations need a [hop.roundtrip] table"),
        ];
        for (text, want) in cases {
            let e = parse_str(&text).expect_err(&text).to_string();
            assert!(e.contains(want), "{text}\n got: {e}\nwant: {want}");
        }
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
