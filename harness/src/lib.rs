//! vmsbench: what does TLS cost on each link of a video-management system?
//!
//! The library behind the `vmsbench` command. [`Opts`] is the parsed command line and
//! [`run()`] executes it, so tests drive the real program in-process:
//! `vmsbench::run(Opts::parse_from(["vmsbench", "run", "--duration", "2s"]))`.
//!
//! `ARCHITECTURE.md` at the workspace root maps the modules: [`commands`] (one per
//! subcommand) drive the [`engine`] (scenario → plan → roles → measurements), whose outcomes
//! become a [`report`], shown by `output` and written by `export`.

// What the integration tests and benches reach is public; everything else is the crate's
// own, so that the compiler sees dead code and a change inside cannot break a user.
#![warn(unreachable_pub)]

pub mod cli;
pub mod commands;
pub mod engine;
pub(crate) mod export;
#[doc(hidden)]
pub mod fuzz;
pub(crate) mod output;
pub mod report;
pub mod sys;
pub(crate) mod units;

use std::process::ExitCode;

pub use commands::{run, Command, Opts, EXIT_INTERRUPTED, EXIT_USAGE};

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
            if commands::is_usage_error(&e) {
                ExitCode::from(commands::EXIT_USAGE)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
