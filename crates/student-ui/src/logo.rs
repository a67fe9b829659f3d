//! The school's logo on the lock and sign-in screens. The server validates
//! and re-encodes every uploaded logo as PNG, so only PNG is decoded here;
//! the limits still hold against a damaged or hostile file.

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

/// Widest and tallest logo accepted, in pixels (the server's limit too).
pub const MAX_SIDE: u32 = 1024;
/// Largest PNG file accepted, in bytes.
pub const MAX_BYTES: usize = 512 * 1024;

/// Why a logo was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoError {
    /// The file is larger than [`MAX_BYTES`].
    TooLarge,
    /// Wider or taller than [`MAX_SIDE`], or empty.
    BadSize {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// Not a PNG this decoder reads.
    NotPng(String),
}

impl fmt::Display for LogoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogoError::TooLarge => write!(f, "the logo is larger than {MAX_BYTES} bytes"),
            LogoError::BadSize { width, height } => write!(
                f,
                "the logo is {width}×{height} pixels; each side must be 1 to {MAX_SIDE}"
            ),
            LogoError::NotPng(e) => write!(f, "the logo is not a readable PNG: {e}"),
        }
    }
}

impl std::error::Error for LogoError {}

/// A decoded logo, cheap to clone: premultiplied pixels in the surfaces'
/// B, G, R, A memory order, ready to draw.
#[derive(Clone)]
pub struct Logo {
    pixmap: Arc<tiny_skia::Pixmap>,
    hash: u64,
}

impl fmt::Debug for Logo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Logo({}×{})", self.width(), self.height())
    }
}

impl PartialEq for Logo {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && self.pixmap.data() == other.pixmap.data()
    }
}

impl Eq for Logo {}

impl Logo {
    /// Decodes a PNG (any colour type, 8 or 16 bits, with or without
    /// transparency).
    pub fn from_png(bytes: &[u8]) -> Result<Logo, LogoError> {
        if bytes.len() > MAX_BYTES {
            return Err(LogoError::TooLarge);
        }
        let bad = |e: png::DecodingError| LogoError::NotPng(e.to_string());
        // The pixel limit stops a small file that claims a huge image.
        let limits = png::Limits {
            bytes: (MAX_SIDE * MAX_SIDE * 8) as usize,
        };
        let mut dec = png::Decoder::new_with_limits(bytes, limits);
        dec.set_transformations(png::Transformations::normalize_to_color8());
        let mut reader = dec.read_info().map_err(bad)?;
        let (width, height) = (reader.info().width, reader.info().height);
        if width == 0 || height == 0 || width > MAX_SIDE || height > MAX_SIDE {
            return Err(LogoError::BadSize { width, height });
        }
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).map_err(bad)?;
        let rgba = to_rgba(&buf[..frame.buffer_size()], frame.color_type)?;
        Ok(Logo::from_rgba(width, height, &rgba))
    }

    /// A logo from straight (not premultiplied) R, G, B, A pixels, row-major.
    fn from_rgba(width: u32, height: u32, rgba: &[u8]) -> Logo {
        let mut pixmap = tiny_skia::Pixmap::new(width, height).expect("non-zero size");
        // The surfaces' buffer is B, G, R, A in memory while tiny-skia calls
        // the bytes R, G, B, A: swap red and blue so the logo lands right.
        for (out, p) in pixmap
            .data_mut()
            .chunks_exact_mut(4)
            .zip(rgba.chunks_exact(4))
        {
            let a = u16::from(p[3]);
            let pm = |c: u8| ((u16::from(c) * a + 127) / 255) as u8;
            out.copy_from_slice(&[pm(p[2]), pm(p[1]), pm(p[0]), p[3]]);
        }
        let mut h = DefaultHasher::new();
        pixmap.data().hash(&mut h);
        Logo {
            pixmap: Arc::new(pixmap),
            hash: h.finish(),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.pixmap.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.pixmap.height()
    }

    pub(crate) fn pixmap(&self) -> tiny_skia::PixmapRef<'_> {
        tiny_skia::Pixmap::as_ref(&self.pixmap)
    }
}

fn to_rgba(px: &[u8], colour: png::ColorType) -> Result<Vec<u8>, LogoError> {
    use png::ColorType as C;
    Ok(match colour {
        C::Rgba => px.to_vec(),
        C::Rgb => px
            .chunks_exact(3)
            .flat_map(|p| [p[0], p[1], p[2], 255])
            .collect(),
        C::GrayscaleAlpha => px
            .chunks_exact(2)
            .flat_map(|p| [p[0], p[0], p[0], p[1]])
            .collect(),
        C::Grayscale => px.iter().flat_map(|&g| [g, g, g, 255]).collect(),
        C::Indexed => return Err(LogoError::NotPng("palette not expanded".into())),
    })
}
