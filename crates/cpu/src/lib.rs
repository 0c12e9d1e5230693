//! An RV64GC hart.
pub mod bus;
