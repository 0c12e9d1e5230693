//! The machine in run mode: single-hart speed on intbench and fpbench,
//! parsum scaling at 1, 2 and 4 harts, each beside QEMU TCG.

use std::fmt::Write as _;

use anyhow::Result;

use crate::context::{Bench, SamsaraRun};
use crate::process::{ProcessRun, load_average};
use crate::report::{Cell, Report, Table, Target};
use crate::stats::{busy_note, median, mips};

/// One row of the machine suite.
struct Workload {
    guest: &'static str,
    harts: u32,
}

/// The medians of one workload's runs.
struct Measured {
    instructions: u64,
    run_wall: f64,
    run_mips: f64,
    process_wall: f64,
    qemu_wall: Option<f64>,
    qemu_output_differs: bool,
    /// Median share of the host other processes used during the runs.
    others_busy: Option<f64>,
}

const MACHINE_WORKLOADS: &[Workload] = &[
    // Next to nothing to run: the row shows each machine's start-up cost.
    Workload {
        guest: "hello",
        harts: 1,
    },
    Workload {
        guest: "intbench",
        harts: 1,
    },
    Workload {
        guest: "fpbench",
        harts: 1,
    },
    Workload {
        guest: "parsum",
        harts: 1,
    },
    Workload {
        guest: "parsum",
        harts: 2,
    },
    Workload {
        guest: "parsum",
        harts: 4,
    },
];

const TARGET_INTBENCH_MIPS: f64 = 250.0;
const TARGET_PARSUM_2_HART_SPEEDUP: f64 = 1.8;

/// `samsara-bench --suite machine`.
pub fn machine_suite(bench: &Bench) -> Result<Report> {
    let images = MACHINE_WORKLOADS
        .iter()
        .map(|w| bench.guest(w.guest))
        .collect::<Result<Vec<_>>>()?;

    // Repeats outermost, so slow drift on the host (another job starting)
    // spreads over every workload instead of landing on one.
    let n = MACHINE_WORKLOADS.len();
    let mut ours: Vec<Vec<SamsaraRun>> = (0..n).map(|_| Vec::new()).collect();
    let mut theirs: Vec<Vec<ProcessRun>> = (0..n).map(|_| Vec::new()).collect();
    for rep in 1..=bench.repeats {
        for (i, (w, image)) in MACHINE_WORKLOADS.iter().zip(&images).enumerate() {
            let s = bench.samsara_run(image, w.harts)?;
            let mut line = format!(
                "{} at {} hart(s), run {rep}/{}: samsara {:.3} s ({:.1} MIPS{})",
                w.guest,
                w.harts,
                bench.repeats,
                s.summary.wall_seconds,
                mips(s.summary.instructions, s.summary.wall()),
                busy_note(s.run.others_busy)
            );
            if let Some(qemu) = &bench.qemu {
                let q = bench.qemu_run(qemu, image, w.harts)?;
                let _ = write!(
                    line,
                    ", qemu {:.3} s{}",
                    q.wall.as_secs_f64(),
                    busy_note(q.others_busy)
                );
                theirs[i].push(q);
            }
            bench.progress(&line);
            ours[i].push(s);
        }
    }

    let measured: Vec<Measured> = (0..n)
        .map(|i| {
            let runs = &ours[i];
            let instr: Vec<f64> = runs.iter().map(|r| r.summary.instructions as f64).collect();
            let walls: Vec<f64> = runs.iter().map(|r| r.summary.wall_seconds).collect();
            let rates: Vec<f64> = runs
                .iter()
                .map(|r| mips(r.summary.instructions, r.summary.wall()))
                .collect();
            let procs: Vec<f64> = runs.iter().map(|r| r.run.wall.as_secs_f64()).collect();
            let qemu: Vec<f64> = theirs[i].iter().map(|q| q.wall.as_secs_f64()).collect();
            let expected = &runs[0].run.stdout;
            let busy: Vec<f64> = runs
                .iter()
                .map(|r| &r.run)
                .chain(&theirs[i])
                .filter_map(|r| r.others_busy)
                .collect();
            Measured {
                instructions: median(&instr).round() as u64,
                run_wall: median(&walls),
                run_mips: median(&rates),
                process_wall: median(&procs),
                qemu_wall: (!qemu.is_empty()).then(|| median(&qemu)),
                qemu_output_differs: theirs[i].iter().any(|q| &q.stdout != expected),
                others_busy: (!busy.is_empty()).then(|| median(&busy)),
            }
        })
        .collect();

    let mut table = Table::new(
        "Run mode: samsara vs QEMU TCG (medians)",
        &[
            ("guest", "guest"),
            ("harts", "harts"),
            ("instructions", "instructions"),
            ("samsara_run_s", "samsara run s"),
            ("samsara_mips", "samsara MIPS"),
            ("samsara_mips_per_hart", "MIPS/hart"),
            ("speedup_vs_1_hart", "speedup vs 1 hart"),
            ("samsara_process_s", "samsara process s"),
            ("qemu_process_s", "QEMU process s"),
            ("qemu_implied_mips", "QEMU MIPS¹"),
            ("samsara_over_qemu", "samsara/QEMU²"),
            ("others_busy_pct", "busy elsewhere %³"),
        ],
    );
    let one_hart_wall = |guest: &str| {
        MACHINE_WORKLOADS
            .iter()
            .zip(&measured)
            .find(|(w, _)| w.guest == guest && w.harts == 1)
            .map(|(_, m)| m.run_wall)
    };
    for (w, m) in MACHINE_WORKLOADS.iter().zip(&measured) {
        let speedup = match one_hart_wall(w.guest) {
            Some(base) if w.guest == "parsum" => Cell::num(base / m.run_wall, 2),
            _ => Cell::Missing,
        };
        let qemu = m.qemu_wall;
        table.push(vec![
            Cell::Text(w.guest.into()),
            Cell::Int(w.harts.into()),
            Cell::Int(m.instructions),
            Cell::num(m.run_wall, 3),
            Cell::num(m.run_mips, 1),
            Cell::num(m.run_mips / f64::from(w.harts), 1),
            speedup,
            Cell::num(m.process_wall, 3),
            qemu.map_or(Cell::Missing, |q| Cell::num(q, 3)),
            qemu.map_or(Cell::Missing, |q| {
                Cell::num(m.instructions as f64 / q / 1e6, 0)
            }),
            qemu.map_or(Cell::Missing, |q| Cell::num(q / m.process_wall, 3)),
            m.others_busy
                .map_or(Cell::Missing, |b| Cell::num(b * 100.0, 0)),
        ]);
    }

    let mut notes = vec![
        "samsara figures come from its own summary line (`run s`: first instruction to \
         power-off) of real `samsara run` processes; `process s` is the same run timed from \
         spawn to exit. `speedup vs 1 hart` is parsum's 1-hart run time over its N-hart run \
         time. 4 harts on a 2-core host are oversubscribed."
            .to_string(),
        "¹ QEMU does not count instructions, so its MIPS are implied: samsara's instruction \
         count for the same deterministic guest divided by QEMU's process wall time \
         (`-accel tcg,thread=multi`), start-up included (see the hello row), so on runs \
         this short they understate QEMU's speed. For parsum at 2 and 4 harts the count \
         includes the harts' barrier spinning, which can differ on QEMU."
            .to_string(),
        "² samsara/QEMU is speed relative to QEMU: QEMU process s / samsara process s for \
         the same ELF (below 1: samsara is slower)."
            .to_string(),
        "³ The share of the host's CPU time that other processes used during these runs \
         (median over the samsara and QEMU runs, from /proc/stat less this process and its \
         children). Anything but ~0% means the figures on that row are skewed by other work \
         on the host."
            .to_string(),
    ];
    let differing: Vec<String> = MACHINE_WORKLOADS
        .iter()
        .zip(&measured)
        .filter(|(_, m)| m.qemu_output_differs)
        .map(|(w, _)| format!("{} at {} harts", w.guest, w.harts))
        .collect();
    if !differing.is_empty() {
        notes.push(format!(
            "WARNING: guest output differed between samsara and QEMU for {}.",
            differing.join(", ")
        ));
    }

    let mut targets = Vec::new();
    if let Some((_, m)) = MACHINE_WORKLOADS
        .iter()
        .zip(&measured)
        .find(|(w, _)| w.guest == "intbench")
    {
        targets.push(Target {
            what: "intbench, one hart".into(),
            goal: format!("≥ {TARGET_INTBENCH_MIPS:.0} MIPS"),
            measured: format!("{:.1} MIPS{}", m.run_mips, busy_note(m.others_busy)),
            met: m.run_mips >= TARGET_INTBENCH_MIPS,
        });
    }
    if let (Some(base), Some((_, m))) = (
        one_hart_wall("parsum"),
        MACHINE_WORKLOADS
            .iter()
            .zip(&measured)
            .find(|(w, _)| w.guest == "parsum" && w.harts == 2),
    ) {
        let speedup = base / m.run_wall;
        targets.push(Target {
            what: "parsum, 2 harts vs 1".into(),
            goal: format!("≥ {TARGET_PARSUM_2_HART_SPEEDUP:.1}x"),
            // Three decimals: a target missed by 0.002 must not print as met.
            measured: format!("{speedup:.3}x{}", busy_note(m.others_busy)),
            met: speedup >= TARGET_PARSUM_2_HART_SPEEDUP,
        });
    }

    let host = &bench.host;
    let mut setup = vec![
        (
            "host".to_string(),
            format!("{}, {} CPUs", host.cpu, host.cpus),
        ),
        ("load average before".to_string(), host.load_before.clone()),
        (
            "samsara".to_string(),
            format!(
                "{} {}, --cpu {}",
                bench.samsara.display(),
                bench.samsara_version,
                bench.cpu.as_deref().unwrap_or("(samsara's default)")
            ),
        ),
        ("guests".to_string(), bench.guests.display().to_string()),
        (
            "QEMU".to_string(),
            match (&bench.qemu, &host.qemu_version, &host.why_no_qemu) {
                (Some(q), Some(v), _) => format!("{} ({v}), -accel tcg,thread=multi", q.display()),
                (Some(q), None, _) => format!("{}, -accel tcg,thread=multi", q.display()),
                (None, _, Some(why)) => why.clone(),
                (None, _, None) => "not run".into(),
            },
        ),
    ];
    setup.push((
        "load average after".to_string(),
        load_average().unwrap_or_else(|| "unknown".into()),
    ));
    setup.push((
        "runs".to_string(),
        format!(
            "{} per measurement, medians reported; --mem 128M",
            bench.repeats
        ),
    ));
    Ok(Report {
        suite: "machine",
        repeats: bench.repeats,
        setup,
        tables: vec![table],
        notes,
        targets,
        failures: Vec::new(),
    })
}
