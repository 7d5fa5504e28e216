//! Podcast artwork: the rule for using a source feed's own image, the header readers that rule
//! needs (image dimensions without decoding), and the cover drawn when the source has none that
//! fits: a 3000×3000 RGB PNG with the feed's title in large letters, drawn with an embedded
//! 8×8 bitmap font (no system fonts), a calm background and a small "narrated" mark.

use font8x8::{BASIC_FONTS, GREEK_FONTS, LATIN_FONTS, UnicodeFonts};

/// The side of a drawn cover, in pixels: the largest Apple Podcasts takes.
pub const COVER_SIDE: u32 = 3000;
/// The smallest side Apple Podcasts takes for artwork.
pub const MIN_ARTWORK_SIDE: u32 = 1400;
/// The largest side Apple Podcasts takes for artwork.
pub const MAX_ARTWORK_SIDE: u32 = 3000;

/// An image format read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Jpeg,
    Gif,
    WebP,
}

impl ImageFormat {
    pub fn mime(self) -> &'static str {
        match self {
            ImageFormat::Png => "image/png",
            ImageFormat::Jpeg => "image/jpeg",
            ImageFormat::Gif => "image/gif",
            ImageFormat::WebP => "image/webp",
        }
    }
}

/// What an image's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub format: ImageFormat,
    pub width: u32,
    pub height: u32,
}

fn be16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?)))
}

fn le16(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?)))
}

fn le24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) | u32::from(s[1]) << 8 | u32::from(s[2]) << 16)
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// PNG: the signature, then the IHDR chunk's width and height.
fn png_info(b: &[u8]) -> Option<(u32, u32)> {
    if !b.starts_with(b"\x89PNG\r\n\x1a\n") || b.get(12..16)? != b"IHDR" {
        return None;
    }
    Some((be32(b, 16)?, be32(b, 20)?))
}

/// JPEG: walk the marker segments from SOI to the first start-of-frame (SOF0–SOF15, except
/// DHT `C4`, JPG `C8` and DAC `CC`), which holds the height, then the width.
fn jpeg_info(b: &[u8]) -> Option<(u32, u32)> {
    if !b.starts_with(&[0xFF, 0xD8]) {
        return None;
    }
    let mut at = 2;
    loop {
        // Fill bytes: any number of 0xFF before a marker.
        while *b.get(at)? == 0xFF && *b.get(at + 1)? == 0xFF {
            at += 1;
        }
        if *b.get(at)? != 0xFF {
            return None;
        }
        let marker = *b.get(at + 1)?;
        at += 2;
        match marker {
            // Markers without a length: TEM, RST0–7, SOI.
            0x01 | 0xD0..=0xD8 => continue,
            // EOI or SOS before any frame header: no dimensions.
            0xD9 | 0xDA => return None,
            _ => {}
        }
        let length = be16(b, at)? as usize;
        if length < 2 {
            return None;
        }
        if matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let (height, width) = (be16(b, at + 3)?, be16(b, at + 5)?);
            return Some((width, height));
        }
        at += length;
    }
}

/// GIF: the logical screen's width and height after the signature.
fn gif_info(b: &[u8]) -> Option<(u32, u32)> {
    if !(b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a")) {
        return None;
    }
    Some((le16(b, 6)?, le16(b, 8)?))
}

/// WebP: the first chunk after the RIFF header, `VP8 ` (lossy), `VP8L` (lossless) or `VP8X`
/// (extended), each with its own way of storing the canvas size.
fn webp_info(b: &[u8]) -> Option<(u32, u32)> {
    if b.get(0..4)? != b"RIFF" || b.get(8..12)? != b"WEBP" {
        return None;
    }
    match b.get(12..16)? {
        b"VP8 " => {
            // The frame tag (3 bytes), the start code 9d 01 2a, then 14-bit width and height.
            if b.get(23..26)? != [0x9D, 0x01, 0x2A] {
                return None;
            }
            Some((le16(b, 26)? & 0x3FFF, le16(b, 28)? & 0x3FFF))
        }
        b"VP8L" => {
            if *b.get(20)? != 0x2F {
                return None;
            }
            let bits = u32::from_le_bytes(b.get(21..25)?.try_into().ok()?);
            Some(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        b"VP8X" => Some((le24(b, 24)? + 1, le24(b, 27)? + 1)),
        _ => None,
    }
}

/// The format and dimensions of a PNG, JPEG, GIF or WebP image, read from its header without
/// decoding it; `None` for anything else or a truncated header.
pub fn image_info(bytes: &[u8]) -> Option<ImageInfo> {
    let (format, (width, height)) = if let Some(size) = png_info(bytes) {
        (ImageFormat::Png, size)
    } else if let Some(size) = jpeg_info(bytes) {
        (ImageFormat::Jpeg, size)
    } else if let Some(size) = gif_info(bytes) {
        (ImageFormat::Gif, size)
    } else {
        (ImageFormat::WebP, webp_info(bytes)?)
    };
    Some(ImageInfo { format, width, height })
}

/// The width and height of a PNG, JPEG, GIF or WebP image, from its header.
pub fn image_size(bytes: &[u8]) -> Option<(u32, u32)> {
    image_info(bytes).map(|i| (i.width, i.height))
}

/// The artwork a podcast feed shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtworkChoice {
    /// The source feed's image fits Apple's rules: use its address.
    Source { url: String, width: u32, height: u32 },
    /// Draw a cover ([`draw_cover`]), and why the source's image was not used.
    Drawn(DrawnBecause),
}

/// Why a source feed's image was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrawnBecause {
    #[error("the source feed has no image")]
    NoImage,
    #[error("the source feed's image is not a PNG, JPEG, GIF or WebP that could be read")]
    Unreadable,
    #[error("the source feed's image is {0:?}; Apple Podcasts takes only JPEG or PNG")]
    NotJpegOrPng(ImageFormat),
    #[error("the source feed's image is {width}×{height}, not square")]
    NotSquare { width: u32, height: u32 },
    #[error("the source feed's image is {side}×{side}; Apple Podcasts takes 1400 to 3000 pixels a side")]
    WrongSize { side: u32 },
    #[error("the source feed's image address does not end in .jpg, .jpeg or .png as its type")]
    ExtensionMismatch,
}

/// Whether the path of `url` (query and fragment aside) ends in an extension of `format`.
fn extension_matches(url: &str, format: ImageFormat) -> bool {
    let path = url.split(['?', '#']).next().unwrap_or_default().to_ascii_lowercase();
    match format {
        ImageFormat::Png => path.ends_with(".png"),
        ImageFormat::Jpeg => path.ends_with(".jpg") || path.ends_with(".jpeg"),
        ImageFormat::Gif | ImageFormat::WebP => false,
    }
}

/// The rule for a podcast's artwork: the source feed's image (its address and its bytes) when
/// Apple Podcasts would take it — square, 1400 to 3000 pixels a side, JPEG or PNG with the
/// matching extension — else a cover Lector draws.
pub fn artwork_choice(source: Option<(&str, &[u8])>) -> ArtworkChoice {
    let Some((url, bytes)) = source else { return ArtworkChoice::Drawn(DrawnBecause::NoImage) };
    let Some(info) = image_info(bytes) else { return ArtworkChoice::Drawn(DrawnBecause::Unreadable) };
    let drawn = |because| ArtworkChoice::Drawn(because);
    if !matches!(info.format, ImageFormat::Png | ImageFormat::Jpeg) {
        return drawn(DrawnBecause::NotJpegOrPng(info.format));
    }
    if info.width != info.height {
        return drawn(DrawnBecause::NotSquare { width: info.width, height: info.height });
    }
    if !(MIN_ARTWORK_SIDE..=MAX_ARTWORK_SIDE).contains(&info.width) {
        return drawn(DrawnBecause::WrongSize { side: info.width });
    }
    if !extension_matches(url, info.format) {
        return drawn(DrawnBecause::ExtensionMismatch);
    }
    ArtworkChoice::Source { url: url.to_owned(), width: info.width, height: info.height }
}

/// Why a cover could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum CoverError {
    #[error("the PNG encoder failed: {0}")]
    Encode(String),
}

type Rgb = [u8; 3];

/// Calm backgrounds (deep, low-saturation), one picked per title so that feeds differ.
const BACKGROUNDS: [Rgb; 6] = [
    [0x1F, 0x35, 0x4D], // navy
    [0x24, 0x45, 0x3B], // forest
    [0x42, 0x2F, 0x47], // plum
    [0x33, 0x3A, 0x47], // slate
    [0x4A, 0x35, 0x29], // walnut
    [0x1F, 0x42, 0x4A], // teal
];
const INK: Rgb = [0xF5, 0xF0, 0xE6];

/// A lighter shade of `c`, for the mark and the rule.
fn accent(c: Rgb) -> Rgb {
    c.map(|v| (u16::from(v) + (255 - u16::from(v)) * 2 / 5) as u8)
}

struct Canvas {
    side: usize,
    pixels: Vec<u8>,
}

impl Canvas {
    fn new(side: usize, background: Rgb) -> Self {
        // One row, then the rows copied from it: bulk copies, fast even unoptimised.
        let row: Vec<u8> = background.iter().copied().cycle().take(side * 3).collect();
        let mut pixels = Vec::with_capacity(side * side * 3);
        for _ in 0..side {
            pixels.extend_from_slice(&row);
        }
        Self { side, pixels }
    }

    fn rect(&mut self, x: usize, y: usize, w: usize, h: usize, color: Rgb) {
        let (x0, y0) = (x.min(self.side), y.min(self.side));
        let (x1, y1) = ((x + w).min(self.side), (y + h).min(self.side));
        if x0 >= x1 || y0 >= y1 {
            return;
        }
        let stride = self.side * 3;
        let (start, end) = (y0 * stride + x0 * 3, y0 * stride + x1 * 3);
        for px in self.pixels[start..end].chunks_exact_mut(3) {
            px.copy_from_slice(&color);
        }
        for row in y0 + 1..y1 {
            self.pixels.copy_within(start..end, row * stride + x0 * 3);
        }
    }

    /// One character of the 8×8 font, each font pixel a `scale`×`scale` square.
    fn glyph(&mut self, c: char, x: usize, y: usize, scale: usize, color: Rgb) {
        for (row, bits) in bitmap(c).iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    self.rect(x + col * scale, y + row * scale, scale, scale, color);
                }
            }
        }
    }

    fn text(&mut self, text: &str, x: usize, y: usize, scale: usize, color: Rgb) {
        for (i, c) in text.chars().enumerate() {
            self.glyph(c, x + i * 8 * scale, y, scale, color);
        }
    }
}

/// The 8×8 bitmap of a character: Latin, Latin-1 and Greek; `?` for what the font lacks.
fn bitmap(c: char) -> [u8; 8] {
    BASIC_FONTS
        .get(c)
        .or_else(|| LATIN_FONTS.get(c))
        .or_else(|| GREEK_FONTS.get(c))
        .or_else(|| BASIC_FONTS.get('?'))
        .unwrap_or([0; 8])
}

/// `text` broken into lines of at most `width` characters, at spaces where possible; `None`
/// when it needs more than `max_lines`.
fn wrap(text: &str, width: usize, max_lines: usize) -> Option<Vec<String>> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word: Vec<char> = word.chars().collect();
        // A word longer than a line is cut over lines.
        while word.len() > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            lines.push(word.drain(..width).collect());
        }
        let word: String = word.into_iter().collect();
        let needed = if line.is_empty() {
            word.chars().count()
        } else {
            line.chars().count() + 1 + word.chars().count()
        };
        if needed > width && !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    (lines.len() <= max_lines).then_some(lines)
}

/// The title laid out: the largest scale at which it fits the box, and its lines. A title too
/// long even at the smallest scale keeps the lines that fit, the last ending in "...".
fn layout(title: &str, box_width: usize, box_height: usize) -> (usize, Vec<String>) {
    const LARGEST: usize = 40;
    const SMALLEST: usize = 12;
    let lines_at = |scale: usize| (box_width / (8 * scale), (box_height + 2 * scale) / (10 * scale));
    for scale in (SMALLEST..=LARGEST).rev() {
        let (width, max_lines) = lines_at(scale);
        if let Some(lines) = wrap(title, width, max_lines) {
            return (scale, lines);
        }
    }
    let (width, max_lines) = lines_at(SMALLEST);
    let mut lines = wrap(title, width, usize::MAX).unwrap_or_default();
    lines.truncate(max_lines);
    if let Some(last) = lines.last_mut() {
        let kept: String = last.chars().take(width.saturating_sub(3)).collect();
        *last = format!("{}...", kept.trim_end());
    }
    (SMALLEST, lines)
}

/// A cheap, stable hash of the title (FNV-1a), to pick its background.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// A 3000×3000 RGB PNG cover for a feed titled `title`: the title in large letters over as many
/// lines as it needs, on a calm background picked from the title, with a sound-wave mark and
/// "NARRATED" at the foot. Solid areas keep it small (tens of kilobytes).
pub fn draw_cover(title: &str) -> Result<Vec<u8>, CoverError> {
    let side = COVER_SIDE as usize;
    let background = BACKGROUNDS[(fnv1a(title) % BACKGROUNDS.len() as u64) as usize];
    let light = accent(background);
    let mut canvas = Canvas::new(side, background);
    let margin = 260;

    let title: String = title.chars().filter(|c| !c.is_control()).collect();
    let title = if title.trim().is_empty() { "Untitled feed".to_owned() } else { title };
    let (scale, lines) = layout(&title, side - 2 * margin, 2000);
    for (i, line) in lines.iter().enumerate() {
        canvas.text(line, margin, margin + i * 10 * scale, scale, INK);
    }

    // The foot: a rule, a sound-wave mark and the word.
    let foot = side - margin - 200;
    canvas.rect(margin, foot - 90, side - 2 * margin, 12, light);
    let bars = [60, 130, 200, 110, 170, 80, 140];
    for (i, h) in bars.iter().enumerate() {
        canvas.rect(margin + i * 48, foot + 100 - h / 2, 28, *h, light);
    }
    canvas.text("NARRATED", margin + bars.len() * 48 + 60, foot + 100 - 48, 12, INK);

    let mut png = Vec::with_capacity(96 * 1024);
    {
        let mut encoder = png::Encoder::new(&mut png, COVER_SIDE, COVER_SIDE);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Fast);
        // 72 dpi, as Apple Podcasts asks of artwork (2835 pixels a metre).
        encoder.set_pixel_dims(Some(png::PixelDimensions { xppu: 2835, yppu: 2835, unit: png::Unit::Meter }));
        let mut writer = encoder.write_header().map_err(|e| CoverError::Encode(e.to_string()))?;
        writer.write_image_data(&canvas.pixels).map_err(|e| CoverError::Encode(e.to_string()))?;
        writer.finish().map_err(|e| CoverError::Encode(e.to_string()))?;
    }
    Ok(png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapping_breaks_at_spaces_and_cuts_long_words() {
        assert_eq!(wrap("the quick brown fox", 9, 5).unwrap(), ["the quick", "brown fox"]);
        assert_eq!(wrap("abcdefghij xy", 4, 5).unwrap(), ["abcd", "efgh", "ij", "xy"]);
        assert_eq!(wrap("a b c d e", 1, 3), None);
    }

    #[test]
    fn short_titles_get_larger_letters_than_long_ones() {
        let (short, lines) = layout("Lector", 2480, 2000);
        assert_eq!(lines, ["Lector"]);
        let (long, many) = layout(&"word ".repeat(40), 2480, 2000);
        assert!(short > long && many.len() > 3, "{short} {long} {many:?}");
        for line in &many {
            assert!(line.chars().count() * 8 * long <= 2480, "{line}");
        }
        let (_, clipped) = layout(&"word ".repeat(1000), 2480, 2000);
        assert!(clipped.last().unwrap().ends_with("..."));
    }

    #[test]
    fn every_character_has_a_bitmap() {
        assert_ne!(bitmap('A'), [0; 8]);
        assert_ne!(bitmap('é'), [0; 8]);
        assert_eq!(bitmap('漢'), bitmap('?'));
    }
}
