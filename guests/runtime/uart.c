/*
 * uart.c — NS16550A console and the stdio hookup.
 *
 * Formatting is picolibc's tinystdio (vfprintf, with %f support); we only
 * provide the byte sink.  printf/puts/putchar are overridden here with
 * versions that take a print lock with interrupts masked, so output from
 * several harts never interleaves within one call and an interrupt handler
 * cannot deadlock against the hart it interrupted.
 */
#include "runtime.h"
#include <stdarg.h>

#define UART_THR 0      /* transmit holding register (write) */
#define UART_RBR 0      /* receive buffer register (read) */
#define UART_IER 1      /* interrupt enable */
#define UART_FCR 2      /* FIFO control (write) */
#define UART_LCR 3      /* line control */
#define UART_LSR 5      /* line status */
#define LSR_DR   0x01   /* receive data ready */
#define LSR_THRE 0x20   /* transmit holding register empty */
#define IER_RDI  0x01   /* "received data available" interrupt */

static spinlock_t print_lock = SPINLOCK_INIT;

void uart_init(void)
{
    mmio_write8(UART_BASE + UART_IER, 0x00);   /* polled: no UART interrupts */
    mmio_write8(UART_BASE + UART_LCR, 0x03);   /* 8N1, DLAB off */
    /* Enable + reset the FIFOs, unless input already waits: turning the
     * FIFO on flushes the receiver (on QEMU and samsara alike), and input
     * piped into the emulator can arrive before the guest's first
     * instruction.  Without the FIFO, reception still works (QEMU then
     * hands over one byte at a time; samsara queues input either way). */
    if (!(mmio_read8(UART_BASE + UART_LSR) & LSR_DR))
        mmio_write8(UART_BASE + UART_FCR, 0x07);
}

/* Receive side, for programs that read the console.  Both IER writers run
 * on the hart that owns input, so no lock: IER holds only this bit. */
void uart_enable_rx_irq(void) { mmio_write8(UART_BASE + UART_IER, IER_RDI); }
void uart_disable_rx_irq(void) { mmio_write8(UART_BASE + UART_IER, 0x00); }

int uart_getc_nowait(void)
{
    if (!(mmio_read8(UART_BASE + UART_LSR) & LSR_DR))
        return -1;
    return mmio_read8(UART_BASE + UART_RBR);
}

void uart_putc(char c)
{
    while (!(mmio_read8(UART_BASE + UART_LSR) & LSR_THRE))
        cpu_relax();
    mmio_write8(UART_BASE + UART_THR, (uint8_t)c);
}

void rt_puts_raw(const char *s)
{
    while (*s)
        uart_putc(*s++);
}

static int stdio_put(char c, FILE *f)
{
    (void)f;
    uart_putc(c);
    return (unsigned char)c;
}

static FILE uart_file = FDEV_SETUP_STREAM(stdio_put, NULL, NULL, _FDEV_SETUP_WRITE);
FILE *const stdin = &uart_file;
FILE *const stdout = &uart_file;
FILE *const stderr = &uart_file;

int vprintf(const char *fmt, va_list ap)
{
    unsigned long s = irq_save();
    spin_lock(&print_lock);
    int n = vfprintf(stdout, fmt, ap);
    spin_unlock(&print_lock);
    irq_restore(s);
    return n;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vprintf(fmt, ap);
    va_end(ap);
    return n;
}

/* GCC turns printf("...\n") into puts() and printf("%c") into putchar(),
 * so those must take the same lock. */
int puts(const char *s)
{
    unsigned long st = irq_save();
    spin_lock(&print_lock);
    rt_puts_raw(s);
    uart_putc('\n');
    spin_unlock(&print_lock);
    irq_restore(st);
    return 1;
}

#undef putchar
int putchar(int c)
{
    unsigned long st = irq_save();
    spin_lock(&print_lock);
    uart_putc((char)c);
    spin_unlock(&print_lock);
    irq_restore(st);
    return (unsigned char)c;
}

/* Used by the fatal-trap path: if the faulting hart (or a wedged one) holds
 * the lock, give up on it after a bounded spin rather than hang. */
int rt_print_lock_try(unsigned spins)
{
    while (spins--)
        if (spin_trylock(&print_lock))
            return 1;
    return 0;
}
void rt_print_unlock(void) { spin_unlock(&print_lock); }
