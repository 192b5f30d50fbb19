//! Tar streams written block by block, so entries can carry what the tar crate's builder
//! refuses to write (`..`, absolute paths, PAX overrides, GNU long names): the material of
//! hostile archives.

/// One entry of a raw tar stream.
#[derive(Clone, Debug)]
pub struct RawEntry {
    pub name: Vec<u8>,
    pub kind: tar::EntryType,
    pub link: Vec<u8>,
    pub data: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// Device numbers for character and block devices.
    pub device: (u32, u32),
    /// PAX records (`path`, `linkpath`, `SCHILY.xattr.…`) sent in an extended header first.
    pub pax: Vec<(String, Vec<u8>)>,
}

impl RawEntry {
    fn new(name: &str, kind: tar::EntryType) -> RawEntry {
        RawEntry {
            name: name.as_bytes().to_vec(),
            kind,
            link: Vec::new(),
            data: Vec::new(),
            mode: 0o644,
            uid: 0,
            gid: 0,
            device: (0, 0),
            pax: Vec::new(),
        }
    }

    /// A regular file.
    pub fn file(name: &str, data: &[u8]) -> RawEntry {
        RawEntry { data: data.to_vec(), ..RawEntry::new(name, tar::EntryType::Regular) }
    }

    /// A directory.
    pub fn dir(name: &str) -> RawEntry {
        RawEntry { mode: 0o755, ..RawEntry::new(name, tar::EntryType::Directory) }
    }

    /// A symlink to `target`.
    pub fn symlink(name: &str, target: &str) -> RawEntry {
        RawEntry { link: target.as_bytes().to_vec(), mode: 0o777, ..RawEntry::new(name, tar::EntryType::Symlink) }
    }

    /// A hard link to `target`.
    pub fn hardlink(name: &str, target: &str) -> RawEntry {
        RawEntry { link: target.as_bytes().to_vec(), ..RawEntry::new(name, tar::EntryType::Link) }
    }

    /// A character or block device `major:minor`.
    pub fn device(name: &str, kind: tar::EntryType, major: u32, minor: u32) -> RawEntry {
        RawEntry { mode: 0o666, device: (major, minor), ..RawEntry::new(name, kind) }
    }

    /// The same entry with `mode`.
    pub fn mode(self, mode: u32) -> RawEntry {
        RawEntry { mode, ..self }
    }

    /// The same entry preceded by a PAX record `key=value`.
    pub fn pax(mut self, key: &str, value: &[u8]) -> RawEntry {
        self.pax.push((key.to_string(), value.to_vec()));
        self
    }
}

/// A ustar header for `name` (at most 100 bytes) of type `kind`.
fn header(name: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_entry_type(kind);
    h.set_mode(0o644);
    h.set_mtime(crate::images::MTIME);
    h.set_size(size);
    h
}

fn push_block_padded(out: &mut Vec<u8>, data: &[u8]) {
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn push_header(out: &mut Vec<u8>, mut h: tar::Header) {
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
}

/// A PAX extended header's records: each `"<len> <key>=<value>\n"`, len counting itself.
fn pax_records(records: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, value) in records {
        let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = rest + 1;
        while len != rest + len.to_string().len() {
            len = rest + len.to_string().len();
        }
        out.extend_from_slice(format!("{len} {key}=").as_bytes());
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// The tar stream of `entries`, with the end-of-archive blocks.
pub fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        if !e.pax.is_empty() {
            let records = pax_records(&e.pax);
            push_header(&mut out, header(b"PaxHeader", tar::EntryType::XHeader, records.len() as u64));
            push_block_padded(&mut out, &records);
        }
        let name: &[u8] = if e.name.len() > 100 {
            // GNU long name: the real name rides in a `././@LongLink` entry before it.
            let mut long = e.name.clone();
            long.push(0);
            let mut h = tar::Header::new_gnu();
            h.as_gnu_mut().unwrap().name[..13].copy_from_slice(b"././@LongLink");
            h.set_entry_type(tar::EntryType::GNULongName);
            h.set_size(long.len() as u64);
            h.set_mode(0o644);
            push_header(&mut out, h);
            push_block_padded(&mut out, &long);
            &e.name[..100]
        } else {
            &e.name
        };
        let mut h = header(name, e.kind, e.data.len() as u64);
        h.as_old_mut().linkname[..e.link.len()].copy_from_slice(&e.link);
        h.set_mode(e.mode);
        h.set_uid(e.uid);
        h.set_gid(e.gid);
        if matches!(e.kind, tar::EntryType::Char | tar::EntryType::Block) {
            h.set_device_major(e.device.0).expect("ustar device major");
            h.set_device_minor(e.device.1).expect("ustar device minor");
        }
        push_header(&mut out, h);
        push_block_padded(&mut out, &e.data);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// An archive of plain files (names as given, not checked), as `docker save` writes them.
pub fn files_tar(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let entries: Vec<RawEntry> = files.iter().map(|(n, d)| RawEntry::file(n, d)).collect();
    raw_tar(&entries)
}

/// Reads back a tar stream's `(name, data)` of regular files.
pub fn tar_files(tar_bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = tar::Archive::new(tar_bytes);
    let mut out = Vec::new();
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("tar entry");
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let name = entry.path().expect("entry path").display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("entry data");
        out.push((name, data));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn raw_entries_read_back_as_written() {
        let long = format!("{}/file", "d".repeat(120));
        let bytes = raw_tar(&[
            RawEntry::file("../up", b"x"),
            RawEntry::file("plain", b"p").pax("path", b"/abs/olute"),
            RawEntry::file(&long, b"long"),
            RawEntry::device("dev/sda", tar::EntryType::Block, 8, 0),
        ]);
        let mut archive = tar::Archive::new(&bytes[..]);
        let mut seen = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            let dev = entry.header().device_major().ok().flatten();
            seen.push((entry.path().unwrap().display().to_string(), data, dev));
        }
        assert_eq!(seen[0].0, "../up");
        assert_eq!(seen[1].0, "/abs/olute");
        assert_eq!((seen[2].0.as_str(), seen[2].1.as_slice()), (long.as_str(), &b"long"[..]));
        assert_eq!((seen[3].0.as_str(), seen[3].2), ("dev/sda", Some(8)));
    }
}
