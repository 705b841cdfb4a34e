//! Crafted input: lengths that claim far more than the stream holds, doctored indexes,
//! memory limits, and streams back to back.

mod common;

// The fuzz targets' stream builder, shared rather than written twice.
#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod nc_fuzz;

use std::io::{Cursor, ErrorKind, Read, Seek, SeekFrom, Write};
use std::time::Instant;

use common::*;
use nc_codec::container::{
    max_raw_len, IndexEntry, StreamIndex, Tail, INDEX_ENTRY_LEN, MAX_BLOCK_SIZE, TAIL_LEN,
};
use nc_codec::format::{
    CODED_RATIO, DICT_LEN, FLAG_DICT, FLAG_FROM_DICT, FLAG_NO_NEURAL, FLAG_X86, LIGHT_RATIO,
    MIXING_RATIO, NEURAL_RATIO,
};
use nc_codec::{Config, Error, NcReader, PredictorKind, Profile};

/// Every predictor a header can name, as `Config`s that write it.
fn every_predictor() -> Vec<(&'static str, Config)> {
    vec![
        (
            "fast",
            Config::new().predictor(PredictorKind::Mix(Profile::Fast)),
        ),
        ("default", Config::new()),
        (
            "max",
            Config::new().predictor(PredictorKind::Mix(Profile::Max)),
        ),
        ("ctx", Config::new().predictor(PredictorKind::ContextStats)),
        ("neural", Config::new().predictor(PredictorKind::Neural)),
    ]
}

/// A stream of `config`'s header with block size `block_size` whose blocks are the given
/// (raw length, payload) pairs, each claimed as coded ([`nc_fuzz::claimed`]).
fn crafted(config: &Config, block_size: u32, blocks: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let header = config.clone().block_size(block_size).header().unwrap();
    nc_fuzz::claimed(&header, blocks)
}

/// One block claiming 64 MiB behind a few payload bytes (88 bytes in all with a 4-byte
/// payload): refused from its header, or, claiming just what the payload could code, decoded
/// only until the payload runs out.
#[test]
fn a_block_claiming_more_than_its_payload_holds_fails_at_once() {
    for (name, config) in every_predictor() {
        let mut rng = Rng(77);
        for payload in [vec![0u8; 4], vec![0xA5; 4], rng.bytes(200), rng.bytes(3000)] {
            // The most a payload could code (`Header::max_raw_len`), and more: the first is
            // decoded until the payload runs out, the second refused from its header.
            let header = config.clone().block_size(MAX_BLOCK_SIZE).header().unwrap();
            let most = header
                .max_raw_len(payload.len() as u32)
                .min(u64::from(MAX_BLOCK_SIZE));
            for claim in [most as u32, MAX_BLOCK_SIZE] {
                let stream = crafted(&config, MAX_BLOCK_SIZE, &[(claim, payload.clone())]);
                let start = Instant::now();
                let mut out = Vec::new();
                let err = NcReader::with_config(&stream[..], &Config::new().threads(1))
                    .unwrap()
                    .read_to_end(&mut out)
                    .unwrap_err();
                assert_eq!(err.kind(), ErrorKind::InvalidData, "{name}: {err}");
                assert!(out.is_empty(), "{name}");
                // A guard against the old behaviour (minutes), not a speed target.
                assert!(
                    start.elapsed().as_secs() < 60,
                    "{name}: {:?}",
                    start.elapsed()
                );
            }
        }
    }
}

/// The bound on what a payload can code admits the most compressible input there is: long
/// runs of one byte.
#[test]
fn the_payload_bound_admits_runs() {
    let zeros = vec![0u8; 600_000];
    for (name, config) in every_predictor() {
        if name == "neural" || name == "max" {
            continue; // the slow expert; its tables are no sharper than the quantizer's
        }
        let config = config.block_size(1 << 20).threads(1);
        let packed = compress(&zeros, &config);
        let index = StreamIndex::read_from(&mut Cursor::new(&packed)).unwrap();
        for b in &index.blocks {
            let most = max_raw_len(b.payload_len, 16);
            assert!(u64::from(b.raw_len) <= most, "{name}: {b:?} over {most}");
            eprintln!(
                "{name}: {} bytes in {} ({:.1}% of the bound)",
                b.raw_len,
                b.payload_len,
                f64::from(b.raw_len) * 100.0 / most as f64
            );
        }
        assert_eq!(
            nc_codec::decompress(&packed, &config).unwrap(),
            zeros,
            "{name}"
        );
    }
}

/// From format version 12 a coded block holds at most `CODED_RATIO` bytes per payload byte
/// (version 13: `MIXING_RATIO` where it does not run the neural expert):
/// a block the full predictor codes smaller is padded with zeros to that length (the padding
/// checked), unless the light coder's code, padded to `LIGHT_RATIO`, is shorter: a run of one
/// byte is light, a repeated stretch of noise (which only the full predictor's copy experts
/// see through) is coded and padded.
#[test]
fn compressible_blocks_are_light_or_padded_to_the_ratio_bound() {
    let zeros = vec![0u8; 300_000];
    let pattern = Rng(5).bytes(1000);
    let repeated: Vec<u8> = pattern.iter().copied().cycle().take(300_000).collect();
    for (name, config) in every_predictor() {
        if name == "neural" || name == "max" {
            continue; // the slow expert; the bound is the container's, the same for all
        }
        let config = config.block_size(1 << 20).threads(1);
        for (data, light, least) in [
            (&zeros, true, 300_000u32.div_ceil(LIGHT_RATIO)),
            (&repeated, false, 300_000u32.div_ceil(MIXING_RATIO)),
        ] {
            if name == "ctx" && !light {
                continue; // an order-2 model does not see a 1000-byte period
            }
            let packed = compress(data, &config);
            let index = StreamIndex::read_from(&mut Cursor::new(&packed)).unwrap();
            let b = index.blocks[0];
            let kind = packed[b.offset as usize];
            assert_eq!(kind, if light { 3 } else { 0 }, "{name}");
            assert_eq!(b.payload_len, least, "{name}");
            assert_eq!(&nc_codec::decompress(&packed, &config).unwrap(), data);

            // The padding must be zeros: the block's checksum covers only what it decodes to.
            let mut bad = packed.clone();
            bad[(b.offset + 16) as usize + b.payload_len as usize - 1] = 1;
            let err = nc_codec::decompress(&bad, &config).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{name}: {err}");
        }
    }
}

/// Decodes a stream of `header` whose one block is `block` (a payload of zeros): it must
/// fail with a data error. True when it was refused from the block header, false when the
/// block was decoded and refused by its payload or checksum; reading the index (`-l`,
/// seeks) must refuse exactly the headers the decoder refuses.
fn refused_from_the_header(
    header: &nc_codec::Header,
    block: nc_codec::container::BlockHeader,
    case: &str,
) -> bool {
    let payload = vec![0u8; block.payload_len as usize];
    let stream = nc_fuzz::framed(header, &[(block, payload)], 0);
    let err = nc_codec::decompress(&stream, &Config::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{case}: {err}");
    let message = err.to_string();
    let decoded = message.contains("checksum") || message.contains("decode");
    let indexed = StreamIndex::read_from(&mut Cursor::new(&stream)).is_ok();
    assert_eq!(indexed, decoded, "{case}: {message}");
    !decoded
}

/// A light block in a stream older than version 12, or one claiming more than
/// `LIGHT_RATIO` bytes per payload byte, is refused from its header.
#[test]
fn light_blocks_are_refused_where_the_format_forbids_them() {
    use nc_codec::container::{BlockHeader, BlockKind};
    for (version, claim, ok) in [
        (12u16, 100 * LIGHT_RATIO, true),
        (12, 100 * LIGHT_RATIO + 1, false),
        (11, 1000, false),
    ] {
        let mut header = Config::new().block_size(MAX_BLOCK_SIZE).header().unwrap();
        header.version = version;
        let light = BlockHeader {
            kind: BlockKind::Light,
            flags: 0,
            raw_len: claim,
            payload_len: 100,
            crc: 0,
        };
        let case = format!("v{version} claim {claim}");
        assert_eq!(
            refused_from_the_header(&header, light, &case),
            !ok,
            "{case}"
        );
    }
}

/// A predictor, a version, a block header (kind, flags, raw and payload lengths), and
/// whether the format allows it.
type Case = (
    PredictorKind,
    u16,
    nc_codec::container::BlockKind,
    u8,
    (u32, u32),
    bool,
);

/// [`refused_from_the_header`] over `cases`, each refused unless it is allowed.
fn assert_refusals(cases: &[Case]) {
    for &(predictor, version, kind, flags, (raw_len, payload_len), ok) in cases {
        let mut header = Config::new()
            .predictor(predictor)
            .block_size(MAX_BLOCK_SIZE)
            .header()
            .unwrap();
        header.version = version;
        let block = nc_codec::container::BlockHeader {
            kind,
            flags,
            raw_len,
            payload_len,
            crc: 0,
        };
        let case = format!("{predictor:?} v{version} {kind:?} flags {flags} raw {raw_len}");
        assert_eq!(
            refused_from_the_header(&header, block, &case),
            !ok,
            "{case}"
        );
    }
}

/// Plain blocks (coded without the neural expert) exist only in version 13 streams whose
/// mixing predictor has it, only coded, and bound by 128 bytes per payload byte; blocks that
/// run the neural expert by 12.
#[test]
fn plain_blocks_are_refused_where_the_format_forbids_them() {
    use nc_codec::container::BlockKind;
    let (max, default, neural) = (
        PredictorKind::Mix(Profile::Max),
        PredictorKind::Mix(Profile::Default),
        PredictorKind::Neural,
    );
    let coded = BlockKind::Coded;
    let claim = |raw| (raw, 100);
    assert_refusals(&[
        (
            max,
            13,
            coded,
            FLAG_NO_NEURAL,
            claim(100 * MIXING_RATIO),
            true,
        ),
        (
            max,
            13,
            coded,
            FLAG_NO_NEURAL,
            claim(100 * MIXING_RATIO + 1),
            false,
        ),
        (max, 13, coded, 0, claim(100 * NEURAL_RATIO), true),
        (max, 13, coded, 0, claim(100 * NEURAL_RATIO + 1), false),
        (neural, 13, coded, 0, claim(100 * NEURAL_RATIO + 1), false),
        (max, 12, coded, 0, claim(100 * CODED_RATIO), true),
        (default, 12, coded, 0, claim(100 * CODED_RATIO + 1), false),
        (default, 13, coded, 0, claim(100 * MIXING_RATIO), true),
        (default, 13, coded, 0, claim(100 * MIXING_RATIO + 1), false),
        (max, 12, coded, FLAG_NO_NEURAL, claim(1000), false),
        (default, 13, coded, FLAG_NO_NEURAL, claim(1000), false),
        (neural, 13, coded, FLAG_NO_NEURAL, claim(1000), false),
        (
            max,
            13,
            BlockKind::Light,
            FLAG_NO_NEURAL,
            claim(1000),
            false,
        ),
    ]);
}

/// The x86 call filter's flag exists from version 13, on coded and light blocks only.
#[test]
fn filtered_blocks_are_refused_where_the_format_forbids_them() {
    use nc_codec::container::{BlockHeader, BlockKind};
    for (version, kind, raw_len, ok) in [
        (13u16, BlockKind::Coded, 1000, true),
        (13, BlockKind::Light, 1000, true),
        (13, BlockKind::Stored, 100, false),
        (12, BlockKind::Coded, 1000, false),
        (12, BlockKind::Light, 1000, false),
    ] {
        let mut header = Config::new().block_size(MAX_BLOCK_SIZE).header().unwrap();
        header.version = version;
        let block = BlockHeader {
            kind,
            flags: FLAG_X86,
            raw_len,
            payload_len: 100,
            crc: 0,
        };
        let case = format!("v{version} {kind:?} raw {raw_len}");
        assert_eq!(
            refused_from_the_header(&header, block, &case),
            !ok,
            "{case}"
        );
    }
}

/// A dictionary block exists from version 13, as block 0 of a primed mixing predictor,
/// coded and not plain, of at most `DICT_LEN` bytes; no block is both a dictionary and
/// started from one.
#[test]
fn dictionary_blocks_are_refused_where_the_format_forbids_them() {
    use nc_codec::container::BlockKind;
    let (default, fast, max) = (
        PredictorKind::Mix(Profile::Default),
        PredictorKind::Mix(Profile::Fast),
        PredictorKind::Mix(Profile::Max),
    );
    let (coded, both) = (BlockKind::Coded, FLAG_DICT | FLAG_FROM_DICT);
    // Within every ratio bound.
    let claim = |raw| (raw, 4000);
    assert_refusals(&[
        (default, 13, coded, FLAG_DICT, claim(DICT_LEN), true),
        (fast, 13, coded, FLAG_DICT | FLAG_X86, claim(10_000), true),
        (default, 13, coded, FLAG_DICT, claim(DICT_LEN + 1), false),
        (default, 12, coded, FLAG_DICT, claim(10_000), false),
        (max, 13, coded, FLAG_DICT, claim(10_000), true),
        (
            max,
            13,
            coded,
            FLAG_DICT | FLAG_NO_NEURAL,
            claim(10_000),
            false,
        ),
        (
            default,
            13,
            BlockKind::Light,
            FLAG_DICT,
            claim(10_000),
            false,
        ),
        (default, 13, BlockKind::Stored, FLAG_DICT, (100, 100), false),
        (default, 13, coded, both, claim(10_000), false),
        (default, 13, coded, FLAG_FROM_DICT, claim(10_000), false),
    ]);
}

/// A block that says it starts from the dictionary where block 0 is none, or a
/// dictionary after block 0, is a data error that names the block; the index refuses the
/// second from its header, as the decoder does.
#[test]
fn blocks_out_of_place_around_a_dictionary_are_refused() {
    use nc_codec::container::{BlockHeader, BlockKind};
    let header = Config::new().block_size(4096).header().unwrap();
    let block = |flags| BlockHeader {
        kind: BlockKind::Coded,
        flags,
        raw_len: 1000,
        payload_len: 100,
        crc: 0,
    };
    for (flags, what) in [
        ([0, FLAG_FROM_DICT], "dictionary"),
        ([0, FLAG_DICT], "dictionary flags"),
    ] {
        let blocks: Vec<_> = flags.iter().map(|&f| (block(f), vec![0u8; 100])).collect();
        let stream = nc_fuzz::framed(&header, &blocks, 0);
        let indexed = StreamIndex::read_from(&mut Cursor::new(&stream));
        assert_eq!(indexed.is_ok(), flags[1] == FLAG_FROM_DICT, "{flags:?}");
        // Block 0 is garbage too: decode block 1 alone, as a reader resumed there would.
        let at = header.size() + 16 + 100;
        let mut reader = NcReader::resume(
            Cursor::new(&stream[at..]),
            header.clone(),
            1,
            &Config::new(),
        )
        .unwrap();
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
        assert!(err.to_string().contains(what), "{err}");
        assert!(err.to_string().contains("block 1"), "{err}");
    }
}

/// Many small crafted streams of up to 4 KB, with blocks of several sizes each claiming
/// the most they may: every one is rejected, none takes long.
#[test]
fn small_crafted_streams_are_rejected_quickly() {
    let mut rng = Rng(0x5EED);
    for (name, config) in every_predictor() {
        for _ in 0..4 {
            let count = 1 + rng.below(8) as usize;
            let blocks: Vec<(u32, Vec<u8>)> = (0..count)
                .map(|_| {
                    let n = 4 + rng.below(400) as usize;
                    let payload = rng.bytes(n);
                    (1 << (12 + rng.below(14)), payload)
                })
                .collect();
            let stream = crafted(&config, MAX_BLOCK_SIZE, &blocks);
            assert!(stream.len() <= 4096);
            let start = Instant::now();
            let err = NcReader::with_config(&stream[..], &Config::new().threads(2))
                .unwrap()
                .read_to_end(&mut Vec::new())
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::InvalidData, "{name}: {err}");
            assert!(
                start.elapsed().as_secs() < 60,
                "{name}: {:?}",
                start.elapsed()
            );
        }
    }
}

/// A stream whose one lane would need more than the limit is refused before anything
/// large is allocated, with an error naming the need and the limit.
#[test]
fn a_stream_over_the_memory_limit_is_refused() {
    let stream = crafted(
        &Config::new(),
        MAX_BLOCK_SIZE,
        &[(MAX_BLOCK_SIZE, vec![0; 4])],
    );
    let limit = 256 << 20;
    let err = NcReader::with_config(&stream[..], &Config::new().memlimit(limit))
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
    match Error::from_io(&err) {
        Some(Error::MemoryLimit { need, limit: l }) => {
            assert!(*need > limit, "{need}");
            assert_eq!(*l, limit);
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("256 MiB"), "{err}");

    // The writer is held to its limit in the same way.
    let config = Config::new().block_size(MAX_BLOCK_SIZE).memlimit(limit);
    let err = nc_codec::NcWriter::with_config(Vec::new(), &config).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::OutOfMemory, "{err}");
}

/// More lanes than the limit allows: the reader runs fewer, and decodes the same bytes.
#[test]
fn lanes_shrink_to_fit_the_memory_limit() {
    let data = text(40_000, 5);
    let config = Config::new()
        .predictor(PredictorKind::Mix(Profile::Fast))
        .block_size(4096)
        .lanes(8)
        .threads(2);
    let packed = compress(&data, &config);
    for limit in [224 << 20, 320 << 20, 1 << 30] {
        let read = Config::new().lanes(64).threads(4).memlimit(limit);
        let out = nc_codec::decompress(&packed, &read).unwrap();
        assert_eq!(out, data, "limit {limit}");
    }
}

/// Block 0's index entry changed from 4096 to 4000 with the trailer CRC recomputed: the
/// index no longer matches the block headers, and a seek must not trust it.
#[test]
fn a_doctored_index_is_refused_before_a_seek_uses_it() {
    let data = text(3 * 4096 + 100, 9);
    let packed = compress(&data, &Config::new().block_size(4096).threads(1));
    let count = 4usize;
    let tail_at = packed.len() - TAIL_LEN;
    let entries_at = tail_at - count * INDEX_ENTRY_LEN;
    let mut doctored = packed.clone();
    let e = IndexEntry::parse(&doctored[entries_at..entries_at + INDEX_ENTRY_LEN]);
    assert_eq!(e.raw_len, 4096);
    doctored[entries_at..entries_at + INDEX_ENTRY_LEN].copy_from_slice(
        &IndexEntry {
            payload_len: e.payload_len,
            raw_len: 4000,
        }
        .to_bytes(),
    );
    let mut h = crc32fast::Hasher::new();
    h.update(&doctored[entries_at..tail_at]);
    let old_tail = Tail::parse(
        &packed[tail_at..],
        {
            let mut h = crc32fast::Hasher::new();
            h.update(&packed[entries_at..tail_at]);
            h
        },
        Default::default(),
    )
    .unwrap();
    doctored[tail_at..].copy_from_slice(&old_tail.to_bytes(h));

    let err = StreamIndex::read_from(&mut Cursor::new(&doctored)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");

    let mut r = NcReader::new(Cursor::new(&doctored));
    let err = r.seek(SeekFrom::Start(4050)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
}

/// An index whose entries agree with their block headers, but whose block claims more than
/// its payload could code: listing or seeking refuses it, as decoding does.
#[test]
fn an_index_claiming_more_than_a_payload_holds_is_refused() {
    for (name, config) in every_predictor() {
        let stream = crafted(&config, MAX_BLOCK_SIZE, &[(MAX_BLOCK_SIZE, vec![0; 4])]);
        let err = StreamIndex::read_from(&mut Cursor::new(&stream)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{name}: {err}");
        assert!(err.to_string().contains("cannot code"), "{name}: {err}");
    }
}

/// Streams back to back decode as one, as gzip members and zstd frames do.
#[test]
fn concatenated_streams_decode_as_one() {
    let a = text(9000, 1);
    let b = text(5000, 2);
    let config = Config::new().block_size(4096).threads(1);
    let mut both = compress(&a, &config);
    let first_len = both.len();
    both.extend(compress(
        &b,
        &config.clone().predictor(PredictorKind::ContextStats),
    ));
    both.extend(compress(b"", &config));
    let mut r = NcReader::new(&both[..]);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, [&a[..], &b[..]].concat());
    assert_eq!(r.streams(), 3);
    assert_eq!(r.total_in(), both.len() as u64);
    assert_eq!(r.total_out(), out.len() as u64);

    // Garbage after a stream is still an error, whether or not it starts like a stream.
    let lookalike = [&[0x89, b'N', b'X', b'\n'][..], &[0; 60]].concat();
    for garbage in [&b"garbage"[..], &lookalike[..]] {
        let mut bad = both[..first_len].to_vec();
        bad.extend_from_slice(garbage);
        let err = NcReader::new(&bad[..])
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidData, "{err}");
    }
}

/// A single-stream reader stops exactly at its stream's end: what follows on the same
/// source (another stream, or anything else) is left there to read.
#[test]
fn a_single_stream_reader_leaves_what_follows() {
    let a = text(7000, 3);
    let config = Config::new().block_size(4096).threads(1);
    let mut src = compress(&a, &config);
    src.extend_from_slice(b"and then other bytes");
    let mut cursor = Cursor::new(&src);
    let mut r = NcReader::new(&mut cursor).single_stream(true);
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, a);
    let mut rest = Vec::new();
    cursor.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"and then other bytes");
}

/// The one-shot helpers and the auto-finishing writer.
#[test]
fn one_shot_helpers_round_trip() {
    let data = text(20_000, 4);
    let config = Config::new().block_size(8192).threads(2);
    let packed = nc_codec::compress(&data, &config).unwrap();
    assert_eq!(nc_codec::decompress(&packed, &config).unwrap(), data);

    let mut streamed = Vec::new();
    let n = nc_codec::copy_encode(&data[..], &mut streamed, &config).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(streamed, packed);
    let mut back = Vec::new();
    nc_codec::copy_decode(&streamed[..], &mut back, &config).unwrap();
    assert_eq!(back, data);

    let mut sink = Vec::new();
    {
        let mut w = nc_codec::NcWriter::with_config(&mut sink, &config)
            .unwrap()
            .auto_finish();
        w.write_all(&data).unwrap();
    }
    assert_eq!(sink, packed);

    // A reset writer codes the next stream the same way, without building anew.
    let mut w = nc_codec::NcWriter::with_config(Vec::new(), &config).unwrap();
    w.write_all(&data).unwrap();
    w.try_finish().unwrap();
    assert_eq!(w.total_in(), data.len() as u64);
    assert_eq!(w.total_out(), packed.len() as u64);
    let first = w.reset(Vec::new());
    assert_eq!(first, packed);
    w.write_all(b"second").unwrap();
    let second = w.finish().unwrap();
    assert_eq!(nc_codec::decompress(&second, &config).unwrap(), b"second");

    // A reset reader reads the next stream with the predictors it has.
    let mut r = NcReader::with_config(&packed[..], &config).unwrap();
    let mut out = Vec::new();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, data);
    r.reset(&second[..]);
    out.clear();
    r.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"second");
    assert_eq!((r.streams(), r.total_out()), (1, 6));

    // ... and a seeking one seeks in a stream of another predictor after a reset.
    let other = compress(
        b"another predictor entirely",
        &config.clone().predictor(PredictorKind::ContextStats),
    );
    let mut r = NcReader::with_config(Cursor::new(&packed[..]), &config).unwrap();
    r.read_to_end(&mut Vec::new()).unwrap();
    r.reset(Cursor::new(&other[..]));
    r.seek(SeekFrom::Start(8)).unwrap();
    let mut tail = String::new();
    r.read_to_string(&mut tail).unwrap();
    assert_eq!(tail, "predictor entirely");
}
