//! Names for addresses: a bare-metal guest's ELF symbols, so that an
//! analysis can say `guest_main+0x2c` and `racy` rather than two numbers.

use goblin::elf::Elf;

/// Function and object symbols, sorted by address.
#[derive(Clone, Debug, Default)]
pub struct Symbols {
    /// (address, size, name).
    symbols: Vec<(u64, u64, String)>,
}

impl Symbols {
    /// The symbols of ELF file `bytes` (none if it is not ELF).
    pub fn from_elf(bytes: &[u8]) -> Self {
        let Ok(elf) = Elf::parse(bytes) else {
            return Self::default();
        };
        let mut symbols: Vec<(u64, u64, String)> = elf
            .syms
            .iter()
            .filter(|s| s.is_function() || s.st_type() == goblin::elf::sym::STT_OBJECT)
            .filter(|s| s.st_value != 0)
            .filter_map(|s| {
                let name = elf.strtab.get_at(s.st_name)?;
                (!name.is_empty()).then(|| (s.st_value, s.st_size, name.to_string()))
            })
            .collect();
        symbols.sort();
        Self { symbols }
    }

    /// Looks a name up (`NAME`), for the user's `watch NAME`.
    pub fn address_of(&self, name: &str) -> Option<(u64, u64)> {
        self.symbols
            .iter()
            .find(|(_, _, n)| n == name)
            .map(|&(addr, size, _)| (addr, size))
    }

    /// The symbol holding `addr`, with the offset into it.
    pub fn lookup(&self, addr: u64) -> Option<(&str, u64)> {
        let i = self.symbols.partition_point(|(a, _, _)| *a <= addr);
        let (start, size, name) = self.symbols.get(i.checked_sub(1)?)?;
        (addr < start.saturating_add((*size).max(1))).then(|| (name.as_str(), addr - start))
    }

    /// `0x80001234 (guest_main+0x2c)`, or the bare number.
    pub fn describe(&self, addr: u64) -> String {
        match self.lookup(addr) {
            Some((name, 0)) => format!("{addr:#x} ({name})"),
            Some((name, off)) => format!("{addr:#x} ({name}+{off:#x})"),
            None => format!("{addr:#x}"),
        }
    }
}
