//! What the end-to-end tests share: running a command in-process with its output in
//! memory, running the real program in-process, and reading the JSON it wrote.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use serde_json::Value;
use vmsbench::Opts;

/// What one in-process invocation of a subcommand did.
pub struct Run {
    pub code: ExitCode,
    pub out: String,
    pub err: String,
}

impl Run {
    /// Runs `command` with stdout and stderr in memory; bytes that are not UTF-8 are
    /// replaced.
    pub fn capture(command: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>) -> ExitCode) -> Run {
        let (code, out, err) = capture_bytes(command);
        Run {
            code,
            out: String::from_utf8_lossy(&out).into_owned(),
            err: String::from_utf8_lossy(&err).into_owned(),
        }
    }

    /// Runs `command` with stdout and stderr in memory; both must be UTF-8.
    pub fn capture_utf8(command: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>) -> ExitCode) -> Run {
        let (code, out, err) = capture_bytes(command);
        Run {
            code,
            out: String::from_utf8(out).expect("stdout is UTF-8"),
            err: String::from_utf8(err).expect("stderr is UTF-8"),
        }
    }

    pub fn assert_code(&self, code: u8, what: &str) {
        assert_eq!(
            self.code,
            ExitCode::from(code),
            "{what}: expected exit code {code}\n--- stdout:\n{}--- stderr:\n{}",
            self.out,
            self.err
        );
    }
}

fn capture_bytes(
    command: impl FnOnce(&mut Vec<u8>, &mut Vec<u8>) -> ExitCode,
) -> (ExitCode, Vec<u8>, Vec<u8>) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = command(&mut out, &mut err);
    (code, out, err)
}

/// Runs `vmsbench ARGS…` in-process, through the real flag parsing, on a current-thread
/// runtime.
pub fn try_run<S: AsRef<str>>(args: &[S]) -> anyhow::Result<ExitCode> {
    let opts = Opts::parse_from(std::iter::once("vmsbench").chain(args.iter().map(AsRef::as_ref)));
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(vmsbench::run(opts))
}

/// Runs `vmsbench ARGS… FLAG JSON` in-process (`FLAG` is `--json` or `--export-json`); it
/// must succeed with exit code 0. Returns the report it wrote to `json`.
pub fn run_report(args: &[&str], flag: &str, json: &Path) -> Value {
    let mut argv = args.to_vec();
    argv.extend([flag, json.to_str().expect("utf-8 path")]);
    let code = try_run(&argv).unwrap_or_else(|e| panic!("vmsbench {argv:?}: {e:#}"));
    assert_eq!(code, ExitCode::SUCCESS, "vmsbench {argv:?}");
    read_json(json)
}

/// Reads a JSON file the program wrote.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("JSON written");
    serde_json::from_str(&text).expect("valid JSON")
}

/// A temporary path as a command-line argument.
pub fn path_str(p: &Path) -> String {
    p.to_str().expect("temporary paths are UTF-8").to_owned()
}

/// Runs `vmsbench ARGS…` in-process; it must not fail.
pub fn run_in_process(args: &[&str]) -> ExitCode {
    try_run(args).expect("run succeeds")
}

/// The result of `link` in `mode`.
pub fn result<'a>(report: &'a Value, link: &str, mode: &str) -> &'a Value {
    report["results"]
        .as_array()
        .expect("results array")
        .iter()
        .find(|r| r["link"] == link && r["mode"] == mode)
        .unwrap_or_else(|| panic!("no result for {link} {mode}"))
}

/// Runs `vmsbench ARGS… --json DIR/report.json` in-process; it must succeed. Returns the
/// report.
pub fn run_report_in(dir: &Path, args: &[&str]) -> Value {
    let out = dir.join("report.json");
    let out_arg = out.to_str().expect("utf-8 path");
    let mut argv = args.to_vec();
    argv.extend(["--json", out_arg]);
    assert_eq!(run_in_process(&argv), ExitCode::SUCCESS);
    read_json(&out)
}

/// Runs `vmsbench run SCENARIO… --duration D --warmup W --repeat 1` (then `extra` flags)
/// in-process with its JSON in `dir`; it must succeed. Returns the report. `scenario` may
/// carry flags of its own (`["medium", "--scale", "0.05"]`).
pub fn run_once(
    dir: &Path,
    scenario: &[&str],
    duration: &str,
    warmup: &str,
    extra: &[&str],
) -> Value {
    let mut argv = vec!["run"];
    argv.extend_from_slice(scenario);
    argv.extend(["--duration", duration, "--warmup", warmup, "--repeat", "1"]);
    argv.extend_from_slice(extra);
    run_report_in(dir, &argv)
}

/// Writes a scenario file into `dir` and returns its path, to pass as the scenario.
pub fn write_scenario(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path.to_str().expect("utf-8 path").to_owned()
}
