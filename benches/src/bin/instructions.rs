//! Runs one submit-to-completion variant once, for counting its instructions under callgrind
//! (`benches/callgrind.sh` runs it at two sizes and divides the difference by the difference in N,
//! which cancels the setup).
//!
//! ```sh
//! instructions <worker|worker_context|tracker|spawn|join_set> <N>
//! ```
//!
//! One runtime thread (`new_current_thread`), one submitting task: no contention, only the work
//! per task. The ids are made before, and the finished `Worker` is dropped after,
//! [`measured_region`], the function the script passes to `--toggle-collect` so that only it is
//! counted.

use std::process::ExitCode;

use background_worker_benches::ids;
use background_worker_benches::submit::{Input, Run, Variant};
use tokio::runtime::Runtime;

/// Everything callgrind counts: the variant's run, from its first submit until every task
/// finished (its own setup, such as `Worker::new`, is constant and cancels out in the script).
#[inline(never)]
fn measured_region(rt: &Runtime, variant: Variant, input: Input) -> Run {
    rt.block_on(variant.run(input))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let names: Vec<&str> = Variant::ALL.iter().map(|variant| variant.name()).collect();
    let (Some(variant), Some(n)) = (
        args.first().and_then(|name| Variant::parse(name)),
        args.get(1)
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n > 0),
    ) else {
        eprintln!("usage: instructions <{}> <N>", names.join("|"));
        return ExitCode::from(2);
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build the tokio runtime");
    let input = variant.prepare(&ids("job", n), 1);
    let run = std::hint::black_box(measured_region(&rt, variant, input));
    eprintln!("{} n={n}: {:?}", variant.name(), run.elapsed);
    drop(run); // the finished `Worker`, if any: not counted (as it is not timed in the benches)
    ExitCode::SUCCESS
}
