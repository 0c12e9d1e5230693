//! The operation table: every RV64GC operation, its mnemonic and its
//! operand format, defined once. The decoder produces these, the executor
//! dispatches on them and the disassembler prints them.

/// How an operation's operands are printed (and which register file each
/// operand lives in).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// `rd, rs1, rs2` (integer registers).
    R,
    /// `rd, rs1, imm`.
    I,
    /// `rd, imm(rs1)` integer load (also `jalr`).
    Load,
    /// `rs2, imm(rs1)` integer store.
    Store,
    /// `rs1, rs2, target`.
    Branch,
    /// `rd, imm >> 12` (lui/auipc).
    U,
    /// `rd, target`.
    Jal,
    /// No operands.
    None,
    /// `pred, succ`.
    Fence,
    /// `rd, csr, rs1`.
    Csr,
    /// `rd, csr, uimm`.
    CsrI,
    /// `rd, rs2, (rs1)` atomic memory operation (also sc).
    Amo,
    /// `rd, (rs1)` load-reserved.
    Lr,
    /// `frd, imm(rs1)` FP load.
    FLoad,
    /// `frs2, imm(rs1)` FP store.
    FStore,
    /// `frd, frs1, frs2[, rm]`.
    FR,
    /// `frd, frs1, frs2, frs3[, rm]`.
    FR4,
    /// `frd, frs1[, rm]` (fsqrt, fcvt between formats).
    FR1,
    /// `frd, frs1, frs2` without rounding mode (sign injection, min/max).
    FRNoRm,
    /// `rd, frs1, frs2` (comparisons).
    FCmp,
    /// `rd, frs1[, rm]` (conversions to integer).
    FToX,
    /// `rd, frs1` (fclass, fmv.x.*).
    FToXNoRm,
    /// `frd, rs1[, rm]` (conversions from integer).
    XToF,
    /// `frd, rs1` (fmv.*.x).
    XToFNoRm,
    /// `rs1, rs2` (sfence.vma).
    Sfence,
}

macro_rules! ops {
    ($( $(#[$doc:meta])* $name:ident = $mnem:literal, $fmt:ident; )*) => {
        /// One RV64GC operation. Compressed instructions decode to the
        /// operation of their 32-bit expansion.
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        #[repr(u8)]
        pub enum Op {
            $( $(#[$doc])* $name, )*
        }

        impl Op {
            /// Every operation, in declaration order.
            pub const ALL: &'static [Op] = &[$(Op::$name),*];

            /// The assembler mnemonic.
            pub const fn mnemonic(self) -> &'static str {
                match self { $(Op::$name => $mnem,)* }
            }

            /// How the operands are printed.
            pub const fn format(self) -> Format {
                match self { $(Op::$name => Format::$fmt,)* }
            }
        }
    };
}

ops! {
    /// Not a valid instruction: executing it raises illegal-instruction.
    Illegal = "illegal", None;
    // RV64I
    Lui = "lui", U;
    Auipc = "auipc", U;
    Jal = "jal", Jal;
    Jalr = "jalr", Load;
    Beq = "beq", Branch;
    Bne = "bne", Branch;
    Blt = "blt", Branch;
    Bge = "bge", Branch;
    Bltu = "bltu", Branch;
    Bgeu = "bgeu", Branch;
    Lb = "lb", Load;
    Lh = "lh", Load;
    Lw = "lw", Load;
    Ld = "ld", Load;
    Lbu = "lbu", Load;
    Lhu = "lhu", Load;
    Lwu = "lwu", Load;
    Sb = "sb", Store;
    Sh = "sh", Store;
    Sw = "sw", Store;
    Sd = "sd", Store;
    Addi = "addi", I;
    Slti = "slti", I;
    Sltiu = "sltiu", I;
    Xori = "xori", I;
    Ori = "ori", I;
    Andi = "andi", I;
    Slli = "slli", I;
    Srli = "srli", I;
    Srai = "srai", I;
    Add = "add", R;
    Sub = "sub", R;
    Sll = "sll", R;
    Slt = "slt", R;
    Sltu = "sltu", R;
    Xor = "xor", R;
    Srl = "srl", R;
    Sra = "sra", R;
    Or = "or", R;
    And = "and", R;
    Addiw = "addiw", I;
    Slliw = "slliw", I;
    Srliw = "srliw", I;
    Sraiw = "sraiw", I;
    Addw = "addw", R;
    Subw = "subw", R;
    Sllw = "sllw", R;
    Srlw = "srlw", R;
    Sraw = "sraw", R;
    Fence = "fence", Fence;
    FenceI = "fence.i", None;
    // Privileged and system
    Ecall = "ecall", None;
    Ebreak = "ebreak", None;
    Mret = "mret", None;
    Sret = "sret", None;
    Wfi = "wfi", None;
    SfenceVma = "sfence.vma", Sfence;
    Csrrw = "csrrw", Csr;
    Csrrs = "csrrs", Csr;
    Csrrc = "csrrc", Csr;
    Csrrwi = "csrrwi", CsrI;
    Csrrsi = "csrrsi", CsrI;
    Csrrci = "csrrci", CsrI;
    // M
    Mul = "mul", R;
    Mulh = "mulh", R;
    Mulhsu = "mulhsu", R;
    Mulhu = "mulhu", R;
    Div = "div", R;
    Divu = "divu", R;
    Rem = "rem", R;
    Remu = "remu", R;
    Mulw = "mulw", R;
    Divw = "divw", R;
    Divuw = "divuw", R;
    Remw = "remw", R;
    Remuw = "remuw", R;
    // A
    LrW = "lr.w", Lr;
    ScW = "sc.w", Amo;
    AmoswapW = "amoswap.w", Amo;
    AmoaddW = "amoadd.w", Amo;
    AmoxorW = "amoxor.w", Amo;
    AmoandW = "amoand.w", Amo;
    AmoorW = "amoor.w", Amo;
    AmominW = "amomin.w", Amo;
    AmomaxW = "amomax.w", Amo;
    AmominuW = "amominu.w", Amo;
    AmomaxuW = "amomaxu.w", Amo;
    LrD = "lr.d", Lr;
    ScD = "sc.d", Amo;
    AmoswapD = "amoswap.d", Amo;
    AmoaddD = "amoadd.d", Amo;
    AmoxorD = "amoxor.d", Amo;
    AmoandD = "amoand.d", Amo;
    AmoorD = "amoor.d", Amo;
    AmominD = "amomin.d", Amo;
    AmomaxD = "amomax.d", Amo;
    AmominuD = "amominu.d", Amo;
    AmomaxuD = "amomaxu.d", Amo;
    // F
    Flw = "flw", FLoad;
    Fsw = "fsw", FStore;
    FmaddS = "fmadd.s", FR4;
    FmsubS = "fmsub.s", FR4;
    FnmsubS = "fnmsub.s", FR4;
    FnmaddS = "fnmadd.s", FR4;
    FaddS = "fadd.s", FR;
    FsubS = "fsub.s", FR;
    FmulS = "fmul.s", FR;
    FdivS = "fdiv.s", FR;
    FsqrtS = "fsqrt.s", FR1;
    FsgnjS = "fsgnj.s", FRNoRm;
    FsgnjnS = "fsgnjn.s", FRNoRm;
    FsgnjxS = "fsgnjx.s", FRNoRm;
    FminS = "fmin.s", FRNoRm;
    FmaxS = "fmax.s", FRNoRm;
    FcvtWS = "fcvt.w.s", FToX;
    FcvtWuS = "fcvt.wu.s", FToX;
    FcvtLS = "fcvt.l.s", FToX;
    FcvtLuS = "fcvt.lu.s", FToX;
    FmvXW = "fmv.x.w", FToXNoRm;
    FclassS = "fclass.s", FToXNoRm;
    FeqS = "feq.s", FCmp;
    FltS = "flt.s", FCmp;
    FleS = "fle.s", FCmp;
    FcvtSW = "fcvt.s.w", XToF;
    FcvtSWu = "fcvt.s.wu", XToF;
    FcvtSL = "fcvt.s.l", XToF;
    FcvtSLu = "fcvt.s.lu", XToF;
    FmvWX = "fmv.w.x", XToFNoRm;
    // D
    Fld = "fld", FLoad;
    Fsd = "fsd", FStore;
    FmaddD = "fmadd.d", FR4;
    FmsubD = "fmsub.d", FR4;
    FnmsubD = "fnmsub.d", FR4;
    FnmaddD = "fnmadd.d", FR4;
    FaddD = "fadd.d", FR;
    FsubD = "fsub.d", FR;
    FmulD = "fmul.d", FR;
    FdivD = "fdiv.d", FR;
    FsqrtD = "fsqrt.d", FR1;
    FsgnjD = "fsgnj.d", FRNoRm;
    FsgnjnD = "fsgnjn.d", FRNoRm;
    FsgnjxD = "fsgnjx.d", FRNoRm;
    FminD = "fmin.d", FRNoRm;
    FmaxD = "fmax.d", FRNoRm;
    FcvtSD = "fcvt.s.d", FR1;
    FcvtDS = "fcvt.d.s", FR1;
    FcvtWD = "fcvt.w.d", FToX;
    FcvtWuD = "fcvt.wu.d", FToX;
    FcvtLD = "fcvt.l.d", FToX;
    FcvtLuD = "fcvt.lu.d", FToX;
    FmvXD = "fmv.x.d", FToXNoRm;
    FclassD = "fclass.d", FToXNoRm;
    FeqD = "feq.d", FCmp;
    FltD = "flt.d", FCmp;
    FleD = "fle.d", FCmp;
    FcvtDW = "fcvt.d.w", XToF;
    FcvtDWu = "fcvt.d.wu", XToF;
    FcvtDL = "fcvt.d.l", XToF;
    FcvtDLu = "fcvt.d.lu", XToF;
    FmvDX = "fmv.d.x", XToFNoRm;
}

impl Op {
    /// True for operations that need the F/D unit enabled (mstatus.FS != Off),
    /// including FP loads and stores.
    pub const fn is_fp(self) -> bool {
        (self as u8) >= (Op::Flw as u8)
    }

    /// True for the 32-bit forms of the A extension (`lr.w`, `sc.w`,
    /// `amo*.w`), which the enum lists together before the 64-bit ones.
    pub const fn is_word_atomic(self) -> bool {
        (self as u8) >= (Op::LrW as u8) && (self as u8) <= (Op::AmomaxuW as u8)
    }
}
