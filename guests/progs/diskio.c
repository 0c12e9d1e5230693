/*
 * diskio — every hart does block I/O through one virtio-blk device.
 *
 * Needs a disk of at least DISK_BLOCKS * 4 KiB (128 KiB); the test script
 * uses a 1 MiB image (`truncate -s 1M disk.img`; zeros, but any content
 * works since every block read is written first).  QEMU:
 *   -drive file=disk.img,if=none,format=raw,id=hd0
 *   -device virtio-blk-device,drive=hd0
 *   [-global virtio-mmio.force-legacy=false  for the modern interface]
 *
 * Block b (4 KiB = 8 sectors at sector 8*b) belongs to hart b % nharts.
 *   phase 1 (polling):   each hart writes a pattern derived from b to its
 *                        own blocks, waiting on the used ring
 *   barrier
 *   phase 2 (interrupt): each hart reads every block it does not own (all
 *                        of them with one hart) and verifies the pattern,
 *                        waiting for the completion interrupt via PLIC/MEIP
 *   phase 3 (polling):   each hart reads its own blocks back and verifies
 * The checksum is the CRC-32 over all blocks' CRCs in block order, each
 * recorded by the block's owner's successor, so it is the same for every
 * hart count.  Deterministic output.  Exit 0 on success, 2 if no disk,
 * 3 on an I/O error, 4 on a verify mismatch, 5 if no interrupt was seen.
 */
#include "runtime.h"
#include "virtio_blk.h"

#define DISK_BLOCKS 32u
#define BLOCK_SIZE  4096u
#define SECTORS_PER_BLOCK (BLOCK_SIZE / VBLK_SECTOR)

static uint8_t bufs[RT_MAX_HARTS][BLOCK_SIZE] __attribute__((aligned(4096)));
static uint32_t block_crc[DISK_BLOCKS];
static struct { uint32_t io_errors, bad_blocks; } CACHE_ALIGNED res[RT_MAX_HARTS];
static volatile uint32_t init_failed;
static struct vblk_info info;
static barrier_t bar;

static void fill(uint8_t *p, unsigned block)
{
    uint64_t s = 0xd15c0000u + block;
    for (unsigned i = 0; i < BLOCK_SIZE; i += 8) {
        uint64_t v = splitmix64(&s);
        for (unsigned k = 0; k < 8; k++)
            p[i + k] = (uint8_t)(v >> (8 * k));
    }
}

static int matches(const uint8_t *p, unsigned block)
{
    uint64_t s = 0xd15c0000u + block;
    for (unsigned i = 0; i < BLOCK_SIZE; i += 8) {
        uint64_t v = splitmix64(&s);
        for (unsigned k = 0; k < 8; k++)
            if (p[i + k] != (uint8_t)(v >> (8 * k)))
                return 0;
    }
    return 1;
}

static void do_io(unsigned hart, unsigned b, int write, enum vblk_wait how)
{
    int st = vblk_rw((uint64_t)b * SECTORS_PER_BLOCK, bufs[hart], BLOCK_SIZE, write, how);
    if (st != 0)
        res[hart].io_errors++;
}

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0) {
        if (vblk_init(&info) != 0) {
            init_failed = 1;
        } else if (info.capacity < DISK_BLOCKS * SECTORS_PER_BLOCK) {
            printf("diskio: disk too small: %llu sectors\n", (unsigned long long)info.capacity);
            init_failed = 1;
        }
    }
    barrier_wait(&bar);
    if (init_failed)
        return hart == 0 ? 2 : 0;

    /* phase 1: write own blocks, polling */
    for (unsigned b = hart; b < DISK_BLOCKS; b += nharts) {
        fill(bufs[hart], b);
        do_io(hart, b, 1, VBLK_POLL);
    }
    barrier_wait(&bar);

    /* phase 2: read the others' blocks, interrupt-driven */
    irq_global_enable();
    unsigned pred = (hart + nharts - 1) % nharts;      /* whose CRCs we record */
    for (unsigned b = 0; b < DISK_BLOCKS; b++) {
        if (nharts > 1 && b % nharts == hart)
            continue;
        do_io(hart, b, 0, VBLK_IRQ);
        if (!matches(bufs[hart], b))
            res[hart].bad_blocks++;
        if (b % nharts == pred)
            block_crc[b] = crc32_update(0, bufs[hart], BLOCK_SIZE);
    }
    irq_global_disable();
    barrier_wait(&bar);

    /* phase 3: read own blocks back, polling */
    for (unsigned b = hart; b < DISK_BLOCKS; b += nharts) {
        do_io(hart, b, 0, VBLK_POLL);
        if (!matches(bufs[hart], b))
            res[hart].bad_blocks++;
    }
    barrier_wait(&bar);
    if (hart != 0)
        return 0;

    uint32_t io = 0, bad = 0;
    for (unsigned h = 0; h < nharts; h++) {
        io += res[h].io_errors;
        bad += res[h].bad_blocks;
    }
    uint32_t sum = crc32_update(0, block_crc, sizeof block_crc);
    uint32_t irqs = vblk_irq_count();
    printf("diskio: capacity=%llu sectors blocks=%u block_size=%u\n",
           (unsigned long long)info.capacity, (unsigned)DISK_BLOCKS, (unsigned)BLOCK_SIZE);
    printf("diskio: io_errors=%u verify_errors=%u irq_completions=%s checksum=%08lx\n",
           (unsigned)io, (unsigned)bad, irqs > 0 ? "yes" : "NO", (unsigned long)sum);
    int rc = io ? 3 : bad ? 4 : irqs == 0 ? 5 : 0;
    printf("diskio: %s\n", rc == 0 ? "PASS" : "FAIL");
    return rc;
}
