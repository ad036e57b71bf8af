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
    pub const ALL: [Method; 8] = [
        Method::ReadWrite,
        Method::ReadSend,
        Method::MmapWrite,
        Method::Sendfile,
        Method::Splice,
        Method::MsgZerocopy,
        Method::IoUring,
        Method::CopyFileRange,
    ];

    /// The method called `name` (as `name()` spells it).
    pub fn from_name(name: &str) -> Option<Method> {
        Method::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::ReadWrite => "read-write",
            Method::ReadSend => "read-send",
            Method::MmapWrite => "mmap-write",
            Method::Sendfile => "sendfile",
            Method::Splice => "splice",
            Method::MsgZerocopy => "msg-zerocopy",
            Method::IoUring => "io-uring",
            Method::CopyFileRange => "copy-file-range",
        }
    }

    /// One plain-English line on what the sender does.
    pub fn describe(self) -> &'static str {
        match self {
            Method::ReadWrite => "read() into a user buffer, then write() it to the socket",
            Method::ReadSend => {
                "read() into a user buffer, then send() it to the socket (the sendto syscall)"
            }
            Method::MmapWrite => {
                "mmap() the whole file, then write() slices of the mapping to the socket"
            }
            Method::Sendfile => "sendfile() from the file straight to the socket",
            Method::Splice => {
                "splice() the file into a pipe, then splice() the pipe into the socket"
            }
            Method::MsgZerocopy => {
                "read() into a user buffer, send() it with MSG_ZEROCOPY, then wait for the \
                 kernel's completion before reusing the buffer"
            }
            Method::IoUring => {
                "io_uring: a READ into a user buffer linked to a SEND_ZC (or SEND) of it, \
                 then wait for every completion"
            }
            Method::CopyFileRange => "copy_file_range() from the file into another file",
        }
    }
}
