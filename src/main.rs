//! The `sqlgate` command: parses the command line and runs the gateway.
use std::process::ExitCode;

use clap::Parser;
use sqlgate::{
    config::{Cli, Command},
    server::Gateway,
    shutdown, telemetry,
};

/// Exit code for bad configuration (EX_USAGE).
const EXIT_USAGE: u8 = 64;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version are "errors" that print and exit 0.
        Err(error) if !error.use_stderr() => error.exit(),
        Err(error) => {
            // One clear line: clap's message without its usage hints, with
            // the allowed values of an enum flag.
            eprintln!("sqlgate: {}", sqlgate::config::usage_error_line(&error));
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let Command::Serve(args) = cli.command;
    let config = match args.validate() {
        Ok(config) => config,
        Err(problems) => {
            for problem in problems.lines() {
                eprintln!("sqlgate: {problem}");
            }
            return ExitCode::from(EXIT_USAGE);
        }
    };
    // Dropped last, after the gateway has shut down: writes out queued lines.
    let _log = telemetry::init(config.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("can start the tokio runtime");
    runtime.block_on(async {
        let gateway = match Gateway::start(config).await {
            Ok(gateway) => gateway,
            Err(error) => {
                tracing::error!(%error, "could not start");
                return ExitCode::FAILURE;
            }
        };
        shutdown::signal().await;
        gateway.shut_down().await;
        ExitCode::SUCCESS
    })
}
