//! Joining real MP3 chunks (encoded by LAME, as the voices make them): the joined file decodes
//! with symphonia to exactly the sum of the chunks, and its duration is counted from frames.

use std::io::Cursor;

use lector_pipeline::stitch::{StitchError, inspect, stitch};
use mp3lame_encoder::{Bitrate, Builder, FlushGap, Id3Tag, MonoPcm};
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// `seconds` of a tone as MP3, CBR 48 kbps, optionally with an ID3v2 tag and a LAME Info frame
/// as many encoders (and some voices) write them.
fn chunk(seconds: f32, hz: f32, sample_rate: u32, tagged: bool) -> Vec<u8> {
    let n = (seconds * sample_rate as f32) as usize;
    let pcm: Vec<i16> = (0..n)
        .map(|i| ((i as f32 * hz * std::f32::consts::TAU / sample_rate as f32).sin() * 6_000.0) as i16)
        .collect();
    let mut b = Builder::new().unwrap();
    b.set_num_channels(1).unwrap();
    b.set_sample_rate(sample_rate).unwrap();
    b.set_brate(Bitrate::Kbps48).unwrap();
    b.set_to_write_vbr_tag(tagged).unwrap();
    if tagged {
        b.set_id3_tag(Id3Tag {
            title: b"chunk",
            artist: b"",
            album: b"",
            album_art: &[],
            year: b"",
            comment: b"",
        })
        .unwrap();
    }
    let mut enc = b.build().unwrap();
    let mut out = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(n));
    enc.encode_to_vec(MonoPcm(&pcm), &mut out).unwrap();
    out.reserve(7200);
    enc.flush_to_vec::<FlushGap>(&mut out).unwrap();
    out
}

/// Decodes every packet: (samples per channel, sample rate, frames reported by the demuxer).
fn decode(mp3: &[u8]) -> (u64, u32, Option<u64>) {
    let mss = MediaSourceStream::new(Box::new(Cursor::new(mp3.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(&hint, mss, &FormatOptions::default(), &MetadataOptions::default())
        .unwrap();
    let mut format = probed.format;
    let track = format.default_track().unwrap().clone();
    let mut decoder =
        symphonia::default::get_codecs().make(&track.codec_params, &DecoderOptions::default()).unwrap();
    let mut samples = 0u64;
    while let Ok(packet) = format.next_packet() {
        samples += decoder.decode(&packet).unwrap().frames() as u64;
    }
    (samples, track.codec_params.sample_rate.unwrap(), track.codec_params.n_frames)
}

#[test]
fn joined_chunks_decode_to_the_sum_of_their_lengths() {
    let chunks = vec![
        chunk(2.5, 220.0, 22_050, false),
        chunk(0.7, 330.0, 22_050, true),
        chunk(4.1, 440.0, 22_050, false),
    ];
    let mut sum_seconds = 0.0;
    let mut sum_samples = 0;
    for c in &chunks {
        let info = inspect(c).unwrap();
        // Counted from frames: 576 samples per MPEG-2 Layer III frame, never the bitrate.
        assert_eq!(info.samples, info.frames * 576);
        sum_seconds += info.duration_seconds;
        sum_samples += info.samples;
    }
    let joined = stitch(&chunks).unwrap();
    assert_eq!(joined.info.samples, sum_samples);
    assert!((joined.info.duration_seconds - sum_seconds).abs() < 1e-9);
    assert!((7.2..7.6).contains(&joined.info.duration_seconds), "{}", joined.info.duration_seconds);
    // No tag of any chunk is left inside the joined stream.
    assert!(!joined.bytes.windows(3).any(|w| w == b"ID3"));
    assert_eq!(joined.bytes.windows(4).filter(|w| *w == b"Info" || *w == b"Xing").count(), 1);

    let (decoded, rate, n_frames) = decode(&joined.bytes);
    assert_eq!(rate, 22_050);
    assert_eq!(decoded, sum_samples, "decoded samples differ from the chunks' frames");
    // The Info header gives players the length without reading the file.
    assert_eq!(n_frames, Some(sum_samples));
    assert!((decoded as f64 / 22_050.0 - joined.info.duration_seconds).abs() < 1e-9);
}

#[test]
fn plain_concatenation_would_not_do_what_stitching_does() {
    // A tagged chunk's Info frame claims its own length: cat-ing makes a file whose header
    // lies about the whole, which is what stitching avoids.
    let a = chunk(3.0, 220.0, 22_050, true);
    let b = chunk(3.0, 330.0, 22_050, true);
    let catted = [a.clone(), b.clone()].concat();
    let (_, _, claimed) = decode(&catted);
    let joined = stitch(&[a, b]).unwrap();
    let (decoded, _, header) = decode(&joined.bytes);
    assert_eq!(header, Some(decoded));
    assert_ne!(claimed, Some(decoded), "cat gave a right header; the test proves nothing");
}

#[test]
fn chunks_at_different_rates_or_broken_are_refused() {
    let a = chunk(1.0, 220.0, 22_050, false);
    let b = chunk(1.0, 220.0, 24_000, false);
    assert!(matches!(stitch(&[a.clone(), b]), Err(StitchError::MixedFormats { index: 1, .. })));
    // Polly through moto answers eight zero bytes: refused by name, not joined.
    assert!(matches!(stitch(&[a.clone(), vec![0u8; 8]]), Err(StitchError::Undecodable { index: 1, .. })));
    assert!(matches!(
        stitch(&[a, b"<html>503</html>".to_vec()]),
        Err(StitchError::Undecodable { index: 1, .. })
    ));
}
