//! Round trips under every size class and every way of chunking the I/O.

mod common;

use std::io::{self, Read, Write};

use common::*;
use nc_codec::container::{BLOCK_HEADER_LEN, MIN_HEADER_LEN, TAIL_LEN};
use nc_codec::{Config, NcReader, NcWriter, PredictorKind, Profile};
use rstest::rstest;

const BLOCK: u32 = 1024;

#[rstest]
#[case::empty(0)]
#[case::one_byte(1)]
#[case::block_minus_one(BLOCK as usize - 1)]
#[case::block(BLOCK as usize)]
#[case::block_plus_one(BLOCK as usize + 1)]
#[case::lanes_full(4 * BLOCK as usize)]
#[case::lanes_full_plus_one(4 * BLOCK as usize + 1)]
#[case::many_blocks(100 * BLOCK as usize + 17)]
fn text_round_trips(#[case] len: usize) {
    let data = text(len, len as u64);
    let packed = compress(&data, &small_config(BLOCK));
    assert_eq!(decompress(&packed).unwrap(), data);
    if len > 2000 {
        assert!(packed.len() < data.len() / 2, "text should compress well");
    }
}

#[test]
fn random_data_grows_by_a_few_bytes_per_block() {
    let data = Rng(7).bytes(50 * BLOCK as usize);
    let packed = compress(&data, &small_config(BLOCK));
    assert_eq!(decompress(&packed).unwrap(), data);
    // Stored blocks: 16-byte block header + 8-byte index entry each, plus fixed framing.
    let overhead = packed.len() - data.len();
    assert!(
        overhead <= MIN_HEADER_LEN + 16 + TAIL_LEN + 50 * 24,
        "overhead {overhead}"
    );
}

#[test]
fn repetitive_data_compresses_hard() {
    let data: Vec<u8> = b"abcabcabd".iter().copied().cycle().take(200_000).collect();
    let packed = compress(&data, &Config::new().block_size(64 * 1024));
    assert_eq!(decompress(&packed).unwrap(), data);
    // Order-3 contexts cannot tell "cab" -> c from "cab" -> d: ~0.2 bits per byte remain.
    assert!(packed.len() < data.len() / 25, "{} bytes", packed.len());
}

#[test]
fn every_bench_file_round_trips() {
    let Some(dir) = bench_dir() else {
        return;
    };
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the bench corpus beside the checkout")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_none_or(|e| e != "md"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 30,
        "bench corpus incomplete: {}",
        files.len()
    );
    for path in files {
        let data = std::fs::read(&path).unwrap();
        let packed = compress(&data, &Config::new().block_size(256 * 1024).lanes(4));
        assert_eq!(decompress(&packed).unwrap(), data, "{}", path.display());
    }
}

#[test]
fn output_does_not_depend_on_write_chunking() {
    let data = text(20 * BLOCK as usize + 333, 3);
    let config = small_config(BLOCK);
    let whole = compress(&data, &config);

    let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
    for &b in &data {
        w.write_all(&[b]).unwrap();
    }
    assert_eq!(w.finish().unwrap(), whole, "byte-by-byte writes");

    let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
    let mut rng = Rng(11);
    let mut rest = &data[..];
    while !rest.is_empty() {
        let n = (rng.below(3000) as usize + 1).min(rest.len());
        w.write_all(&rest[..n]).unwrap();
        rest = &rest[n..];
    }
    assert_eq!(w.finish().unwrap(), whole, "odd-sized writes");

    let mut w = NcWriter::with_config(Awkward::new(Vec::new(), 5, true), &config).unwrap();
    write_all_retrying(&mut w, &data).unwrap();
    loop {
        match w.try_finish() {
            Ok(()) => break,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(
        w.finish().unwrap().inner,
        whole,
        "short and failing sink writes"
    );
}

#[test]
fn output_does_not_depend_on_lanes_or_threads() {
    let data = text(30 * BLOCK as usize + 5, 4);
    let reference = compress(&data, &Config::new().block_size(BLOCK).lanes(1).threads(1));
    for (lanes, threads) in [(2, 1), (3, 2), (8, 2), (16, 4), (64, 3)] {
        let config = Config::new()
            .block_size(BLOCK)
            .lanes(lanes)
            .threads(threads);
        assert_eq!(
            compress(&data, &config),
            reference,
            "lanes {lanes} threads {threads}"
        );
        let mut out = Vec::new();
        NcReader::with_config(&reference[..], &config)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, data);
    }
}

#[test]
fn reads_in_any_chunking() {
    let data = text(9 * BLOCK as usize + 100, 5);
    let packed = compress(&data, &small_config(BLOCK));
    for chunk in [1, 2, 7, 16, 1000, 1 << 20] {
        for hiccups in [false, true] {
            let mut r = NcReader::new(Awkward::new(&packed[..], chunk, hiccups));
            assert_eq!(read_all_retrying(&mut r).unwrap(), data, "chunk {chunk}");
            assert!(r.is_finished());
        }
    }
    // Tiny destination buffers.
    let mut r = NcReader::new(&packed[..]);
    let mut out = Vec::new();
    let mut one = [0u8; 1];
    while r.read(&mut one).unwrap() == 1 {
        out.push(one[0]);
    }
    assert_eq!(out, data);
}

#[test]
fn flush_makes_everything_so_far_decodable() {
    let config = small_config(BLOCK);
    let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
    let mut expected = Vec::new();
    for i in 0..12u64 {
        let part = text(((i as usize + 1) * 397) % 3000 + 1, i);
        w.write_all(&part).unwrap();
        expected.extend_from_slice(&part);
        w.flush().unwrap();
        if i % 4 == 0 {
            w.flush().unwrap(); // an empty flush is harmless
        }
        // Everything written so far decodes now, without the trailer: the reader stops
        // with UnexpectedEof only after returning every flushed byte.
        let so_far = w.get_ref().clone();
        let mut r = NcReader::with_config(&so_far[..], &Config::new().lanes(64)).unwrap();
        let mut got = Vec::new();
        let err = r.read_to_end(&mut got).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(got, expected, "after flush {i}");
    }
    let packed = w.finish().unwrap();
    assert_eq!(decompress(&packed).unwrap(), expected);
    // A flushed stream goes on: its first block is the dictionary, flushed with it, and
    // the coded blocks after it start from it.
    use nc_codec::container::{BlockKind, StreamIndex};
    use nc_codec::format::{FLAG_DICT, FLAG_FROM_DICT, FLAG_SYNC};
    let index = StreamIndex::read_from(&mut io::Cursor::new(&packed[..])).unwrap();
    assert_eq!(index.blocks[0].flags, FLAG_DICT | FLAG_SYNC);
    let coded = index.blocks[1..]
        .iter()
        .filter(|b| b.kind == BlockKind::Coded);
    assert!(coded.clone().count() > 5);
    for b in coded {
        assert_ne!(b.flags & FLAG_FROM_DICT, 0);
    }
}

#[test]
fn writer_after_finish_errors() {
    let mut w = NcWriter::new(Vec::new()).unwrap();
    w.write_all(b"abc").unwrap();
    w.try_finish().unwrap();
    w.try_finish().unwrap(); // idempotent
    assert!(w.write(b"more").is_err());
    let packed = w.into_inner();
    assert_eq!(decompress(&packed).unwrap(), b"abc");
}

/// A stream longer than a block starts with its dictionary (block 0, here a whole block of
/// 8 KiB, at most `DICT_LEN` bytes), which every later coded block starts from: a block
/// whose words the first has seen codes smaller than it does alone. The lane and thread
/// counts change no byte.
#[test]
fn a_long_stream_starts_from_its_dictionary() {
    use nc_codec::container::{BlockKind, StreamIndex};
    use nc_codec::format::{DICT_LEN, FLAG_DICT, FLAG_FROM_DICT};
    const B: usize = 8192;
    // Made-up words, which the primer has never seen.
    let mut rng = Rng(41);
    let words: Vec<Vec<u8>> = (0..300)
        .map(|_| {
            let n = 4 + rng.below(6) as usize;
            (0..n).map(|_| b'a' + rng.below(26) as u8).collect()
        })
        .collect();
    let mut data = Vec::new();
    while data.len() < 4 * B {
        data.extend_from_slice(&words[rng.below(words.len() as u64) as usize]);
        data.push(b' ');
    }
    data.truncate(4 * B);
    let config = |lanes, threads| {
        Config::new()
            .block_size(B as u32)
            .lanes(lanes)
            .threads(threads)
    };
    let packed = compress(&data, &config(4, 2));
    let index = StreamIndex::read_from(&mut io::Cursor::new(&packed[..])).unwrap();
    assert_eq!(index.blocks.len(), 4);
    assert!(B <= DICT_LEN as usize);
    assert_eq!(
        index.blocks[0].flags & (FLAG_DICT | FLAG_FROM_DICT),
        FLAG_DICT
    );
    for b in &index.blocks[1..] {
        assert_eq!(b.kind, BlockKind::Coded);
        assert_eq!(b.flags & (FLAG_DICT | FLAG_FROM_DICT), FLAG_FROM_DICT);
    }
    for (lanes, threads) in [(1, 1), (3, 2), (8, 2)] {
        assert_eq!(
            compress(&data, &config(lanes, threads)),
            packed,
            "{lanes} lanes"
        );
        let read = Config::new().lanes(lanes).threads(threads);
        assert_eq!(nc_codec::decompress(&packed, &read).unwrap(), data);
    }
    // Block 1 from the dictionary against the same bytes as a stream of one block.
    let alone = compress(&data[B..2 * B], &config(4, 2));
    let alone = StreamIndex::read_from(&mut io::Cursor::new(&alone[..])).unwrap();
    assert_eq!(alone.blocks[0].flags & FLAG_DICT, 0);
    let (with, without) = (index.blocks[1].payload_len, alone.blocks[0].payload_len);
    assert!(with + 200 < without, "{with} against {without} bytes");
}

/// A dictionary longer than the primer (its copy tables larger than a primed state's),
/// then short flushed blocks on one lane, each restored in place from the dictionary:
/// each finds the tables a block of its length grows.
#[test]
fn short_blocks_after_a_long_dictionary_restore_their_lane() {
    use nc_codec::container::StreamIndex;
    use nc_codec::format::FLAG_DICT;
    let data = text(150_000 + 3 * 5_000, 11);
    let config = Config::new()
        .predictor(PredictorKind::Mix(Profile::Fast))
        .lanes(1)
        .threads(1);
    let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
    for part in [
        &data[..150_000],
        &data[150_000..155_000],
        &data[155_000..160_000],
    ] {
        w.write_all(part).unwrap();
        w.flush().unwrap();
    }
    w.write_all(&data[160_000..]).unwrap();
    let packed = w.finish().unwrap();
    let index = StreamIndex::read_from(&mut io::Cursor::new(&packed[..])).unwrap();
    assert_ne!(index.blocks[0].flags & FLAG_DICT, 0);
    let lens: Vec<u32> = index.blocks.iter().map(|b| b.raw_len).collect();
    assert_eq!(lens, [150_000, 5_000, 5_000, 5_000]);
    assert_eq!(decompress(&packed).unwrap(), data);
}

#[test]
fn resume_at_a_checkpoint_block() {
    use nc_codec::container::StreamIndex;
    let data = text(20 * BLOCK as usize + 99, 8);
    let packed = compress(&data, &small_config(BLOCK));
    let index = StreamIndex::read_from(&mut io::Cursor::new(&packed[..])).unwrap();
    // Block 0 is the stream's dictionary, which the blocks after it start from.
    assert_ne!(index.blocks[0].flags & nc_codec::format::FLAG_DICT, 0);
    let dict = &index.blocks[0];
    let dict_frame =
        &packed[dict.offset as usize..][..BLOCK_HEADER_LEN + dict.payload_len as usize];
    for k in [0usize, 1, 7, 20] {
        let at = &index.blocks[k];
        let r = io::Cursor::new(&packed[at.offset as usize..]);
        let reader =
            NcReader::resume(r, index.header.clone(), k as u64, &small_config(BLOCK)).unwrap();
        let mut out = Vec::new();
        if k > 0 {
            // Without the dictionary the block cannot decode, and says why.
            let r = io::Cursor::new(&packed[at.offset as usize..]);
            let mut alone =
                NcReader::resume(r, index.header.clone(), k as u64, &small_config(BLOCK)).unwrap();
            let err = alone.read_to_end(&mut out).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
            assert!(err.to_string().contains("dictionary"), "{err}");
            out.clear();
        }
        reader
            .with_dictionary(dict_frame)
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, &data[at.raw_offset as usize..], "from block {k}");
    }
    // A frame that is not the dictionary is refused.
    let b1 = &index.blocks[1];
    let not_dict = &packed[b1.offset as usize..][..BLOCK_HEADER_LEN + b1.payload_len as usize];
    let r = io::Cursor::new(&packed[b1.offset as usize..]);
    let err = NcReader::resume(r, index.header.clone(), 1, &small_config(BLOCK))
        .unwrap()
        .with_dictionary(not_dict)
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // Resuming with the wrong block number is caught at once, not decoded as garbage.
    let at = &index.blocks[3];
    let mut reader = NcReader::resume(
        io::Cursor::new(&packed[at.offset as usize..]),
        index.header.clone(),
        4,
        &small_config(BLOCK),
    )
    .unwrap();
    let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
}

/// The mixing predictor's gate runs with AVX-512 or AVX2 where the CPU has them; without
/// them (in child processes with `NC_NO_AVX512`, then `NC_NO_AVX2`) every profile writes
/// the same bytes and decodes this process's stream. On a CPU without them every side
/// runs the same code and the test still passes.
#[test]
fn mixing_streams_are_identical_without_avx2() {
    // A bilevel page in a block of its own, so the bitmap specialist's mixer runs too.
    let data = [
        text(30_000, 5),
        Rng(3).bytes(3_000),
        text(32_536, 8),
        bilevel_page(400),
    ]
    .concat();
    let profiles = [Profile::Fast, Profile::Default];
    if let Some(dir) = std::env::var_os("NC_NO_AVX2_CHILD") {
        // Child: write each profile's stream, and decode the parent's.
        for profile in profiles {
            let config = Config::new()
                .block_size(16 << 10)
                .predictor(PredictorKind::Mix(profile));
            let name = std::path::Path::new(&dir).join(profile.name());
            let theirs = std::fs::read(&name).unwrap();
            assert_eq!(decompress(&theirs).unwrap(), data, "{profile:?}");
            std::fs::write(name.with_extension("child"), compress(&data, &config)).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut ours = Vec::new();
    for profile in profiles {
        let config = Config::new()
            .block_size(16 << 10)
            .predictor(PredictorKind::Mix(profile));
        let packed = compress(&data, &config);
        std::fs::write(dir.path().join(profile.name()), &packed).unwrap();
        ours.push(packed);
    }
    for switch in ["NC_NO_AVX512", "NC_NO_AVX2"] {
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "mixing_streams_are_identical_without_avx2"])
            .env("NC_NO_AVX2_CHILD", dir.path())
            .env(switch, "1")
            .status()
            .unwrap();
        assert!(status.success(), "{switch}");
        for (profile, packed) in profiles.iter().zip(&ours) {
            let child =
                std::fs::read(dir.path().join(profile.name()).with_extension("child")).unwrap();
            assert!(
                child == *packed,
                "{profile:?}: the streams differ with {switch}"
            );
        }
    }
}

/// A bilevel page 256 pixels wide, `rows` high: rings and diagonal bands, black on white.
fn bilevel_page(rows: usize) -> Vec<u8> {
    let mut page = vec![0u8; 32 * rows];
    for (y, row) in page.chunks_mut(32).enumerate() {
        for x in 0..256 {
            let (dx, dy) = (x as i64 % 96 - 48, y as i64 % 80 - 40);
            let ring = (300..700).contains(&(dx * dx + dy * dy));
            let band = (x + y) % 53 < 3;
            row[x / 8] |= u8::from(ring || band) << (7 - x % 8);
        }
    }
    page
}

/// Synthetic x86 code: filler instructions and `CALL rel32`s to a few functions, whose
/// operands differ at every call site until the filter makes them alike.
fn x86_like(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let functions: Vec<i64> = (0..40).map(|i| i * 1500 + 64).collect();
    let mut code = Vec::with_capacity(len + 16);
    while code.len() < len {
        let r = next();
        if r % 4 == 0 {
            let target = functions[(r >> 8) as usize % functions.len()];
            let rel = target - (code.len() as i64 + 5);
            code.push(0xE8);
            code.extend_from_slice(&(rel as i32).to_le_bytes());
        } else {
            let filler: &[&[u8]] = &[
                b"\x48\x89\xc7",
                b"\x48\x83\xec\x08",
                b"\x31\xc0",
                b"\x5d\xc3",
            ];
            code.extend_from_slice(filler[(r >> 16) as usize % filler.len()]);
        }
    }
    code.truncate(len);
    code
}

/// Blocks that look like x86 code go through the call filter (flag `X86`), others do not;
/// every byte comes back, through a whole read and through seeks into filtered blocks.
#[test]
fn x86_code_is_filtered_and_restored() {
    use nc_codec::container::StreamIndex;
    use nc_codec::format::FLAG_X86;
    use std::io::{Cursor, Seek, SeekFrom};
    let block = 16 << 10;
    let mut data = x86_like(2 * block, 7);
    data.extend(text(block, 3));
    // Noise that looks like code to the filter's test: filtered, then stored unfiltered.
    let mut noise = Rng(11).bytes(block);
    for at in (0..block - 5).step_by(250) {
        noise[at] = 0xE8;
        noise[at + 4] = 0;
    }
    data.extend(noise);
    data.extend(x86_like(block / 2, 9));
    let packed = compress(&data, &Config::new().block_size(block as u32).threads(2));
    assert_eq!(decompress(&packed).unwrap(), data);
    let index = StreamIndex::read_from(&mut Cursor::new(&packed)).unwrap();
    let filtered: Vec<bool> = index
        .blocks
        .iter()
        .map(|b| b.flags & FLAG_X86 != 0)
        .collect();
    assert_eq!(filtered, [true, true, false, false, true]);
    assert_eq!(index.blocks[3].kind, nc_codec::container::BlockKind::Stored);
    let mut reader = NcReader::new(Cursor::new(&packed));
    for at in [5, block + 1000, 3 * block + 7, 4 * block + 9] {
        reader.seek(SeekFrom::Start(at as u64)).unwrap();
        let mut got = vec![0; 600];
        reader.read_exact(&mut got).unwrap();
        assert_eq!(got, data[at..at + 600], "at {at}");
    }
}
