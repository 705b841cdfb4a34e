//! One-shot helpers over [`NcWriter`] and [`NcReader`], as flate2's and zstd's
//! `encode_all`/`decode_all` and `copy_encode`/`copy_decode`.

use std::io::{self, Read, Write};

use crate::config::Config;
use crate::read::NcReader;
use crate::write::NcWriter;

/// Compresses `data` into a new `.nc` stream with `config`.
///
/// ```
/// let config = nc_codec::Config::new().threads(1);
/// let packed = nc_codec::compress(b"one shot, one shot, one shot", &config)?;
/// assert_eq!(nc_codec::decompress(&packed, &config)?, b"one shot, one shot, one shot");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
/// `InvalidInput` for a configuration out of range, `OutOfMemory` past its memory limit.
pub fn compress(data: &[u8], config: &Config) -> io::Result<Vec<u8>> {
    let mut writer = NcWriter::with_config(Vec::with_capacity(data.len() / 3 + 64), config)?;
    writer.write_all(data)?;
    writer.finish()
}

/// Decompresses every `.nc` stream in `data` (one, or several back to back), checking each.
/// `config` gives the lanes, threads, memory limit and neural model to decode with.
///
/// # Errors
/// As [`NcReader`]: `InvalidData` for corrupt input, `UnexpectedEof` for truncated input,
/// `Unsupported` for an unknown version or model.
pub fn decompress(data: &[u8], config: &Config) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    NcReader::with_config(data, config)?.read_to_end(&mut out)?;
    Ok(out)
}

/// Compresses everything `source` yields into `destination` as one stream, and returns the
/// number of uncompressed bytes.
///
/// # Errors
/// The source's and destination's I/O errors, and [`compress`]'s.
pub fn copy_encode<R: Read, W: Write>(
    mut source: R,
    destination: W,
    config: &Config,
) -> io::Result<u64> {
    let mut writer = NcWriter::with_config(destination, config)?;
    let n = io::copy(&mut source, &mut writer)?;
    writer.finish()?;
    Ok(n)
}

/// Decompresses the stream(s) `source` yields into `destination`, and returns the number
/// of uncompressed bytes. Nothing unverified reaches `destination`: each block is checked
/// before its bytes are written, and the end of the stream is checked before this returns.
///
/// # Errors
/// The source's and destination's I/O errors, and [`decompress`]'s.
pub fn copy_decode<R: Read, W: Write>(
    source: R,
    mut destination: W,
    config: &Config,
) -> io::Result<u64> {
    let mut reader = NcReader::with_config(source, config)?;
    io::copy(&mut reader, &mut destination)
}
