//! Podcast artwork: the drawn cover is a valid 3000×3000 RGB PNG that stays small and shows
//! its title, image headers are read for their size without decoding, and the rule picks the
//! source feed's image only when Apple Podcasts would take it.

use lector_pipeline::cover::{
    ArtworkChoice, COVER_SIDE, DrawnBecause, ImageFormat, ImageInfo, artwork_choice, draw_cover, image_info,
    image_size,
};

/// Decodes a PNG with the `png` crate: (info, pixels).
fn decode(bytes: &[u8]) -> (png::OutputInfo, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    let info = reader.next_frame(&mut pixels).expect("a whole frame");
    (info, pixels)
}

/// A real PNG of `width`×`height`, written by the `png` encoder.
fn png_of(width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fastest);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&vec![200; (width * height * 3) as usize]).unwrap();
    writer.finish().unwrap();
    out
}

/// A JPEG header as a camera writes one: SOI, an APP0 (JFIF) segment, a DQT segment, then the
/// baseline frame header SOF0 (precision, height, width, components), per ITU-T T.81 B.2.
fn jpeg_of(width: u16, height: u16, sof: u8) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8];
    b.extend([0xFF, 0xE0, 0x00, 0x10]);
    b.extend(b"JFIF\0");
    b.extend([1, 1, 0, 0, 72, 0, 72, 0, 0]);
    b.extend([0xFF, 0xDB, 0x00, 0x43, 0x00]);
    b.extend([16u8; 64]);
    b.extend([0xFF, sof, 0x00, 0x11, 8]);
    b.extend(height.to_be_bytes());
    b.extend(width.to_be_bytes());
    b.extend([3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    b.extend([0xFF, 0xD9]);
    b
}

#[test]
fn the_drawn_cover_is_a_small_valid_3000_pixel_rgb_png() {
    let title = "The Morning Paper: notes on computer science research";
    let bytes = draw_cover(title).unwrap();
    let (info, pixels) = decode(&bytes);
    assert_eq!((info.width, info.height), (COVER_SIDE, COVER_SIDE));
    assert_eq!((info.color_type, info.bit_depth), (png::ColorType::Rgb, png::BitDepth::Eight));
    assert!(bytes.len() < 200 * 1024, "the cover is {} bytes", bytes.len());
    assert_eq!(image_info(&bytes), Some(ImageInfo { format: ImageFormat::Png, width: 3000, height: 3000 }));
    // Mostly background, with letters: two colours at least, the corner's the commonest.
    let corner = &pixels[..3];
    let other = pixels.chunks_exact(3).filter(|p| *p != corner).count();
    let share = other as f64 / (3000.0 * 3000.0);
    assert!((0.02..0.5).contains(&share), "{share} of the cover is not background");
    // Different titles give different covers.
    assert_ne!(draw_cover("Another feed").unwrap(), bytes);
    assert_eq!(draw_cover(title).unwrap(), bytes, "the same title draws the same cover");
}

#[test]
fn odd_titles_still_draw_a_cover() {
    for title in
        ["", "   ", "\u{7}\u{1b}", "漢字のタイトル", &"Supercalifragilistic".repeat(40), "Ünïcödé & <b>"]
    {
        let bytes = draw_cover(title).unwrap_or_else(|e| panic!("{title:?}: {e}"));
        assert_eq!(image_size(&bytes), Some((3000, 3000)), "{title:?}");
    }
}

#[test]
fn image_sizes_are_read_from_png_jpeg_gif_and_webp_headers() {
    assert_eq!(
        image_info(&png_of(1400, 1400)),
        Some(ImageInfo { format: ImageFormat::Png, width: 1400, height: 1400 })
    );
    assert_eq!(image_size(&png_of(3, 2)), Some((3, 2)));
    let jpeg = jpeg_of(1600, 1500, 0xC0);
    assert_eq!(image_info(&jpeg), Some(ImageInfo { format: ImageFormat::Jpeg, width: 1600, height: 1500 }));
    assert_eq!(image_size(&jpeg_of(2000, 2000, 0xC2)), Some((2000, 2000)), "progressive SOF2");
    // A DHT marker (C4) is not a frame header.
    let mut dht_first = vec![0xFF, 0xD8, 0xFF, 0xC4, 0x00, 0x04, 0, 0];
    dht_first.extend_from_slice(&jpeg_of(1500, 1400, 0xC0)[2..]);
    assert_eq!(image_size(&dht_first), Some((1500, 1400)));
    let mut gif = b"GIF89a".to_vec();
    gif.extend(640u16.to_le_bytes());
    gif.extend(480u16.to_le_bytes());
    gif.extend([0xF7, 0, 0]);
    assert_eq!(image_info(&gif), Some(ImageInfo { format: ImageFormat::Gif, width: 640, height: 480 }));
    // WebP, extended (VP8X): 24-bit width-1 and height-1.
    let mut vp8x = b"RIFF\0\0\0\0WEBPVP8X".to_vec();
    vp8x.extend([10, 0, 0, 0, 0x10, 0, 0, 0]);
    vp8x.extend(&(1999u32.to_le_bytes()[..3]));
    vp8x.extend(&(2999u32.to_le_bytes()[..3]));
    assert_eq!(image_info(&vp8x), Some(ImageInfo { format: ImageFormat::WebP, width: 2000, height: 3000 }));
    // WebP, lossless (VP8L): the signature 0x2f, then 14-bit width-1 and height-1.
    let bits: u32 = (1400 - 1) | ((1400 - 1) << 14);
    let mut vp8l = b"RIFF\0\0\0\0WEBPVP8L\0\0\0\0\x2f".to_vec();
    vp8l.extend(bits.to_le_bytes());
    assert_eq!(image_size(&vp8l), Some((1400, 1400)));
    // WebP, lossy (VP8): frame tag, start code, 14-bit width and height.
    let mut vp8 = b"RIFF\0\0\0\0WEBPVP8 \0\0\0\0\0\0\0\x9d\x01\x2a".to_vec();
    vp8.extend(1500u16.to_le_bytes());
    vp8.extend(1500u16.to_le_bytes());
    assert_eq!(image_size(&vp8), Some((1500, 1500)));
    // Not images, or cut short.
    for bad in [&b""[..], b"hello", b"\x89PNG\r\n\x1a\n", &jpeg[..12], b"GIF89a\x01", b"RIFF\0\0\0\0WEBPVP8X"]
    {
        assert_eq!(image_size(bad), None, "{bad:?}");
    }
}

#[test]
fn the_source_image_is_used_only_when_apple_would_take_it() {
    let square = png_of(1400, 1400);
    assert_eq!(
        artwork_choice(Some(("https://blog.example.com/logo.png", &square))),
        ArtworkChoice::Source { url: "https://blog.example.com/logo.png".into(), width: 1400, height: 1400 }
    );
    let jpeg = jpeg_of(3000, 3000, 0xC0);
    assert!(matches!(
        artwork_choice(Some(("https://x.example/a.JPEG?v=2", &jpeg))),
        ArtworkChoice::Source { .. }
    ));
    let cases: Vec<(&str, Vec<u8>, DrawnBecause)> = vec![
        (
            "https://x.example/a.png",
            png_of(1400, 1401),
            DrawnBecause::NotSquare { width: 1400, height: 1401 },
        ),
        ("https://x.example/a.png", png_of(144, 144), DrawnBecause::WrongSize { side: 144 }),
        ("https://x.example/a.jpg", jpeg_of(3001, 3001, 0xC0), DrawnBecause::WrongSize { side: 3001 }),
        (
            "https://x.example/a.gif",
            b"GIF89a\x78\x05\x78\x05\0\0\0".to_vec(),
            DrawnBecause::NotJpegOrPng(ImageFormat::Gif),
        ),
        ("https://x.example/a.jpg", square.clone(), DrawnBecause::ExtensionMismatch),
        ("https://x.example/logo", square.clone(), DrawnBecause::ExtensionMismatch),
        ("https://x.example/a.png", b"<html>".to_vec(), DrawnBecause::Unreadable),
    ];
    for (url, bytes, because) in cases {
        assert_eq!(artwork_choice(Some((url, &bytes))), ArtworkChoice::Drawn(because.clone()), "{url}");
        assert!(!because.to_string().is_empty());
    }
    assert_eq!(artwork_choice(None), ArtworkChoice::Drawn(DrawnBecause::NoImage));
}
