//! espeak-ng + MP3 encoding against real time: how many seconds of speech one second of wall
//! time makes, for espeak-ng alone (WAV) and with LAME encoding (the voice's whole work).
//!
//!   cargo bench -p lector-local --bench espeak [-- CHUNKS]

use std::time::{Duration, Instant};

use lector_core::ports::{Voice, VoiceSpec};
use lector_core::voice::{VoiceEngine, VoiceId};
use lector_local::espeak::{EspeakVoice, parse_wav};
use lector_local::mp3::{Kbps, encode_mono};
use mp3lame_encoder::{Bitrate, Builder, FlushGap, MonoPcm, Quality};

/// A chunk as narration makes them: about 2,900 spoken characters of escaped SSML.
fn chunk_ssml(seed: usize) -> String {
    let sentences = [
        "The committee met on Tuesday to look at the results of the survey.",
        "Dr. Smith said the numbers, e.g. the ones from the north, held up well.",
        "Nobody expected the change to last, but it did, year after year.",
        "Fish &amp; chips were served at noon, and the meeting went on until three.",
        "In the end they agreed to publish everything, warts and all.",
    ];
    let mut body = String::new();
    let mut i = seed;
    while body.len() < 2_900 {
        body.push_str(sentences[i % sentences.len()]);
        body.push(' ');
        if i % 7 == 6 {
            body.push_str("<break time=\"500ms\"/>");
        }
        i += 1;
    }
    format!("<speak>{}</speak>", body.trim_end())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let chunks: usize =
        std::env::args().skip(1).find(|a| a != "--bench").and_then(|a| a.parse().ok()).unwrap_or(6);
    let voice = EspeakVoice::new();
    let version = voice.check().await.expect("espeak-ng is installed (apt-get install espeak-ng)");
    let spec = VoiceSpec {
        voice: VoiceId::new("en-us"),
        engine: VoiceEngine::Espeak,
        language: Some("en".into()),
        pronunciations: Default::default(),
    };
    let ssml: Vec<String> = (0..chunks).map(chunk_ssml).collect();
    // Warm the page cache and the voice list.
    voice.synthesize(&ssml[0], &spec).await.expect("synthesis");

    // espeak-ng alone: WAV to a pipe.
    let mut wav_time = Duration::ZERO;
    let mut encode_time = Duration::ZERO;
    let mut audio_seconds = 0.0;
    for s in &ssml {
        let started = Instant::now();
        let out = tokio::process::Command::new("espeak-ng")
            .args(["-m", "--stdout", "-v", "en-us", s])
            .output()
            .await
            .expect("espeak-ng runs");
        wav_time += started.elapsed();
        let (pcm, rate) = parse_wav(&out.stdout).expect("wav");
        audio_seconds += pcm.len() as f64 / f64::from(rate);
        let started = Instant::now();
        let mp3 = encode_mono(&pcm, rate, Kbps::SPEECH).expect("encode");
        encode_time += started.elapsed();
        std::hint::black_box(mp3);
    }
    // LAME's quality setting against speed, on the last chunk's samples.
    let out = tokio::process::Command::new("espeak-ng")
        .args(["-m", "--stdout", "-v", "en-us", &ssml[0]])
        .output()
        .await
        .expect("espeak-ng runs");
    let (pcm, rate) = parse_wav(&out.stdout).expect("wav");
    let seconds = pcm.len() as f64 / f64::from(rate);
    for (name, q) in [("good(5)", Quality::Good), ("decent(6)", Quality::Decent), ("ok(7)", Quality::Ok)] {
        let started = Instant::now();
        let mut b = Builder::new().expect("lame");
        b.set_num_channels(1).expect("channels");
        b.set_sample_rate(rate).expect("rate");
        b.set_brate(Bitrate::Kbps48).expect("bitrate");
        b.set_quality(q).expect("quality");
        let mut enc = b.build().expect("encoder");
        let mut mp3 = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(pcm.len()));
        enc.encode_to_vec(MonoPcm(&pcm), &mut mp3).expect("encode");
        mp3.reserve(7200);
        enc.flush_to_vec::<FlushGap>(&mut mp3).expect("flush");
        println!("lame quality={name} x_real_time={:.0}", seconds / started.elapsed().as_secs_f64());
    }

    // The port, end to end: process, WAV parsing, encoding on a blocking thread.
    let started = Instant::now();
    let mut bytes = 0;
    for s in &ssml {
        bytes += voice.synthesize(s, &spec).await.expect("synthesis").len();
    }
    let voice_time = started.elapsed();
    println!("{version}");
    println!(
        "espeak chunks={chunks} audio_s={audio_seconds:.1} espeak_wav_s={:.3} encode_s={:.3} voice_s={:.3} mp3_bytes={bytes}",
        wav_time.as_secs_f64(),
        encode_time.as_secs_f64(),
        voice_time.as_secs_f64()
    );
    println!(
        "espeak x_real_time: espeak_wav={:.0} encode={:.0} voice_port={:.0}",
        audio_seconds / wav_time.as_secs_f64(),
        audio_seconds / encode_time.as_secs_f64(),
        audio_seconds / voice_time.as_secs_f64()
    );
}
