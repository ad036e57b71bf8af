//! Syscall names for decoding `raw_syscalls` events.

use std::borrow::Cow;

#[path = "syscalls_table.rs"]
mod table;

/// The x86_64 name of syscall `nr`, or `syscall_<nr>` for a number this table lacks.
pub fn name(nr: u32) -> Cow<'static, str> {
    match table::X86_64_NAMES.get(nr as usize) {
        Some(n) if !n.is_empty() => Cow::Borrowed(n),
        _ => Cow::Owned(format!("syscall_{nr}")),
    }
}

#[cfg(test)]
mod tests {
    use tracer_common::sysno::*;

    use super::name;

    #[test]
    fn data_path_syscalls_by_number() {
        for (nr, n) in [
            (READ, "read"),
            (WRITE, "write"),
            (CLOSE, "close"),
            (MMAP, "mmap"),
            (MUNMAP, "munmap"),
            (PREAD64, "pread64"),
            (PWRITE64, "pwrite64"),
            (READV, "readv"),
            (WRITEV, "writev"),
            (SENDFILE, "sendfile"),
            (SENDTO, "sendto"),
            (RECVFROM, "recvfrom"),
            (SENDMSG, "sendmsg"),
            (RECVMSG, "recvmsg"),
            (FADVISE64, "fadvise64"),
            (SPLICE, "splice"),
            (COPY_FILE_RANGE, "copy_file_range"),
            (IO_URING_ENTER, "io_uring_enter"),
        ] {
            assert_eq!(name(nr as u32), n);
        }
        assert_eq!(name(100_000), "syscall_100000");
    }

    /// The numbers shared with the kernel programs are the C library's.
    #[test]
    fn sysno_is_the_c_librarys() {
        for (ours, theirs) in [
            (READ, libc::SYS_read),
            (WRITE, libc::SYS_write),
            (CLOSE, libc::SYS_close),
            (MMAP, libc::SYS_mmap),
            (MUNMAP, libc::SYS_munmap),
            (PREAD64, libc::SYS_pread64),
            (PWRITE64, libc::SYS_pwrite64),
            (READV, libc::SYS_readv),
            (WRITEV, libc::SYS_writev),
            (SENDFILE, libc::SYS_sendfile),
            (SENDTO, libc::SYS_sendto),
            (RECVFROM, libc::SYS_recvfrom),
            (SENDMSG, libc::SYS_sendmsg),
            (RECVMSG, libc::SYS_recvmsg),
            (FADVISE64, libc::SYS_fadvise64),
            (SPLICE, libc::SYS_splice),
            (COPY_FILE_RANGE, libc::SYS_copy_file_range),
            (IO_URING_ENTER, libc::SYS_io_uring_enter),
        ] {
            assert_eq!(ours, theirs as u64);
        }
    }
}
