/*
 * virtio_blk.h — minimal virtio-blk driver over virtio-mmio.
 *
 * Speaks the virtio 1.x "modern" MMIO interface (Version register = 2,
 * VIRTIO_F_VERSION_1 negotiated, separate desc/driver/device ring
 * addresses), which is what samsara implements.  It also drives the legacy
 * interface (Version = 1, QueuePFN) because QEMU 7.2 presents virtio-mmio
 * devices as legacy unless started with -global virtio-mmio.force-legacy=false.
 *
 * One split virtqueue (queue 0), one request in flight: vblk_rw takes a
 * spinlock for the whole request, so any hart may call it.
 */
#ifndef SAMSARA_VIRTIO_BLK_H
#define SAMSARA_VIRTIO_BLK_H

#include <stdint.h>

#define VBLK_SECTOR 512u

enum vblk_wait { VBLK_POLL, VBLK_IRQ };

struct vblk_info {
    unsigned slot;          /* virtio-mmio slot index 0..7 */
    unsigned irq;           /* PLIC source */
    unsigned version;       /* MMIO Version register: 1 legacy, 2 modern */
    uint64_t capacity;      /* in 512-byte sectors */
};

/* Probe all slots for a block device (DeviceID 2) and bring it up.
 * Returns 0 on success, negative on failure (reason printed). */
int vblk_init(struct vblk_info *info);

/* Read (write = 0) or write `len` bytes (multiple of 512) at `sector`.
 * VBLK_IRQ waits for the completion interrupt through the PLIC (routed to
 * the calling hart's M-mode context for the duration of the request);
 * VBLK_POLL spins on the used ring.  Returns the virtio status byte
 * (0 = OK) or negative on a driver error. */
int vblk_rw(uint64_t sector, void *buf, uint32_t len, int write, enum vblk_wait how);

/* Completion interrupts taken so far (all harts). */
uint32_t vblk_irq_count(void);

#endif
