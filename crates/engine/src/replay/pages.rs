//! Incremental checkpoints of RAM: which pages replay wrote since RAM last
//! equalled a checkpoint ([`DirtyPages`]), and checkpoints' page copies
//! shared between checkpoints ([`PageTable`]).

use std::collections::HashSet;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use samsara_machine::ram::GuestRam;

/// u64 words in a page.
const PAGE_WORDS: usize = 512;
/// Bytes in a page.
pub(crate) const PAGE_BYTES: u64 = 4096;

/// One page of RAM as a checkpoint holds it.
pub(crate) struct Page([u64; PAGE_WORDS]);

/// Pages per group of a [`PageTable`] (2 MiB of RAM).
const GROUP: usize = 512;

/// A checkpoint's RAM: per RAM page (index from RAM's first page) its copy,
/// in groups of [`GROUP`] pages. Pages unchanged between two checkpoints
/// are the same `Arc`, and so are groups none of whose pages changed; every
/// page that is all zeros is the session's one zero page.
#[derive(Clone)]
pub(crate) struct PageTable {
    groups: Arc<[Arc<[Arc<Page>]>]>,
    pages: usize,
}

impl PageTable {
    /// A copy of all of RAM.
    pub(crate) fn full(ram: &GuestRam, zero: &Arc<Page>) -> Self {
        let pages = (ram.size() / PAGE_BYTES) as usize;
        let groups = (0..pages.div_ceil(GROUP))
            .map(|g| {
                (g * GROUP..((g + 1) * GROUP).min(pages))
                    .map(|i| copy_page(ram, i, zero))
                    .collect()
            })
            .collect();
        Self { groups, pages }
    }

    /// This table with the pages in `dirty` (ascending) copied again from
    /// RAM where they changed; groups without changes are shared.
    pub(crate) fn updated(&self, ram: &GuestRam, dirty: &[usize], zero: &Arc<Page>) -> Self {
        let mut groups = self.groups.to_vec();
        let mut rest = dirty;
        while let Some(&first) = rest.first() {
            let g = first / GROUP;
            let n = rest.iter().take_while(|&&i| i / GROUP == g).count();
            let (here, later) = rest.split_at(n);
            rest = later;
            let Some(group) = groups.get(g) else {
                break;
            };
            let mut copy: Option<Vec<Arc<Page>>> = None;
            for &i in here {
                if !page_equals(ram, i, &group[i % GROUP]) {
                    copy.get_or_insert_with(|| group.to_vec())[i % GROUP] = copy_page(ram, i, zero);
                }
            }
            if let Some(copy) = copy {
                groups[g] = copy.into();
            }
        }
        Self {
            groups: groups.into(),
            pages: self.pages,
        }
    }

    /// RAM pages it covers.
    pub(crate) fn pages(&self) -> usize {
        self.pages
    }

    /// Makes RAM equal `self`, RAM being equal to `base` (all of it if
    /// `None`) but for the pages in `dirty`: writes those and the pages
    /// whose copies differ between the two tables.
    pub(crate) fn write_over(&self, base: Option<&PageTable>, dirty: &[usize], ram: &GuestRam) {
        let Some(base) = base else {
            for (g, group) in self.groups.iter().enumerate() {
                for (j, page) in group.iter().enumerate() {
                    write_page(ram, g * GROUP + j, page);
                }
            }
            return;
        };
        for &i in dirty {
            if let Some(group) = self.groups.get(i / GROUP) {
                write_page(ram, i, &group[i % GROUP]);
            }
        }
        if Arc::ptr_eq(&base.groups, &self.groups) {
            return;
        }
        for (g, (a, b)) in base.groups.iter().zip(self.groups.iter()).enumerate() {
            if Arc::ptr_eq(a, b) {
                continue;
            }
            for (j, (pa, pb)) in a.iter().zip(b.iter()).enumerate() {
                let i = g * GROUP + j;
                if !Arc::ptr_eq(pa, pb) && dirty.binary_search(&i).is_err() {
                    write_page(ram, i, pb);
                }
            }
        }
    }
}

fn host(ram: &GuestRam, idx: usize) -> Option<NonNull<u8>> {
    ram.host_page(ram.base().page() + idx as u64)
}

/// A copy of RAM page `idx` (`zero` if it is all zeros).
pub(crate) fn copy_page(ram: &GuestRam, idx: usize, zero: &Arc<Page>) -> Arc<Page> {
    let Some(src) = host(ram, idx) else {
        return zero.clone();
    };
    let src = src.as_ptr().cast::<u64>();
    let mut page = [0u64; PAGE_WORDS];
    for (i, w) in page.iter_mut().enumerate() {
        // SAFETY: `src` is a 4 KiB-aligned page of guest RAM, which harts
        // access concurrently, always atomically (none runs here anyway).
        *w = unsafe { AtomicU64::from_ptr(src.add(i)) }.load(Ordering::Relaxed);
    }
    if page.iter().all(|&w| w == 0) {
        zero.clone()
    } else {
        Arc::new(Page(page))
    }
}

/// Whether RAM page `idx` holds `page`'s contents.
pub(crate) fn page_equals(ram: &GuestRam, idx: usize, page: &Page) -> bool {
    let Some(src) = host(ram, idx) else {
        return true;
    };
    let src = src.as_ptr().cast::<u64>();
    page.0.iter().enumerate().all(|(i, &w)| {
        // SAFETY: as in `copy_page`.
        unsafe { AtomicU64::from_ptr(src.add(i)) }.load(Ordering::Relaxed) == w
    })
}

/// Writes `page` into RAM page `idx`.
pub(crate) fn write_page(ram: &GuestRam, idx: usize, page: &Page) {
    let Some(dst) = host(ram, idx) else {
        return;
    };
    let dst = dst.as_ptr().cast::<u64>();
    for (i, &w) in page.0.iter().enumerate() {
        // SAFETY: as in `copy_page`.
        unsafe { AtomicU64::from_ptr(dst.add(i)) }.store(w, Ordering::Relaxed);
    }
}

/// A page of zeros.
pub(crate) fn zero_page() -> Arc<Page> {
    Arc::new(Page([0; PAGE_WORDS]))
}

/// Memory of page tables and the distinct page copies they hold, each
/// counted once (by `Arc` identity, as are groups and tables); `state` is
/// added per table.
pub(crate) fn unique_table_bytes<'a>(
    tables: impl IntoIterator<Item = (&'a PageTable, u64)>,
) -> u64 {
    let mut seen_tables = HashSet::new();
    let mut seen_groups = HashSet::new();
    let mut seen_pages = HashSet::new();
    let mut bytes = 0;
    for (table, state) in tables {
        bytes += state;
        if !seen_tables.insert(Arc::as_ptr(&table.groups).cast::<u8>()) {
            continue;
        }
        bytes += (table.groups.len() * size_of::<Arc<[Arc<Page>]>>()) as u64;
        for group in table.groups.iter() {
            if !seen_groups.insert(Arc::as_ptr(group).cast::<u8>()) {
                continue;
            }
            bytes += (group.len() * size_of::<Arc<Page>>()) as u64;
            for page in group.iter() {
                if seen_pages.insert(Arc::as_ptr(page)) {
                    bytes += PAGE_BYTES;
                }
            }
        }
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use samsara_types::GuestPhysAddr;

    const BASE: u64 = 0x8000_0000;

    fn poke(ram: &GuestRam, page: u64, byte: u8) {
        ram.write(GuestPhysAddr(BASE + page * PAGE_BYTES + 8), &[byte])
            .unwrap();
    }

    fn peek(ram: &GuestRam, page: u64) -> u8 {
        let mut b = [0];
        ram.read(GuestPhysAddr(BASE + page * PAGE_BYTES + 8), &mut b)
            .unwrap();
        b[0]
    }

    #[test]
    fn tables_share_unchanged_pages_and_groups_and_restore_only_differences() {
        // 3 groups: 1024 + 100 pages.
        let pages = 2 * GROUP as u64 + 100;
        let ram = GuestRam::new(GuestPhysAddr(BASE), pages * PAGE_BYTES).unwrap();
        let zero = zero_page();
        poke(&ram, 5, 1);
        let a = PageTable::full(&ram, &zero);
        assert_eq!(a.pages(), pages as usize);
        // All-zero pages share the zero page: one nonzero page copy.
        let state = |t| (t, 0);
        let table_only = unique_table_bytes([state(&a)]) - 2 * PAGE_BYTES;
        poke(&ram, 5, 2);
        poke(&ram, 600, 3);
        poke(&ram, 700, 0); // marked, unchanged: stays shared
        let b = a.updated(&ram, &[5, 600, 700], &zero);
        assert!(Arc::ptr_eq(&a.groups[2], &b.groups[2]));
        assert!(!Arc::ptr_eq(&a.groups[0], &b.groups[0]));
        assert!(Arc::ptr_eq(
            &a.groups[1][700 - GROUP],
            &b.groups[1][700 - GROUP]
        ));
        // b adds two pages and two groups' tables.
        let both = unique_table_bytes([state(&a), state(&b)]);
        let one_table = unique_table_bytes([state(&a)]);
        assert_eq!(
            both,
            one_table + 2 * PAGE_BYTES + 2 * (GROUP * size_of::<Arc<Page>>()) as u64 + table_only
                - (2 * GROUP + 100) as u64 * size_of::<Arc<Page>>() as u64
        );
        // RAM is b; page 9 written since: back to a writes 5, 600 and 9.
        poke(&ram, 9, 7);
        a.write_over(Some(&b), &[9], &ram);
        assert_eq!((peek(&ram, 5), peek(&ram, 600), peek(&ram, 9)), (1, 0, 0));
        b.write_over(Some(&a), &[], &ram);
        assert_eq!((peek(&ram, 5), peek(&ram, 600)), (2, 3));
    }
}
