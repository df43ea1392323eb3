//! The stream format of snappy-java's `SnappyOutputStream`, which ZooKeeper's
//! `SnapStream` uses for `snapshot.<zxid>.snappy`: a 16-byte header (magic
//! `0x82 "SNAPPY" 0x00`, version 1, compatible version 1, both big-endian
//! ints), then blocks of at most 32 KB input, each as a big-endian int length
//! and raw snappy bytes. No checksums (the snapshot's own Adler-32 covers the
//! uncompressed bytes). A reader also accepts the header again between blocks
//! (snappy-java concatenates streams that way).

use std::io::{self, Write};

pub const MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const HEADER_LEN: usize = 16;
const BLOCK_SIZE: usize = 32 * 1024;
/// The most a snappy block can expand: its densest element, a 3-byte copy,
/// yields 64 bytes, so no block decompresses to more than 22 times its size.
const MAX_EXPANSION: usize = 22;

fn header() -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(&MAGIC);
    h[8..12].copy_from_slice(&1i32.to_be_bytes());
    h[12..16].copy_from_slice(&1i32.to_be_bytes());
    h
}

/// Compresses into snappy-java's stream format.
pub struct SnappyWriter<W: Write> {
    inner: W,
    block: Vec<u8>,
    encoder: snap::raw::Encoder,
    header_written: bool,
}

impl<W: Write> SnappyWriter<W> {
    pub fn new(inner: W) -> Self {
        SnappyWriter {
            inner,
            block: Vec::with_capacity(BLOCK_SIZE),
            encoder: snap::raw::Encoder::new(),
            header_written: false,
        }
    }

    fn write_block(&mut self) -> io::Result<()> {
        if !self.header_written {
            self.inner.write_all(&header())?;
            self.header_written = true;
        }
        if self.block.is_empty() {
            return Ok(());
        }
        let c = self
            .encoder
            .compress_vec(&self.block)
            .map_err(io::Error::other)?;
        self.inner.write_all(&(c.len() as i32).to_be_bytes())?;
        self.inner.write_all(&c)?;
        self.block.clear();
        Ok(())
    }

    /// Writes the last block and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_block()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SnappyWriter<W> {
    fn write(&mut self, mut buf: &[u8]) -> io::Result<usize> {
        let n = buf.len();
        while !buf.is_empty() {
            let room = BLOCK_SIZE - self.block.len();
            let take = room.min(buf.len());
            self.block.extend_from_slice(&buf[..take]);
            buf = &buf[take..];
            if self.block.len() == BLOCK_SIZE {
                self.write_block()?;
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Decompresses a whole snappy-java stream.
pub fn decode(data: &[u8]) -> io::Result<Vec<u8>> {
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("snappy stream: {m}"));
    if data.len() < HEADER_LEN || data[..8] != MAGIC {
        return Err(bad("missing snappy-java header"));
    }
    let mut out = Vec::with_capacity(data.len() * 3);
    let mut dec = snap::raw::Decoder::new();
    let mut pos = HEADER_LEN;
    while pos < data.len() {
        if data.len() - pos >= HEADER_LEN && data[pos..pos + 8] == MAGIC {
            pos += HEADER_LEN;
            continue;
        }
        if data.len() - pos < 4 {
            return Err(bad("truncated block length"));
        }
        let len = i32::from_be_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        pos += 4;
        if len < 0 || len as usize > data.len() - pos {
            return Err(bad("truncated block"));
        }
        let block = &data[pos..pos + len as usize];
        pos += len as usize;
        let n = snap::raw::decompress_len(block).map_err(io::Error::other)?;
        // The length is the block's own claim: check it against what the
        // block can hold before allocating it (a 5-byte block may claim 4 GB).
        if n > block.len().saturating_mul(MAX_EXPANSION) {
            return Err(bad(&format!(
                "block of {} bytes claims {n} uncompressed bytes",
                block.len()
            )));
        }
        let start = out.len();
        out.resize(start + n, 0);
        dec.decompress(block, &mut out[start..])
            .map_err(io::Error::other)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_blocks() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut w = SnappyWriter::new(Vec::new());
        w.write_all(&data).unwrap_or_default();
        let out = w.finish().unwrap_or_default();
        assert_eq!(&out[..8], &MAGIC);
        assert_eq!(decode(&out).unwrap_or_default(), data);
    }

    #[test]
    fn block_claiming_more_than_it_can_hold_is_an_error() {
        // Header, then a 5-byte block whose varint claims 0xffffffff bytes.
        let mut stream = header().to_vec();
        stream.extend_from_slice(&[0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff, 0x0f]);
        let err = decode(&stream).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("snappy stream: block of 5 bytes claims 4294967295 uncompressed bytes")
        );
    }

    #[test]
    fn densest_block_still_decodes() {
        // Zeros compress to back-references, about as dense as snappy gets.
        let data = vec![0u8; BLOCK_SIZE];
        let mut w = SnappyWriter::new(Vec::new());
        w.write_all(&data).unwrap_or_default();
        let out = w.finish().unwrap_or_default();
        assert_eq!(decode(&out).unwrap_or_default(), data);
    }
}
