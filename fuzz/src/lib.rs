//! The fuzz targets' bodies, as plain functions so `cargo test` in the main crate can replay
//! committed crashers (`fuzz/regressions/<target>/*`) without libFuzzer.
//!
//! Every target asserts the codec's promises: round trips are exact, bad input ends in an
//! error of the right kind (never a panic, a hang or wrong bytes).

use std::io::{self, Cursor, ErrorKind, Read, Seek, SeekFrom, Write};

use nc_codec::container::{Header, HEADER_PREFIX_LEN, MAX_HEADER_LEN};
use nc_codec::quantizer::{FreqTable, Quantizer};
use nc_codec::range_coder::{RangeDecoder, RangeEncoder};
use nc_codec::{Config, NcReader, NcWriter};

/// Splits fuzz input into a few parameter bytes and the rest.
fn take<const N: usize>(data: &[u8]) -> ([u8; N], &[u8]) {
    let mut head = [0u8; N];
    let n = N.min(data.len());
    head[..n].copy_from_slice(&data[..n]);
    (head, &data[n..])
}

fn config_from(p: u8) -> Config {
    // Small blocks so short inputs span several; few lanes and threads to stay fast.
    Config::new()
        .block_size(256 << (p % 4))
        .lanes(1 + usize::from(p >> 4) % 4)
        .threads(1 + usize::from(p >> 6) % 2)
}

/// Data, block size and write chunking (with flushes) round-trip exactly, and every read
/// chunking and a seek read them back.
pub fn roundtrip(data: &[u8]) {
    let ([p, chunk, flush_every, read_chunk], payload) = take::<4>(data);
    let config = config_from(p);
    let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
    let chunk = usize::from(chunk) + 1;
    for (i, part) in payload.chunks(chunk).enumerate() {
        w.write_all(part).unwrap();
        if flush_every != 0 && i % usize::from(flush_every) == 0 {
            w.flush().unwrap();
        }
    }
    let packed = w.finish().unwrap();

    let mut r = NcReader::with_config(&packed[..], &config).unwrap();
    let mut out = Vec::new();
    let mut buf = vec![0u8; usize::from(read_chunk) + 1];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    assert_eq!(out, payload);

    if !payload.is_empty() {
        let at = u64::from(chunk as u32 * 31) % payload.len() as u64;
        let mut r = NcReader::new(Cursor::new(&packed[..]));
        r.seek(SeekFrom::Start(at)).unwrap();
        let mut tail = Vec::new();
        r.read_to_end(&mut tail).unwrap();
        assert_eq!(tail, &payload[at as usize..]);
    }
}

/// Checks that an error has one of the kinds bad input may produce.
fn expect_data_error(e: &io::Error) {
    assert!(
        matches!(
            e.kind(),
            ErrorKind::InvalidData | ErrorKind::UnexpectedEof | ErrorKind::Unsupported
        ),
        "unexpected error kind: {e:?}"
    );
}

/// Decodes arbitrary bytes; if they decode, decoding must be repeatable and a seek must
/// agree with the sequential read.
fn decode_any(stream: &[u8]) {
    let mut out = Vec::new();
    match NcReader::new(stream).read_to_end(&mut out) {
        Ok(_) => {
            let mut again = Vec::new();
            NcReader::new(Cursor::new(stream))
                .read_to_end(&mut again)
                .unwrap();
            assert_eq!(out, again);
        }
        Err(e) => expect_data_error(&e),
    }
    let mut r = NcReader::new(Cursor::new(stream));
    match r.seek(SeekFrom::Start(out.len() as u64 / 2)) {
        Ok(_) => match r.read_to_end(&mut Vec::new()) {
            Ok(_) => {}
            Err(e) => expect_data_error(&e),
        },
        Err(e) => expect_data_error(&e),
    }
}

/// Arbitrary bytes into the reader.
pub fn decode_raw(data: &[u8]) {
    decode_any(data);
}

/// Arbitrary bytes behind a valid header, so the block and trailer parsers are reached.
pub fn decode_behind_header(data: &[u8]) {
    let ([p], rest) = take::<1>(data);
    let header = config_from(p).header().unwrap();
    let mut stream = header.to_bytes();
    stream.extend_from_slice(rest);
    decode_any(&stream);
}

/// Header parsing: never panics, whatever the length; whatever parses re-serialises to the
/// same bytes.
pub fn header(data: &[u8]) {
    let (bytes, _) = take::<MAX_HEADER_LEN>(data);
    let mut prefix = [0u8; HEADER_PREFIX_LEN];
    prefix.copy_from_slice(&bytes[..HEADER_PREFIX_LEN]);
    if let Ok(len) = Header::size_from_prefix(&prefix) {
        if let Ok(h) = Header::parse(&bytes[..len]) {
            assert_eq!(h.to_bytes(), &bytes[..len]);
        }
    }
    let _ = Header::parse(&data[..data.len().min(2 * MAX_HEADER_LEN)]);
    let _ = Header::read_from(&mut &data[..]);
}

/// The range coder alone with arbitrary frequency tables and symbols.
pub fn range_coder(data: &[u8]) {
    let ([bits, n_tables], rest) = take::<2>(data);
    let bits = 10 + u32::from(bits) % 7;
    let n_tables = usize::from(n_tables % 4) + 1;
    let quantizer = Quantizer::new(bits);
    let mut tables = Vec::new();
    let mut rest = rest;
    for _ in 0..n_tables {
        let mut weights = [0u32; 256];
        for (i, w) in weights.iter_mut().enumerate() {
            let b = rest.get(i % rest.len().max(1)).copied().unwrap_or(0);
            *w = u32::from(b).pow(u32::from(b % 4));
        }
        rest = rest.get(64..).unwrap_or(&[]);
        let mut table = FreqTable::new(bits);
        // Nibble tables (16 symbols) as well as byte tables.
        let n = if weights[0] & 1 == 1 { 16 } else { 256 };
        quantizer.quantize(&weights[..n], &mut table);
        tables.push(table);
    }
    // Symbols under the tables, and every third one a binary decision (format version 9's
    // mixing predictor) whose probability and bit come from the data.
    let p1 = |i: usize, s: u8| -> u32 {
        let b = u32::from(rest.get(i % rest.len().max(1)).copied().unwrap_or(0));
        match b % 4 {
            0 => 1 + (b * 257 + u32::from(s)) % 65535,
            1 => 8,
            2 => 65528,
            _ => 32768,
        }
    };
    let symbols = data;
    let mut enc = RangeEncoder::new();
    let symbol = |i: usize, s: u8| (usize::from(s) % tables[i % n_tables].symbols()) as u8;
    for (i, &s) in symbols.iter().enumerate() {
        if i % 3 == 2 {
            enc.encode_bit(p1(i, s), s & 1 == 1);
        } else {
            enc.encode(&tables[i % n_tables], symbol(i, s));
        }
    }
    let coded = enc.finish();
    let mut dec = RangeDecoder::new(&coded);
    for (i, &s) in symbols.iter().enumerate() {
        if i % 3 == 2 {
            assert_eq!(dec.decode_bit(p1(i, s)), s & 1 == 1);
        } else {
            assert_eq!(dec.decode(&tables[i % n_tables]), symbol(i, s));
        }
    }
    assert!(dec.finished_cleanly());
    // And garbage never panics.
    let mut dec = RangeDecoder::new(data);
    for i in 0..data.len().min(4096) {
        if i % 2 == 1 {
            dec.decode_bit(p1(i, 0));
        } else {
            dec.decode(&tables[i % n_tables]);
        }
    }
}

/// Arbitrary sequences of write / flush / finish / get_mut on a sink that sometimes refuses.
pub fn writer_ops(data: &[u8]) {
    struct Flaky {
        out: Vec<u8>,
        calls: u32,
        refuse_every: u32,
    }
    impl Write for Flaky {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            if self.refuse_every > 1 && self.calls.is_multiple_of(self.refuse_every) {
                return Err(ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(97);
            self.out.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let ([p, refuse], ops) = take::<2>(data);
    let sink = Flaky {
        out: Vec::new(),
        calls: 0,
        refuse_every: u32::from(refuse % 8),
    };
    let mut w = NcWriter::with_config(sink, &config_from(p)).unwrap();
    let mut expected = Vec::new();
    let mut finished = false;
    for (i, &op) in ops.iter().enumerate() {
        match op % 8 {
            0 => {
                if w.flush().is_ok() && finished {
                    // flush after finish is allowed and changes nothing
                }
            }
            1 => {
                // Once finishing has begun (even if the sink said WouldBlock) the writer may
                // refuse new data; whatever it does take must still come out.
                let _ = w.try_finish();
                finished = true;
            }
            _ => {
                let len = usize::from(op) * 3;
                let chunk: Vec<u8> = (0..len).map(|j| (i + j) as u8 % 7 + b'a').collect();
                match w.write(&chunk) {
                    Ok(n) => expected.extend_from_slice(&chunk[..n]),
                    Err(e) => assert!(
                        finished || e.kind() == ErrorKind::WouldBlock,
                        "write failed: {e}"
                    ),
                }
            }
        }
    }
    while let Err(e) = w.try_finish() {
        assert_eq!(e.kind(), ErrorKind::WouldBlock, "finish failed: {e}");
    }
    let packed = w.into_inner().out;
    let mut out = Vec::new();
    NcReader::new(&packed[..]).read_to_end(&mut out).unwrap();
    assert_eq!(out, expected);
}

/// Little-endian `u32` from up to 4 bytes of `b` (missing bytes are 0).
fn le32(b: &[u8]) -> u32 {
    let mut x = [0u8; 4];
    let n = b.len().min(4);
    x[..n].copy_from_slice(&b[..n]);
    u32::from_le_bytes(x)
}

/// A complete stream of `header` and `blocks` (each block header with its payload, checks
/// computed), with the index and trailer they imply: structurally valid whatever the blocks
/// claim, so a decoder meets the claims themselves.
pub fn framed(
    header: &nc_codec::Header,
    blocks: &[(nc_codec::container::BlockHeader, Vec<u8>)],
    content_crc: u32,
) -> Vec<u8> {
    use nc_codec::container::{BlockHeader, BlockKind, IndexEntry, Tail, TAIL_LEN};
    let mut stream = header.to_bytes();
    let mut entries = Vec::new();
    for (i, (h, payload)) in blocks.iter().enumerate() {
        stream.extend_from_slice(&h.to_bytes(i as u64));
        stream.extend_from_slice(payload);
        entries.extend_from_slice(
            &IndexEntry {
                payload_len: h.payload_len,
                raw_len: h.raw_len,
            }
            .to_bytes(),
        );
    }
    let end = BlockHeader {
        kind: BlockKind::End,
        flags: 0,
        raw_len: 0,
        payload_len: (entries.len() + TAIL_LEN) as u32,
        crc: 0,
    };
    stream.extend_from_slice(&end.to_bytes(blocks.len() as u64));
    stream.extend_from_slice(&entries);
    let mut h = crc32fast::Hasher::new();
    h.update(&entries);
    let tail = Tail {
        block_count: blocks.len() as u64,
        content_crc,
        legacy_total_len: None,
    };
    stream.extend_from_slice(&tail.to_bytes(h));
    stream
}

/// A stream of `header` whose blocks are the given (raw length, payload) pairs, each
/// claimed as coded (CRC 0), framed by [`framed`]: a decoder meets the claims.
pub fn claimed(header: &nc_codec::Header, blocks: &[(u32, Vec<u8>)]) -> Vec<u8> {
    use nc_codec::container::{BlockHeader, BlockKind};
    let blocks: Vec<_> = blocks
        .iter()
        .map(|(raw_len, payload)| {
            let h = BlockHeader {
                kind: BlockKind::Coded,
                flags: 0,
                raw_len: *raw_len,
                payload_len: payload.len() as u32,
                crc: 0,
            };
            (h, payload.clone())
        })
        .collect();
    framed(header, &blocks, 0)
}

/// A structurally valid stream whose blocks claim what the input says: any predictor a
/// header can name (primed or not), block sizes up to 64 MiB, blocks of any kind and
/// lengths ([`framed`]). Under a 512 MiB memory limit the reader must refuse, fail or
/// decode, quickly and within the limit; never panic.
pub fn crafted_lengths(data: &[u8]) {
    use nc_codec::container::{BlockHeader, BlockKind};
    use nc_codec::{PredictorKind, Profile};
    let ([p, size_shift, count], mut rest) = take::<3>(data);
    let predictor = match p % 4 {
        0 => PredictorKind::Mix(Profile::Fast),
        1 => PredictorKind::Mix(Profile::Default),
        _ => PredictorKind::ContextStats,
    };
    let block_size = 256u32 << (size_shift % 19);
    let Ok(header) = Config::new()
        .predictor(predictor)
        .primer(p & 0x10 != 0)
        .block_size(block_size)
        .header()
    else {
        return;
    };
    let mut blocks = Vec::new();
    for _ in 0..count % 8 {
        let (spec, tail) = rest.split_at(rest.len().min(9));
        rest = tail;
        let stored = spec.first().is_some_and(|k| k & 3 == 1);
        let raw_len = le32(spec.get(1..5).unwrap_or(&[])) % block_size.max(1) + 1;
        let want = le32(spec.get(5..9).unwrap_or(&[])) as usize % 2048;
        let (bytes, tail) = rest.split_at(rest.len().min(want));
        rest = tail;
        let (kind, payload) = if stored {
            let n = raw_len.min(1 << 16) as usize;
            let fill = (0..n).map(|j| bytes.get(j % bytes.len().max(1)).copied().unwrap_or(0));
            (BlockKind::Stored, fill.collect::<Vec<u8>>())
        } else if spec.first().is_some_and(|k| k & 3 == 3) {
            (BlockKind::Light, bytes.to_vec())
        } else {
            (BlockKind::Coded, bytes.to_vec())
        };
        // Plain blocks need the neural expert, which these predictors lack: refused.
        let plain = spec.first().is_some_and(|k| k & 4 != 0);
        // The x86 filter's flag: its reverse scan runs on whatever the block decodes to.
        let x86 = spec.first().is_some_and(|k| k & 8 != 0);
        let h = BlockHeader {
            kind,
            flags: if plain {
                nc_codec::format::FLAG_NO_NEURAL
            } else {
                0
            } | if x86 { nc_codec::format::FLAG_X86 } else { 0 },
            raw_len,
            payload_len: if stored {
                raw_len
            } else {
                payload.len() as u32
            },
            crc: le32(spec.get(1..5).unwrap_or(&[])),
        };
        blocks.push((h, payload));
    }
    let stream = framed(&header, &blocks, le32(rest));
    let config = Config::new().threads(1).memlimit(512 << 20);
    let mut reader = NcReader::with_config(&stream[..], &config).unwrap();
    match reader.read_to_end(&mut Vec::new()) {
        Ok(_) => {}
        Err(e) if e.kind() == ErrorKind::OutOfMemory => {}
        Err(e) => expect_data_error(&e),
    }
}

/// Slices of a valid stream whose index and trailer were then altered (the trailer's CRC
/// recomputed, as a forger would): a seek and read either fail with a data error or return
/// exactly the original bytes at that offset.
pub fn slice(data: &[u8]) {
    use nc_codec::container::{Tail, INDEX_ENTRY_LEN, TAIL_LEN};
    let ([p, edits, at_lo, at_hi, len], payload) = take::<5>(data);
    let config = Config::new()
        .predictor(nc_codec::PredictorKind::ContextStats)
        .block_size(256 << (p % 3))
        .threads(1);
    let split = payload.len().min(usize::from(edits % 16) * 4);
    let (edit_bytes, original) = payload.split_at(split);
    let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
    w.write_all(original).unwrap();
    let mut stream = w.finish().unwrap();

    // Alter bytes of the index (or anywhere before the tail) and re-seal the trailer.
    let n = stream.len();
    let tail_at = n - TAIL_LEN;
    let count = u32::from_le_bytes(stream[tail_at..tail_at + 4].try_into().unwrap()) as usize;
    let entries_at = tail_at - count * INDEX_ENTRY_LEN;
    for e in edit_bytes.chunks_exact(4) {
        let within = if e[0] & 1 == 0 && count > 0 {
            entries_at + usize::from(u16::from_le_bytes([e[1], e[2]])) % (count * INDEX_ENTRY_LEN)
        } else {
            usize::from(u16::from_le_bytes([e[1], e[2]])) % tail_at
        };
        stream[within] = e[3];
    }
    let mut h = crc32fast::Hasher::new();
    h.update(&stream[entries_at..tail_at]);
    let content_crc = u32::from_le_bytes(stream[tail_at + 4..tail_at + 8].try_into().unwrap());
    let tail = Tail {
        block_count: count as u64,
        content_crc,
        legacy_total_len: None,
    };
    stream[tail_at..].copy_from_slice(&tail.to_bytes(h));

    let at = u64::from(u16::from_le_bytes([at_lo, at_hi])) % (original.len() as u64 + 1);
    let mut r = NcReader::new(Cursor::new(&stream[..]));
    let got = r.seek(SeekFrom::Start(at)).and_then(|_| {
        let mut out = Vec::new();
        r.by_ref()
            .take(u64::from(len) * 16)
            .read_to_end(&mut out)
            .map(|_| out)
    });
    match got {
        Ok(out) => {
            let start = at as usize;
            assert_eq!(
                out,
                &original[start..(start + out.len()).min(original.len())],
                "a slice returned wrong bytes"
            );
        }
        Err(e) => expect_data_error(&e),
    }
}
