/*
 * fdt.c — just enough of a flattened-device-tree reader to learn the hart
 * count (and RAM size) at run time, so one binary works for any -smp N.
 *
 * Format (devicetree spec v0.4, ch. 5): big-endian header, then a structure
 * block of 32-bit tokens: BEGIN_NODE name\0 (padded), END_NODE,
 * PROP len nameoff value (padded), NOP, END.
 */
#include "runtime.h"
#include <string.h>

#define FDT_MAGIC      0xd00dfeedu
#define FDT_BEGIN_NODE 1u
#define FDT_END_NODE   2u
#define FDT_PROP       3u
#define FDT_NOP        4u
#define FDT_END        9u

static uint32_t be32(const void *p)
{
    const uint8_t *b = p;
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static size_t align4(size_t x) { return (x + 3) & ~(size_t)3; }

/* Visit every property; the callback sees the node path depth, the node's
 * name and its parent's name.  Stops when the callback returns nonzero. */
typedef int (*fdt_visit_t)(void *ctx, int depth, const char *node, const char *parent,
                           const char *prop, const uint8_t *val, uint32_t len);

#define FDT_MAX_DEPTH 16

static int fdt_walk(const void *fdt, fdt_visit_t visit, void *ctx)
{
    if (!fdt || be32(fdt) != FDT_MAGIC)
        return -1;
    const uint8_t *base = fdt;
    const uint8_t *p = base + be32(base + 8);           /* off_dt_struct */
    const char *strings = (const char *)base + be32(base + 12);
    uint32_t struct_size = be32(base + 36);             /* size_dt_struct (v17) */
    const uint8_t *end = p + struct_size;
    const char *names[FDT_MAX_DEPTH + 1] = { "" };
    int depth = 0;

    while (p < end) {
        uint32_t tok = be32(p);
        p += 4;
        switch (tok) {
        case FDT_BEGIN_NODE: {
            const char *name = (const char *)p;
            p += align4(strlen(name) + 1);
            if (depth < FDT_MAX_DEPTH)
                names[depth + 1] = name;
            depth++;
            /* Report the node itself with prop == NULL. */
            if (depth <= FDT_MAX_DEPTH &&
                visit(ctx, depth, name, names[depth - 1], NULL, NULL, 0))
                return 0;
            break;
        }
        case FDT_END_NODE:
            depth--;
            break;
        case FDT_PROP: {
            uint32_t len = be32(p), nameoff = be32(p + 4);
            const uint8_t *val = p + 8;
            p += 8 + align4(len);
            if (depth >= 1 && depth <= FDT_MAX_DEPTH &&
                visit(ctx, depth, names[depth], names[depth - 1], strings + nameoff, val, len))
                return 0;
            break;
        }
        case FDT_NOP:
            break;
        case FDT_END:
            return 0;
        default:
            return -1;                                  /* corrupt */
        }
    }
    return 0;
}

/* Hart count: /cpus/cpu@N nodes minus those with status = "disabled".
 * (/cpus/cpu-map also lives under /cpus but is not named cpu@.) */
struct cpu_ctx { int count; };

static int is_cpu(int depth, const char *node, const char *parent)
{
    return depth == 3 && strcmp(parent, "cpus") == 0 && strncmp(node, "cpu@", 4) == 0;
}

static int visit_cpu(void *ctx, int depth, const char *node, const char *parent,
                     const char *prop, const uint8_t *val, uint32_t len)
{
    struct cpu_ctx *c = ctx;
    if (!is_cpu(depth, node, parent))
        return 0;
    if (!prop)
        c->count++;
    else if (strcmp(prop, "status") == 0 && len >= 8 && memcmp(val, "disabled", 8) == 0)
        c->count--;
    return 0;
}

int fdt_count_cpus(const void *fdt)
{
    struct cpu_ctx c = { 0 };
    /* Depth convention: the root node is depth 1, /cpus depth 2, cpu@N 3. */
    if (fdt_walk(fdt, visit_cpu, &c) < 0)
        return -1;
    return c.count;
}

struct mem_ctx { uint64_t size; };

static int visit_mem(void *ctx, int depth, const char *node, const char *parent,
                     const char *prop, const uint8_t *val, uint32_t len)
{
    struct mem_ctx *m = ctx;
    (void)parent;
    /* QEMU virt: /memory@80000000 with #address-cells = #size-cells = 2. */
    if (depth == 2 && strncmp(node, "memory", 6) == 0 && prop &&
        strcmp(prop, "reg") == 0 && len >= 16) {
        m->size = ((uint64_t)be32(val + 8) << 32) | be32(val + 12);
        return 1;
    }
    return 0;
}

uint64_t fdt_memory_size(const void *fdt)
{
    struct mem_ctx m = { 0 };
    if (fdt_walk(fdt, visit_mem, &m) < 0)
        return 0;
    return m.size;
}
