//! `mall-load`: a load generator for a running mall. `mall-load --help` says how to use it.

use mall_bench::load::{self, args};

fn main() {
    mall_bench::cli::main("mall-load", args::parse, args::help, load::run)
}
