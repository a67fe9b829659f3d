//! The live view's video encoder: RGB screen captures in, H.264 (Annex B,
//! Constrained Baseline, the profile every WebCodecs decoder takes) out.
//!
//! One job and no I/O: the agent captures, this crate encodes, the agent
//! frames and sends. OpenH264 is built from the C++ source the `openh264`
//! crate ships (its `source` feature), so nothing is loaded at run time.
//!
//! ```
//! use lectern_video::{Encoder, Settings};
//! let mut enc = Encoder::new(Settings::default()).unwrap();
//! let rgb = vec![200u8; 64 * 48 * 3];
//! let frame = enc.encode(64, 48, &rgb, 0).unwrap().expect("a first frame");
//! assert!(frame.keyframe);
//! ```

use openh264::encoder::{
    BitRate, Complexity, EncoderConfig, FrameRate, FrameType, IntraFramePeriod, RateControlMode,
    UsageType,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};
use openh264::{OpenH264API, Timestamp};

/// Smallest bitrate an encoder is set to (bits per second): below it a
/// screen of text is unreadable anyway.
pub const MIN_BITRATE: u32 = 200_000;
/// Largest bitrate an encoder is set to (bits per second).
pub const MAX_BITRATE: u32 = 20_000_000;
/// Largest picture OpenH264 encodes (either orientation).
pub const MAX_SIDE: u32 = 3840;

/// Why encoding failed.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    /// The picture's size or buffer does not fit the encoder.
    #[error("bad picture: {0}")]
    BadPicture(String),
    /// OpenH264 refused to start or to encode.
    #[error("H.264 encoder: {0}")]
    Encoder(String),
}

/// How an encoder is set up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    /// Target bitrate in bits per second (clamped to
    /// [`MIN_BITRATE`]..=[`MAX_BITRATE`]).
    pub bitrate: u32,
    /// Frames per second the agent means to capture at (rate control uses it).
    pub fps: f32,
    /// A keyframe at least this often (frames), so a viewer that lost one
    /// recovers even if its request for a keyframe is lost too.
    pub keyframe_every: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            bitrate: 2_500_000,
            fps: 15.0,
            keyframe_every: 300,
        }
    }
}

/// One encoded picture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedFrame {
    /// H.264 Annex B NAL units (a keyframe starts with SPS and PPS).
    pub data: Vec<u8>,
    /// An IDR picture: a decoder can start here.
    pub keyframe: bool,
    /// Encoded width (the capture's, rounded down to even).
    pub width: u32,
    /// Encoded height (rounded down to even).
    pub height: u32,
}

/// An H.264 encoder for one stream (one viewer's live view of one screen).
pub struct Encoder {
    inner: openh264::encoder::Encoder,
    settings: Settings,
    yuv: Option<YUVBuffer>,
    /// Cropped copy of a capture whose size was odd (4:2:0 needs even sides).
    even: Vec<u8>,
}

impl Encoder {
    /// A new encoder; its first picture is a keyframe.
    pub fn new(settings: Settings) -> Result<Self, VideoError> {
        let settings = Settings {
            bitrate: settings.bitrate.clamp(MIN_BITRATE, MAX_BITRATE),
            fps: settings.fps.clamp(1.0, 60.0),
            keyframe_every: settings.keyframe_every.max(1),
        };
        let config = EncoderConfig::new()
            .usage_type(UsageType::ScreenContentRealTime)
            .rate_control_mode(RateControlMode::Bitrate)
            .bitrate(BitRate::from_bps(settings.bitrate))
            .max_frame_rate(FrameRate::from_hz(settings.fps))
            .complexity(Complexity::Low)
            .intra_frame_period(IntraFramePeriod::from_num_frames(settings.keyframe_every))
            // OpenH264 keeps to the bitrate only by skipping frames now and
            // then (`encode` returns `None` for those).
            .skip_frames(true)
            // Not available for screen content (it would warn on stderr).
            .adaptive_quantization(false)
            .background_detection(false)
            .debug(false);
        let inner = openh264::encoder::Encoder::with_api_config(OpenH264API::from_source(), config)
            .map_err(|e| VideoError::Encoder(e.to_string()))?;
        Ok(Encoder {
            inner,
            settings,
            yuv: None,
            even: Vec::new(),
        })
    }

    /// The settings in force (after clamping).
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Makes the next picture a keyframe (a viewer joined or lost frames).
    pub fn request_keyframe(&mut self) {
        self.inner.force_intra_frame();
    }

    /// Changes the target bitrate: a new encoder, so the next picture is a
    /// keyframe (which a viewer that lost frames needs anyway).
    pub fn set_bitrate(&mut self, bitrate: u32) -> Result<(), VideoError> {
        let want = bitrate.clamp(MIN_BITRATE, MAX_BITRATE);
        if want != self.settings.bitrate {
            *self = Encoder::new(Settings {
                bitrate: want,
                ..self.settings
            })?;
        }
        Ok(())
    }

    /// Encodes one RGB picture (`width * height * 3` bytes, rows top to
    /// bottom) taken at `ms` (any clock, for rate control). An odd width or
    /// height loses its last column or row. `None` when the encoder emitted
    /// nothing for this picture.
    pub fn encode(
        &mut self,
        width: u32,
        height: u32,
        rgb: &[u8],
        ms: u64,
    ) -> Result<Option<EncodedFrame>, VideoError> {
        let (w, h) = (width & !1, height & !1);
        if w < 2 || h < 2 || w.max(h) > MAX_SIDE || w.min(h) > 2160 {
            return Err(VideoError::BadPicture(format!("{width}x{height}")));
        }
        if rgb.len() != width as usize * height as usize * 3 {
            return Err(VideoError::BadPicture(format!(
                "{} bytes for {width}x{height}",
                rgb.len()
            )));
        }
        let src = if (w, h) == (width, height) {
            rgb
        } else {
            crop(rgb, width as usize, w as usize, h as usize, &mut self.even);
            &self.even
        };
        let (wu, hu) = (w as usize, h as usize);
        let yuv = match &mut self.yuv {
            Some(y) if openh264::formats::YUVSource::dimensions(y) == (wu, hu) => y,
            slot => slot.insert(YUVBuffer::new(wu, hu)),
        };
        yuv.read_rgb8(RgbSliceU8::new(src, (wu, hu)));
        let out = self
            .inner
            .encode_at(&*yuv, Timestamp::from_millis(ms))
            .map_err(|e| VideoError::Encoder(e.to_string()))?;
        let keyframe = match out.frame_type() {
            FrameType::Skip | FrameType::Invalid => return Ok(None),
            t => matches!(t, FrameType::IDR),
        };
        let data = out.to_vec();
        if data.is_empty() {
            return Ok(None);
        }
        Ok(Some(EncodedFrame {
            data,
            keyframe,
            width: w,
            height: h,
        }))
    }
}

/// Copies the top-left `w` x `h` pixels of an RGB image `stride_px` wide.
fn crop(rgb: &[u8], stride_px: usize, w: usize, h: usize, out: &mut Vec<u8>) {
    out.clear();
    for row in rgb.chunks_exact(stride_px * 3).take(h) {
        out.extend_from_slice(&row[..w * 3]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openh264::decoder::Decoder;

    /// A picture with a block of `colour` on grey, and some text-like stripes.
    fn picture(w: usize, h: usize, colour: [u8; 3]) -> Vec<u8> {
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let p = if x < w / 2 && y < h / 2 {
                    colour
                } else if (y / 4) % 2 == 0 && x % 7 < 3 {
                    [20, 20, 20]
                } else {
                    [128, 128, 128]
                };
                rgb[(y * w + x) * 3..][..3].copy_from_slice(&p);
            }
        }
        rgb
    }

    fn decode_all(frames: &[EncodedFrame]) -> Vec<(usize, usize, Vec<u8>)> {
        let mut dec = Decoder::new().unwrap();
        let mut out = Vec::new();
        for f in frames {
            if let Some(yuv) = dec.decode(&f.data).unwrap() {
                let (w, h) = openh264::formats::YUVSource::dimensions(&yuv);
                let mut rgb = vec![0u8; w * h * 3];
                yuv.write_rgb8(&mut rgb);
                out.push((w, h, rgb));
            }
        }
        out
    }

    fn pixel(rgb: &[u8], w: usize, x: usize, y: usize) -> [u8; 3] {
        rgb[(y * w + x) * 3..][..3].try_into().unwrap()
    }

    fn close(a: [u8; 3], b: [u8; 3]) -> bool {
        a.iter().zip(b).all(|(a, b)| a.abs_diff(b) <= 24)
    }

    #[test]
    fn encodes_and_decodes_back_to_a_similar_picture() {
        let (w, h) = (320, 240);
        let mut enc = Encoder::new(Settings::default()).unwrap();
        let red = picture(w, h, [220, 30, 30]);
        let blue = picture(w, h, [30, 30, 220]);
        let mut frames = Vec::new();
        for (i, p) in [&red, &red, &blue, &blue].into_iter().enumerate() {
            frames.push(
                enc.encode(w as u32, h as u32, p, i as u64 * 66)
                    .unwrap()
                    .unwrap(),
            );
        }
        assert!(frames[0].keyframe, "the first picture is a keyframe");
        assert!(!frames[1].keyframe, "then deltas");
        assert!(frames[0].data.starts_with(&[0, 0, 0, 1]), "Annex B");
        let decoded = decode_all(&frames);
        assert_eq!(decoded.len(), 4);
        let (dw, dh, first) = &decoded[0];
        assert_eq!((*dw, *dh), (w, h));
        assert!(close(pixel(first, w, 40, 40), [220, 30, 30]));
        assert!(close(pixel(first, w, 300, 30), [128, 128, 128]));
        let (_, _, last) = &decoded[3];
        assert!(
            close(pixel(last, w, 40, 40), [30, 30, 220]),
            "the change shows"
        );
    }

    #[test]
    fn keyframes_on_request_and_after_a_bitrate_change() {
        let (w, h) = (128, 96);
        let p = picture(w, h, [0, 200, 0]);
        let mut enc = Encoder::new(Settings::default()).unwrap();
        let next = |enc: &mut Encoder, t| enc.encode(w as u32, h as u32, &p, t).unwrap().unwrap();
        assert!(next(&mut enc, 0).keyframe);
        assert!(!next(&mut enc, 66).keyframe);
        enc.request_keyframe();
        assert!(next(&mut enc, 133).keyframe);
        assert!(!next(&mut enc, 200).keyframe);
        enc.set_bitrate(500_000).unwrap();
        assert_eq!(enc.settings().bitrate, 500_000);
        assert!(next(&mut enc, 266).keyframe);
        enc.set_bitrate(1).unwrap();
        assert_eq!(enc.settings().bitrate, MIN_BITRATE, "clamped");
    }

    #[test]
    fn odd_sizes_are_cropped_and_bad_pictures_refused() {
        let mut enc = Encoder::new(Settings::default()).unwrap();
        let p = picture(101, 75, [10, 10, 200]);
        let f = enc.encode(101, 75, &p, 0).unwrap().unwrap();
        assert_eq!((f.width, f.height), (100, 74));
        assert_eq!(decode_all(&[f])[0].0, 100);
        assert!(matches!(
            enc.encode(100, 74, &p, 0),
            Err(VideoError::BadPicture(_))
        ));
        assert!(enc.encode(1, 1, &[0, 0, 0], 0).is_err());
        assert!(enc.encode(4000, 2, &vec![0; 4000 * 2 * 3], 0).is_err());
    }
}
