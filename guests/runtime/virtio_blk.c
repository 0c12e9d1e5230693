/*
 * virtio_blk.c — see virtio_blk.h.  References: virtio spec v1.2,
 * 4.2.2 (MMIO registers), 4.2.4 (legacy interface), 2.7 (split virtqueue),
 * 5.2 (block device).
 */
#include "runtime.h"
#include "virtio_blk.h"

/* MMIO register offsets (modern names; legacy aliases noted). */
#define VIO_MAGIC            0x000   /* "virt" */
#define VIO_VERSION          0x004
#define VIO_DEVICE_ID        0x008
#define VIO_DEVICE_FEATURES  0x010   /* legacy: HostFeatures */
#define VIO_DEVICE_FEAT_SEL  0x014
#define VIO_DRIVER_FEATURES  0x020   /* legacy: GuestFeatures */
#define VIO_DRIVER_FEAT_SEL  0x024
#define VIO_GUEST_PAGE_SIZE  0x028   /* legacy only */
#define VIO_QUEUE_SEL        0x030
#define VIO_QUEUE_NUM_MAX    0x034
#define VIO_QUEUE_NUM        0x038
#define VIO_QUEUE_ALIGN      0x03c   /* legacy only */
#define VIO_QUEUE_PFN        0x040   /* legacy only */
#define VIO_QUEUE_READY      0x044
#define VIO_QUEUE_NOTIFY     0x050
#define VIO_INT_STATUS       0x060
#define VIO_INT_ACK          0x064
#define VIO_STATUS           0x070
#define VIO_QUEUE_DESC_LO    0x080
#define VIO_QUEUE_DESC_HI    0x084
#define VIO_QUEUE_DRIVER_LO  0x090
#define VIO_QUEUE_DRIVER_HI  0x094
#define VIO_QUEUE_DEVICE_LO  0x0a0
#define VIO_QUEUE_DEVICE_HI  0x0a4
#define VIO_CONFIG           0x100   /* virtio-blk: le64 capacity first */

#define VIRTIO_MAGIC     0x74726976u
#define VIRTIO_ID_BLOCK  2u

#define ST_ACKNOWLEDGE 1u
#define ST_DRIVER      2u
#define ST_DRIVER_OK   4u
#define ST_FEATURES_OK 8u
#define ST_FAILED      128u

#define F_VERSION_1_HI 1u          /* feature bit 32 = bit 0 of the high word */

#define VRING_DESC_F_NEXT  1u
#define VRING_DESC_F_WRITE 2u      /* device writes this buffer */
#define VRING_AVAIL_F_NO_INTERRUPT 1u

#define VIRTIO_BLK_T_IN  0u
#define VIRTIO_BLK_T_OUT 1u

#define QSIZE 8u                   /* we only ever use 3 descriptors */

struct vring_desc { uint64_t addr; uint32_t len; uint16_t flags; uint16_t next; };
struct vring_avail { uint16_t flags; uint16_t idx; uint16_t ring[QSIZE]; uint16_t used_event; };
struct vring_used_elem { uint32_t id; uint32_t len; };
struct vring_used { uint16_t flags; uint16_t idx; struct vring_used_elem ring[QSIZE]; uint16_t avail_event; };

/* One 8 KiB, page-aligned block laid out as the legacy interface requires
 * (desc + avail in the first page, used ring at the next 4 KiB boundary);
 * the modern interface is simply given the three addresses. */
static struct {
    struct vring_desc desc[QSIZE];
    struct vring_avail avail;
    uint8_t pad[4096 - sizeof(struct vring_desc) * QSIZE - sizeof(struct vring_avail)];
    struct vring_used used;
} __attribute__((aligned(4096))) vq;

struct blk_req { uint32_t type; uint32_t reserved; uint64_t sector; };
static struct blk_req req;
static volatile uint8_t req_status;

static uintptr_t base;
static unsigned irq_no;
static uint16_t last_used;         /* used->idx we have consumed up to */
static spinlock_t vq_lock = SPINLOCK_INIT;
static volatile uint32_t irq_count;

static uint32_t rd(unsigned off) { return mmio_read32(base + off); }
static void wr(unsigned off, uint32_t v) { mmio_write32(base + off, v); }

static void on_irq(unsigned hart)
{
    (void)hart;
    /* Acknowledge at the device so its line drops before the runtime
     * completes the claim at the PLIC.  Completion itself is detected
     * from the used ring, so a stale or merged interrupt is harmless. */
    uint32_t st = rd(VIO_INT_STATUS);
    wr(VIO_INT_ACK, st);
    irq_count = irq_count + 1;
}

uint32_t vblk_irq_count(void) { return irq_count; }

static int fail(const char *why)
{
    printf("virtio-blk: %s\n", why);
    if (base)
        wr(VIO_STATUS, ST_FAILED);
    return -1;
}

int vblk_init(struct vblk_info *info)
{
    /* QEMU fills the slots from the top, samsara may not: scan them all. */
    base = 0;
    for (unsigned i = 0; i < VIRTIO_MMIO_SLOTS; i++) {
        uintptr_t b = VIRTIO_MMIO_BASE(i);
        if (mmio_read32(b + VIO_MAGIC) == VIRTIO_MAGIC &&
            mmio_read32(b + VIO_DEVICE_ID) == VIRTIO_ID_BLOCK) {
            base = b;
            info->slot = i;
            irq_no = VIRTIO_IRQ(i);
            break;
        }
    }
    if (!base)
        return fail("no virtio block device in any virtio-mmio slot");
    info->irq = irq_no;
    unsigned version = rd(VIO_VERSION);
    info->version = version;
    if (version != 1 && version != 2)
        return fail("unsupported virtio-mmio version");

    wr(VIO_STATUS, 0);                                  /* reset */
    wr(VIO_STATUS, ST_ACKNOWLEDGE);
    wr(VIO_STATUS, ST_ACKNOWLEDGE | ST_DRIVER);

    /* Features: ask for nothing but VERSION_1 (modern only). */
    if (version == 2) {
        wr(VIO_DEVICE_FEAT_SEL, 1);
        if (!(rd(VIO_DEVICE_FEATURES) & F_VERSION_1_HI))
            return fail("device does not offer VIRTIO_F_VERSION_1");
        wr(VIO_DRIVER_FEAT_SEL, 1);
        wr(VIO_DRIVER_FEATURES, F_VERSION_1_HI);
        wr(VIO_DRIVER_FEAT_SEL, 0);
        wr(VIO_DRIVER_FEATURES, 0);
        wr(VIO_STATUS, ST_ACKNOWLEDGE | ST_DRIVER | ST_FEATURES_OK);
        if (!(rd(VIO_STATUS) & ST_FEATURES_OK))
            return fail("device refused our features");
    } else {
        wr(VIO_DRIVER_FEAT_SEL, 0);
        wr(VIO_DRIVER_FEATURES, 0);
        wr(VIO_GUEST_PAGE_SIZE, 4096);
    }

    wr(VIO_QUEUE_SEL, 0);
    uint32_t max = rd(VIO_QUEUE_NUM_MAX);
    if (max < QSIZE)
        return fail("queue 0 too small or absent");
    if (version == 2 && rd(VIO_QUEUE_READY))
        return fail("queue 0 already live");
    wr(VIO_QUEUE_NUM, QSIZE);
    uintptr_t d = (uintptr_t)&vq.desc, a = (uintptr_t)&vq.avail, u = (uintptr_t)&vq.used;
    if (version == 2) {
        wr(VIO_QUEUE_DESC_LO, (uint32_t)d);
        wr(VIO_QUEUE_DESC_HI, (uint32_t)(d >> 32));
        wr(VIO_QUEUE_DRIVER_LO, (uint32_t)a);
        wr(VIO_QUEUE_DRIVER_HI, (uint32_t)(a >> 32));
        wr(VIO_QUEUE_DEVICE_LO, (uint32_t)u);
        wr(VIO_QUEUE_DEVICE_HI, (uint32_t)(u >> 32));
        wr(VIO_QUEUE_READY, 1);
    } else {
        wr(VIO_QUEUE_ALIGN, 4096);
        wr(VIO_QUEUE_PFN, (uint32_t)(d >> 12));
    }
    last_used = vq.used.idx;            /* 0 after reset; be exact anyway */

    info->capacity = ((uint64_t)rd(VIO_CONFIG + 4) << 32) | rd(VIO_CONFIG);

    /* Route the device's PLIC source: priority 1; each hart enables it in
     * its own context only while it waits for a completion. */
    plic_set_handler(irq_no, on_irq);
    plic_set_priority(irq_no, 1);

    wr(VIO_STATUS, ST_ACKNOWLEDGE | ST_DRIVER | ST_FEATURES_OK | ST_DRIVER_OK);
    return 0;
}

static uint16_t used_idx(void)
{
    return __atomic_load_n(&vq.used.idx, __ATOMIC_ACQUIRE);
}

int vblk_rw(uint64_t sector, void *buf, uint32_t len, int write, enum vblk_wait how)
{
    if (!base || len == 0 || len % VBLK_SECTOR)
        return -1;
    unsigned hart = hart_id();

    spin_lock(&vq_lock);
    req.type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
    req.reserved = 0;
    req.sector = sector;
    req_status = 0xff;

    vq.desc[0] = (struct vring_desc){ (uintptr_t)&req, sizeof req, VRING_DESC_F_NEXT, 1 };
    vq.desc[1] = (struct vring_desc){ (uintptr_t)buf, len,
                                      (uint16_t)(VRING_DESC_F_NEXT | (write ? 0 : VRING_DESC_F_WRITE)), 2 };
    vq.desc[2] = (struct vring_desc){ (uintptr_t)&req_status, 1, VRING_DESC_F_WRITE, 0 };

    /* Suppress the interrupt when polling, so there is none to clean up. */
    vq.avail.flags = how == VBLK_POLL ? VRING_AVAIL_F_NO_INTERRUPT : 0;
    uint16_t ai = vq.avail.idx;
    vq.avail.ring[ai % QSIZE] = 0;                      /* head descriptor */
    fence();                                            /* ring entry before idx */
    __atomic_store_n(&vq.avail.idx, (uint16_t)(ai + 1), __ATOMIC_RELEASE);
    uint16_t want = (uint16_t)(last_used + 1);

    unsigned long st = irq_save();
    if (how == VBLK_IRQ) {
        plic_set_threshold(hart, 0);
        plic_enable(hart, irq_no);
        csr_set(mie, MIE_MEIE);
    }
    fence();                                            /* idx before notify */
    wr(VIO_QUEUE_NOTIFY, 0);

    if (how == VBLK_IRQ) {
        /* Sleep with MIE clear (a pending MEIP still ends wfi), then open
         * a window to take the interrupt; re-check the ring each time. */
        while (used_idx() != want) {
            wfi();
            irq_global_enable();
            irq_global_disable();
        }
        csr_clear(mie, MIE_MEIE);
        plic_disable(hart, irq_no);
    } else {
        while (used_idx() != want)
            cpu_relax();
    }
    irq_restore(st);
    fence();                                            /* ring before data */

    last_used = want;
    int status = req_status;
    if (vq.used.ring[(uint16_t)(want - 1) % QSIZE].id != 0)
        status = -2;                                    /* not our chain */
    spin_unlock(&vq_lock);
    return status;
}
