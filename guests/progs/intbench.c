/*
 * intbench — single-hart integer benchmark (hart 0; the others park).
 *
 * Four kernels, each folded into a checksum:
 *   crc     table-driven CRC-32 over a generated 64 KiB buffer, repeated
 *   sort    quicksort of 64 Ki generated uint32 (several seeds), verified
 *   matmul  int32 matrix multiply, C = A*B, repeated with A updated from C
 *   vm      a tiny bytecode interpreter (a switch-dispatch state machine)
 *           running a Collatz-length program
 * Sizes are compile-time constants; the defaults run ~335M instructions
 * (~1.5 s at 200 MIPS).  Deterministic: the output is identical on every
 * run and for every hart count.
 */
#include "runtime.h"

#ifndef CRC_REPS
#define CRC_REPS 64u
#endif
#ifndef SORT_N
#define SORT_N (64u * 1024)
#endif
#ifndef SORT_REPS
#define SORT_REPS 4u
#endif
#ifndef MAT_N
#define MAT_N 64u
#endif
#ifndef MAT_REPS
#define MAT_REPS 24u
#endif
#ifndef VM_LIMIT
#define VM_LIMIT 12000u          /* Collatz lengths of 1..VM_LIMIT */
#endif

#define CRC_BUF (64u * 1024)

static uint8_t crc_buf[CRC_BUF];
static uint32_t crc_table[256];
static uint32_t sort_buf[SORT_N];
static int32_t ma[MAT_N][MAT_N], mb[MAT_N][MAT_N], mc[MAT_N][MAT_N];

/* ------------------------------------------------------------- crc */

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & -(c & 1u));
        crc_table[i] = c;
    }
}

static uint32_t crc32_fast(uint32_t crc, const uint8_t *p, size_t n)
{
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t bench_crc(void)
{
    uint64_t s = 1;
    for (size_t i = 0; i < CRC_BUF; i += 8) {
        uint64_t v = splitmix64(&s);
        for (int k = 0; k < 8; k++)
            crc_buf[i + k] = (uint8_t)(v >> (8 * k));
    }
    crc_init();
    /* Self-check the table-driven CRC against the runtime's bitwise one. */
    if (crc32_fast(0, crc_buf, 4096) != crc32_update(0, crc_buf, 4096))
        return 0;
    uint32_t crc = 0;
    for (uint32_t r = 0; r < CRC_REPS; r++) {
        crc = crc32_fast(crc, crc_buf, CRC_BUF);
        crc_buf[r % CRC_BUF] ^= (uint8_t)crc;     /* make each rep differ */
    }
    return crc;
}

/* ------------------------------------------------------------- sort */

static void insertion(uint32_t *a, long lo, long hi)
{
    for (long i = lo + 1; i <= hi; i++) {
        uint32_t v = a[i];
        long j = i - 1;
        while (j >= lo && a[j] > v) {
            a[j + 1] = a[j];
            j--;
        }
        a[j + 1] = v;
    }
}

/* Quicksort, median-of-three, recursing into the smaller side so the stack
 * depth stays O(log n) (16 KiB stacks). */
static void quicksort(uint32_t *a, long lo, long hi)
{
    while (hi - lo > 16) {
        long mid = lo + (hi - lo) / 2;
        uint32_t x = a[lo], y = a[mid], z = a[hi];
        uint32_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        long i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                uint32_t t = a[i]; a[i] = a[j]; a[j] = t;
                i++; j--;
            }
        }
        if (j - lo < hi - i) {
            quicksort(a, lo, j);
            lo = i;
        } else {
            quicksort(a, i, hi);
            hi = j;
        }
    }
    insertion(a, lo, hi);
}

static uint32_t bench_sort(void)
{
    uint32_t sum = 0;
    for (uint32_t r = 0; r < SORT_REPS; r++) {
        uint64_t s = 0x5eed0000u + r;
        for (uint32_t i = 0; i < SORT_N; i++)
            sort_buf[i] = (uint32_t)splitmix64(&s) % (SORT_N * 4);   /* with duplicates */
        quicksort(sort_buf, 0, SORT_N - 1);
        for (uint32_t i = 1; i < SORT_N; i++)
            if (sort_buf[i - 1] > sort_buf[i])
                return 0;                                        /* not sorted */
        sum = crc32_fast(sum, (const uint8_t *)sort_buf, sizeof sort_buf);
    }
    return sum;
}

/* ------------------------------------------------------------- matmul */

static uint32_t bench_matmul(void)
{
    uint64_t s = 42;
    for (unsigned i = 0; i < MAT_N; i++)
        for (unsigned j = 0; j < MAT_N; j++) {
            ma[i][j] = (int32_t)(splitmix64(&s) % 201) - 100;
            mb[i][j] = (int32_t)(splitmix64(&s) % 201) - 100;
        }
    uint32_t sum = 0;
    for (uint32_t r = 0; r < MAT_REPS; r++) {
        for (unsigned i = 0; i < MAT_N; i++)
            for (unsigned j = 0; j < MAT_N; j++) {
                int32_t acc = 0;
                for (unsigned k = 0; k < MAT_N; k++)
                    acc += ma[i][k] * mb[k][j];
                mc[i][j] = acc;
            }
        /* Feed back (kept small so values stay in range), so no rep can
         * be skipped. */
        for (unsigned i = 0; i < MAT_N; i++)
            for (unsigned j = 0; j < MAT_N; j++)
                ma[i][j] = (mc[i][j] % 199) - 99 + (int32_t)r;
        sum = crc32_fast(sum, (const uint8_t *)mc, sizeof mc);
    }
    return sum;
}

/* ------------------------------------------------------------- vm */

/* A register machine with 8 registers and a handful of opcodes; the
 * program computes sum over n in 1..limit of the Collatz length of n. */
enum { OP_LI, OP_MOV, OP_ADD, OP_ADDI, OP_SHR1, OP_ANDI, OP_MUL3P1, OP_BEQ, OP_BNE,
       OP_BLT, OP_JMP, OP_HALT };
typedef struct { uint8_t op, a, b, c; int32_t imm; } insn_t;

static uint64_t vm_run(const insn_t *prog, uint64_t *r)
{
    uint64_t steps = 0;
    for (uint32_t pc = 0;; steps++) {
        const insn_t *i = &prog[pc++];
        switch (i->op) {
        case OP_LI:     r[i->a] = (uint64_t)(int64_t)i->imm; break;
        case OP_MOV:    r[i->a] = r[i->b]; break;
        case OP_ADD:    r[i->a] = r[i->b] + r[i->c]; break;
        case OP_ADDI:   r[i->a] = r[i->b] + (uint64_t)(int64_t)i->imm; break;
        case OP_SHR1:   r[i->a] = r[i->b] >> 1; break;
        case OP_ANDI:   r[i->a] = r[i->b] & (uint64_t)(int64_t)i->imm; break;
        case OP_MUL3P1: r[i->a] = r[i->b] * 3 + 1; break;
        case OP_BEQ:    if (r[i->a] == r[i->b]) pc = (uint32_t)i->imm; break;
        case OP_BNE:    if (r[i->a] != r[i->b]) pc = (uint32_t)i->imm; break;
        case OP_BLT:    if (r[i->a] < r[i->b]) pc = (uint32_t)i->imm; break;
        case OP_JMP:    pc = (uint32_t)i->imm; break;
        case OP_HALT:   return steps;
        default:        return 0;
        }
    }
}

static uint64_t bench_vm(uint64_t *steps_out)
{
    /* Registers: r0 = 0, r1 = n, r2 = limit+1, r3 = x, r4 = total steps,
     * r5 = 1, r6 = scratch.  Branch targets are patched via labels. */
    insn_t p[20];
    unsigned n = 0;
    p[n++] = (insn_t){ OP_LI, 0, 0, 0, 0 };
    p[n++] = (insn_t){ OP_LI, 1, 0, 0, 1 };
    p[n++] = (insn_t){ OP_LI, 2, 0, 0, VM_LIMIT + 1 };
    p[n++] = (insn_t){ OP_LI, 4, 0, 0, 0 };
    p[n++] = (insn_t){ OP_LI, 5, 0, 0, 1 };
    unsigned loop_n = n;
    p[n++] = (insn_t){ OP_MOV, 3, 1, 0, 0 };
    unsigned loop_x = n;
    unsigned beq_done = n;
    p[n++] = (insn_t){ OP_BEQ, 3, 5, 0, 0 };             /* patched below */
    p[n++] = (insn_t){ OP_ADDI, 4, 4, 0, 1 };
    p[n++] = (insn_t){ OP_ANDI, 6, 3, 0, 1 };
    unsigned bne_odd = n;
    p[n++] = (insn_t){ OP_BNE, 6, 0, 0, 0 };             /* patched below */
    p[n++] = (insn_t){ OP_SHR1, 3, 3, 0, 0 };
    p[n++] = (insn_t){ OP_JMP, 0, 0, 0, (int32_t)loop_x };
    p[bne_odd].imm = (int32_t)n;
    p[n++] = (insn_t){ OP_MUL3P1, 3, 3, 0, 0 };
    p[n++] = (insn_t){ OP_JMP, 0, 0, 0, (int32_t)loop_x };
    p[beq_done].imm = (int32_t)n;
    p[n++] = (insn_t){ OP_ADDI, 1, 1, 0, 1 };
    p[n++] = (insn_t){ OP_BLT, 1, 2, 0, (int32_t)loop_n };
    p[n++] = (insn_t){ OP_HALT, 0, 0, 0, 0 };

    uint64_t r[8] = { 0 };
    *steps_out = vm_run(p, r);
    return r[4];
}

/* ------------------------------------------------------------- main */

int guest_main(unsigned hart, unsigned nharts)
{
    (void)nharts;
    if (hart != 0)
        return 0;                       /* park: single-hart benchmark */

    uint32_t c_crc = bench_crc();
    uint32_t c_sort = bench_sort();
    uint32_t c_mat = bench_matmul();
    uint64_t vm_steps;
    uint64_t c_vm = bench_vm(&vm_steps);

    /* Independent check of the VM result in plain C. */
    uint64_t ref = 0;
    for (uint64_t n = 1; n <= VM_LIMIT; n++)
        for (uint64_t x = n; x != 1; ref++)
            x = (x & 1) ? 3 * x + 1 : x >> 1;

    uint32_t all = 0;
    all = crc32_update(all, &c_crc, sizeof c_crc);
    all = crc32_update(all, &c_sort, sizeof c_sort);
    all = crc32_update(all, &c_mat, sizeof c_mat);
    all = crc32_update(all, &c_vm, sizeof c_vm);

    printf("intbench: crc=%08lx sort=%08lx matmul=%08lx vm=%llu (%llu steps)\n",
           (unsigned long)c_crc, (unsigned long)c_sort, (unsigned long)c_mat,
           (unsigned long long)c_vm, (unsigned long long)vm_steps);
    int ok = c_crc && c_sort && c_vm == ref;
    printf("intbench: checksum=%08lx %s\n", (unsigned long)all, ok ? "PASS" : "FAIL");
    return ok ? 0 : 1;
}
