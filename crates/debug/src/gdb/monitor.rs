//! `monitor` commands: where the replay is, jumps, checkpoints, entries,
//! physical memory.

use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use gdbstub::target::ext::monitor_cmd::{ConsoleOutput, MonitorCmd};
use samsara_engine::EngineError;
use samsara_engine::replay::Position;
use samsara_types::GuestPhysAddr;

use super::target::{Debuggee, say};

/// Instructions (all harts) a seek runs between two looks at the clock
/// (~30 ms).
const SEEK_HOP: u64 = 1 << 22;

/// How often a long seek shows gdb it is alive: well under gdb's 2 s.
const KEEP_ALIVE: Duration = Duration::from_millis(500);

pub const HELP: &str = "\
samsara monitor commands:
  when                 the position (entry, step) and each hart's instruction count
  seek ENTRY[+STEP]    go to entry ENTRY (before it, or STEP steps into it)
  seek hartN:COUNT     go to where hart N has executed COUNT instructions
  seek P%              go to P percent of all instructions
  checkpoints          how many checkpoints, where, and the memory they use
  entry                the entry in progress (hart, length, how it ended, its events)
  phys ADDR [LEN]      physical memory (hex dump; default 64 bytes)
  help                 this text
A replay is read-only: writes to registers or memory are refused (E01).";

impl MonitorCmd for Debuggee {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: ConsoleOutput<'_>,
    ) -> Result<(), EngineError> {
        let cmd = String::from_utf8_lossy(cmd);
        let text = match self.monitor(cmd.trim(), &mut out) {
            Ok(text) => text,
            Err(e) => format!("error: {e}"),
        };
        say(&mut out, &text);
        Ok(())
    }
}

impl Debuggee {
    /// Runs one monitor command; the text to show.
    pub(crate) fn monitor(
        &mut self,
        cmd: &str,
        out: &mut ConsoleOutput<'_>,
    ) -> Result<String, EngineError> {
        let mut words = cmd.split_whitespace();
        let verb = words.next().unwrap_or("help");
        let args: Vec<&str> = words.collect();
        match (verb, args.as_slice()) {
            ("help", _) => Ok(HELP.to_string()),
            ("when", []) => Ok(self.when()),
            ("seek", [target]) => self.seek(target, out),
            ("checkpoints", []) => Ok(self.checkpoints()),
            ("entry", []) => Ok(self.entry()),
            ("phys", [addr]) => self.phys(addr, "64"),
            ("phys", [addr, len]) => self.phys(addr, len),
            _ => Err(EngineError::Options(format!(
                "unknown monitor command '{cmd}' (try 'monitor help')"
            ))),
        }
    }

    fn when(&self) -> String {
        let session = self.timeline.session();
        let index = self.timeline.index();
        let p = session.position();
        let total = index.total_steps().max(1);
        let mut s = format!(
            "position: entry {} step {} of {} entries ({:.2}% of {} instructions)",
            p.seq,
            p.step,
            index.entries(),
            100.0 * index.steps_at(p) as f64 / total as f64,
            index.total_steps()
        );
        if let Some(h) = session.current_hart() {
            let _ = write!(s, " (hart {h} is running that entry)");
        } else {
            s.push_str(" (between entries)");
        }
        for (i, h) in session.harts().iter().enumerate() {
            let _ = write!(
                s,
                "\nhart {i}: {} instructions, pc {:#x}",
                h.steps().0,
                h.pc().0
            );
        }
        s
    }

    /// A long seek goes in hops of [`SEEK_HOP`] instructions and sends
    /// gdb an invisible console packet (one NUL byte, which gdb prints as
    /// nothing) every [`KEEP_ALIVE`]: gdb gives up on a `monitor` reply
    /// after `remotetimeout` (2 s) without a packet, and gdbstub cannot
    /// resend one gdb then refuses. What gdb shows does not depend on the
    /// host's speed.
    fn seek(&mut self, target: &str, out: &mut ConsoleOutput<'_>) -> Result<String, EngineError> {
        let position = self.parse_position(target)?;
        let never = AtomicBool::new(false);
        let index = self.timeline.index();
        let here = self.timeline.position();
        let to = index.steps_at(position);
        // Forward from here, or from the checkpoint a backward seek restores.
        let from = if position >= here {
            index.steps_at(here)
        } else {
            self.timeline.checkpoints().total_at_or_before(position)
        };
        // A position the timeline refuses (past the end, past its entry's
        // length) is refused at once, without hops.
        let valid = position <= index.end()
            && index
                .entry(position.seq)
                .is_none_or(|e| position.step <= e.steps);
        let hops: Vec<Position> = (1..)
            .take_while(|_| valid)
            .map(|k| from.saturating_add(k * SEEK_HOP))
            .take_while(|&at| at < to)
            .map(|at| index.position_at_step(at))
            .filter(|&p| p < position)
            .collect();
        let mut said = Instant::now();
        for hop in &hops {
            self.timeline.seek(*hop, &never)?;
            if said.elapsed() >= KEEP_ALIVE {
                out.write_raw(&[0]);
                out.flush();
                said = Instant::now();
            }
        }
        let landing = self.timeline.seek(position, &never)?;
        self.last = Some(landing);
        Ok(format!(
            "{}\n(gdb: 'maintenance flush register-cache' shows the new state)",
            self.when()
        ))
    }

    fn checkpoints(&self) -> String {
        let c = self.timeline.checkpoints();
        let mut s = format!(
            "{} checkpoints, {} of {} MiB budget",
            c.len(),
            mib(c.bytes()),
            mib(c.budget())
        );
        for saved in c.iter() {
            let p = saved.checkpoint.position();
            let _ = write!(
                s,
                "\n  before entry {} ({} instructions; {} KiB with what it shares)",
                p.seq,
                saved.total,
                saved.checkpoint.bytes() / 1024
            );
        }
        s
    }

    fn entry(&self) -> String {
        let session = self.timeline.session();
        match session.current_entry() {
            Some(record) => {
                let p = session.position();
                let mut s = format!(
                    "entry {}: hart {}, {} steps ({} done), ended by {:?}, {} events",
                    p.seq,
                    record.hart,
                    record.steps,
                    p.step,
                    record.reason,
                    record.events.len()
                );
                for e in record.events.iter().take(32) {
                    let _ = write!(s, "\n  {e:?}");
                }
                if record.events.len() > 32 {
                    let _ = write!(s, "\n  ... {} more", record.events.len() - 32);
                }
                s
            }
            None => format!("between entries: entry {} is next", session.position().seq),
        }
    }

    fn phys(&self, addr: &str, len: &str) -> Result<String, EngineError> {
        let addr = parse_number(addr)?;
        let len = parse_number(len)?.min(4096) as usize;
        let session = self.timeline.session();
        let hart = session.current_hart().unwrap_or(self.timeline.focus());
        let mut buf = vec![0u8; len];
        let n = session.read_phys(hart, GuestPhysAddr(addr), &mut buf);
        if n == 0 {
            return Err(EngineError::Options(format!(
                "physical address {addr:#x} is not RAM"
            )));
        }
        let mut s = String::new();
        for (i, line) in buf[..n].chunks(16).enumerate() {
            let _ = write!(s, "{:#012x}:", addr + 16 * i as u64);
            for b in line {
                let _ = write!(s, " {b:02x}");
            }
            s.push('\n');
        }
        if n < len {
            let _ = write!(s, "(RAM ends at {:#x})", addr + n as u64);
        }
        Ok(s.trim_end().to_string())
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 20) as f64)
}

fn parse_number(s: &str) -> Result<u64, EngineError> {
    samsara_types::parse_number(s)
        .ok_or_else(|| EngineError::Options(format!("'{s}' is not a number")))
}

impl Debuggee {
    /// `ENTRY[+STEP]`, `hartN:COUNT` or `P%`.
    fn parse_position(&self, s: &str) -> Result<Position, EngineError> {
        let index = self.timeline.index();
        if let Some(percent) = s.strip_suffix('%') {
            let p: f64 = percent
                .parse()
                .ok()
                .filter(|p: &f64| (0.0..=100.0).contains(p))
                .ok_or_else(|| {
                    EngineError::Options(format!("'{s}' is not a percentage from 0% to 100%"))
                })?;
            return Ok(index.position_at_percent(p));
        }
        if let Some((hart, count)) = s.strip_prefix("hart").and_then(|r| r.split_once(':')) {
            let hart: usize = hart
                .parse()
                .ok()
                .filter(|&h| h < index.harts())
                .ok_or_else(|| {
                    EngineError::Options(format!(
                        "no hart '{hart}': the recording has harts 0 to {}",
                        index.harts() - 1
                    ))
                })?;
            let count = parse_number(count)?;
            return index.position_of_hart_step(hart, count).ok_or_else(|| {
                EngineError::Options(format!(
                    "hart {hart} executes {} instructions in the whole recording",
                    index.hart_total_steps(hart)
                ))
            });
        }
        let (entry, step) = s.split_once('+').unwrap_or((s, "0"));
        let seq = parse_number(entry)?;
        if seq == 0 {
            return Err(EngineError::Options("entries are numbered from 1".into()));
        }
        Ok(Position {
            seq,
            step: parse_number(step)?,
        })
    }
}
