//! The symbol store: Breakpad `.sym` files in the layout symbol servers and rust-minidump's
//! simple supplier share, `<debug file>/<debug id>/<debug file minus .pdb>.sym`, each written
//! under a temporary name and renamed into place.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use breakpad_symbols::{SimpleModule, breakpad_sym_lookup};
use debugid::DebugId;

use crate::error::ApiError;

/// Where a module's symbols go in the store, relative to its folder; a 400 naming the field
/// when `debug_file` or `debug_id` cannot name one.
pub fn relative_path(debug_file: &str, debug_id: &str) -> Result<String, ApiError> {
    let bad = |field: &'static str, message: String| ApiError::BadRequest {
        field: Some(field),
        message,
    };
    if debug_file.is_empty()
        || debug_file.len() > 255
        || debug_file.starts_with('.')
        || !debug_file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(bad(
            "module",
            format!(
                "{debug_file:?} is not a module's debug file name (letters, digits, dashes, underscores and dots, as in a .sym file's MODULE line)"
            ),
        ));
    }
    let id = DebugId::from_breakpad(debug_id)
        .ok()
        .filter(|_| debug_id.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| {
            bad(
                "debug_id",
                format!(
                    "{debug_id:?} is not a Breakpad debug id (33 or more hexadecimal digits, as in a .sym file's MODULE line)"
                ),
            )
        })?;
    let lookup = breakpad_sym_lookup(&SimpleModule::new(debug_file, id))
        .ok_or_else(|| bad("module", format!("no symbol path for {debug_file:?}")))?;
    Ok(lookup.cache_rel)
}

/// The `MODULE <os> <arch> <debug id> <debug file>` line that starts every `.sym` file.
#[derive(Debug, PartialEq, Eq)]
pub struct ModuleLine {
    pub os: String,
    pub arch: String,
    pub debug_id: String,
    pub debug_file: String,
}

impl FromStr for ModuleLine {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let line = text.lines().next().unwrap_or_default();
        let mut words = line.splitn(5, ' ');
        match (
            words.next(),
            words.next(),
            words.next(),
            words.next(),
            words.next(),
        ) {
            (Some("MODULE"), Some(os), Some(arch), Some(id), Some(file)) => Ok(Self {
                os: os.to_owned(),
                arch: arch.to_owned(),
                debug_id: id.to_owned(),
                debug_file: file.trim_end().to_owned(),
            }),
            _ => Err(format!(
                "a Breakpad symbol file starts with `MODULE <os> <arch> <debug id> <debug file>`, not {:?}",
                line.chars().take(120).collect::<String>()
            )),
        }
    }
}

/// A folder of symbol files.
#[derive(Debug, Clone)]
pub struct SymbolStore {
    dir: PathBuf,
}

impl SymbolStore {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores `sym` for (`debug_file`, `debug_id`) after checking that its MODULE line names
    /// the same module. Storing the same file again replaces it. Returns the path written.
    pub fn save(&self, debug_file: &str, debug_id: &str, sym: &[u8]) -> Result<PathBuf, ApiError> {
        let relative = relative_path(debug_file, debug_id)?;
        let head = String::from_utf8_lossy(&sym[..sym.len().min(1024)]);
        let module: ModuleLine = head.parse().map_err(|message| ApiError::BadRequest {
            field: Some("body"),
            message,
        })?;
        if !module.debug_id.eq_ignore_ascii_case(debug_id) || module.debug_file != debug_file {
            return Err(ApiError::BadRequest {
                field: Some("body"),
                message: format!(
                    "the file is for {} {}, but was sent as {debug_file} {debug_id}",
                    module.debug_file, module.debug_id
                ),
            });
        }
        let path = self.dir.join(relative);
        write_replacing(&path, sym).map_err(|err| {
            ApiError::Internal(format!("write symbols to {}: {err:#}", path.display()))
        })?;
        Ok(path)
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it over `path` and syncs
/// the folder, so after a power cut `path` holds the old or the new contents, whole.
pub fn write_replacing(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| anyhow::anyhow!("{} has no folder", path.display()))?;
    std::fs::create_dir_all(dir)?;
    let mut file = tempfile::NamedTempFile::new_in(dir)?;
    file.write_all(bytes)?;
    file.as_file().sync_all()?;
    file.persist(path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5A9832E5287241C1838ED98914E9B7FF1";

    #[test]
    fn paths_follow_the_symbol_server_layout() {
        assert_eq!(
            relative_path("app-desktop", ID).unwrap(),
            format!("app-desktop/{ID}/app-desktop.sym")
        );
        assert_eq!(
            relative_path("app_desktop.pdb", ID).unwrap(),
            format!("app_desktop.pdb/{ID}/app_desktop.sym")
        );
        for module in ["", "../etc", "a/b", ".hidden", "a b"] {
            assert!(relative_path(module, ID).is_err(), "{module:?}");
        }
        for id in ["", "xyz", "5A9832E5/287241C1838ED98914E9B7FF1"] {
            assert!(relative_path("app-desktop", id).is_err(), "{id:?}");
        }
    }

    #[test]
    fn a_file_must_be_for_the_module_it_is_stored_as() {
        let dir = tempfile::tempdir().unwrap();
        let store = SymbolStore::new(dir.path().to_owned());
        let sym = format!("MODULE Linux x86_64 {ID} app-desktop\nFILE 0 src/main.rs\n");
        let path = store.save("app-desktop", ID, sym.as_bytes()).unwrap();
        assert_eq!(std::fs::read_to_string(path).unwrap(), sym);
        assert!(store.save("other", ID, sym.as_bytes()).is_err());
        assert!(
            store
                .save(
                    "app-desktop",
                    "5A9832E5287241C1838ED98914E9B7FF2",
                    sym.as_bytes()
                )
                .is_err()
        );
        assert!(store.save("app-desktop", ID, b"not symbols").is_err());
    }
}
