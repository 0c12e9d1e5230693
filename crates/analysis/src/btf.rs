//! Just enough of BTF (the kernel's own type information, which Debian's
//! kernels carry in their image) to find where a `task_struct` keeps a
//! task's pid, its thread group's id and its name: the kernel state the
//! system-call analysis reads.

/// Byte offsets of fields of `struct task_struct`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskLayout {
    /// `pid_t pid` (the thread's id).
    pub pid: u64,
    /// `pid_t tgid` (the process's id).
    pub tgid: u64,
    /// `char comm[16]`.
    pub comm: u64,
}

const MAGIC: [u8; 2] = [0x9f, 0xeb];
const HEADER_LEN: usize = 24;

const KIND_INT: u32 = 1;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_DECL_TAG: u32 = 17;
const KIND_ENUM64: u32 = 19;

fn u32_at(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

/// Finds the layout of `task_struct` in the BTF blob inside `image` (a
/// kernel image: the blob is found by its header). `None` if there is no
/// BTF, or it has no such struct with those fields.
pub fn task_layout(image: &[u8]) -> Option<TaskLayout> {
    let mut at = 0;
    while let Some(found) = find(&image[at..], &MAGIC) {
        let start = at + found;
        if let Some(layout) = parse(&image[start..]) {
            return Some(layout);
        }
        at = start + 2;
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses a BTF blob starting at `data[0]`; `None` if it is not one.
fn parse(data: &[u8]) -> Option<TaskLayout> {
    // magic, version 1, flags 0, header length 24.
    if data.get(2..8)? != [1, 0, 24, 0, 0, 0] {
        return None;
    }
    let type_off = u32_at(data, 8)? as usize;
    let type_len = u32_at(data, 12)? as usize;
    let str_off = u32_at(data, 16)? as usize;
    let str_len = u32_at(data, 20)? as usize;
    let types = data.get(HEADER_LEN + type_off..HEADER_LEN + type_off + type_len)?;
    let strings = data.get(HEADER_LEN + str_off..HEADER_LEN + str_off + str_len)?;
    let name = |off: u32| -> Option<&[u8]> {
        let rest = strings.get(off as usize..)?;
        Some(&rest[..rest.iter().position(|&b| b == 0)?])
    };
    let mut at = 0;
    while at + 12 <= types.len() {
        let name_off = u32_at(types, at)?;
        let info = u32_at(types, at + 4)?;
        let kind = (info >> 24) & 0x1f;
        let vlen = (info & 0xffff) as usize;
        let kind_flag = info >> 31 != 0;
        at += 12;
        let members = at;
        at += match kind {
            KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
            KIND_ARRAY => 12,
            KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen,
            KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen,
            // PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT,
            // TYPE_TAG: nothing more.
            2 | 7..=12 | 16 | 18 => 0,
            _ => return None,
        };
        if kind != KIND_STRUCT || name(name_off)? != b"task_struct" {
            continue;
        }
        let (mut pid, mut tgid, mut comm) = (None, None, None);
        for m in 0..vlen {
            let base = members + 12 * m;
            let member = name(u32_at(types, base)?)?;
            let offset = u32_at(types, base + 8)?;
            let bits = if kind_flag {
                offset & 0xff_ffff
            } else {
                offset
            };
            let byte = Some(u64::from(bits / 8));
            match member {
                b"pid" => pid = byte,
                b"tgid" => tgid = byte,
                b"comm" => comm = byte,
                _ => {}
            }
        }
        if let (Some(pid), Some(tgid), Some(comm)) = (pid, tgid, comm) {
            return Some(TaskLayout { pid, tgid, comm });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob with an int, a forward declaration and `task_struct`.
    fn blob(kind_flag: bool) -> Vec<u8> {
        let strings = b"\0int\0task_struct\0state\0pid\0tgid\0comm\0".to_vec();
        let s = |name: &str| {
            let needle = format!("\0{name}\0");
            (strings
                .windows(needle.len())
                .position(|w| w == needle.as_bytes())
                .unwrap()
                + 1) as u32
        };
        let mut types = Vec::new();
        let mut put = |words: &[u32]| {
            for w in words {
                types.extend_from_slice(&w.to_le_bytes());
            }
        };
        put(&[s("int"), KIND_INT << 24, 4, 32]);
        put(&[0, 7 << 24, 0]);
        let flag = if kind_flag { 1 << 31 } else { 0 };
        let bits = |byte: u32| {
            if kind_flag {
                (byte * 8) | (32 << 24)
            } else {
                byte * 8
            }
        };
        put(&[s("task_struct"), flag | (KIND_STRUCT << 24) | 4, 2048]);
        put(&[s("state"), 1, bits(16)]);
        put(&[s("pid"), 1, bits(1480)]);
        put(&[s("tgid"), 1, bits(1484)]);
        put(&[s("comm"), 1, bits(1904)]);
        let mut out = b"junk\x9f\xeb".to_vec();
        out.extend_from_slice(&[0x9f, 0xeb, 1, 0, 24, 0, 0, 0]);
        for w in [
            0,
            types.len() as u32,
            types.len() as u32,
            strings.len() as u32,
        ] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&types);
        out.extend_from_slice(&strings);
        out
    }

    #[test]
    fn finds_the_task_layout_past_false_starts_with_and_without_bitfield_offsets() {
        let want = TaskLayout {
            pid: 1480,
            tgid: 1484,
            comm: 1904,
        };
        assert_eq!(task_layout(&blob(false)), Some(want));
        assert_eq!(task_layout(&blob(true)), Some(want));
    }

    #[test]
    fn no_btf_or_a_cut_blob_is_none() {
        assert_eq!(task_layout(b"no type information here"), None);
        let cut = blob(false);
        assert_eq!(task_layout(&cut[..cut.len() - 20]), None);
    }
}
