//! Runs the official riscv-tests ELFs (built outside the repository) when
//! `RISCV_TESTS_DIR` points at them, e.g.
//! `RISCV_TESTS_DIR=/work/isa-tests cargo test -p samsara-cpu --test riscv_tests -- --nocapture`.

mod common;

use std::path::Path;

use common::{Htif, RAM_BASE, TestBus};
use goblin::elf::{Elf, program_header::PT_LOAD};
use samsara_cpu::{Hart, StopReason};
use samsara_types::{GuestVirtAddr, HartId};

/// Suites that must pass, with both the physical (-p) and virtual-memory
/// (-v) environments.
const SUITES: &[&str] = &[
    "rv64ui", "rv64um", "rv64ua", "rv64uf", "rv64ud", "rv64uc", "rv64mi", "rv64si",
];
const RAM_SIZE: u64 = 16 << 20;
const STEP_LIMIT: u64 = 50_000_000;

#[derive(Debug)]
enum Outcome {
    Pass,
    Fail(String),
}

fn run_elf(path: &Path, translate: bool) -> Outcome {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => return Outcome::Fail(format!("read: {e}")),
    };
    let elf = match Elf::parse(&bytes) {
        Ok(elf) => elf,
        Err(e) => return Outcome::Fail(format!("ELF: {e}")),
    };
    let mut bus = TestBus::new(RAM_SIZE);
    for ph in elf.program_headers.iter().filter(|ph| ph.p_type == PT_LOAD) {
        let start = ph.p_offset as usize;
        let data = &bytes[start..start + ph.p_filesz as usize];
        if ph.p_paddr < RAM_BASE || ph.p_paddr + ph.p_memsz > RAM_BASE + RAM_SIZE {
            return Outcome::Fail(format!("segment at {:#x} outside RAM", ph.p_paddr));
        }
        bus.write_bytes(ph.p_paddr, data);
    }
    let symbol = |name: &str| {
        elf.syms
            .iter()
            .find(|s| elf.strtab.get_at(s.st_name) == Some(name))
            .map(|s| s.st_value)
    };
    let Some(tohost) = symbol("tohost") else {
        return Outcome::Fail("no tohost symbol".into());
    };
    bus.mmio_pages.push(tohost >> 12);
    bus.htif = Some(Htif {
        tohost,
        fromhost: symbol("fromhost"),
    });
    let mut hart = Hart::new(HartId(0), GuestVirtAddr(elf.entry));
    if translate {
        if !hart.set_translator(true) {
            return Outcome::Fail("no translator on this host".into());
        }
        // Every block translated at its first arrival: the tests' code,
        // which mostly runs once, runs translated.
        hart.set_translator_tuning(1, false);
    }
    // The translator's runs also stop at every switch into or out of user
    // mode, as a recording's do: the tests must not notice.
    hart.set_stop_on_user_switch(translate);
    while hart.steps().0 < STEP_LIMIT {
        match hart.run(&mut bus, 100_000) {
            StopReason::StepLimit
            | StopReason::Wfi
            | StopReason::Pause
            | StopReason::UserSwitch => {}
            StopReason::DeviceAccess | StopReason::Watch | StopReason::Breakpoint => {
                return Outcome::Fail("unexpected deferred access".into());
            }
        }
        if let Some(code) = bus.exit_code {
            return if code == 0 {
                Outcome::Pass
            } else {
                Outcome::Fail(format!("test #{code} failed (pc={:#x})", hart.pc().raw()))
            };
        }
    }
    Outcome::Fail(format!(
        "timeout after {} steps (pc={:#x})",
        hart.steps().0,
        hart.pc().raw()
    ))
}

#[test]
fn riscv_tests() {
    let Some(dir) = std::env::var_os("RISCV_TESTS_DIR") else {
        println!("RISCV_TESTS_DIR not set: skipping the riscv-tests conformance run");
        return;
    };
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("RISCV_TESTS_DIR is readable")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| !n.contains('.'))
        .filter(|n| {
            SUITES
                .iter()
                .any(|s| n.starts_with(&format!("{s}-p-")) || n.starts_with(&format!("{s}-v-")))
        })
        .collect();
    names.sort();
    // An empty or partial directory must not pass silently.
    let missing: Vec<&str> = SUITES
        .iter()
        .copied()
        .filter(|s| !names.iter().any(|n| n.starts_with(&format!("{s}-"))))
        .collect();
    assert!(
        missing.is_empty(),
        "RISCV_TESTS_DIR has no tests for {missing:?}"
    );
    let filter = std::env::var("RISCV_TESTS_FILTER").ok();
    let mut failed = Vec::new();
    let mut passed = 0;
    // (suite-env, passed, total), e.g. ("rv64ui-p", 54, 54).
    let mut tally: Vec<(String, usize, usize)> = Vec::new();
    // Every test on the interpreter, and on the block translator where
    // there is one.
    let engines: &[(&str, bool)] = if cfg!(target_arch = "x86_64") {
        &[("interp", false), ("jit", true)]
    } else {
        &[("interp", false)]
    };
    for (engine, translate) in engines {
        for name in names
            .iter()
            .filter(|n| filter.as_ref().is_none_or(|f| n.contains(f.as_str())))
        {
            let path = Path::new(&dir).join(name);
            let outcome = run_guarded(&path, *translate);
            // "rv64ui-p-add" -> "rv64ui-p", and the engine.
            let group = format!(
                "{} {engine}",
                &name[..name
                    .match_indices('-')
                    .nth(1)
                    .map_or(name.len(), |(k, _)| k)]
            );
            if tally.last().is_none_or(|t| t.0 != group) {
                tally.push((group.clone(), 0, 0));
            }
            let t = tally.last_mut().unwrap();
            t.2 += 1;
            match outcome {
                Outcome::Pass => {
                    passed += 1;
                    t.1 += 1;
                    println!("PASS {name} ({engine})");
                }
                Outcome::Fail(why) => {
                    println!("FAIL {name} ({engine}): {why}");
                    failed.push(format!("{name} ({engine})"));
                }
            }
        }
    }
    for (group, ok, total) in &tally {
        println!("{group:>17}: {ok}/{total}");
    }
    println!(
        "riscv-tests: {} passed, {} failed, {} total",
        passed,
        failed.len(),
        passed + failed.len()
    );
    assert!(failed.is_empty(), "failed: {failed:?}");
}

/// [`run_elf`], with a panic in the hart a failure of that test.
fn run_guarded(path: &Path, translate: bool) -> Outcome {
    std::panic::catch_unwind(|| run_elf(path, translate)).unwrap_or_else(|e| {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        Outcome::Fail(format!("panicked: {msg}"))
    })
}
