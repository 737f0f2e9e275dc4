#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| netsleuth_fuzz::cni(data));
