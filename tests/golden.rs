//! Golden streams: committed `.nc` files and their originals. Decoding them guards the
//! format; re-encoding them byte for byte guards the encoder (a model or coder change that
//! alters the output must bump the format version or be deliberate: regenerate with
//! `NC_BLESS=1 cargo test --test golden` and say why in the commit).

use std::io::{Cursor, Read};
use std::path::PathBuf;
use std::sync::Arc;

use nc_codec::container::{
    BlockKind, StreamIndex, BLOCK_HEADER_LEN, FLAG_NO_NEURAL, FLAG_X86, VERSION,
};
use nc_codec::experts::NeuralModel;
use nc_codec::{Config, NcReader, NcWriter, PredictorKind, Profile};

mod common;

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The small test model (`onnx-models/nc-test32.onnx`) for the neural streams.
fn test_model() -> Arc<NeuralModel> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("onnx-models/nc-test32.onnx");
    Arc::new(NeuralModel::from_file(path).unwrap())
}

fn config(block_size: u32, predictor: PredictorKind) -> Config {
    let config = Config::new().block_size(block_size).predictor(predictor);
    if predictor.uses_model() {
        config.model(test_model())
    } else {
        config
    }
}

fn encode(original: &[u8], config: &Config) -> Vec<u8> {
    use std::io::Write;
    let mut w = NcWriter::with_config(Vec::new(), config).unwrap();
    w.write_all(original).unwrap();
    w.finish().unwrap()
}

/// (original, suffix of its stream, predictor, primed): the committed streams of each
/// version, for the context-statistics predictor, the mixing predictor's default (primed
/// and unprimed), fast and max profiles, and the neural model alone (the last two with the
/// test model).
const CASES: [(&str, &str, PredictorKind, bool); 9] = [
    ("prose.txt", "ctx.nc", PredictorKind::ContextStats, true),
    ("mixed.bin", "ctx.nc", PredictorKind::ContextStats, true),
    (
        "prose.txt",
        "mix.nc",
        PredictorKind::Mix(Profile::Default),
        true,
    ),
    (
        "mixed.bin",
        "mix.nc",
        PredictorKind::Mix(Profile::Default),
        true,
    ),
    (
        "prose.txt",
        "unprimed.mix.nc",
        PredictorKind::Mix(Profile::Default),
        false,
    ),
    (
        "mixed.bin",
        "unprimed.mix.nc",
        PredictorKind::Mix(Profile::Default),
        false,
    ),
    (
        "prose.txt",
        "fast.nc",
        PredictorKind::Mix(Profile::Fast),
        true,
    ),
    (
        "prose.txt",
        "max.nc",
        PredictorKind::Mix(Profile::Max),
        true,
    ),
    ("prose.txt", "neural.nc", PredictorKind::Neural, true),
];

#[test]
fn golden_streams_decode_and_reencode_identically() {
    let bless = std::env::var_os("NC_BLESS").is_some();
    // The streams this build writes (format version 13).
    for (name, suffix, predictor, primed) in CASES {
        let original = std::fs::read(golden_dir().join(name)).unwrap();
        let nc_path = golden_dir().join(format!("{name}.{suffix}"));
        let config = config(1024, predictor).primer(primed);
        if bless {
            std::fs::write(&nc_path, encode(&original, &config)).unwrap();
        }
        let stream = std::fs::read(&nc_path).unwrap();
        assert_eq!(
            u16::from_le_bytes([stream[4], stream[5]]),
            VERSION,
            "{name}.{suffix}"
        );
        assert_eq!(
            decode_with(&stream, &config).unwrap(),
            original,
            "{name}: golden stream decodes wrongly"
        );

        let index = StreamIndex::read_from(&mut Cursor::new(&stream[..])).unwrap();
        assert!(
            index.blocks.len() > 1,
            "{name}: golden streams should span blocks"
        );
        assert_eq!(
            encode(&original, &config.block_size(index.header.block_size)),
            stream,
            "{name}: the encoder's output changed"
        );
    }
}

/// Version 9 streams of every predictor: version 10 only adds the bound on bytes per payload
/// byte (which these streams keep) and the zero padding that enforces it, so they decode, and
/// their payloads must end where the code does.
#[test]
fn version_9_streams_decode() {
    streams_of_version_decode(9);
}

/// Version 11 streams of every predictor: version 12 adds light blocks and bounds coded
/// blocks to 64 bytes per payload byte (these streams keep it), so they decode.
#[test]
fn version_11_streams_decode() {
    streams_of_version_decode(11);
}

/// Version 12 streams of every predictor, and one with light blocks: version 13 adds plain
/// blocks and bounds blocks that run the neural expert to 12 bytes per payload byte (these
/// streams keep it), so they decode.
#[test]
fn version_12_streams_decode() {
    streams_of_version_decode(12);
    let (original, stream) = older_stream("sparse.bin", "v12.mix.nc", 12);
    let config = config(1024, PredictorKind::Mix(Profile::Default));
    assert_eq!(decode_with(&stream, &config).unwrap(), original);
}

/// A stream with runs: the blocks of runs are light, the others coded, and the encoder's
/// choice between them is part of what the golden stream guards.
#[test]
fn light_blocks_decode_and_reencode_identically() {
    let kinds = sparse_stream("sparse.bin.mix.nc", PredictorKind::Mix(Profile::Default));
    assert!(kinds.contains(&(BlockKind::Light, 0)), "{kinds:?}");
    assert!(kinds.contains(&(BlockKind::Coded, 0)), "{kinds:?}");
}

/// The same with the neural expert (`max`): blocks are plain (coded without it) where
/// that is shorter, as every block is with the tiny test model, or light. A plain block
/// runs `default`'s experts, so its payload is the one the `default` stream has for it.
#[test]
fn plain_blocks_decode_and_reencode_identically() {
    let kinds = sparse_stream("sparse.bin.max.nc", PredictorKind::Mix(Profile::Max));
    assert!(
        kinds.contains(&(BlockKind::Coded, FLAG_NO_NEURAL)),
        "{kinds:?}"
    );
    assert!(kinds.contains(&(BlockKind::Light, 0)), "{kinds:?}");
    let max = std::fs::read(golden_dir().join("sparse.bin.max.nc")).unwrap();
    let default = std::fs::read(golden_dir().join("sparse.bin.mix.nc")).unwrap();
    let blocks = |stream: &[u8]| {
        let index = StreamIndex::read_from(&mut Cursor::new(stream)).unwrap();
        index
            .blocks
            .iter()
            .map(|b| {
                let at = (b.offset as usize) + BLOCK_HEADER_LEN;
                (
                    b.kind,
                    b.flags,
                    stream[at..at + b.payload_len as usize].to_vec(),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut compared = 0;
    for (m, d) in blocks(&max).iter().zip(blocks(&default)) {
        if (m.0, m.1) == (BlockKind::Coded, FLAG_NO_NEURAL) && d.0 == BlockKind::Coded {
            assert_eq!(m.2, d.2, "a plain block codes as default does");
            compared += 1;
        }
    }
    assert!(compared > 0);
}

/// A block longer than the plain pass's probe (32 KiB) whose plain code wins is still
/// coded plain: binary records that the tiny test model knows nothing of, in one block of
/// 64 KiB that codes above the neural expert's bound (so the probe decides).
#[test]
fn long_blocks_are_coded_plain_where_that_wins() {
    let mut rng = common::Rng(0x2545_f491_4f6c_dd1d);
    let mut records = Vec::new();
    for i in 0..(64 << 10) / 16 {
        records.extend_from_slice(&(i as u32).to_le_bytes());
        records.extend_from_slice(&[0, 0, 1, 0]);
        records.extend_from_slice(&rng.below(1_000_000).to_le_bytes());
    }
    let config = config(64 << 10, PredictorKind::Mix(Profile::Max));
    let stream = encode(&records, &config);
    assert_eq!(decode_with(&stream, &config).unwrap(), records);
    let index = StreamIndex::read_from(&mut Cursor::new(&stream[..])).unwrap();
    let kinds: Vec<_> = index.blocks.iter().map(|b| (b.kind, b.flags)).collect();
    assert_eq!(kinds, [(BlockKind::Coded, FLAG_NO_NEURAL)]);
}

/// `max` with the embedded model: its blocks of prose code shorter with the neural expert
/// than plain, so they run it (the test model's streams hold plain blocks alone).
#[test]
fn neural_blocks_of_max_decode_and_reencode_identically() {
    let config = Config::new()
        .block_size(1024)
        .predictor(PredictorKind::Mix(Profile::Max))
        .model(NeuralModel::default_model().unwrap());
    let kinds = golden_stream_with("prose.txt", "prose.txt.max-gru256.nc", &config);
    assert!(
        kinds
            .iter()
            .any(|&(k, f)| k == BlockKind::Coded && f & FLAG_NO_NEURAL == 0),
        "{kinds:?}"
    );
}

/// Checks (or with `NC_BLESS` writes) the golden stream `name` of `sparse.bin` in 2 KiB
/// blocks (its first is all zeros, which the light coder codes in fewer bytes than the
/// 16 a coded block of 2 KiB may have); returns each block's kind and flags.
fn sparse_stream(name: &str, predictor: PredictorKind) -> Vec<(BlockKind, u8)> {
    golden_stream_with("sparse.bin", name, &config(2048, predictor))
}

/// Synthetic x86-64 code (calls and RIP-relative loads, `x86.bin`): every block goes
/// through the x86 filter (format version 13), and decodes and re-encodes byte for byte.
#[test]
fn x86_blocks_decode_and_reencode_identically() {
    let kinds = golden_stream(
        "x86.bin",
        "x86.bin.mix.nc",
        PredictorKind::Mix(Profile::Default),
    );
    assert!(kinds.len() > 1, "{kinds:?}");
    assert!(
        kinds.iter().all(|&(_, flags)| flags & FLAG_X86 != 0),
        "{kinds:?}"
    );
}

/// Checks (or with `NC_BLESS` writes) the golden stream `name` of the input `input` in 1
/// KiB blocks; returns each block's kind and flags.
fn golden_stream(input: &str, name: &str, predictor: PredictorKind) -> Vec<(BlockKind, u8)> {
    golden_stream_with(input, name, &config(1024, predictor))
}

/// [`golden_stream`] with `config`.
fn golden_stream_with(input: &str, name: &str, config: &Config) -> Vec<(BlockKind, u8)> {
    let original = std::fs::read(golden_dir().join(input)).unwrap();
    let nc_path = golden_dir().join(name);
    let config = config.clone();
    if std::env::var_os("NC_BLESS").is_some() {
        std::fs::write(&nc_path, encode(&original, &config)).unwrap();
    }
    let stream = std::fs::read(&nc_path).unwrap();
    assert_eq!(decode_with(&stream, &config).unwrap(), original);
    assert_eq!(
        encode(&original, &config),
        stream,
        "the encoder's output changed"
    );
    let index = StreamIndex::read_from(&mut Cursor::new(&stream[..])).unwrap();
    index
        .blocks
        .iter()
        .map(|b| {
            let at = b.offset as usize;
            let kind = match stream[at] {
                0 => BlockKind::Coded,
                1 => BlockKind::Stored,
                3 => BlockKind::Light,
                k => panic!("block kind {k}"),
            };
            (kind, stream[at + 1])
        })
        .collect()
}

/// Version 10 streams of every predictor: version 11 changes only the neural expert's
/// online layer (`max` and `neural` streams), which this build still computes the version
/// 10 way for them.
#[test]
fn version_10_streams_decode() {
    streams_of_version_decode(10);
}

/// The committed streams of format `version`, one per predictor and profile.
fn streams_of_version_decode(version: u16) {
    for (name, suffix, predictor, primed) in CASES {
        let (original, stream) = older_stream(name, &format!("v{version}.{suffix}"), version);
        let config = config(1024, predictor).primer(primed);
        assert_eq!(
            decode_with(&stream, &config).unwrap(),
            original,
            "{name}.v{version}.{suffix}"
        );
    }
}

/// Version 8 streams of the mixing predictor (default primed and unprimed, fast, max): this
/// build still codes them a nibble at a time (version 9 codes 8 binary decisions), so they
/// decode.
#[test]
fn version_8_mixing_streams_decode() {
    for (name, predictor, primed) in [
        ("prose.txt.v8.mix.nc", Profile::Default, true),
        ("mixed.bin.v8.mix.nc", Profile::Default, true),
        ("prose.txt.v8.unprimed.mix.nc", Profile::Default, false),
        ("prose.txt.v8.fast.nc", Profile::Fast, true),
        ("prose.txt.v8.max.nc", Profile::Max, true),
    ] {
        let (stem, suffix) = name.split_once(".v").unwrap();
        let (original, stream) = older_stream(stem, &format!("v{suffix}"), 8);
        let config = config(1024, PredictorKind::Mix(predictor)).primer(primed);
        assert_eq!(decode_with(&stream, &config).unwrap(), original, "{name}");
    }
}

/// Version 6 streams of the mixing predictor (default, fast and max profiles): version 7
/// without the primer flag computes exactly as version 6, so they decode.
#[test]
fn version_6_mixing_streams_decode() {
    for (name, predictor) in [
        ("prose.txt.v6.mix.nc", Profile::Default),
        ("mixed.bin.v6.mix.nc", Profile::Default),
        ("prose.txt.v6.fast.nc", Profile::Fast),
        ("prose.txt.v6.max.nc", Profile::Max),
    ] {
        let (stem, suffix) = name.split_once(".v").unwrap();
        let (original, stream) = older_stream(stem, &format!("v{suffix}"), 6);
        let config = config(1024, PredictorKind::Mix(predictor));
        assert_eq!(decode_with(&stream, &config).unwrap(), original, "{name}");
    }
}

/// The primer pays where it should: the primed default stream of the golden prose is
/// smaller than the unprimed one.
#[test]
fn primed_streams_are_smaller() {
    let size = |suffix: &str| std::fs::metadata(golden_dir().join(suffix)).unwrap().len();
    let (primed, unprimed) = (size("prose.txt.mix.nc"), size("prose.txt.unprimed.mix.nc"));
    // Measured: 589 bytes against 919 (0.64); `ls -l tests/golden` shows both.
    assert!(
        primed * 100 < unprimed * 95,
        "primed {primed}, unprimed {unprimed}"
    );
}

/// Version 5 streams of the mixing predictor, with and without the neural expert: this build
/// still codes them a byte at a time, subtrees below 2^-7 of the mass shared by counts
/// (version 6 codes a nibble at a time), and reads their 76-byte header.
#[test]
fn version_5_mixing_streams_decode() {
    for name in [
        "prose.txt.v5.mix.nc",
        "mixed.bin.v5.mix.nc",
        "prose.txt.v5.max.nc",
    ] {
        let (stem, suffix) = name.split_once(".v").unwrap();
        let (original, stream) = older_stream(stem, &format!("v{suffix}"), 5);
        let config = config(1024, PredictorKind::Mix(Profile::Max));
        assert_eq!(decode_with(&stream, &config).unwrap(), original, "{name}");
        // Its 28-byte tail, with the total length, is read from the end too.
        let index = StreamIndex::read_from(&mut Cursor::new(&stream[..])).unwrap();
        assert_eq!(index.total_len, original.len() as u64, "{name}");
        assert_eq!(index.content_crc, crc32fast::hash(&original), "{name}");
    }
}

/// Version 4 streams of the mixing predictor: this build still computes them without the
/// record contexts and with flat subtrees shared evenly (version 5), so they decode to the
/// original.
#[test]
fn version_4_mixing_streams_decode() {
    for name in ["prose.txt", "mixed.bin"] {
        let (original, stream) = older_stream(name, "v4.mix.nc", 4);
        assert_eq!(decode(&stream).unwrap(), original, "{name}.v4.mix.nc");
    }
}

/// Older streams of the neural expert, alone and in the max profile: this build still
/// computes version 3 (no online output layer, which came with version 4) and version 7
/// (plain online steps, before version 8's normalised steps and learned scale), so they
/// decode to the original.
#[test]
fn older_neural_streams_decode() {
    for (version, suffix, predictor) in [
        (3, "v3.neural.nc", PredictorKind::Neural),
        (3, "v3.max.nc", PredictorKind::Mix(Profile::Max)),
        (7, "v7.neural.nc", PredictorKind::Neural),
        (7, "v7.max.nc", PredictorKind::Mix(Profile::Max)),
    ] {
        let (original, stream) = older_stream("prose.txt", suffix, version);
        assert_eq!(
            decode_with(&stream, &config(1024, predictor)).unwrap(),
            original,
            "prose.txt.{suffix}"
        );
    }
}

/// Version 2 streams of the mixing predictor (default and fast profiles): this build still
/// computes version 2's arithmetic (the smaller context table, no counter setback), so they
/// decode to the original.
#[test]
fn version_2_mixing_streams_decode() {
    for (name, suffix) in [
        ("prose.txt", "v2.mix.nc"),
        ("mixed.bin", "v2.mix.nc"),
        ("prose.txt", "v2.fast.nc"),
    ] {
        let (original, stream) = older_stream(name, suffix, 2);
        assert_eq!(decode(&stream).unwrap(), original, "{name}.{suffix}");
    }
}

/// Version 1 streams: the context-statistics predictor's arithmetic is unchanged since
/// version 1, so they still decode; the mixing predictor's changed, so they are refused
/// (never decoded into wrong bytes).
#[test]
fn version_1_streams_decode_or_are_refused() {
    for name in ["prose.txt", "mixed.bin"] {
        let (original, stream) = older_stream(name, "nc", 1);
        assert_eq!(decode(&stream).unwrap(), original, "{name}.nc");
    }
    let (_, stream) = older_stream("prose.txt", "v1.mix.nc", 1);
    let err = decode(&stream).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported, "{err}");
    assert!(err.to_string().contains("version 1"), "{err}");
}

/// The original `name` and its committed stream `name.suffix`, which must be a format
/// `version` stream.
fn older_stream(name: &str, suffix: &str, version: u16) -> (Vec<u8>, Vec<u8>) {
    let original = std::fs::read(golden_dir().join(name)).unwrap();
    let stream = std::fs::read(golden_dir().join(format!("{name}.{suffix}"))).unwrap();
    assert_eq!(
        u16::from_le_bytes([stream[4], stream[5]]),
        version,
        "{name}.{suffix}"
    );
    (original, stream)
}

fn decode(stream: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut decoded = Vec::new();
    NcReader::new(stream).read_to_end(&mut decoded)?;
    Ok(decoded)
}

fn decode_with(stream: &[u8], config: &Config) -> std::io::Result<Vec<u8>> {
    let mut decoded = Vec::new();
    NcReader::with_config(stream, config)?.read_to_end(&mut decoded)?;
    Ok(decoded)
}
