//! MP3 by frames: reading a file's frames (tags and the Xing/Info frame skipped), counting its
//! duration from them, and joining chunks into one file with one Info header for the whole.

use lector_core::{ErrorKind, StepError};

/// What the frames of an MP3 say.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mp3Info {
    /// Audio frames (a Xing/Info frame is not audio and not counted).
    pub frames: u64,
    /// Samples per channel over all frames.
    pub samples: u64,
    pub sample_rate: u32,
    pub channels: u8,
    /// `samples / sample_rate`.
    pub duration_seconds: f64,
}

/// A joined MP3.
#[derive(Debug, Clone)]
pub struct Stitched {
    pub bytes: Vec<u8>,
    pub info: Mp3Info,
}

/// Why MP3 input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StitchError {
    /// There is nothing to join.
    #[error("no audio chunks to join")]
    NoChunks,
    /// A chunk holds no MPEG audio frames (empty, damaged, or not MP3).
    #[error("chunk {index} is not decodable MP3: {reason}")]
    Undecodable { index: usize, reason: String },
    /// Chunks differ in sample rate, channels or MPEG version, so one stream cannot hold them.
    #[error("chunk {index} is {found} but the first chunk is {expected}")]
    MixedFormats { index: usize, expected: String, found: String },
}

impl StitchError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StitchError::NoChunks | StitchError::Undecodable { .. } | StitchError::MixedFormats { .. } => {
                ErrorKind::InvalidInput
            }
        }
    }
}

impl From<StitchError> for StepError {
    fn from(e: StitchError) -> Self {
        StepError::new(e.kind(), e.to_string())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    Mpeg1,
    Mpeg2,
    Mpeg25,
}

/// A parsed 4-byte frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Header {
    raw: [u8; 4],
    version: Version,
    layer: u8,
    bitrate_kbps: u32,
    sample_rate: u32,
    padding: bool,
    mono: bool,
    protected: bool,
}

impl Header {
    fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < 4 || b[0] != 0xFF || b[1] & 0xE0 != 0xE0 {
            return None;
        }
        let version = match (b[1] >> 3) & 0b11 {
            0b00 => Version::Mpeg25,
            0b10 => Version::Mpeg2,
            0b11 => Version::Mpeg1,
            _ => return None,
        };
        let layer = match (b[1] >> 1) & 0b11 {
            0b01 => 3,
            0b10 => 2,
            0b11 => 1,
            _ => return None,
        };
        let protected = b[1] & 1 == 0;
        let bitrate_index = usize::from(b[2] >> 4);
        let sr_index = usize::from((b[2] >> 2) & 0b11);
        if bitrate_index == 0 || bitrate_index == 15 || sr_index == 3 {
            // Free-format frames have no computable length; index 15 is invalid.
            return None;
        }
        const V1: [[u32; 15]; 3] = [
            [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
            [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
            [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
        ];
        const V2: [[u32; 15]; 2] = [
            [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
            [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
        ];
        let bitrate_kbps = match (version, layer) {
            (Version::Mpeg1, l) => V1[usize::from(l - 1)][bitrate_index],
            (_, 1) => V2[0][bitrate_index],
            (_, _) => V2[1][bitrate_index],
        };
        let sample_rate = [44_100, 48_000, 32_000][sr_index]
            / match version {
                Version::Mpeg1 => 1,
                Version::Mpeg2 => 2,
                Version::Mpeg25 => 4,
            };
        Some(Header {
            raw: [b[0], b[1], b[2], b[3]],
            version,
            layer,
            bitrate_kbps,
            sample_rate,
            padding: (b[2] >> 1) & 1 == 1,
            mono: b[3] >> 6 == 0b11,
            protected,
        })
    }

    fn samples(&self) -> u32 {
        match (self.layer, self.version) {
            (1, _) => 384,
            (2, _) | (3, Version::Mpeg1) => 1152,
            _ => 576,
        }
    }

    fn len(&self) -> usize {
        let pad = u32::from(self.padding);
        let len = if self.layer == 1 {
            (12 * self.bitrate_kbps * 1000 / self.sample_rate + pad) * 4
        } else {
            self.samples() / 8 * self.bitrate_kbps * 1000 / self.sample_rate + pad
        };
        len as usize
    }

    /// Where a Xing/Info tag sits inside a Layer III frame: after the header, the CRC and the
    /// side information.
    fn side_info_end(&self) -> usize {
        let side = match (self.version, self.mono) {
            (Version::Mpeg1, false) => 32,
            (Version::Mpeg1, true) => 17,
            (_, false) => 17,
            (_, true) => 9,
        };
        4 + if self.protected { 2 } else { 0 } + side
    }

    fn format(&self) -> String {
        format!(
            "{:?} layer {} {} Hz {}",
            self.version,
            self.layer,
            self.sample_rate,
            if self.mono { "mono" } else { "stereo" }
        )
    }

    fn same_stream(&self, other: &Header) -> bool {
        // Bitrate and padding may change from frame to frame; the rest makes the stream.
        self.version == other.version
            && self.layer == other.layer
            && self.sample_rate == other.sample_rate
            && self.mono == other.mono
    }
}

/// The audio frames of one file, as byte ranges, after tags and any Xing/Info/VBRI frame.
struct Frames<'a> {
    data: &'a [u8],
    ranges: Vec<(usize, usize)>,
    first: Header,
    samples: u64,
    bitrates: std::collections::BTreeSet<u32>,
}

fn skip_id3v2(data: &[u8]) -> usize {
    let mut pos = 0;
    // Some files carry more than one tag in a row.
    while data.len() >= pos + 10 && &data[pos..pos + 3] == b"ID3" {
        let size = data[pos + 6..pos + 10].iter().fold(0usize, |acc, &b| (acc << 7) | usize::from(b & 0x7F));
        let footer = if data[pos + 5] & 0x10 != 0 { 10 } else { 0 };
        pos += 10 + size + footer;
    }
    pos.min(data.len())
}

fn end_without_trailing_tags(data: &[u8], start: usize) -> usize {
    let mut end = data.len();
    if end >= start + 128 && &data[end - 128..end - 125] == b"TAG" {
        end -= 128;
    }
    // APEv2 footer: "APETAGEX", then version, size (little-endian, incl. footer), ...
    if end >= start + 32 && &data[end - 32..end - 24] == b"APETAGEX" {
        let size =
            u32::from_le_bytes([data[end - 20], data[end - 19], data[end - 18], data[end - 17]]) as usize;
        let has_header = data[end - 9] & 0x80 != 0;
        let total = size + if has_header { 32 } else { 0 };
        if total <= end - start {
            end -= total;
        }
    }
    end
}

fn is_info_frame(frame: &[u8], h: &Header) -> bool {
    let at = h.side_info_end();
    let tag = |off: usize| frame.get(off..off + 4);
    (h.layer == 3 && matches!(tag(at), Some(b"Xing") | Some(b"Info"))) || tag(36) == Some(b"VBRI")
}

fn read_frames(data: &[u8], index: usize) -> Result<Frames<'_>, StitchError> {
    let undecodable = |reason: &str| StitchError::Undecodable { index, reason: reason.to_string() };
    if data.is_empty() {
        return Err(undecodable("the chunk is empty"));
    }
    let start = skip_id3v2(data);
    let end = end_without_trailing_tags(data, start);
    let mut pos = start;
    let mut ranges = Vec::new();
    let mut first: Option<Header> = None;
    let mut samples = 0u64;
    let mut skipped = 0usize;
    let mut bitrates = std::collections::BTreeSet::new();
    while pos + 4 <= end {
        let header = Header::parse(&data[pos..end]).filter(|h| first.is_none_or(|f| f.same_stream(h)));
        let Some(h) = header else {
            // Not a frame here: resynchronise on the next one, but only a little junk is taken.
            pos += 1;
            skipped += 1;
            continue;
        };
        let len = h.len();
        if len < 4 || pos + len > end {
            // A frame cut short at the end of the file is not audio we can count.
            break;
        }
        // A real frame is followed by another frame or by the end; this guards against a
        // stray 0xFF in junk being taken for a header.
        let next_ok =
            pos + len + 4 > end || Header::parse(&data[pos + len..end]).is_some_and(|n| n.same_stream(&h));
        if !next_ok && first.is_none() {
            pos += 1;
            skipped += 1;
            continue;
        }
        let frame = &data[pos..pos + len];
        if first.is_none() && is_info_frame(frame, &h) {
            first = Some(h);
            pos += len;
            continue;
        }
        first.get_or_insert(h);
        ranges.push((pos, pos + len));
        samples += u64::from(h.samples());
        bitrates.insert(h.bitrate_kbps);
        pos += len;
    }
    let Some(first) = first.filter(|_| !ranges.is_empty()) else {
        return Err(undecodable("no MPEG audio frames found"));
    };
    if skipped > (end - start) / 10 + 64 {
        return Err(undecodable(&format!("{skipped} bytes between frames are not audio")));
    }
    Ok(Frames { data, ranges, first, samples, bitrates })
}

impl Frames<'_> {
    fn info(&self) -> Mp3Info {
        let sample_rate = self.first.sample_rate;
        Mp3Info {
            frames: self.ranges.len() as u64,
            samples: self.samples,
            sample_rate,
            channels: if self.first.mono { 1 } else { 2 },
            duration_seconds: self.samples as f64 / f64::from(sample_rate),
        }
    }
}

/// The frames and duration of one MP3, counted from its frames.
pub fn inspect(mp3: &[u8]) -> Result<Mp3Info, StitchError> {
    read_frames(mp3, 0).map(|f| f.info())
}

/// Joins MP3 chunks into one stream: each chunk's tags and Xing/Info frame dropped, the audio
/// frames concatenated in order, one Info (or, when the bitrates differ, Xing) frame in front
/// that gives players the frame count. The duration is counted from the frames.
pub fn stitch<B: AsRef<[u8]>>(chunks: &[B]) -> Result<Stitched, StitchError> {
    if chunks.is_empty() {
        return Err(StitchError::NoChunks);
    }
    let mut all = Vec::with_capacity(chunks.len());
    for (index, chunk) in chunks.iter().enumerate() {
        let frames = read_frames(chunk.as_ref(), index)?;
        if let Some(first) = all.first().map(|f: &Frames<'_>| f.first)
            && !first.same_stream(&frames.first)
        {
            return Err(StitchError::MixedFormats {
                index,
                expected: first.format(),
                found: frames.first.format(),
            });
        }
        all.push(frames);
    }
    let first = all[0].first;
    let frame_count: u64 = all.iter().map(|f| f.ranges.len() as u64).sum();
    let samples: u64 = all.iter().map(|f| f.samples).sum();
    let audio_bytes: usize = all.iter().flat_map(|f| f.ranges.iter().map(|(a, b)| b - a)).sum();
    let vbr = all.iter().flat_map(|f| f.bitrates.iter()).collect::<std::collections::BTreeSet<_>>().len() > 1;

    let mut out = Vec::with_capacity(audio_bytes + 1024);
    if first.layer == 3 {
        out.extend_from_slice(&info_frame(&first, frame_count, vbr));
        let total = out.len() + audio_bytes;
        // The byte count covers the whole file, the Info frame included.
        let at = first.side_info_end() - if first.protected { 2 } else { 0 } + 12;
        out[at..at + 4].copy_from_slice(&(total as u32).to_be_bytes());
    }
    for frames in &all {
        for &(a, b) in &frames.ranges {
            out.extend_from_slice(&frames.data[a..b]);
        }
    }
    let info = Mp3Info {
        frames: frame_count,
        samples,
        sample_rate: first.sample_rate,
        channels: if first.mono { 1 } else { 2 },
        duration_seconds: samples as f64 / f64::from(first.sample_rate),
    };
    Ok(Stitched { bytes: out, info })
}

/// A silent Layer III frame of the stream's format that carries a Xing/Info tag with the frame
/// count (the byte count is filled in by the caller). It has the stream's bitrate unless that
/// frame is too small for the tag; no padding, no CRC.
fn info_frame(first: &Header, frames: u64, vbr: bool) -> Vec<u8> {
    let mut raw = first.raw;
    raw[1] |= 1; // no CRC
    raw[2] &= !0b10; // no padding
    let mut h = Header::parse(&raw).unwrap_or(*first);
    let need = h.side_info_end() + 16;
    while h.len() < need && (raw[2] >> 4) < 14 {
        raw[2] += 0x10;
        match Header::parse(&raw) {
            Some(next) => h = next,
            None => break,
        }
    }
    let mut frame = vec![0u8; h.len().max(need)];
    frame[..4].copy_from_slice(&raw);
    let at = h.side_info_end();
    frame[at..at + 4].copy_from_slice(if vbr { b"Xing" } else { b"Info" });
    // Flags: frame count and byte count present.
    frame[at + 4..at + 8].copy_from_slice(&3u32.to_be_bytes());
    frame[at + 8..at + 12].copy_from_slice(&(frames as u32).to_be_bytes());
    frame
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Layer III frame of MPEG-2, 22,050 Hz, mono, at `kbps`, its body filled with `fill`.
    fn frame(kbps_index: u8, fill: u8) -> Vec<u8> {
        let header = [0xFF, 0xF3, kbps_index << 4, 0xC0];
        let h = Header::parse(&header).unwrap();
        let mut f = vec![fill; h.len()];
        f[..4].copy_from_slice(&header);
        f
    }

    #[test]
    fn headers_give_lengths_and_samples() {
        let h = Header::parse(&[0xFF, 0xF3, 0x60, 0xC0]).unwrap(); // MPEG-2 L3 48 kbps 22.05 kHz
        assert_eq!((h.bitrate_kbps, h.sample_rate, h.samples(), h.len()), (48, 22_050, 576, 156));
        let h = Header::parse(&[0xFF, 0xFB, 0x90, 0x64]).unwrap(); // MPEG-1 L3 128 kbps 44.1 kHz
        assert_eq!((h.bitrate_kbps, h.sample_rate, h.samples(), h.len()), (128, 44_100, 1152, 417));
    }

    #[test]
    fn tags_and_info_frames_are_stripped_and_frames_counted() {
        let mut chunk = b"ID3\x03\x00\x00\x00\x00\x00\x05abcde".to_vec();
        let mut info = frame(6, 0);
        info[13..17].copy_from_slice(b"Info");
        chunk.extend(info);
        for _ in 0..10 {
            chunk.extend(frame(6, 0x55));
        }
        chunk.extend(b"TAG");
        chunk.extend([0u8; 125]);
        let got = inspect(&chunk).unwrap();
        assert_eq!(got.frames, 10);
        assert_eq!(got.samples, 5_760);

        let joined = stitch(&[chunk.clone(), chunk]).unwrap();
        assert_eq!(joined.info.frames, 20);
        assert!((joined.info.duration_seconds - 11_520.0 / 22_050.0).abs() < 1e-9);
        // One Info frame in front, then exactly the 20 audio frames.
        assert_eq!(joined.bytes.len(), 156 + 20 * 156);
        assert_eq!(&joined.bytes[13..17], b"Info");
        assert_eq!(inspect(&joined.bytes).unwrap().frames, 20);
    }

    #[test]
    fn empty_and_undecodable_input_is_refused_by_name() {
        assert_eq!(stitch::<Vec<u8>>(&[]).unwrap_err(), StitchError::NoChunks);
        assert!(matches!(stitch(&[vec![0u8; 8]]), Err(StitchError::Undecodable { index: 0, .. })));
        assert!(matches!(stitch(&[frame(6, 1), vec![]]), Err(StitchError::Undecodable { index: 1, .. })));
        let noise: Vec<u8> = (0..10_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        assert!(matches!(inspect(&noise), Err(StitchError::Undecodable { .. })));
    }

    #[test]
    fn mixed_sample_rates_are_refused() {
        let other = {
            let header = [0xFF, 0xF3, 0x64, 0xC0]; // 24 kHz
            let h = Header::parse(&header).unwrap();
            let mut f = vec![0u8; h.len()];
            f[..4].copy_from_slice(&header);
            f
        };
        let a: Vec<u8> = frame(6, 1).repeat(3);
        let b: Vec<u8> = other.repeat(3);
        assert!(matches!(stitch(&[a, b]), Err(StitchError::MixedFormats { index: 1, .. })));
    }
}
