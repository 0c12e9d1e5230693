use proptest::prelude::*;

use super::*;

fn d(w: u32) -> Inst {
    decode(w)
}

/// The semantic fields of an instruction (everything but `raw` and `len`).
fn sem(i: Inst) -> (Op, u8, u8, u8, u8, i32) {
    (i.op, i.rd, i.rs1, i.rs2, i.rs3, i.imm)
}

#[test]
fn integer_alu() {
    let i = d(0x0015_0513);
    assert_eq!((i.op, i.rd, i.rs1, i.imm, i.len), (Op::Addi, 10, 10, 1, 4));
    let i = d(0x00c5_8533);
    assert_eq!((i.op, i.rd, i.rs1, i.rs2), (Op::Add, 10, 11, 12));
    assert_eq!(d(0x40c5_8533).op, Op::Sub);
    let i = d(0x1234_5537);
    assert_eq!((i.op, i.rd, i.imm), (Op::Lui, 10, 0x1234_5000));
    assert_eq!(d(0xfff5_0513).imm, -1);
    // srai a0,a0,63 and an invalid shift funct6
    let i = d(0x43f5_5513);
    assert_eq!((i.op, i.imm), (Op::Srai, 63));
    assert_eq!(d(0x83f5_5513).op, Op::Illegal);
    // sraiw with shamt[5] set is illegal on RV64
    assert_eq!(d(0x4205_551b).op, Op::Illegal);
    assert_eq!(d(0x4015_551b).op, Op::Sraiw);
    assert_eq!(format!("{}", d(0x0015_0513)), "addi a0,a0,1");
}

#[test]
fn control_flow() {
    let i = d(0x0080_00ef);
    assert_eq!((i.op, i.rd, i.imm), (Op::Jal, 1, 8));
    let i = d(0x00b5_0463);
    assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Beq, 10, 11, 8));
    // beq zero,zero,-4
    let i = d(0xfe00_0ee3);
    assert_eq!((i.op, i.imm), (Op::Beq, -4));
    assert_eq!(format!("{}", i.at(0x1000)), "beq zero,zero,ffc");
    // jal x0, -2048*... (imm = -1048576)
    assert_eq!(d(0x8000_006f).imm, -1_048_576);
    assert_eq!(d(0x0000_8067).op, Op::Jalr);
    assert_eq!(d(0x0000_9067).op, Op::Illegal);
}

#[test]
fn loads_and_stores() {
    let i = d(0x0081_3503);
    assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Ld, 10, 2, 8));
    let i = d(0x0011_3423);
    assert_eq!((i.op, i.rs1, i.rs2, i.imm), (Op::Sd, 2, 1, 8));
    assert_eq!(format!("{i}"), "sd ra,8(sp)");
    // sw with negative offset: sw a0,-4(sp)
    let i = d(0xfea1_2e23);
    assert_eq!((i.op, i.imm), (Op::Sw, -4));
    assert_eq!(d(0x0000_7003).op, Op::Illegal);
}

#[test]
fn multiply_divide() {
    assert_eq!(d(0x02c5_8533).op, Op::Mul);
    assert_eq!(d(0x02c5_c533).op, Op::Div);
    assert_eq!(d(0x02c5_f53b).op, Op::Remuw);
    assert_eq!(d(0x02c5_953b).op, Op::Illegal);
}

#[test]
fn atomics() {
    let i = d(0x1005_a52f);
    assert_eq!((i.op, i.rd, i.rs1), (Op::LrW, 10, 11));
    assert_eq!(d(0x18c5_a52f).op, Op::ScW);
    assert_eq!(d(0x00c5_b52f).op, Op::AmoaddD);
    // lr with rs2 != 0 is reserved
    assert_eq!(d(0x1015_a52f).op, Op::Illegal);
    let aqrl = d(0x06c5_b52f);
    assert_eq!(format!("{aqrl}"), "amoadd.d.aqrl a0,a2,(a1)");
}

#[test]
fn system_and_csr() {
    assert_eq!(d(0x0000_0073).op, Op::Ecall);
    assert_eq!(d(0x0010_0073).op, Op::Ebreak);
    assert_eq!(d(0x3020_0073).op, Op::Mret);
    assert_eq!(d(0x1020_0073).op, Op::Sret);
    assert_eq!(d(0x1050_0073).op, Op::Wfi);
    assert_eq!(d(0x1200_0073).op, Op::SfenceVma);
    let i = d(0x3003_12f3);
    assert_eq!((i.op, i.rd, i.rs1, i.imm), (Op::Csrrw, 5, 6, 0x300));
    assert_eq!(format!("{i}"), "csrrw t0,mstatus,t1");
    assert_eq!(d(0x0000_100f).op, Op::FenceI);
    assert_eq!(format!("{}", d(0x0ff0_000f)), "fence iorw,iorw");
    assert_eq!(d(0x0000_4073).op, Op::Illegal);
}

#[test]
fn floating_point() {
    let i = d(0x02c5_f553);
    assert_eq!((i.op, i.rd, i.rs1, i.rs2, i.rm), (Op::FaddD, 10, 11, 12, 7));
    assert_eq!(format!("{i}"), "fadd.d fa0,fa1,fa2");
    // fadd.d with rm=5 is illegal
    assert_eq!(d(0x02c5_d553).op, Op::Illegal);
    // fmadd.s fa0,fa1,fa2,fa3
    let i = d(0x68c5_f543);
    assert_eq!((i.op, i.rs3), (Op::FmaddS, 13));
    // fmt=2 (half) is not supported
    assert_eq!(d(0x6cc5_f543).op, Op::Illegal);
    // fcvt.w.s a0,fa1,rtz
    let i = d(0xc005_9553);
    assert_eq!((i.op, i.rm), (Op::FcvtWS, 1));
    assert_eq!(format!("{i}"), "fcvt.w.s a0,fa1,rtz");
    // fmv.x.d a0,fa1 / fclass.d
    assert_eq!(d(0xe205_8553).op, Op::FmvXD);
    assert_eq!(d(0xe205_9553).op, Op::FclassD);
    // fcvt.s.d needs rs2=1
    assert_eq!(d(0x4015_f553).op, Op::FcvtSD);
    assert_eq!(d(0x4025_f553).op, Op::Illegal);
    assert_eq!(d(0x0085_3507).op, Op::Fld);
    assert_eq!(d(0x00a1_3427).op, Op::Fsd);
    assert!(Op::Fld.is_fp() && !Op::Ld.is_fp());
}

/// Each compressed instruction next to the 32-bit instruction it must
/// behave exactly like.
const COMPRESSED_PAIRS: &[(u16, u32)] = &[
    (0x0505, 0x0015_0513), // c.addi a0,1 = addi a0,a0,1
    (0x4505, 0x0010_0513), // c.li a0,1 = addi a0,zero,1
    (0x852e, 0x00b0_0533), // c.mv a0,a1 = add a0,zero,a1
    (0x952e, 0x00b5_0533), // c.add a0,a1
    (0x8082, 0x0000_8067), // c.jr ra = jalr zero,0(ra)
    (0x9502, 0x0005_00e7), // c.jalr a0 = jalr ra,0(a0)
    (0x60a2, 0x0081_3083), // c.ldsp ra,8(sp)
    (0xe406, 0x0011_3423), // c.sdsp ra,8(sp)
    (0x4188, 0x0005_a503), // c.lw a0,0(a1)
    (0x0001, 0x0000_0013), // c.nop = addi zero,zero,0
    (0x9002, 0x0010_0073), // c.ebreak
    (0x1141, 0xff01_0113), // c.addi16sp sp,-16
    (0x0028, 0x0081_0513), // c.addi4spn a0,sp,8
    (0x6505, 0x0000_1537), // c.lui a0,1
    (0x357d, 0xfff5_051b), // c.addiw a0,-1
    (0x8d0d, 0x40b5_0533), // c.sub a0,a1
    (0x9d2d, 0x00b5_053b), // c.addw a0,a1
    (0x8905, 0x0015_7513), // c.andi a0,1
    (0x8105, 0x0015_5513), // c.srli a0,1
    (0x8505, 0x4015_5513), // c.srai a0,1
    (0x0506, 0x0015_1513), // c.slli a0,1
    (0xa001, 0x0000_006f), // c.j .+0
    (0xc101, 0x0005_0063), // c.beqz a0,.+0
    (0xe101, 0x0005_1063), // c.bnez a0,.+0
    (0x2188, 0x0005_b507), // c.fld fa0,0(a1) (rd'=a0 -> fa0)
    (0xa188, 0x00a5_b027), // c.fsd fa0,0(a1)
    (0x2522, 0x0081_3507), // c.fldsp fa0,8(sp)
    (0xa42a, 0x00a1_3427), // c.fsdsp fa0,8(sp)
    (0x6188, 0x0005_b503), // c.ld a0,0(a1)
    (0xe188, 0x00a5_b023), // c.sd a0,0(a1)
    (0xc188, 0x00a5_a023), // c.sw a0,0(a1)
    (0x4522, 0x0081_2503), // c.lwsp a0,8(sp)
    (0xc42a, 0x00a1_2423), // c.swsp a0,8(sp)
];

#[test]
fn compressed_matches_expansion() {
    for &(c, full) in COMPRESSED_PAIRS {
        let short = decode(u32::from(c));
        let long = decode(full);
        assert_ne!(long.op, Op::Illegal, "{full:#x}");
        assert_eq!(sem(short), sem(long), "c={c:#06x} full={full:#010x}");
        assert_eq!(short.len, 2);
        assert_eq!(short.raw, u32::from(c));
        assert_eq!(expand(c), Some(full), "c={c:#06x}");
    }
}

#[test]
fn compressed_reserved_encodings() {
    assert_eq!(decode(0).op, Op::Illegal); // all-zero parcel
    assert_eq!(decode(0x8002).op, Op::Illegal); // c.jr x0
    assert_eq!(decode(0x4002).op, Op::Illegal); // c.lwsp x0
    assert_eq!(decode(0x2001).op, Op::Illegal); // c.addiw x0
    assert_eq!(decode(0x6101).op, Op::Illegal); // c.addi16sp 0
    assert_eq!(decode(0x8000).op, Op::Illegal); // quadrant 0, funct3 4
    // The high half is ignored for compressed instructions.
    assert_eq!(decode(0xdead_0505).op, Op::Addi);
}

#[test]
fn every_compressed_expansion_is_a_valid_32_bit_instruction() {
    for h in 0..=u16::MAX {
        if h & 3 == 3 {
            continue;
        }
        if let Some(full) = expand(h) {
            assert_eq!(full & 3, 3);
            let i = decode(full);
            assert_ne!(i.op, Op::Illegal, "{h:#06x} -> {full:#010x}");
            assert_eq!(sem(decode(u32::from(h))), sem(i));
        }
    }
}

#[test]
fn mnemonics_are_unique() {
    let mut names: Vec<_> = Op::ALL.iter().map(|o| o.mnemonic()).collect();
    names.sort_unstable();
    let n = names.len();
    names.dedup();
    assert_eq!(n, names.len());
}

#[test]
fn word_atomics_are_the_a_extension_ops_ending_in_w() {
    for op in Op::ALL {
        let m = op.mnemonic();
        let atomic = m.starts_with("lr.") || m.starts_with("sc.") || m.starts_with("amo");
        assert_eq!(op.is_word_atomic(), atomic && m.ends_with(".w"), "{m}");
    }
}

proptest! {
    #[test]
    fn decoding_never_panics(w in any::<u32>()) {
        let i = decode(w);
        prop_assert!(i.len == 2 || i.len == 4);
        let _ = i.to_string();
        let _ = i.at(0x8000_0000).to_string();
    }
}
