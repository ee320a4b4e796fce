//! vmsbench: what does TLS cost on each link of a video-management system?
//!
//! The library behind the `vmsbench` command. [`Opts`] is the parsed command line and
//! [`run()`] executes it, so tests drive the real program in-process:
//! `vmsbench::run(Opts::parse_from(["vmsbench", "run", "--duration", "2s"]))`.

pub mod cli;
pub mod commands;
pub mod engine;
pub mod export;
pub mod output;
pub mod report;
pub mod sys;
pub mod units;

use std::process::ExitCode;

use cli::Command;
pub use cli::Opts;
use commands::{baseline, capacity, certs, handshakes, run, scenarios};
use tokio_util::sync::CancellationToken;

/// Exit status when a run was interrupted (128 + SIGINT), after writing what it measured.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Runs a parsed command line to completion; prints results on stdout, progress on stderr.
pub async fn run(opts: Opts) -> anyhow::Result<ExitCode> {
    let interrupt = CancellationToken::new();
    let (report, exports) = match &opts.command {
        Command::Run(a) => {
            let exports = export::ExportManager::from_args(&a.measure.export)?;
            run::cancel_on_ctrl_c(interrupt.clone());
            (run::run(a, &interrupt).await?, exports)
        }
        Command::Bulk(a) => {
            let exports = export::ExportManager::from_args(&a.measure.export)?;
            run::cancel_on_ctrl_c(interrupt.clone());
            (run::bulk(a, &interrupt).await?, exports)
        }
        Command::Certs(a) => return certs::run(a),
        Command::Baseline(a) => return baseline::run(a),
        Command::Scenarios(a) => return scenarios::run(a),
        Command::Handshakes(a) => {
            run::cancel_on_ctrl_c(interrupt.clone());
            return handshakes::run(a, &interrupt).await;
        }
        Command::Capacity(a) => {
            run::cancel_on_ctrl_c(interrupt.clone());
            let report = capacity::run(a, &interrupt).await?;
            let json = a.export_json.as_deref();
            if json != Some(std::path::Path::new("-")) {
                print!("{}", report.render_table());
            }
            if let Some(path) = json {
                run::write_json(&report, path)?;
            }
            if let Some(path) = &a.export_html {
                let html = capacity::html::render(&report);
                std::fs::write(path, html)
                    .map_err(|e| anyhow::anyhow!("--export-html {}: {e}", path.display()))?;
            }
            return Ok(if report.partial {
                ExitCode::from(EXIT_INTERRUPTED)
            } else {
                ExitCode::SUCCESS
            });
        }
    };
    if !exports.uses_stdout() {
        print!("{}", report.render_table());
    }
    exports.write_all(&report)?;
    Ok(if report.partial {
        ExitCode::from(EXIT_INTERRUPTED)
    } else {
        ExitCode::SUCCESS
    })
}

/// The `vmsbench` program: parses the command line, runs it on a small orchestration
/// runtime (the simulated roles get runtimes of their own), and reports errors.
pub fn main_entry() -> ExitCode {
    use clap::Parser as _;
    let opts = Opts::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("vmsbench-main")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(opts)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
