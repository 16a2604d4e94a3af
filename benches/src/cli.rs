//! What the command-line tools of mall-bench share: the parsed command, and a `main` that
//! prints the help or runs the tool on a tokio runtime and exits with its status.

use std::future::Future;

/// What a command line asks for.
#[derive(Debug)]
pub enum Command<O> {
    /// Run with these options.
    Run(Box<O>),
    /// Print the help text and stop.
    Help,
}

/// Exit status when the run could not start (bad arguments, no mall, seeding refused).
pub const EXIT_CANNOT_RUN: i32 = 2;

/// The whole `main` of the tool `name`: parses the arguments with `parse`, prints `help()` when
/// asked, else runs `run` on a multi-threaded tokio runtime and exits with the status it answers.
pub fn main<O, F>(
    name: &str,
    parse: fn(std::iter::Skip<std::env::Args>) -> Result<Command<O>, String>,
    help: fn() -> String,
    run: fn(O) -> F,
) -> !
where
    F: Future<Output = i32>,
{
    let opts = match parse(std::env::args().skip(1)) {
        Ok(Command::Run(opts)) => *opts,
        Ok(Command::Help) => {
            print!("{}", help());
            std::process::exit(0);
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the tokio runtime: {e}");
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    let status = runtime.block_on(run(opts));
    std::process::exit(status);
}
