//! `mall-load`: a load generator for a running mall. `mall-load --help` says how to use it.

use mall_bench::load::{self, EXIT_CANNOT_RUN, args};

fn main() {
    let opts = match args::parse(std::env::args().skip(1)) {
        Ok(args::Command::Run(opts)) => *opts,
        Ok(args::Command::Help) => {
            print!("{}", args::help());
            return;
        }
        Err(e) => {
            eprintln!("mall-load: {e}");
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mall-load: cannot start the tokio runtime: {e}");
            std::process::exit(EXIT_CANNOT_RUN);
        }
    };
    let status = runtime.block_on(load::run(opts));
    std::process::exit(status);
}
