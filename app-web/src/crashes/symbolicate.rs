//! Symbolication: rust-minidump walks the crashing thread's stack with the store's Breakpad
//! symbols (CFI included), and the top frames that are not crash or panic machinery make the
//! report's signature, which groups reports of the same crash.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::Context;
use minidump::Module;
use minidump_unwind::{Symbolizer, simple_symbol_supplier};
use sha2::{Digest, Sha256};

/// Frames of the crashing thread kept per report.
pub const MAX_FRAMES: usize = 64;
/// Frames that make a signature.
pub const SIGNATURE_FRAMES: usize = 3;

/// One frame of the crashing thread (an inlined call is a frame of its own).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Frame {
    /// The module's file name, e.g. `app-desktop` or `libc.so.6`.
    pub module: Option<String>,
    pub function: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// The instruction's offset in its module (or its address outside any), in hex.
    pub offset: String,
    #[serde(default)]
    pub inlined: bool,
}

impl Frame {
    /// How the frame reads in a signature: the function, or `module+offset` without symbols.
    fn label(&self) -> String {
        match (&self.function, &self.module) {
            (Some(function), _) => function.clone(),
            (None, Some(module)) => format!("{module}+{}", self.offset),
            (None, None) => self.offset.clone(),
        }
    }
}

/// What symbolication found in one minidump.
#[derive(Debug, Clone)]
pub struct Processed {
    pub crash_reason: Option<String>,
    pub crash_address: Option<String>,
    pub frames: Vec<Frame>,
    /// Modules of the crashing thread without symbols, as `<debug file>/<debug id>`.
    pub missing_modules: Vec<String>,
}

impl Processed {
    pub fn signature(&self) -> String {
        signature(&self.frames)
    }
}

/// Symbolicates minidumps with one symbol folder. Parsed symbol files stay cached between
/// reports; [`Symbolicator::forget`] drops the cache when new symbols arrive (rust-minidump
/// also remembers which modules had none).
pub struct Symbolicator {
    dir: PathBuf,
    symbolizer: RwLock<Arc<Symbolizer>>,
}

impl Symbolicator {
    pub fn new(dir: PathBuf) -> Self {
        let symbolizer = RwLock::new(Arc::new(new_symbolizer(&dir)));
        Self { dir, symbolizer }
    }

    pub fn forget(&self) {
        let fresh = Arc::new(new_symbolizer(&self.dir));
        *self
            .symbolizer
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = fresh;
    }

    pub async fn process(&self, minidump: &[u8]) -> anyhow::Result<Processed> {
        let dump = minidump::Minidump::read(minidump).context("read the minidump")?;
        let symbolizer = self
            .symbolizer
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone();
        let state = minidump_processor::process_minidump(&dump, symbolizer.as_ref())
            .await
            .context("walk the minidump's stacks")?;
        let thread = state
            .requesting_thread
            .and_then(|index| state.threads.get(index))
            .or_else(|| state.threads.first())
            .context("the minidump has no threads")?;
        let mut frames = Vec::new();
        let mut missing_modules = Vec::new();
        for frame in &thread.frames {
            let module_name = frame
                .module
                .as_ref()
                .map(|module| breakpad_symbols::basename(&module.code_file()).to_owned());
            let offset = match &frame.module {
                Some(module) => format!("{:#x}", frame.instruction - module.base_address()),
                None => format!("{:#x}", frame.instruction),
            };
            for inline in &frame.inlines {
                frames.push(Frame {
                    module: module_name.clone(),
                    function: Some(inline.function_name.clone()),
                    file: inline.source_file_name.clone(),
                    line: inline.source_line,
                    offset: offset.clone(),
                    inlined: true,
                });
            }
            if frame.function_name.is_none()
                && let Some(module) = &frame.module
                && let (Some(file), Some(id)) = (module.debug_file(), module.debug_identifier())
            {
                let key = format!("{}/{}", breakpad_symbols::basename(&file), id.breakpad());
                if !missing_modules.contains(&key) {
                    missing_modules.push(key);
                }
            }
            frames.push(Frame {
                module: module_name,
                function: frame.function_name.clone(),
                file: frame.source_file_name.clone(),
                line: frame.source_line,
                offset,
                inlined: false,
            });
            if frames.len() >= MAX_FRAMES {
                frames.truncate(MAX_FRAMES);
                break;
            }
        }
        let (crash_reason, crash_address) = match &state.exception_info {
            Some(info) => (
                Some(info.reason.to_string()),
                Some(format!("{:#x}", info.address.0)),
            ),
            None => (None, None),
        };
        Ok(Processed {
            crash_reason,
            crash_address,
            frames,
            missing_modules,
        })
    }
}

fn new_symbolizer(dir: &Path) -> Symbolizer {
    Symbolizer::new(simple_symbol_supplier(vec![dir.to_owned()]))
}

/// Functions that belong to crash handling, panicking or aborting rather than to the crash.
const MACHINERY: &[&str] = &[
    "std::panicking",
    "std::panic::",
    "core::panicking",
    "core::panic::",
    "std::sys::",
    "std::rt::",
    "std::process::abort",
    "std::backtrace",
    "rust_begin_unwind",
    "rust_panic",
    "__rust",
    "__rustc::",
    "crash_handler::",
    "minidumper::",
    "app_desktop::crashes::",
    "abort",
    "raise",
    "gsignal",
    "__GI_",
    "__pthread_kill",
    "pthread_kill",
    "__restore_rt",
    "KiUserExceptionDispatcher",
    "RaiseException",
    "__abort_with_payload",
];

/// Where a Rust panic enters the standard library; the caller of the last one is where the
/// panic happened, whatever helper frames (the hook's box, its closure) sit above it.
const PANIC_ENTRIES: &[&str] = &[
    "core::panicking::",
    "std::panicking::begin_panic",
    "core::option::expect_failed",
    "core::option::unwrap_failed",
    "core::result::unwrap_failed",
    "rust_begin_unwind",
    "__rustc::rust_begin_unwind",
];

fn is_machinery(function: &str) -> bool {
    MACHINERY.iter().any(|prefix| function.starts_with(prefix))
}

fn is_panic_entry(function: &str) -> bool {
    PANIC_ENTRIES
        .iter()
        .any(|prefix| function.starts_with(prefix))
}

/// A Rust symbol without its `::h0123456789abcdef` hash suffix.
fn without_hash(function: &str) -> &str {
    match function.rsplit_once("::h") {
        Some((head, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            head
        }
        _ => function,
    }
}

/// The first [`SIGNATURE_FRAMES`] frames after the crash and panic machinery, joined by ` | `:
/// for a panic, from the caller of the standard library's panic entry; otherwise from the first
/// frame that is not signal, abort or crash-handler code.
pub fn signature(frames: &[Frame]) -> String {
    let labels: Vec<String> = frames
        .iter()
        .map(|frame| without_hash(&frame.label()).to_owned())
        .collect();
    let after_panic = labels
        .iter()
        .rposition(|label| is_panic_entry(label))
        .map_or(0, |index| index + 1);
    let start = labels
        .iter()
        .skip(after_panic)
        .position(|label| !is_machinery(label))
        .map_or(0, |index| index + after_panic);
    let top: Vec<&str> = labels
        .iter()
        .skip(start)
        .take(SIGNATURE_FRAMES)
        .map(String::as_str)
        .collect();
    if top.is_empty() {
        "(no frames)".to_owned()
    } else {
        top.join(" | ")
    }
}

/// A short, stable id for a signature, for URLs: 16 hex digits of its SHA-256.
pub fn group_id(signature: &str) -> String {
    hex::encode(&Sha256::digest(signature.as_bytes())[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(function: Option<&str>) -> Frame {
        Frame {
            module: Some("app-desktop".into()),
            function: function.map(str::to_owned),
            file: None,
            line: None,
            offset: "0x1a2b".into(),
            inlined: false,
        }
    }

    #[test]
    fn signatures_skip_panic_and_crash_machinery() {
        let frames = [
            frame(Some("__pthread_kill_implementation")),
            frame(Some("raise")),
            frame(Some("abort")),
            frame(Some(
                "std::sys::pal::unix::abort_internal::h0123456789abcdef",
            )),
            frame(Some("app_desktop::crashes::panic_hook")),
            frame(Some(
                "<alloc::boxed::Box<F,A> as core::ops::function::Fn<Args>>::call",
            )),
            frame(Some("std::panicking::rust_panic_with_hook")),
            frame(Some("core::panicking::panic_fmt")),
            frame(Some("app_desktop::work::parse_settings::h0011223344556677")),
            frame(None),
            frame(Some("app_desktop::main")),
            frame(Some("std::rt::lang_start")),
        ];
        assert_eq!(
            signature(&frames),
            "app_desktop::work::parse_settings | app-desktop+0x1a2b | app_desktop::main"
        );
        assert_eq!(group_id(&signature(&frames)), group_id(&signature(&frames)));
        assert_eq!(group_id("a").len(), 16);
        assert_eq!(signature(&[]), "(no frames)");
        assert_eq!(signature(&[frame(Some("abort"))]), "abort");
    }
}
