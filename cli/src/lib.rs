//! The longrun command line's parts that are more than argument parsing: the load generator
//! ([`bench`](mod@bench)), the retention soak ([`soak`](mod@soak)), the task list bench ([`tasks_bench`](mod@tasks_bench)), CPU and WAL readings ([`cpu`](mod@cpu)) and private PostgreSQL clusters ([`cluster`](mod@cluster)). The binaries `longrun` and `longrun-chaos` live in `src/bin/`.

pub mod acts_bench;
pub mod bench;
pub mod cluster;
pub mod cpu;
pub mod prefill;
pub mod signal_bench;
pub mod soak;
pub mod sustain;
pub mod tasks_bench;
