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
    let symbols = data;
    let mut enc = RangeEncoder::new();
    let symbol = |i: usize, s: u8| (usize::from(s) % tables[i % n_tables].symbols()) as u8;
    for (i, &s) in symbols.iter().enumerate() {
        enc.encode(&tables[i % n_tables], symbol(i, s));
    }
    let coded = enc.finish();
    let mut dec = RangeDecoder::new(&coded);
    for (i, &s) in symbols.iter().enumerate() {
        assert_eq!(dec.decode(&tables[i % n_tables]), symbol(i, s));
    }
    assert!(dec.finished_cleanly());
    // And garbage never panics.
    let mut dec = RangeDecoder::new(data);
    for i in 0..data.len().min(4096) {
        dec.decode(&tables[i % n_tables]);
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
            if self.refuse_every > 1 && self.calls % self.refuse_every == 0 {
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
