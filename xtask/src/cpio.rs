//! A minimal writer of the "newc" cpio format, the one the kernel unpacks as an initramfs
//! (Documentation/driver-api/early-userspace/buffer-format.rst).
//!
//! Written here rather than shelling out to `cpio` so that the archive's owners (root),
//! modes and device nodes do not depend on a staging directory on the host, and so the
//! archive is reproducible (every mtime is 0).

use std::{collections::BTreeMap, io::Write};

use anyhow::{Result, bail};

enum Entry {
    Dir,
    File { mode: u32, data: Vec<u8> },
    CharDev { mode: u32, major: u32, minor: u32 },
}

/// An archive being assembled: paths are relative to the root ("bin/busybox"); parents
/// are created as directories when missing.
#[derive(Default)]
pub(crate) struct Archive {
    // Sorted by path, so a directory always comes before what it holds ("bin" sorts
    // before "bin/busybox"), as the kernel's unpacker needs.
    entries: BTreeMap<String, Entry>,
}

impl Archive {
    pub(crate) fn dir(&mut self, path: &str) -> Result<()> {
        let path = normalize(path)?;
        self.parents(&path)?;
        match self.entries.get(&path) {
            None | Some(Entry::Dir) => {
                self.entries.insert(path, Entry::Dir);
                Ok(())
            }
            Some(_) => bail!("cpio: {path} is already in the archive as a non-directory"),
        }
    }

    pub(crate) fn file(&mut self, path: &str, mode: u32, data: Vec<u8>) -> Result<()> {
        self.leaf(path, Entry::File { mode, data })
    }

    pub(crate) fn char_dev(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> Result<()> {
        self.leaf(path, Entry::CharDev { mode, major, minor })
    }

    /// How many entries (files, directories, devices) the archive holds.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(crate) fn contains(&self, path: &str) -> bool {
        normalize(path).is_ok_and(|p| self.entries.contains_key(&p))
    }

    fn leaf(&mut self, path: &str, entry: Entry) -> Result<()> {
        let path = normalize(path)?;
        self.parents(&path)?;
        if matches!(self.entries.get(&path), Some(Entry::Dir)) {
            bail!("cpio: {path} is already in the archive as a directory");
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    fn parents(&mut self, path: &str) -> Result<()> {
        let mut at = 0;
        while let Some(i) = path[at..].find('/') {
            let parent = &path[..at + i];
            match self.entries.get(parent) {
                None => {
                    self.entries.insert(parent.to_string(), Entry::Dir);
                }
                Some(Entry::Dir) => {}
                Some(_) => bail!("cpio: {parent} (a parent of {path}) is not a directory"),
            }
            at += i + 1;
        }
        Ok(())
    }

    /// The archive in newc format, with its trailer.
    pub(crate) fn write(&self, out: &mut impl Write) -> Result<()> {
        let mut w = Writer { out, written: 0 };
        for (ino, (path, entry)) in (1u32..).zip(&self.entries) {
            let (mode, nlink, data, rdev): (u32, u32, &[u8], (u32, u32)) = match entry {
                Entry::Dir => (0o040_755, 2, &[], (0, 0)),
                Entry::File { mode, data } => (0o100_000 | mode, 1, data, (0, 0)),
                Entry::CharDev { mode, major, minor } => {
                    (0o020_000 | mode, 1, &[], (*major, *minor))
                }
            };
            w.entry(ino, mode, nlink, rdev, path, data)?;
        }
        w.entry(0, 0, 1, (0, 0), "TRAILER!!!", &[])?;
        Ok(())
    }
}

fn normalize(path: &str) -> Result<String> {
    let p = path.trim_start_matches('/').trim_end_matches('/');
    if p.is_empty() || p.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        bail!("cpio: bad archive path {path:?}");
    }
    Ok(p.to_string())
}

struct Writer<'a, W: Write> {
    out: &'a mut W,
    written: usize,
}

impl<W: Write> Writer<'_, W> {
    fn entry(
        &mut self,
        ino: u32,
        mode: u32,
        nlink: u32,
        rdev: (u32, u32),
        name: &str,
        data: &[u8],
    ) -> Result<()> {
        let Ok(size) = u32::try_from(data.len()) else {
            bail!("cpio: {name} is too large for the newc format");
        };
        // ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor
        // namesize check; uid, gid, mtime, dev and check are 0.
        let header = format!(
            "070701{ino:08x}{mode:08x}{:08x}{:08x}{nlink:08x}{:08x}{size:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            0,
            0,
            0,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() + 1,
            0
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes)?;
        self.written += bytes.len();
        Ok(())
    }

    /// Headers and file data start on 4-byte boundaries.
    fn pad(&mut self) -> Result<()> {
        let n = (4 - self.written % 4) % 4;
        self.put(&[0; 3][..n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_first_and_aligned() {
        let mut a = Archive::default();
        a.file("bin/sh", 0o755, b"abc".to_vec()).unwrap();
        a.char_dev("/sbin/console", 0o600, 5, 1).unwrap();
        let mut out = Vec::new();
        a.write(&mut out).unwrap();
        assert_eq!(out.len() % 4, 0);
        let text = String::from_utf8_lossy(&out);
        let order: Vec<usize> = [
            "bin\0",
            "bin/sh\0",
            "sbin\0",
            "sbin/console\0",
            "TRAILER!!!\0",
        ]
        .iter()
        .map(|n| text.find(n).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        // The first header: a directory, two links, name "bin" + NUL.
        assert!(text.starts_with("07070100000001000041ed"));
    }

    #[test]
    fn refuses_a_file_over_a_directory() {
        let mut a = Archive::default();
        a.file("lib/x", 0o644, vec![]).unwrap();
        assert!(a.file("lib", 0o644, vec![]).is_err());
        assert!(a.file("../etc", 0o644, vec![]).is_err());
    }
}
