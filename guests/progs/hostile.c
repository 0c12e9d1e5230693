/*
 * hostile — a guest that attacks its own machine (issue 6, guest isolation).
 *
 * Every attack must end in a guest-visible, architecturally defined result
 * — an exception the guest's hook sees, a WARL CSR keeping a legal value,
 * or virtio's NEEDS_RESET status — and never touch host memory outside the
 * guest's RAM, panic or hang the host. Each case prints one line,
 *   hostile: <case>: ok (<what happened>)   or   hostile: <case>: WRONG (...)
 * and the program exits 0 only if every case behaved.
 *
 * Sections (hart 0; with more harts, hart 1 runs the wild-pointer and AMO
 * sections at the same time, so that record/replay orders faults of two
 * harts):
 *   wild pointers   loads, stores and fetches at holes, the top of the
 *                   address space, far beyond RAM, the read-only boot ROM
 *   device atomics  AMO / LR / SC on UART, CLINT, PLIC, holes; misaligned AMO
 *   CSR junk        nonexistent CSRs, all-ones into WARL CSRs (read back
 *                   legal, then restored), reserved satp modes
 *   page tables     (M-mode loads/stores with MPRV as S, and an S-mode
 *                   fetch) reserved PTE bits, W-without-R, misaligned
 *                   superpages, a level-0 pointer PTE, a PTE loop, tables
 *                   and leaves outside RAM, U pages from S, read-only stores
 *   virtio          (when a virtio-blk disk is attached) rings and buffers
 *                   outside RAM or wrapping around the address space,
 *                   looping chains, heads outside the queue, an avail index
 *                   far ahead, a used ring outside RAM; then a good request
 *                   must still work after a device reset.
 */
#include "runtime.h"

/* ------------------------------------------------------------ reporting */

static volatile uint32_t wrong;
static volatile uint32_t cases;

static volatile uint32_t hk_count[RT_MAX_HARTS];
static volatile uint64_t hk_cause[RT_MAX_HARTS];
static volatile uint64_t hk_tval[RT_MAX_HARTS];
/* Where to resume after a fault whose mepc is not readable (a fetch). */
static volatile uint64_t recover_pc[RT_MAX_HARTS];

#define MSTATUS_MPP   (3ul << 11)
#define MSTATUS_MPP_S (1ul << 11)
#define MSTATUS_MPRV  (1ul << 17)

static int hook(unsigned hart, trap_frame_t *f)
{
    hk_count[hart]++;
    hk_cause[hart] = f->mcause;
    hk_tval[hart] = f->mtval;
    if (recover_pc[hart]) {
        f->mepc = recover_pc[hart];
        recover_pc[hart] = 0;
        /* Resume in M-mode, without MPRV (mret leaves MPP = U behind). */
        csr_set(mstatus, MSTATUS_MPP);
        csr_clear(mstatus, MSTATUS_MPRV);
        return 1;
    }
    uint16_t first = *(const uint16_t *)f->mepc;
    f->mepc += (first & 3u) == 3u ? 4 : 2;
    return 1;
}

static void result(unsigned hart, const char *name, int ok, const char *what)
{
    atomic_fetch_add32(&cases, 1);
    if (!ok)
        atomic_fetch_add32(&wrong, 1);
    printf("hostile: hart %u: %s: %s (%s)\n", hart, name, ok ? "ok" : "WRONG", what);
}

/* Expect exactly one exception with a cause in {c1, c2}. */
static void expect_fault(unsigned hart, const char *name, uint32_t before, unsigned c1, unsigned c2)
{
    char what[96];
    uint32_t n = hk_count[hart] - before;
    uint64_t c = hk_cause[hart];
    snprintf(what, sizeof what, "%u exception(s), cause %llu, tval %#llx", (unsigned)n,
             (unsigned long long)c, (unsigned long long)hk_tval[hart]);
    result(hart, name, n == 1 && (c == c1 || c == c2), what);
}

/* ------------------------------------------------------------ probes */
/* Each is one 4-byte instruction (norvc), so the hook can skip it. */

static inline void probe_ld(uintptr_t a)
{
    uint64_t v;
    __asm__ volatile(".option push\n.option norvc\nld %0, 0(%1)\n.option pop"
                     : "=r"(v) : "r"(a) : "memory");
    (void)v;
}
static inline void probe_sd(uintptr_t a)
{
    __asm__ volatile(".option push\n.option norvc\nsd %1, 0(%0)\n.option pop"
                     :: "r"(a), "r"(0x5a5a5a5aul) : "memory");
}
#define PROBE_AMO(name, insn)                                                          \
    static inline void name(uintptr_t a)                                               \
    {                                                                                  \
        uint64_t v;                                                                    \
        __asm__ volatile(".option push\n.option norvc\n" insn "\n.option pop"          \
                         : "=&r"(v) : "r"(a), "r"(1ul) : "memory");                     \
        (void)v;                                                                       \
    }
PROBE_AMO(probe_amoadd_w, "amoadd.w %0, %2, (%1)")
PROBE_AMO(probe_amoswap_d, "amoswap.d %0, %2, (%1)")
PROBE_AMO(probe_amoor_w, "amoor.w %0, %2, (%1)")
PROBE_AMO(probe_lr_w, "lr.w %0, (%1)")
PROBE_AMO(probe_sc_d, "sc.d %0, %2, (%1)")

/* A load or store made with the translation and protection of S-mode
 * (MPRV with MPP = S): the page-table walks under test. */
static inline void probe_s_ld(uintptr_t a)
{
    uint64_t v;
    csr_clear(mstatus, MSTATUS_MPP);
    csr_set(mstatus, MSTATUS_MPP_S);
    __asm__ volatile(".option push\n.option norvc\n"
                     "csrs mstatus, %2\n"
                     "ld %0, 0(%1)\n"
                     "csrc mstatus, %2\n"
                     ".option pop"
                     : "=&r"(v) : "r"(a), "r"(MSTATUS_MPRV) : "memory");
    (void)v;
    csr_set(mstatus, MSTATUS_MPP);
}
static inline void probe_s_sd(uintptr_t a)
{
    csr_clear(mstatus, MSTATUS_MPP);
    csr_set(mstatus, MSTATUS_MPP_S);
    __asm__ volatile(".option push\n.option norvc\n"
                     "csrs mstatus, %2\n"
                     "sd %1, 0(%0)\n"
                     "csrc mstatus, %2\n"
                     ".option pop"
                     :: "r"(a), "r"(7ul), "r"(MSTATUS_MPRV) : "memory");
    csr_set(mstatus, MSTATUS_MPP);
}

/* Jump to `target` in privilege `mpp` with mret; the fetch there must
 * fault, and the hook brings us back to label 1 in M-mode. */
static void probe_fetch(unsigned hart, uintptr_t target, unsigned long mpp)
{
    __asm__ volatile(".option push\n.option norvc\n"
                     "la t0, 1f\n"
                     "sd t0, 0(%0)\n"
                     "li t0, %3\n"
                     "csrc mstatus, t0\n"
                     "csrs mstatus, %2\n"
                     "csrw mepc, %1\n"
                     "mret\n"
                     "1:\n"
                     ".option pop"
                     :: "r"(&recover_pc[hart]), "r"(target), "r"(mpp), "i"(MSTATUS_MPP)
                     : "t0", "memory");
}

/* ------------------------------------------------------------ sections */

static void wild_pointers(unsigned hart)
{
    uint32_t b;
    b = hk_count[hart]; probe_ld(0x0);                      expect_fault(hart, "load from address 0", b, 5, 5);
    b = hk_count[hart]; probe_ld(0xfffffffffffffff8ul);     expect_fault(hart, "load from the top of the address space", b, 5, 5);
    b = hk_count[hart]; probe_sd(0xdeadbeef0000ul);         expect_fault(hart, "store far beyond RAM", b, 7, 7);
    b = hk_count[hart]; probe_sd(RAM_BASE + (64ul << 30));  expect_fault(hart, "store 64 GiB past the start of RAM", b, 7, 7);
    b = hk_count[hart]; probe_sd(0x1000);                   expect_fault(hart, "store into the boot ROM", b, 7, 7);
    b = hk_count[hart]; probe_ld(0x40000000ul);             expect_fault(hart, "load from a hole", b, 5, 5);
    b = hk_count[hart]; probe_fetch(hart, 0x40000000ul, MSTATUS_MPP);
    expect_fault(hart, "fetch from a hole", b, 1, 1);
    /* Devices are executable on virt (as on QEMU): the UART's registers
     * read as an illegal instruction, or the fetch faults. Either way a
     * defined exception, taken at the UART's address. */
    b = hk_count[hart]; probe_fetch(hart, UART_BASE, MSTATUS_MPP);
    expect_fault(hart, "fetch from the UART", b, 1, 2);
    b = hk_count[hart]; probe_fetch(hart, 0xfffffffffffffffcul, MSTATUS_MPP);
    expect_fault(hart, "fetch at the top of the address space", b, 1, 1);
}

static void device_atomics(unsigned hart)
{
    uint32_t b;
    b = hk_count[hart]; probe_amoadd_w(UART_BASE);          expect_fault(hart, "amoadd.w on the UART", b, 7, 7);
    b = hk_count[hart]; probe_amoswap_d(CLINT_MTIME);       expect_fault(hart, "amoswap.d on CLINT mtime", b, 7, 7);
    b = hk_count[hart]; probe_lr_w(CLINT_MSIP(0));          expect_fault(hart, "lr.w on CLINT msip", b, 5, 7);
    b = hk_count[hart]; probe_sc_d(PLIC_BASE);              expect_fault(hart, "sc.d on the PLIC", b, 7, 7);
    b = hk_count[hart]; probe_amoor_w(0x0);                 expect_fault(hart, "amoor.w on a hole", b, 7, 7);
    b = hk_count[hart]; probe_amoor_w(0x100000ul + 2);      expect_fault(hart, "misaligned amoor.w on the test device", b, 6, 7);
    static uint64_t word[2];
    b = hk_count[hart]; probe_amoadd_w((uintptr_t)word + 1 + 8 * 0);
    expect_fault(hart, "misaligned amoadd.w in RAM", b, 6, 7);
}

static void csr_junk(unsigned hart)
{
    uint32_t b;
    char what[96];
    /* A CSR number nothing implements. */
    b = hk_count[hart];
    __asm__ volatile(".option push\n.option norvc\ncsrw 0x7c0, %0\n.option pop" :: "r"(-1l));
    expect_fault(hart, "write to a nonexistent CSR", b, 2, 2);
    b = hk_count[hart];
    __asm__ volatile(".option push\n.option norvc\ncsrw cycle, %0\n.option pop" :: "r"(-1l));
    expect_fault(hart, "write to the read-only cycle CSR", b, 2, 2);
    /* All ones into WARL CSRs: each must read back a legal value. The
     * write, the read and the restore are adjacent instructions, so nothing
     * runs with the junk in place. */
    uint64_t old, got;
    __asm__ volatile("csrrw %0, mstatus, %2\ncsrr %1, mstatus\ncsrw mstatus, %0"
                     : "=&r"(old), "=&r"(got) : "r"(-1l) : "memory");
    snprintf(what, sizeof what, "mstatus read %#llx", (unsigned long long)got);
    result(hart, "all ones into mstatus", ((got >> 11) & 3) != 2 && ((got >> 32) & 3) == 2, what);
    __asm__ volatile("csrrw %0, medeleg, %2\ncsrr %1, medeleg\ncsrw medeleg, %0"
                     : "=&r"(old), "=&r"(got) : "r"(-1l) : "memory");
    snprintf(what, sizeof what, "medeleg read %#llx", (unsigned long long)got);
    result(hart, "all ones into medeleg", (got & (1ul << 11)) == 0, what);
    __asm__ volatile("csrrw %0, satp, %2\ncsrr %1, satp\ncsrw satp, %0"
                     : "=&r"(old), "=&r"(got) : "r"(5ul << 60 | 0x123) : "memory");
    snprintf(what, sizeof what, "satp read %#llx", (unsigned long long)got);
    result(hart, "reserved satp mode 5", (got >> 60) != 5, what);
    __asm__ volatile("csrrw %0, mepc, %2\ncsrr %1, mepc\ncsrw mepc, %0"
                     : "=&r"(old), "=&r"(got) : "r"(-1l) : "memory");
    snprintf(what, sizeof what, "mepc read %#llx", (unsigned long long)got);
    result(hart, "all ones into mepc", (got & 1) == 0, what);
    __asm__ volatile("csrrw %0, pmpaddr15, %2\ncsrr %1, pmpaddr15\ncsrw pmpaddr15, %0"
                     : "=&r"(old), "=&r"(got) : "r"(-1l) : "memory");
    snprintf(what, sizeof what, "pmpaddr15 read %#llx", (unsigned long long)got);
    result(hart, "all ones into pmpaddr15", (got >> 54) == 0, what);
}

/* Page tables: pt[0] is the Sv39 root. Probed at VA 1 GiB (root index 1). */
static uint64_t pt[3][512] __attribute__((aligned(4096)));
#define PTE_V 1ul
#define PTE_R 2ul
#define PTE_W 4ul
#define PTE_X 8ul
#define PTE_U 16ul
#define PTE_A 64ul
#define PTE_D 128ul
#define VA    0x40000000ul
#define SATP_SV39 (8ul << 60)
#define FAR_PA 0x4000000000ul       /* 256 GiB: no RAM, no device */

static inline uint64_t pte(uint64_t pa, uint64_t flags) { return ((pa >> 12) << 10) | flags; }
static inline void sfence(void) { __asm__ volatile("sfence.vma" ::: "memory"); }

static void paging_case(unsigned hart, const char *name, uint64_t root1, int store,
                        unsigned c1, unsigned c2)
{
    pt[0][1] = root1;
    sfence();
    uint32_t b = hk_count[hart];
    if (store)
        probe_s_sd(VA + 0x1008);
    else
        probe_s_ld(VA + 0x1008);
    expect_fault(hart, name, b, c1, c2);
}

static void page_tables(unsigned hart)
{
    /* PMP entry 0 grants S everything (the runtime leaves PMP off). */
    csr_write(pmpaddr0, -1l);
    csr_write(pmpcfg0, 0x1f);
    uint64_t ram_gig = RAM_BASE & ~((1ul << 30) - 1);
    csr_write(satp, SATP_SV39 | ((uintptr_t)pt[0] >> 12));
    sfence();

    paging_case(hart, "reserved PTE bits 63..54", pte(ram_gig, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D) | (1ul << 62), 0, 13, 13);
    paging_case(hart, "W without R", pte(ram_gig, PTE_V | PTE_W | PTE_A | PTE_D), 0, 13, 13);
    paging_case(hart, "misaligned gigapage", pte(ram_gig + 0x1000, PTE_V | PTE_R | PTE_A), 0, 13, 13);
    pt[1][0] = pte((uintptr_t)pt[2], PTE_V);
    pt[2][1] = pte((uintptr_t)pt[2], PTE_V);      /* a pointer PTE at level 0 */
    paging_case(hart, "pointer PTE at level 0", pte((uintptr_t)pt[1], PTE_V), 0, 13, 13);
    /* The root's entry 1 points back at the root: VA 1 GiB + 2 MiB + 4 KiB
     * walks root[1] three times and must stop at level 0. */
    pt[0][1] = pte((uintptr_t)pt[0], PTE_V);
    sfence();
    uint32_t b = hk_count[hart];
    probe_s_ld(VA + (1ul << 21) + (1ul << 12));
    expect_fault(hart, "page-table loop", b, 13, 13);
    paging_case(hart, "next-level table outside RAM", pte(FAR_PA, PTE_V), 0, 5, 5);
    paging_case(hart, "store through a table outside RAM", pte(FAR_PA, PTE_V), 1, 7, 7);
    paging_case(hart, "leaf mapping outside RAM", pte(FAR_PA, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D), 0, 5, 5);
    paging_case(hart, "U page from S without SUM", pte(ram_gig, PTE_V | PTE_R | PTE_U | PTE_A), 0, 13, 13);
    paging_case(hart, "store to a read-only page", pte(ram_gig, PTE_V | PTE_R | PTE_A), 1, 15, 15);

    /* A good mapping must still work (and set A by hardware). */
    pt[0][1] = pte(ram_gig, PTE_V | PTE_R | PTE_W);
    sfence();
    b = hk_count[hart];
    probe_s_ld(VA + ((uintptr_t)&pt[2][7] - ram_gig));
    result(hart, "good gigapage, A set by hardware",
           hk_count[hart] == b && (pt[0][1] & PTE_A), "loaded through it");

    /* An S-mode fetch through a misaligned superpage. */
    pt[0][1] = pte(ram_gig + 0x1000, PTE_V | PTE_R | PTE_X | PTE_A);
    sfence();
    b = hk_count[hart];
    probe_fetch(hart, VA + 0x2000, MSTATUS_MPP_S);
    expect_fault(hart, "S-mode fetch via a misaligned gigapage", b, 12, 12);

    /* Root table outside RAM. */
    csr_write(satp, SATP_SV39 | (FAR_PA >> 12));
    sfence();
    b = hk_count[hart];
    probe_s_ld(VA);
    expect_fault(hart, "root table outside RAM", b, 5, 5);

    csr_write(satp, 0);
    sfence();
}

/* ------------------------------------------------------------ virtio */

#define VIO_MAGIC       0x000
#define VIO_DEVICE_ID   0x008
#define VIO_DEV_FEAT    0x010
#define VIO_DEV_FEAT_SEL 0x014
#define VIO_DRV_FEAT    0x020
#define VIO_DRV_FEAT_SEL 0x024
#define VIO_QUEUE_SEL   0x030
#define VIO_QUEUE_NUM   0x038
#define VIO_QUEUE_READY 0x044
#define VIO_QUEUE_NOTIFY 0x050
#define VIO_INT_ACK     0x064
#define VIO_STATUS      0x070
#define VIO_DESC_LO     0x080
#define VIO_DESC_HI     0x084
#define VIO_DRIVER_LO   0x090
#define VIO_DRIVER_HI   0x094
#define VIO_DEVICE_LO   0x0a0
#define VIO_DEVICE_HI   0x0a4
#define ST_ACK 1u
#define ST_DRIVER 2u
#define ST_DRIVER_OK 4u
#define ST_FEATURES_OK 8u
#define ST_NEEDS_RESET 64u
#define F_NEXT 1u
#define F_WRITE 2u
#define QN 8u

struct desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
static struct {
    struct desc d[QN];
    struct { uint16_t flags, idx, ring[QN], event; } avail;
    uint8_t pad[4096 - 16 * QN - 2 * (QN + 3)];
    struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[QN]; uint16_t event; } used;
} vq __attribute__((aligned(4096)));
static struct { uint32_t type, reserved; uint64_t sector; } req;
static uint8_t data[512] __attribute__((aligned(512)));
static volatile uint8_t req_status;

static uintptr_t vio;

static void vio_w(unsigned off, uint32_t v) { mmio_write32(vio + off, v); }
static uint32_t vio_r(unsigned off) { return mmio_read32(vio + off); }

/* Brings the device up with queue 0 at the given addresses. */
static void vio_setup(uint64_t desc, uint64_t driver, uint64_t device)
{
    vio_w(VIO_STATUS, 0);
    for (unsigned i = 0; i < sizeof vq; i++)
        ((volatile uint8_t *)&vq)[i] = 0;
    vio_w(VIO_STATUS, ST_ACK | ST_DRIVER);
    vio_w(VIO_DRV_FEAT_SEL, 1);
    vio_w(VIO_DRV_FEAT, 1);                  /* VIRTIO_F_VERSION_1 */
    vio_w(VIO_DRV_FEAT_SEL, 0);
    vio_w(VIO_DRV_FEAT, 0);
    vio_w(VIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK);
    vio_w(VIO_QUEUE_SEL, 0);
    vio_w(VIO_QUEUE_NUM, QN);
    vio_w(VIO_DESC_LO, (uint32_t)desc);
    vio_w(VIO_DESC_HI, (uint32_t)(desc >> 32));
    vio_w(VIO_DRIVER_LO, (uint32_t)driver);
    vio_w(VIO_DRIVER_HI, (uint32_t)(driver >> 32));
    vio_w(VIO_DEVICE_LO, (uint32_t)device);
    vio_w(VIO_DEVICE_HI, (uint32_t)(device >> 32));
    vio_w(VIO_QUEUE_READY, 1);
    vio_w(VIO_STATUS, ST_ACK | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
}

/* A read request of sector 0 as the three-descriptor chain 0 -> 1 -> 2. */
static void good_chain(void)
{
    req.type = 0;
    req.sector = 0;
    req_status = 0xff;
    vq.d[0] = (struct desc){ (uintptr_t)&req, sizeof req, F_NEXT, 1 };
    vq.d[1] = (struct desc){ (uintptr_t)data, sizeof data, F_NEXT | F_WRITE, 2 };
    vq.d[2] = (struct desc){ (uintptr_t)&req_status, 1, F_WRITE, 0 };
}

static void submit(uint16_t head, uint16_t new_idx)
{
    vq.avail.ring[0] = head;
    fence();
    vq.avail.idx = new_idx;
    fence();
    vio_w(VIO_QUEUE_NOTIFY, 0);
}

/* NEEDS_RESET may come with the notify or, for a completion that cannot
 * be applied, when the device's worker gets to it: wait up to 2 s. */
#define WAIT_TICKS (2ul * MTIME_HZ)
static int needs_reset(void)
{
    uint64_t t0 = rdtime();
    while (rdtime() - t0 < WAIT_TICKS) {
        if (vio_r(VIO_STATUS) & ST_NEEDS_RESET)
            return 1;
        cpu_relax();
    }
    return 0;
}

static void vio_case(unsigned hart, const char *name)
{
    char what[64];
    int ok = needs_reset();
    snprintf(what, sizeof what, "status %#x%s", (unsigned)vio_r(VIO_STATUS),
             ok ? ": NEEDS_RESET" : "");
    result(hart, name, ok, what);
    vio_w(VIO_INT_ACK, 3);
}

static void virtio(unsigned hart)
{
    for (unsigned i = 0; i < 8; i++) {
        uintptr_t b = 0x10001000ul + 0x1000ul * i;
        if (mmio_read32(b + VIO_MAGIC) == 0x74726976u && mmio_read32(b + VIO_DEVICE_ID) == 2)
            vio = b;
    }
    if (!vio) {
        printf("hostile: no virtio-blk disk: virtio section skipped\n");
        return;
    }
    uintptr_t d = (uintptr_t)&vq.d, a = (uintptr_t)&vq.avail, u = (uintptr_t)&vq.used;

    vio_setup(FAR_PA, a, u);
    good_chain();
    submit(0, 1);
    vio_case(hart, "descriptor table outside RAM");

    vio_setup(0xfffffffffffff000ul, a, u);
    submit(0, 1);
    vio_case(hart, "descriptor table wrapping the address space");

    vio_setup(d, FAR_PA, u);
    vio_w(VIO_QUEUE_NOTIFY, 0);
    vio_case(hart, "avail ring outside RAM");

    vio_setup(d, a, u);
    good_chain();
    vq.d[0].addr = FAR_PA;
    submit(0, 1);
    vio_case(hart, "request header outside RAM");

    vio_setup(d, a, u);
    good_chain();
    vq.d[1].addr = 0xffffffffffffff00ul;
    submit(0, 1);
    vio_case(hart, "data buffer wrapping the address space");

    vio_setup(d, a, u);
    good_chain();
    vq.d[1].addr = 0x1000;                    /* the boot ROM: not RAM */
    submit(0, 1);
    vio_case(hart, "data buffer in the boot ROM");

    vio_setup(d, a, u);
    good_chain();
    vq.d[2].flags = F_WRITE | F_NEXT;
    vq.d[2].next = 0;                         /* 0 -> 1 -> 2 -> 0 -> ... */
    submit(0, 1);
    vio_case(hart, "descriptor chain loop");

    vio_setup(d, a, u);
    good_chain();
    submit(200, 1);
    vio_case(hart, "chain head outside the queue");

    vio_setup(d, a, u);
    good_chain();
    submit(0, 1000);
    vio_case(hart, "avail index far ahead");

    vio_setup(d, a, FAR_PA);
    good_chain();
    submit(0, 1);
    vio_case(hart, "used ring outside RAM");

    /* After a reset the device serves a good request. */
    vio_setup(d, a, u);
    good_chain();
    submit(0, 1);
    uint64_t t0 = rdtime();
    while (*(volatile uint16_t *)&vq.used.idx != 1 && rdtime() - t0 < WAIT_TICKS)
        cpu_relax();
    char what[64];
    snprintf(what, sizeof what, "used idx %u, status byte %u", vq.used.idx, req_status);
    result(hart, "good request after the attacks", vq.used.idx == 1 && req_status == 0, what);
    vio_w(VIO_INT_ACK, 3);
    vio_w(VIO_STATUS, 0);
}

/* ------------------------------------------------------------ main */

static barrier_t bar;

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0)
        rt_set_exception_hook(hook);
    barrier_wait_spin(&bar);
    if (hart < 2) {
        wild_pointers(hart);
        device_atomics(hart);
    }
    barrier_wait_spin(&bar);
    if (hart != 0)
        return 0;
    csr_junk(hart);
    page_tables(hart);
    virtio(hart);
    printf("hostile: %u cases on %u harts, %u wrong: %s\n", (unsigned)cases, nharts,
           (unsigned)wrong, wrong ? "FAIL" : "PASS");
    return wrong ? 1 : 0;
}
