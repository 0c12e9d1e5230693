//! The board: RAM, devices, loader and the native run mode.
pub mod devices;
pub mod fdt;
pub mod irq;
pub mod clock;
