/*
 * dma_mix — disk DMA into pages that other harts are computing on.
 *
 * Exercises: virtio-blk DMA (device writes into guest RAM from its own
 * thread, at times the guest does not control) landing on the same 4 KiB
 * pages as plain loads/stores of other harts, plus a racy shared counter on
 * those pages; completions both polled and interrupt-driven (PLIC/MEIP).
 *
 * Needs a virtio-blk disk of at least DM_DISK_BYTES = 64 KiB (any content:
 * every block read is written first), e.g. `truncate -s 1M disk.img`:
 *   samsara run guests/build/dma_mix.elf --harts 4 --disk disk.img
 *   qemu-system-riscv64 -M virt -bios none -nographic -smp 4 -m 128M \
 *     -kernel guests/build/dma_mix.elf \
 *     -drive file=disk.img,if=none,format=raw,id=d0 -device virtio-blk-device,drive=d0
 * Without a disk it prints "dma_mix: no disk ..." and exits 2.
 *
 * Shared pages: page p = { io[2048] | w[255] | racy }.  io is a DMA buffer
 * (4 sectors); the 255 words w next to it are compute data; racy is a
 * counter incremented with plain load/store by everybody.
 *   I/O harts (even hart ids; I/O hart i uses page i), DM_ROUNDS rounds:
 *     fill io with the pattern of block b, write it to disk, scribble over
 *     io, read block b back into io, verify; rounds alternate polled and
 *     interrupt-driven completion.  Each completed request is appended to a
 *     global completion log (slot taken with amoadd).
 *   Compute harts (odd hart ids): repeated passes of an LCG step over the
 *     w words of all I/O pages (word g owned by compute hart g % ncompute),
 *     plus racy++ on each page per pass, until every I/O hart is done.
 *   With one hart, hart 0 does the I/O and then DM_MIN_PASSES passes.
 * Afterwards hart 0 reads every block again and checks it, and checks every
 * w word against the LCG applied `passes[owner]` times (so a DMA that
 * spilled past its buffer, or lost compute stores, is caught).
 *
 * Prints:  dma_mix: result harts=N io_harts=K ios=M order=H1 compute=H2
 *                   passes=P racy=R/E
 * The completion order hash (N > 2), the pass counts and so the compute
 * hash, and racy depend on the interleaving and on disk timing.  Exit 0 if
 * all checks pass; 2 no disk (or too small), 3 I/O error, 4 disk data
 * mismatch, 5 compute data corrupted, 6 counter invariant broken.
 */
#include "runtime.h"
#include "virtio_blk.h"

#ifndef DM_ROUNDS
#define DM_ROUNDS 8u
#endif
#define DM_PAGES (RT_MAX_HARTS / 2)     /* at most 4 I/O harts */
#define IO_BYTES 2048u
#define IO_SECTORS (IO_BYTES / VBLK_SECTOR)
#define CWORDS ((4096u - IO_BYTES) / 8u - 1u)
#define DM_DISK_BYTES (DM_PAGES * DM_ROUNDS * IO_BYTES)
#define DM_MIN_PASSES 3u
#define DM_MAX_PASSES 1000000u
#define LCG_A 6364136223846793005ull

struct dpage {
    uint8_t io[IO_BYTES];               /* DMA buffer */
    volatile uint64_t w[CWORDS];        /* compute words, same page */
    volatile uint64_t racy;             /* racy counter, same page */
};
_Static_assert(sizeof(struct dpage) == 4096, "dma_mix: one page per dpage");

static struct dpage pages[DM_PAGES] __attribute__((aligned(4096)));
static uint8_t check_buf[IO_BYTES] __attribute__((aligned(64)));

static volatile uint32_t init_failed;
static volatile uint32_t io_done CACHE_ALIGNED;
static volatile uint64_t racy_expect CACHE_ALIGNED;
static volatile uint32_t ord_n CACHE_ALIGNED;
static uint16_t ord[DM_PAGES * DM_ROUNDS * 2];
static struct { uint32_t io_errors, bad; uint64_t passes; } CACHE_ALIGNED res[RT_MAX_HARTS];
static struct vblk_info info;
static barrier_t bar;

static inline uint64_t mix(uint64_t h, uint64_t v)
{
    h = (h ^ v) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t w_init(unsigned g) { return 0x9E3779B97F4A7C15ull * (g + 1); }
static uint64_t w_inc(unsigned g) { return 2ull * g + 1; }

/* n steps of w = A*w + c in O(log n). */
static uint64_t lcg_skip(uint64_t w, uint64_t c, uint64_t n)
{
    uint64_t acc_a = 1, acc_c = 0, a = LCG_A;
    while (n) {
        if (n & 1) {
            acc_a *= a;
            acc_c = acc_c * a + c;
        }
        c = (a + 1) * c;
        a *= a;
        n >>= 1;
    }
    return acc_a * w + acc_c;
}

static void fill(uint8_t *p, unsigned block)
{
    uint64_t s = 0xd3a00000u + block;
    for (unsigned i = 0; i < IO_BYTES; i += 8) {
        uint64_t v = splitmix64(&s);
        for (unsigned k = 0; k < 8; k++)
            p[i + k] = (uint8_t)(v >> (8 * k));
    }
}

static int matches(const uint8_t *p, unsigned block)
{
    uint64_t s = 0xd3a00000u + block;
    for (unsigned i = 0; i < IO_BYTES; i += 8) {
        uint64_t v = splitmix64(&s);
        for (unsigned k = 0; k < 8; k++)
            if (p[i + k] != (uint8_t)(v >> (8 * k)))
                return 0;
    }
    return 1;
}

static void bump_racy(unsigned p)
{
    pages[p].racy = pages[p].racy + 1;
    atomic_fetch_add64(&racy_expect, 1);
}

static void do_io(unsigned hart, unsigned page, unsigned block, unsigned r, int write)
{
    enum vblk_wait how = (r & 1) ? VBLK_IRQ : VBLK_POLL;
    int st = vblk_rw((uint64_t)block * IO_SECTORS, pages[page].io, IO_BYTES, write, how);
    if (st != 0)
        res[hart].io_errors++;
    uint32_t i = atomic_fetch_add32(&ord_n, 1);
    if (i < sizeof ord / sizeof ord[0])
        ord[i] = (uint16_t)((hart << 8) | (r << 1) | (unsigned)write);
    bump_racy(page);
}

static void io_hart(unsigned hart, unsigned idx)
{
    for (unsigned r = 0; r < DM_ROUNDS; r++) {
        unsigned b = idx * DM_ROUNDS + r;
        fill(pages[idx].io, b);
        do_io(hart, idx, b, r, 1);
        for (unsigned i = 0; i < IO_BYTES; i++)
            pages[idx].io[i] = (uint8_t)(0xA5 ^ i);
        do_io(hart, idx, b, r, 0);
        if (!matches(pages[idx].io, b))
            res[hart].bad++;
    }
}

static void compute_pass(unsigned cidx, unsigned ncomp, unsigned npages)
{
    for (unsigned p = 0; p < npages; p++) {
        for (unsigned j = 0; j < CWORDS; j++) {
            unsigned g = p * CWORDS + j;
            if (g % ncomp == cidx)
                pages[p].w[j] = pages[p].w[j] * LCG_A + w_inc(g);
        }
        bump_racy(p);
    }
}

int guest_main(unsigned hart, unsigned nharts)
{
    unsigned nio = (nharts + 1) / 2;            /* even harts */
    unsigned ncomp = nharts / 2;                /* odd harts */
    if (hart == 0) {
        if (vblk_init(&info) != 0) {
            printf("dma_mix: no disk: needs a virtio-blk disk of >= %u bytes "
                   "(samsara: --disk IMG; qemu: -drive file=IMG,if=none,format=raw,id=d0 "
                   "-device virtio-blk-device,drive=d0)\n", (unsigned)DM_DISK_BYTES);
            init_failed = 1;
        } else if (info.capacity * VBLK_SECTOR < DM_DISK_BYTES) {
            printf("dma_mix: disk too small: %llu bytes, need %u\n",
                   (unsigned long long)(info.capacity * VBLK_SECTOR), (unsigned)DM_DISK_BYTES);
            init_failed = 1;
        }
        for (unsigned p = 0; p < DM_PAGES; p++)
            for (unsigned j = 0; j < CWORDS; j++)
                pages[p].w[j] = w_init(p * CWORDS + j);
    }
    barrier_wait(&bar);
    if (init_failed)
        return hart == 0 ? 2 : 0;

    if (hart % 2 == 0) {
        io_hart(hart, hart / 2);
        atomic_fetch_add32(&io_done, 1);
        if (nharts == 1) {
            for (unsigned i = 0; i < DM_MIN_PASSES; i++)
                compute_pass(0, 1, nio);
            res[0].passes = DM_MIN_PASSES;
        }
    } else {
        uint64_t n = 0;
        while (n < DM_MIN_PASSES || (atomic_load32(&io_done) < nio && n < DM_MAX_PASSES)) {
            compute_pass(hart / 2, ncomp, nio);
            n++;
        }
        res[hart].passes = n;
    }
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    /* ---- checks (hart 0 alone) */
    uint32_t io_err = 0, bad = 0, corrupt = 0;
    for (unsigned h = 0; h < nharts; h++) {
        io_err += res[h].io_errors;
        bad += res[h].bad;
    }
    for (unsigned b = 0; b < nio * DM_ROUNDS; b++) {
        if (vblk_rw((uint64_t)b * IO_SECTORS, check_buf, IO_BYTES, 0, VBLK_POLL) != 0)
            io_err++;
        else if (!matches(check_buf, b))
            bad++;
    }
    uint64_t ch = 0xcbf29ce484222325ull;
    unsigned nc = ncomp ? ncomp : 1;
    for (unsigned p = 0; p < DM_PAGES; p++)
        for (unsigned j = 0; j < CWORDS; j++) {
            unsigned g = p * CWORDS + j;
            unsigned owner = ncomp ? 2 * (g % nc) + 1 : 0;
            uint64_t steps = p < nio ? res[owner].passes : 0;
            uint64_t want = lcg_skip(w_init(g), w_inc(g), steps);
            if (pages[p].w[j] != want)
                corrupt++;
            ch = mix(ch, pages[p].w[j]);
        }
    uint64_t racy = 0;
    for (unsigned p = 0; p < DM_PAGES; p++)
        racy += pages[p].racy;
    uint64_t oh = 0xcbf29ce484222325ull;
    uint32_t n = ord_n;
    for (uint32_t i = 0; i < n && i < sizeof ord / sizeof ord[0]; i++)
        oh = mix(oh, ord[i]);

    char passes[96];
    int len = 0;
    passes[0] = 0;
    for (unsigned h = 1; h < nharts || (nharts == 1 && h == 1); h += 2) {
        unsigned src = nharts == 1 ? 0 : h;
        len += snprintf(passes + len, sizeof passes - (size_t)len, "%s%llu", len ? "/" : "",
                        (unsigned long long)res[src].passes);
        if (len >= (int)sizeof passes)
            break;
    }
    printf("dma_mix: result harts=%u io_harts=%u ios=%u order=%016llx compute=%016llx "
           "passes=%s racy=%llu/%llu\n", nharts, nio, (unsigned)n, (unsigned long long)oh,
           (unsigned long long)ch, passes, (unsigned long long)racy,
           (unsigned long long)racy_expect);
    int rc = 0;
    if (io_err)
        rc = 3;
    else if (bad || n != nio * DM_ROUNDS * 2)
        rc = 4;
    else if (corrupt)
        rc = 5;
    else if (racy == 0 || racy > racy_expect)
        rc = 6;
    if (rc)
        printf("dma_mix: io_errors=%u bad_blocks=%u corrupt_words=%u\n", (unsigned)io_err,
               (unsigned)bad, (unsigned)corrupt);
    printf("dma_mix: %s\n", rc == 0 ? "PASS" : "FAIL");
    return rc;
}
