//! The `app-web` binary: parses its configuration, sets up logging and runs the chosen command.

fn main() -> std::process::ExitCode {
    let cli = app_web::cli::Cli::parse_args();
    app_web::tls::install_crypto_provider();
    let answers_on_stdout = matches!(cli.command, Some(app_web::cli::Command::Backup(_)));
    app_web::telemetry::init(&cli.log, answers_on_stdout);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli.run()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "app-web failed");
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
