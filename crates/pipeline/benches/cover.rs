//! The drawn podcast cover: time and bytes of `draw_cover`, against the floor of writing its
//! raw 3000×3000 RGB pixels once, and against re-encoding the same pixels at the PNG encoder's
//! other compression levels (to show what the chosen level buys).
//!
//!   cargo bench -p lector-pipeline --bench cover [-- OUT.png]   (OUT.png: keep one cover)

use std::hint::black_box;
use std::time::{Duration, Instant};

use lector_pipeline::cover::{COVER_SIDE, draw_cover};

/// Best wall time of `f` over at least `budget` and 3 runs (the machine is shared: the best run
/// is the least disturbed one).
fn best<T>(budget: Duration, mut f: impl FnMut() -> T) -> Duration {
    let started = Instant::now();
    let mut best = Duration::MAX;
    let mut runs = 0;
    while runs < 3 || started.elapsed() < budget {
        let t = Instant::now();
        black_box(f());
        best = best.min(t.elapsed());
        runs += 1;
    }
    best
}

fn decode(png_bytes: &[u8]) -> Vec<u8> {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG header");
    let mut pixels = vec![0; reader.output_buffer_size().expect("a buffer size")];
    reader.next_frame(&mut pixels).expect("a frame");
    pixels
}

fn encode(pixels: &[u8], compression: png::Compression) -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, COVER_SIDE, COVER_SIDE);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(compression);
    let mut writer = encoder.write_header().expect("a header");
    writer.write_image_data(pixels).expect("the pixels");
    writer.finish().expect("the end");
    out
}

fn main() {
    let out = std::env::args().skip(1).find(|a| a.ends_with(".png"));
    let budget = Duration::from_secs(3);
    let titles = [
        ("short", "Lector"),
        ("typical", "The Morning Paper: notes on computer science research"),
        (
            "long",
            "A very long feed title that goes on and on about everything its author has ever written, wrapped over many lines",
        ),
    ];
    let side = COVER_SIDE as usize;
    let floor = best(budget, || vec![0x1Fu8; side * side * 3]);
    println!("floor: write 3000x3000 RGB pixels once: {:.1} ms", floor.as_secs_f64() * 1e3);
    for (name, title) in titles {
        let png = draw_cover(title).expect("a cover");
        let time = best(budget, || draw_cover(title));
        println!(
            "draw_cover {name:>7} ({} chars): {:>6.1} ms = {:>4.1}x the floor, {:>6} bytes ({:.1} KiB)",
            title.chars().count(),
            time.as_secs_f64() * 1e3,
            time.as_secs_f64() / floor.as_secs_f64(),
            png.len(),
            png.len() as f64 / 1024.0
        );
        if name == "typical" {
            if let Some(path) = &out {
                std::fs::write(path, &png).expect("the cover written");
                println!("  written to {path}");
            }
            let pixels = decode(&png);
            for (level, compression) in [
                ("fastest", png::Compression::Fastest),
                ("fast (used)", png::Compression::Fast),
                ("balanced", png::Compression::Balanced),
                ("high", png::Compression::High),
            ] {
                let bytes = encode(&pixels, compression).len();
                let time = best(budget, || encode(&pixels, compression));
                println!(
                    "  encode at {level:>12}: {:>6.1} ms = {:>4.1}x the floor, {bytes:>6} bytes",
                    time.as_secs_f64() * 1e3,
                    time.as_secs_f64() / floor.as_secs_f64()
                );
            }
        }
    }
}
