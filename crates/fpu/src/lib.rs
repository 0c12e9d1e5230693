//! Floating-point arithmetic with RISC-V semantics.
