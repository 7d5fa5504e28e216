//! Benchmarks of the pipeline's CPU work, printed as plain lines (and used by
//! scripts/bench-feeds.sh, which runs Python's feedparser on the same feeds beside it).
//!
//!   cargo bench -p lector-pipeline --bench pipeline                 everything below
//!   cargo bench -p lector-pipeline --bench pipeline -- feeds FILE…  feed parsing MB/s, and
//!                                                                    feed-rs alone beside it
//!   cargo bench -p lector-pipeline --bench pipeline -- articles     extraction per page
//!   cargo bench -p lector-pipeline --bench pipeline -- speech       narration + chunking
//!   cargo bench -p lector-pipeline --bench pipeline -- peak STEP    peak memory of one step
//!                                                                    (article|speech|stitch)
//!                                                                    on a 10,000-word post

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use lector_core::voice::VoiceEngine;
use lector_pipeline::article::extract_article;
use lector_pipeline::document::{Block, Document};
use lector_pipeline::feed::parse_feed;
use lector_pipeline::fetch::decode_html;
use lector_pipeline::speech::prepare;
use lector_pipeline::stitch::stitch;
use url::Url;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testdata/corpus")
}

/// CPU time this process has used (user + system), from /proc (Linux ticks of 1/100 s). Other
/// processes on a busy machine slow the wall clock, not this.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name and state.
    (ticks(11) + ticks(12)) / 100.0
}

/// Mean wall and CPU time per run of `f`, over at least `budget` of wall time and 3 runs.
fn time_both<T>(budget: Duration, mut f: impl FnMut() -> T) -> (Duration, f64) {
    black_box(f());
    let started = Instant::now();
    let cpu = cpu_seconds();
    let mut runs = 0u32;
    while runs < 3 || started.elapsed() < budget {
        black_box(f());
        runs += 1;
    }
    (started.elapsed() / runs, (cpu_seconds() - cpu) / f64::from(runs))
}

/// Mean wall time per run of `f`.
fn time<T>(budget: Duration, f: impl FnMut() -> T) -> Duration {
    time_both(budget, f).0
}

fn feeds(files: &[PathBuf]) {
    for file in files {
        let bytes = std::fs::read(file).expect("feed file");
        let base = Url::parse("https://feeds.example.test/feed").expect("url");
        let (per, cpu) = time_both(Duration::from_secs(3), || {
            parse_feed(&bytes, Some(&base), None).map(|f| f.posts.len())
        });
        let mb_s = bytes.len() as f64 / 1e6 / per.as_secs_f64();
        // feed-rs's bare parse of the same bytes, run in the same process: what Lector's layers
        // around it (the extra pass, the conversion, plain text, words and content hashes) add.
        let raw = time(Duration::from_secs(1), || {
            feed_rs::parser::parse(bytes.as_slice()).map(|f| f.entries.len())
        });
        println!(
            "feed file={} bytes={} seconds_per_parse={:.6} cpu_seconds_per_parse={:.6} mb_per_s={:.1} \
             feed_rs_alone_mb_per_s={:.1}",
            file.file_name().map(|n| n.to_string_lossy()).unwrap_or_default(),
            bytes.len(),
            per.as_secs_f64(),
            cpu,
            mb_s,
            bytes.len() as f64 / 1e6 / raw.as_secs_f64()
        );
    }
}

fn articles() {
    let mut pages: Vec<PathBuf> = std::fs::read_dir(corpus().join("articles"))
        .expect("corpus")
        .map(|e| e.expect("entry").path().join("source.html"))
        .collect();
    pages.sort();
    let htmls: Vec<String> =
        pages.iter().map(|p| decode_html(&std::fs::read(p).expect("page"), None)).collect();
    let total_bytes: usize = htmls.iter().map(String::len).sum();
    let url = Url::parse("http://fakehost/test/page.html").expect("url");
    let mut per_page: Vec<f64> = htmls
        .iter()
        .map(|h| {
            time(Duration::from_millis(200), || extract_article(h, Some(&url)).map(|a| a.words)).as_secs_f64()
        })
        .collect();
    let sum: f64 = per_page.iter().sum();
    per_page.sort_by(f64::total_cmp);
    println!(
        "articles pages={} bytes={} mean_ms={:.2} median_ms={:.2} p90_ms={:.2} max_ms={:.2} mb_per_s={:.1}",
        htmls.len(),
        total_bytes,
        sum / htmls.len() as f64 * 1e3,
        per_page[per_page.len() / 2] * 1e3,
        per_page[per_page.len() * 9 / 10] * 1e3,
        per_page[per_page.len() - 1] * 1e3,
        total_bytes as f64 / 1e6 / sum
    );
}

/// A post of about `words` words with headings, lists, code, URLs and abbreviations.
fn post(words: usize) -> Document {
    let sentences = [
        "Dr. Smith arrived at 3.14 p.m. to look at the results, e.g. the ones from Tuesday.",
        "The quick brown fox jumps over the lazy dog while the committee deliberates at length.",
        "See the code at https://example.com/repo for details [1].",
        "Nobody expected the results to hold up, but they did, again and again and again.",
        "Mr. Jones & Ms. Lee wrote \"<speak>\" on the board, which nobody read aloud.",
    ];
    let mut blocks = Vec::new();
    let mut count = 0;
    let mut i = 0;
    while count < words {
        if i % 10 == 0 {
            blocks.push(Block::Heading { level: 2, text: format!("Part {}", i / 10 + 1) });
        }
        let text = (0..6).map(|k| sentences[(i + k) % sentences.len()]).collect::<Vec<_>>().join(" ");
        count += text.split_whitespace().count();
        blocks.push(if i % 6 == 4 {
            Block::ListItem { ordered: true, text }
        } else {
            Block::Paragraph { text }
        });
        if i % 15 == 7 {
            blocks.push(Block::Code { text: "for x in xs {\n    println!(\"{x}\");\n}".into() });
        }
        i += 1;
    }
    Document::new(blocks)
}

fn speech() {
    let doc = post(10_000);
    let text = doc.to_text();
    let limits = VoiceEngine::Neural.limits();
    let per = time(Duration::from_secs(2), || prepare(&doc, Some("en"), limits).map(|s| s.chunks.len()));
    let chunks = prepare(&doc, Some("en"), limits).map(|s| s.chunks.len()).unwrap_or(0);
    println!(
        "speech words={} bytes={} chunks={} ms_per_post={:.2} words_per_s={:.0} mb_per_s={:.2}",
        doc.words(),
        text.len(),
        chunks,
        per.as_secs_f64() * 1e3,
        doc.words() as f64 / per.as_secs_f64(),
        text.len() as f64 / 1e6 / per.as_secs_f64()
    );
}

/// The process's peak resident memory so far, in MB (Linux).
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One chunk's worth of audio (about 3 minutes of 48 kbps MP3 at 22,050 Hz).
fn chunk_mp3(seconds: usize) -> Vec<u8> {
    use mp3lame_encoder::{Bitrate, Builder, FlushGap, MonoPcm};
    let n = seconds * 22_050;
    let pcm: Vec<i16> = (0..n).map(|i| ((i as f32 * 0.0627).sin() * 5_000.0) as i16).collect();
    let mut b = Builder::new().expect("lame");
    b.set_num_channels(1).expect("channels");
    b.set_sample_rate(22_050).expect("rate");
    b.set_brate(Bitrate::Kbps48).expect("bitrate");
    let mut enc = b.build().expect("encoder");
    let mut out = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(n));
    enc.encode_to_vec(MonoPcm(&pcm), &mut out).expect("encode");
    out.reserve(7200);
    enc.flush_to_vec::<FlushGap>(&mut out).expect("flush");
    out
}

fn peak(step: &str) {
    let before = peak_rss_mb();
    match step {
        "article" => {
            let doc = post(10_000);
            let mut html = String::from(
                "<html lang=\"en\"><head><title>A long post</title></head><body><nav>Home</nav><article>",
            );
            for b in &doc.blocks {
                match b {
                    Block::Heading { text, .. } => html.push_str(&format!("<h2>{text}</h2>")),
                    Block::ListItem { text, .. } => html.push_str(&format!("<ol><li>{text}</li></ol>")),
                    Block::Code { text } => html.push_str(&format!("<pre>{text}</pre>")),
                    other => html.push_str(&format!("<p>{}</p>", other.text().replace('<', "&lt;"))),
                }
            }
            html.push_str("</article><footer>Footer</footer></body></html>");
            let started = Instant::now();
            let a = extract_article(&html, Some(&Url::parse("https://blog.test/long").expect("url")))
                .expect("article");
            println!(
                "peak step=article words={} html_bytes={} ms={:.1} peak_rss_mb={:.1} baseline_mb={before:.1}",
                a.words,
                html.len(),
                started.elapsed().as_secs_f64() * 1e3,
                peak_rss_mb()
            );
        }
        "speech" => {
            let doc = post(10_000);
            let text = doc.to_text();
            let started = Instant::now();
            let s = prepare(&Document::from_text(&text), Some("en"), VoiceEngine::Neural.limits())
                .expect("speech");
            let json = s.to_json();
            println!(
                "peak step=speech words={} chunks={} json_bytes={} ms={:.1} peak_rss_mb={:.1} baseline_mb={before:.1}",
                doc.words(),
                s.chunks.len(),
                json.len(),
                started.elapsed().as_secs_f64() * 1e3,
                peak_rss_mb()
            );
        }
        "stitch" => {
            // 10,000 words at 175 a minute is 57 minutes: 19 chunks of 3 minutes.
            let one = chunk_mp3(180);
            let chunks: Vec<Vec<u8>> = (0..19).map(|_| one.clone()).collect();
            let before = peak_rss_mb();
            let started = Instant::now();
            let joined = stitch(&chunks).expect("stitch");
            println!(
                "peak step=stitch chunks={} audio_minutes={:.1} mp3_bytes={} ms={:.1} peak_rss_mb={:.1} baseline_mb={before:.1}",
                chunks.len(),
                joined.info.duration_seconds / 60.0,
                joined.bytes.len(),
                started.elapsed().as_secs_f64() * 1e3,
                peak_rss_mb()
            );
        }
        other => eprintln!("unknown step {other}: article, speech or stitch"),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("feeds") => feeds(&args[1..].iter().map(PathBuf::from).collect::<Vec<_>>()),
        Some("articles") => articles(),
        Some("speech") => speech(),
        Some("peak") => peak(args.get(1).map_or("speech", String::as_str)),
        _ => {
            let dir = corpus().join("feeds");
            let files: Vec<PathBuf> = ["giantbomb-podcast.rss", "guardian.rss", "many-links.rss"]
                .iter()
                .map(|f| dir.join(f))
                .collect();
            feeds(&files);
            articles();
            speech();
        }
    }
}
