//! Fuzzes the crash upload parser: any content type and body must give an upload or an error,
//! never a panic or a hang. The first byte picks how much of the input is the content type.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&split, rest)) = data.split_first() else {
        return;
    };
    let split = usize::from(split).min(rest.len());
    let (content_type, body) = rest.split_at(split);
    let content_type = String::from_utf8_lossy(content_type);
    // Half the time a well-formed boundary, so the fuzzer gets past the header quickly.
    let content_type = if split % 2 == 0 {
        "multipart/form-data; boundary=fuzz".to_owned()
    } else {
        content_type.into_owned()
    };
    let body = bytes::Bytes::copy_from_slice(body);
    let _ = futures::executor::block_on(crash_upload::parse(Some(&content_type), body, 1 << 20));
});
