//! `cargo xtask icons [--check]`: every app icon from one source image,
//! app-desktop/icons/icon.svg: the PNGs that tauri.conf.json lists (Linux packages and the
//! window), icon.ico for the Windows installers and icon.icns for the macOS app. `--check`
//! fails when a committed icon differs from what the source renders to.

use std::path::Path;

use anyhow::Context;
use resvg::{tiny_skia, usvg};

use crate::{flags, path};

/// The source image, relative to the icons folder.
pub const SOURCE: &str = "icon.svg";

/// The PNG files and their edge in pixels.
const PNGS: &[(&str, u32)] = &[
    ("32x32.png", 32),
    ("64x64.png", 64),
    ("128x128.png", 128),
    ("128x128@2x.png", 256),
    ("icon.png", 512),
];

/// The layers of icon.ico: what Windows Explorer, the taskbar and installers pick from.
const ICO_SIZES: &[u32] = &[16, 24, 32, 48, 64, 256];

/// The layers of icon.icns, each with the type macOS reads it as.
const ICNS_LAYERS: &[(u32, tauri_icns::IconType)] = &[
    (16, tauri_icns::IconType::RGBA32_16x16),
    (32, tauri_icns::IconType::RGBA32_16x16_2x),
    (32, tauri_icns::IconType::RGBA32_32x32),
    (64, tauri_icns::IconType::RGBA32_32x32_2x),
    (128, tauri_icns::IconType::RGBA32_128x128),
    (256, tauri_icns::IconType::RGBA32_128x128_2x),
    (256, tauri_icns::IconType::RGBA32_256x256),
    (512, tauri_icns::IconType::RGBA32_256x256_2x),
    (512, tauri_icns::IconType::RGBA32_512x512),
    (1024, tauri_icns::IconType::RGBA32_512x512_2x),
];

impl flags::Icons {
    pub fn run(self, _sh: &xshell::Shell) -> anyhow::Result<()> {
        let dir = path::desktop_dir().join("icons");
        let icons = render_all(&dir)?;
        if self.check {
            let stale = stale(&dir, &icons);
            anyhow::ensure!(
                stale.is_empty(),
                "{} differ from {SOURCE}: run `cargo xtask icons` and commit the result",
                stale.join(", ")
            );
            eprintln!("xtask: {} icons match {SOURCE}", icons.len());
            return Ok(());
        }
        for (name, bytes) in &icons {
            crate::atomic_file::write(&dir.join(name), bytes, 0o644)?;
        }
        eprintln!(
            "xtask: wrote {} icons from {SOURCE} into {}",
            icons.len(),
            dir.display()
        );
        Ok(())
    }
}

/// Every icon file's name and bytes, rendered from the source in `dir`.
pub fn render_all(dir: &Path) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let source = dir.join(SOURCE);
    let data = std::fs::read(&source).with_context(|| format!("read {}", source.display()))?;
    let tree = usvg::Tree::from_data(&data, &usvg::Options::default())
        .with_context(|| format!("{} is not an SVG image", source.display()))?;
    let size = tree.size();
    anyhow::ensure!(
        (size.width() - size.height()).abs() < f32::EPSILON,
        "{} is {}x{}; an icon source must be square",
        source.display(),
        size.width(),
        size.height()
    );
    let render = |edge: u32| -> anyhow::Result<tiny_skia::Pixmap> {
        let mut pixmap = tiny_skia::Pixmap::new(edge, edge).context("an empty icon size")?;
        let scale = edge as f32 / size.width();
        resvg::render(
            &tree,
            tiny_skia::Transform::from_scale(scale, scale),
            &mut pixmap.as_mut(),
        );
        Ok(pixmap)
    };

    let mut icons = Vec::new();
    for (name, edge) in PNGS {
        let png = render(*edge)?
            .encode_png()
            .with_context(|| format!("encode {name}"))?;
        icons.push(((*name).to_owned(), png));
    }

    let mut ico = ico::IconDir::new(ico::ResourceType::Icon);
    for edge in ICO_SIZES {
        let image = ico::IconImage::from_rgba_data(*edge, *edge, straight_rgba(&render(*edge)?));
        ico.add_entry(ico::IconDirEntry::encode(&image).context("encode an icon.ico layer")?);
    }
    let mut bytes = Vec::new();
    ico.write(&mut bytes).context("write icon.ico")?;
    icons.push(("icon.ico".to_owned(), bytes));

    let mut icns = tauri_icns::IconFamily::new();
    for (edge, kind) in ICNS_LAYERS {
        let image = tauri_icns::Image::from_data(
            tauri_icns::PixelFormat::RGBA,
            *edge,
            *edge,
            straight_rgba(&render(*edge)?),
        )
        .context("an icon.icns layer")?;
        icns.add_icon_with_type(&image, *kind)
            .context("encode an icon.icns layer")?;
    }
    let mut bytes = Vec::new();
    icns.write(&mut bytes).context("write icon.icns")?;
    icons.push(("icon.icns".to_owned(), bytes));
    Ok(icons)
}

/// The pixmap's pixels as plain (not premultiplied) RGBA bytes.
fn straight_rgba(pixmap: &tiny_skia::Pixmap) -> Vec<u8> {
    pixmap
        .pixels()
        .iter()
        .flat_map(|pixel| {
            let color = pixel.demultiply();
            [color.red(), color.green(), color.blue(), color.alpha()]
        })
        .collect()
}

/// The icons in `dir` that are missing or differ from `icons`.
fn stale(dir: &Path, icons: &[(String, Vec<u8>)]) -> Vec<String> {
    icons
        .iter()
        .filter(|(name, bytes)| std::fs::read(dir.join(name)).ok().as_ref() != Some(bytes))
        .map(|(name, _)| name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_committed_icons_are_rendered_from_the_source() {
        let dir = path::desktop_dir().join("icons");
        let icons = render_all(&dir).unwrap();
        let stale = stale(&dir, &icons);
        assert!(
            stale.is_empty(),
            "{stale:?} differ from {SOURCE}: run `cargo xtask icons` and commit the result"
        );
    }

    #[test]
    fn the_set_covers_every_platform_at_its_sizes() {
        let dir = path::desktop_dir().join("icons");
        let icons = render_all(&dir).unwrap();
        let ico = icons.iter().find(|(name, _)| name == "icon.ico").unwrap();
        let ico = ico::IconDir::read(std::io::Cursor::new(&ico.1)).unwrap();
        let sizes: Vec<u32> = ico.entries().iter().map(|entry| entry.width()).collect();
        assert_eq!(sizes, ICO_SIZES);
        let icns = icons.iter().find(|(name, _)| name == "icon.icns").unwrap();
        let icns = tauri_icns::IconFamily::read(std::io::Cursor::new(&icns.1)).unwrap();
        assert_eq!(icns.available_icons().len(), ICNS_LAYERS.len());
        // Every file tauri.conf.json lists is one of the rendered icons.
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(path::desktop_dir().join("tauri.conf.json")).unwrap(),
        )
        .unwrap();
        for listed in config["bundle"]["icon"].as_array().unwrap() {
            let name = listed.as_str().unwrap().trim_start_matches("icons/");
            assert!(
                icons.iter().any(|(icon, _)| icon == name),
                "tauri.conf.json lists {name}, which `cargo xtask icons` does not make"
            );
        }
    }
}
