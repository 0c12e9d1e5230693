//! The run mode's bus: each hart sees shared RAM and live devices directly.

use samsara_cpu::bus::{AccessKind, Bus, MmioError, PageGrant};
use samsara_types::{GuestPhysAddr, GuestPhysPage, HartId};

use crate::board::Board;

/// A hart's direct view of the board: no interposition, no logging.
pub struct DirectBus<'a> {
    board: &'a Board,
    hart: HartId,
}

impl<'a> DirectBus<'a> {
    /// The bus of `hart` on `board`.
    pub fn new(board: &'a Board, hart: HartId) -> Self {
        Self { board, hart }
    }
}

// SAFETY: every grant comes from `Board::direct_page`, whose grants meet the
// contract (shared RAM and boot ROM, alive as long as the board, accessed
// only atomically).
unsafe impl Bus for DirectBus<'_> {
    #[inline]
    fn ram_page(&mut self, page: GuestPhysPage, kind: AccessKind) -> Option<PageGrant> {
        self.board.direct_page(page.raw(), kind)
    }

    fn mmio_read(&mut self, addr: GuestPhysAddr, size: u8) -> Result<u64, MmioError> {
        self.board.mmio_read(self.hart, addr, size)
    }

    fn mmio_write(&mut self, addr: GuestPhysAddr, size: u8, value: u64) -> Result<(), MmioError> {
        self.board.mmio_write(self.hart, addr, size, value)
    }

    fn read_time(&mut self) -> u64 {
        self.board.irq.clock().now_ticks()
    }

    fn interrupt_lines(&mut self) -> u64 {
        self.board.irq.lines(self.hart)
    }

    fn hart_id(&self) -> HartId {
        self.hart
    }
}
