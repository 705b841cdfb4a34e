//! Shared helpers for the integration tests: deterministic data and awkward I/O adapters.
#![allow(dead_code)]

use std::io::{self, Read, Write};
use std::path::PathBuf;

use nc_codec::{Config, NcReader, NcWriter};

/// xorshift64*: deterministic test data without a dependency.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// English-like text: words drawn from a small vocabulary, so models have something to learn.
pub fn text(n: usize, seed: u64) -> Vec<u8> {
    const WORDS: &[&str] = &[
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "lazy",
        "dog",
        "and",
        "a",
        "stream",
        "of",
        "bytes",
        "is",
        "predicted",
        "coded",
        "block",
        "by",
        "model",
        "then",
        "written",
        "to",
        "disk",
        "while",
        "readers",
        "seek",
        "verify",
        "every",
        "checksum",
        "\n",
    ];
    let mut rng = Rng(seed | 1);
    let mut out = Vec::with_capacity(n + 16);
    while out.len() < n {
        out.extend_from_slice(WORDS[rng.below(WORDS.len() as u64) as usize].as_bytes());
        out.push(if rng.below(9) == 0 { b'.' } else { b' ' });
    }
    out.truncate(n);
    out
}

/// A small config with tiny blocks so tests see many blocks quickly.
pub fn small_config(block: u32) -> Config {
    Config::new().block_size(block).lanes(4).threads(2)
}

pub fn compress(data: &[u8], config: &Config) -> Vec<u8> {
    let mut w = NcWriter::with_config(Vec::new(), config).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap()
}

pub fn decompress(stream: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    NcReader::new(stream).read_to_end(&mut out)?;
    Ok(out)
}

/// Decompresses and returns the error, which must exist.
pub fn decompress_err(stream: &[u8]) -> io::Error {
    match decompress(stream) {
        Ok(out) => panic!("expected an error, decoded {} bytes", out.len()),
        Err(e) => e,
    }
}

/// The bench corpus beside the checkout, or `None` on a bare clone without it, where tests
/// over it are skipped (with a note) unless `NC_REQUIRE_CORPUS` is set, as `.ci/run` sets
/// it: there a missing corpus fails them.
pub fn bench_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/bench");
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("NC_REQUIRE_CORPUS").is_none(),
        "NC_REQUIRE_CORPUS is set but the bench corpus is not at {}",
        dir.display()
    );
    eprintln!("skipped: no bench corpus at {}", dir.display());
    None
}

/// A reader that hands out at most `chunk` bytes per call and fails every other call with
/// `WouldBlock` or `Interrupted` when asked to, like a non-blocking socket.
pub struct Awkward<R> {
    pub inner: R,
    pub chunk: usize,
    pub hiccups: bool,
    pub calls: u64,
}

impl<R> Awkward<R> {
    pub fn new(inner: R, chunk: usize, hiccups: bool) -> Self {
        Awkward {
            inner,
            chunk,
            hiccups,
            calls: 0,
        }
    }

    fn hiccup(&mut self) -> Option<io::Error> {
        self.calls += 1;
        if !self.hiccups {
            return None;
        }
        match self.calls % 3 {
            1 => Some(io::ErrorKind::WouldBlock.into()),
            2 => Some(io::ErrorKind::Interrupted.into()),
            _ => None,
        }
    }
}

impl<R: Read> Read for Awkward<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.hiccup() {
            return Err(e);
        }
        let n = buf.len().min(self.chunk);
        self.inner.read(&mut buf[..n])
    }
}

impl<W: Write> Write for Awkward<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(e) = self.hiccup() {
            return Err(e);
        }
        let n = buf.len().min(self.chunk);
        self.inner.write(&buf[..n])
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads everything, retrying `WouldBlock`, as an event loop would.
pub fn read_all_retrying<R: Read>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = [0u8; 777];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
}

/// Writes everything, retrying `WouldBlock`.
pub fn write_all_retrying<W: Write>(w: &mut W, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match w.write(data) {
            Ok(n) => data = &data[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
