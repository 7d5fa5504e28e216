//! PCM to MP3 with LAME (vendored by `mp3lame-encoder`): constant bitrate, so that durations
//! counted from frames and players' seeking agree, and `FlushGap` so no last frame is lost.

use mp3lame_encoder::{Bitrate, Builder, FlushGap, Mode, MonoPcm, Quality};

/// Why PCM could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Mp3EncodeError {
    #[error("MP3 encoder cannot be set up for {sample_rate} Hz at {kbps} kbps: {reason}")]
    Setup { sample_rate: u32, kbps: u32, reason: String },
    #[error("MP3 encoding failed: {0}")]
    Encode(String),
}

/// A constant bitrate LAME can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kbps(pub u32);

impl Kbps {
    /// Speech at 22,050 Hz mono is clear at 48 kbps (MPEG-2 Layer III, 156-byte frames).
    pub const SPEECH: Kbps = Kbps(48);

    fn lame(self) -> Option<Bitrate> {
        Some(match self.0 {
            8 => Bitrate::Kbps8,
            16 => Bitrate::Kbps16,
            24 => Bitrate::Kbps24,
            32 => Bitrate::Kbps32,
            40 => Bitrate::Kbps40,
            48 => Bitrate::Kbps48,
            64 => Bitrate::Kbps64,
            80 => Bitrate::Kbps80,
            96 => Bitrate::Kbps96,
            112 => Bitrate::Kbps112,
            128 => Bitrate::Kbps128,
            160 => Bitrate::Kbps160,
            _ => return None,
        })
    }
}

/// Encodes mono 16-bit samples at `sample_rate` as CBR MP3 at the same rate, with no tags and
/// no Xing/Info frame (the joined file gets one for the whole).
pub fn encode_mono(samples: &[i16], sample_rate: u32, kbps: Kbps) -> Result<Vec<u8>, Mp3EncodeError> {
    let setup = |reason: String| Mp3EncodeError::Setup { sample_rate, kbps: kbps.0, reason };
    let bitrate = kbps.lame().ok_or_else(|| setup("not a constant bitrate LAME offers".into()))?;
    let mut builder = Builder::new().ok_or_else(|| setup("LAME could not allocate".into()))?;
    builder.set_num_channels(1).map_err(|e| setup(e.to_string()))?;
    builder.set_sample_rate(sample_rate).map_err(|e| setup(e.to_string()))?;
    builder.set_brate(bitrate).map_err(|e| setup(e.to_string()))?;
    builder.set_mode(Mode::Mono).map_err(|e| setup(e.to_string()))?;
    // LAME's -q 7: about twice as fast as -q 5 here (see benchmarks), and speech at 48 kbps
    // mono does not gain audibly from the slower psychoacoustics.
    builder.set_quality(Quality::Ok).map_err(|e| setup(e.to_string()))?;
    builder.set_to_write_vbr_tag(false).map_err(|e| setup(e.to_string()))?;
    let mut encoder = builder.build().map_err(|e| setup(e.to_string()))?;
    let mut out = Vec::with_capacity(mp3lame_encoder::max_required_buffer_size(samples.len()));
    // Bounded pieces keep the worst-case output buffer small whatever the input length.
    for piece in samples.chunks(1 << 16) {
        out.reserve(mp3lame_encoder::max_required_buffer_size(piece.len()));
        encoder
            .encode_to_vec(MonoPcm(piece), &mut out)
            .map_err(|e| Mp3EncodeError::Encode(format!("{e:?}")))?;
    }
    out.reserve(7200);
    encoder.flush_to_vec::<FlushGap>(&mut out).map_err(|e| Mp3EncodeError::Encode(format!("{e:?}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_of_tone_gives_a_second_of_frames() {
        let samples: Vec<i16> = (0..22_050)
            .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / 22_050.0).sin() * 8_000.0) as i16)
            .collect();
        let mp3 = encode_mono(&samples, 22_050, Kbps::SPEECH).unwrap();
        // MPEG-2 Layer III sync word, 48 kbps, 22,050 Hz, mono.
        assert_eq!(&mp3[..2], &[0xFF, 0xF3]);
        let frames = mp3.len() / 156;
        // 22,050 samples need 39 frames of 576, plus the encoder's delay and flush.
        assert!((39..=43).contains(&frames), "{frames} frames");
        assert!(matches!(encode_mono(&samples, 22_050, Kbps(50)), Err(Mp3EncodeError::Setup { .. })));
    }
}
