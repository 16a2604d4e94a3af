//! `failover-gap`: how long customers of a mall cluster cannot read their carts when one node
//! is killed. `failover-gap --help` says how to use it.

use mall_bench::gap::{self, Command};
use mall_bench::load::EXIT_CANNOT_RUN;

fn main() {
    let opts = match gap::parse(std::env::args().skip(1)) {
        Ok(Command::Run(opts)) => *opts,
        Ok(Command::Help) => {
            print!("{}", gap::help());
            return;
        }
        Err(e) => {
            eprintln!("failover-gap: {e}");
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("failover-gap: cannot start the tokio runtime: {e}");
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    let status = runtime.block_on(gap::run(opts));
    std::process::exit(status);
}
