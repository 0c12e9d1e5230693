//! The board: RAM, devices, loader and the native run mode.
pub mod board;
pub mod boot_rom;
pub mod bus;
pub mod clock;
pub mod console;
pub mod devices;
pub mod fdt;
pub mod guest;
pub mod irq;
pub mod loader;
pub mod machine;
pub mod ram;
pub mod run;
pub mod supervisor;
pub mod tcp_console;
