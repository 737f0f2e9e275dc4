#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| netsleuth_fuzz::ip_route(data));
