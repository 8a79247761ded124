//! Reading a snapshot as a stream: the hash is checked in one pass over the bytes and the
//! entries are parsed in another, one at a time, so neither a member installing a raft
//! snapshot nor a restore ever holds the whole file.

use std::io::{BufReader, Read};

use sha2::{Digest, Sha256};

use super::{Entry, SnapshotError, BOLT_MAGIC, END, HASH_LEN, MAGIC, PAGE, VERSION};

/// Buffer size of the passes over a file.
const BUF: usize = 256 * 1024;

/// How a snapshot of `len` bytes splits into body and hash, by etcd's rule: a body of
/// whole pages, then the hash or nothing.
fn body_len(len: u64) -> Result<(u64, bool), SnapshotError> {
    match (len % PAGE as u64) as usize {
        HASH_LEN => Ok((len - HASH_LEN as u64, true)),
        0 => Ok((len, false)),
        _ => Err(SnapshotError::InvalidDatabase),
    }
}

/// Checks the trailing SHA-256 of a snapshot of `len` bytes read from `input`.
pub fn verify_hash(input: impl Read, len: u64) -> Result<(), SnapshotError> {
    let (body, hashed) = body_len(len)?;
    if !hashed {
        return Err(SnapshotError::MissingHash);
    }
    let mut input = BufReader::with_capacity(BUF, input);
    let mut hash = Sha256::new();
    let copied = std::io::copy(&mut (&mut input).take(body), &mut HashWriter(&mut hash))?;
    let mut expected = [0u8; HASH_LEN];
    if copied != body || input.read_exact(&mut expected).is_err() {
        return Err(SnapshotError::InvalidDatabase);
    }
    let got = hash.finalize();
    if got.as_slice() != expected {
        return Err(SnapshotError::HashMismatch {
            expected: expected.to_vec(),
            got: got.to_vec(),
        });
    }
    Ok(())
}

struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The entries of a snapshot, parsed one at a time (the hash is not looked at; see
/// [`verify_hash`]).
pub struct Entries<R> {
    input: BufReader<R>,
    /// Body bytes not read yet.
    left: u64,
    done: bool,
}

impl<R: Read> Entries<R> {
    /// Starts reading a snapshot of `len` bytes; refuses what is not one of ours.
    pub fn new(input: R, len: u64) -> Result<Self, SnapshotError> {
        let (body, _) = body_len(len)?;
        let mut entries = Entries {
            input: BufReader::with_capacity(BUF, input),
            left: body,
            done: false,
        };
        let mut magic = [0u8; 16];
        entries.fill(&mut magic)?;
        if &magic != MAGIC {
            let mut next = [0u8; 4];
            let bolt = entries.fill(&mut next).is_ok() && next == BOLT_MAGIC;
            return Err(match bolt {
                true => SnapshotError::EtcdSnapshot("the file".into()),
                false => SnapshotError::InvalidDatabase,
            });
        }
        if entries.u32()? != VERSION {
            return Err(SnapshotError::InvalidDatabase);
        }
        Ok(entries)
    }

    fn fill(&mut self, buf: &mut [u8]) -> Result<(), SnapshotError> {
        if buf.len() as u64 > self.left {
            return Err(SnapshotError::InvalidDatabase);
        }
        self.input
            .read_exact(buf)
            .map_err(|_| SnapshotError::InvalidDatabase)?;
        self.left -= buf.len() as u64;
        Ok(())
    }

    fn u32(&mut self) -> Result<u32, SnapshotError> {
        let mut raw = [0u8; 4];
        self.fill(&mut raw)?;
        Ok(u32::from_be_bytes(raw))
    }

    fn part(&mut self, len: u32) -> Result<Vec<u8>, SnapshotError> {
        if len as u64 > self.left {
            return Err(SnapshotError::InvalidDatabase);
        }
        let mut part = vec![0; len as usize];
        self.fill(&mut part)?;
        Ok(part)
    }

    /// The next entry, or None after the last (once the padding was checked).
    fn next_entry(&mut self) -> Result<Option<Entry>, SnapshotError> {
        let klen = self.u32()?;
        if klen == END {
            let mut padding = (&mut self.input).take(self.left);
            let mut chunk = [0u8; 4096];
            loop {
                let n = padding.read(&mut chunk)?;
                if n == 0 {
                    break;
                }
                if chunk[..n].iter().any(|b| *b != 0) {
                    return Err(SnapshotError::InvalidDatabase);
                }
                self.left -= n as u64;
            }
            if self.left != 0 {
                return Err(SnapshotError::InvalidDatabase);
            }
            return Ok(None);
        }
        let key = self.part(klen)?;
        let vlen = self.u32()?;
        let value = self.part(vlen)?;
        Ok(Some((key, value)))
    }
}

impl<R: Read> Iterator for Entries<R> {
    type Item = Result<Entry, SnapshotError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_entry();
        self.done = !matches!(next, Ok(Some(_)));
        next.transpose()
    }
}
