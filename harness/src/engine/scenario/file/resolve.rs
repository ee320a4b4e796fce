//! Raw tables → the checked [`Scenario`]: defaults filled in, quantities parsed, ranges,
//! names and references checked, each problem reported at the value (or table) at fault.

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use simulators::pki::KeyType;
use simulators::transport::{Cipher, KxGroup, TlsSettings, TlsVersion};
use simulators::video::Profile;
use toml::Spanned;

use super::raw::{
    BitrateKind, CountKind, DurationKind, NumberKind, ProfileRef, Quantity, RawCertificates,
    RawEncryption, RawManagement, RawProfile, RawRun, RawScenario, RawTls, SizeKind,
};
use super::{ScenarioError, Source};
use crate::engine::scenario::{
    default_threads, Certificates, Encryption, Listen, Management, RecorderSpec, Scenario,
};
use crate::units;

mod clients;
mod events;
mod faults;
mod servers;

use clients::Clients;
use servers::Servers;

type Result<T> = std::result::Result<T, ScenarioError>;

use crate::engine::scenario::{
    MAX_CAMERAS, MAX_EVENT_AT, MAX_GROUP, MAX_INTERVAL, MAX_PHONE_CAMERAS, MAX_QUEUE_FRAMES,
    MAX_THREADS, MAX_VIEW, MAX_WAN_DELAY, MAX_WAN_LOSS, MIN_INTERVAL,
};
/// The largest configuration download (the seed system's are 1–10 MB).
const MAX_CONFIG_BYTES: u64 = 256 << 20;
/// The fastest clients may be made to connect, per second.
const MAX_CONNECT_RATE: u64 = 1_000_000;
/// Clients that start per second unless a scenario says otherwise.
pub(crate) const DEFAULT_CONNECT_RATE: u32 = 1000;

/// Host of the management server when the file names none.
const DEFAULT_MANAGEMENT_HOST: &str = "mgmt.vms.test";

/// The mobile server's transcoded stream when the file gives none: JPEG frames (GOP 1),
/// 640×360 at 8 fps, 1.5 Mbit/s.
fn default_transcode_profile() -> Profile {
    Profile {
        name: "transcoded".into(),
        resolution: "640x360".into(),
        fps: 8,
        bitrate_bps: 1_500_000,
        gop: 1,
        ip_ratio: 1.0,
        vbr: 0.1,
    }
}

/// Resolves the file's tables in order — name and seed, `[tls]`, `[encryption]`,
/// `[management]`, the servers, the clients, `[certificates]`, the events, the faults and
/// `[run]` — stopping at the first mistake.
pub(super) fn resolve(raw: RawScenario, src: &Source<'_>) -> Result<Scenario> {
    let mut r = Resolver {
        src,
        hosts: HashMap::new(),
    };

    let name = r.scenario_name(raw.name.as_ref())?;
    let seed = match &raw.seed {
        Some(q) => r.count(q, "seed")?,
        None => 1,
    };
    let (tls, key) = r.tls(raw.tls.as_ref())?;
    let encryption = r.encryption(raw.encryption.as_ref())?;
    let management = r.management(raw.management.as_ref())?;
    let servers = r.servers(&raw)?;
    let clients = r.clients(&raw, &servers)?;

    // Where certificates come from: paths are relative to the scenario file.
    let server_hosts = servers.hosts(&management);
    let files_span = raw.certificates.as_ref().map(|c| c.span());
    let certificates = match &raw.certificates {
        None => Certificates::Generated,
        Some(c) => r.certificates(c.get_ref())?,
    };

    let events = r.events(&raw.event.0, &servers, &server_hosts, files_span.as_ref())?;
    let faults = r.faults(&raw.fault.0, &server_hosts, files_span.as_ref())?;
    let RunSettings {
        queue_frames,
        server_threads,
        client_threads,
        connect_rate,
    } = r.run(raw.run.as_ref())?;

    let Servers {
        failovers,
        recorders,
        event_server,
        mobile_server,
    } = servers;
    let Clients {
        viewers,
        integrations,
        phones,
        collectors,
    } = clients;
    Ok(Scenario {
        name,
        description: raw.description.unwrap_or_default(),
        seed,
        tls,
        key,
        encryption,
        management,
        recorders,
        failovers,
        event_server,
        mobile_server,
        viewers,
        integrations,
        phones,
        collectors,
        events,
        certificates,
        faults,
        queue_frames,
        server_threads,
        connect_rate,
        client_threads,
        listen: Listen::default(),
        pinning: None,
        recorder_cpu_per_frame: None,
    })
}

/// The `[run]` settings.
struct RunSettings {
    queue_frames: usize,
    server_threads: usize,
    client_threads: usize,
    connect_rate: u32,
}

/// Checks values against their span in the source; remembers every server's host.
struct Resolver<'s> {
    src: &'s Source<'s>,
    /// Lower-cased host name → (what it is, where it was declared; `None` for a default).
    hosts: HashMap<String, (&'static str, Option<Range<usize>>)>,
}

impl Resolver<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        self.src.error(span, message)
    }

    /// The scenario's name: the one given, else the file's stem, else "scenario".
    fn scenario_name(&self, given: Option<&Spanned<String>>) -> Result<String> {
        match given {
            Some(n) => self.non_empty(n, "name"),
            None => Ok(Path::new(self.src.origin)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "scenario".into())),
        }
    }

    /// `[certificates]`: the directory must exist, and the CA file (default `ca.pem` in
    /// it) must be a file. The hosts' own files are read when the run starts.
    fn certificates(&self, raw: &RawCertificates) -> Result<Certificates> {
        let base = if self.src.origin.starts_with("preset ") {
            PathBuf::new()
        } else {
            Path::new(self.src.origin)
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
        };
        let written = self.non_empty(&raw.dir, "dir")?;
        let dir = base.join(&written);
        if !dir.is_dir() {
            return Err(self.err(
                raw.dir.span(),
                format!(
                    "{written:?} is not a directory (paths are relative to the scenario file); point dir at the output of `vmsbench certs generate --hosts … --out DIR`"
                ),
            ));
        }
        let ca = match &raw.ca {
            Some(c) => base.join(self.non_empty(c, "ca")?),
            None => dir.join("ca.pem"),
        };
        if !ca.is_file() {
            let span = raw.ca.as_ref().map_or(raw.dir.span(), Spanned::span);
            let shown = match &raw.ca {
                Some(c) => format!("{:?}", c.get_ref()),
                None => format!("ca.pem in {written:?}"),
            };
            return Err(self.err(
                span,
                format!(
                    "the CA certificate {shown} does not exist; name the CA file clients trust with ca = \"…\""
                ),
            ));
        }
        Ok(Certificates::Files { dir, ca })
    }

    fn non_empty(&self, s: &Spanned<String>, field: &str) -> Result<String> {
        let v = s.get_ref().trim();
        if v.is_empty() {
            return Err(self.err(s.span(), format!("{field} must not be empty")));
        }
        Ok(v.to_owned())
    }

    /// A server's host name: valid, and not used by another server. `role` reads "the
    /// event server", "a recording server", ….
    fn host(&mut self, h: &Spanned<String>, role: &'static str) -> Result<String> {
        let host = h.get_ref().clone();
        self.claim_host(&host, role, Some(h.span()))?;
        Ok(host)
    }

    fn claim_host(
        &mut self,
        host: &str,
        role: &'static str,
        span: Option<Range<usize>>,
    ) -> Result<()> {
        if let Some(span) = &span {
            if let Err(why) = check_host_name(host) {
                return Err(self.err(
                    span.clone(),
                    format!(
                        "{host:?} is not a valid host name: {why}; e.g. \"recorder-1.vms.test\""
                    ),
                ));
            }
        }
        let key = host.to_ascii_lowercase();
        if let Some((other_role, other_span)) = self.hosts.get(&key) {
            let other = match other_span {
                Some(s) => format!("{other_role} at line {}", self.src.position(s.start).0),
                None => format!("{other_role} (its default host name)"),
            };
            return Err(self.err(
                span.unwrap_or(0..0),
                format!("host {host:?} is already {other}; every server needs a host name of its own (each gets its own certificate)"),
            ));
        }
        self.hosts.insert(key, (role, span));
        Ok(())
    }

    fn tls(&self, raw: Option<&RawTls>) -> Result<(TlsSettings, KeyType)> {
        let mut tls = TlsSettings::default();
        let mut key = KeyType::Rsa2048;
        let Some(raw) = raw else {
            return Ok((tls, key));
        };
        if let Some(list) = &raw.versions {
            tls.versions = self.name_list(
                list.span(),
                list.get_ref()
                    .iter()
                    .map(|v| (v.get_ref().text.as_str(), v.span())),
                "versions",
                "TLS version",
                TlsVersion::ALL,
                |v| v.name(),
            )?;
        }
        if let Some(list) = &raw.ciphers {
            tls.ciphers = self.name_list(
                list.span(),
                list.get_ref()
                    .iter()
                    .map(|v| (v.get_ref().as_str(), v.span())),
                "ciphers",
                "cipher",
                Cipher::ALL,
                |v| v.name(),
            )?;
        }
        if let Some(list) = &raw.groups {
            tls.groups = self.name_list(
                list.span(),
                list.get_ref()
                    .iter()
                    .map(|v| (v.get_ref().as_str(), v.span())),
                "groups",
                "key-exchange group",
                KxGroup::ALL,
                |v| v.name(),
            )?;
        }
        if !tls.versions.contains(&TlsVersion::Tls13)
            && tls.groups.iter().all(|g| *g == KxGroup::X25519mlkem768)
        {
            let span = match (&raw.groups, &raw.versions) {
                (Some(g), _) => g.span(),
                (None, Some(v)) => v.span(),
                (None, None) => 0..0,
            };
            return Err(self.err(
                span,
                "x25519mlkem768 works with TLS 1.3 only, and versions does not offer 1.3: add a classical group such as \"x25519\" to groups, or \"1.3\" to versions",
            ));
        }
        if let Some(k) = &raw.key {
            key = self.pick(k.get_ref(), k.span(), "key type", KeyType::ALL, |v| {
                v.name()
            })?;
        }
        Ok((tls, key))
    }

    /// A non-empty list of distinct names, each one of `all`.
    fn name_list<'a, T: Copy + PartialEq>(
        &self,
        list_span: Range<usize>,
        items: impl Iterator<Item = (&'a str, Range<usize>)>,
        field: &str,
        what: &str,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Result<Vec<T>> {
        let mut out = Vec::new();
        for (text, span) in items {
            let v = self.pick(text, span.clone(), what, all, name)?;
            if out.contains(&v) {
                return Err(self.err(span, format!("{} is listed twice in {field}", name(v))));
            }
            out.push(v);
        }
        if out.is_empty() {
            return Err(self.err(
                list_span,
                format!(
                    "{field} must list at least one {what}: {}",
                    all.iter().map(|v| name(*v)).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(out)
    }

    /// The value of `all` named `text` (case-insensitively).
    fn pick<T: Copy>(
        &self,
        text: &str,
        span: Range<usize>,
        what: &str,
        all: &[T],
        name: fn(T) -> &'static str,
    ) -> Result<T> {
        let wanted = text.trim().to_ascii_lowercase();
        all.iter()
            .copied()
            .find(|v| name(*v) == wanted)
            .ok_or_else(|| {
                let names: Vec<&str> = all.iter().map(|v| name(*v)).collect();
                self.err(
                    span,
                    format!(
                        "unknown {what} {text:?}; valid ones are: {}",
                        names.join(", ")
                    ),
                )
            })
    }

    fn encryption(&self, raw: Option<&RawEncryption>) -> Result<Encryption> {
        let mut e = Encryption::default();
        let Some(raw) = raw else {
            return Ok(e);
        };
        let get =
            |v: &Option<Spanned<bool>>, default: bool| v.as_ref().map_or(default, |b| *b.get_ref());
        e.server = get(&raw.server, e.server);
        e.streaming_media = get(&raw.streaming_media, e.streaming_media);
        e.mobile_server = get(&raw.mobile_server, e.mobile_server);
        e.event_server = get(&raw.event_server, e.event_server);
        e.allow_unsupported = get(&raw.allow_unsupported, e.allow_unsupported);
        if e.streaming_media && !e.server && !e.allow_unsupported {
            const WHY: &str = "the seed system refuses to encrypt recording servers while the management server is not encrypted";
            return Err(match (&raw.streaming_media, &raw.server) {
                (Some(sm), _) => self.err(
                    self.src.key_span(sm.span()),
                    format!("streaming_media = true while server = false: {WHY}; set server = true, or allow_unsupported = true to measure this setup anyway"),
                ),
                (None, Some(s)) => self.err(
                    self.src.key_span(s.span()),
                    format!("server = false while streaming_media is on (its default): {WHY}; set server = true, streaming_media = false, or allow_unsupported = true to measure this setup anyway"),
                ),
                (None, None) => self.src.error_at_top(WHY),
            });
        }
        Ok(e)
    }

    fn management(&mut self, raw: Option<&RawManagement>) -> Result<Management> {
        let mut m = Management {
            host: DEFAULT_MANAGEMENT_HOST.into(),
            config_bytes: 4 << 20,
            config_check: Duration::from_secs(10),
            config_refresh: None,
            status_interval: Duration::from_secs(2),
            status_request_bytes: 256,
            status_reply_bytes: 2048,
        };
        let role = "the management server";
        let Some(raw) = raw else {
            self.claim_host(&m.host, role, None)?;
            return Ok(m);
        };
        match &raw.host {
            Some(h) => m.host = self.host(h, role)?,
            None => self.claim_host(&m.host, role, None)?,
        }
        if let Some(q) = &raw.config_size {
            m.config_bytes = self.size_within(q, "config_size", 1, MAX_CONFIG_BYTES)?;
        }
        if let Some(q) = &raw.config_refresh {
            m.config_refresh = match q.get_ref().text.trim() {
                "off" => None,
                _ => Some(self.positive_duration(q, "config_refresh")?),
            };
        }
        if let Some(q) = &raw.config_check {
            m.config_check = self.positive_duration(q, "config_check")?;
        }
        if let Some(q) = &raw.status_interval {
            m.status_interval = self.positive_duration(q, "status_interval")?;
        }
        if let Some(q) = &raw.status_request_size {
            m.status_request_bytes = self.payload_size(q, "status_request_size")?;
        }
        if let Some(q) = &raw.status_reply_size {
            m.status_reply_bytes = self.payload_size(q, "status_reply_size")?;
        }
        Ok(m)
    }

    /// A camera profile: a preset's name or an inline table.
    fn profile(&self, p: &Spanned<ProfileRef>, default_name: &str) -> Result<Profile> {
        const INLINE: &str =
            "an inline table { preset, name, resolution, fps, bitrate, gop, ip_ratio, vbr }";
        let raw: &RawProfile = match p.get_ref() {
            ProfileRef::Name(name) => {
                return Profile::preset(name)
                    .map_err(|e| self.err(p.span(), format!("{e}; or write {INLINE}")));
            }
            ProfileRef::Inline(raw) => raw,
        };
        let base = match &raw.preset {
            Some(name) => Some(
                Profile::preset(name.get_ref())
                    .map_err(|e| self.err(name.span(), e.to_string()))?,
            ),
            None => None,
        };
        let fps = match &raw.fps {
            Some(q) => Some(self.count_within(q, "fps", 1, 240, "")?),
            None => None,
        };
        let bitrate = match &raw.bitrate {
            Some(q) => Some(self.bitrate(q)?),
            None => None,
        };
        let (fps, bitrate_bps) = match (&base, fps, bitrate) {
            (_, Some(f), Some(b)) => (to_u32(f), b),
            (Some(base), f, b) => (f.map_or(base.fps, to_u32), b.unwrap_or(base.bitrate_bps)),
            (None, _, _) => {
                return Err(self.err(
                    p.span(),
                    "an inline profile needs fps and bitrate (or preset = \"1080p\" to start from a preset and change some fields)",
                ))
            }
        };
        let gop = match &raw.gop {
            Some(q) => to_u32(self.count_within(q, "gop", 1, 10_000, " frames")?),
            // One I-frame per second, unless the preset says otherwise (MJPEG: every frame).
            None => match &base {
                Some(b) if b.gop != b.fps => b.gop,
                _ => fps,
            },
        };
        let ip_ratio = match &raw.ip_ratio {
            Some(q) => {
                self.number_within(q, "ip_ratio", 1.0..=100.0, "1–100 (10–20 is typical)")?
            }
            None if gop == 1 => 1.0,
            None => base
                .as_ref()
                .filter(|b| b.gop > 1)
                .map_or(12.0, |b| b.ip_ratio),
        };
        let vbr = match &raw.vbr {
            Some(q) => self.vbr(q)?,
            None => base.as_ref().map_or(0.1, |b| b.vbr),
        };
        let profile = Profile {
            name: match &raw.name {
                Some(n) => self.non_empty(n, "name")?,
                None => base
                    .as_ref()
                    .map_or_else(|| default_name.to_owned(), |b| b.name.clone()),
            },
            resolution: match &raw.resolution {
                Some(r) => self.non_empty(r, "resolution")?,
                None => base
                    .as_ref()
                    .map_or_else(|| "custom".to_owned(), |b| b.resolution.clone()),
            },
            fps,
            bitrate_bps,
            gop,
            ip_ratio,
            vbr,
        };
        profile
            .validate()
            .map_err(|e| self.err(p.span(), e.to_string()))?;
        Ok(profile)
    }

    /// A profile's bitrate: 1 kbit/s to 1 Gbit/s.
    fn bitrate(&self, q: &Spanned<Quantity<BitrateKind>>) -> Result<u64> {
        let b = units::parse_bitrate(&q.get_ref().text)
            .map_err(|e| self.err(q.span(), format!("bitrate: {e}")))?;
        if !(1_000..=1_000_000_000).contains(&b) {
            return Err(self.err(
                q.span(),
                format!("bitrate must be 1 kbit/s to 1 Gbit/s, not {b} bit/s"),
            ));
        }
        Ok(b)
    }

    /// A profile's `vbr`, how much frame sizes vary: at least 0 and below 0.9.
    fn vbr(&self, q: &Spanned<Quantity<NumberKind>>) -> Result<f64> {
        let v = self.number(q, "vbr")?;
        if !(0.0..0.9).contains(&v) {
            return Err(self.err(
                q.span(),
                format!("vbr must be at least 0 and below 0.9 (0.1 = sizes vary by up to ±10 %), not {v}"),
            ));
        }
        Ok(v)
    }

    fn run(&self, raw: Option<&RawRun>) -> Result<RunSettings> {
        let mut run = RunSettings {
            queue_frames: simulators::role::recorder::DEFAULT_QUEUE_FRAMES,
            server_threads: default_threads(),
            client_threads: default_threads(),
            connect_rate: DEFAULT_CONNECT_RATE,
        };
        let Some(raw) = raw else {
            return Ok(run);
        };
        if let Some(q) = &raw.queue_frames {
            run.queue_frames =
                to_usize(self.count_within(q, "queue_frames", 1, MAX_QUEUE_FRAMES, "")?);
        }
        if let Some(q) = &raw.server_threads {
            run.server_threads =
                to_usize(self.count_within(q, "server_threads", 1, MAX_THREADS, "")?);
        }
        if let Some(q) = &raw.client_threads {
            run.client_threads =
                to_usize(self.count_within(q, "client_threads", 1, MAX_THREADS, "")?);
        }
        if let Some(q) = &raw.connect_rate {
            let rate = self.count_within(q, "connect_rate", 1, MAX_CONNECT_RATE, "")?;
            run.connect_rate = u32::try_from(rate).unwrap_or(u32::MAX);
        }
        Ok(run)
    }

    /// Any count (`32`, `"10k"`).
    fn count(&self, q: &Spanned<Quantity<CountKind>>, field: &str) -> Result<u64> {
        let text = q.get_ref().text.trim();
        if text.starts_with('-') {
            return Err(self.err(
                q.span(),
                format!("{field} must be a whole number of at least 0, not {text}"),
            ));
        }
        units::parse_count(text).map_err(|e| self.err(q.span(), format!("{field}: {e}")))
    }

    /// A count in `min..=max`. Small ranges are stated whole, followed by `unit`
    /// (" cameras (…)"); large ones by the bound that was crossed.
    fn count_within(
        &self,
        q: &Spanned<Quantity<CountKind>>,
        field: &str,
        min: u64,
        max: u64,
        unit: &str,
    ) -> Result<u64> {
        let text = q.get_ref().text.trim();
        let n = if text.starts_with('-') {
            None
        } else {
            Some(self.count(q, field)?)
        };
        let message = match n {
            Some(n) if (min..=max).contains(&n) => return Ok(n),
            _ if max < MAX_GROUP => format!("{field} must be {min}–{max}{unit}, not {text}"),
            Some(n) if n > max => format!("{field} must be at most {max}, not {n}"),
            _ => format!("{field} must be at least {min}, not {text}"),
        };
        Err(self.err(q.span(), message))
    }

    fn number(&self, q: &Spanned<Quantity<NumberKind>>, field: &str) -> Result<f64> {
        let text = q.get_ref().text.trim();
        text.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| self.err(q.span(), format!("{field} must be a number, not {text:?}")))
    }

    fn number_within(
        &self,
        q: &Spanned<Quantity<NumberKind>>,
        field: &str,
        range: std::ops::RangeInclusive<f64>,
        what: &str,
    ) -> Result<f64> {
        let v = self.number(q, field)?;
        if !range.contains(&v) {
            return Err(self.err(q.span(), format!("{field} must be {what}, not {v}")));
        }
        Ok(v)
    }

    fn duration(&self, q: &Spanned<Quantity<DurationKind>>, field: &str) -> Result<Duration> {
        units::parse_duration(&q.get_ref().text)
            .map_err(|e| self.err(q.span(), format!("{field}: {e}")))
    }

    /// How often something happens: longer than 0s, and from [`MIN_INTERVAL`] to
    /// [`MAX_INTERVAL`].
    fn positive_duration(
        &self,
        q: &Spanned<Quantity<DurationKind>>,
        field: &str,
    ) -> Result<Duration> {
        let d = self.duration(q, field)?;
        if d.is_zero() {
            return Err(self.err(q.span(), format!("{field} must be longer than 0s")));
        }
        self.duration_within(q, field, d, MIN_INTERVAL, MAX_INTERVAL)
    }

    /// `d`, the value of `q`, if it lies from `min` to `max`.
    fn duration_within(
        &self,
        q: &Spanned<Quantity<DurationKind>>,
        field: &str,
        d: Duration,
        min: Duration,
        max: Duration,
    ) -> Result<Duration> {
        let (bound, limit) = match d {
            d if d < min => ("at least", min),
            d if d > max => ("at most", max),
            d => return Ok(d),
        };
        Err(self.err(
            q.span(),
            format!(
                "{field} must be {bound} {}, not {}",
                units::format_span(limit),
                units::format_span(d)
            ),
        ))
    }

    fn size_within(
        &self,
        q: &Spanned<Quantity<SizeKind>>,
        field: &str,
        min: u64,
        max: u64,
    ) -> Result<u64> {
        let n = units::parse_size(&q.get_ref().text)
            .map_err(|e| self.err(q.span(), format!("{field}: {e}")))?;
        if !(min..=max).contains(&n) {
            return Err(self.err(
                q.span(),
                format!(
                    "{field} must be {} to {}, not {}",
                    units::format_bytes(min),
                    units::format_bytes(max),
                    units::format_bytes(n)
                ),
            ));
        }
        Ok(n)
    }

    /// A message size that fits in one wire frame.
    fn payload_size(&self, q: &Spanned<Quantity<SizeKind>>, field: &str) -> Result<u32> {
        let max = u64::from(simulators::wire::MAX_PAYLOAD);
        self.size_within(q, field, 1, max)
            .map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }
}

/// Whether `host` can be a certificate's DNS name: dot-separated labels of letters, digits
/// and inner hyphens.
fn check_host_name(host: &str) -> std::result::Result<(), &'static str> {
    if host.is_empty() {
        return Err("it is empty");
    }
    if host.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (two dots in a row, or a dot at an end)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err("use only letters, digits, '-' and '.'");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label starts or ends with '-'");
        }
    }
    Ok(())
}

fn host_list(recorders: &[RecorderSpec]) -> String {
    recorders
        .iter()
        .map(|r| r.host.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Counts are range-checked before conversion; saturate rather than panic all the same.
fn to_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
