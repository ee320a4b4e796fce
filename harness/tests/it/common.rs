//! What the end-to-end tests share: running the real program in-process and reading its
//! JSON.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use serde_json::Value;
use vmsbench::Opts;

/// Runs `vmsbench ARGS…` in-process, through the real flag parsing.
pub fn try_run(args: &[&str]) -> anyhow::Result<ExitCode> {
    let opts = Opts::parse_from(std::iter::once("vmsbench").chain(args.iter().copied()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(vmsbench::run(opts))
}

/// Runs `vmsbench ARGS…` in-process; it must not fail.
pub fn run_in_process(args: &[&str]) -> ExitCode {
    try_run(args).expect("run succeeds")
}

/// Reads a JSON file the program wrote.
pub fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("JSON written");
    serde_json::from_str(&text).expect("valid JSON")
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
pub fn run_report(dir: &Path, args: &[&str]) -> Value {
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
    run_report(dir, &argv)
}

/// Writes a scenario file into `dir` and returns its path, to pass as the scenario.
pub fn write_scenario(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write scenario");
    path.to_str().expect("utf-8 path").to_owned()
}
