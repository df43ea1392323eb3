//! Jute, ZooKeeper's binary record encoding: big-endian integers, `int`-length
//! prefixed strings and buffers (-1 for null), `int`-count prefixed vectors.
//! Follows `org.apache.jute.BinaryInputArchive` / `BinaryOutputArchive`.

use bytes::{BufMut, Bytes, BytesMut};

/// An error decoding jute bytes. Encoding cannot fail.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JuteError {
    #[error("unexpected end of record: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("negative or oversized length {len} at offset {offset}")]
    BadLength { offset: usize, len: i32 },
    #[error("string at offset {offset} is not valid UTF-8")]
    BadUtf8 { offset: usize },
    #[error("{0}")]
    Invalid(String),
}

/// Reads jute values from a byte buffer. Buffers are sliced out of the
/// underlying `Bytes` without copying.
pub struct Reader {
    buf: Bytes,
    pos: usize,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf, pos: 0 }
    }

    pub fn from_slice(buf: &[u8]) -> Self {
        Reader::new(Bytes::copy_from_slice(buf))
    }

    pub fn position(&self) -> usize {
        self.pos
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The bytes not yet read, without consuming them.
    pub fn rest(&self) -> Bytes {
        self.buf.slice(self.pos..)
    }

    fn take(&mut self, n: usize) -> Result<&[u8], JuteError> {
        if self.remaining() < n {
            return Err(JuteError::Truncated {
                offset: self.pos,
                needed: n - self.remaining(),
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn read_u8(&mut self) -> Result<u8, JuteError> {
        Ok(self.take(1)?[0])
    }

    pub fn read_bool(&mut self) -> Result<bool, JuteError> {
        Ok(self.read_u8()? != 0)
    }

    pub fn read_i32(&mut self) -> Result<i32, JuteError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn read_i64(&mut self) -> Result<i64, JuteError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// A length prefix: -1 means null, other negatives are errors.
    fn read_len(&mut self) -> Result<Option<usize>, JuteError> {
        let offset = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as usize > self.remaining() {
            return Err(JuteError::BadLength { offset, len });
        }
        Ok(Some(len as usize))
    }

    /// A buffer; `None` is jute's null (length -1).
    pub fn read_buffer(&mut self) -> Result<Option<Bytes>, JuteError> {
        match self.read_len()? {
            None => Ok(None),
            Some(n) => {
                let start = self.pos;
                self.pos += n;
                Ok(Some(self.buf.slice(start..start + n)))
            }
        }
    }

    /// A string; jute's null string reads as the empty string.
    pub fn read_string(&mut self) -> Result<String, JuteError> {
        let offset = self.pos;
        match self.read_len()? {
            None => Ok(String::new()),
            Some(n) => {
                let b = self.take(n)?;
                String::from_utf8(b.to_vec()).map_err(|_| JuteError::BadUtf8 { offset })
            }
        }
    }

    /// A string that keeps jute's null (length -1) as `None`.
    pub fn read_opt_string(&mut self) -> Result<Option<String>, JuteError> {
        let offset = self.pos;
        match self.read_len()? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n)?;
                String::from_utf8(b.to_vec())
                    .map(Some)
                    .map_err(|_| JuteError::BadUtf8 { offset })
            }
        }
    }

    /// A vector count; null (-1) reads as zero elements.
    pub fn read_vec_len(&mut self) -> Result<usize, JuteError> {
        let offset = self.pos;
        let len = self.read_i32()?;
        if len == -1 {
            return Ok(0);
        }
        // Every element takes at least one byte, which bounds a hostile count.
        if len < 0 || len as usize > self.remaining() {
            return Err(JuteError::BadLength { offset, len });
        }
        Ok(len as usize)
    }
}

/// Writes jute values into a growable buffer.
#[derive(Default)]
pub struct Writer {
    buf: BytesMut,
}

impl Writer {
    pub fn new() -> Self {
        Writer {
            buf: BytesMut::with_capacity(64),
        }
    }

    pub fn with_capacity(n: usize) -> Self {
        Writer {
            buf: BytesMut::with_capacity(n),
        }
    }

    /// A writer whose first four bytes are a length placeholder, filled in by
    /// [`Writer::finish_frame`].
    pub fn new_frame() -> Self {
        let mut w = Writer::with_capacity(64);
        w.buf.put_i32(0);
        w
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub fn write_u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    pub fn write_bool(&mut self, v: bool) {
        self.buf.put_u8(v as u8);
    }

    pub fn write_i32(&mut self, v: i32) {
        self.buf.put_i32(v);
    }

    pub fn write_i64(&mut self, v: i64) {
        self.buf.put_i64(v);
    }

    pub fn write_buffer(&mut self, v: Option<&[u8]>) {
        match v {
            None => self.buf.put_i32(-1),
            Some(b) => {
                self.buf.put_i32(b.len() as i32);
                self.buf.put_slice(b);
            }
        }
    }

    pub fn write_string(&mut self, v: &str) {
        self.buf.put_i32(v.len() as i32);
        self.buf.put_slice(v.as_bytes());
    }

    /// A string that may be null (written as length -1).
    pub fn write_opt_string(&mut self, v: Option<&str>) {
        match v {
            None => self.buf.put_i32(-1),
            Some(s) => self.write_string(s),
        }
    }

    pub fn write_vec_len(&mut self, n: usize) {
        self.buf.put_i32(n as i32);
    }

    pub fn write_raw(&mut self, b: &[u8]) {
        self.buf.put_slice(b);
    }

    pub fn into_bytes(self) -> Bytes {
        self.buf.freeze()
    }

    /// What has been written so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// Forgets what was written, keeping the buffer for more.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// Fills in the length placeholder written by [`Writer::new_frame`].
    pub fn finish_frame(mut self) -> Bytes {
        let n = (self.buf.len() - 4) as i32;
        self.buf[..4].copy_from_slice(&n.to_be_bytes());
        self.buf.freeze()
    }
}

/// A value with a jute encoding.
pub trait Jute: Sized {
    fn read(r: &mut Reader) -> Result<Self, JuteError>;
    fn write(&self, w: &mut Writer);

    /// Decodes a whole value from bytes (trailing bytes are ignored, as
    /// ZooKeeper does).
    fn from_bytes(b: &[u8]) -> Result<Self, JuteError> {
        Self::read(&mut Reader::from_slice(b))
    }

    fn to_bytes(&self) -> Bytes {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_bytes()
    }
}

impl Jute for i32 {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.read_i32()
    }
    fn write(&self, w: &mut Writer) {
        w.write_i32(*self)
    }
}

impl Jute for i64 {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.read_i64()
    }
    fn write(&self, w: &mut Writer) {
        w.write_i64(*self)
    }
}

impl Jute for bool {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.read_bool()
    }
    fn write(&self, w: &mut Writer) {
        w.write_bool(*self)
    }
}

impl Jute for String {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.read_string()
    }
    fn write(&self, w: &mut Writer) {
        w.write_string(self)
    }
}

/// A jute `ustring` that may be null; `None` is null.
impl Jute for Option<String> {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.read_opt_string()
    }
    fn write(&self, w: &mut Writer) {
        w.write_opt_string(self.as_deref())
    }
}

/// A jute `buffer`; `None` is null.
impl Jute for Option<Bytes> {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        r.read_buffer()
    }
    fn write(&self, w: &mut Writer) {
        w.write_buffer(self.as_deref())
    }
}

/// A jute `vector`; null reads as empty.
impl<T: Jute> Jute for Vec<T> {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        let n = r.read_vec_len()?;
        let mut v = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            v.push(T::read(r)?);
        }
        Ok(v)
    }
    fn write(&self, w: &mut Writer) {
        w.write_vec_len(self.len());
        for x in self {
            x.write(w);
        }
    }
}

/// Declares a jute record: a struct whose fields are encoded in order.
#[macro_export]
macro_rules! jute_record {
    ($(#[$m:meta])* $name:ident { $($(#[$fm:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name {
            $($(#[$fm])* pub $field: $ty,)*
        }

        impl $crate::jute::Jute for $name {
            #[allow(unused_variables)]
            fn read(r: &mut $crate::jute::Reader) -> Result<Self, $crate::jute::JuteError> {
                Ok($name {
                    $($field: <$ty as $crate::jute::Jute>::read(r)?,)*
                })
            }
            #[allow(unused_variables)]
            fn write(&self, w: &mut $crate::jute::Writer) {
                $(<$ty as $crate::jute::Jute>::write(&self.$field, w);)*
            }
        }
    };
}

/// A string as jute's `ToStringOutputArchive` (the text form of records that
/// `toString()` prints) writes it: a leading `'`, then the characters with
/// `\0`, `\n`, `\r`, `,`, `}` and `%` percent-escaped.
pub fn to_string_escaped(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\0' => out.push_str("%00"),
            '\n' => out.push_str("%0A"),
            '\r' => out.push_str("%0D"),
            ',' => out.push_str("%2C"),
            '}' => out.push_str("%7D"),
            '%' => out.push_str("%25"),
            c => out.push(c),
        }
    }
    out
}
