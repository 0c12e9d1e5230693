//! The NS16550A UART ("ns16550a") at 0x1000_0000, PLIC source 10, 8-bit
//! registers with reg-shift 0. Modelled on QEMU's `hw/char/serial.c`:
//!
//! | offset | read | write |
//! | --- | --- | --- |
//! | 0 | RBR (DLL if DLAB) | THR (DLL if DLAB) |
//! | 1 | IER (DLM if DLAB) | IER (DLM if DLAB) |
//! | 2 | IIR | FCR |
//! | 3 | LCR | LCR |
//! | 4 | MCR | MCR |
//! | 5 | LSR | (ignored) |
//! | 6 | MSR | (ignored) |
//! | 7 | SCR | SCR |
//!
//! Transmission is instantaneous: a THR write hands the byte to the output
//! sink and THRE/TEMT are set again at once (so, as on QEMU, a THRE
//! interrupt follows every byte when enabled). Received bytes wait in a
//! bounded queue; LSR.DR is set while it is non-empty.
//!
//! Deliberate difference from QEMU: no character-timeout timer. With the
//! FIFO enabled QEMU raises "data available" at the trigger level or after a
//! timer fires; here it is raised as soon as any byte is waiting, which is
//! what the timeout achieves eventually, without a host timer (a
//! non-deterministic input we would otherwise have to log).
//!
//! Non-deterministic inputs: only [`Uart::push_input`] (when bytes arrive).
//! The output bytes are a function of the guest's register accesses, so a
//! replay regenerates them; the sink is pluggable so the recorder and
//! replayer can capture and compare them.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;
use samsara_types::HartId;

use super::{DeviceError, IrqLine, MmioDevice};

/// Size of the UART's register window (8 one-byte registers).
pub const UART_REGISTERS: u64 = 8;
/// PLIC source of the UART on the `virt` board.
pub const UART_IRQ: u32 = 10;
/// Input bytes held until the guest reads them; more is dropped.
pub const UART_INPUT_CAPACITY: usize = 64 * 1024;

const REG_RBR_THR: u64 = 0;
const REG_IER: u64 = 1;
const REG_IIR_FCR: u64 = 2;
const REG_LCR: u64 = 3;
const REG_MCR: u64 = 4;
const REG_LSR: u64 = 5;
const REG_MSR: u64 = 6;
const REG_SCR: u64 = 7;

const IER_RDI: u8 = 0x01;
const IER_THRI: u8 = 0x02;
const IER_RLSI: u8 = 0x04;
const IER_MSI: u8 = 0x08;

const IIR_NO_INT: u8 = 0x01;
const IIR_ID_MASK: u8 = 0x0e;
const IIR_MSI: u8 = 0x00;
const IIR_THRI: u8 = 0x02;
const IIR_RDI: u8 = 0x04;
const IIR_RLSI: u8 = 0x06;
const IIR_FIFO_ENABLED: u8 = 0xc0;

const FCR_FE: u8 = 0x01;
const FCR_RFR: u8 = 0x02;
const FCR_XFR: u8 = 0x04;

const LCR_DLAB: u8 = 0x80;

const MCR_OUT2: u8 = 0x08;
const MCR_LOOP: u8 = 0x10;

const LSR_DR: u8 = 0x01;
const LSR_OE: u8 = 0x02;
const LSR_BI: u8 = 0x10;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;
/// Line-status conditions that raise RLSI (overrun, parity, framing, break).
const LSR_INT_ANY: u8 = 0x1e;

const MSR_DELTA_ANY: u8 = 0x0f;
const MSR_CTS: u8 = 0x10;
const MSR_DSR: u8 = 0x20;
const MSR_DCD: u8 = 0x80;

/// Where transmitted bytes go: stdout, a file, a capture buffer...
pub type SerialOutput = Box<dyn Write + Send>;

#[derive(Clone, Debug)]
struct UartRegs {
    ier: u8,
    iir: u8,
    fcr: u8,
    lcr: u8,
    mcr: u8,
    lsr: u8,
    msr: u8,
    scr: u8,
    divisor: u16,
    /// A THR-empty interrupt is pending (cleared by reading IIR or writing THR).
    thr_ipending: bool,
    rx: VecDeque<u8>,
}

impl UartRegs {
    fn reset() -> Self {
        Self {
            ier: 0,
            iir: IIR_NO_INT,
            fcr: 0,
            lcr: 0,
            mcr: MCR_OUT2,
            lsr: LSR_TEMT | LSR_THRE,
            msr: MSR_DCD | MSR_DSR | MSR_CTS,
            scr: 0,
            // 115200 baud at 1.8432 MHz; meaningless here but readable.
            divisor: 1,
            thr_ipending: false,
            rx: VecDeque::new(),
        }
    }
}

struct UartState {
    regs: UartRegs,
    output: SerialOutput,
    /// Host write errors (stdout closed...): counted, never fatal to the guest.
    output_errors: u64,
}

/// The NS16550A UART.
pub struct Uart {
    state: Mutex<UartState>,
    irq: IrqLine,
}

impl std::fmt::Debug for Uart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Uart")
            .field("regs", &self.state.lock().regs)
            .finish_non_exhaustive()
    }
}

/// The UART's registers at some moment ([`Uart::snapshot`]).
#[derive(Clone, Debug)]
pub struct UartSnapshot(UartRegs);

impl Uart {
    /// The registers and receive FIFO now.
    pub fn snapshot(&self) -> UartSnapshot {
        UartSnapshot(self.state.lock().regs.clone())
    }

    /// Back to `snapshot` (the output already sent stays sent).
    pub fn restore(&self, snapshot: &UartSnapshot) {
        self.state.lock().regs = snapshot.0.clone();
    }

    /// A UART writing transmitted bytes to `output` and raising `irq`.
    pub fn new(output: SerialOutput, irq: IrqLine) -> Self {
        Self {
            state: Mutex::new(UartState {
                regs: UartRegs::reset(),
                output,
                output_errors: 0,
            }),
            irq,
        }
    }

    /// A UART writing to the host's stdout.
    pub fn with_stdout(irq: IrqLine) -> Self {
        Self::new(Box::new(std::io::stdout()), irq)
    }

    /// Queues bytes typed by the user (or replayed from a trace) for the
    /// guest; returns how many were accepted (the rest is dropped once
    /// [`UART_INPUT_CAPACITY`] bytes are waiting).
    pub fn push_input(&self, bytes: &[u8]) -> usize {
        let mut state = self.state.lock();
        let room = UART_INPUT_CAPACITY.saturating_sub(state.regs.rx.len());
        let accepted = bytes.len().min(room);
        state.regs.rx.extend(&bytes[..accepted]);
        if accepted > 0 {
            state.regs.lsr |= LSR_DR;
            self.update_irq(&mut state.regs);
        }
        accepted
    }

    /// Queues all of `bytes`, waiting while the queue is full (the guest
    /// reads it): how a feeder of stdin or a socket gives the UART input.
    pub fn push_input_all(&self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let taken = self.push_input(bytes);
            bytes = &bytes[taken..];
            if taken == 0 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }

    /// Input bytes the guest has not read yet.
    pub fn pending_input(&self) -> usize {
        self.state.lock().regs.rx.len()
    }

    /// Number of output bytes the sink failed to take.
    pub fn output_errors(&self) -> u64 {
        self.state.lock().output_errors
    }

    /// Flushes the output sink (at shutdown).
    pub fn flush_output(&self) {
        let mut state = self.state.lock();
        if state.output.flush().is_err() {
            state.output_errors += 1;
        }
    }

    /// Recomputes IIR and the interrupt line (QEMU's `serial_update_irq`).
    fn update_irq(&self, regs: &mut UartRegs) {
        let id = if regs.ier & IER_RLSI != 0 && regs.lsr & LSR_INT_ANY != 0 {
            IIR_RLSI
        } else if regs.ier & IER_RDI != 0 && regs.lsr & LSR_DR != 0 {
            IIR_RDI
        } else if regs.ier & IER_THRI != 0 && regs.thr_ipending {
            IIR_THRI
        } else if regs.ier & IER_MSI != 0 && regs.msr & MSR_DELTA_ANY != 0 {
            IIR_MSI
        } else {
            IIR_NO_INT
        };
        regs.iir = id | (regs.iir & 0xf0);
        self.irq.set(id != IIR_NO_INT);
    }

    fn transmit(&self, state: &mut UartState, byte: u8) {
        if state.regs.mcr & MCR_LOOP != 0 {
            // Loopback: the byte comes back on our own receiver.
            if state.regs.rx.len() < UART_INPUT_CAPACITY {
                state.regs.rx.push_back(byte);
                state.regs.lsr |= LSR_DR;
            } else {
                state.regs.lsr |= LSR_OE;
            }
        } else {
            // Flush per byte: a prompt without a newline must show up now.
            let written = state
                .output
                .write_all(&[byte])
                .and_then(|()| state.output.flush());
            if written.is_err() {
                state.output_errors += 1;
            }
        }
    }

    fn read_byte(&self, offset: u64) -> u8 {
        let mut state = self.state.lock();
        let regs = &mut state.regs;
        let dlab = regs.lcr & LCR_DLAB != 0;
        match offset {
            REG_RBR_THR if dlab => regs.divisor.to_le_bytes()[0],
            REG_RBR_THR => {
                let byte = regs.rx.pop_front().unwrap_or(0);
                if regs.rx.is_empty() {
                    regs.lsr &= !(LSR_DR | LSR_BI);
                }
                self.update_irq(regs);
                byte
            }
            REG_IER if dlab => regs.divisor.to_le_bytes()[1],
            REG_IER => regs.ier,
            REG_IIR_FCR => {
                let iir = regs.iir;
                if iir & IIR_ID_MASK == IIR_THRI {
                    // Reading IIR acknowledges a THR-empty interrupt.
                    regs.thr_ipending = false;
                    self.update_irq(regs);
                }
                iir
            }
            REG_LCR => regs.lcr,
            REG_MCR => regs.mcr,
            REG_LSR => {
                let lsr = regs.lsr;
                if lsr & (LSR_BI | LSR_OE) != 0 {
                    regs.lsr &= !(LSR_BI | LSR_OE);
                    self.update_irq(regs);
                }
                lsr
            }
            REG_MSR => {
                if regs.mcr & MCR_LOOP != 0 {
                    // In loopback the modem outputs feed the modem inputs.
                    ((regs.mcr & 0x0c) << 4) | ((regs.mcr & 0x02) << 3) | ((regs.mcr & 0x01) << 5)
                } else {
                    let msr = regs.msr;
                    if msr & MSR_DELTA_ANY != 0 {
                        regs.msr &= !MSR_DELTA_ANY;
                        self.update_irq(regs);
                    }
                    msr
                }
            }
            REG_SCR => regs.scr,
            _ => 0,
        }
    }

    fn write_byte(&self, offset: u64, value: u8) {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let dlab = state.regs.lcr & LCR_DLAB != 0;
        match offset {
            REG_RBR_THR if dlab => {
                state.regs.divisor = (state.regs.divisor & 0xff00) | u16::from(value);
            }
            REG_RBR_THR => {
                self.transmit(state, value);
                // Sent at once: the holding register is empty again.
                let regs = &mut state.regs;
                regs.lsr |= LSR_THRE | LSR_TEMT;
                regs.thr_ipending = true;
                self.update_irq(regs);
            }
            REG_IER if dlab => {
                state.regs.divisor = (state.regs.divisor & 0x00ff) | (u16::from(value) << 8);
            }
            REG_IER => {
                let regs = &mut state.regs;
                let changed = (regs.ier ^ value) & 0x0f;
                regs.ier = value & 0x0f;
                // Enabling THRI with an empty THR raises the interrupt even if
                // it was acknowledged before (QEMU does this; Linux's 8250
                // probe and Windows rely on it).
                if changed & IER_THRI != 0 {
                    regs.thr_ipending = regs.ier & IER_THRI != 0 && regs.lsr & LSR_THRE != 0;
                }
                if changed != 0 {
                    self.update_irq(regs);
                }
            }
            REG_IIR_FCR => {
                let regs = &mut state.regs;
                let mut fcr = value;
                if regs.fcr == fcr {
                    return;
                }
                // Toggling the FIFO enable flushes both FIFOs.
                if (fcr ^ regs.fcr) & FCR_FE != 0 {
                    fcr |= FCR_RFR | FCR_XFR;
                }
                if fcr & FCR_RFR != 0 {
                    regs.rx.clear();
                    regs.lsr &= !(LSR_DR | LSR_BI);
                }
                if fcr & FCR_XFR != 0 {
                    regs.lsr |= LSR_THRE;
                    regs.thr_ipending = true;
                }
                // The reset bits are self-clearing; keep FE, DMA mode and trigger level.
                regs.fcr = fcr & 0xc9;
                if regs.fcr & FCR_FE != 0 {
                    regs.iir |= IIR_FIFO_ENABLED;
                } else {
                    regs.iir &= !IIR_FIFO_ENABLED;
                }
                self.update_irq(regs);
            }
            REG_LCR => state.regs.lcr = value,
            REG_MCR => state.regs.mcr = value & 0x1f,
            REG_SCR => state.regs.scr = value,
            // LSR and MSR are read-only ("factory test" writes ignored).
            _ => {}
        }
    }
}

fn check_offset(offset: u64, size: u8) -> Result<(), DeviceError> {
    if !super::is_valid_size(size) {
        return Err(DeviceError::BadAccess { offset, size });
    }
    let end = offset.checked_add(u64::from(size));
    if end.is_none_or(|end| end > UART_REGISTERS) {
        return Err(DeviceError::Unmapped { offset });
    }
    Ok(())
}

impl MmioDevice for Uart {
    /// Wider accesses are split into byte accesses at consecutive registers,
    /// as QEMU's memory core does for this 1-byte-implementation device.
    fn read(&self, _hart: HartId, offset: u64, size: u8) -> Result<u64, DeviceError> {
        check_offset(offset, size)?;
        let mut value = 0u64;
        for i in 0..u64::from(size) {
            value |= u64::from(self.read_byte(offset + i)) << (8 * i);
        }
        Ok(value)
    }

    fn write(&self, _hart: HartId, offset: u64, size: u8, value: u64) -> Result<(), DeviceError> {
        check_offset(offset, size)?;
        for i in 0..u64::from(size) {
            self.write_byte(offset + i, value.to_le_bytes()[i as usize]);
        }
        Ok(())
    }

    /// The receive side (RBR, IIR, LSR, MSR) depends on bytes from outside,
    /// which a standby never receives: those reads only take their side
    /// effects (a byte leaves the queue, a THR-empty interrupt is
    /// acknowledged). The rest is compared.
    fn replay_read(
        &self,
        _hart: HartId,
        offset: u64,
        size: u8,
        recorded: u64,
    ) -> Result<Option<u64>, DeviceError> {
        check_offset(offset, size)?;
        let mut differs = false;
        let mut answer = 0u64;
        for i in 0..u64::from(size) {
            let reg = offset + i;
            let want = recorded.to_le_bytes()[i as usize];
            let dlab = self.state.lock().regs.lcr & LCR_DLAB != 0;
            let external =
                matches!(reg, REG_IIR_FCR | REG_LSR | REG_MSR) || (reg == REG_RBR_THR && !dlab);
            if reg == REG_IIR_FCR {
                let mut state = self.state.lock();
                if want & IIR_ID_MASK == IIR_THRI {
                    state.regs.thr_ipending = false;
                    self.update_irq(&mut state.regs);
                }
                answer |= u64::from(want) << (8 * i);
                continue;
            }
            let got = self.read_byte(reg);
            answer |= u64::from(got) << (8 * i);
            differs |= !external && got != want;
        }
        Ok(differs.then_some(answer))
    }
}

/// A cloneable in-memory output sink: keep one handle, give the UART
/// another, and read what the guest printed (tests, output capture).
#[derive(Clone, Debug, Default)]
pub struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl SharedOutput {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Everything written so far.
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().clone()
    }

    /// Takes everything written so far, leaving the buffer empty.
    pub fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock())
    }
}

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::testing::RecordingSink;

    const H: HartId = HartId(0);

    fn uart() -> (Arc<RecordingSink>, SharedOutput, Uart) {
        let sink = Arc::new(RecordingSink::default());
        let out = SharedOutput::new();
        let uart = Uart::new(Box::new(out.clone()), IrqLine::new(sink.clone(), UART_IRQ));
        (sink, out, uart)
    }

    fn rd(uart: &Uart, reg: u64) -> u8 {
        uart.read(H, reg, 1).unwrap() as u8
    }

    fn wr(uart: &Uart, reg: u64, value: u8) {
        uart.write(H, reg, 1, u64::from(value)).unwrap();
    }

    /// A standby's UART never receives the primary's input: replayed
    /// reads of the receive side take their side effects without being
    /// compared; configuration registers are compared.
    #[test]
    fn replayed_reads_take_effect_and_compare_what_the_guest_set() {
        let (_sink, _out, uart) = uart();
        wr(&uart, REG_IER, IER_THRI);
        wr(&uart, REG_RBR_THR, b'x');
        assert_eq!(rd(&uart, REG_IIR_FCR) & IIR_ID_MASK, IIR_THRI);
        wr(&uart, REG_RBR_THR, b'y');
        // The recording read IIR = THRI: acknowledged here too.
        assert_eq!(uart.replay_read(H, REG_IIR_FCR, 1, 0xc2).unwrap(), None);
        assert_eq!(rd(&uart, REG_IIR_FCR) & IIR_NO_INT, IIR_NO_INT);
        // Received bytes come from outside: any value is taken.
        assert_eq!(
            uart.replay_read(H, REG_RBR_THR, 1, u64::from(b'q'))
                .unwrap(),
            None
        );
        assert_eq!(uart.replay_read(H, REG_LSR, 1, 0x61).unwrap(), None);
        // What the guest wrote itself is checked.
        assert_eq!(
            uart.replay_read(H, REG_IER, 1, u64::from(IER_THRI))
                .unwrap(),
            None
        );
        assert_eq!(
            uart.replay_read(H, REG_IER, 1, 0).unwrap(),
            Some(u64::from(IER_THRI))
        );
        // A byte the standby does have leaves the queue.
        uart.push_input(b"z");
        assert_eq!(
            uart.replay_read(H, REG_RBR_THR, 1, u64::from(b'z'))
                .unwrap(),
            None
        );
        assert_eq!(uart.pending_input(), 0);
    }

    #[test]
    fn reset_state() {
        let (sink, _out, uart) = uart();
        assert_eq!(rd(&uart, REG_LSR), LSR_THRE | LSR_TEMT);
        assert_eq!(rd(&uart, REG_IIR_FCR), IIR_NO_INT);
        assert_eq!(rd(&uart, REG_IER), 0);
        assert_eq!(rd(&uart, REG_MCR), MCR_OUT2);
        assert_eq!(rd(&uart, REG_MSR), MSR_DCD | MSR_DSR | MSR_CTS);
        assert!(!sink.level(UART_IRQ));
    }

    #[test]
    fn transmit_goes_to_sink() {
        let (sink, out, uart) = uart();
        for b in b"hi\n" {
            wr(&uart, REG_RBR_THR, *b);
        }
        assert_eq!(out.contents(), b"hi\n");
        assert_eq!(
            rd(&uart, REG_LSR) & (LSR_THRE | LSR_TEMT),
            LSR_THRE | LSR_TEMT
        );
        // THRE interrupt not enabled: no line.
        assert!(!sink.level(UART_IRQ));
    }

    #[test]
    fn rx_interrupt_and_lsr() {
        let (sink, _out, uart) = uart();
        wr(&uart, REG_IER, IER_RDI);
        assert!(!sink.level(UART_IRQ));
        assert_eq!(uart.push_input(b"ab"), 2);
        assert!(sink.level(UART_IRQ));
        assert_eq!(rd(&uart, REG_IIR_FCR) & 0x0f, IIR_RDI);
        assert_eq!(rd(&uart, REG_LSR) & LSR_DR, LSR_DR);
        assert_eq!(rd(&uart, REG_RBR_THR), b'a');
        assert!(sink.level(UART_IRQ));
        assert_eq!(rd(&uart, REG_RBR_THR), b'b');
        assert_eq!(rd(&uart, REG_LSR) & LSR_DR, 0);
        assert!(!sink.level(UART_IRQ));
        assert_eq!(rd(&uart, REG_IIR_FCR) & 0x0f, IIR_NO_INT);
        // Empty receiver reads 0.
        assert_eq!(rd(&uart, REG_RBR_THR), 0);
    }

    #[test]
    fn input_without_rdi_enabled_sets_dr_only() {
        let (sink, _out, uart) = uart();
        uart.push_input(b"x");
        assert!(!sink.level(UART_IRQ));
        assert_eq!(rd(&uart, REG_LSR) & LSR_DR, LSR_DR);
        // Enabling RDI with data waiting raises at once.
        wr(&uart, REG_IER, IER_RDI);
        assert!(sink.level(UART_IRQ));
    }

    #[test]
    fn thre_interrupt_like_qemu() {
        let (sink, _out, uart) = uart();
        // Enabling THRI with an empty THR raises it immediately.
        wr(&uart, REG_IER, IER_THRI);
        assert!(sink.level(UART_IRQ));
        assert_eq!(rd(&uart, REG_IIR_FCR) & 0x0f, IIR_THRI);
        // That IIR read acknowledged it.
        assert!(!sink.level(UART_IRQ));
        assert_eq!(rd(&uart, REG_IIR_FCR) & 0x0f, IIR_NO_INT);
        // Each transmitted byte raises it again.
        wr(&uart, REG_RBR_THR, b'x');
        assert!(sink.level(UART_IRQ));
        // Disabling THRI drops it.
        wr(&uart, REG_IER, 0);
        assert!(!sink.level(UART_IRQ));
        // RX has priority over THRE.
        wr(&uart, REG_IER, IER_THRI | IER_RDI);
        uart.push_input(b"q");
        assert_eq!(rd(&uart, REG_IIR_FCR) & 0x0f, IIR_RDI);
        rd(&uart, REG_RBR_THR);
        assert_eq!(rd(&uart, REG_IIR_FCR) & 0x0f, IIR_THRI);
    }

    #[test]
    fn fifo_control_and_iir_bits() {
        let (_sink, _out, uart) = uart();
        uart.push_input(b"junk");
        wr(&uart, REG_IIR_FCR, FCR_FE | FCR_RFR | FCR_XFR);
        // Enabling the FIFO flushed the receiver and sets IIR[7:6].
        assert_eq!(rd(&uart, REG_LSR) & LSR_DR, 0);
        assert_eq!(uart.pending_input(), 0);
        assert_eq!(rd(&uart, REG_IIR_FCR), IIR_FIFO_ENABLED | IIR_NO_INT);
        wr(&uart, REG_IIR_FCR, 0);
        assert_eq!(rd(&uart, REG_IIR_FCR), IIR_NO_INT);
    }

    #[test]
    fn divisor_latch_and_scratch() {
        let (_sink, out, uart) = uart();
        wr(&uart, REG_LCR, LCR_DLAB | 0x03);
        wr(&uart, REG_RBR_THR, 0x0c);
        wr(&uart, REG_IER, 0x01);
        assert_eq!(rd(&uart, REG_RBR_THR), 0x0c);
        assert_eq!(rd(&uart, REG_IER), 0x01);
        wr(&uart, REG_LCR, 0x03);
        // The divisor writes neither transmitted nor enabled interrupts.
        assert!(out.contents().is_empty());
        assert_eq!(rd(&uart, REG_IER), 0);
        assert_eq!(rd(&uart, REG_LCR), 0x03);
        wr(&uart, REG_SCR, 0x5a);
        assert_eq!(rd(&uart, REG_SCR), 0x5a);
    }

    #[test]
    fn loopback() {
        let (_sink, out, uart) = uart();
        wr(&uart, REG_MCR, MCR_LOOP | 0x0f);
        assert_eq!(rd(&uart, REG_MSR), 0xf0);
        wr(&uart, REG_RBR_THR, 0x42);
        assert!(out.contents().is_empty());
        assert_eq!(rd(&uart, REG_LSR) & LSR_DR, LSR_DR);
        assert_eq!(rd(&uart, REG_RBR_THR), 0x42);
    }

    #[test]
    fn wide_accesses_split_and_out_of_range_fault() {
        let (_sink, _out, uart) = uart();
        wr(&uart, REG_SCR, 0x77);
        // A 2-byte read at 6 covers MSR and SCR.
        let v = uart.read(H, 6, 2).unwrap();
        assert_eq!(v >> 8, 0x77);
        assert!(uart.read(H, 7, 2).is_err());
        assert!(uart.read(H, 8, 1).is_err());
        assert!(uart.read(H, 0, 3).is_err());
        assert!(uart.write(H, u64::MAX, 1, 0).is_err());
    }

    #[test]
    fn input_is_bounded() {
        let (_sink, _out, uart) = uart();
        let big = vec![b'z'; UART_INPUT_CAPACITY + 10];
        assert_eq!(uart.push_input(&big), UART_INPUT_CAPACITY);
        assert_eq!(uart.push_input(b"more"), 0);
    }
}
