/*
 * kvstore — a key-value store served over the console by every hart.
 *
 * An interactive guest: what it does depends on the bytes fed to the UART
 * and on when they arrive, the non-deterministic input a recording must
 * capture and a replay must deliver at the same points.  Input is taken by
 * interrupt, never by polling LSR: under recording every device access is a
 * log entry of its own, and a hart polling for a person to type would fill
 * the log with them.  Every hart that waits sleeps in wfi.
 *
 * Protocol: one request per "\n"-terminated line ("\r" is ignored), one
 * reply line per request, in request order.  Words are separated by spaces
 * or tabs; a key is one word of at most 32 bytes.
 *   SET <key> <value>  -> OK <key>   (value: the rest of the line, 1..96 bytes)
 *   GET <key>          -> VAL <key> <value>  or  MISSING <key>
 *   DEL <key>          -> DELETED <key>      or  MISSING <key>
 *   COUNT              -> COUNT <keys>
 *   STATS              -> STATS <ops_seen>
 *   QUIT               -> BYE <keys> <crc>, then exit 0
 *   anything else      -> ERR <what>: too long (key, value, or a line over
 *                         160 bytes), empty line, unknown command, missing
 *                         key, missing value, unexpected argument, or table
 *                         full (a SET of a new key when 1024 are stored)
 * READY <nharts> comes first, once all harts are up.  <crc> is 8 hex digits:
 * the CRC-32 of the text "key value\n" for every pair in bytewise key order,
 * so it depends only on the final contents, not on the history.
 *
 * Hart 0 owns the UART: its interrupt handler moves received bytes into a
 * ring, and its main loop parses lines.  It hands each SET/GET/DEL to a
 * worker (hart 1 + key hash % (nharts - 1); itself with one hart) through
 * the worker's mailbox, rings it with an IPI, and sleeps until the worker
 * answers (with an IPI back) before it reads the next line.  The store is
 * one open-addressing hash table under one spinlock.  ops_seen, bumped by
 * the workers with a plain load and store, is racy on purpose; the mailbox
 * hand-offs serialise it in practice, so STATS counts SET/GET/DEL requests.
 *
 * Input that ends without QUIT leaves the program waiting for more.
 */
#include "runtime.h"
#include <stdlib.h>
#include <string.h>

#define KEY_MAX   32u
#define VAL_MAX   96u
#define LINE_MAX  160u
#define TABLE_CAP 1024u                 /* power of two */
#ifndef RX_CAP
#define RX_CAP    1024u                 /* power of two */
#endif
#define REPLY_MAX (16u + KEY_MAX + VAL_MAX)

enum cmd { C_ERR, C_SET, C_GET, C_DEL, C_COUNT, C_STATS, C_QUIT };
static const char *const cmd_names[] = {
    [C_SET] = "SET", [C_GET] = "GET", [C_DEL] = "DEL",
    [C_COUNT] = "COUNT", [C_STATS] = "STATS", [C_QUIT] = "QUIT",
};

struct request {
    uint32_t op, hash, klen, vlen;
    char key[KEY_MAX], val[VAL_MAX];
};

struct entry {
    uint32_t hash;
    uint8_t used, klen, vlen;
    char key[KEY_MAX], val[VAL_MAX];
};

static struct entry table[TABLE_CAP];
static uint32_t table_count;
static spinlock_t table_lock = SPINLOCK_INIT;
static volatile uint64_t ops_seen CACHE_ALIGNED;

/* One per worker.  posted/done count requests; the worker owns req and reply
 * between hart 0 raising posted and the worker raising done. */
static struct mailbox {
    volatile uint32_t posted, done;
    struct request req;
    char reply[REPLY_MAX];
} CACHE_ALIGNED mbox[RT_MAX_HARTS];

/* Receive ring.  Only hart 0 takes the UART interrupt and only hart 0 reads
 * the ring: the handler interrupts the main loop but never runs beside it,
 * so single-word updates suffice.  Counters are free-running (head - tail
 * = bytes buffered). */
static struct {
    volatile uint32_t head, lines;      /* bytes and "\n"s received (handler) */
    volatile uint32_t tail;             /* bytes consumed (main loop) */
    uint32_t lines_taken;               /* "\n"s consumed */
    volatile uint32_t paused;           /* ring full: RX interrupt turned off */
    volatile uint8_t buf[RX_CAP];
} rx;

static barrier_t bar;

/* MMIO (the CLINT) is I/O to the fence instruction: order it with memory. */
static inline void fence_io(void) { __asm__ volatile("fence iorw, iorw" ::: "memory"); }

static uint32_t fnv1a(const char *s, unsigned n)
{
    uint32_t h = 2166136261u;
    while (n--)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h;
}

/* ------------------------------------------------------------ interrupts */

static void on_uart(unsigned hart)
{
    (void)hart;
    while (rx.head - rx.tail < RX_CAP) {
        int c = uart_getc_nowait();
        if (c < 0)
            return;
        rx.buf[rx.head % RX_CAP] = (uint8_t)c;
        rx.head = rx.head + 1;
        if (c == '\n')
            rx.lines = rx.lines + 1;
    }
    /* Ring full.  The interrupt is a level that stays up while a byte waits,
     * so stop it; the bytes wait in the UART (the host side holds them back)
     * until the main loop has made room and turns it on again.  Nothing is
     * dropped. */
    uart_disable_rx_irq();
    rx.paused = 1;
}

/* msip is a level: clear it, then fence so that the waiter's re-check of
 * its mailbox comes after the clear (a later IPI then raises it anew). */
static void on_ipi(unsigned hart)
{
    clint_clear_ipi(hart);
    fence_io();
}

/* ----------------------------------------------------------------- input */

static int rx_pop(void)
{
    uint32_t t = rx.tail;
    if (t == rx.head)
        return -1;
    int c = rx.buf[t % RX_CAP];
    rx.tail = t + 1;
    if (rx.paused && rx.head - rx.tail <= RX_CAP / 2) {
        unsigned long s = irq_save();
        rx.paused = 0;
        uart_enable_rx_irq();           /* fires at once if bytes wait */
        irq_restore(s);
    }
    return c;
}

/* Sleep until the ring holds a whole line, or is full (then the caller must
 * make room even without one).  The runtime's lost-wakeup-safe pattern:
 * check with interrupts masked, wfi (a pending interrupt still wakes it),
 * then take the interrupt in a short unmasked window. */
static void wait_for_line(void)
{
    unsigned long s = irq_save();
    while (rx.lines == rx.lines_taken && !rx.paused) {
        wfi();
        irq_global_enable();
        irq_global_disable();
    }
    irq_restore(s);
}

/* The next line, NUL-terminated, without "\r", "\n" or NUL bytes; its
 * length, or -1 if it was longer than LINE_MAX (the rest is dropped). */
static int read_line(char *buf)
{
    unsigned n = 0;
    int overlong = 0;
    for (;;) {
        wait_for_line();
        int c;
        while ((c = rx_pop()) >= 0) {
            if (c == '\n') {
                rx.lines_taken++;
                buf[n] = 0;
                return overlong ? -1 : (int)n;
            }
            if (c == '\r' || c == 0)
                continue;
            if (n < LINE_MAX)
                buf[n++] = (char)c;
            else
                overlong = 1;
        }
    }
}

static unsigned next_word(const char **p, const char **start)
{
    const char *s = *p;
    while (*s == ' ' || *s == '\t')
        s++;
    *start = s;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    *p = s;
    return (unsigned)(s - *start);
}

/* Fills *r for SET/GET/DEL; on C_ERR, *err says what is wrong. */
static enum cmd parse(const char *line, int len, struct request *r, const char **err)
{
    const char *p = line, *w, *key;
    *err = "too long";
    if (len < 0)
        return C_ERR;
    unsigned wl = next_word(&p, &w);
    enum cmd c = C_ERR;
    for (unsigned i = C_SET; i <= C_QUIT; i++)
        if (strlen(cmd_names[i]) == wl && memcmp(cmd_names[i], w, wl) == 0)
            c = (enum cmd)i;
    unsigned kl = next_word(&p, &key);
    while (*p == ' ' || *p == '\t')
        p++;
    unsigned vl = (unsigned)strlen(p);
    if (wl == 0)
        *err = "empty line";
    else if (c == C_ERR)
        *err = "unknown command";
    else if (c >= C_COUNT)
        *err = kl ? "unexpected argument" : NULL;
    else if (kl == 0)
        *err = "missing key";
    else if (kl > KEY_MAX || vl > VAL_MAX)
        *err = "too long";
    else if (c == C_SET && vl == 0)
        *err = "missing value";
    else if (c != C_SET && vl != 0)
        *err = "unexpected argument";
    else
        *err = NULL;
    if (*err)
        return C_ERR;
    if (c <= C_DEL) {
        r->op = c;
        r->klen = kl;
        r->vlen = vl;
        memcpy(r->key, key, kl);
        memcpy(r->val, p, vl);
        r->hash = fnv1a(key, kl);
    }
    return c;
}

/* ----------------------------------------------------------------- store */

/* The slot holding r's key (*found = 1) or the empty slot where it would
 * go; TABLE_CAP if the table is full and the key is not in it. */
static unsigned probe(const struct request *r, int *found)
{
    unsigned i = r->hash & (TABLE_CAP - 1);
    *found = 0;
    for (unsigned n = 0; n < TABLE_CAP; n++, i = (i + 1) & (TABLE_CAP - 1)) {
        const struct entry *e = &table[i];
        if (!e->used)
            return i;
        if (e->hash == r->hash && e->klen == r->klen && memcmp(e->key, r->key, r->klen) == 0) {
            *found = 1;
            return i;
        }
    }
    return TABLE_CAP;
}

/* Linear probing without tombstones: after emptying slot i, move later
 * entries of the same run back into the hole, so that every entry stays
 * reachable from its home slot and a lookup may stop at an empty slot. */
static void remove_at(unsigned i)
{
    const unsigned mask = TABLE_CAP - 1;
    for (unsigned j = i;;) {
        table[i].used = 0;
        for (;;) {
            j = (j + 1) & mask;
            if (!table[j].used)
                return;
            unsigned home = table[j].hash & mask;
            if (((j - home) & mask) >= ((j - i) & mask))
                break;                  /* home is not in (i, j]: it may move */
        }
        table[i] = table[j];
        i = j;
    }
}

/* Carries out one SET/GET/DEL and writes its reply line (without "\n"). */
static void apply(const struct request *r, char *reply)
{
    ops_seen = ops_seen + 1;            /* racy on purpose: no lock, no AMO */
    char val[VAL_MAX];
    unsigned vl = 0;
    int found;
    const char *word;
    spin_lock(&table_lock);
    unsigned i = probe(r, &found);
    struct entry *e = &table[i % TABLE_CAP];
    if (r->op == C_SET && i == TABLE_CAP) {
        word = NULL;
    } else if (r->op == C_SET) {
        if (!found) {
            e->used = 1;
            e->hash = r->hash;
            e->klen = (uint8_t)r->klen;
            memcpy(e->key, r->key, r->klen);
            table_count++;
        }
        e->vlen = (uint8_t)r->vlen;
        memcpy(e->val, r->val, r->vlen);
        word = "OK";
    } else if (!found) {
        word = "MISSING";
    } else if (r->op == C_GET) {
        vl = e->vlen;
        memcpy(val, e->val, vl);
        word = "VAL";
    } else {
        remove_at(i);
        table_count--;
        word = "DELETED";
    }
    spin_unlock(&table_lock);
    if (!word)
        snprintf(reply, REPLY_MAX, "ERR table full");
    else
        snprintf(reply, REPLY_MAX, "%s %.*s%s%.*s", word, (int)r->klen, r->key,
                 vl ? " " : "", (int)vl, val);
}

static int key_order(const void *a, const void *b)
{
    const struct entry *x = &table[*(const uint16_t *)a], *y = &table[*(const uint16_t *)b];
    int d = memcmp(x->key, y->key, x->klen < y->klen ? x->klen : y->klen);
    return d ? d : (int)x->klen - (int)y->klen;
}

/* CRC-32 of "key value\n" for every pair in key order; *count = keys. */
static uint32_t checksum(unsigned *count)
{
    static uint16_t order[TABLE_CAP];
    unsigned n = 0;
    uint32_t crc = 0;
    spin_lock(&table_lock);
    for (unsigned i = 0; i < TABLE_CAP; i++)
        if (table[i].used)
            order[n++] = (uint16_t)i;
    qsort(order, n, sizeof order[0], key_order);
    for (unsigned i = 0; i < n; i++) {
        const struct entry *e = &table[order[i]];
        crc = crc32_update(crc, e->key, e->klen);
        crc = crc32_update(crc, " ", 1);
        crc = crc32_update(crc, e->val, e->vlen);
        crc = crc32_update(crc, "\n", 1);
    }
    spin_unlock(&table_lock);
    *count = n;
    return crc;
}

/* --------------------------------------------------------------- harts */

__attribute__((noreturn)) static void worker(unsigned hart)
{
    struct mailbox *m = &mbox[hart];
    for (uint32_t n = 1;; n++) {
        rt_wait_until_ge(&m->posted, n);
        apply(&m->req, m->reply);
        atomic_store32(&m->done, n);    /* release: the reply before done */
        fence_io();
        clint_send_ipi(0);
    }
}

/* Hart 0: has request r carried out and returns its reply line. */
static const char *serve(const struct request *r, unsigned nharts, char *local)
{
    if (nharts == 1) {
        apply(r, local);
        return local;
    }
    unsigned w = 1 + (r->hash >> 16) % (nharts - 1);
    struct mailbox *m = &mbox[w];
    uint32_t n = m->posted + 1;
    m->req = *r;
    atomic_store32(&m->posted, n);      /* release: the request before posted */
    fence_io();                         /* ... and posted before the IPI */
    clint_send_ipi(w);
    rt_wait_until_ge(&m->done, n);
    return m->reply;
}

int guest_main(unsigned hart, unsigned nharts)
{
    if (hart == 0) {
        rt_set_irq_handler(IRQ_M_SOFT, on_ipi);
        plic_set_handler(UART_IRQ, on_uart);
        plic_set_priority(UART_IRQ, 1);
        plic_set_threshold(0, 0);
        plic_enable(0, UART_IRQ);       /* hart 0's M context only */
    }
    /* The sleeping barrier may leave a stale msip behind; on_ipi makes that
     * one spurious wakeup, which every wait here tolerates. */
    barrier_wait(&bar);
    csr_set(mie, MIE_MSIE);
    if (hart != 0)
        worker(hart);

    csr_set(mie, MIE_MEIE);
    irq_global_enable();
    uart_enable_rx_irq();
    printf("READY %u\n", nharts);

    static char line[LINE_MAX + 1], local[REPLY_MAX];
    for (;;) {
        struct request r;
        const char *err;
        unsigned keys;
        int len = read_line(line);
        switch (parse(line, len, &r, &err)) {
        case C_ERR:
            printf("ERR %s\n", err);
            break;
        case C_COUNT:
            spin_lock(&table_lock);
            keys = table_count;
            spin_unlock(&table_lock);
            printf("COUNT %u\n", keys);
            break;
        case C_STATS:
            printf("STATS %llu\n", (unsigned long long)ops_seen);
            break;
        case C_QUIT: {
            uint32_t crc = checksum(&keys);
            printf("BYE %u %08x\n", keys, (unsigned)crc);
            return 0;
        }
        default:
            puts(serve(&r, nharts, local));
            break;
        }
    }
}
