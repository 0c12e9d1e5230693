//! RV64GC instruction decoding and disassembly.
