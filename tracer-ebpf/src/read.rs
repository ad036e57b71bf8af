//! Reading kernel structs at the offsets `CONFIG` holds: a task's files, inodes, sockets,
//! page-cache mappings and folios.

use aya_ebpf::helpers::{bpf_get_current_task, bpf_probe_read_kernel};
use tracer_common::{ABSENT, kind};

use crate::maps::SOCKS;

/// `sk_protocol` of a TCP socket.
pub(crate) const IPPROTO_TCP: u16 = 6;
/// `sk_flags` bit of a socket with SO_ZEROCOPY (SOCK_ZEROCOPY = 18).
const SOCK_ZEROCOPY: u64 = 1 << 18;
/// `sk_route_caps` bit of a route that can scatter-gather (NETIF_F_SG = bit 0).
const NETIF_F_SG: u64 = 1;
/// `skb_shinfo(skb)->flags` bit of an skb whose frags are pinned user pages.
pub(crate) const SKBFL_ZEROCOPY_ENABLE: u8 = 1;

/// Reads a `T` at `base + off` in kernel memory.
#[inline(always)]
pub(crate) fn rd<T>(base: u64, off: u32) -> Result<T, i64> {
    // SAFETY: bpf_probe_read_kernel checks the address; a bad one returns an error.
    unsafe { bpf_probe_read_kernel((base + off as u64) as *const T) }.map_err(|e| e as i64)
}

/// Loads a `T` at `base + off` directly, without a helper call (several times cheaper on
/// the hot paths): `base` must be a pointer the verifier knows by its BTF type (a
/// tp_btf argument, or a pointer field loaded through one with [`ld`]), and `off` a CONFIG
/// field, which the verifier reads as a constant (`.rodata` is frozen). The verifier
/// checks the access against the struct's BTF layout and makes the load fault-safe: a bad
/// address reads as 0.
#[inline(always)]
pub(crate) fn ld<T>(base: u64, off: u32) -> T {
    // SAFETY: see above; the verifier refuses the program rather than allow a load it
    // cannot check.
    unsafe { core::ptr::read_volatile((base + off as u64) as *const T) }
}

/// How a kernel struct is read: [`Btf`] through a pointer the verifier knows by type
/// ([`ld`]), [`Probe`] through any address (`bpf_probe_read_kernel`).
pub(crate) trait Kmem {
    fn get<T>(base: u64, off: u32) -> Result<T, i64>;
}

/// Direct loads through a BTF-typed pointer.
pub(crate) struct Btf;
/// `bpf_probe_read_kernel` of an address the verifier sees as a number.
pub(crate) struct Probe;

impl Kmem for Btf {
    #[inline(always)]
    fn get<T>(base: u64, off: u32) -> Result<T, i64> {
        Ok(ld(base, off))
    }
}

impl Kmem for Probe {
    #[inline(always)]
    fn get<T>(base: u64, off: u32) -> Result<T, i64> {
        rd(base, off)
    }
}

/// Enters `sk` in `SOCKS` as `tgid`'s socket unless it is already there: an LRU map
/// update costs several times a lookup, and a socket is sent on many times.
#[inline(always)]
pub(crate) fn own_socket(sk: u64, tgid: u32) {
    // SAFETY: the value is copied out at once.
    if unsafe { SOCKS.get(sk) }.copied() != Some(tgid) {
        let _ = SOCKS.insert(sk, tgid, 0);
    }
}

/// The `struct file` behind `fd` in the current task (task->files->fdt->fd[fd]), if any: none
/// for a closed or out-of-range fd, or when a read fails (an fd argument may legitimately be
/// bad; the syscall's own error says so).
#[inline(always)]
pub(crate) fn fd_file(fd: i32) -> Option<u64> {
    fn walk(fd: i32) -> Result<u64, i64> {
        if fd < 0 || conf!(task_files) == ABSENT {
            return Ok(0);
        }
        // SAFETY: returns the current task pointer; it is only read through rd().
        let task = unsafe { bpf_get_current_task() };
        let files: u64 = rd(task, conf!(task_files))?;
        if files == 0 {
            return Ok(0);
        }
        let fdt: u64 = rd(files, conf!(files_struct_fdt))?;
        let max: u32 = rd(fdt, conf!(fdtable_max_fds))?;
        if fd as u32 >= max {
            return Ok(0);
        }
        let table: u64 = rd(fdt, conf!(fdtable_fd))?;
        rd(table, fd as u32 * 8)
    }
    match walk(fd) {
        Ok(0) | Err(_) => None,
        Ok(file) => Some(file),
    }
}

/// (i_ino, i_mode) of a `struct file`.
#[inline(always)]
pub(crate) fn file_inode(file: u64) -> Result<(u64, u16), i64> {
    let inode: u64 = rd(file, conf!(file_f_inode))?;
    if inode == 0 {
        return Ok((0, 0));
    }
    Ok((
        rd(inode, conf!(inode_i_ino))?,
        rd(inode, conf!(inode_i_mode))?,
    ))
}

/// The `sk` of a socket `file` (file->private_data->sk), 0 when it cannot be read.
#[inline(always)]
pub(crate) fn file_sk(file: u64) -> u64 {
    if conf!(file_private_data) == ABSENT {
        return 0;
    }
    let socket: u64 = rd(file, conf!(file_private_data)).unwrap_or(0);
    if socket == 0 {
        return 0;
    }
    rd(socket, conf!(socket_sk)).unwrap_or(0)
}

/// The `sk` of a socket `file` a traced process sends through, and whether it is TCP
/// (assumed when this kernel's `sk_protocol` is not known); a TCP socket is entered in
/// `SOCKS` as the process's, so its transmits are attributed on kernels without the send
/// tracepoints (before 6.3 / 6.16) too. Only TCP sockets carry the data path the model
/// follows (unix and UDP sends are not copies into a TCP socket buffer).
#[inline(always)]
pub(crate) fn socket_sk(file: u64, tgid: u32) -> (u64, bool) {
    let sk = file_sk(file);
    if sk == 0 {
        return (0, false);
    }
    let protocol = conf!(sock_protocol);
    let tcp = protocol == ABSENT || rd::<u16>(sk, protocol).unwrap_or(0) == IPPROTO_TCP;
    if tcp {
        own_socket(sk, tgid);
    }
    (sk, tcp)
}

/// The socket's part of the zero-copy decision: SOCK_ZEROCOPY (bit 18 of `sk_flags`, set
/// by SO_ZEROCOPY) and NETIF_F_SG in `sk_route_caps`; 0 when this kernel's layout is not
/// known.
#[inline(always)]
pub(crate) fn sock_zc_inputs<M: Kmem>(sk: u64) -> Result<u64, i64> {
    use kind::tcp_sendmsg_locked as k;
    let (flags_off, caps_off) = (conf!(sock_flags), conf!(sock_route_caps));
    if flags_off == ABSENT || caps_off == ABSENT {
        return Ok(0);
    }
    let mut zc = k::ZC_KNOWN;
    if M::get::<u64>(sk, flags_off)? & SOCK_ZEROCOPY != 0 {
        zc |= k::ZC_SOCK;
    }
    if M::get::<u64>(sk, caps_off)? & NETIF_F_SG != 0 {
        zc |= k::ZC_SG;
    }
    Ok(zc)
}

/// Reads (i_ino, s_dev) of an `address_space`'s host inode.
#[inline(always)]
pub(crate) fn mapping_inode<M: Kmem>(mapping: u64) -> Result<(u64, u64), i64> {
    if mapping == 0 {
        return Ok((0, 0));
    }
    inode_ino_dev::<M>(M::get(mapping, conf!(address_space_host))?)
}

/// Reads (i_ino, s_dev) of an inode.
#[inline(always)]
pub(crate) fn inode_ino_dev<M: Kmem>(host: u64) -> Result<(u64, u64), i64> {
    if host == 0 {
        return Ok((0, 0));
    }
    let ino: u64 = M::get(host, conf!(inode_i_ino))?;
    let sb: u64 = M::get(host, conf!(inode_i_sb))?;
    let dev: u32 = if sb == 0 {
        0
    } else {
        M::get(sb, conf!(super_block_s_dev))?
    };
    Ok((ino, dev as u64))
}

/// folio_order(): a large folio has PG_head set and its order in a byte of its first
/// tail page (`_folio_order` before 6.6, `_flags_1`'s low byte since); `u64::MAX` when
/// this kernel's folio layout is not known.
#[inline(always)]
pub(crate) fn folio_order<M: Kmem>(folio: u64) -> Result<u64, i64> {
    let order_byte = conf!(folio_order_byte);
    if order_byte == ABSENT || conf!(folio_flags) == ABSENT {
        return Ok(u64::MAX);
    }
    let flags: u64 = M::get(folio, conf!(folio_flags))?;
    if flags & (1u64 << (conf!(pg_head) & 63)) != 0 {
        Ok(M::get::<u8>(folio, order_byte)? as u64)
    } else {
        Ok(0)
    }
}
