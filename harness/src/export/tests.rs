//! Tests of every exporter on a fixed, synthetic report: made by the real collector from
//! phases whose every figure is fixed, so that output is the same on every machine.

use std::collections::BTreeMap;

use simulators::metrics::{latency_histogram, LinkMetrics, RecordUs, SenderSnapshot, WireCount};
use simulators::transport::{Mode, Negotiated};

use super::hgrm::percentile_distribution;
use super::{Document, Export, ExportManager, ExportType};
use crate::cli::{DocumentExportArgs, ExportArgs};
use crate::engine::deployment::outcome::RoleCpu;
use crate::engine::deployment::{LinkOutcome, PhaseOutcome};
use crate::engine::sampler::IntervalSample;
use crate::report::{decode_histogram, Collector, Measurement, Report, SCHEMA_VERSION};
use crate::sys::environment::{CpuFlags, Environment};

// The report checks the end-to-end tests use too: one file, included by both.
#[path = "../../tests/it/checks.rs"]
#[allow(unreachable_pub)] // `pub` for the integration tests, which include it too.
mod checks;
use checks::{hgrm_p50_p99, validate};

const FRAME_NS: u64 = 33_333_333;

/// A link of the synthetic deployment: `frames` frames whose latencies (µs) follow a fixed
/// pattern, a little slower over TLS, with `short` fewer received than due.
fn link(name: &str, mode: Mode, repeat: u64, frames: u64, short: u64, base_us: u64) -> LinkOutcome {
    let mut m = LinkMetrics::default();
    let tls = mode == Mode::Tls;
    for k in 0..frames.saturating_sub(short) {
        // 1 in 50 frames is slow; TLS adds 30 %, 50 % or 70 % (by repeat): a spread of
        // the p99 ratio wider than a trustworthy one.
        let mut us = base_us + (k * 37) % 200;
        if k % 50 == 49 {
            us *= 20;
        }
        if tls {
            us = us * (13 + 2 * repeat) / 10;
        }
        let scheduled = k * FRAME_NS;
        let recv = scheduled + us * 1000;
        m.record_frame(20_000, scheduled, recv - us * 400, recv, FRAME_NS);
    }
    m.connections = 1;
    m.connect_us.record_us(60);
    if tls {
        m.handshake_us.record_us(1100 + repeat * 10);
        m.negotiated = Some(Negotiated {
            version: "TLSv1_3".into(),
            suite: "TLS13_AES_256_GCM_SHA384".into(),
            group: "X25519MLKEM768".into(),
            resumed: false,
        });
    }
    m.ttff_us.record_us(480_000);
    let payload = m.bytes;
    m.wire = WireCount {
        app_bytes: payload + m.frames * 40 + if tls { payload / 16384 * 22 } else { 0 },
        kernel_bytes: payload + m.frames * 40 + if tls { payload / 16384 * 22 } else { 0 },
        payload_bytes: payload,
        messages: m.frames,
        connections: 1,
    };
    let mut server_hs = latency_histogram();
    if tls {
        server_hs.record_us(900);
    }
    LinkOutcome {
        link: name.to_owned(),
        group: Some("streaming_media"),
        encrypted: tls,
        sent: SenderSnapshot {
            frames_offered: frames,
            frames_sent: frames - short,
            bytes_sent: payload,
            dropped_frames: 0,
        },
        received: m,
        server_failures: BTreeMap::new(),
        server_handshake_us: server_hs,
        frames_due: frames,
        offered_bps: 4e6,
        streams: 1,
        cpu_server_s: if tls { 0.052 } else { 0.040 } + repeat as f64 * 0.001,
        cpu_client_s: if tls { 0.021 } else { 0.013 },
        cpu_attribution: "exclusive",
        client_errors: Vec::new(),
        wan: None,
    }
}

fn phase(mode: Mode, repeat: u64) -> PhaseOutcome {
    let short = if mode == Mode::Tls && repeat == 1 {
        12
    } else {
        0
    };
    let links = vec![
        link("viewer-recorder", mode, repeat, 300, short, 90),
        link("client-event", mode, repeat, 6, 0, 120),
    ];
    let intervals = (1..=3)
        .flat_map(|t| {
            links.iter().map(move |l| {
                let mut h = latency_histogram();
                for v in [100 + t * 10, 200 + t * 20, 900 + t * 30] {
                    h.record_us(v);
                }
                IntervalSample {
                    link: l.link.clone(),
                    t_s: t as f64,
                    interval_s: 1.0,
                    frames: l.received.frames / 3,
                    bytes: l.received.bytes / 3 + t * 1000,
                    latency_us: h,
                }
            })
        })
        .collect();
    PhaseOutcome {
        mode,
        links,
        roles: vec![
            RoleCpu {
                role: "recorder-1".into(),
                cpu_s: if mode == Mode::Tls { 0.09 } else { 0.07 },
            },
            RoleCpu {
                role: "viewers".into(),
                cpu_s: if mode == Mode::Tls { 0.04 } else { 0.03 },
            },
        ],
        failovers: Vec::new(),
        incompatibilities: Vec::new(),
        hosts: Vec::new(),
        certificate_events: Vec::new(),
        window_s: 3.0,
        process_cpu: crate::sys::process::Usage {
            user_s: 0.2,
            sys_s: 0.1,
        },
        peak_rss_bytes: 48 << 20,
        role_peak_rss: BTreeMap::new(),
        baseline_rss_bytes: 40 << 20,
        partial: false,
        intervals,
        ramp: Default::default(),
        steady: Default::default(),
        machine: crate::sys::cpu::CpuWindow {
            steal_pct: Some(0.5),
            total_jiffies: 600,
            steal_jiffies: 3,
            freq_min_mhz: None,
            freq_max_mhz: None,
        },
        process: Vec::new(),
    }
}

fn environment() -> Environment {
    Environment {
        cpu_model: "Synthetic CPU".into(),
        cpu_flags: CpuFlags {
            aes_ni: true,
            vaes: true,
            avx2: true,
            avx512f: true,
            sha_ni: true,
            pclmulqdq: true,
        },
        cores: 2,
        kernel: "6.1.0".into(),
        memory_bytes: 8 << 30,
        hostname: "bench".into(),
        rustls_version: "0.23.0".into(),
        crypto_provider: "aws-lc-rs 1.0.0".into(),
        allocator: "system (glibc malloc)".into(),
        build_profile: "release (opt-level 3)".into(),
        rustc_version: "rustc 1.85.0".into(),
        vmsbench_version: "0.1.0".into(),
        os: "linux".into(),
        arch: "x86_64".into(),
        hypervisor: false,
        cpu_governor: "performance".into(),
        container: None,
        load_average_1m: 0.1,
        during_windows: None,
    }
}

/// Three interleaved repeats of two links; the second TLS phase fell 12 frames short.
pub(crate) fn synthetic_report() -> Report {
    let mut c = Collector::default();
    for repeat in 0..3 {
        for mode in [Mode::Plain, Mode::Tls] {
            c.add(&phase(mode, repeat));
        }
    }
    let (results, cost) = c.finish();
    let cpu_windows = c.cpu_windows();
    let mut environment = environment();
    environment.during_windows =
        crate::sys::cpu::CpuWindow::summed(cpu_windows.iter().map(|w| &w.cpus));
    let mut report = Report {
        schema_version: SCHEMA_VERSION,
        command: "run".into(),
        started_at: "2025-01-01T00:00:00Z".into(),
        partial: false,
        environment,
        scenario: serde_json::json!({ "name": "synthetic" }),
        measurement: Measurement {
            warmup_s: 2.0,
            duration_s: 3.0,
            repeat: 3,
            repeats_completed: 3,
            modes: vec![Mode::Plain, Mode::Tls],
            multiplier: 1.0,
            inject_stall_s: None,
            order: "interleaved (plain, tls, plain, tls, …) in one process, one sitting".into(),
        },
        results,
        cost,
        roles: c.roles(),
        failovers: Vec::new(),
        ramps: c.ramps(),
        hosts: Vec::new(),
        certificate_events: Vec::new(),
        certificates: None,
        server_tls: None,
        placement: None,
        incompatibilities: Vec::new(),
        warnings: Vec::new(),
        histograms: c.histograms(),
        intervals: c.intervals(),
        limits: None,
        pinning: Some(crate::report::PinningRecord {
            asked: "auto".into(),
            pinned: true,
            server_cpus: vec![0],
            client_cpus: vec![1],
            roles: [("recorder-1".to_owned(), vec![0])].into_iter().collect(),
            reason: None,
        }),
        cpu_windows,
        soak: Vec::new(),
        soak_trend: Vec::new(),
    };
    report.derive_warnings();
    report
}

fn document(kind: ExportType, report: &Report) -> String {
    match kind.exporter().export(Document::Run(report)) {
        Ok(Export::Document(bytes)) => String::from_utf8(bytes).expect("UTF-8"),
        other => panic!("{kind:?}: expected a document, got {other:?}"),
    }
}

#[test]
fn markdown_snapshot() {
    let md = document(ExportType::Markdown, &synthetic_report());
    insta::assert_snapshot!("markdown", md);
}

#[test]
fn html_snapshot() {
    let html = document(ExportType::Html, &synthetic_report());
    insta::assert_snapshot!("html", html);
}

#[test]
fn markdown_puts_the_cost_table_first_and_marks_short_runs() {
    let md = document(ExportType::Markdown, &synthetic_report());
    let short = md
        .find("SHORT: 1 of 4 results fell short")
        .expect("short-fall summary");
    let cost = md.find("## Cost of TLS per link").expect("cost table");
    let figures = md.find("## Per link and mode").expect("figures");
    let env = md.find("**Environment:**").expect("environment");
    let warnings = md.find("## Warnings").expect("warnings");
    assert!(short < cost && cost < figures && figures < env && env < warnings);
    assert!(md.contains("| viewer-recorder **SHORT** |"), "{md}");
    assert!(
        md.contains("288/300 SHORT"),
        "the median repeat is short: {md}"
    );
}

#[test]
fn html_is_self_contained_with_one_latency_plot_per_link() {
    let report = synthetic_report();
    let html = document(ExportType::Html, &report);
    for forbidden in ["http://", "https://", "<script", "<link", "@import", "url("] {
        assert!(!html.contains(forbidden), "the page refers to {forbidden}");
    }
    let links = ["viewer-recorder", "client-event"];
    for link in links {
        let title = format!("{link}: frame latency by percentile");
        assert_eq!(
            html.matches(&format!("<svg class=\"plot\" viewBox=\"0 0 440 270\" width=\"440\" height=\"270\" role=\"img\" aria-label=\"{title}\""))
                .count(),
            1,
            "{link}"
        );
    }
    assert_eq!(
        html.matches("frame latency by percentile\">").count(),
        links.len(),
        "one latency distribution plot per link"
    );
    // The summary table comes before any plot.
    let cost = html.find("<table class=\"cost\">").expect("cost table");
    let first_plot = html.find("<svg").expect("plots");
    assert!(cost < first_plot);
    assert!(html.contains("class=\"banner short\""));
}

#[test]
fn hgrm_percentiles_match_the_report() {
    let report = synthetic_report();
    let Export::Files(files) = ExportType::Hgrm
        .exporter()
        .export(Document::Run(&report))
        .expect("export")
    else {
        panic!("a directory of files")
    };
    assert_eq!(files.len(), report.histograms.len() * 2);
    // Each histogram merges three repeats: compare it with its own percentiles, and the
    // report's (per-repeat medians) with the plain link, whose repeats are identical.
    for h in &report.histograms {
        let latency = h.latency().expect("decodes");
        let name = format!("{}.{}.latency_ms.hgrm", h.link, h.mode);
        let (_, text) = files
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        let text = String::from_utf8(text.clone()).expect("UTF-8");
        let (p50, p99) = hgrm_p50_p99(&text);
        assert_eq!(p50, latency.value_at_quantile(0.5), "{name}");
        assert!(
            p99.0 <= latency.value_at_quantile(0.99) && latency.value_at_quantile(0.99) <= p99.1,
            "{name}"
        );
        if h.mode == Mode::Plain {
            let r = report
                .results
                .iter()
                .find(|r| r.link == h.link && r.mode == h.mode)
                .expect("result");
            assert_eq!(p50, r.figures.latency_us.p50, "{name}");
            assert!(p99.0 <= r.figures.latency_us.p99 && r.figures.latency_us.p99 <= p99.1);
        }
    }
}

#[test]
fn hlog_holds_every_interval_histogram_unaltered_and_tagged_by_repeat() {
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    use hdrhistogram::serialization::Deserializer;

    let report = synthetic_report();
    let Export::Files(files) = ExportType::Hlog
        .exporter()
        .export(Document::Run(&report))
        .expect("export")
    else {
        panic!("a directory of files")
    };
    assert_eq!(files.len(), 4, "two links, two modes");
    for (name, bytes) in &files {
        let text = std::str::from_utf8(bytes).expect("UTF-8");
        assert!(
            text.contains("#[StartTime: ") && text.contains("#[BaseTime: "),
            "{text}"
        );
        let mut read = 0;
        for entry in IntervalLogIterator::new(bytes) {
            let LogEntry::Interval(i) = entry.expect("a valid log line") else {
                continue;
            };
            let tag = i.tag().expect("tagged").as_str().to_owned();
            let repeat: usize = tag.trim_start_matches('r').parse().expect("r<repeat>");
            let t_s = i.start_timestamp().as_secs_f64() + i.duration().as_secs_f64();
            let record = report
                .intervals
                .iter()
                .find(|r| {
                    name.starts_with(&format!("{}.{}.", r.link, r.mode))
                        && r.repeat == repeat
                        && (r.t_s - t_s).abs() < 1e-6
                })
                .unwrap_or_else(|| panic!("{name}: no interval {tag} at {t_s}"));
            let b64 = i.encoded_histogram();
            use base64::Engine as _;
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .expect("base64");
            let h: hdrhistogram::Histogram<u64> = Deserializer::new()
                .deserialize(&mut raw.as_slice())
                .expect("V2 histogram");
            let kept = record.histogram.as_deref().and_then(decode_histogram);
            assert_eq!(Some(h), kept, "{name} {tag} {t_s}");
            read += 1;
        }
        assert_eq!(read, 9, "{name}: three seconds of three repeats");
    }
}

#[test]
fn hgrm_layout_is_hdrhistograms() {
    let mut h = latency_histogram();
    for v in 1..=1000u64 {
        h.record_us(v * 10);
    }
    let text = percentile_distribution(&h, 1000.0);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("       Value     Percentile TotalCount 1/(1-Percentile)")
    );
    assert_eq!(lines.next(), Some(""));
    assert_eq!(
        lines.next(),
        Some("       0.010 0.000000000000          1           1.00")
    );
    assert!(
        text.contains("       5.003 0.500000000000        500           2.00\n"),
        "{text}"
    );
    let last_row = text.lines().rfind(|l| !l.starts_with('#')).expect("rows");
    assert_eq!(last_row, "      10.007 1.000000000000       1000");
    // Means use each bucket's median-equivalent value, as HdrHistogram's do.
    assert!(
        text.contains("#[Mean    =        5.006, StdDeviation   =        2.887]\n"),
        "{text}"
    );
    assert!(text.contains("#[Max     =       10.007, Total count    =         1000]\n"));
    // The histogram grew to 10 ms: 4 buckets of 2048 sub-buckets cover 1 µs – 16 ms.
    assert!(
        text.ends_with("#[Buckets =            4, SubBuckets     =         2048]\n"),
        "{text}"
    );
}

#[test]
fn ndjson_has_one_line_per_link_second_and_repeat() {
    let report = synthetic_report();
    let text = document(ExportType::Ndjson, &report);
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    // 2 links × 3 seconds × 2 modes × 3 repeats.
    assert_eq!(lines.len(), 36);
    let first = &lines[0];
    for key in [
        "t_s",
        "repeat",
        "mode",
        "link",
        "goodput_mbit_s",
        "frames",
        "latency_us",
    ] {
        assert!(!first[key].is_null(), "{key}: {first}");
    }
    for key in ["p50", "p99", "max"] {
        assert!(first["latency_us"][key].is_u64(), "{key}");
    }
    // 100 frames of 20 000 B and 1000 B more in 1 s: 16.008 Mbit/s; latencies 110, 220, 930.
    assert_eq!(
        text.lines().next(),
        Some(
            r#"{"t_s":1.0,"repeat":1,"mode":"plain","link":"viewer-recorder","goodput_mbit_s":16.008,"frames":100,"latency_us":{"p50":220,"p99":930,"max":930},"interval_s":1.0}"#
        )
    );
}

#[test]
fn the_json_export_round_trips_and_validates_against_the_schema() {
    let report = synthetic_report();
    let text = document(ExportType::Json, &report);
    let value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    validate(&value);
    let back: Report = serde_json::from_value(value).expect("reads back");
    assert_eq!(back.results.len(), report.results.len());
    assert_eq!(back.histograms, report.histograms);
}

#[test]
fn intervals_decide_the_verdicts_the_trust_marks_and_the_warnings() {
    use crate::report::interval::Interval;
    let report = synthetic_report();
    let vr = report
        .cost
        .iter()
        .find(|c| c.link == "viewer-recorder")
        .expect("cost");
    assert_eq!(vr.pairs, 3);
    // TLS adds 30 % to 70 % to the p99 depending on the repeat: a wide interval, but one
    // that excludes no change, so the direction is known and the cost is decided.
    let p99 = vr.intervals["latency_p99_ratio"];
    assert!(p99.low > 1.0 && p99.contains(1.5), "{p99:?}");
    let diff = vr.latency_diff_us.expect("latency differences");
    assert!(diff.p99 > 0.0, "{diff:?}");
    let verdicts = crate::report::verdicts::verdicts(vr).join("; ");
    assert!(
        verdicts.contains("TLS adds") && verdicts.contains("p99 frame latency"),
        "{verdicts}"
    );
    // An interval wider than ±10 % that holds no change leaves the cost undecided, says so
    // in the trust mark and in one grouped warning with what to change.
    let mut undecided = report.clone();
    for c in &mut undecided.cost {
        if c.link == "viewer-recorder" {
            c.intervals.insert(
                "goodput_ratio".into(),
                Interval {
                    low: 0.8,
                    high: 1.3,
                },
            );
        }
    }
    let c = undecided
        .cost
        .iter()
        .find(|c| c.link == "viewer-recorder")
        .expect("cost");
    assert_eq!(crate::report::verdicts::undecided(c), ["goodput"]);
    assert_eq!(crate::report::verdicts::trust(c), "⚠ goodput undecided");
    assert!(crate::report::verdicts::verdicts(c)[0]
        .starts_with("goodput: no difference detectable (×0.800…×1.300)"));
    undecided.warnings.clear();
    undecided.derive_warnings();
    let open: Vec<&String> = undecided
        .warnings
        .iter()
        .filter(|w| w.contains("undecided"))
        .collect();
    assert_eq!(open.len(), 1, "{:?}", undecided.warnings);
    assert!(
        open[0].starts_with(
            "the cost of TLS on goodput is undecided on 1 link: viewer-recorder ×0.80…×1.30"
        ),
        "{}",
        open[0]
    );
    assert!(open[0].contains("longer --duration") && open[0].contains("more --repeat"));
    // Under two pairs there is no interval at all, and the warning says so.
    let mut one = synthetic_report();
    for c in &mut one.cost {
        c.pairs = 1;
        c.intervals.clear();
    }
    one.warnings.clear();
    one.derive_warnings();
    assert!(one.warnings.iter().any(|w| w.contains("1 plain/TLS pair:")
        && w.contains("no interval")
        && w.contains("--repeat 5")));
    assert_eq!(
        crate::report::verdicts::trust(&one.cost[0]),
        "⚠ 1 pair: no interval"
    );
}

#[test]
fn a_link_without_a_cost_says_why_in_every_format() {
    use crate::engine::deployment::Incompatibility;
    let mut report = synthetic_report();
    report.incompatibilities.push(Incompatibility {
        link: "client-event".into(),
        client: "event-clients".into(),
        server: "event.vms.test".into(),
        reason: "the server requires TLS".into(),
    });
    for r in &mut report.results {
        if r.link == "viewer-recorder" && r.mode == Mode::Tls {
            r.encrypted = false;
            r.tls = None;
        }
    }
    let terminal = report.render_table();
    assert!(
        terminal.contains(
            "Cost of TLS on client-event: – (incompatible (event-clients → event.vms.test: \
             the server requires TLS))"
        ),
        "{terminal}"
    );
    assert!(
        terminal.contains("Cost of TLS on viewer-recorder: – (not encrypted in either phase"),
        "{terminal}"
    );
    assert!(
        !terminal.contains("95 %:"),
        "no verdicts for either: {terminal}"
    );
    let md = document(ExportType::Markdown, &report);
    assert!(
        md.contains("| client-event | – | – | – | – | – | – | incompatible ("),
        "{md}"
    );
    let html = document(ExportType::Html, &report);
    assert!(html.contains("not encrypted in either phase"), "{html}");
    // A link with no frames in either window: dashes, never "0 µs".
    let mut silent = synthetic_report();
    for r in &mut silent.results {
        if r.link == "client-event" {
            r.figures.frames_received = 0;
        }
    }
    let terminal = silent.render_table();
    assert!(
        terminal.contains("Cost of TLS on client-event: – (no traffic in the window)"),
        "{terminal}"
    );
    let row = terminal
        .lines()
        .find(|l| l.starts_with("client-event") && l.contains("plain"))
        .unwrap_or_default();
    assert!(!row.contains(" 0 µs"), "{row}");
}

#[test]
fn an_export_that_fails_names_its_file_and_loses_nothing() {
    let report = synthetic_report();
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("r.json");
    let html = dir.path().join("r.html");
    // Markdown to a full disk, beside the exports given: the error it gives.
    let fails = |json: Option<std::path::PathBuf>, html: Option<std::path::PathBuf>| {
        let args = ExportArgs {
            documents: DocumentExportArgs {
                json,
                markdown: Some("/dev/full".into()),
                html,
            },
            ..ExportArgs::default()
        };
        let exports = ExportManager::new(args.requested()).expect("valid");
        exports
            .write_all(Document::Run(&report))
            .expect_err("/dev/full is full")
            .to_string()
    };
    // The JSON and HTML are still written.
    let e = fails(Some(json.clone()), Some(html.clone()));
    assert!(e.starts_with("--export-markdown /dev/full: "), "{e}");
    assert!(e.contains("the JSON report among them"), "{e}");
    assert!(
        std::fs::metadata("/dev/full").is_ok_and(|m| !m.is_file()),
        "still a device"
    );
    let back: Report =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("parses");
    assert_eq!(back.results.len(), report.results.len());
    assert!(std::fs::metadata(&html).is_ok_and(|m| m.len() > 0));
    // Without a JSON export, the report is kept in a file the error names.
    let e = fails(None, None);
    let kept = e
        .split("the whole report is kept in ")
        .nth(1)
        .map(str::trim)
        .unwrap_or_else(|| panic!("no file named: {e}"));
    let text = std::fs::read(kept).expect("kept");
    let _ = std::fs::remove_file(kept);
    let back: Report = serde_json::from_slice(&text).expect("parses");
    assert_eq!(back.results.len(), report.results.len());
}

#[test]
fn exports_are_checked_before_anything_runs() {
    let args = |json: &str, md: &str| ExportArgs {
        documents: DocumentExportArgs {
            json: Some(json.into()),
            markdown: Some(md.into()),
            html: None,
        },
        ..ExportArgs::default()
    };
    let two = ExportManager::new(args("-", "-").requested()).expect_err("two on stdout");
    assert_eq!(
        two.to_string(),
        "--export-json and --export-markdown both ask for standard output (-); only one export can go there"
    );
    let missing = ExportManager::new(args("/nonexistent/dir/r.json", "r.md").requested())
        .expect_err("missing directory");
    assert!(missing
        .to_string()
        .starts_with("--export-json /nonexistent/dir/r.json: the directory"));
    let hgrm = ExportManager::new(
        ExportArgs {
            hgrm: Some("-".into()),
            ..ExportArgs::default()
        }
        .requested(),
    )
    .expect_err("hgrm to stdout");
    assert!(hgrm
        .to_string()
        .starts_with("--export-hgrm writes one file per link"));
    let ok = ExportManager::new(args("-", "r.md").requested()).expect("fine");
    assert!(ok.uses_stdout());
}

#[test]
fn every_export_is_written_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name);
    let args = ExportArgs {
        documents: DocumentExportArgs {
            json: Some(p("r.json")),
            markdown: Some(p("r.md")),
            html: Some(p("r.html")),
        },
        ndjson: Some(p("r.ndjson")),
        hgrm: Some(p("hgrm")),
        hlog: Some(p("hlog")),
    };
    let m = ExportManager::new(args.requested()).expect("valid");
    m.write_all(Document::Run(&synthetic_report()))
        .expect("written");
    for f in ["r.json", "r.md", "r.html", "r.ndjson"] {
        assert!(p(f).metadata().map(|m| m.len() > 0).unwrap_or(false), "{f}");
    }
    assert!(p("hgrm/viewer-recorder.tls.latency_ms.hgrm").is_file());
    assert!(p("hgrm/client-event.plain.uncorrected_latency_ms.hgrm").is_file());
    assert!(p("hlog/viewer-recorder.tls.latency.hlog").is_file());
    assert!(!p("r.json.tmp").exists());
}

/// A report with one faulty host, a healthy one and an expiry, as the collector makes it.
fn report_with_certificates() -> Report {
    use crate::engine::deployment::{CertificateEventOutcome, HostOutcome};
    use crate::engine::watcher::Tally;
    let mut collector = Collector::default();
    let mut phase = phase(Mode::Tls, 1);
    let host =
        |name: &str, fault: Option<&str>, connections: u64, errors: &[(&str, u64)]| HostOutcome {
            host: name.into(),
            fault: fault.map(str::to_owned),
            links: vec!["viewer-recorder".into()],
            connections,
            frames: connections * 100,
            frames_lost: 0,
            client_errors: errors.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            server_errors: BTreeMap::new(),
        };
    phase.hosts = vec![
        host("recorder-1.vms.test", None, 2, &[]),
        host("recorder-2.vms.test", Some("expired"), 0, &[("expired", 1)]),
        host(
            "recorder-3.vms.test",
            Some("rsa1024"),
            0,
            &[("untrusted_ca", 1)],
        ),
    ];
    phase.certificate_events = vec![CertificateEventOutcome {
        host: "recorder-1.vms.test".into(),
        action: "expire_certificate".into(),
        at_s: 1.0,
        serial_before: "4000aaaa1111".into(),
        serial_after: "4000bbbb2222".into(),
        before: Tally {
            full_ok: 4,
            resumed_ok: 4,
            serials: vec!["4000aaaa1111".into()],
            ..Tally::default()
        },
        after: Tally {
            full_failed: BTreeMap::from([("expired".to_owned(), 4)]),
            resumed_ok: 4,
            ..Tally::default()
        },
        frames_lost: 0,
        connections_broken: 0,
    }];
    collector.add(&phase);
    let mut report = synthetic_report();
    report.hosts = collector.hosts();
    report.certificate_events = collector.certificate_events();
    report.warnings.clear();
    report.derive_warnings();
    report
}

#[test]
fn certificate_faults_and_events_are_reported_in_every_format() {
    let report = report_with_certificates();
    let lines = report.certificate_lines();
    let text = lines.join("\n");
    assert!(
        text.contains("fault expired on recorder-2.vms.test: 0 connection(s)"),
        "{text}"
    );
    assert!(text.contains("clients expired ×1"), "{text}");
    assert!(
        text.contains("the 1 other host(s): 2 connection(s), 0 failure(s)"),
        "{text}"
    );
    assert!(
        text.contains("certificate of recorder-1.vms.test expired at 1.0 s")
            && text.contains("failed expired ×4, resumed 4 ok"),
        "{text}"
    );
    // The rsa1024 fault failed under another category than its own: flagged.
    let warnings = report.warnings.join("\n");
    assert!(
        warnings.contains("fault rsa1024 on recorder-3.vms.test: no connection failed as weak_key"),
        "{warnings}"
    );
    assert!(!warnings.contains("fault expired on"), "{warnings}");
    assert!(
        warnings.contains("certificate faults were staged"),
        "{warnings}"
    );
    for kind in [ExportType::Markdown, ExportType::Html] {
        let doc = document(kind, &report);
        assert!(doc.contains("Certificate faults and events"), "{kind:?}");
        assert!(doc.contains("recorder-2.vms.test"), "{kind:?}");
    }
    assert!(report
        .render_table()
        .contains("fault expired on recorder-2.vms.test"));
    validate(&serde_json::to_value(&report).expect("JSON"));
}

/// [`synthetic_report`] as a run over one agent whose clock agreed or not.
fn placed_report(clocks_agree: bool) -> Report {
    use crate::report::{AgentRecord, ClockRecord, PlacementRecord};
    let mut report = synthetic_report();
    let offset_us = if clocks_agree { 12.0 } else { 250_000.0 };
    report.placement = Some(PlacementRecord {
        rules: vec!["recorder-1=a".into()],
        agents: vec![AgentRecord {
            name: "a".into(),
            address: "10.0.0.2:40000".into(),
            environment: environment(),
            clock: Some(ClockRecord {
                offset_us,
                rtt_us: 80.0,
            }),
            lost: None,
        }],
        clocks_agree,
        worst_clock_offset_us: Some(offset_us + 40.0),
        latency: "one-way".into(),
        aborted: None,
    });
    report
}

#[test]
fn across_hosts_whose_clocks_disagree_the_tables_show_delay_variation_and_say_so() {
    use crate::units::format_us;
    let r = &synthetic_report().results[0];
    let (one_way, variation) = (
        format_us(r.figures.latency_us.p99),
        format_us(r.figures.delay_variation_us.p99),
    );
    assert_ne!(one_way, variation, "the synthetic figures must differ");
    let mode = r.mode.to_string();
    for (agree, shown) in [(true, &one_way), (false, &variation)] {
        let report = placed_report(agree);
        let table = report.render_table();
        let markdown = document(ExportType::Markdown, &report);
        for text in [&table, &markdown] {
            let row = text
                .lines()
                .find(|l| l.contains(r.link.as_str()) && l.contains(mode.as_str()))
                .unwrap_or_default();
            assert!(row.contains(shown.as_str()), "clocks agree {agree}: {row}");
        }
        let html = document(ExportType::Html, &report);
        for text in [&table, &markdown, &html] {
            assert_eq!(
                text.contains("Latency columns: delay variation"),
                !agree,
                "clocks agree {agree}"
            );
            assert!(text.contains("Agent a at 10.0.0.2:40000"), "{agree}");
        }
    }
}

/// Renders any document as text.
fn any_document(kind: ExportType, doc: Document<'_>) -> String {
    match kind.exporter().export(doc) {
        Ok(Export::Document(bytes)) => String::from_utf8(bytes).expect("UTF-8"),
        other => panic!("{kind:?}: expected a document, got {other:?}"),
    }
}

#[test]
fn a_run_with_limits_carries_them_and_a_line_per_link_in_every_format() {
    let mut report = synthetic_report();
    report.attach_limits(crate::report::limits::fixtures::limits());
    let shares = &report.limits.as_ref().expect("attached").shares;
    assert_eq!(shares.len(), report.results.len());
    let json = document(ExportType::Json, &report);
    let value: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    validate(&value);
    assert!(value["limits"]["measured"]["tcp"]["goodput_mbit_s"].is_number());
    let line = shares[0].line();
    for (kind, text) in [
        (
            ExportType::Markdown,
            document(ExportType::Markdown, &report),
        ),
        (ExportType::Html, document(ExportType::Html, &report)),
    ] {
        assert!(text.contains("Against this machine"), "{kind:?}");
        assert!(text.contains("Record layer"), "{kind:?}");
        assert!(text.contains(&shares[0].link), "{kind:?}");
    }
    assert!(Document::Run(&report).terminal().contains(&line));
    // Without the flag, nothing of it shows.
    let plain = synthetic_report();
    assert!(!document(ExportType::Json, &plain).contains("\"limits\""));
    assert!(!Document::Run(&plain)
        .terminal()
        .contains("this machine's limits"));
}

#[test]
fn a_limits_report_validates_and_renders_in_every_format() {
    let mut report = crate::report::limits::LimitsReport {
        schema_version: crate::report::limits::SCHEMA_VERSION,
        command: "limits".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        partial: false,
        environment: environment(),
        limits: crate::report::limits::fixtures::limits(),
        warnings: Vec::new(),
    };
    report.derive_warnings();
    let doc = Document::Limits(&report);
    let value: serde_json::Value =
        serde_json::from_str(&any_document(ExportType::Json, doc)).expect("JSON");
    checks::validate_limits(&value);
    let back: crate::report::limits::LimitsReport =
        serde_json::from_value(value).expect("reads back");
    assert_eq!(back.limits.record_layer.len(), 1);
    let md = any_document(ExportType::Markdown, doc);
    assert!(md.contains("# This machine's limits") && md.contains("TLS13_AES_256_GCM_SHA384"));
    let html = any_document(ExportType::Html, doc);
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
    let table = doc.terminal();
    assert!(
        table.contains("loopback TCP, one connection, plaintext: 3200 Mbit/s"),
        "{table}"
    );
    assert!(table.contains("latency floor"), "{table}");
}
