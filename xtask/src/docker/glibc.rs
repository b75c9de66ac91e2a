//! The glibc versions an ELF binary needs and a C library provides, read from their symbol
//! version sections (`.gnu.version_r` and `.gnu.version_d`), so `cargo xtask docker build` can
//! refuse a base image whose glibc is older than the binary was linked against.

use std::fmt;
use std::path::Path;

use anyhow::Context;
use object::read::elf::{FileHeader, SectionTable};
use object::{Endianness, FileKind, elf};

/// A glibc symbol version such as `GLIBC_2.34`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct GlibcVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl GlibcVersion {
    /// Reads `GLIBC_2.34` or `GLIBC_2.2.5`; other version names (`GLIBC_PRIVATE`, `GCC_3.0`)
    /// give `None`.
    pub fn from_symbol_version(name: &str) -> Option<Self> {
        let mut parts = name.strip_prefix("GLIBC_")?.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = match parts.next() {
            Some(part) => part.parse().ok()?,
            None => 0,
        };
        parts.next().is_none().then_some(Self {
            major,
            minor,
            patch,
        })
    }
}

impl fmt::Display for GlibcVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)?;
        if self.patch != 0 {
            write!(f, ".{}", self.patch)?;
        }
        Ok(())
    }
}

/// The newest glibc version among the symbol versions `binary` needs, or `None` for a binary
/// that needs no glibc symbols (static, or musl).
pub fn required_by(binary: &Path) -> anyhow::Result<Option<GlibcVersion>> {
    let data = std::fs::read(binary).with_context(|| format!("read {}", binary.display()))?;
    let names = version_names(&data, VersionSection::Needed)
        .with_context(|| format!("read the symbol versions {} needs", binary.display()))?;
    Ok(newest(&names))
}

/// The newest glibc version `libc` (a `libc.so.6`) defines.
pub fn provided_by(libc: &Path) -> anyhow::Result<Option<GlibcVersion>> {
    let data = std::fs::read(libc).with_context(|| format!("read {}", libc.display()))?;
    let names = version_names(&data, VersionSection::Defined)
        .with_context(|| format!("read the symbol versions {} defines", libc.display()))?;
    Ok(newest(&names))
}

fn newest(names: &[String]) -> Option<GlibcVersion> {
    names
        .iter()
        .filter_map(|name| GlibcVersion::from_symbol_version(name))
        .max()
}

enum VersionSection {
    Needed,
    Defined,
}

fn version_names(data: &[u8], section: VersionSection) -> anyhow::Result<Vec<String>> {
    match FileKind::parse(data).context("not an object file")? {
        FileKind::Elf64 => names_in::<elf::FileHeader64<Endianness>>(data, section),
        FileKind::Elf32 => names_in::<elf::FileHeader32<Endianness>>(data, section),
        other => anyhow::bail!("not an ELF file but {other:?}"),
    }
}

fn names_in<Elf: FileHeader<Endian = Endianness>>(
    data: &[u8],
    section: VersionSection,
) -> anyhow::Result<Vec<String>> {
    let header = Elf::parse(data).context("parse the ELF header")?;
    let endian = header.endian().context("read the ELF byte order")?;
    let sections: SectionTable<'_, Elf> = header
        .sections(endian, data)
        .context("read the ELF section table")?;
    let mut names = Vec::new();
    match section {
        VersionSection::Needed => {
            let Some((mut needs, link)) = sections.gnu_verneed(endian, data)? else {
                return Ok(names);
            };
            let strings = sections.strings(endian, data, link)?;
            while let Some((_, mut auxes)) = needs.next()? {
                while let Some(aux) = auxes.next()? {
                    names.push(String::from_utf8_lossy(aux.name(endian, strings)?).into_owned());
                }
            }
        }
        VersionSection::Defined => {
            let Some((mut defs, link)) = sections.gnu_verdef(endian, data)? else {
                return Ok(names);
            };
            let strings = sections.strings(endian, data, link)?;
            while let Some((_, mut auxes)) = defs.next()? {
                while let Some(aux) = auxes.next()? {
                    names.push(String::from_utf8_lossy(aux.name(endian, strings)?).into_owned());
                }
            }
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbol_versions_parse_and_order() {
        let parse = |name| GlibcVersion::from_symbol_version(name);
        assert_eq!(
            parse("GLIBC_2.2.5"),
            Some(GlibcVersion {
                major: 2,
                minor: 2,
                patch: 5
            })
        );
        assert_eq!(parse("GLIBC_2.34").unwrap().to_string(), "2.34");
        assert_eq!(parse("GLIBC_PRIVATE"), None);
        assert_eq!(parse("GCC_3.0"), None);
        assert!(parse("GLIBC_2.34") > parse("GLIBC_2.4"));
        assert!(parse("GLIBC_2.3.4") > parse("GLIBC_2.3"));
    }

    /// This test binary is linked against the machine's glibc, so it cannot need more than the
    /// machine's libc.so.6 defines.
    #[test]
    fn this_binary_needs_no_newer_glibc_than_the_machine_has() {
        let needed = required_by(&std::env::current_exe().unwrap())
            .unwrap()
            .expect("a test binary linked against glibc needs glibc symbol versions");
        let libc = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib/aarch64-linux-gnu/libc.so.6",
        ]
        .into_iter()
        .map(Path::new)
        .find(|path| path.exists())
        .expect("the machine's libc.so.6");
        let provided = provided_by(libc)
            .unwrap()
            .expect("libc.so.6 defines GLIBC_ versions");
        assert!(needed >= GlibcVersion::from_symbol_version("GLIBC_2.2.5").unwrap());
        assert!(
            needed <= provided,
            "needs {needed}, libc provides {provided}"
        );
    }

    #[test]
    fn a_file_that_is_not_elf_is_named() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), "#!/bin/sh\n").unwrap();
        let err = required_by(file.path()).unwrap_err();
        assert!(
            format!("{err:#}").contains("read the symbol versions"),
            "{err:#}"
        );
    }
}
