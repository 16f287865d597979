//! The run's chart as a PNG, for pasting into a ticket: the very chart of the SVG
//! ([`chart::draw`]) on `plotters`' bitmap backend. Text is drawn with `ab_glyph` from a font
//! embedded in the binary (`assets/DejaVuSans-subset.ttf`, DejaVu Sans cut down to Latin-1,
//! 37 KB, license beside it), never a system font, so a container without fonts draws the same
//! picture; the `png` crate encodes the pixels (no timestamp: the same report, the same file).

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use anyhow::Context;
use plotters::prelude::*;
use pressure_crds::report::{Report, chart};

/// DejaVu Sans, Basic Latin and Latin-1 only (see `assets/DejaVuSans-LICENSE.txt`).
const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// The PNG beside the SVG chart: the same name with `.png` (`.svg.png` when the chart is
/// already named `.png`).
pub fn path_beside(svg: &Path) -> PathBuf {
    if svg
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    {
        let mut name = svg.as_os_str().to_owned();
        name.push(".png");
        PathBuf::from(name)
    } else {
        svg.with_extension("png")
    }
}

/// Draws the report's chart and writes it as a PNG to `path`.
pub fn write(r: &Report, path: &Path) -> anyhow::Result<()> {
    let pixels = render(r)?;
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    encode(&pixels, BufWriter::new(file))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// The chart as RGB pixels, [`chart::SIZE`], row by row.
pub fn render(r: &Report) -> anyhow::Result<Vec<u8>> {
    register_font()?;
    let (w, h) = chart::SIZE;
    let mut pixels = vec![0u8; w as usize * h as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut pixels, chart::SIZE).into_drawing_area();
        chart::draw(r, &root)
            .and_then(|()| root.present())
            .map_err(|e| anyhow::anyhow!("cannot draw the chart: {e}"))?;
    }
    Ok(pixels)
}

/// The chart's font under the family the chart asks for (bold falls back to it).
fn register_font() -> anyhow::Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
        .map_err(|_| anyhow::anyhow!("the embedded chart font is not a valid TrueType font"))
}

fn encode(pixels: &[u8], out: impl std::io::Write) -> anyhow::Result<()> {
    let (w, h) = chart::SIZE;
    let mut encoder = png::Encoder::new(out, w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(pixels)?;
    writer.finish()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pressure_crds::report::chart::point;

    fn report() -> Report {
        Report {
            run_id: "local-1".into(),
            warmup_seconds: 2,
            duration_seconds: 4,
            verdict: "ThresholdsPassed".into(),
            timeline: (1..=8u32)
                .map(|i| point(f64::from(i), 1.0, (0, 10 * u64::from(i)), 0, Some(50.0)))
                .collect(),
            ..Report::default()
        }
    }

    /// Pixels of exactly `rgb`.
    fn count(pixels: &[u8], rgb: [u8; 3]) -> usize {
        pixels.chunks_exact(3).filter(|p| *p == rgb).count()
    }

    #[test]
    fn draws_lines_and_text_with_the_embedded_font() {
        let pixels = render(&report()).expect("drawn");
        assert!(
            count(&pixels, [0x1f, 0x77, 0xb4]) > 100,
            "the throughput line"
        );
        assert!(count(&pixels, [0xd6, 0x27, 0x28]) > 100, "the latency line");
        // Text is anti-aliased: grey levels between black and white exist only where glyphs are.
        let grey = pixels
            .chunks_exact(3)
            .filter(|p| p[0] == p[1] && p[1] == p[2] && (40..200).contains(&p[0]))
            .count();
        assert!(grey > 500, "text drawn ({grey} grey pixels)");
        assert_eq!(pixels, render(&report()).expect("drawn"), "deterministic");
    }

    #[test]
    fn writes_a_png_beside_the_svg() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = path_beside(&dir.path().join("chart.svg"));
        assert_eq!(path, dir.path().join("chart.png"));
        write(&report(), &path).expect("written");
        let bytes = std::fs::read(&path).expect("read");
        assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
        let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
        let info = decoder.read_info().expect("a PNG").info().clone();
        assert_eq!((info.width, info.height), chart::SIZE);
        assert_eq!(
            path_beside(Path::new("c.png")),
            PathBuf::from("c.png.png"),
            "never over the chart itself"
        );
    }
}
