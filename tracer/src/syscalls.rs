//! Syscall names for decoding `raw_syscalls` events.

use std::borrow::Cow;

use syscalls::x86_64::Sysno;

/// The last number named: open_tree_attr (6.15). The names of later syscalls
/// (file_getattr and file_setattr, 6.17) would change what traces and recordings print,
/// so they stay numbers until a change means to.
const LAST_NAMED: u32 = 467;
/// uretprobe (6.11) and uprobe (6.16) print as numbers, as they always have here.
const UNNAMED: [u32; 2] = [335, 336];

/// The x86_64 name of syscall `nr`, or `syscall_<nr>` for a number without one.
pub fn name(nr: u32) -> Cow<'static, str> {
    match known_name(nr) {
        Some(n) => Cow::Borrowed(n),
        None => Cow::Owned(format!("syscall_{nr}")),
    }
}

/// The number `sys_exit` reports for rt_sigreturn: the kernel reads it from the registers
/// after the call restored them from the signal frame, and `restore_sigcontext` sets
/// `orig_ax` to -1 there so that the interrupted syscall is not restarted.
pub const SIGRETURN_EXIT: u32 = u32::MAX;

/// The name of the syscall a `sys_exit` event with number `nr` returns from: as
/// [`name`], except -1, which only rt_sigreturn's return reports (a debugger that skips a
/// syscall also sets -1, but then nothing ran).
pub fn exit_name(nr: u32) -> Cow<'static, str> {
    match nr {
        SIGRETURN_EXIT => Cow::Borrowed("rt_sigreturn"),
        _ => name(nr),
    }
}

/// The name the tracer prints for `nr`, from the `syscalls` crate's x86_64 table.
fn known_name(nr: u32) -> Option<&'static str> {
    if nr > LAST_NAMED || UNNAMED.contains(&nr) {
        return None;
    }
    Sysno::new(nr as usize).map(|s| s.name())
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

    #[test]
    fn rt_sigreturn_returns_as_itself() {
        use super::{SIGRETURN_EXIT, exit_name};
        // Its return reports -1, the registers it restored having orig_ax = -1.
        assert_eq!(exit_name(SIGRETURN_EXIT), "rt_sigreturn");
        assert_eq!(name(libc::SYS_rt_sigreturn as u32), "rt_sigreturn");
        assert_eq!(exit_name(SENDFILE as u32), "sendfile");
        assert_eq!(exit_name(100_000), "syscall_100000");
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
            (PREADV, libc::SYS_preadv),
            (PWRITEV, libc::SYS_pwritev),
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

    /// The fingerprint of what the tracer printed for 0..=470 with its hand-written table
    /// (asm/unistd_64.h up to open_tree_attr; before the `syscalls` crate).
    const NAMES_FINGERPRINT: u64 = 0x00d9_42db_5a80_525c;

    /// FNV-1a over the names, one a line: a change to any name changes it.
    fn fingerprint(names: impl Iterator<Item = String>) -> u64 {
        names.fold(0xcbf2_9ce4_8422_2325, |h, n| {
            n.bytes()
                .chain([b'\n'])
                .fold(h, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
        })
    }

    #[test]
    fn every_number_prints_as_it_always_has() {
        assert_eq!(
            fingerprint((0..=470).map(|nr| name(nr).into_owned())),
            NAMES_FINGERPRINT
        );
        // The table had no names for these; the crate has.
        for nr in [335, 336, 468, 469] {
            assert_eq!(name(nr), format!("syscall_{nr}"));
        }
        assert_eq!(name(334), "rseq");
        assert_eq!(name(337), "syscall_337");
        assert_eq!(name(424), "pidfd_send_signal");
        assert_eq!(name(467), "open_tree_attr");
    }
}
