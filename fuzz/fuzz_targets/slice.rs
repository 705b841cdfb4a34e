#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| nc_fuzz::slice(data));
