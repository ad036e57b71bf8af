//! The transfer methods: the ways a file's bytes can go to their destination, as the
//! model, the textbook and the workload all name them.

use serde::Serialize;

/// How the bytes move from the file to their destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// `read()` into a user buffer, then `write()` it to the socket.
    ReadWrite,
    /// `read()` into a user buffer, then `send()` it (the `sendto` syscall).
    ReadSend,
    /// `mmap()` the file, `write()` slices of the mapping to the socket.
    MmapWrite,
    /// `sendfile()` from the file to the socket.
    Sendfile,
    /// `sendfile()` to a socket whose device cannot gather (no scatter-gather): the
    /// article's middle stage, where the CPU copies the page cache into the socket buffer.
    /// A textbook method: live, it is `sendfile` with `--link veth-nosg`.
    SendfileNogather,
    /// `splice()` the file into a pipe, then the pipe into the socket.
    Splice,
    /// `read()` into a user buffer, `send(MSG_ZEROCOPY)`, wait for the completion.
    MsgZerocopy,
    /// io_uring: a READ linked to a SEND_ZC (or SEND) of the same buffer.
    IoUring,
    /// `copy_file_range()` from the file to another file (no socket).
    CopyFileRange,
}

impl Method {
    /// The methods a transfer can run (and watch can recognise).
    pub const ALL: [Self; 8] = [
        Self::ReadWrite,
        Self::ReadSend,
        Self::MmapWrite,
        Self::Sendfile,
        Self::Splice,
        Self::MsgZerocopy,
        Self::IoUring,
        Self::CopyFileRange,
    ];

    /// The lesson's methods, in the order that tells the article's story: read()+send()
    /// (four copies, four switches), sendfile() without gather (three copies, one by the
    /// CPU, two switches), sendfile() with gather (no CPU copy); then the others.
    pub const LESSON: [Self; 9] = [
        Self::ReadSend,
        Self::SendfileNogather,
        Self::Sendfile,
        Self::ReadWrite,
        Self::MmapWrite,
        Self::Splice,
        Self::MsgZerocopy,
        Self::IoUring,
        Self::CopyFileRange,
    ];

    /// The method of `list` called `name` (as `name()` spells it).
    pub fn from_name_in(list: &[Self], name: &str) -> Option<Self> {
        list.iter().copied().find(|m| m.name() == name)
    }

    /// The runnable method called `name` (one of [`Self::ALL`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::from_name_in(&Self::ALL, name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::ReadWrite => "read-write",
            Self::ReadSend => "read-send",
            Self::MmapWrite => "mmap-write",
            Self::Sendfile => "sendfile",
            Self::SendfileNogather => "sendfile-nogather",
            Self::Splice => "splice",
            Self::MsgZerocopy => "msg-zerocopy",
            Self::IoUring => "io-uring",
            Self::CopyFileRange => "copy-file-range",
        }
    }

    /// One plain-English line on what the sender does.
    pub fn describe(self) -> &'static str {
        match self {
            Self::ReadWrite => "read() into a user buffer, then write() it to the socket",
            Self::ReadSend => {
                "read() into a user buffer, then send() it to the socket (the sendto syscall)"
            }
            Self::MmapWrite => {
                "mmap() the whole file, then write() slices of the mapping to the socket"
            }
            Self::Sendfile => "sendfile() from the file straight to the socket",
            Self::SendfileNogather => {
                "sendfile() to a device that cannot gather: the CPU copies the page cache \
                 into the socket buffer"
            }
            Self::Splice => "splice() the file into a pipe, then splice() the pipe into the socket",
            Self::MsgZerocopy => {
                "read() into a user buffer, send() it with MSG_ZEROCOPY, then wait for the \
                 kernel's completion before reusing the buffer"
            }
            Self::IoUring => {
                "io_uring: a READ into a user buffer linked to a SEND_ZC (or SEND) of it, \
                 then wait for every completion"
            }
            Self::CopyFileRange => "copy_file_range() from the file into another file",
        }
    }
}
