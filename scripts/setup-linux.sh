#!/usr/bin/env bash
# Fetch what `samsara run --linux` boots, into linux/build/ (git-ignored):
#
#   fw_dynamic.bin      OpenSBI (Debian stable's `opensbi`, generic platform)
#   Image               Debian stable's riscv64 kernel (raw RISC-V Image)
#   initramfs.cpio.gz   busybox-static + the virtio modules + linux/init
#                       + /bin/parsec-test (the PARSEC-like programs, test size)
#   disk.img            a virtio disk: a tar of parsec-test and parsec-bench,
#                       with room after it for /init to write results
#   cmdline             the default kernel command line
#   System.map          the kernel's symbols (`ADDR TYPE NAME`), read from
#                       /proc/kallsyms by booting the kernel once on samsara
#                       (Debian's linux-image ships a stub System.map; the
#                       real one is in the -dbg package)
#
# The PARSEC-like programs (guests/parsec/*.c) are built for Linux user
# space with Debian's gcc-riscv64-linux-gnu (`make -C guests linux`), which
# this script installs.
#
# Debian 12 (bookworm, the host) has no riscv64 port, so single packages
# come from Debian stable: a temporary apt source
# `deb [arch=riscv64] MIRROR stable main` (MIRROR read from this machine's
# own apt configuration), `apt-get download`, then the source is removed and
# the package lists are refreshed again before anything is installed.
#
# Idempotent: downloaded packages are kept in linux/build/debs/; a second
# run only rebuilds the initramfs (when linux/init changed). `--force`
# downloads again. Needs root (or sudo) for apt.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=linux/build
DEBS=$OUT/debs
PARSEC=guests/build/linux
force=0
[ "${1:-}" = "--force" ] && force=1

say() { echo "setup-linux: $*"; }
die() { echo "setup-linux: error: $*" >&2; exit 1; }

sudo_cmd=""
[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"

# Modules /init loads, in this order (their own dependencies are added).
MODULES=(virtio_mmio virtio_blk)

need_tools() {
    local missing=()
    command -v cpio >/dev/null 2>&1 || missing+=(cpio)
    command -v xz >/dev/null 2>&1 || missing+=(xz-utils)
    command -v gzip >/dev/null 2>&1 || missing+=(gzip)
    command -v make >/dev/null 2>&1 || missing+=(make)
    command -v riscv64-linux-gnu-gcc >/dev/null 2>&1 || missing+=(gcc-riscv64-linux-gnu)
    if [ ${#missing[@]} -gt 0 ]; then
        say "installing ${missing[*]}"
        $sudo_cmd apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -q "${missing[@]}" >/dev/null
    fi
}

# The Debian archive this machine's apt already uses: the entry of the
# host's own release (not -updates, not -security) with component main.
debian_mirror() {
    local codename uri
    codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
    uri=$(apt-get indextargets --format '$(REPO_URI) $(RELEASE) $(LABEL) $(COMPONENT)' \
            'Created-By: Packages' 2>/dev/null |
          awk -v c="$codename" '$2 == c && $3 == "Debian" && $4 == "main" { print $1; exit }')
    if [ -z "$uri" ]; then
        # No package lists yet: read the sources themselves (one-line and deb822).
        uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
              sed 's/\[[^]]*\]//' |
              awk -v c="$codename" '$1 == "deb" && $3 == c { print $2; exit }')
    fi
    if [ -z "$uri" ]; then
        uri=$(awk -v c="$codename" '
                /^URIs:/ { u = $2 } /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == c) s = 1 }
                /^$/ { if (s && u != "") { print u; exit } u = ""; s = 0 }
                END { if (s && u != "") print u }' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    fi
    [ -n "$uri" ] || die "cannot find this machine's Debian mirror in its apt configuration"
    echo "${uri%/}"
}

TMP_SOURCE=/etc/apt/sources.list.d/samsara-riscv64-stable.list
added_arch=0
cleanup_apt() {
    if [ -e "$TMP_SOURCE" ]; then
        $sudo_cmd rm -f "$TMP_SOURCE"
        if [ "$added_arch" = 1 ]; then
            $sudo_cmd dpkg --remove-architecture riscv64 || true
        fi
        say "removed the temporary riscv64 source; refreshing package lists"
        $sudo_cmd apt-get update -q >/dev/null || say "warning: apt-get update failed"
    fi
}

download() {
    local mirror
    mirror=$(debian_mirror)
    say "mirror: $mirror (from this machine's apt configuration)"
    trap cleanup_apt EXIT
    echo "deb [arch=riscv64] $mirror stable main" | $sudo_cmd tee "$TMP_SOURCE" >/dev/null
    $sudo_cmd apt-get update -q >/dev/null
    # apt reads riscv64 lists for an [arch=riscv64] entry without the
    # architecture being configured; older apt needs it: add it then.
    if ! apt-cache show busybox-static:riscv64 >/dev/null 2>&1; then
        if ! dpkg --print-foreign-architectures | grep -qx riscv64; then
            $sudo_cmd dpkg --add-architecture riscv64
            added_arch=1
            $sudo_cmd apt-get update -q >/dev/null
        fi
    fi
    # linux-image-riscv64 is the metapackage; its dependency names today's kernel.
    local kernel
    kernel=$(apt-cache show linux-image-riscv64:riscv64 2>/dev/null |
             sed -n 's/^Depends:.*\(linux-image-[0-9][^ ,]*-riscv64\).*/\1/p' | head -n1)
    [ -n "$kernel" ] || die "Debian stable lists no linux-image-riscv64 for riscv64"
    say "downloading opensbi, busybox-static, $kernel"
    rm -rf "$DEBS.tmp" && mkdir -p "$DEBS.tmp"
    # apt's sandbox user must be able to write the target directory.
    chmod 777 "$DEBS.tmp"
    (cd "$DEBS.tmp" && apt-get download -q opensbi/stable busybox-static:riscv64 "$kernel:riscv64")
    rm -rf "$DEBS" && mv "$DEBS.tmp" "$DEBS"
    chmod 755 "$DEBS"
    cleanup_apt
    trap - EXIT
}

extract() {
    local work=$OUT/extract
    rm -rf "$work" && mkdir -p "$work"
    local deb
    deb=$(ls "$DEBS"/opensbi_*.deb)
    dpkg-deb --fsys-tarfile "$deb" |
        tar -x -C "$work" ./usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin
    deb=$(ls "$DEBS"/busybox-static_*.deb)
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$work" ./usr/bin/busybox
    deb=$(ls "$DEBS"/linux-image-*.deb)
    dpkg-deb --fsys-tarfile "$deb" |
        tar -x -C "$work" --wildcards './boot/vmlinux-*' './usr/lib/modules/*/kernel/*.ko.xz'
    cp "$work"/usr/lib/riscv64-linux-gnu/opensbi/generic/fw_dynamic.bin "$OUT/fw_dynamic.bin"
    local vmlinux
    vmlinux=$(ls "$work"/boot/vmlinux-*)
    # Debian ships the kernel as a raw RISC-V Image ("RSC\x05" at 0x38).
    [ "$(dd if="$vmlinux" bs=1 skip=56 count=4 2>/dev/null | od -An -c | tr -d ' ')" = 'RSC005' ] ||
        die "$vmlinux is not a RISC-V Image"
    cp "$vmlinux" "$OUT/Image"
    echo "${vmlinux##*/vmlinux-}" > "$OUT/kernel-release"
}

# `depends=` of a module, read from its .modinfo strings.
module_deps() {
    xz -dc "$1" | tr '\0' '\n' | sed -n 's/^depends=//p' | tr ',' ' '
}

build_initramfs() {
    local work=$OUT/extract release root=$OUT/initramfs
    release=$(cat "$OUT/kernel-release")
    local moddir=$work/usr/lib/modules/$release/kernel
    rm -rf "$root" && mkdir -p "$root"/{bin,dev,proc,sys,lib/modules,tmp}
    cp "$work/usr/bin/busybox" "$root/bin/busybox"
    cp "$PARSEC/parsec-test" "$root/bin/parsec-test"
    ln -s busybox "$root/bin/sh"
    install -m 755 linux/init "$root/init"
    : > "$root/lib/modules/load-order"
    local loaded=" "
    add_module() {
        local name=$1 file dep
        case "$loaded" in *" $name "*) return ;; esac
        file=$(find "$moddir" -name "$name.ko.xz" -o -name "${name//_/-}.ko.xz" | head -n1)
        [ -n "$file" ] || die "module $name not found in $deb_release_hint"
        for dep in $(module_deps "$file"); do add_module "$dep"; done
        xz -dc "$file" > "$root/lib/modules/$name.ko"
        echo "$name.ko" >> "$root/lib/modules/load-order"
        loaded="$loaded$name "
    }
    local deb_release_hint="kernel $release"
    for m in "${MODULES[@]}"; do add_module "$m"; done
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --owner 0:0 --quiet) |
        gzip -9 > "$OUT/initramfs.cpio.gz.tmp"
    mv "$OUT/initramfs.cpio.gz.tmp" "$OUT/initramfs.cpio.gz"
    say "initramfs: modules $(tr '\n' ' ' < "$root/lib/modules/load-order")"
}

# The virtio disk /init reads (and writes results to): a tar of the
# PARSEC-like programs, then DISK_SPARE bytes for results (see linux/init).
DISK_SPARE=$((1 << 20))
build_disk() {
    tar -c -f "$OUT/disk.img.tmp" --owner 0 --group 0 --mtime @0 -C "$PARSEC" parsec-test parsec-bench
    local size
    size=$(stat -c %s "$OUT/disk.img.tmp")
    truncate -s $(( (size + DISK_SPARE + 4095) / 4096 * 4096 )) "$OUT/disk.img.tmp"
    mv "$OUT/disk.img.tmp" "$OUT/disk.img"
    say "disk.img: $(stat -c %s "$OUT/disk.img") bytes (tar of parsec-test, parsec-bench)"
}

# The kernel's symbols. Debian's System.map is an 83-byte stub, so the
# kernel is booted once (samsara run, 1 hart, "samsara.kallsyms": /init
# copies /proc/kallsyms, read before any module loads, to a scratch disk and
# powers off). The addresses are those of every boot: the kernel is built
# without CONFIG_RANDOMIZE_BASE (no KASLR) and without CONFIG_RELOCATABLE
# (checked here against the package's config), so it runs at its link
# addresses whatever the machine.
SAMSARA=${SAMSARA:-target/release/samsara}
build_system_map() {
    local deb config
    deb=$(ls "$DEBS"/linux-image-*.deb)
    config=$(dpkg-deb --fsys-tarfile "$deb" | tar -xO --wildcards './boot/config-*')
    if grep -qx 'CONFIG_RANDOMIZE_BASE=y' <<<"$config" || grep -qx 'CONFIG_RELOCATABLE=y' <<<"$config"; then
        say "warning: the kernel is relocatable or randomized (KASLR): /proc/kallsyms of one boot may not match another; no System.map"
        return 0
    fi
    if [ ! -x "$SAMSARA" ]; then
        say "building samsara (cargo build --release -p samsara) to read the kernel's symbols"
        cargo build -q --release -p samsara
    fi
    local disk=$OUT/kallsyms.disk
    rm -f "$disk" && truncate -s 32M "$disk"
    say "booting the kernel once to read /proc/kallsyms (System.map)"
    SAMSARA_LINUX_DIR=$OUT "$SAMSARA" run --linux --harts 1 --disk "$disk" --timeout 900 \
        --append "console=ttyS0 samsara.kallsyms" > "$OUT/kallsyms.console" 2>&1 ||
        { rm -f "$disk"; die "the kallsyms boot failed (see $OUT/kallsyms.console)"; }
    local header bytes
    header=$(head -c 64 "$disk" | head -n1 | tr -d '\0')
    bytes=${header#samsara-kallsyms }
    case "$header:$bytes" in samsara-kallsyms\ *:[0-9]*) ;; *)
        rm -f "$disk"; die "the kallsyms boot wrote no symbols (see $OUT/kallsyms.console)" ;;
    esac
    # Kernel symbols only (modules' are "[name]"-tagged), sorted by address.
    head -c $(( ${#header} + 1 + bytes )) "$disk" | tail -c +$(( ${#header} + 2 )) | grep -v '\[' |
        LC_ALL=C sort -k1,1 > "$OUT/System.map.tmp"
    rm -f "$disk"
    # Without the right to see addresses, kallsyms shows zeros.
    awk '$1 !~ /^0+$/ { n++ } END { exit n < 1000 }' "$OUT/System.map.tmp" ||
        die "/proc/kallsyms showed no addresses (kptr_restrict?)"
    grep -q ' [Tt] schedule$' "$OUT/System.map.tmp" || die "no 'schedule' in /proc/kallsyms"
    mv "$OUT/System.map.tmp" "$OUT/System.map"
    say "System.map: $(wc -l < "$OUT/System.map") symbols"
}

mkdir -p "$OUT"
# A run killed before its cleanup may have left the temporary source behind.
cleanup_apt
need_tools
if [ "$force" = 1 ] || ! ls "$DEBS"/linux-image-*.deb "$DEBS"/opensbi_*.deb "$DEBS"/busybox-static_*.deb >/dev/null 2>&1; then
    download
    rm -f "$OUT/Image"
fi
if [ ! -s "$OUT/Image" ] || [ ! -s "$OUT/fw_dynamic.bin" ] || [ ! -d "$OUT/extract" ]; then
    say "extracting firmware, kernel and modules"
    extract
fi
say "building the PARSEC-like programs for Linux (make -C guests linux)"
make -s -C guests linux
if [ ! -s "$OUT/initramfs.cpio.gz" ] || [ linux/init -nt "$OUT/initramfs.cpio.gz" ] ||
   [ "$0" -nt "$OUT/initramfs.cpio.gz" ] || [ "$PARSEC/parsec-test" -nt "$OUT/initramfs.cpio.gz" ]; then
    build_initramfs
fi
if [ ! -s "$OUT/disk.img" ] || [ "$PARSEC/parsec-test" -nt "$OUT/disk.img" ] ||
   [ "$PARSEC/parsec-bench" -nt "$OUT/disk.img" ] || [ "$0" -nt "$OUT/disk.img" ]; then
    build_disk
fi
echo "console=ttyS0 earlycon=sbi" > "$OUT/cmdline"
if [ ! -s "$OUT/System.map" ] || [ "$OUT/Image" -nt "$OUT/System.map" ]; then
    build_system_map
fi
say "ready: $OUT/{fw_dynamic.bin,Image,initramfs.cpio.gz,disk.img,System.map} (kernel $(cat "$OUT/kernel-release"))"
