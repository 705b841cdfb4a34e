//! Writes crafted streams of at most 4 KB that ask the most decoding work a stream of that
//! size can: one coded block, of each profile's header, claiming the most bytes its payload
//! may code (`Header::max_raw_len`), with a payload of zeros (which the decoder reads as the
//! run its model finds likeliest, so it decodes to the claimed length before failing).
//!
//! `cargo run --release --example crafted -- DIR` then time `nccat -t DIR/*.nc`
//! (`benches/crafted.sh` does both).

#[allow(dead_code)]
#[path = "../fuzz/src/lib.rs"]
mod nc_fuzz;

use nc_codec::container::MAX_BLOCK_SIZE;
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
        let stream = nc_fuzz::claimed(&header, &[(claim, payload)]);
        assert_eq!(stream.len(), 4096);
        let path = format!("{dir}/{name}.nc");
        std::fs::write(&path, &stream).unwrap();
        println!("{path}: claims {claim} bytes");
    }
}
