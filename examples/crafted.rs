//! Writes crafted streams of at most 4 KB that ask the most decoding work a stream of that
//! size can: for each profile's header, one coded block claiming the most bytes its payload
//! may code (`Header::max_raw_len`), one plain block where the profile has them
//! (`Header::plain_ratio`), and one light block claiming the most a light payload may
//! (`LIGHT_RATIO` bytes per payload byte), each with a payload of zeros (which the decoder
//! reads as the run its model finds likeliest, so it decodes to the claimed length before
//! failing). For the mixing profiles, also `{profile}-sizes.nc`: valid blocks whose
//! lengths need primed states of different table sizes (a block of 20,000 bytes, one of
//! 165,625: each primes anew), then a crafted block as above in what remains; and
//! `{profile}-blocks.nc`: as many tiny valid coded blocks as 4 KB holds (each starts
//! from the primed state anew), then a crafted block in what remains. Where the profile
//! has plain blocks, also `{profile}-primers.nc`: blocks that start from each of its
//! primed states, then a crafted block.
//!
//! `cargo run --release --example crafted -- DIR` then time `nccat -t DIR/*.nc`
//! (`benches/crafted.sh` does both).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod nc_fuzz;

use nc_codec::container::{BlockHeader, BlockKind, MAX_BLOCK_SIZE, MIN_BLOCK_SIZE};
use nc_codec::format::{FLAG_NO_NEURAL, FLAG_X86, LIGHT_RATIO};
use nc_codec::{Config, NcWriter, PredictorKind, Profile};
use std::io::Write;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: crafted DIR");
    std::fs::create_dir_all(&dir).unwrap();
    let profiles = [
        ("fast", PredictorKind::Mix(Profile::Fast)),
        ("default", PredictorKind::Mix(Profile::Default)),
        ("max", PredictorKind::Mix(Profile::Max)),
        ("ctx", PredictorKind::ContextStats),
        ("neural", PredictorKind::Neural),
    ];
    for (name, predictor) in profiles {
        let header = Config::new()
            .predictor(predictor)
            .block_size(MAX_BLOCK_SIZE)
            .header()
            .unwrap();
        // Header, block header, END block header, one index entry, tail: the rest is payload.
        let n = 4096 - (nc_fuzz::framed(&header, &[], 0).len() + 16 + 8);
        let write = |suffix: &str, kind: BlockKind, flags: u8, claim: u64| {
            let path = format!("{dir}/{name}{suffix}.nc");
            let block = claiming(kind, flags, claim, n);
            write_stream(&path, &nc_fuzz::framed(&header, &[block], 0));
            println!("{path}: claims {claim} bytes");
        };
        write("", BlockKind::Coded, 0, header.max_raw_len(n as u32));
        if let Some(ratio) = header.plain_ratio() {
            let claim = n as u64 * u64::from(ratio);
            write("-plain", BlockKind::Coded, FLAG_NO_NEURAL, claim);
            let path = format!("{dir}/{name}-primers.nc");
            let claim = primers_stream(predictor, &path);
            println!("{path}: claims {claim} bytes in its last block");
        }
        write(
            "-light",
            BlockKind::Light,
            0,
            n as u64 * u64::from(LIGHT_RATIO),
        );
        if matches!(predictor, PredictorKind::Mix(_)) {
            let path = format!("{dir}/{name}-sizes.nc");
            let claim = sizes_stream(&header, predictor, &path);
            println!("{path}: claims {claim} bytes in its last block");
            let path = format!("{dir}/{name}-blocks.nc");
            let blocks = blocks_stream(&header, predictor, &path);
            println!("{path}: {blocks} blocks");
        }
    }
}

/// A block of `kind` and `flags` claiming `claim` bytes (at most a block's worth) with a
/// payload of `n` zeros.
fn claiming(kind: BlockKind, flags: u8, claim: u64, n: usize) -> (BlockHeader, Vec<u8>) {
    let header = BlockHeader {
        kind,
        flags,
        raw_len: claim.min(u64::from(MAX_BLOCK_SIZE)) as u32,
        payload_len: n as u32,
        crc: 0,
    };
    (header, vec![0; n])
}

/// Writes `stream`, which must be exactly 4 KB, to `path`.
fn write_stream(path: &str, stream: &[u8]) {
    assert_eq!(stream.len(), 4096);
    std::fs::write(path, stream).unwrap();
}

/// Writes to `path` a 4 KB stream of `header`: valid blocks of 20,000 and 165,625 bytes (a
/// 300-byte noise pattern repeated, coded by `predictor` as the writer codes it), whose
/// table sizes differ from each other and from the last block's, then a crafted coded
/// block of zeros claiming the most its payload may. Returns that claim.
fn sizes_stream(header: &nc_codec::Header, predictor: PredictorKind, path: &str) -> u32 {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let noise: Vec<u8> = (0..300)
        .map(|_| {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            (seed >> 56) as u8
        })
        .collect();
    let blocks: Vec<_> = [20_000u32, 165_625]
        .iter()
        .map(|&len| {
            let data: Vec<u8> = noise.iter().cycle().take(len as usize).copied().collect();
            coded_block(predictor, &data)
        })
        .collect();
    finish(header, blocks, path)
}

/// Writes to `path` a 4 KB stream of `header`: the same tiny coded block (a short text) as
/// many times as fits, then a crafted block in what remains. Returns the count of tiny
/// blocks.
fn blocks_stream(header: &nc_codec::Header, predictor: PredictorKind, path: &str) -> usize {
    let block = coded_block(predictor, &b"abcabcabcabcabcabcabcabcabcabcab"[..]);
    let frame = nc_fuzz::framed(header, &[], 0).len() + 16 + 8;
    // Leave a few bytes of payload for the crafted block.
    let count = (4096 - frame - 8) / (16 + 8 + block.1.len());
    finish(header, vec![block; count], path);
    count
}

/// Writes to `path` a 4 KB stream of `predictor` (one with plain blocks) in blocks of 16
/// KiB: four crafted blocks that each start from another primed state — with and without
/// the neural expert ([`FLAG_NO_NEURAL`]), through the x86 filter ([`FLAG_X86`]) or not —
/// each a full block on the least payload its bound allows, then a crafted coded block as
/// above. A reader starts the blocks of one batch of lanes before decoding any of them,
/// so the stream makes it prime every state a block can start from. Returns the last
/// block's claim.
fn primers_stream(predictor: PredictorKind, path: &str) -> u32 {
    let block = 16 << 10;
    let header = Config::new()
        .predictor(predictor)
        .block_size(block)
        .header()
        .unwrap();
    let blocks = [FLAG_X86, FLAG_X86 | FLAG_NO_NEURAL, FLAG_NO_NEURAL, 0]
        .map(|flags| {
            let ratio = if flags & FLAG_NO_NEURAL != 0 {
                header.plain_ratio()
            } else {
                header.coded_ratio()
            };
            let n = block.div_ceil(ratio.unwrap()) as usize;
            claiming(BlockKind::Coded, flags, u64::from(block), n)
        })
        .to_vec();
    finish(&header, blocks, path)
}

/// `data` as one coded block, as the writer codes it with `predictor`: its header and
/// payload.
fn coded_block(predictor: PredictorKind, data: &[u8]) -> (BlockHeader, Vec<u8>) {
    let config = Config::new()
        .predictor(predictor)
        .block_size((data.len() as u32).max(MIN_BLOCK_SIZE));
    let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
    w.write_all(data).unwrap();
    let stream = w.finish().unwrap();
    // The stream's first block, header and payload, framed again by the caller.
    let at = config.header().unwrap().size();
    let h = &stream[at..at + 16];
    let field = |i: usize| u32::from_le_bytes(h[i..i + 4].try_into().unwrap());
    assert_eq!(h[0], 0, "a coded block");
    let block = BlockHeader {
        kind: BlockKind::Coded,
        flags: h[1],
        raw_len: field(4),
        payload_len: field(8),
        crc: field(12),
    };
    let payload = stream[at + 16..at + 16 + block.payload_len as usize].to_vec();
    (block, payload)
}

/// Writes to `path` a 4 KB stream of `header`: `blocks`, then a crafted coded block of
/// zeros claiming the most its payload may (returned).
fn finish(header: &nc_codec::Header, mut blocks: Vec<(BlockHeader, Vec<u8>)>, path: &str) -> u32 {
    let used: usize = blocks.iter().map(|(_, p)| p.len()).sum();
    let frame = nc_fuzz::framed(header, &[], 0).len() + (16 + 8) * (blocks.len() + 1);
    let n = 4096 - frame - used;
    let last = claiming(BlockKind::Coded, 0, header.max_raw_len(n as u32), n);
    let claim = last.0.raw_len;
    blocks.push(last);
    write_stream(path, &nc_fuzz::framed(header, &blocks, 0));
    claim
}
