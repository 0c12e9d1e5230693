//! The flattened device tree handed to the guest in a1, following what
//! QEMU's `virt` board generates (compare with
//! `qemu-system-riscv64 -M virt,dumpdtb=q.dtb -smp 4 -m 256M` and
//! `dtc -I dtb -O dts q.dtb`), minus the devices we do not model (PCI,
//! flash, fw-cfg, RTC, PMU) and minus `/chosen/rng-seed`: a random seed is
//! a non-deterministic input we have no reason to introduce.
//!
//! Phandles are assigned deterministically: cpu h = 2h+1, its interrupt
//! controller = 2h+2, then the PLIC, then the test device.

use vm_fdt::{FdtWriter, FdtWriterNode};

use crate::board::{
    CLINT_BASE, PLIC_BASE, RAM_BASE, TEST_DEVICE_BASE, UART_BASE, UART_SIZE, VIRTIO_BASE,
    VIRTIO_IRQ_BASE, VIRTIO_SLOTS, VIRTIO_STRIDE,
};
use crate::clock::TIMEBASE_HZ;
use crate::devices::clint::CLINT_SIZE;
use crate::devices::plic::{PLIC_NUM_SOURCES, PLIC_SIZE};
use crate::devices::test_device::TEST_DEVICE_SIZE;
use crate::devices::uart::UART_IRQ;
use crate::devices::virtio::mmio::VIRTIO_MMIO_SIZE;

/// UART input clock advertised to the 8250 driver (3.6864 MHz, as QEMU).
pub const UART_CLOCK_HZ: u32 = 0x38_4000;

/// The ISA string of our harts.
pub const RISCV_ISA: &str = "rv64imafdc_zicsr_zifencei_zihintpause";
/// The same, as the newer split properties (`riscv,isa-extensions`).
const RISCV_ISA_EXTENSIONS: [&str; 9] = [
    "i",
    "m",
    "a",
    "f",
    "d",
    "c",
    "zicsr",
    "zifencei",
    "zihintpause",
];

/// `#interrupt-cells` values of the CPU-local interrupt controller.
const IRQ_M_SOFT: u32 = 3;
const IRQ_M_TIMER: u32 = 7;
const IRQ_S_EXT: u32 = 9;
const IRQ_M_EXT: u32 = 11;

/// Why the device tree could not be built.
#[derive(Debug, thiserror::Error)]
pub enum FdtError {
    /// The FDT writer refused something (a bug, or absurd input sizes).
    #[error("device tree construction failed: {0}")]
    Writer(#[from] vm_fdt::Error),
    /// Zero harts, or more than the PLIC's address map can serve.
    #[error("unsupported hart count {0}")]
    HartCount(u32),
}

/// What varies between machines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FdtConfig {
    /// Number of harts (1..=8 on QEMU's layout; the PLIC window fits more).
    pub harts: u32,
    /// Start of RAM.
    pub ram_base: u64,
    /// Size of RAM in bytes.
    pub ram_size: u64,
    /// Kernel command line (`/chosen/bootargs`).
    pub bootargs: Option<String>,
    /// Initial ramdisk as `(start, end)` guest-physical addresses.
    pub initrd: Option<(u64, u64)>,
}

impl FdtConfig {
    /// `harts` harts and `ram_size` bytes of RAM at [`RAM_BASE`].
    pub fn new(harts: u32, ram_size: u64) -> Self {
        Self {
            harts,
            ram_base: RAM_BASE,
            ram_size,
            bootargs: None,
            initrd: None,
        }
    }
}

/// Largest hart count whose PLIC contexts fit the PLIC window.
const MAX_HARTS: u32 = ((PLIC_SIZE - 0x20_0000) / 0x1000 / 2) as u32;

fn cpu_phandle(hart: u32) -> u32 {
    2 * hart + 1
}
fn intc_phandle(hart: u32) -> u32 {
    2 * hart + 2
}

/// Builds the device tree blob.
pub fn build_fdt(config: &FdtConfig) -> Result<Vec<u8>, FdtError> {
    if config.harts == 0 || config.harts > MAX_HARTS {
        return Err(FdtError::HartCount(config.harts));
    }
    let plic_phandle = 2 * config.harts + 1;
    let test_phandle = plic_phandle + 1;

    let mut fdt = FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "riscv-virtio")?;
    fdt.property_string("model", "riscv-virtio,qemu")?;

    write_chosen(&mut fdt, config)?;
    write_syscon(
        &mut fdt,
        "poweroff",
        "syscon-poweroff",
        0x5555,
        test_phandle,
    )?;
    write_syscon(&mut fdt, "reboot", "syscon-reboot", 0x7777, test_phandle)?;

    let memory = fdt.begin_node(&format!("memory@{:x}", config.ram_base))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[config.ram_base, config.ram_size])?;
    fdt.end_node(memory)?;

    write_cpus(&mut fdt, config.harts)?;
    write_soc(&mut fdt, config.harts, plic_phandle, test_phandle)?;

    fdt.end_node(root)?;
    Ok(fdt.finish()?)
}

fn write_chosen(fdt: &mut FdtWriter, config: &FdtConfig) -> Result<(), FdtError> {
    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("stdout-path", &format!("/soc/serial@{UART_BASE:x}"))?;
    if let Some(bootargs) = &config.bootargs {
        fdt.property_string("bootargs", bootargs)?;
    }
    if let Some((start, end)) = config.initrd {
        fdt.property_u64("linux,initrd-start", start)?;
        fdt.property_u64("linux,initrd-end", end)?;
    }
    fdt.end_node(chosen)?;
    Ok(())
}

fn write_syscon(
    fdt: &mut FdtWriter,
    name: &str,
    compatible: &str,
    value: u32,
    regmap: u32,
) -> Result<(), FdtError> {
    let node = fdt.begin_node(name)?;
    fdt.property_u32("value", value)?;
    fdt.property_u32("offset", 0)?;
    fdt.property_u32("regmap", regmap)?;
    fdt.property_string("compatible", compatible)?;
    fdt.end_node(node)?;
    Ok(())
}

fn write_cpus(fdt: &mut FdtWriter, harts: u32) -> Result<(), FdtError> {
    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    fdt.property_u32("timebase-frequency", TIMEBASE_HZ as u32)?;
    for hart in 0..harts {
        let cpu = fdt.begin_node(&format!("cpu@{hart}"))?;
        fdt.property_phandle(cpu_phandle(hart))?;
        fdt.property_string("device_type", "cpu")?;
        fdt.property_u32("reg", hart)?;
        fdt.property_string("status", "okay")?;
        fdt.property_string("compatible", "riscv")?;
        fdt.property_string("riscv,isa", RISCV_ISA)?;
        fdt.property_string("riscv,isa-base", "rv64i")?;
        fdt.property_string_list(
            "riscv,isa-extensions",
            RISCV_ISA_EXTENSIONS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        )?;
        fdt.property_string("mmu-type", "riscv,sv48")?;
        let intc = fdt.begin_node("interrupt-controller")?;
        fdt.property_u32("#interrupt-cells", 1)?;
        fdt.property_null("interrupt-controller")?;
        fdt.property_string("compatible", "riscv,cpu-intc")?;
        fdt.property_phandle(intc_phandle(hart))?;
        fdt.end_node(intc)?;
        fdt.end_node(cpu)?;
    }
    let map = fdt.begin_node("cpu-map")?;
    let cluster = fdt.begin_node("cluster0")?;
    for hart in 0..harts {
        let core = fdt.begin_node(&format!("core{hart}"))?;
        fdt.property_u32("cpu", cpu_phandle(hart))?;
        fdt.end_node(core)?;
    }
    fdt.end_node(cluster)?;
    fdt.end_node(map)?;
    fdt.end_node(cpus)?;
    Ok(())
}

/// `interrupts-extended` with, per hart, its intc phandle and each cause.
fn per_hart_interrupts(harts: u32, causes: &[u32]) -> Vec<u32> {
    (0..harts)
        .flat_map(|hart| {
            causes
                .iter()
                .flat_map(move |&cause| [intc_phandle(hart), cause])
        })
        .collect()
}

fn device_node(fdt: &mut FdtWriter, name: &str, base: u64) -> Result<FdtWriterNode, FdtError> {
    Ok(fdt.begin_node(&format!("{name}@{base:x}"))?)
}

fn write_soc(
    fdt: &mut FdtWriter,
    harts: u32,
    plic_phandle: u32,
    test_phandle: u32,
) -> Result<(), FdtError> {
    let soc = fdt.begin_node("soc")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_string("compatible", "simple-bus")?;
    fdt.property_null("ranges")?;

    let test = device_node(fdt, "test", TEST_DEVICE_BASE)?;
    fdt.property_phandle(test_phandle)?;
    fdt.property_array_u64("reg", &[TEST_DEVICE_BASE, TEST_DEVICE_SIZE])?;
    fdt.property_string_list(
        "compatible",
        vec![
            "sifive,test1".into(),
            "sifive,test0".into(),
            "syscon".into(),
        ],
    )?;
    fdt.end_node(test)?;

    let serial = device_node(fdt, "serial", UART_BASE)?;
    fdt.property_u32("interrupts", UART_IRQ)?;
    fdt.property_u32("interrupt-parent", plic_phandle)?;
    fdt.property_u32("clock-frequency", UART_CLOCK_HZ)?;
    fdt.property_array_u64("reg", &[UART_BASE, UART_SIZE])?;
    fdt.property_string("compatible", "ns16550a")?;
    fdt.end_node(serial)?;

    // QEMU lists the slots from the highest address down and keeps that
    // order here so Linux probes (and names) devices identically. Note that
    // QEMU puts the first `-device virtio-*-device` in the *highest* slot
    // (0x1000_8000, irq 8): a board matching QEMU fills slots from 7 down.
    for slot in (0..VIRTIO_SLOTS).rev() {
        let base = VIRTIO_BASE + u64::from(slot) * VIRTIO_STRIDE;
        let node = device_node(fdt, "virtio_mmio", base)?;
        fdt.property_u32("interrupts", VIRTIO_IRQ_BASE + slot)?;
        fdt.property_u32("interrupt-parent", plic_phandle)?;
        fdt.property_array_u64("reg", &[base, VIRTIO_MMIO_SIZE])?;
        fdt.property_string("compatible", "virtio,mmio")?;
        fdt.end_node(node)?;
    }

    let plic = device_node(fdt, "plic", PLIC_BASE)?;
    fdt.property_phandle(plic_phandle)?;
    // Sources 1..=95 (id 0 is reserved).
    fdt.property_u32("riscv,ndev", PLIC_NUM_SOURCES - 1)?;
    fdt.property_array_u64("reg", &[PLIC_BASE, PLIC_SIZE])?;
    // Context 2h = M-mode external, 2h+1 = S-mode external.
    fdt.property_array_u32(
        "interrupts-extended",
        &per_hart_interrupts(harts, &[IRQ_M_EXT, IRQ_S_EXT]),
    )?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_string_list(
        "compatible",
        vec!["sifive,plic-1.0.0".into(), "riscv,plic0".into()],
    )?;
    fdt.property_u32("#address-cells", 0)?;
    fdt.property_u32("#interrupt-cells", 1)?;
    fdt.end_node(plic)?;

    let clint = device_node(fdt, "clint", CLINT_BASE)?;
    fdt.property_array_u32(
        "interrupts-extended",
        &per_hart_interrupts(harts, &[IRQ_M_SOFT, IRQ_M_TIMER]),
    )?;
    fdt.property_array_u64("reg", &[CLINT_BASE, CLINT_SIZE])?;
    fdt.property_string_list(
        "compatible",
        vec!["sifive,clint0".into(), "riscv,clint0".into()],
    )?;
    fdt.end_node(clint)?;

    fdt.end_node(soc)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(blob: &[u8]) -> fdt::Fdt<'_> {
        fdt::Fdt::new(blob).expect("valid FDT")
    }

    #[test]
    fn one_cpu_per_hart_and_core_nodes() {
        for harts in [1, 4, 8] {
            let blob = build_fdt(&FdtConfig::new(harts, 256 << 20)).unwrap();
            let tree = parse(&blob);
            assert_eq!(tree.cpus().count(), harts as usize);
            for (i, cpu) in tree.cpus().enumerate() {
                assert_eq!(cpu.ids().first(), i);
                assert_eq!(cpu.timebase_frequency(), TIMEBASE_HZ as usize);
                assert_eq!(
                    cpu.property("riscv,isa").and_then(|p| p.as_str()),
                    Some(RISCV_ISA)
                );
                let path = format!("/cpus/cpu@{i}/interrupt-controller");
                let intc = tree.find_node(&path).expect("interrupt-controller child");
                assert_eq!(intc.compatible().unwrap().first(), "riscv,cpu-intc");
            }
        }
    }

    #[test]
    fn memory_chosen_and_devices() {
        let mut config = FdtConfig::new(2, 128 << 20);
        config.bootargs = Some("console=ttyS0 earlycon".into());
        config.initrd = Some((0x8800_0000, 0x8810_0000));
        let blob = build_fdt(&config).unwrap();
        let tree = parse(&blob);

        let region = tree.memory().regions().next().unwrap();
        assert_eq!(region.starting_address as u64, RAM_BASE);
        assert_eq!(region.size, Some(128 << 20));

        let chosen = tree.chosen();
        assert_eq!(chosen.bootargs(), Some("console=ttyS0 earlycon"));
        assert_eq!(chosen.stdout().unwrap().name, "serial@10000000");
        let node = tree.find_node("/chosen").unwrap();
        let start = node
            .property("linux,initrd-start")
            .unwrap()
            .as_usize()
            .unwrap();
        assert_eq!(start, 0x8800_0000);

        let uart = tree.find_node("/soc/serial@10000000").unwrap();
        assert_eq!(uart.compatible().unwrap().first(), "ns16550a");
        assert_eq!(uart.property("interrupts").unwrap().as_usize(), Some(10));
        assert_eq!(
            uart.property("clock-frequency").unwrap().as_usize(),
            Some(0x38_4000)
        );

        let plic = tree.find_node("/soc/plic@c000000").unwrap();
        assert_eq!(plic.property("riscv,ndev").unwrap().as_usize(), Some(95));
        // 2 harts x 2 contexts x (phandle, cause) cells.
        assert_eq!(
            plic.property("interrupts-extended").unwrap().value.len(),
            2 * 2 * 2 * 4
        );
        let clint = tree.find_node("/soc/clint@2000000").unwrap();
        assert!(
            clint
                .compatible()
                .unwrap()
                .all()
                .any(|c| c == "riscv,clint0")
        );

        let virtio: Vec<_> = tree
            .all_nodes()
            .filter(|n| n.name.starts_with("virtio_mmio@"))
            .collect();
        assert_eq!(virtio.len(), VIRTIO_SLOTS as usize);
        let slot0 = tree.find_node("/soc/virtio_mmio@10001000").unwrap();
        assert_eq!(slot0.property("interrupts").unwrap().as_usize(), Some(1));

        let test = tree.find_node("/soc/test@100000").unwrap();
        assert!(
            test.compatible()
                .unwrap()
                .all()
                .any(|c| c == "sifive,test0")
        );
        let poweroff = tree.find_node("/poweroff").unwrap();
        assert_eq!(poweroff.property("value").unwrap().as_usize(), Some(0x5555));
        assert_eq!(
            poweroff.property("regmap").unwrap().as_usize(),
            test.property("phandle").unwrap().as_usize()
        );
    }

    #[test]
    fn deterministic_and_rejects_bad_hart_counts() {
        let config = FdtConfig::new(4, 256 << 20);
        assert_eq!(build_fdt(&config).unwrap(), build_fdt(&config).unwrap());
        assert!(matches!(
            build_fdt(&FdtConfig::new(0, 1 << 20)),
            Err(FdtError::HartCount(0))
        ));
        assert!(build_fdt(&FdtConfig::new(MAX_HARTS + 1, 1 << 20)).is_err());
    }
}
