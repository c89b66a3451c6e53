//! The pcap/pcapng file reader: the input is a whole capture file, written to a private
//! file under /dev/shm (the reader takes a path) and read to the end.
#![no_main]

use std::io::Write;

use fivewatch::capture::file::FileSource;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir();
    let path = dir.join(format!("fivewatch-fuzz-{}.pcap", std::process::id()));
    let Ok(mut f) = std::fs::File::create(&path) else {
        return;
    };
    if f.write_all(data).is_err() {
        return;
    }
    drop(f);
    if let Ok(mut src) = FileSource::open(&path) {
        let mut frames = 0u64;
        let _ = src.for_each(|fr| {
            frames += 1;
            std::hint::black_box(fr.data.len());
        });
    }
    let _ = std::fs::remove_file(&path);
});
