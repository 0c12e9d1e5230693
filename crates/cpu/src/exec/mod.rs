//! Instruction execution: one dispatch on the decoded operation.
//!
//! Integer ALU and control flow are written inline here (they are the hot
//! path); the other classes live in their own modules: `int` (M helpers),
//! `mem` (loads/stores), `amo` (A), `fp` (F/D), `system` (Zicsr, privileged).

mod amo;
mod fp;
pub(crate) mod int;
mod mem;
mod system;

use samsara_isa::{Inst, Op};

use crate::bus::Bus;
use crate::hart::{Flow, Hart};
use crate::trap::Exception;

use int::sext32;

/// pred/succ field (bits 27:20) of `pause`: predecessor W, successor none.
pub(crate) const PAUSE_PRED_SUCC: u64 = 0x10;

impl Hart {
    /// Executes instruction `i` at `pc` (which `self.state.pc` holds too)
    /// and returns its flow with the pc after it. The inline arms leave
    /// `self.state.pc` alone (the run loop keeps pc in a register); the
    /// out-of-line ones update it and return it.
    ///
    /// `CACHED`: `i` is the content of pc's decode-cache slot. The arms that
    /// need the instruction's less used fields (rs3, rm, raw) or hand it
    /// to a function then read it from the slot again, so that the hot
    /// loop loads only the fields the common operations use and never has
    /// to build an `Inst` in memory.
    #[inline(always)]
    pub(crate) fn execute<B: Bus, const CACHED: bool>(
        &mut self,
        bus: &mut B,
        pc: u64,
        i: Inst,
    ) -> (Flow, u64) {
        // The fall-through pc from a host branch on the length, so that it
        // does not wait for the slot's length to load (the branch is as
        // predictable as the code is); the empty `asm!` keeps the
        // optimiser from turning it back into an addition.
        let next = if i.len == 2 {
            // SAFETY: an empty assembly statement: no instructions, no
            // memory, stack or flags touched.
            unsafe { std::arch::asm!("", options(nomem, nostack, preserves_flags)) };
            pc.wrapping_add(2)
        } else {
            pc.wrapping_add(4)
        };
        let rd = usize::from(i.rd & 31);
        let a = self.state.x[usize::from(i.rs1 & 31)];
        let b = self.state.x[usize::from(i.rs2 & 31)];
        let imm = i.imm64();

        // The whole instruction, for the arms off the common path.
        macro_rules! whole {
            () => {
                if CACHED { self.dcache.slot(pc).inst } else { i }
            };
        }
        // The value of a `Result<_, ExecError>`, or the failed step's flow.
        macro_rules! tri {
            ($r:expr) => {
                match $r {
                    Ok(v) => v,
                    Err(e) => return (self.fail(e), pc),
                }
            };
        }
        // Write rd (x0 is re-zeroed by the run loop) and fall through.
        macro_rules! wr {
            ($v:expr) => {{
                let v = $v;
                self.state.x[rd] = v;
                (Flow::Continue, next)
            }};
        }
        // A conditional branch. The next pc must come from a host branch,
        // not a conditional move: a predicted host branch lets the host run
        // ahead into the next guest instruction, where a conditional move
        // makes the next decode-cache lookup wait for the guest registers.
        // The empty `asm!` on the taken side is what keeps the optimiser
        // from if-converting it.
        macro_rules! branch {
            ($cond:expr) => {{
                if $cond {
                    // SAFETY: an empty assembly statement: no instructions,
                    // no memory, stack or flags touched.
                    unsafe { std::arch::asm!("", options(nomem, nostack, preserves_flags)) };
                    (Flow::Continue, pc.wrapping_add(imm))
                } else {
                    (Flow::Continue, next)
                }
            }};
        }
        macro_rules! load {
            ($size:expr, $ext:expr) => {{
                let v = tri!(self.load(bus, a.wrapping_add(imm), $size));
                #[allow(clippy::redundant_closure_call)]
                let v = ($ext)(v);
                wr!(v)
            }};
        }
        macro_rules! store {
            ($size:expr) => {{
                tri!(self.store(bus, a.wrapping_add(imm), $size, b));
                (Flow::Continue, next)
            }};
        }

        match i.op {
            Op::Addi => wr!(a.wrapping_add(imm)),
            Op::Add => wr!(a.wrapping_add(b)),
            Op::Lui => wr!(imm),
            Op::Auipc => wr!(pc.wrapping_add(imm)),
            Op::Jal => {
                self.state.x[rd] = next;
                (Flow::Continue, pc.wrapping_add(imm))
            }
            Op::Jalr => {
                // With C, targets are always 2-aligned after clearing bit 0.
                // (Target from rs1 before rd is written: rd may be rs1.)
                self.state.x[rd] = next;
                (Flow::Continue, a.wrapping_add(imm) & !1)
            }
            Op::Beq => branch!(a == b),
            Op::Bne => branch!(a != b),
            Op::Blt => branch!((a as i64) < (b as i64)),
            Op::Bge => branch!((a as i64) >= (b as i64)),
            Op::Bltu => branch!(a < b),
            Op::Bgeu => branch!(a >= b),
            Op::Lb => load!(1, |v: u64| v as i8 as i64 as u64),
            Op::Lh => load!(2, |v: u64| v as i16 as i64 as u64),
            Op::Lw => load!(4, |v: u64| v as i32 as i64 as u64),
            Op::Ld => load!(8, |v: u64| v),
            Op::Lbu | Op::Lhu | Op::Lwu => {
                let size = match i.op {
                    Op::Lbu => 1,
                    Op::Lhu => 2,
                    _ => 4,
                };
                load!(size, |v: u64| v)
            }
            Op::Sb => store!(1),
            Op::Sh => store!(2),
            Op::Sw => store!(4),
            Op::Sd => store!(8),
            Op::Slti => wr!(u64::from((a as i64) < (imm as i64))),
            Op::Sltiu => wr!(u64::from(a < imm)),
            Op::Xori => wr!(a ^ imm),
            Op::Ori => wr!(a | imm),
            Op::Andi => wr!(a & imm),
            Op::Slli => wr!(a << (imm & 63)),
            Op::Srli => wr!(a >> (imm & 63)),
            Op::Srai => wr!(((a as i64) >> (imm & 63)) as u64),
            Op::Sub => wr!(a.wrapping_sub(b)),
            Op::Sll => wr!(a << (b & 63)),
            Op::Slt => wr!(u64::from((a as i64) < (b as i64))),
            Op::Sltu => wr!(u64::from(a < b)),
            Op::Xor => wr!(a ^ b),
            Op::Srl => wr!(a >> (b & 63)),
            Op::Sra => wr!(((a as i64) >> (b & 63)) as u64),
            Op::Or => wr!(a | b),
            Op::And => wr!(a & b),
            Op::Addiw => wr!(sext32(a.wrapping_add(imm))),
            Op::Slliw => wr!(sext32(u64::from((a as u32) << (imm & 31)))),
            Op::Srliw => wr!(sext32(u64::from((a as u32) >> (imm & 31)))),
            Op::Sraiw => wr!(((a as i32) >> (imm & 31)) as i64 as u64),
            Op::Addw => wr!(sext32(a.wrapping_add(b))),
            Op::Subw => wr!(sext32(a.wrapping_sub(b))),
            Op::Sllw => wr!(sext32(u64::from((a as u32) << (b & 31)))),
            Op::Srlw => wr!(sext32(u64::from((a as u32) >> (b & 31)))),
            Op::Sraw => wr!(((a as i32) >> (b & 31)) as i64 as u64),
            // Harts see their own accesses in order and RAM accesses use
            // host atomics; fence has nothing more to enforce.
            Op::Fence => {
                std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
                bus.fence(self.state.steps, (imm >> 4) as u8 & 0xf, imm as u8 & 0xf);
                // `pause` (Zihintpause) is `fence w, 0`: a spin-loop hint.
                let flow = if imm == PAUSE_PRED_SUCC {
                    Flow::Pause
                } else {
                    Flow::Continue
                };
                (flow, next)
            }
            Op::Mul => wr!(a.wrapping_mul(b)),
            Op::Mulh => wr!(int::mulh(a, b)),
            Op::Mulhsu => wr!(int::mulhsu(a, b)),
            Op::Mulhu => wr!(int::mulhu(a, b)),
            Op::Div => wr!(int::div(a, b)),
            Op::Divu => wr!(int::divu(a, b)),
            Op::Rem => wr!(int::rem(a, b)),
            Op::Remu => wr!(int::remu(a, b)),
            Op::Mulw => wr!(sext32(a.wrapping_mul(b))),
            Op::Divw => wr!(int::divw(a, b)),
            Op::Divuw => wr!(int::divuw(a, b)),
            Op::Remw => wr!(int::remw(a, b)),
            Op::Remuw => wr!(int::remuw(a, b)),
            // F/D (listed, like every operation, so that the dispatch is one
            // table lookup with no range check in front).
            Op::Flw
            | Op::Fsw
            | Op::FmaddS
            | Op::FmsubS
            | Op::FnmsubS
            | Op::FnmaddS
            | Op::FaddS
            | Op::FsubS
            | Op::FmulS
            | Op::FdivS
            | Op::FsqrtS
            | Op::FsgnjS
            | Op::FsgnjnS
            | Op::FsgnjxS
            | Op::FminS
            | Op::FmaxS
            | Op::FcvtWS
            | Op::FcvtWuS
            | Op::FcvtLS
            | Op::FcvtLuS
            | Op::FmvXW
            | Op::FclassS
            | Op::FeqS
            | Op::FltS
            | Op::FleS
            | Op::FcvtSW
            | Op::FcvtSWu
            | Op::FcvtSL
            | Op::FcvtSLu
            | Op::FmvWX
            | Op::Fld
            | Op::Fsd
            | Op::FmaddD
            | Op::FmsubD
            | Op::FnmsubD
            | Op::FnmaddD
            | Op::FaddD
            | Op::FsubD
            | Op::FmulD
            | Op::FdivD
            | Op::FsqrtD
            | Op::FsgnjD
            | Op::FsgnjnD
            | Op::FsgnjxD
            | Op::FminD
            | Op::FmaxD
            | Op::FcvtSD
            | Op::FcvtDS
            | Op::FcvtWD
            | Op::FcvtWuD
            | Op::FcvtLD
            | Op::FcvtLuD
            | Op::FmvXD
            | Op::FclassD
            | Op::FeqD
            | Op::FltD
            | Op::FleD
            | Op::FcvtDW
            | Op::FcvtDWu
            | Op::FcvtDL
            | Op::FcvtDLu
            | Op::FmvDX => {
                tri!(self.exec_fp(bus, whole!()));
                (Flow::Continue, next)
            }
            // Everything else (A, Zicsr, system, illegal) runs out of line.
            Op::Illegal
            | Op::FenceI
            | Op::Ecall
            | Op::Ebreak
            | Op::Mret
            | Op::Sret
            | Op::Wfi
            | Op::SfenceVma
            | Op::Csrrw
            | Op::Csrrs
            | Op::Csrrc
            | Op::Csrrwi
            | Op::Csrrsi
            | Op::Csrrci
            | Op::LrW
            | Op::ScW
            | Op::AmoswapW
            | Op::AmoaddW
            | Op::AmoxorW
            | Op::AmoandW
            | Op::AmoorW
            | Op::AmominW
            | Op::AmomaxW
            | Op::AmominuW
            | Op::AmomaxuW
            | Op::LrD
            | Op::ScD
            | Op::AmoswapD
            | Op::AmoaddD
            | Op::AmoxorD
            | Op::AmoandD
            | Op::AmoorD
            | Op::AmominD
            | Op::AmomaxD
            | Op::AmominuD
            | Op::AmomaxuD => {
                // The cached form reads the slot inside a separate
                // function, so the optimiser cannot hand it the hot loop's
                // copy of the instruction (which would put that in memory).
                let flow = if CACHED {
                    self.execute_out_of_line_cached(bus, pc)
                } else {
                    self.execute_out_of_line(bus, i)
                };
                (flow, self.state.pc)
            }
        }
    }

    /// [`Self::execute_out_of_line`] for the instruction in pc's decode-cache
    /// slot.
    #[inline(never)]
    fn execute_out_of_line_cached<B: Bus>(&mut self, bus: &mut B, pc: u64) -> Flow {
        let i = self.dcache.slot(pc).inst;
        self.execute_out_of_line(bus, i)
    }

    /// The operations kept out of the hot loop: A, Zicsr, the system
    /// instructions and F/D.
    #[inline(always)]
    fn execute_out_of_line<B: Bus>(&mut self, bus: &mut B, i: Inst) -> Flow {
        let value = match i.op {
            Op::LrW | Op::LrD => self.exec_lr(bus, i),
            Op::ScW | Op::ScD => self.exec_sc(bus, i),
            Op::AmoswapW
            | Op::AmoaddW
            | Op::AmoxorW
            | Op::AmoandW
            | Op::AmoorW
            | Op::AmominW
            | Op::AmomaxW
            | Op::AmominuW
            | Op::AmomaxuW
            | Op::AmoswapD
            | Op::AmoaddD
            | Op::AmoxorD
            | Op::AmoandD
            | Op::AmoorD
            | Op::AmominD
            | Op::AmomaxD
            | Op::AmominuD
            | Op::AmomaxuD => self.exec_amo(bus, i),
            Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci => {
                return self.exec_csr(bus, i).unwrap_or_else(|e| self.fail(e));
            }
            Op::Ecall | Op::Ebreak | Op::Mret | Op::Sret | Op::Wfi | Op::SfenceVma | Op::FenceI => {
                return self.exec_system(i).unwrap_or_else(|e| self.fail(e));
            }
            Op::Illegal => {
                return self.fail(Exception::IllegalInstruction(u64::from(i.raw)).into());
            }
            // Everything else is F/D (normally run inline by `execute`).
            _ => match self.exec_fp(bus, i) {
                Ok(()) => {
                    self.state.pc = self.state.pc.wrapping_add(u64::from(i.len));
                    return Flow::Continue;
                }
                Err(e) => return self.fail(e),
            },
        };
        match value {
            Ok(v) => {
                self.state.x[usize::from(i.rd & 31)] = v;
                self.state.pc = self.state.pc.wrapping_add(u64::from(i.len));
                Flow::Continue
            }
            Err(e) => self.fail(e),
        }
    }
}
