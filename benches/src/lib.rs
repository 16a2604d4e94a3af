//! mall-bench: load and micro benchmarks of the mall. See `benches/README.md` for the figures
//! and how they were made.

pub mod cli;
pub mod gap;
pub mod load;
