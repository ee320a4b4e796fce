//! Instruction counts (valgrind's callgrind) of the record layer per frame, plaintext and
//! TLS, and of a handshake: deterministic figures for pull requests, where wall-clock
//! timings on shared CI machines are too noisy to catch a few per cent.
//!
//! ```text
//! cargo bench -p vmsbench-benches --bench instructions                    # every case, table
//! cargo bench -p vmsbench-benches --bench instructions -- --json ir.json  # … and a report
//! cargo bench -p vmsbench-benches --bench instructions -- 1080p           # cases whose id contains 1080p
//! cargo bench -p vmsbench-benches --bench instructions -- --list
//! cargo bench -p vmsbench-benches --bench instructions -- --test          # once each, natively (no valgrind)
//! vmsbench baseline check ir.json --against base-ir.json                  # 1 % threshold by default
//! ```
//!
//! How: the bench runs itself once per case under
//! `valgrind --tool=callgrind --collect-atstart=no --toggle-collect=vmsbench_measured`, so
//! only what runs inside [`vmsbench_measured`] is counted: setup (key generation, the
//! handshake that connects a record-layer pair, encrypting the records a decrypt case
//! reads) and [`WARMUP_OPS`] warm-up operations (buffers reach their size) happen before
//! it. Everything is in memory (no sockets, one thread) and payloads come from the seeded
//! video model, so two runs of the same build give the same counts to a few parts per
//! million.
//!
//! The report (`--json FILE`) has the layout of a vmsbench report with `command`
//! `instructions`: one result per case keyed by (`link`, `mode`, `suite`), e.g. link
//! `record_layer/1080p_iframe/send` in modes `plain` and `tls`, with
//! `instructions_per_frame` (or `instructions_per_handshake`); `vmsbench baseline` compares
//! two of them.
//!
//! Environment: `VMSBENCH_VALGRIND` names the valgrind binary (default `valgrind`).
//! `VMSBENCH_EXTRA_COPY=1` makes every send case copy the frame once more before sending
//! it — a deliberate regression, to show that `vmsbench baseline check` catches one memcpy.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use serde_json::{json, Value};
use simulators::pki::KeyType;
use simulators::transport::KxGroup;
use vmsbench_benches::frames::{
    frame_cases, frame_header, payload, plain_recv, plain_send, FrameCase,
};
use vmsbench_benches::tls::{bench_pki, Endpoints, HandshakeCase, Suite, TlsPair};
use vmsbench_benches::BenchError;

/// Frames (or handshakes) counted per case; the figures reported are per frame.
const OPS: usize = 16;
/// Operations run before counting starts.
const WARMUP_OPS: usize = 4;
/// The suite of the TLS cases (the project's default).
const SUITE: Suite = Suite::Tls13Aes256Gcm;
/// Key and group of the handshake cases: ECDSA keys, so that generating them under
/// valgrind takes milliseconds rather than seconds.
const HANDSHAKE_KEY: KeyType = KeyType::EcdsaP256;
const HANDSHAKE_GROUP: KxGroup = KxGroup::X25519;
/// Environment variable: one more copy of each frame in the send cases.
const EXTRA_COPY_ENV: &str = "VMSBENCH_EXTRA_COPY";
/// Environment variable: the valgrind binary.
const VALGRIND_ENV: &str = "VMSBENCH_VALGRIND";
/// The function callgrind counts in (see `--toggle-collect`).
const MEASURED_SYMBOL: &str = "vmsbench_measured";

/// What one case does per operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    PlainSend,
    PlainRecv,
    TlsSend,
    TlsRecv,
    Handshake(HandshakeCase),
}

/// One measured case.
#[derive(Clone, Debug)]
struct Case {
    /// Stable scenario id, e.g. `record_layer/tls13_aes256gcm/1080p_iframe/encrypt`.
    id: String,
    /// What is compared across modes, e.g. `record_layer/1080p_iframe/send`.
    link: String,
    /// `plain` or `tls`.
    mode: &'static str,
    /// The TLS suite, if any.
    suite: Option<&'static str>,
    op: Op,
    frame: Option<FrameCase>,
}

fn cases() -> Result<Vec<Case>, BenchError> {
    let mut out = Vec::new();
    for frame in frame_cases()? {
        let ops = [
            ("send", "plain", "encode", Op::PlainSend),
            ("send", "tls", "encrypt", Op::TlsSend),
            ("recv", "plain", "decode", Op::PlainRecv),
            ("recv", "tls", "decrypt", Op::TlsRecv),
        ];
        for (dir, mode, verb, op) in ops {
            let suite = (mode == "tls").then_some(SUITE.id());
            out.push(Case {
                id: format!(
                    "record_layer/{}/{}/{verb}",
                    suite.unwrap_or("plain"),
                    frame.id
                ),
                link: format!("record_layer/{}/{dir}", frame.id),
                mode,
                suite,
                op,
                frame: Some(frame.clone()),
            });
        }
    }
    for resumed in [false, true] {
        let h = HandshakeCase {
            key: HANDSHAKE_KEY,
            group: HANDSHAKE_GROUP,
            resumed,
        };
        let id = format!("handshake/{}", h.id());
        out.push(Case {
            link: id.clone(),
            id,
            mode: "tls",
            suite: Some(SUITE.id()),
            op: Op::Handshake(h),
            frame: None,
        });
    }
    Ok(out)
}

/// The operation of a case, ready to run: `run(i)` performs operation `i` (frame `i`).
type Prepared = Box<dyn FnMut(usize) -> Result<(), BenchError>>;

/// Sets a case up: everything that must not be counted happens here.
fn prepare(case: &Case, extra_copy: bool) -> Result<Prepared, BenchError> {
    let total = WARMUP_OPS + OPS;
    if let Op::Handshake(h) = case.op {
        let pki = bench_pki(h.key)?;
        let endpoints = h.endpoints(&pki)?;
        return Ok(Box::new(move |_| {
            let pair = endpoints.connect()?;
            if pair.resumed() != h.resumed {
                return Err(BenchError::Check("unexpected handshake kind".into()));
            }
            Ok(())
        }));
    }
    let frame = case
        .frame
        .clone()
        .ok_or_else(|| BenchError::Check("a record case without a frame".into()))?;
    let p = payload(frame.bytes);
    let headers = (0..total)
        .map(|i| frame_header(i as u64, frame.bytes))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = Vec::with_capacity(frame.bytes + frame.bytes / 64 + 256);
    // The deliberate regression: one more copy of the frame, into a staging buffer that is
    // allocated once, before it is sent.
    let mut staging = Vec::with_capacity(if extra_copy { frame.bytes } else { 0 });
    let pair = || -> Result<TlsPair, BenchError> {
        let pki = bench_pki(KeyType::EcdsaP256)?;
        let pair = Endpoints::new(&pki, &SUITE.settings())?.connect()?;
        SUITE.expect(&pair)?;
        Ok(pair)
    };
    Ok(match case.op {
        Op::PlainSend => Box::new(move |i| {
            let src: &[u8] = if extra_copy {
                staging.clear();
                staging.extend_from_slice(&p);
                &staging
            } else {
                &p
            };
            plain_send(&headers[i], src, &mut out);
            std::hint::black_box(&out);
            Ok(())
        }),
        Op::TlsSend => {
            let mut pair = pair()?;
            Box::new(move |i| {
                let src: &[u8] = if extra_copy {
                    staging.clear();
                    staging.extend_from_slice(&p);
                    &staging
                } else {
                    &p
                };
                pair.send(&headers[i], src, &mut out)?;
                std::hint::black_box(&out);
                Ok(())
            })
        }
        Op::PlainRecv => {
            let wires: Vec<Vec<u8>> = headers
                .iter()
                .map(|h| {
                    let mut w = Vec::new();
                    plain_send(h, &p, &mut w);
                    w
                })
                .collect();
            let mut got = Vec::with_capacity(frame.bytes);
            Box::new(move |i| {
                let h = plain_recv(&wires[i], &mut got)?;
                std::hint::black_box((h, &got));
                Ok(())
            })
        }
        Op::TlsRecv => {
            let mut pair = pair()?;
            let mut wires = Vec::with_capacity(total);
            for h in &headers {
                pair.send(h, &p, &mut out)?;
                wires.push(out.clone());
            }
            let mut got = Vec::with_capacity(frame.bytes);
            Box::new(move |i| {
                let h = pair.recv(&wires[i], &mut got)?;
                std::hint::black_box((h, &got));
                Ok(())
            })
        }
        Op::Handshake(_) => unreachable!("handled above"),
    })
}

/// The counted region: callgrind collects from entry to return of this function only.
#[no_mangle]
#[inline(never)]
pub fn vmsbench_measured(
    run: &mut dyn FnMut(usize) -> Result<(), BenchError>,
    from: usize,
    to: usize,
) -> Result<(), BenchError> {
    for i in from..to {
        run(i)?;
    }
    Ok(())
}

/// Runs one case: setup, warm-up, then the counted operations.
fn run_case(case: &Case, extra_copy: bool) -> Result<(), BenchError> {
    let mut run = prepare(case, extra_copy)?;
    for i in 0..WARMUP_OPS {
        run(i)?;
    }
    vmsbench_measured(&mut run, WARMUP_OPS, WARMUP_OPS + OPS)
}

struct Args {
    test: bool,
    list: bool,
    json: Option<PathBuf>,
    case: Option<String>,
    filters: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        test: false,
        list: false,
        json: None,
        case: None,
        filters: Vec::new(),
    };
    let mut bench = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bench" => bench = true,
            "--test" => args.test = true,
            "--list" => args.list = true,
            "--json" => args.json = Some(it.next().ok_or("--json needs a FILE")?.into()),
            "--case" => args.case = Some(it.next().ok_or("--case needs an id")?),
            "-h" | "--help" => return Err(String::new()),
            s if s.starts_with('-') => return Err(format!("unknown flag {s}")),
            s => args.filters.push(s.to_owned()),
        }
    }
    // As criterion does: `cargo test --benches` (no --bench) runs the cases as tests.
    if !bench && args.case.is_none() {
        args.test = true;
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!(
                "usage: instructions [--test] [--list] [--json FILE] [FILTER…]\n\
                 (cargo bench -p vmsbench-benches --bench instructions -- …)"
            );
            return ExitCode::from(2);
        }
    };
    let extra_copy = std::env::var(EXTRA_COPY_ENV).is_ok_and(|v| !v.is_empty() && v != "0");
    let all = match cases() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(id) = &args.case {
        // The child under valgrind.
        let Some(case) = all.iter().find(|c| &c.id == id) else {
            eprintln!("error: no case {id:?}");
            return ExitCode::from(2);
        };
        return match run_case(case, extra_copy) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {id}: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let selected: Vec<&Case> = all
        .iter()
        .filter(|c| args.filters.is_empty() || args.filters.iter().any(|f| c.id.contains(f)))
        .collect();
    if args.list {
        for c in &selected {
            println!("{}: benchmark", c.id);
        }
        return ExitCode::SUCCESS;
    }
    if args.test {
        return test(&selected, extra_copy);
    }
    match measure(&selected, extra_copy, args.json.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Test mode: every case once, natively.
fn test(cases: &[&Case], extra_copy: bool) -> ExitCode {
    let mut failed = 0;
    for c in cases {
        println!("Testing {}", c.id);
        match run_case(c, extra_copy) {
            Ok(()) => println!("Success"),
            Err(e) => {
                println!("FAILED: {e}");
                failed += 1;
            }
        }
    }
    println!();
    println!(
        "instructions: {} passed, {failed} failed",
        cases.len() - failed
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The total `Ir` of a callgrind output file (its `totals:` or `summary:` line).
fn parse_total_ir(text: &str) -> Option<u64> {
    text.lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("totals:")
                .or_else(|| l.strip_prefix("summary:"))
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// Counts every case under callgrind, prints the table, writes the report.
fn measure(cases: &[&Case], extra_copy: bool, json: Option<&Path>) -> Result<(), String> {
    let valgrind = std::env::var(VALGRIND_ENV).unwrap_or_else(|_| "valgrind".to_owned());
    let version = Command::new(&valgrind)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .ok_or_else(|| {
            format!(
                "cannot run {valgrind:?}: install valgrind (apt-get install valgrind) or set \
                 {VALGRIND_ENV}; `-- --test` runs the cases without it"
            )
        })?;
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this bench: {e}"))?;
    let dir = std::env::temp_dir().join(format!("vmsbench-instructions-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    eprintln!(
        "{version}: {} cases, {OPS} operations each after {WARMUP_OPS} warm-up{}",
        cases.len(),
        if extra_copy {
            " (EXTRA COPY of every sent frame)"
        } else {
            ""
        }
    );
    let mut results = Vec::new();
    for (n, c) in cases.iter().enumerate() {
        let out_file = dir.join(format!("{n}.callgrind"));
        let status = Command::new(&valgrind)
            .arg("--tool=callgrind")
            .arg(format!("--callgrind-out-file={}", out_file.display()))
            .arg("--collect-atstart=no")
            .arg(format!("--toggle-collect={MEASURED_SYMBOL}"))
            .arg("--quiet")
            .arg(&exe)
            .args(["--case", &c.id])
            .status()
            .map_err(|e| format!("{}: cannot start valgrind: {e}", c.id))?;
        if !status.success() {
            return Err(format!(
                "{}: the case failed under valgrind ({status})",
                c.id
            ));
        }
        let text = std::fs::read_to_string(&out_file)
            .map_err(|e| format!("{}: {}: {e}", c.id, out_file.display()))?;
        let ir = parse_total_ir(&text)
            .ok_or_else(|| format!("{}: no totals in {}", c.id, out_file.display()))?;
        eprintln!("{:<60} {ir:>14} Ir", c.id);
        results.push((*c, ir));
    }
    let _ = std::fs::remove_dir_all(&dir);
    print!("{}", render(&results, extra_copy));
    if let Some(path) = json {
        let report = report(&results, &version, extra_copy);
        let text = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, text + "\n").map_err(|e| format!("{}: {e}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn per_op(ir: u64) -> f64 {
    ir as f64 / OPS as f64
}

/// The terminal table: per frame size, plaintext and TLS side by side.
fn render(results: &[(&Case, u64)], extra_copy: bool) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\ninstructions per frame (callgrind Ir, mean of {OPS} frames; TLS = {}){}",
        SUITE.id(),
        if extra_copy { " — EXTRA COPY" } else { "" }
    );
    let _ = writeln!(
        out,
        "{:<14} {:>8}  {:>12} {:>12} {:>7}  {:>12} {:>12} {:>7}",
        "frame", "bytes", "send plain", "send tls", "tls/pl", "recv plain", "recv tls", "tls/pl"
    );
    let find = |link: &str, mode: &str| {
        results
            .iter()
            .find(|(c, _)| c.link == link && c.mode == mode)
            .map(|(_, ir)| per_op(*ir))
    };
    let mut frames: Vec<&FrameCase> = Vec::new();
    for (c, _) in results {
        if let Some(f) = &c.frame {
            if !frames.iter().any(|g| g.id == f.id) {
                frames.push(f);
            }
        }
    }
    let cell = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0}"));
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(p), Some(t)) if p > 0.0 => format!("×{:.1}", t / p),
        _ => "–".to_owned(),
    };
    for f in frames {
        let send = format!("record_layer/{}/send", f.id);
        let recv = format!("record_layer/{}/recv", f.id);
        let (sp, st) = (find(&send, "plain"), find(&send, "tls"));
        let (rp, rt) = (find(&recv, "plain"), find(&recv, "tls"));
        let _ = writeln!(
            out,
            "{:<14} {:>8}  {:>12} {:>12} {:>7}  {:>12} {:>12} {:>7}",
            f.id,
            f.bytes,
            cell(sp),
            cell(st),
            ratio(sp, st),
            cell(rp),
            cell(rt),
            ratio(rp, rt)
        );
    }
    for (c, ir) in results.iter().filter(|(c, _)| c.frame.is_none()) {
        let _ = writeln!(out, "{:<48} {:>12.0} per handshake", c.id, per_op(*ir));
    }
    out
}

/// The report: a vmsbench report with `command` = `instructions`.
fn report(results: &[(&Case, u64)], valgrind: &str, extra_copy: bool) -> Value {
    let mut environment = serde_json::to_value(vmsbench::sys::environment::Environment::detect())
        .unwrap_or(json!({}));
    if let Some(env) = environment.as_object_mut() {
        env.insert("valgrind_version".into(), json!(valgrind));
    }
    let entries: Vec<Value> = results
        .iter()
        .map(|(c, ir)| {
            let mut e = json!({
                "id": c.id,
                "link": c.link,
                "mode": c.mode,
                "suite": c.suite,
                "frame_bytes": c.frame.as_ref().map(|f| f.bytes),
                "ops": OPS,
                "instructions": ir,
            });
            if let Some(obj) = e.as_object_mut() {
                match &c.frame {
                    Some(f) => {
                        obj.insert("instructions_per_frame".into(), json!(per_op(*ir)));
                        obj.insert(
                            "instructions_per_byte".into(),
                            json!(per_op(*ir) / f.bytes.max(1) as f64),
                        );
                    }
                    None => {
                        obj.insert("instructions_per_handshake".into(), json!(per_op(*ir)));
                    }
                }
            }
            e
        })
        .collect();
    let mut cost = Vec::new();
    for (c, ir) in results.iter().filter(|(c, _)| c.mode == "plain") {
        if let Some((_, tls)) = results
            .iter()
            .find(|(t, _)| t.mode == "tls" && t.link == c.link)
        {
            cost.push(json!({
                "link": c.link,
                "instructions_ratio": *tls as f64 / (*ir).max(1) as f64,
            }));
        }
    }
    json!({
        "schema_version": vmsbench::report::SCHEMA_VERSION,
        "command": "instructions",
        "started_at": humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        "partial": false,
        "environment": environment,
        "scenario": {
            "name": "record layer per frame (plain vs TLS) and handshakes, in memory, under callgrind",
            "suite": SUITE.id(),
            "frames": frame_cases().map(|f| f.iter().map(|f| json!({"id": f.id, "bytes": f.bytes})).collect::<Vec<_>>()).unwrap_or_default(),
            "handshake_key": HANDSHAKE_KEY.name(),
            "handshake_group": HANDSHAKE_GROUP.name(),
            "ops": OPS,
            "warmup_ops": WARMUP_OPS,
            "cases": results.iter().map(|(c, _)| c.id.clone()).collect::<Vec<_>>(),
        },
        "measurement": {
            "tool": "callgrind",
            "valgrind_version": valgrind,
            "extra_copy": extra_copy,
            "order": "one valgrind process per case, sequential; setup and warm-up not counted",
        },
        "results": entries,
        "cost": cost,
        "warnings": if extra_copy {
            vec!["VMSBENCH_EXTRA_COPY was set: every sent frame was copied once more (a deliberate regression)"]
        } else {
            Vec::new()
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn totals_are_parsed() {
        let text = "events: Ir\nfn=foo\n0 12\ntotals: 123456\n";
        assert_eq!(super::parse_total_ir(text), Some(123456));
        assert_eq!(super::parse_total_ir("summary: 42 7\n"), Some(42));
        assert_eq!(super::parse_total_ir("nothing"), None);
    }
}
