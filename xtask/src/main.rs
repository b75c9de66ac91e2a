//! `cargo xtask`: every build, lint, test and packaging step of the workspace, so that local
//! runs and CI go through the same code.

mod artifacts;
mod atomic_file;
mod bench;
mod ci;
mod dashboards;
mod deploy;
mod dist;
mod docker;
mod flags;
mod fuzz;
mod http;
mod icons;
mod lint;
mod nginx;
mod notify;
mod path;
mod release;
mod setup;
mod sign;
mod smoke;
mod step;
mod symbols;
mod test_suite;
#[cfg(test)]
mod tidy;
mod workspace;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let flags = flags::Xtask::parse();
    step::set_verbose(flags.verbose);
    match run(flags.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(command: flags::Command) -> anyhow::Result<()> {
    let sh = xshell::Shell::new()?;
    sh.change_dir(path::project_root());
    match command {
        flags::Command::Setup(cmd) => cmd.run(&sh),
        flags::Command::Lint(cmd) => cmd.run(&sh),
        flags::Command::Test(cmd) => cmd.run(&sh),
        flags::Command::Ci(cmd) => cmd.run(&sh),
        flags::Command::Dist(cmd) => cmd.run(&sh),
        flags::Command::Verify(cmd) => cmd.run(&sh),
        flags::Command::Bench(cmd) => cmd.run(&sh),
        flags::Command::Docker(cmd) => cmd.run(&sh),
        flags::Command::Nginx(cmd) => cmd.run(&sh),
        flags::Command::Dashboards(cmd) => cmd.run(&sh),
        flags::Command::Sign(cmd) => cmd.run(&sh),
        flags::Command::UpdaterManifest(cmd) => cmd.run(&sh),
        flags::Command::Bundle(cmd) => cmd.run(&sh),
        flags::Command::Changelog(cmd) => cmd.run(&sh),
        flags::Command::Release(cmd) => match cmd.command {
            flags::ReleaseCommand::Prepare(prepare) => prepare.run(&sh),
            flags::ReleaseCommand::Publish(publish) => publish.run(),
            flags::ReleaseCommand::Notes(notes) => notes.run(&sh),
        },
        flags::Command::Icons(cmd) => cmd.run(&sh),
        flags::Command::BundleDesktop(cmd) => cmd.run(&sh),
        flags::Command::Symbols(cmd) => cmd.run(&sh),
        flags::Command::Fuzz(cmd) => cmd.run(&sh),
        flags::Command::Smoke(cmd) => cmd.run(&sh),
        flags::Command::Deploy(cmd) => cmd.run(&sh),
        flags::Command::Notify(cmd) => cmd.run(),
    }
}
