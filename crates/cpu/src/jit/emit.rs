//! x86-64 templates, one per guest operation (dynasm-rs: a single pass,
//! no register allocation). Guest registers stay in `HartState::x` in
//! memory; an instruction loads its sources, computes in `rax`/`rcx`/`rdx`
//! and stores `rd` (never x0, which stays 0 in memory).
//!
//! Host registers for the whole block (System V arguments, moved once):
//! `rdi` the guest registers, `rsi` the read TLB, `r10` the write TLB,
//! `r11` the [`BlockFrame`](super::BlockFrame). `rax`, `rcx`, `rdx`, `r8`,
//! `r9` are scratch. Nothing is called and nothing callee-saved is used,
//! so there is no stack frame.

use dynasmrt::x64::X64Relocation;
use dynasmrt::{DynamicLabel, DynasmApi, DynasmLabelApi, VecAssembler, dynasm};
use samsara_isa::{Inst, Op};

use crate::tlb::TlbEntry;

/// How the translator treats an instruction.
pub(super) enum Kind {
    /// Translated; the block goes on after it.
    Straight,
    /// Translated; it ends the block (a control transfer).
    Ends,
    /// Left to the interpreter: the block ends before it.
    Interpreted,
}

pub(super) fn kind(i: &Inst) -> Kind {
    use Op::*;
    match i.op {
        Addi | Add | Sub | Lui | Auipc | Slti | Sltiu | Xori | Ori | Andi | Slli | Srli | Srai
        | Sll | Slt | Sltu | Xor | Srl | Sra | Or | And | Addiw | Slliw | Srliw | Sraiw | Addw
        | Subw | Sllw | Srlw | Sraw | Mul | Mulh | Mulhsu | Mulhu | Mulw | Div | Divu | Rem
        | Remu | Divw | Divuw | Remw | Remuw | Lb | Lh | Lw | Ld | Lbu | Lhu | Lwu | Sb | Sh
        | Sw | Sd => Kind::Straight,
        Jal | Jalr | Beq | Bne | Blt | Bge | Bltu | Bgeu => Kind::Ends,
        _ => Kind::Interpreted,
    }
}

const TAG: i32 = std::mem::offset_of!(TlbEntry, tag) as i32;
const ADDEND: i32 = std::mem::offset_of!(TlbEntry, addend) as i32;
const ENTRY_SHIFT: i8 = 4;
const _: () = assert!(std::mem::size_of::<TlbEntry>() == 1 << ENTRY_SHIFT);
const TLB_MASK: i32 = 255;
const LEFT: i32 = std::mem::offset_of!(super::BlockFrame, left) as i32;
const NEXT_PC: i32 = std::mem::offset_of!(super::BlockFrame, next_pc) as i32;

/// Byte offset of register `r` in the register array.
fn reg(r: u8) -> i32 {
    i32::from(r & 31) * 8
}

type Asm = VecAssembler<X64Relocation>;

/// The host code of the block at `head`: `insts` with their pcs, all
/// translatable, only the last one possibly ending it.
pub(super) fn block(head: u64, insts: &[(u64, Inst)]) -> Vec<u8> {
    let mut a = Asm::new(0);
    let n = insts.len() as i32;
    let top = a.new_dynamic_label();
    // Exits before memory instructions, emitted after the block's body.
    let mut exits: Vec<(DynamicLabel, u64, i32)> = Vec::new();
    dynasm!(a
        ; .arch x64
        ; mov r10, rdx
        ; mov r11, rcx
        ; =>top
    );
    for (k, &(pc, i)) in insts.iter().enumerate() {
        let k = k as i32;
        let next = pc.wrapping_add(u64::from(i.len));
        if let Some(size) = memory_size(i.op) {
            let exit = a.new_dynamic_label();
            exits.push((exit, pc, k));
            memory(&mut a, &i, size, exit);
            continue;
        }
        match i.op {
            Op::Jal | Op::Jalr => {
                if i.op == Op::Jalr {
                    // The target first: rd may be rs1.
                    dynasm!(a
                        ; .arch x64
                        ; mov rcx, QWORD [rdi + reg(i.rs1)]
                        ; add rcx, i.imm
                        ; and rcx, -2
                    );
                } else {
                    dynasm!(a
                        ; .arch x64
                        ; mov rcx, QWORD pc.wrapping_add(i.imm64()) as i64
                    );
                }
                if i.rd != 0 {
                    dynasm!(a
                        ; .arch x64
                        ; mov rax, QWORD next as i64
                        ; mov QWORD [rdi + reg(i.rd)], rax
                    );
                }
                leave_to_rcx(&mut a, head, top, n);
            }
            Op::Beq | Op::Bne | Op::Blt | Op::Bge | Op::Bltu | Op::Bgeu => {
                let taken = a.new_dynamic_label();
                dynasm!(a
                    ; .arch x64
                    ; mov rax, QWORD [rdi + reg(i.rs1)]
                    ; cmp rax, QWORD [rdi + reg(i.rs2)]
                );
                match i.op {
                    Op::Beq => dynasm!(a ; .arch x64 ; je =>taken),
                    Op::Bne => dynasm!(a ; .arch x64 ; jne =>taken),
                    Op::Blt => dynasm!(a ; .arch x64 ; jl =>taken),
                    Op::Bge => dynasm!(a ; .arch x64 ; jge =>taken),
                    Op::Bltu => dynasm!(a ; .arch x64 ; jb =>taken),
                    _ => dynasm!(a ; .arch x64 ; jae =>taken),
                }
                dynasm!(a
                    ; .arch x64
                    ; mov rcx, QWORD next as i64
                );
                leave_to_rcx(&mut a, head, top, n);
                dynasm!(a
                    ; .arch x64
                    ; =>taken
                    ; mov rcx, QWORD pc.wrapping_add(i.imm64()) as i64
                );
                leave_to_rcx(&mut a, head, top, n);
            }
            _ => alu(&mut a, pc, &i),
        }
    }
    let last = insts.last().expect("a block has an instruction");
    if !matches!(kind(&last.1), Kind::Ends) {
        let next = last.0.wrapping_add(u64::from(last.1.len));
        dynasm!(a
            ; .arch x64
            ; mov rcx, QWORD next as i64
            ; mov QWORD [r11 + NEXT_PC], rcx
            ; mov eax, n
            ; ret
        );
    }
    for (label, pc, k) in exits {
        dynasm!(a
            ; .arch x64
            ; =>label
            ; mov rcx, QWORD pc as i64
            ; mov QWORD [r11 + NEXT_PC], rcx
            ; mov eax, k
            ; ret
        );
    }
    a.finalize().expect("a block's labels are all defined")
}

/// The block is done and `rcx` holds the next pc: go round again if that
/// is the block's own head and the budget allows another time round,
/// else return.
fn leave_to_rcx(a: &mut Asm, head: u64, top: DynamicLabel, n: i32) {
    let out = a.new_dynamic_label();
    dynasm!(a
        ; .arch x64
        ; mov rax, QWORD head as i64
        ; cmp rcx, rax
        ; jne =>out
        ; sub QWORD [r11 + LEFT], n
        ; cmp QWORD [r11 + LEFT], n
        ; jae =>top
        // Out of budget for another time round: this one is counted.
        ; mov QWORD [r11 + NEXT_PC], rcx
        ; xor eax, eax
        ; ret
        ; =>out
        ; mov QWORD [r11 + NEXT_PC], rcx
        ; mov eax, n
        ; ret
    );
}

fn memory_size(op: Op) -> Option<u8> {
    Some(match op {
        Op::Lb | Op::Lbu | Op::Sb => 1,
        Op::Lh | Op::Lhu | Op::Sh => 2,
        Op::Lw | Op::Lwu | Op::Sw => 4,
        Op::Ld | Op::Sd => 8,
        _ => return None,
    })
}

/// A load or store through the TLB: misaligned or a miss goes to `exit`
/// (before the instruction, nothing done).
fn memory(a: &mut Asm, i: &Inst, size: u8, exit: DynamicLabel) {
    let store = matches!(i.op, Op::Sb | Op::Sh | Op::Sw | Op::Sd);
    dynasm!(a
        ; .arch x64
        ; mov rax, QWORD [rdi + reg(i.rs1)]
        ; add rax, i.imm
    );
    if size > 1 {
        dynasm!(a
            ; .arch x64
            ; test al, (size - 1) as i8
            ; jnz =>exit
        );
    }
    dynasm!(a
        ; .arch x64
        ; mov r8, rax
        ; shr r8, 12
        ; mov r9, r8
        ; and r9d, TLB_MASK
        ; shl r9, ENTRY_SHIFT
    );
    if store {
        dynasm!(a
            ; .arch x64
            ; add r9, r10
        );
    } else {
        dynasm!(a
            ; .arch x64
            ; add r9, rsi
        );
    }
    dynasm!(a
        ; .arch x64
        ; cmp QWORD [r9 + TAG], r8
        ; jne =>exit
        ; add rax, QWORD [r9 + ADDEND]
    );
    if store {
        dynasm!(a
            ; .arch x64
            ; mov rdx, QWORD [rdi + reg(i.rs2)]
        );
        match size {
            1 => dynasm!(a ; .arch x64 ; mov BYTE [rax], dl),
            2 => dynasm!(a ; .arch x64 ; mov WORD [rax], dx),
            4 => dynasm!(a ; .arch x64 ; mov DWORD [rax], edx),
            _ => dynasm!(a ; .arch x64 ; mov QWORD [rax], rdx),
        }
        return;
    }
    match i.op {
        Op::Lb => dynasm!(a ; .arch x64 ; movsx rdx, BYTE [rax]),
        Op::Lbu => dynasm!(a ; .arch x64 ; movzx edx, BYTE [rax]),
        Op::Lh => dynasm!(a ; .arch x64 ; movsx rdx, WORD [rax]),
        Op::Lhu => dynasm!(a ; .arch x64 ; movzx edx, WORD [rax]),
        Op::Lw => dynasm!(a ; .arch x64 ; movsxd rdx, DWORD [rax]),
        Op::Lwu => dynasm!(a ; .arch x64 ; mov edx, DWORD [rax]),
        _ => dynasm!(a ; .arch x64 ; mov rdx, QWORD [rax]),
    }
    if i.rd != 0 {
        dynasm!(a
            ; .arch x64
            ; mov QWORD [rdi + reg(i.rd)], rdx
        );
    }
}

/// Integer computation into `rd` (nothing if rd is x0: these have no
/// other effect).
fn alu(a: &mut Asm, pc: u64, i: &Inst) {
    if i.rd == 0 {
        return;
    }
    let (rs1, rs2, imm) = (reg(i.rs1), reg(i.rs2), i.imm);
    // Result in rax unless stated.
    match i.op {
        Op::Lui => dynasm!(a ; .arch x64 ; mov rax, QWORD i.imm64() as i64),
        Op::Auipc => dynasm!(a ; .arch x64 ; mov rax, QWORD pc.wrapping_add(i.imm64()) as i64),
        Op::Addi => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; add rax, imm),
        Op::Xori => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; xor rax, imm),
        Op::Ori => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; or rax, imm),
        Op::Andi => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; and rax, imm),
        Op::Slli => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; shl rax, (imm & 63) as i8),
        Op::Srli => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; shr rax, (imm & 63) as i8),
        Op::Srai => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; sar rax, (imm & 63) as i8),
        Op::Slti | Op::Sltiu => {
            dynasm!(a ; .arch x64 ; xor eax, eax ; mov rcx, QWORD [rdi + rs1] ; cmp rcx, imm);
            if i.op == Op::Slti {
                dynasm!(a ; .arch x64 ; setl al);
            } else {
                dynasm!(a ; .arch x64 ; setb al);
            }
        }
        Op::Add => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; add rax, QWORD [rdi + rs2]),
        Op::Sub => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; sub rax, QWORD [rdi + rs2]),
        Op::Xor => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; xor rax, QWORD [rdi + rs2]),
        Op::Or => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; or rax, QWORD [rdi + rs2]),
        Op::And => dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; and rax, QWORD [rdi + rs2]),
        // x86 masks a 64-bit shift count to 6 bits and a 32-bit one to 5,
        // as RISC-V does.
        Op::Sll => {
            dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; mov rcx, QWORD [rdi + rs2] ; shl rax, cl)
        }
        Op::Srl => {
            dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; mov rcx, QWORD [rdi + rs2] ; shr rax, cl)
        }
        Op::Sra => {
            dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; mov rcx, QWORD [rdi + rs2] ; sar rax, cl)
        }
        Op::Slt | Op::Sltu => {
            dynasm!(a ; .arch x64 ; xor eax, eax ; mov rcx, QWORD [rdi + rs1] ; cmp rcx, QWORD [rdi + rs2]);
            if i.op == Op::Slt {
                dynasm!(a ; .arch x64 ; setl al);
            } else {
                dynasm!(a ; .arch x64 ; setb al);
            }
        }
        Op::Addiw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; add eax, imm ; movsxd rax, eax)
        }
        Op::Slliw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; shl eax, (imm & 31) as i8 ; movsxd rax, eax)
        }
        Op::Srliw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; shr eax, (imm & 31) as i8 ; movsxd rax, eax)
        }
        Op::Sraiw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; sar eax, (imm & 31) as i8 ; movsxd rax, eax)
        }
        Op::Addw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; add eax, DWORD [rdi + rs2] ; movsxd rax, eax)
        }
        Op::Subw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; sub eax, DWORD [rdi + rs2] ; movsxd rax, eax)
        }
        Op::Sllw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; mov ecx, DWORD [rdi + rs2] ; shl eax, cl ; movsxd rax, eax)
        }
        Op::Srlw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; mov ecx, DWORD [rdi + rs2] ; shr eax, cl ; movsxd rax, eax)
        }
        Op::Sraw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; mov ecx, DWORD [rdi + rs2] ; sar eax, cl ; movsxd rax, eax)
        }
        Op::Mul => {
            dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; imul rax, QWORD [rdi + rs2])
        }
        Op::Mulw => {
            dynasm!(a ; .arch x64 ; mov eax, DWORD [rdi + rs1] ; imul eax, DWORD [rdi + rs2] ; movsxd rax, eax)
        }
        Op::Mulh => {
            dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; imul QWORD [rdi + rs2] ; mov rax, rdx)
        }
        Op::Mulhu => {
            dynasm!(a ; .arch x64 ; mov rax, QWORD [rdi + rs1] ; mul QWORD [rdi + rs2] ; mov rax, rdx)
        }
        Op::Mulhsu => {
            // The unsigned high half, less rs2 when rs1 is negative.
            dynasm!(a
                ; .arch x64
                ; mov rax, QWORD [rdi + rs1]
                ; mul QWORD [rdi + rs2]
                ; mov rax, rdx
                ; mov rcx, QWORD [rdi + rs1]
                ; test rcx, rcx
                ; jns >done
                ; sub rax, QWORD [rdi + rs2]
                ; done:
            );
        }
        Op::Div | Op::Rem | Op::Divw | Op::Remw => signed_division(a, i),
        Op::Divu | Op::Remu | Op::Divuw | Op::Remuw => unsigned_division(a, i),
        op => unreachable!("{op:?} is not an ALU operation the translator takes"),
    }
    dynasm!(a ; .arch x64 ; mov QWORD [rdi + reg(i.rd)], rax);
}

/// RISC-V signed division: by zero gives -1 (quotient) or the dividend
/// (remainder), the one overflow gives the dividend (quotient) or 0; x86
/// would trap on both. Result in rax.
fn signed_division(a: &mut Asm, i: &Inst) {
    let (rs1, rs2) = (reg(i.rs1), reg(i.rs2));
    let word = matches!(i.op, Op::Divw | Op::Remw);
    let rem = matches!(i.op, Op::Rem | Op::Remw);
    if word {
        dynasm!(a
            ; .arch x64
            ; movsxd rax, DWORD [rdi + rs1]
            ; movsxd rcx, DWORD [rdi + rs2]
        );
    } else {
        dynasm!(a
            ; .arch x64
            ; mov rax, QWORD [rdi + rs1]
            ; mov rcx, QWORD [rdi + rs2]
        );
    }
    dynasm!(a
        ; .arch x64
        ; test rcx, rcx
        ; jz >by_zero
        ; cmp rcx, -1
        ; jne >divide
    );
    // Divisor -1: the quotient is the negation (wrapping at the minimum),
    // the remainder 0.
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
    if word {
        dynasm!(a ; .arch x64 ; cdq ; idiv ecx);
        if rem {
            dynasm!(a ; .arch x64 ; movsxd rax, edx);
        } else {
            dynasm!(a ; .arch x64 ; movsxd rax, eax);
        }
    } else {
        dynasm!(a ; .arch x64 ; cqo ; idiv rcx);
        if rem {
            dynasm!(a ; .arch x64 ; mov rax, rdx);
        }
    }
    dynasm!(a ; .arch x64 ; done:);
}

/// RISC-V unsigned division: by zero gives all ones (quotient) or the
/// dividend (remainder). Result in rax (word forms sign-extended).
fn unsigned_division(a: &mut Asm, i: &Inst) {
    let (rs1, rs2) = (reg(i.rs1), reg(i.rs2));
    let word = matches!(i.op, Op::Divuw | Op::Remuw);
    let rem = matches!(i.op, Op::Remu | Op::Remuw);
    if word {
        dynasm!(a
            ; .arch x64
            ; mov eax, DWORD [rdi + rs1]
            ; mov ecx, DWORD [rdi + rs2]
            ; test ecx, ecx
            ; jz >by_zero
            ; xor edx, edx
            ; div ecx
        );
        if rem {
            dynasm!(a ; .arch x64 ; mov eax, edx);
        }
        dynasm!(a ; .arch x64 ; movsxd rax, eax ; jmp >done ; by_zero:);
        if rem {
            dynasm!(a ; .arch x64 ; movsxd rax, eax);
        } else {
            dynasm!(a ; .arch x64 ; mov rax, -1);
        }
    } else {
        dynasm!(a
            ; .arch x64
            ; mov rax, QWORD [rdi + rs1]
            ; mov rcx, QWORD [rdi + rs2]
            ; test rcx, rcx
            ; jz >by_zero
            ; xor edx, edx
            ; div rcx
        );
        if rem {
            dynasm!(a ; .arch x64 ; mov rax, rdx);
        }
        dynasm!(a ; .arch x64 ; jmp >done ; by_zero:);
        if !rem {
            dynasm!(a ; .arch x64 ; mov rax, -1);
        }
    }
    dynasm!(a ; .arch x64 ; done:);
}
