//! `client-tui`: see `README.md` (section client-tui) and `--help`.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use client_tui::settings::{Args, Settings};

fn main() -> ExitCode {
    let args = Args::parse();
    let settings = match Settings::load(args) {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("client-tui: {e}");
            return ExitCode::from(2);
        }
    };
    // Read while the process has a single thread: the local offset cannot be
    // read safely once other threads exist.
    let utc_offset_secs = time::UtcOffset::current_local_offset().map_or(0, |o| o.whole_seconds());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("client-tui: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        if settings.line {
            client_tui::line_mode::run(settings, utc_offset_secs).await
        } else {
            client_tui::screen::run(settings, utc_offset_secs).await
        }
    });
    // Standard input is read on a blocking thread that may never return.
    runtime.shutdown_timeout(Duration::from_millis(100));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("client-tui: {e:#}");
            ExitCode::FAILURE
        }
    }
}
