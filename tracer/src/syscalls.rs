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
    use super::name;

    #[test]
    fn data_path_syscalls_by_number() {
        for (nr, n) in [
            (0, "read"),
            (1, "write"),
            (9, "mmap"),
            (11, "munmap"),
            (17, "pread64"),
            (18, "pwrite64"),
            (19, "readv"),
            (20, "writev"),
            (40, "sendfile"),
            (44, "sendto"),
            (45, "recvfrom"),
            (46, "sendmsg"),
            (47, "recvmsg"),
            (275, "splice"),
            (326, "copy_file_range"),
            (426, "io_uring_enter"),
        ] {
            assert_eq!(name(nr), n);
        }
        assert_eq!(name(100_000), "syscall_100000");
    }
}
