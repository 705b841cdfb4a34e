//! Writes crafted streams of at most 4 KB that ask the most decoding work a stream of that
//! size can: for each profile's header, one coded block claiming the most bytes its payload
//! may code (`Header::max_raw_len`), one plain block where the profile has them
//! (`Header::plain_ratio`), and one light block claiming the most a light payload may
//! (`LIGHT_RATIO` bytes per payload byte), each with a payload of zeros (which the decoder
//! reads as the run its model finds likeliest, so it decodes to the claimed length before
//! failing). For the mixing profiles, also `{profile}-sizes.nc`: valid blocks whose
//! lengths need primed states of different table sizes (a block of 20,000 bytes, one of
//! 165,625: each primes anew, ~0.4 s), then a crafted block as above in what remains.
//!
//! `cargo run --release --example crafted -- DIR` then time `nccat -t DIR/*.nc`
//! (`benches/crafted.sh` does both).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod nc_fuzz;

use nc_codec::container::{BlockHeader, BlockKind, MAX_BLOCK_SIZE};
use nc_codec::format::{FLAG_NO_NEURAL, LIGHT_RATIO};
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
        let frame = nc_fuzz::framed(&header, &[], 0).len() + 16 + 8;
        let payload = vec![0u8; 4096 - frame];
        let claim = header
            .max_raw_len(payload.len() as u32)
            .min(u64::from(MAX_BLOCK_SIZE)) as u32;
        let stream = nc_fuzz::claimed(&header, &[(claim, payload.clone())]);
        assert_eq!(stream.len(), 4096);
        let path = format!("{dir}/{name}.nc");
        std::fs::write(&path, &stream).unwrap();
        println!("{path}: claims {claim} bytes");

        if matches!(predictor, PredictorKind::Mix(_)) {
            let path = format!("{dir}/{name}-sizes.nc");
            let claim = sizes_stream(&header, predictor, &path);
            println!("{path}: claims {claim} bytes in its last block");
        }

        if let Some(ratio) = header.plain_ratio() {
            let claim = (payload.len() as u64 * u64::from(ratio)).min(u64::from(MAX_BLOCK_SIZE));
            let plain = BlockHeader {
                kind: BlockKind::Coded,
                flags: FLAG_NO_NEURAL,
                raw_len: claim as u32,
                payload_len: payload.len() as u32,
                crc: 0,
            };
            let stream = nc_fuzz::framed(&header, &[(plain, payload.clone())], 0);
            assert_eq!(stream.len(), 4096);
            let path = format!("{dir}/{name}-plain.nc");
            std::fs::write(&path, &stream).unwrap();
            println!("{path}: claims {claim} bytes");
        }

        let claim = (payload.len() as u64 * u64::from(LIGHT_RATIO)).min(u64::from(MAX_BLOCK_SIZE));
        let light = BlockHeader {
            kind: BlockKind::Light,
            flags: 0,
            raw_len: claim as u32,
            payload_len: payload.len() as u32,
            crc: 0,
        };
        let stream = nc_fuzz::framed(&header, &[(light, payload)], 0);
        assert_eq!(stream.len(), 4096);
        let path = format!("{dir}/{name}-light.nc");
        std::fs::write(&path, &stream).unwrap();
        println!("{path}: claims {claim} bytes");
    }
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
    let mut blocks = Vec::new();
    for len in [20_000u32, 165_625] {
        let config = Config::new().predictor(predictor).block_size(len);
        let mut w = NcWriter::with_config(Vec::new(), &config).unwrap();
        let data: Vec<u8> = noise.iter().cycle().take(len as usize).copied().collect();
        w.write_all(&data).unwrap();
        let stream = w.finish().unwrap();
        // The stream's first block, header and payload, framed again below as block i.
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
        blocks.push((block, payload));
    }
    let used: usize = blocks.iter().map(|(_, p)| p.len()).sum();
    let frame = nc_fuzz::framed(header, &[], 0).len() + (16 + 8) * (blocks.len() + 1);
    let payload = vec![0u8; 4096 - frame - used];
    let claim = header
        .max_raw_len(payload.len() as u32)
        .min(u64::from(MAX_BLOCK_SIZE)) as u32;
    let last = BlockHeader {
        kind: BlockKind::Coded,
        flags: 0,
        raw_len: claim,
        payload_len: payload.len() as u32,
        crc: 0,
    };
    blocks.push((last, payload));
    let stream = nc_fuzz::framed(header, &blocks, 0);
    assert_eq!(stream.len(), 4096);
    std::fs::write(path, &stream).unwrap();
    claim
}
