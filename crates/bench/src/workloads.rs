//! The bundled workloads of the record and parsec suites: what each is,
//! and roughly how long it runs (for the up-front time estimate).

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::ValueEnum;

use crate::Options;
use crate::context::Bench;

/// Which build of the PARSEC-like workloads (`guests/build/NAME-SIZE.elf`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Size {
    /// Small inputs (~50-90 million instructions): seconds per run.
    Test,
    /// Full inputs (~2.2-2.5 billion instructions): 10-40 s per run.
    Bench,
}

impl Size {
    pub fn name(self) -> &'static str {
        match self {
            Size::Test => "test",
            Size::Bench => "bench",
        }
    }
}

/// A bundled workload and what the time estimate assumes about it.
pub struct Known {
    pub name: &'static str,
    /// One of the PARSEC-like workloads: its ELF is `NAME-SIZE.elf`.
    pub parsec: bool,
    /// Needs a virtio disk (a scratch image is made for it).
    pub disk: bool,
    /// CPU-bound: held to the trace-rate target.
    pub cpu_bound: bool,
    /// Approximate instructions at one hart, test and bench size (the same
    /// for non-PARSEC guests): only for the up-front time estimate.
    pub instructions: [f64; 2],
    /// The instruction count grows with the hart count (every hart does
    /// the same amount of work) rather than being split between them.
    pub per_hart: bool,
    /// Approximate one-hart `samsara run` MIPS (measured at commit 616ccdf
    /// on the 2-core build host, which was half busy with other work, so
    /// on the low side): only for the up-front time estimate.
    pub mips: f64,
}

pub const CATALOG: &[Known] = &[
    Known {
        name: "parsum",
        parsec: false,
        disk: false,
        cpu_bound: true,
        instructions: [352e6, 352e6],
        per_hart: false,
        mips: 200.0,
    },
    Known {
        name: "intbench",
        parsec: false,
        disk: false,
        cpu_bound: true,
        instructions: [333e6, 333e6],
        per_hart: false,
        mips: 220.0,
    },
    Known {
        name: "racy_counter",
        parsec: false,
        disk: false,
        cpu_bound: false,
        instructions: [6e6, 6e6],
        per_hart: true,
        mips: 180.0,
    },
    Known {
        name: "spin_contend",
        parsec: false,
        disk: false,
        cpu_bound: false,
        instructions: [6e6, 6e6],
        per_hart: true,
        mips: 60.0,
    },
    Known {
        name: "dma_mix",
        parsec: false,
        disk: true,
        cpu_bound: false,
        instructions: [5e6, 5e6],
        per_hart: true,
        mips: 40.0,
    },
    Known {
        name: "blackscholes",
        parsec: true,
        disk: false,
        cpu_bound: true,
        instructions: [64e6, 2.45e9],
        per_hart: false,
        mips: 129.0,
    },
    Known {
        name: "bodytrack",
        parsec: true,
        disk: false,
        cpu_bound: false,
        instructions: [84e6, 2.34e9],
        per_hart: false,
        mips: 124.0,
    },
    Known {
        name: "raytrace",
        parsec: true,
        disk: false,
        cpu_bound: false,
        instructions: [82e6, 2.55e9],
        per_hart: false,
        mips: 99.0,
    },
    Known {
        name: "swaptions",
        parsec: true,
        disk: false,
        cpu_bound: true,
        instructions: [46e6, 2.34e9],
        per_hart: false,
        mips: 88.0,
    },
    Known {
        name: "freqmine",
        parsec: true,
        disk: false,
        cpu_bound: false,
        instructions: [67e6, 2.19e9],
        per_hart: false,
        mips: 125.0,
    },
    Known {
        name: "x264",
        parsec: true,
        disk: false,
        cpu_bound: false,
        instructions: [88e6, 2.43e9],
        per_hart: false,
        mips: 157.0,
    },
];

/// Size of the scratch disk given to guests that need one (dma_mix needs
/// at least 64 KiB).
pub const DISK_BYTES: usize = 1 << 20;

/// A workload as run: its catalog entry and image.
pub struct Workload {
    pub known: &'static Known,
    pub image: PathBuf,
}

impl Workload {
    pub fn name(&self) -> &'static str {
        self.known.name
    }

    pub fn approx_instructions(&self, size: Size, harts: u32) -> f64 {
        let base = self.known.instructions[usize::from(size == Size::Bench)];
        if self.known.per_hart {
            base * f64::from(harts)
        } else {
            base
        }
    }
}

/// The suite's workloads, narrowed to `--workloads`, in catalog order.
pub fn workloads(bench: &Bench, options: &Options, parsec_only: bool) -> Result<Vec<Workload>> {
    let offered: Vec<&'static Known> = CATALOG
        .iter()
        .filter(|k| k.parsec || !parsec_only)
        .collect();
    for wanted in &options.workloads {
        if !offered.iter().any(|k| k.name == wanted) {
            bail!(
                "unknown workload '{wanted}' for this suite (choose from {})",
                offered
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    offered
        .into_iter()
        .filter(|k| options.workloads.is_empty() || options.workloads.iter().any(|w| w == k.name))
        .map(|known| {
            let file = if known.parsec {
                format!("{}-{}", known.name, options.size.name())
            } else {
                known.name.to_string()
            };
            Ok(Workload {
                known,
                image: bench.guest(&file)?,
            })
        })
        .collect()
}
