//! Test-only crashes, compiled only with the `test-hooks` feature (never in release bundles):
//! `APP_DESKTOP_TEST_CRASH=segfault` writes through a null pointer and `=panic` panics, each
//! inside a function of its own that the crash report tests look for in the symbolicated stack;
//! `APP_DESKTOP_TEST_SERVER` replaces the build's server for crash reports and analytics.

/// The environment variable that asks for a crash.
pub const VARIABLE: &str = "APP_DESKTOP_TEST_CRASH";
/// The environment variable that names the server reports and events go to.
pub const SERVER_VARIABLE: &str = "APP_DESKTOP_TEST_SERVER";

/// Crashes as the environment asks, on a thread of its own, once the app is up.
pub fn crash_if_asked() {
    let Ok(kind) = std::env::var(VARIABLE) else {
        return;
    };
    eprintln!("app-desktop: {VARIABLE}={kind}: crashing on purpose");
    std::thread::Builder::new()
        .name("test-crash".into())
        .spawn(move || match kind.as_str() {
            "segfault" => write_through_null_pointer(std::hint::black_box(0x2a)),
            "panic" => panic_with_message(std::hint::black_box(7)),
            other => eprintln!("app-desktop: {VARIABLE}={other} is not segfault or panic"),
        })
        .expect("start the test-crash thread");
}

#[inline(never)]
fn write_through_null_pointer(value: u32) {
    let target: *mut u32 = std::hint::black_box(std::ptr::null_mut());
    // SAFETY: none; this is the crash the test asks for.
    unsafe { target.write_volatile(value) };
}

#[inline(never)]
fn panic_with_message(index: usize) {
    let items = std::hint::black_box([1, 2, 3]);
    panic!(
        "test-hooks panic: index {index} is out of range for {} items",
        items.len()
    );
}
