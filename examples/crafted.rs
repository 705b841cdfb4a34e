//! Writes crafted streams of at most 4 KB that ask the most decoding work a stream of that
//! size can: for each profile's header, one coded block claiming the most bytes its payload
//! may code (`Header::max_raw_len`), and one light block claiming the most a light payload
//! may (`LIGHT_RATIO` bytes per payload byte), each with a payload of zeros (which the
//! decoder reads as the run its model finds likeliest, so it decodes to the claimed length
//! before failing).
//!
//! `cargo run --release --example crafted -- DIR` then time `nccat -t DIR/*.nc`
//! (`benches/crafted.sh` does both).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod nc_fuzz;

use nc_codec::container::{BlockHeader, BlockKind, MAX_BLOCK_SIZE};
use nc_codec::format::LIGHT_RATIO;
use nc_codec::{Config, PredictorKind, Profile};

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
