//! Decoding MP3 in tests with a real decoder (symphonia), to check what players will hear.

use std::io::Cursor;

use symphonia::core::codecs::DecoderOptions;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// What decoding a whole MP3 gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded {
    /// Samples per channel, over every packet.
    pub samples: u64,
    pub sample_rate: u32,
    /// The frame count the container claims (from a Xing/Info header), if any.
    pub claimed_frames: Option<u64>,
}

impl Decoded {
    pub fn seconds(&self) -> f64 {
        self.samples as f64 / f64::from(self.sample_rate)
    }
}

/// Decode every packet of `mp3`; panics, naming the problem, if it does not decode.
pub fn decode_mp3(mp3: &[u8]) -> Decoded {
    let stream = MediaSourceStream::new(Box::new(Cursor::new(mp3.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &FormatOptions::default(), &MetadataOptions::default())
        .expect("the MP3 is recognised");
    let mut format = probed.format;
    let track = format.default_track().expect("the MP3 has a track").clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .expect("a decoder");
    let mut samples = 0u64;
    while let Ok(packet) = format.next_packet() {
        samples += decoder.decode(&packet).expect("every packet decodes").frames() as u64;
    }
    Decoded {
        samples,
        sample_rate: track.codec_params.sample_rate.expect("a sample rate"),
        claimed_frames: track.codec_params.n_frames,
    }
}

/// The decoded samples of a mono MP3 and their rate, with the encoder's delay and padding
/// removed as the LAME header gives them (what a gapless player plays).
pub fn decode_mp3_samples(mp3: &[u8]) -> (Vec<f32>, u32) {
    use symphonia::core::audio::SampleBuffer;
    let stream = MediaSourceStream::new(Box::new(Cursor::new(mp3.to_vec())), Default::default());
    let mut hint = Hint::new();
    hint.with_extension("mp3");
    let options = FormatOptions { enable_gapless: true, ..FormatOptions::default() };
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &options, &MetadataOptions::default())
        .expect("the MP3 is recognised");
    let mut format = probed.format;
    let track = format.default_track().expect("the MP3 has a track").clone();
    let rate = track.codec_params.sample_rate.expect("a sample rate");
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .expect("a decoder");
    let mut samples = Vec::new();
    while let Ok(packet) = format.next_packet() {
        let decoded = decoder.decode(&packet).expect("every packet decodes");
        let mut buffer = SampleBuffer::<f32>::new(decoded.capacity() as u64, *decoded.spec());
        buffer.copy_interleaved_ref(decoded);
        samples.extend_from_slice(buffer.samples());
    }
    (samples, rate)
}
