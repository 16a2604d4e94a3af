//! `failover-gap`: how long customers of a mall cluster cannot read their carts when one node
//! is killed. `failover-gap --help` says how to use it.

fn main() {
    mall_bench::cli::main(
        "failover-gap",
        mall_bench::gap::parse,
        mall_bench::gap::help,
        mall_bench::gap::run,
    )
}
