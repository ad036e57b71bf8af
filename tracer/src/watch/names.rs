//! Names for a transfer's ends, read from /proc when the transfer first appears: a file by
//! its path (the process's descriptors, each stat'ed to match the inode, then its
//! mappings), a TCP socket by its local and peer address (`/proc/PID/net/tcp` and `tcp6`,
//! by inode). What does not resolve (the process is gone, the file was closed, a socket of
//! another protocol) keeps its inode, with a note saying why.
//!
//! The strings are the kernel's (a path may hold any byte but NUL and `/`): they are
//! escaped where they are printed or drawn, never here.

use std::{
    collections::HashMap,
    fs,
    net::{Ipv4Addr, Ipv6Addr},
    path::{Path, PathBuf},
};

use serde::Serialize;

use crate::model::steps::Endpoint;

/// One end of a transfer as the reports name it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Name {
    /// `file`, `socket` or `user` (the application's memory).
    pub kind: &'static str,
    /// The inode (a socket's is its sockfs inode, as in `socket:[N]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ino: Option<u64>,
    /// How the reports show it: the path, the addresses, or the inode.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Why only the inode is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Name {
    /// The name the reports give an end before (or without) looking it up.
    pub fn unresolved(end: Endpoint, note: Option<String>) -> Self {
        let (kind, ino, name) = match end {
            Endpoint::File { ino } => ("file", Some(ino), format!("inode {ino}")),
            Endpoint::Socket { ino } => ("socket", Some(ino), format!("socket inode {ino}")),
            Endpoint::User => ("user", None, "user memory".to_string()),
        };
        Self {
            kind,
            ino,
            name,
            path: None,
            local: None,
            peer: None,
            note,
        }
    }

    fn file(ino: u64, path: String) -> Self {
        Self {
            name: path.clone(),
            path: Some(path),
            ..Self::unresolved(Endpoint::File { ino }, None)
        }
    }

    fn tcp(ino: u64, local: String, peer: String) -> Self {
        Self {
            name: format!("tcp {local} <-> {peer}"),
            local: Some(local),
            peer: Some(peer),
            ..Self::unresolved(Endpoint::Socket { ino }, None)
        }
    }
}

/// Looks names up under a /proc (the real one, or a made-up one in tests).
pub struct Resolver {
    proc_root: PathBuf,
}

impl Resolver {
    pub fn new(proc_root: &Path) -> Self {
        Self {
            proc_root: proc_root.to_path_buf(),
        }
    }

    /// The names of `ends`, ends of process `pid`'s transfers, read now (one pass over the
    /// process's descriptors and tables, whatever the number of ends).
    pub fn resolve(&self, pid: u32, ends: &[Endpoint]) -> Vec<Name> {
        let dir = self.proc_root.join(pid.to_string());
        if !dir.join("fd").is_dir() {
            let gone = format!("process {pid} is gone: only the inode is known");
            return ends
                .iter()
                .map(|e| match e {
                    Endpoint::User => Name::unresolved(*e, None),
                    _ => Name::unresolved(*e, Some(gone.clone())),
                })
                .collect();
        }
        let wants_files = ends.iter().any(|e| matches!(e, Endpoint::File { .. }));
        let wants_sockets = ends.iter().any(|e| matches!(e, Endpoint::Socket { .. }));
        let (files, sockets) = descriptors(&dir);
        // The mappings only when a file is not among the descriptors.
        let mapped = if wants_files
            && ends
                .iter()
                .any(|e| matches!(e, Endpoint::File { ino } if !files.contains_key(ino)))
        {
            mappings(&dir)
        } else {
            HashMap::new()
        };
        let tcp = if wants_sockets {
            tcp_table(&dir)
        } else {
            HashMap::new()
        };
        ends.iter()
            .map(|end| match *end {
                Endpoint::File { ino } => match files.get(&ino).or_else(|| mapped.get(&ino)) {
                    Some(path) => Name::file(ino, path.clone()),
                    None => Name::unresolved(
                        *end,
                        Some(format!(
                            "not open or mapped in process {pid} when the transfer was seen"
                        )),
                    ),
                },
                Endpoint::Socket { ino } => match tcp.get(&ino) {
                    Some((local, peer)) => Name::tcp(ino, local.clone(), peer.clone()),
                    None if sockets.contains(&ino) => Name::unresolved(
                        *end,
                        Some("not a TCP socket (no entry in /proc/net/tcp or tcp6)".into()),
                    ),
                    None => Name::unresolved(
                        *end,
                        Some(format!(
                            "not open in process {pid} when the transfer was seen"
                        )),
                    ),
                },
                Endpoint::User => Name::unresolved(*end, None),
            })
            .collect()
    }
}

/// The process's open files (inode -> path, by stat'ing each descriptor) and sockets.
fn descriptors(dir: &Path) -> (HashMap<u64, String>, Vec<u64>) {
    use std::os::unix::fs::MetadataExt as _;
    let mut files = HashMap::new();
    let mut sockets = Vec::new();
    let Ok(entries) = fs::read_dir(dir.join("fd")) else {
        return (files, sockets);
    };
    for entry in entries.flatten() {
        let Ok(target) = fs::read_link(entry.path()) else {
            continue;
        };
        let target = target.to_string_lossy().into_owned();
        if let Some(ino) = target
            .strip_prefix("socket:[")
            .and_then(|s| s.strip_suffix(']'))
            .and_then(|s| s.parse().ok())
        {
            sockets.push(ino);
        } else if target.starts_with('/')
            // The descriptor itself, not the path: the file may have been renamed,
            // deleted or replaced since it was opened.
            && let Ok(meta) = fs::metadata(entry.path())
            && meta.is_file()
        {
            files.entry(meta.ino()).or_insert(target);
        }
    }
    (files, sockets)
}

/// The files the process maps (inode -> path), from `/proc/PID/maps`: a file sent from a
/// mapping may be closed.
fn mappings(dir: &Path) -> HashMap<u64, String> {
    let mut out = HashMap::new();
    let Ok(maps) = fs::read_to_string(dir.join("maps")) else {
        return out;
    };
    for line in maps.lines() {
        // address perms offset dev inode path (the path may hold spaces).
        let mut fields = line.splitn(6, ' ');
        let (Some(ino), Some(path)) = (fields.nth(4), fields.next()) else {
            continue;
        };
        let path = path.trim_start();
        if let Ok(ino) = ino.parse::<u64>()
            && ino != 0
            && path.starts_with('/')
        {
            out.entry(ino).or_insert_with(|| path.to_string());
        }
    }
    out
}

/// TCP sockets of the process's network namespace: inode -> (local, peer).
fn tcp_table(dir: &Path) -> HashMap<u64, (String, String)> {
    let mut out = HashMap::new();
    for (file, v6) in [("net/tcp", false), ("net/tcp6", true)] {
        let Ok(text) = fs::read_to_string(dir.join(file)) else {
            continue;
        };
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(peer), Some(ino)) = (f.get(1), f.get(2), f.get(9)) else {
                continue;
            };
            let (Some(local), Some(peer), Ok(ino)) =
                (address(local, v6), address(peer, v6), ino.parse::<u64>())
            else {
                continue;
            };
            if ino != 0 {
                out.insert(ino, (local, peer));
            }
        }
    }
    out
}

/// `0100007F:1F90` (IPv4) or 32 hex digits and a port (IPv6) as the kernel prints them in
/// /proc/net/tcp: the address as 32-bit words in the machine's byte order, the port in
/// host order.
fn address(text: &str, v6: bool) -> Option<String> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let w = u32::from_str_radix(addr.get(i * 8..i * 8 + 8)?, 16).ok()?;
        Some(w.to_ne_bytes())
    };
    if !v6 {
        (addr.len() == 8).then_some(())?;
        return Some(format!("{}:{port}", Ipv4Addr::from(word(0)?)));
    }
    (addr.len() == 32).then_some(())?;
    let mut bytes = [0u8; 16];
    for i in 0..4 {
        bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
    }
    let ip = Ipv6Addr::from(bytes);
    Some(match ip.to_ipv4_mapped() {
        Some(v4) => format!("{v4}:{port}"),
        None => format!("[{ip}]:{port}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A made-up /proc with one process, in a fresh directory removed at the end.
    struct FakeProc(PathBuf);

    impl FakeProc {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!("tracer-names-{tag}-{}", std::process::id()));
            drop(fs::remove_dir_all(&p));
            fs::create_dir_all(p.join("42/fd")).unwrap();
            fs::create_dir_all(p.join("42/net")).unwrap();
            Self(p)
        }
    }

    impl Drop for FakeProc {
        fn drop(&mut self) {
            drop(fs::remove_dir_all(&self.0));
        }
    }

    #[test]
    fn kernel_addresses_read_in_machine_order() {
        assert_eq!(
            address("0100007F:1F90", false).as_deref(),
            Some("127.0.0.1:8080")
        );
        // ::1 and an IPv4-mapped address, as /proc/net/tcp6 prints them on x86.
        assert_eq!(
            address("00000000000000000000000001000000:0050", true).as_deref(),
            Some("[::1]:80")
        );
        assert_eq!(
            address("0000000000000000FFFF00000100007F:1F90", true).as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(address("zz:1", false), None);
        assert_eq!(address("0100007F", false), None);
    }

    #[test]
    fn files_by_their_descriptors_or_mappings_sockets_by_the_tcp_table() {
        use std::os::unix::fs::MetadataExt as _;
        let p = FakeProc::new("resolve");
        let data = p.0.join("a file");
        fs::write(&data, b"x").unwrap();
        let ino = fs::metadata(&data).unwrap().ino();
        let fd = p.0.join("42/fd");
        std::os::unix::fs::symlink(&data, fd.join("3")).unwrap();
        std::os::unix::fs::symlink("socket:[5001]", fd.join("4")).unwrap();
        std::os::unix::fs::symlink("socket:[5002]", fd.join("5")).unwrap();
        std::os::unix::fs::symlink("pipe:[7]", fd.join("6")).unwrap();
        fs::write(
            p.0.join("42/net/tcp"),
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   \
             0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 5001 1 0000000000000000 20 4 30 10 -1\n",
        )
        .unwrap();
        fs::write(
            p.0.join("42/maps"),
            "7f00-7f10 r--s 00000000 fe:01 777 /srv/a mapped file\n7f10-7f20 r--p 00000000 00:00 0 \n",
        )
        .unwrap();
        let names = Resolver::new(&p.0).resolve(
            42,
            &[
                Endpoint::File { ino },
                Endpoint::File { ino: 777 },
                Endpoint::File { ino: 1 },
                Endpoint::Socket { ino: 5001 },
                Endpoint::Socket { ino: 5002 },
                Endpoint::User,
            ],
        );
        let shown: Vec<&str> = names.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(
            shown,
            [
                data.to_str().unwrap(),
                "/srv/a mapped file",
                "inode 1",
                "tcp 127.0.0.1:8080 <-> 127.0.0.1:50000",
                "socket inode 5002",
                "user memory",
            ]
        );
        assert_eq!(names[0].path.as_deref(), data.to_str());
        assert_eq!(names[3].peer.as_deref(), Some("127.0.0.1:50000"));
        assert!(
            names[2]
                .note
                .as_deref()
                .unwrap()
                .contains("not open or mapped")
        );
        assert!(
            names[4]
                .note
                .as_deref()
                .unwrap()
                .contains("not a TCP socket")
        );
        assert_eq!(names[5].note, None);
        // The JSON leaves out what is not known.
        assert_eq!(
            serde_json::to_string(&names[4]).unwrap(),
            r#"{"kind":"socket","ino":5002,"name":"socket inode 5002","note":"not a TCP socket (no entry in /proc/net/tcp or tcp6)"}"#
        );
        // A process that is gone.
        let gone = Resolver::new(&p.0).resolve(43, &[Endpoint::File { ino }]);
        assert_eq!(gone[0].name, format!("inode {ino}"));
        assert!(
            gone[0]
                .note
                .as_deref()
                .unwrap()
                .contains("process 43 is gone")
        );
    }
}
