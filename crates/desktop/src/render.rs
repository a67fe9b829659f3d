//! A tiny software canvas for the headless desktop's synthetic screen: filled
//! rectangles and 8×8 bitmap text, then JPEG encoding.

use crate::{DesktopError, Frame};

/// An RGB colour.
pub type Rgb = [u8; 3];

/// Colour of the lock screen; tests look for it in thumbnails.
pub const LOCK_BG: Rgb = [24, 28, 64];
/// Background of the broadcast viewer.
pub const BROADCAST_BG: Rgb = [10, 90, 40];

/// Logical screen size the synthetic desktop is laid out in.
pub const LOGICAL_W: u32 = 1280;
/// Logical screen height.
pub const LOGICAL_H: u32 = 720;

/// Draws in logical 1280×720 coordinates onto a frame of any width.
pub struct Canvas {
    frame: Frame,
    scale: f32,
}

impl Canvas {
    /// A canvas `width` pixels wide (at least 16), 16:9, filled with `bg`.
    pub fn new(width: u32, bg: Rgb) -> Self {
        let width = width.clamp(16, 3840);
        let height = (width * LOGICAL_H / LOGICAL_W).max(9);
        let rgb = bg
            .iter()
            .copied()
            .cycle()
            .take((width * height * 3) as usize)
            .collect();
        Canvas {
            frame: Frame { width, height, rgb },
            scale: width as f32 / LOGICAL_W as f32,
        }
    }

    fn px(&self, v: u32) -> u32 {
        (v as f32 * self.scale).round() as u32
    }

    /// Fills a logical rectangle.
    pub fn rect(&mut self, x: u32, y: u32, w: u32, h: u32, c: Rgb) {
        let (x0, y0) = (self.px(x), self.px(y));
        let (x1, y1) = (
            (self.px(x + w)).min(self.frame.width),
            (self.px(y + h)).min(self.frame.height),
        );
        for py in y0..y1 {
            for px in x0..x1 {
                let i = ((py * self.frame.width + px) * 3) as usize;
                self.frame.rgb[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    /// Draws `text` with its top-left at a logical point, glyphs `size` logical
    /// pixels high; wraps at `max_w` logical pixels. Non-ASCII shows as `?`.
    pub fn text(&mut self, x: u32, y: u32, size: u32, max_w: u32, text: &str, c: Rgb) {
        let glyph = self.px(size).max(8) / 8; // whole pixels per font pixel, at least 1
        let adv = (8 * glyph) as f32 / self.scale; // logical advance per character
        let per_line = ((max_w as f32 / adv) as usize).max(1);
        for (row, line) in wrap(text, per_line).iter().enumerate().take(12) {
            let oy = self.px(y) + row as u32 * 10 * glyph;
            for (col, ch) in line.chars().enumerate() {
                let ox = self.px(x) + (col as f32 * adv * self.scale) as u32;
                let idx = if ch.is_ascii() {
                    ch as usize
                } else {
                    '?' as usize
                };
                let bitmap = font8x8::legacy::BASIC_LEGACY[idx];
                for (gy, bits) in bitmap.iter().enumerate() {
                    for gx in 0..8 {
                        if bits & (1 << gx) != 0 {
                            self.dot(ox + gx * glyph, oy + gy as u32 * glyph, glyph, c);
                        }
                    }
                }
            }
        }
    }

    fn dot(&mut self, x: u32, y: u32, size: u32, c: Rgb) {
        for py in y..(y + size).min(self.frame.height) {
            for px in x..(x + size).min(self.frame.width) {
                let i = ((py * self.frame.width + px) * 3) as usize;
                self.frame.rgb[i..i + 3].copy_from_slice(&c);
            }
        }
    }

    /// The finished frame.
    pub fn finish(self) -> Frame {
        self.frame
    }
}

fn wrap(text: &str, per_line: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for para in text.split('\n') {
        let mut line = String::new();
        for word in para.split_whitespace() {
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > per_line {
                lines.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
        lines.push(line);
    }
    lines
}

/// Encodes a frame as baseline JPEG at `quality` (1–100).
pub fn encode_jpeg(frame: &Frame, quality: u8) -> Result<Vec<u8>, DesktopError> {
    let (w, h) = (u16::try_from(frame.width), u16::try_from(frame.height));
    let (Ok(w), Ok(h)) = (w, h) else {
        return Err(DesktopError::Failed("frame too large for JPEG".into()));
    };
    let mut out = Vec::with_capacity(16 * 1024);
    jpeg_encoder::Encoder::new(&mut out, quality)
        .encode(&frame.rgb, w, h, jpeg_encoder::ColorType::Rgb)
        .map_err(|e| DesktopError::Failed(format!("JPEG encoding failed: {e}")))?;
    Ok(out)
}

/// Largest broadcast frame accepted, in pixels (a 4K screen), so a small JPEG
/// declaring a huge size cannot make the agent allocate gigabytes.
pub const MAX_FRAME_PIXELS: usize = 3840 * 2160;

/// Decodes a baseline or progressive JPEG (a broadcast frame) into RGB,
/// refusing one that declares more than [`MAX_FRAME_PIXELS`] before decoding it.
pub fn decode_jpeg(jpeg: &[u8]) -> Result<Frame, DesktopError> {
    let bad = |e: &dyn std::fmt::Display| {
        DesktopError::Failed(format!("broadcast frame is not a JPEG image: {e}"))
    };
    let mut d = jpeg_decoder::Decoder::new(jpeg);
    d.read_info().map_err(|e| bad(&e))?;
    let info = d.info().ok_or_else(|| bad(&"no header"))?;
    let (w, h) = (usize::from(info.width), usize::from(info.height));
    if w * h > MAX_FRAME_PIXELS {
        return Err(DesktopError::Failed(format!(
            "broadcast frame too large ({w}×{h})"
        )));
    }
    let px = d.decode().map_err(|e| bad(&e))?;
    use jpeg_decoder::PixelFormat as P;
    let rgb = match info.pixel_format {
        P::RGB24 => px,
        P::L8 => px.iter().flat_map(|&l| [l, l, l]).collect(),
        P::L16 => px.chunks_exact(2).flat_map(|l| [l[0]; 3]).collect(),
        P::CMYK32 => px
            .chunks_exact(4)
            .flat_map(|p| {
                // Adobe JPEGs store inverted CMYK; the decoder hands it back as is.
                let k = u16::from(p[3]);
                [0, 1, 2].map(|i| (u16::from(p[i]) * k / 255) as u8)
            })
            .collect(),
    };
    if rgb.len() != w * h * 3 {
        return Err(bad(&"unexpected pixel data size"));
    }
    Ok(Frame {
        width: w as u32,
        height: h as u32,
        rgb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_and_encodes() {
        let mut c = Canvas::new(320, [0, 0, 0]);
        c.rect(0, 0, 640, 720, [255, 255, 255]);
        c.text(700, 100, 32, 500, "Hello", [255, 0, 0]);
        let f = c.finish();
        assert_eq!((f.width, f.height), (320, 180));
        assert_eq!(&f.rgb[0..3], &[255, 255, 255]);
        let right = ((10 * 320 + 300) * 3) as usize;
        assert_eq!(&f.rgb[right..right + 3], &[0, 0, 0]);
        assert!(f.rgb.chunks(3).any(|p| p == [255, 0, 0]), "text drawn");
        let jpeg = encode_jpeg(&f, 70).unwrap();
        assert_eq!(&jpeg[..2], &[0xFF, 0xD8]);
    }

    #[test]
    fn wraps_words() {
        assert_eq!(wrap("aa bb cc", 5), vec!["aa bb", "cc"]);
        assert_eq!(wrap("x\ny", 10), vec!["x", "y"]);
    }
}
