//! Every kind of bad input ends in the right error kind, with a message saying where.

mod common;

use std::io::{self, ErrorKind, Read, Write};

use common::*;
use nc_codec::container::{Header, StreamIndex, BLOCK_HEADER_LEN, HEADER_PREFIX_LEN};
use nc_codec::{Config, Error, NcReader, NcWriter, PredictorKind};

const BLOCK: u32 = 1024;

fn sample() -> (Vec<u8>, Vec<u8>) {
    let data = text(10 * BLOCK as usize + 200, 21);
    let packed = compress(&data, &small_config(BLOCK));
    (data, packed)
}

/// Length of the header that `stream` starts with.
fn header_len(stream: &[u8]) -> usize {
    let prefix = stream.first_chunk::<HEADER_PREFIX_LEN>().unwrap();
    Header::size_from_prefix(prefix).unwrap()
}

/// Re-seals a modified header with a valid CRC, to reach the checks behind it.
fn reseal(stream: &mut [u8]) {
    let len = header_len(stream);
    let crc = crc32fast::hash(&stream[..len - 4]);
    stream[len - 4..len].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn not_an_nc_stream() {
    let err = decompress_err(
        b"this is plain text, long enough to fill a header...............................",
    );
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(matches!(Error::from_io(&err), Some(Error::NotNcStream)));
}

#[test]
fn short_garbage_is_not_an_nc_stream() {
    let err = decompress_err(b"garbage");
    assert!(
        matches!(Error::from_io(&err), Some(Error::NotNcStream)),
        "{err}"
    );
}

#[test]
fn empty_and_short_inputs_are_truncated() {
    let (_, packed) = sample();
    assert_eq!(header_len(&packed), 28, "no model: the short header");
    for len in [0, 1, 4, HEADER_PREFIX_LEN - 1, 27] {
        let err = decompress_err(&packed[..len]);
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "length {len}");
        assert!(err.to_string().contains("header"), "{err}");
    }
}

#[test]
fn unknown_version_is_unsupported() {
    let (_, mut packed) = sample();
    let next = nc_codec::container::VERSION + 1;
    packed[4..6].copy_from_slice(&next.to_le_bytes());
    let err = decompress_err(&packed);
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(
        err.to_string().contains(&format!("version {next}")),
        "{err}"
    );
}

#[test]
fn unknown_flags_and_predictors_are_unsupported() {
    let (_, packed) = sample();
    // Bit 0 (primed) is the only flag, and only for the mixing predictor.
    assert_eq!(packed[6..8], [1, 0]);
    let mut flags = packed.clone();
    flags[6] = 3;
    reseal(&mut flags);
    assert_eq!(decompress_err(&flags).kind(), ErrorKind::Unsupported);
    let ctx = compress(
        b"abc",
        &Config::new().predictor(PredictorKind::ContextStats),
    );
    let mut primed_ctx = ctx.clone();
    primed_ctx[6] = 1;
    reseal(&mut primed_ctx);
    assert_eq!(decompress_err(&primed_ctx).kind(), ErrorKind::Unsupported);

    let mut predictor = packed.clone();
    predictor[12] = 99;
    reseal(&mut predictor);
    let err = decompress_err(&predictor);
    assert_eq!(err.kind(), ErrorKind::Unsupported);
    assert!(err.to_string().contains("predictor id 99"), "{err}");

    // The neural expert's bit makes the header 76 bytes with a model identity (here the
    // bytes of the first block), a model this reader was not given.
    let mut model = packed.clone();
    model[20] |= 2;
    reseal(&mut model);
    let err = decompress_err(&model);
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
}

#[test]
fn out_of_range_header_values_are_corrupt() {
    let (_, packed) = sample();
    let mut block = packed.clone();
    block[8..12].copy_from_slice(&u32::MAX.to_le_bytes()); // 4 GiB blocks: refused, not allocated
    reseal(&mut block);
    let err = decompress_err(&block);
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("block size"), "{err}");

    let mut header_crc = packed.clone();
    header_crc[20] ^= 1;
    let err = decompress_err(&header_crc);
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(err.to_string().contains("header checksum"), "{err}");
}

#[test]
fn truncation_anywhere_is_unexpected_eof() {
    let (data, packed) = sample();
    let index = StreamIndex::read_from(&mut io::Cursor::new(&packed[..])).unwrap();
    let mut cuts: Vec<usize> = index.blocks.iter().map(|b| b.offset as usize).collect();
    cuts.extend(
        index
            .blocks
            .iter()
            .map(|b| b.offset as usize + BLOCK_HEADER_LEN),
    );
    let mut rng = Rng(5);
    cuts.extend((0..100).map(|_| rng.below(packed.len() as u64) as usize));
    cuts.push(packed.len() - 1);
    for cut in cuts {
        let mut out = Vec::new();
        let err = NcReader::new(&packed[..cut])
            .read_to_end(&mut out)
            .expect_err("a cut stream must not look complete");
        assert_eq!(err.kind(), ErrorKind::UnexpectedEof, "cut at {cut}: {err}");
        // Only verified bytes came out before the error: a prefix of the original.
        assert_eq!(out, data[..out.len()], "cut at {cut}");
    }
}

#[test]
fn unfinished_writer_reads_as_truncated() {
    let mut w = NcWriter::with_config(Vec::new(), &small_config(BLOCK)).unwrap();
    w.write_all(&text(5000, 1)).unwrap();
    w.flush().unwrap();
    let unfinished = w.into_inner(); // dropped without finish
    assert_eq!(decompress_err(&unfinished).kind(), ErrorKind::UnexpectedEof);
}

#[test]
fn flipped_bits_are_detected() {
    let (data, packed) = sample();
    let mut rng = Rng(99);
    let mut kinds = std::collections::BTreeMap::new();
    for _ in 0..400 {
        let mut bad = packed.clone();
        let pos = rng.below(bad.len() as u64) as usize;
        bad[pos] ^= 1 << rng.below(8);
        let mut out = Vec::new();
        let err = match NcReader::new(&bad[..]).read_to_end(&mut out) {
            // A flip in the last, imprecise bits of a range-coded payload can leave every
            // decoded symbol the same: harmless only if the output is exactly the original.
            Ok(_) => {
                assert_eq!(
                    out, data,
                    "flip at {pos} decoded to wrong bytes without an error"
                );
                *kinds
                    .entry("undetected, output correct".to_string())
                    .or_insert(0) += 1;
                continue;
            }
            Err(e) => e,
        };
        // A bit flip is corruption, except in the version field (Unsupported) or in a
        // length that makes the stream look longer than it is (UnexpectedEof).
        assert!(
            matches!(
                err.kind(),
                ErrorKind::InvalidData | ErrorKind::Unsupported | ErrorKind::UnexpectedEof
            ),
            "flip at {pos}: {err}"
        );
        assert_eq!(
            out,
            data[..out.len()],
            "flip at {pos}: wrong bytes returned"
        );
        *kinds.entry(format!("{:?}", err.kind())).or_insert(0) += 1;
    }
    println!("400 single-bit flips: {kinds:?}");
    assert!(kinds["InvalidData"] > 350, "{kinds:?}");
}

#[test]
fn moved_dropped_and_repeated_blocks_are_caught_at_once() {
    let (data, packed) = sample();
    let index = StreamIndex::read_from(&mut io::Cursor::new(&packed[..])).unwrap();
    let frame = |i: usize| {
        let b = &index.blocks[i];
        b.offset as usize..b.offset as usize + BLOCK_HEADER_LEN + b.payload_len as usize
    };
    let splice = |order: &[usize]| {
        let mut s = packed[..header_len(&packed)].to_vec();
        for &i in order {
            s.extend_from_slice(&packed[frame(i)]);
        }
        s.extend_from_slice(
            &packed[index
                .blocks
                .last()
                .map_or(0, |_| frame(index.blocks.len() - 1).end)..],
        );
        s
    };
    let n = index.blocks.len();
    let mut swapped: Vec<usize> = (0..n).collect();
    swapped.swap(2, 3);
    let dropped: Vec<usize> = (0..n).filter(|&i| i != 4).collect();
    let mut repeated: Vec<usize> = (0..n).collect();
    repeated.insert(5, 5);
    for (name, order) in [
        ("swapped", swapped),
        ("dropped", dropped),
        ("repeated", repeated),
    ] {
        let bad = splice(&order);
        let mut out = Vec::new();
        let err = NcReader::with_config(&bad[..], &Config::new().lanes(1))
            .unwrap()
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{name}: {err}");
        assert!(err.to_string().contains("block"), "{name}: {err}");
        assert_eq!(out, data[..out.len()], "{name}");
        assert!(out.len() < data.len());
    }
}

#[test]
fn trailing_garbage_is_an_error() {
    let (data, mut packed) = sample();
    packed.extend_from_slice(b"garbage");
    let mut out = Vec::new();
    let err = NcReader::new(&packed[..])
        .read_to_end(&mut out)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(
        matches!(Error::from_io(&err), Some(Error::TrailingData { .. })),
        "{err}"
    );
    assert_eq!(out, data, "all data was valid before the garbage");
}

#[test]
fn errors_are_sticky() {
    let (_, mut packed) = sample();
    let at = header_len(&packed) + 20;
    packed[at] ^= 0x55;
    let mut r = NcReader::new(&packed[..]);
    let mut buf = vec![0u8; 100_000];
    let first = loop {
        match r.read(&mut buf) {
            Ok(0) => panic!("corruption not detected"),
            Ok(_) => {}
            Err(e) => break e,
        }
    };
    let second = r.read(&mut buf).unwrap_err();
    assert_eq!(first.kind(), second.kind());
    assert_eq!(first.to_string(), second.to_string());
}

#[test]
fn invalid_configs_are_invalid_input() {
    for config in [
        Config::new().block_size(10),
        Config::new().block_size(u32::MAX),
        Config::new().lanes(0),
        Config::new().threads(0),
        Config::new().quant_bits(20),
        Config::new()
            .predictor(nc_codec::PredictorKind::ContextStats)
            .context_order(9),
    ] {
        let err = NcWriter::with_config(Vec::new(), &config).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{config:?}");
    }
}

#[test]
fn zero_writes_are_write_zero() {
    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Ok(0)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut w = NcWriter::new(Full).unwrap();
    assert_eq!(
        w.write_all(b"abc").unwrap_err().kind(),
        ErrorKind::WriteZero
    );
    assert_eq!(w.flush().unwrap_err().kind(), ErrorKind::WriteZero);
}
