//! x86-64 templates, one per guest operation (dynasm-rs: a single pass).
//!
//! Host registers while translated code runs (set up by the trampoline):
//! `rdi` the guest registers (`HartState::x`), `rsi` the read TLB, `r10`
//! the write TLB, `r11` the [`BlockFrame`](super::BlockFrame). `rax`,
//! `rcx`, `rdx`, `r8`, `r9` are scratch. The callee-saved `rbx`, `rbp`,
//! `r12`–`r15` (saved once by the trampoline) cache up to six guest
//! registers per block: the block loads them on entry, keeps them in host
//! registers while it loops on itself, and stores the ones it writes at
//! every exit. So between blocks every guest register is in memory, and a
//! block can jump straight into the next one.
//!
//! Each exit takes the instructions done off `frame.left`. An exit with a
//! next pc goes to the chaining code, which looks that pc up in the block
//! table and jumps to its block if it is valid for this code generation
//! and execute-TLB entry and fits the budget left; otherwise it returns
//! to the trampoline with the pc in `frame.next_pc`.

// dynasm's dynamic registers (`Rq(n)`) expand to `n.into()`.
#![allow(clippy::useless_conversion)]

use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler, dynasm};
use samsara_isa::{Format, Inst, Op};

use super::{BlockFrame, JUMP_CACHE, JumpEntry, SLOTS, Slot};
use crate::exec::PAUSE_PRED_SUCC;
use crate::tlb::TlbEntry;

mod fp;

/// The most F/D instructions one call out of a block runs.
const MAX_CALLED_RUN: usize = 16;

/// How the translator treats an instruction.
pub(crate) enum Kind {
    /// Translated; the block goes on after it.
    Straight,
    /// Translated; it ends the block (a control transfer).
    Ends,
    /// Run by the interpreter, called from the block, with the block's
    /// registers in memory around it: F/D (bit-exact by construction),
    /// CSR accesses, LR/SC and AMOs (exactly the interpreter's effects on
    /// the reservation, the bus and the clock). If it did more than
    /// retire, the block stops after it.
    Called,
    /// Left to the interpreter: the block ends before it.
    Interpreted,
}

pub(crate) fn kind(i: &Inst) -> Kind {
    use Op::*;
    match i.op {
        Addi | Add | Sub | Lui | Auipc | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai
        | Sll | Slt | Sltu | Xor | Srl | Sra | Or | And | Addiw | Slliw | Srliw | Sraiw | Addw
        | Subw | Sllw | Srlw | Sraw | Mul | Mulh | Mulhsu | Mulhu | Mulw | Div | Divu | Rem
        | Remu | Divw | Divuw | Remw | Remuw | Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu | Sb | Sh
        | Sw | Sd => Kind::Straight,
        // `pause` (`fence w, 0`) stays with the interpreter: it may stop
        // the run.
        Fence if i.imm64() != PAUSE_PRED_SUCC => Kind::Straight,
        Jal | Jalr | Beq | Bne | Blt | Bge | Bltu | Bgeu => Kind::Ends,
        Csrrw | Csrrs | Csrrc | Csrrwi | Csrrsi | Csrrci => Kind::Called,
        op if op.is_fp() || matches!(op.format(), Format::Amo | Format::Lr) => Kind::Called,
        _ => Kind::Interpreted,
    }
}

const TAG: i32 = std::mem::offset_of!(TlbEntry, tag) as i32;
const ADDEND: i32 = std::mem::offset_of!(TlbEntry, addend) as i32;
const ENTRY_SHIFT: i8 = 4;
const _: () = assert!(std::mem::size_of::<TlbEntry>() == 1 << ENTRY_SHIFT);
const TLB_MASK: i32 = 255;
const LEFT: i32 = std::mem::offset_of!(BlockFrame, left) as i32;
const NEXT_PC: i32 = std::mem::offset_of!(BlockFrame, next_pc) as i32;
const GENERATION: i32 = std::mem::offset_of!(BlockFrame, generation) as i32;
const SLOT_TABLE: i32 = std::mem::offset_of!(BlockFrame, slots) as i32;
const EXEC_TLB: i32 = std::mem::offset_of!(BlockFrame, exec) as i32;
const CHAIN: i32 = std::mem::offset_of!(BlockFrame, chain) as i32;
const FILL: i32 = std::mem::offset_of!(BlockFrame, fill) as i32;
const INTERPRET: i32 = std::mem::offset_of!(BlockFrame, interpret) as i32;
const CALL_OUT: i32 = std::mem::offset_of!(BlockFrame, call_out) as i32;
const CONTEXT: i32 = std::mem::offset_of!(BlockFrame, context) as i32;
const SLOT_SHIFT: i8 = 6;
const _: () = assert!(std::mem::size_of::<Slot>() == 1 << SLOT_SHIFT);
const S_PC: i32 = std::mem::offset_of!(Slot, pc) as i32;
const S_GENERATION: i32 = std::mem::offset_of!(Slot, generation) as i32;
const S_FETCH_ADDEND: i32 = (std::mem::offset_of!(Slot, fetch) + ADDEND as usize) as i32;
const S_CODE: i32 = std::mem::offset_of!(Slot, code) as i32;
const S_LEN: i32 = std::mem::offset_of!(Slot, len) as i32;
const S_CHECKED: i32 = std::mem::offset_of!(Slot, checked) as i32;
const JUMP_CACHE_TABLE: i32 = std::mem::offset_of!(BlockFrame, jump_cache) as i32;
const JUMP_SHIFT: i8 = 4;
const _: () = assert!(std::mem::size_of::<JumpEntry>() == 1 << JUMP_SHIFT);
const JUMP_MASK: i32 = (JUMP_CACHE - 1) as i32;

/// Host register numbers.
const RAX: u8 = 0;
const RCX: u8 = 1;
const RDX: u8 = 2;
/// Callee-saved host registers that cache guest registers in a block.
const CACHE: [u8; 6] = [3, 5, 12, 13, 14, 15];

/// Byte offset of register `r` in the register array.
fn reg(r: u8) -> i32 {
    i32::from(r & 31) * 8
}

type Asm = VecAssembler<X64Relocation>;

/// The code every entry from Rust goes through, at the start of each code
/// space: `enter(x, read, write, frame, block)` saves the callee-saved
/// registers, calls `block` with the fixed registers set, and returns
/// what the block returned (1: it left before an instruction the
/// interpreter must run now; 0: it left at a pc with no block to go to).
/// Then, at `CHAIN_OFFSET`, the code every exit with a next pc jumps to
/// (through `frame.chain`), with the pc in `rcx`: it enters the block at
/// that pc if the table holds one valid now that fits the budget left,
/// and returns 0 otherwise.
pub(super) fn runtime() -> Vec<u8> {
    let mut a = Asm::new(0);
    dynasm!(a
        ; .arch x64
        ; push rbx
        ; push rbp
        ; push r12
        ; push r13
        ; push r14
        ; push r15
        ; sub rsp, 8
        ; mov r10, rdx
        ; mov r11, rcx
        ; call r8
        ; add rsp, 8
        ; pop r15
        ; pop r14
        ; pop r13
        ; pop r12
        ; pop rbp
        ; pop rbx
        ; ret
    );
    assert!(a.offset().0 <= CHAIN_OFFSET, "the trampoline fits");
    while a.offset().0 < CHAIN_OFFSET {
        dynasm!(a ; .arch x64 ; int3);
    }
    // The jump cache first: a hit goes to the block's checked entry.
    jump_cache_entry(&mut a);
    dynasm!(a
        ; .arch x64
        ; cmp QWORD [rax], rcx
        ; jne >table
        ; jmp QWORD [rax + 8]
        ; table:
        ; mov rax, rcx
        ; shr rax, 1
        ; and eax, (SLOTS - 1) as i32
        ; shl rax, SLOT_SHIFT
        ; add rax, QWORD [r11 + SLOT_TABLE]
        ; cmp QWORD [rax + S_PC], rcx
        ; jne >out
        ; mov rdx, QWORD [rax + S_CODE]
        ; test rdx, rdx
        ; jz >out
        ; mov r8, QWORD [r11 + GENERATION]
        ; cmp QWORD [rax + S_GENERATION], r8
        ; jne >out
        ; mov r8d, DWORD [rax + S_LEN]
        ; cmp QWORD [r11 + LEFT], r8
        ; jb >out
        // Its page still maps to the host page it was translated from,
        // fetch permitted in this mode (the execute TLB says so).
        ; mov r8, rcx
        ; shr r8, 12
        ; mov r9, r8
        ; and r9d, TLB_MASK
        ; shl r9, ENTRY_SHIFT
        ; add r9, QWORD [r11 + EXEC_TLB]
        ; cmp QWORD [r9 + TAG], r8
        ; jne >out
        ; mov r8, QWORD [r9 + ADDEND]
        ; cmp QWORD [rax + S_FETCH_ADDEND], r8
        ; jne >out
        // Found: the jump cache leads here next time.
        ; mov r8, QWORD [rax + S_CHECKED]
    );
    jump_cache_entry(&mut a);
    dynasm!(a
        ; .arch x64
        ; mov QWORD [rax], rcx
        ; mov QWORD [rax + 8], r8
        ; jmp rdx
        ; out:
        ; mov QWORD [r11 + NEXT_PC], rcx
        ; xor eax, eax
        ; ret
    );
    assert!(
        a.offset().0 <= CALL_OUT_OFFSET,
        "the chaining code fits: {}",
        a.offset().0
    );
    while a.offset().0 < CALL_OUT_OFFSET {
        dynasm!(a ; .arch x64 ; int3);
    }
    // A call out to Rust: `frame.context`, `rax` and `rdx` as arguments
    // to the function whose pointer is at `r8` in the frame (`fill` or
    // `interpret`), its answer in `eax`. The fixed registers it may
    // clobber (System V) are saved; the stack is 16-byte aligned at the
    // call (a block runs with it at 8 mod 16, and this is called).
    dynasm!(a
        ; .arch x64
        ; push rdi
        ; push rsi
        ; push r10
        ; push r11
        ; mov rsi, rax
        ; mov rdi, QWORD [r11 + CONTEXT]
        ; call QWORD [r11 + r8]
        ; pop r11
        ; pop r10
        ; pop rsi
        ; pop rdi
        ; ret
    );
    a.finalize().expect("no labels")
}

/// `rax` = the address of the jump-cache entry for the pc in `rcx`.
fn jump_cache_entry(a: &mut Asm) {
    dynasm!(a
        ; .arch x64
        ; mov rax, rcx
        ; shr rax, 1
        ; and eax, JUMP_MASK
        ; shl rax, JUMP_SHIFT
        ; add rax, QWORD [r11 + JUMP_CACHE_TABLE]
    );
}

/// Where the call-out code starts in the code space.
pub(super) const CALL_OUT_OFFSET: usize = 320;

/// Where the chaining code starts in the code space.
pub(super) const CHAIN_OFFSET: usize = 64;

/// Where an exit goes.
#[derive(Clone, Copy)]
enum Target {
    /// Known when translating.
    Known(u64),
    /// Computed, in `rcx`.
    Rcx,
}

/// The out-of-line paths of one memory instruction.
struct Miss {
    /// Its start (the address computed again).
    retry: DynamicLabel,
    /// Its TLB miss.
    fill: DynamicLabel,
    /// Leaving the block before it.
    exit: DynamicLabel,
    pc: u64,
    /// Its index in the block.
    k: i32,
    store: bool,
}

/// One block's emitter.
struct Emitter {
    a: Asm,
    head: u64,
    /// Instructions in the block.
    n: i32,
    /// Host register caching each guest register, if any.
    host: [Option<u8>; 32],
    /// Cached guest registers the block writes (stored back at exits).
    written: Vec<u8>,
    /// Just after the entry's loads: where a block looping on itself goes.
    top: DynamicLabel,
    /// Offset of the entry Rust calls.
    entry: usize,
    /// Back to Rust at the head, from the checked entry.
    bail: DynamicLabel,
    /// Back to Rust after an instruction the interpreter ran stopped.
    stopped: DynamicLabel,
    /// See [`Translation::sites`].
    sites: Vec<(usize, u64)>,
    /// mstatus.FS is known to be on at this point of the code (checked by
    /// an earlier F/D instruction, no call out since), and dirty.
    fs_on: bool,
    fs_dirty: bool,
}

/// The guest registers an instruction the translator takes reads and
/// writes (x0 included; callers skip it).
fn operands(i: &Inst) -> ([Option<u8>; 2], Option<u8>) {
    use Op::*;
    match i.op {
        Lui | Auipc | Jal => ([None, None], Some(i.rd)),
        Addi | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai | Addiw | Slliw | Srliw
        | Sraiw | Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu | Jalr => ([Some(i.rs1), None], Some(i.rd)),
        Sb | Sh | Sw | Sd | Beq | Bne | Blt | Bge | Bltu | Bgeu => {
            ([Some(i.rs1), Some(i.rs2)], None)
        }
        // F/D: only what host code touches (a call has everything in
        // memory around it).
        op if op.is_fp() => fp::x_operands(i),
        _ => ([Some(i.rs1), Some(i.rs2)], Some(i.rd)),
    }
}

/// The host code of the block at `head`: `insts` with their pcs, all
/// translatable, only the last one possibly ending it. `called`: where the
/// same list stays in memory for as long as the code may run (the
/// instructions the block calls the interpreter for are read from there),
/// if it holds any.
pub(super) fn block(
    head: u64,
    insts: &[(u64, Inst)],
    called: Option<&[(u64, Inst)]>,
) -> Translation {
    let mut e = Emitter::new(head, insts);
    // The out-of-line paths of memory instructions, emitted after the
    // block's body.
    let mut misses: Vec<Miss> = Vec::new();
    // The slow paths of F/D instructions in host code, emitted after it.
    let mut slow_fp: Vec<fp::Slow> = Vec::new();
    // Instructions already emitted as part of a run of calls.
    let mut skip = 0;
    for (k, &(pc, i)) in insts.iter().enumerate() {
        if skip > 0 {
            skip -= 1;
            continue;
        }
        let next = pc.wrapping_add(u64::from(i.len));
        if let Some(size) = memory_size(i.op) {
            let miss = Miss {
                retry: e.a.new_dynamic_label(),
                fill: e.a.new_dynamic_label(),
                exit: e.a.new_dynamic_label(),
                pc,
                k: k as i32,
                store: matches!(i.op, Op::Sb | Op::Sh | Op::Sw | Op::Sd | Op::Fsw | Op::Fsd),
            };
            e.memory(&i, size, &miss);
            misses.push(miss);
            continue;
        }
        match i.op {
            Op::Jal | Op::Jalr => {
                let target = if i.op == Op::Jalr {
                    // The target first: rd may be rs1.
                    e.get(RCX, i.rs1);
                    dynasm!(e.a
                        ; .arch x64
                        ; add rcx, i.imm
                        ; and rcx, -2
                    );
                    Target::Rcx
                } else {
                    Target::Known(pc.wrapping_add(i.imm64()))
                };
                if i.rd != 0 {
                    e.constant(RAX, next);
                    e.put(i.rd, RAX);
                }
                e.exit(target);
            }
            Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu => {
                let taken = e.a.new_dynamic_label();
                e.get(RAX, i.rs1);
                e.get(RCX, i.rs2);
                dynasm!(e.a ; .arch x64 ; cmp rax, rcx);
                match i.op {
                    Op::Beq => dynasm!(e.a ; .arch x64 ; je =>taken),
                    Op::Bne => dynasm!(e.a ; .arch x64 ; jne =>taken),
                    Op::Blt => dynasm!(e.a ; .arch x64 ; jl =>taken),
                    Op::Bge => dynasm!(e.a ; .arch x64 ; jge =>taken),
                    Op::Bltu => dynasm!(e.a ; .arch x64 ; jb =>taken),
                    _ => dynasm!(e.a ; .arch x64 ; jae =>taken),
                }
                e.exit(Target::Known(next));
                dynasm!(e.a ; .arch x64 ; =>taken);
                e.exit(Target::Known(pc.wrapping_add(i.imm64())));
            }
            // Harts see their own accesses in order; the interpreter's
            // fence (`atomic::fence(SeqCst)`).
            Op::Fence => dynasm!(e.a ; .arch x64 ; mfence),
            _ if i.op.is_fp() && fp::native(&i) => {
                let called = called.expect("the block's instructions kept");
                let slow = fp::Slow {
                    label: e.a.new_dynamic_label(),
                    resume: e.a.new_dynamic_label(),
                    at: std::ptr::from_ref(&called[k]) as u64,
                    k: k as i32,
                };
                e.fp(&i, &slow);
                dynasm!(e.a ; .arch x64 ; =>slow.resume);
                slow_fp.push(slow);
            }
            _ if matches!(kind(&i), Kind::Called) => {
                let called = called.expect("the block's instructions kept");
                // A run of F/D instructions without host code goes in one
                // call; anything else alone.
                let run = if i.op.is_fp() {
                    insts[k..]
                        .iter()
                        .take(MAX_CALLED_RUN)
                        .take_while(|(_, j)| j.op.is_fp() && !fp::native(j))
                        .count()
                } else {
                    1
                };
                skip = run - 1;
                e.called(std::ptr::from_ref(&called[k]) as u64, k as i32, run as i32);
            }
            _ => e.alu(pc, &i),
        }
    }
    let last = insts.last().expect("a block has an instruction");
    if !matches!(kind(&last.1), Kind::Ends) {
        e.exit(Target::Known(last.0.wrapping_add(u64::from(last.1.len))));
    }
    for slow in &slow_fp {
        e.fp_slow(slow);
    }
    for miss in misses {
        e.fill(&miss);
        dynasm!(e.a ; .arch x64 ; =>miss.exit);
        e.side_exit(miss.pc, miss.k);
    }
    // An instruction the interpreter ran stopped the block (a trap, a
    // deferral, a store to code): the frame says where it stands.
    dynasm!(e.a
        ; .arch x64
        ; =>e.stopped
        ; mov eax, 2
        ; ret
    );
    // A jump from another block that finds this one invalid, or the
    // budget short, goes back to Rust at the head.
    dynasm!(e.a ; .arch x64 ; =>e.bail);
    e.constant(RCX, head);
    dynasm!(e.a
        ; .arch x64
        ; mov QWORD [r11 + NEXT_PC], rcx
        ; xor eax, eax
        ; ret
    );
    let Emitter {
        a, entry, sites, ..
    } = e;
    Translation {
        code: a.finalize().expect("a block's labels are all defined"),
        entry,
        sites,
    }
}

/// A block's host code: a header (`HEADER` bytes, filled in by the
/// caller: see [`Header`]), the checked entry other blocks jump to, then
/// the entry (at `entry`) Rust calls once it has checked the same.
pub(super) struct Translation {
    pub code: Vec<u8>,
    pub entry: usize,
    /// Exits to known pcs: where their jump's 32-bit displacement is (it
    /// leads to the chaining code until patched to lead to that pc's
    /// block), and the pc.
    pub sites: Vec<(usize, u64)>,
}

/// What a block's checked entry compares, at the start of its code: the
/// code generation it is valid in (0: none), and the execute-TLB entry of
/// its page.
#[repr(C)]
pub(super) struct Header {
    pub generation: u64,
    pub fetch: TlbEntry,
    _pad: u64,
}

pub(super) const HEADER: usize = std::mem::size_of::<Header>();
const _: () = assert!(HEADER == 32);

impl Header {
    pub(super) fn new(generation: u64, fetch: TlbEntry) -> Header {
        Header {
            generation,
            fetch,
            _pad: 0,
        }
    }

    pub(super) fn bytes(&self) -> [u8; HEADER] {
        let mut out = [0; HEADER];
        out[..8].copy_from_slice(&self.generation.to_le_bytes());
        out[8..16].copy_from_slice(&self.fetch.tag.to_le_bytes());
        out[16..24].copy_from_slice(&(self.fetch.addend as u64).to_le_bytes());
        out
    }
}

impl Emitter {
    /// Picks the guest registers to cache (the most used, if used at
    /// least twice) and emits the entry's loads.
    fn new(head: u64, insts: &[(u64, Inst)]) -> Emitter {
        let mut uses = [0u32; 32];
        let mut writes = [false; 32];
        for (_, i) in insts {
            let (reads, write) = operands(i);
            for r in reads.into_iter().flatten() {
                uses[usize::from(r & 31)] += 1;
            }
            if let Some(r) = write {
                uses[usize::from(r & 31)] += 1;
                writes[usize::from(r & 31)] = true;
            }
        }
        let mut ranked: Vec<u8> = (1..32u8).filter(|&r| uses[usize::from(r)] >= 2).collect();
        ranked.sort_by_key(|&r| std::cmp::Reverse(uses[usize::from(r)]));
        ranked.truncate(CACHE.len());
        let mut host = [None; 32];
        let mut written = Vec::new();
        // Sized for the block up front: growing the buffers as the code
        // is pushed byte by byte was half the cost of emitting.
        let k = insts.len();
        let mut a = Asm::new_with_capacity(0, 128 * k + 256, 0, 0, 4 * k + 8, 0, 4 * k + 8);
        let n = k as i32;
        let (generation, tag, addend, bail) = (
            a.new_dynamic_label(),
            a.new_dynamic_label(),
            a.new_dynamic_label(),
            a.new_dynamic_label(),
        );
        let tlb_entry = (((head >> 12) as i32) & TLB_MASK) << ENTRY_SHIFT;
        dynasm!(a
            ; .arch x64
            ; =>generation
            ; .u64 0
            ; =>tag
            ; .u64 0
            ; =>addend
            ; .u64 0
            ; .u64 0
            // The checked entry: valid in this code generation, its page
            // still mapped the same, the budget enough.
            ; mov rax, QWORD [=>generation]
            ; cmp rax, QWORD [r11 + GENERATION]
            ; jne =>bail
            ; cmp QWORD [r11 + LEFT], n
            ; jb =>bail
            ; mov rax, QWORD [r11 + EXEC_TLB]
            ; mov rdx, QWORD [=>tag]
            ; cmp QWORD [rax + tlb_entry + TAG], rdx
            ; jne =>bail
            ; mov rdx, QWORD [=>addend]
            ; cmp QWORD [rax + tlb_entry + ADDEND], rdx
            ; jne =>bail
        );
        let entry = a.offset().0;
        let stopped = a.new_dynamic_label();
        for (&g, &h) in ranked.iter().zip(CACHE.iter()) {
            host[usize::from(g)] = Some(h);
            if writes[usize::from(g)] {
                written.push(g);
            }
            dynasm!(a ; .arch x64 ; mov Rq(h), QWORD [rdi + reg(g)]);
        }
        let top = a.new_dynamic_label();
        dynasm!(a ; .arch x64 ; =>top);
        Emitter {
            a,
            head,
            n,
            host,
            written,
            top,
            entry,
            bail,
            stopped,
            sites: Vec::new(),
            fs_on: false,
            fs_dirty: false,
        }
    }

    /// `value` into host register `h`, in the shortest form (most guest
    /// addresses, the kernel's included, are sign-extended 32-bit values).
    fn constant(&mut self, h: u8, value: u64) {
        if let Ok(short) = i32::try_from(value as i64) {
            dynasm!(self.a ; .arch x64 ; mov Rq(h), short);
        } else {
            dynasm!(self.a ; .arch x64 ; mov Rq(h), QWORD value as i64);
        }
    }

    /// Guest register `g` into host register `h`.
    fn get(&mut self, h: u8, g: u8) {
        if g & 31 == 0 {
            dynasm!(self.a ; .arch x64 ; xor Rd(h), Rd(h));
        } else if let Some(c) = self.host[usize::from(g & 31)] {
            dynasm!(self.a ; .arch x64 ; mov Rq(h), Rq(c));
        } else {
            dynasm!(self.a ; .arch x64 ; mov Rq(h), QWORD [rdi + reg(g)]);
        }
    }

    /// Host register `h` into guest register `g` (never x0).
    fn put(&mut self, g: u8, h: u8) {
        if g & 31 == 0 {
            return;
        }
        if let Some(c) = self.host[usize::from(g & 31)] {
            dynasm!(self.a ; .arch x64 ; mov Rq(c), Rq(h));
        } else {
            dynasm!(self.a ; .arch x64 ; mov QWORD [rdi + reg(g)], Rq(h));
        }
    }

    /// Stores the cached registers the block writes.
    fn store_written(&mut self) {
        for k in 0..self.written.len() {
            let g = self.written[k];
            let h = self.host[usize::from(g)].expect("a written cached register");
            dynasm!(self.a ; .arch x64 ; mov QWORD [rdi + reg(g)], Rq(h));
        }
    }

    /// The block is done and goes on at `target`: count it; go round again
    /// if that is its own head and the budget allows; else store the
    /// cached registers and chain or return.
    fn exit(&mut self, target: Target) {
        let (n, top) = (self.n, self.top);
        dynasm!(self.a ; .arch x64 ; sub QWORD [r11 + LEFT], n);
        match target {
            Target::Known(t) if t == self.head => {
                dynasm!(self.a
                    ; .arch x64
                    ; cmp QWORD [r11 + LEFT], n
                    ; jae =>top
                );
            }
            Target::Known(_) => {}
            Target::Rcx => {
                dynasm!(self.a
                    ; .arch x64
                    ; mov rax, QWORD self.head as i64
                    ; cmp rcx, rax
                    ; jne >elsewhere
                    ; cmp QWORD [r11 + LEFT], n
                    ; jae =>top
                    ; elsewhere:
                );
            }
        }
        self.store_written();
        self.chain(target);
    }

    /// Goes on at `target` through the chaining code (cached registers
    /// are stored already).
    fn chain(&mut self, target: Target) {
        if let Target::Known(t) = target {
            // A jump the translator patches to lead straight to the
            // checked entry of `t`'s block once there is one; until then
            // it leads to the next instruction.
            let fallback = self.a.new_dynamic_label();
            self.constant(RCX, t);
            dynasm!(self.a ; .arch x64 ; jmp =>fallback);
            let site = self.a.offset().0 - 4;
            self.sites.push((site, t));
            dynasm!(self.a ; .arch x64 ; =>fallback);
        } else {
            // A computed target (a return, mostly): the jump cache here,
            // so that each site's indirect jump is predicted on its own.
            let table = self.a.new_dynamic_label();
            jump_cache_entry(&mut self.a);
            dynasm!(self.a
                ; .arch x64
                ; cmp QWORD [rax], rcx
                ; jne =>table
                ; jmp QWORD [rax + 8]
                ; =>table
            );
        }
        dynasm!(self.a ; .arch x64 ; jmp QWORD [r11 + CHAIN]);
    }

    /// Leaves before instruction `k` (at `pc`), which the interpreter runs
    /// next: the `k` before it are counted.
    fn side_exit(&mut self, pc: u64, k: i32) {
        if k > 0 {
            dynasm!(self.a ; .arch x64 ; sub QWORD [r11 + LEFT], k);
        }
        self.store_written();
        self.constant(RCX, pc);
        dynasm!(self.a
            ; .arch x64
            ; mov QWORD [r11 + NEXT_PC], rcx
            ; mov eax, 1
            ; ret
        );
    }

    /// Instructions `k..k + run`, whose pcs and decoded forms start at
    /// host address `at`, run by the interpreter (`frame.interpret`, given
    /// `k | run << 16`): the registers go to memory before and come back
    /// after; if one did not simply retire, the block stops there.
    fn called(&mut self, at: u64, k: i32, run: i32) {
        debug_assert!((0..1 << 16).contains(&k) && run >= 1, "k {k}, run {run}");
        // A CSR write may change FS.
        self.fs_on = false;
        self.fs_dirty = false;
        self.store_written();
        let stopped = self.stopped;
        self.constant(RAX, at);
        dynasm!(self.a
            ; .arch x64
            ; mov edx, k | (run << 16)
            ; mov r8d, INTERPRET
            ; call QWORD [r11 + CALL_OUT]
            ; test eax, eax
            ; jnz =>stopped
        );
        for g in 1..32u8 {
            if let Some(h) = self.host[usize::from(g)] {
                dynasm!(self.a ; .arch x64 ; mov Rq(h), QWORD [rdi + reg(g)]);
            }
        }
    }

    /// A TLB miss: the fill function (`frame.fill`, through the call-out
    /// code) looks the page up as the interpreter's slow path would, and
    /// the instruction tries again if the TLB holds the page now;
    /// otherwise it leaves the block.
    fn fill(&mut self, miss: &Miss) {
        let (retry, exit) = (miss.retry, miss.exit);
        dynasm!(self.a
            ; .arch x64
            ; =>miss.fill
            ; mov edx, i32::from(miss.store)
            ; mov r8d, FILL
            ; call QWORD [r11 + CALL_OUT]
            ; test eax, eax
            ; jnz =>retry
            ; jmp =>exit
        );
    }

    /// A load or store through the TLB: a miss goes to `miss.fill`, a
    /// misaligned address to `miss.exit` (before the instruction, nothing
    /// done).
    fn memory(&mut self, i: &Inst, size: u8, miss: &Miss) {
        let store = miss.store;
        let (exit, fill) = (miss.exit, miss.fill);
        let float = i.op.is_fp();
        if float {
            self.fs_on(exit);
        }
        dynasm!(self.a ; .arch x64 ; =>miss.retry);
        self.get(RAX, i.rs1);
        dynasm!(self.a ; .arch x64 ; add rax, i.imm);
        if size > 1 {
            dynasm!(self.a
                ; .arch x64
                ; test al, (size - 1) as i8
                ; jnz =>exit
            );
        }
        dynasm!(self.a
            ; .arch x64
            ; mov r8, rax
            ; shr r8, 12
            ; mov r9, r8
            ; and r9d, TLB_MASK
            ; shl r9, ENTRY_SHIFT
        );
        if store {
            dynasm!(self.a ; .arch x64 ; add r9, r10);
        } else {
            dynasm!(self.a ; .arch x64 ; add r9, rsi);
        }
        dynasm!(self.a
            ; .arch x64
            ; cmp QWORD [r9 + TAG], r8
            ; jne =>fill
            ; add rax, QWORD [r9 + ADDEND]
        );
        if store {
            if float {
                self.fp_store_value(i);
            } else {
                self.get(RDX, i.rs2);
            }
            match size {
                1 => dynasm!(self.a ; .arch x64 ; mov BYTE [rax], dl),
                2 => dynasm!(self.a ; .arch x64 ; mov WORD [rax], dx),
                4 => dynasm!(self.a ; .arch x64 ; mov DWORD [rax], edx),
                _ => dynasm!(self.a ; .arch x64 ; mov QWORD [rax], rdx),
            }
            return;
        }
        match i.op {
            Op::Lb => dynasm!(self.a ; .arch x64 ; movsx rdx, BYTE [rax]),
            Op::Lbu => dynasm!(self.a ; .arch x64 ; movzx edx, BYTE [rax]),
            Op::Lh => dynasm!(self.a ; .arch x64 ; movsx rdx, WORD [rax]),
            Op::Lhu => dynasm!(self.a ; .arch x64 ; movzx edx, WORD [rax]),
            Op::Lw => dynasm!(self.a ; .arch x64 ; movsxd rdx, DWORD [rax]),
            Op::Lwu | Op::Flw => dynasm!(self.a ; .arch x64 ; mov edx, DWORD [rax]),
            _ => dynasm!(self.a ; .arch x64 ; mov rdx, QWORD [rax]),
        }
        if float {
            self.fp_load_result(i);
        } else {
            self.put(i.rd, RDX);
        }
    }

    /// Integer computation into `rd` (nothing if rd is x0: these have no
    /// other effect). Sources go to `rax` (rs1) and `rcx` (rs2), the
    /// result leaves from `rax`.
    fn alu(&mut self, pc: u64, i: &Inst) {
        if i.rd == 0 {
            return;
        }
        let imm = i.imm;
        let shamt = (imm & 63) as i8;
        let shamt_w = (imm & 31) as i8;
        match i.op {
            Op::Lui => dynasm!(self.a ; .arch x64 ; mov rax, QWORD i.imm64() as i64),
            Op::Auipc => {
                dynasm!(self.a ; .arch x64 ; mov rax, QWORD pc.wrapping_add(i.imm64()) as i64)
            }
            Op::Addi | Op::Xori | Op::Ori | Op::Andi | Op::Slli | Op::Srli | Op::Srai => {
                self.get(RAX, i.rs1);
                match i.op {
                    Op::Addi => dynasm!(self.a ; .arch x64 ; add rax, imm),
                    Op::Xori => dynasm!(self.a ; .arch x64 ; xor rax, imm),
                    Op::Ori => dynasm!(self.a ; .arch x64 ; or rax, imm),
                    Op::Andi => dynasm!(self.a ; .arch x64 ; and rax, imm),
                    Op::Slli => dynasm!(self.a ; .arch x64 ; shl rax, shamt),
                    Op::Srli => dynasm!(self.a ; .arch x64 ; shr rax, shamt),
                    _ => dynasm!(self.a ; .arch x64 ; sar rax, shamt),
                }
            }
            Op::Slti | Op::Sltiu => {
                self.get(RCX, i.rs1);
                dynasm!(self.a ; .arch x64 ; xor eax, eax ; cmp rcx, imm);
                if i.op == Op::Slti {
                    dynasm!(self.a ; .arch x64 ; setl al);
                } else {
                    dynasm!(self.a ; .arch x64 ; setb al);
                }
            }
            Op::Slt | Op::Sltu => {
                self.get(RCX, i.rs1);
                self.get(RDX, i.rs2);
                dynasm!(self.a ; .arch x64 ; xor eax, eax ; cmp rcx, rdx);
                if i.op == Op::Slt {
                    dynasm!(self.a ; .arch x64 ; setl al);
                } else {
                    dynasm!(self.a ; .arch x64 ; setb al);
                }
            }
            Op::Addiw | Op::Slliw | Op::Srliw | Op::Sraiw => {
                self.get(RAX, i.rs1);
                match i.op {
                    Op::Addiw => dynasm!(self.a ; .arch x64 ; add eax, imm),
                    Op::Slliw => dynasm!(self.a ; .arch x64 ; shl eax, shamt_w),
                    Op::Srliw => dynasm!(self.a ; .arch x64 ; shr eax, shamt_w),
                    _ => dynasm!(self.a ; .arch x64 ; sar eax, shamt_w),
                }
                dynasm!(self.a ; .arch x64 ; movsxd rax, eax);
            }
            Op::Div | Op::Rem | Op::Divw | Op::Remw => {
                self.get(RAX, i.rs1);
                self.get(RCX, i.rs2);
                self.signed_division(i);
            }
            Op::Divu | Op::Remu | Op::Divuw | Op::Remuw => {
                self.get(RAX, i.rs1);
                self.get(RCX, i.rs2);
                self.unsigned_division(i);
            }
            _ => {
                self.get(RAX, i.rs1);
                self.get(RCX, i.rs2);
                self.register_register(i);
            }
        }
        self.put(i.rd, RAX);
    }

    /// `rax = rax op rcx` for the register-register operations. x86 masks
    /// a 64-bit shift count to 6 bits and a 32-bit one to 5, as RISC-V
    /// does.
    fn register_register(&mut self, i: &Inst) {
        let a = &mut self.a;
        match i.op {
            Op::Add => dynasm!(a ; .arch x64 ; add rax, rcx),
            Op::Sub => dynasm!(a ; .arch x64 ; sub rax, rcx),
            Op::Xor => dynasm!(a ; .arch x64 ; xor rax, rcx),
            Op::Or => dynasm!(a ; .arch x64 ; or rax, rcx),
            Op::And => dynasm!(a ; .arch x64 ; and rax, rcx),
            Op::Sll => dynasm!(a ; .arch x64 ; shl rax, cl),
            Op::Srl => dynasm!(a ; .arch x64 ; shr rax, cl),
            Op::Sra => dynasm!(a ; .arch x64 ; sar rax, cl),
            Op::Addw => dynasm!(a ; .arch x64 ; add eax, ecx ; movsxd rax, eax),
            Op::Subw => dynasm!(a ; .arch x64 ; sub eax, ecx ; movsxd rax, eax),
            Op::Sllw => dynasm!(a ; .arch x64 ; shl eax, cl ; movsxd rax, eax),
            Op::Srlw => dynasm!(a ; .arch x64 ; shr eax, cl ; movsxd rax, eax),
            Op::Sraw => dynasm!(a ; .arch x64 ; sar eax, cl ; movsxd rax, eax),
            Op::Mul => dynasm!(a ; .arch x64 ; imul rax, rcx),
            Op::Mulw => dynasm!(a ; .arch x64 ; imul eax, ecx ; movsxd rax, eax),
            Op::Mulh => dynasm!(a ; .arch x64 ; imul rcx ; mov rax, rdx),
            Op::Mulhu => dynasm!(a ; .arch x64 ; mul rcx ; mov rax, rdx),
            // The unsigned high half, less rs2 when rs1 is negative.
            Op::Mulhsu => dynasm!(a
                ; .arch x64
                ; mov r8, rax
                ; mul rcx
                ; mov rax, rdx
                ; test r8, r8
                ; jns >done
                ; sub rax, rcx
                ; done:
            ),
            op => unreachable!("{op:?} is not an ALU operation the translator takes"),
        }
    }

    /// RISC-V signed division of `rax` by `rcx`: by zero gives -1
    /// (quotient) or the dividend (remainder), the one overflow gives the
    /// dividend (quotient) or 0; x86 would trap on both. Result in rax.
    fn signed_division(&mut self, i: &Inst) {
        let a = &mut self.a;
        let word = matches!(i.op, Op::Divw | Op::Remw);
        let rem = matches!(i.op, Op::Rem | Op::Remw);
        if word {
            dynasm!(a ; .arch x64 ; movsxd rax, eax ; movsxd rcx, ecx);
        }
        dynasm!(a
            ; .arch x64
            ; test rcx, rcx
            ; jz >by_zero
            ; cmp rcx, -1
            ; jne >divide
        );
        // Divisor -1: the quotient is the negation (wrapping at the
        // minimum), the remainder 0.
        if rem {
            dynasm!(a ; .arch x64 ; xor eax, eax ; jmp >done);
        } else if word {
            dynasm!(a ; .arch x64 ; neg eax ; movsxd rax, eax ; jmp >done);
        } else {
            dynasm!(a ; .arch x64 ; neg rax ; jmp >done);
        }
        dynasm!(a ; .arch x64 ; by_zero:);
        if !rem {
            dynasm!(a ; .arch x64 ; mov rax, -1);
        }
        dynasm!(a ; .arch x64 ; jmp >done ; divide:);
        match (word, rem) {
            (true, false) => dynasm!(a ; .arch x64 ; cdq ; idiv ecx ; movsxd rax, eax),
            (true, true) => dynasm!(a ; .arch x64 ; cdq ; idiv ecx ; movsxd rax, edx),
            (false, false) => dynasm!(a ; .arch x64 ; cqo ; idiv rcx),
            (false, true) => dynasm!(a ; .arch x64 ; cqo ; idiv rcx ; mov rax, rdx),
        }
        dynasm!(a ; .arch x64 ; done:);
    }

    /// RISC-V unsigned division of `rax` by `rcx` (the low halves for the
    /// word forms): by zero gives all ones (quotient) or the dividend
    /// (remainder). Result in rax, word forms sign-extended.
    fn unsigned_division(&mut self, i: &Inst) {
        let a = &mut self.a;
        let word = matches!(i.op, Op::Divuw | Op::Remuw);
        let rem = matches!(i.op, Op::Remu | Op::Remuw);
        if word {
            dynasm!(a ; .arch x64 ; test ecx, ecx ; jz >by_zero ; xor edx, edx ; div ecx);
        } else {
            dynasm!(a ; .arch x64 ; test rcx, rcx ; jz >by_zero ; xor edx, edx ; div rcx);
        }
        if rem {
            dynasm!(a ; .arch x64 ; mov rax, rdx);
        }
        dynasm!(a ; .arch x64 ; jmp >done ; by_zero:);
        if !rem {
            dynasm!(a ; .arch x64 ; mov rax, -1);
        }
        dynasm!(a ; .arch x64 ; done:);
        if word {
            // Quotient or remainder of the words, or the dividend's low
            // word, or all ones: sign-extended from bit 31.
            dynasm!(a ; .arch x64 ; movsxd rax, eax);
        }
    }
}

fn memory_size(op: Op) -> Option<u8> {
    Some(match op {
        Op::Lb | Op::Lbu | Op::Sb => 1,
        Op::Lh | Op::Lhu | Op::Sh => 2,
        Op::Lw | Op::Lwu | Op::Sw | Op::Flw | Op::Fsw => 4,
        Op::Ld | Op::Sd | Op::Fld | Op::Fsd => 8,
        _ => return None,
    })
}
