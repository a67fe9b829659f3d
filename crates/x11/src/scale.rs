//! Pixel conversion and resampling: screen images (32 bits per pixel, in the X
//! server's channel order) to RGB thumbnails, and RGB pictures to screen images.

use std::borrow::Cow;

/// Where the red, green and blue bytes sit inside one pixel of `bpp` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Bytes per pixel (3 for RGB, 4 for X's 32-bit Z-pixmaps).
    pub bpp: usize,
    /// Byte offsets of red, green and blue inside a pixel.
    pub offsets: [usize; 3],
}

impl Layout {
    /// Plain RGB, 3 bytes per pixel.
    pub const RGB: Layout = Layout {
        bpp: 3,
        offsets: [0, 1, 2],
    };
    /// The usual X layout on little-endian servers: B, G, R, unused.
    #[cfg(test)]
    pub const BGRX: Layout = Layout {
        bpp: 4,
        offsets: [2, 1, 0],
    };
}

/// A borrowed image: `height` rows of `stride` bytes, each pixel laid out as `layout`.
#[derive(Debug, Clone, Copy)]
pub struct Image<'a> {
    /// Pixel bytes.
    pub data: &'a [u8],
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Bytes from one row to the next (at least `width * layout.bpp`).
    pub stride: usize,
    /// Pixel layout.
    pub layout: Layout,
}

/// Source spans `[start, end)` of a box filter for each of `dst` output cells over
/// `src` input cells. Boundaries are whole pixels (exact area averaging for whole
/// ratios such as 1920→320); enlarging repeats pixels (every span has one or more).
fn spans(src: usize, dst: usize) -> Vec<(usize, usize)> {
    (0..dst)
        .map(|i| {
            let a = (i * src / dst).min(src - 1);
            let b = ((i + 1) * src / dst).clamp(a + 1, src);
            (a, b)
        })
        .collect()
}

/// Scales `src` to `dw`×`dh` RGB with a box filter (each output pixel is the mean
/// of the source pixels it covers), converting the channel order on the way so
/// the big screen image is read only once.
///
/// Separable: the source rows of one output row are first summed column by
/// column (a plain widening add over whole rows, which the compiler turns into
/// SIMD), then each output pixel sums its span of that one row. A 1920×1080
/// screen costs one pass over 8 MB plus 180 short horizontal passes.
pub fn box_to_rgb(src: &Image<'_>, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = vec![0u8; dw * dh * 3];
    if src.width == 0 || src.height == 0 || dw == 0 || dh == 0 {
        return out;
    }
    let xs = spans(src.width, dw);
    let ys = spans(src.height, dh);
    // u16 column sums hold up to 257 rows of 255; taller boxes (a 16K-high
    // screen) take the u32 path.
    if ys.iter().all(|(a, b)| b - a <= 257) {
        box_rows::<u16>(src, &xs, &ys, &mut out);
    } else {
        box_rows::<u32>(src, &xs, &ys, &mut out);
    }
    out
}

fn box_rows<T>(src: &Image<'_>, xs: &[(usize, usize)], ys: &[(usize, usize)], out: &mut [u8])
where
    T: Copy + Default + From<u8> + Into<u32> + std::ops::AddAssign,
{
    let bpp = src.layout.bpp;
    let row_len = src.width * bpp;
    let [ro, go, bo] = src.layout.offsets;
    let mut cols = vec![T::default(); row_len];
    let dw = xs.len();
    for (oy, &(y0, y1)) in ys.iter().enumerate() {
        cols.fill(T::default());
        for y in y0..y1 {
            let row = &src.data[y * src.stride..y * src.stride + row_len];
            for (c, &b) in cols.iter_mut().zip(row) {
                *c += T::from(b);
            }
        }
        let rows = (y1 - y0) as u32;
        let line = &mut out[oy * dw * 3..(oy + 1) * dw * 3];
        for (o, &(x0, x1)) in line.chunks_exact_mut(3).zip(xs) {
            let (mut r, mut g, mut b) = (0u32, 0u32, 0u32);
            for p in cols[x0 * bpp..x1 * bpp].chunks_exact(bpp) {
                r += p[ro].into();
                g += p[go].into();
                b += p[bo].into();
            }
            let n = (x1 - x0) as u32 * rows;
            o[0] = ((r + n / 2) / n) as u8;
            o[1] = ((g + n / 2) / n) as u8;
            o[2] = ((b + n / 2) / n) as u8;
        }
    }
}

/// Resizes an RGB picture to `dw`×`dh`: a box filter when shrinking both ways,
/// bilinear otherwise (a broadcast frame is usually smaller than the screen).
pub fn resize_rgb(rgb: &[u8], sw: usize, sh: usize, dw: usize, dh: usize) -> Vec<u8> {
    let img = Image {
        data: rgb,
        width: sw,
        height: sh,
        stride: sw * 3,
        layout: Layout::RGB,
    };
    if dw <= sw && dh <= sh {
        return box_to_rgb(&img, dw, dh);
    }
    let mut out = vec![0u8; dw * dh * 3];
    if sw == 0 || sh == 0 {
        return out;
    }
    // Sample positions in 16.16 fixed point, pixel centres aligned.
    let pos = |i: usize, s: usize, d: usize| -> (usize, usize, u32) {
        let f = ((i as f64 + 0.5) * s as f64 / d as f64 - 0.5).max(0.0);
        let i0 = (f as usize).min(s - 1);
        let i1 = (i0 + 1).min(s - 1);
        (i0, i1, ((f - i0 as f64) * 256.0) as u32)
    };
    let xs: Vec<_> = (0..dw).map(|x| pos(x, sw, dw)).collect();
    for y in 0..dh {
        let (y0, y1, fy) = pos(y, sh, dh);
        let (r0, r1) = (&rgb[y0 * sw * 3..], &rgb[y1 * sw * 3..]);
        for (x, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let top = u32::from(r0[x0 * 3 + c]) * (256 - fx) + u32::from(r0[x1 * 3 + c]) * fx;
                let bot = u32::from(r1[x0 * 3 + c]) * (256 - fx) + u32::from(r1[x1 * 3 + c]) * fx;
                out[(y * dw + x) * 3 + c] = ((top * (256 - fy) + bot * fy + 32768) >> 16) as u8;
            }
        }
    }
    out
}

/// Converts RGB to a 32-bit-per-pixel screen image laid out as `layout`.
pub fn rgb_to_screen(rgb: &[u8], layout: Layout) -> Vec<u8> {
    let mut out = vec![0u8; rgb.len() / 3 * 4];
    let [ro, go, bo] = layout.offsets;
    for (o, p) in out.chunks_exact_mut(4).zip(rgb.chunks_exact(3)) {
        o[ro] = p[0];
        o[go] = p[1];
        o[bo] = p[2];
    }
    out
}

/// The student UI's B, G, R, A pixels as a 32-bit screen image laid out as
/// `layout`: as they are where the screen is B, G, R, X (depth 24/32 on a
/// little-endian server, the usual case), reordered otherwise.
pub fn bgra_to_screen(bgra: &[u8], layout: Layout) -> Cow<'_, [u8]> {
    if layout.offsets == [2, 1, 0] {
        return Cow::Borrowed(bgra);
    }
    let mut out = vec![0u8; bgra.len()];
    let [ro, go, bo] = layout.offsets;
    for (o, p) in out.chunks_exact_mut(4).zip(bgra.chunks_exact(4)) {
        o[ro] = p[2];
        o[go] = p[1];
        o[bo] = p[0];
    }
    Cow::Owned(out)
}

/// B, G, R, A pixels to RGB.
pub fn bgra_to_rgb(bgra: &[u8]) -> Vec<u8> {
    bgra.chunks_exact(4)
        .flat_map(|p| [p[2], p[1], p[0]])
        .collect()
}

/// Output height for `width` keeping the aspect of `sw`×`sh` (at least 1).
pub fn scaled_height(sw: usize, sh: usize, width: usize) -> usize {
    if sw == 0 {
        return 1;
    }
    ((sh * width + sw / 2) / sw).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgra_goes_to_any_screen_layout() {
        let bgra = [10, 20, 30, 255, 1, 2, 3, 255];
        assert!(matches!(
            bgra_to_screen(&bgra, Layout::BGRX),
            Cow::Borrowed(b) if b == bgra
        ));
        // A big-endian server's X, R, G, B.
        let xrgb = Layout {
            bpp: 4,
            offsets: [1, 2, 3],
        };
        assert_eq!(&*bgra_to_screen(&bgra, xrgb), &[0, 30, 20, 10, 0, 3, 2, 1]);
        assert_eq!(bgra_to_rgb(&bgra), vec![30, 20, 10, 3, 2, 1]);
    }

    #[test]
    fn box_filter_averages_and_reorders() {
        // 4×2 BGRX: left half red, right half alternating black/white.
        let mut data = Vec::new();
        for _ in 0..2 {
            data.extend_from_slice(&[0, 0, 255, 0, 0, 0, 255, 0]);
            data.extend_from_slice(&[0, 0, 0, 0, 255, 255, 255, 0]);
        }
        let img = Image {
            data: &data,
            width: 4,
            height: 2,
            stride: 16,
            layout: Layout::BGRX,
        };
        let out = box_to_rgb(&img, 2, 1);
        assert_eq!(out, vec![255, 0, 0, 128, 128, 128]);
        // Other channel orders and RGB sources give the same picture.
        let rgbx: Vec<u8> = data.chunks(4).flat_map(|p| [p[2], p[1], p[0], 9]).collect();
        let rgbx_img = Image {
            data: &rgbx,
            layout: Layout {
                bpp: 4,
                offsets: [0, 1, 2],
            },
            ..img
        };
        assert_eq!(box_to_rgb(&rgbx_img, 2, 1), out);
        let rgb: Vec<u8> = data.chunks(4).flat_map(|p| [p[2], p[1], p[0]]).collect();
        assert_eq!(resize_rgb(&rgb, 4, 2, 2, 1), out);
    }

    #[test]
    fn tall_boxes_use_wide_sums() {
        // 1×600 white column to one pixel: 600 rows overflow u16 sums.
        let data = vec![255u8; 600 * 3];
        let img = Image {
            data: &data,
            width: 1,
            height: 600,
            stride: 3,
            layout: Layout::RGB,
        };
        assert_eq!(box_to_rgb(&img, 1, 1), vec![255, 255, 255]);
    }

    #[test]
    fn spans_cover_everything_once() {
        for (s, d) in [(1920, 320), (1366, 320), (10, 3), (3, 10), (7, 7)] {
            let sp = spans(s, d);
            assert_eq!(sp.len(), d);
            assert!(sp.iter().all(|(a, b)| a < b && *b <= s));
            if d <= s {
                assert_eq!(sp[0].0, 0);
                assert_eq!(sp[d - 1].1, s);
                assert!(sp.windows(2).all(|w| w[0].1 == w[1].0));
            }
        }
    }

    #[test]
    fn resizes_both_ways_and_keeps_solid_colours() {
        let solid: Vec<u8> = [10u8, 200, 30].repeat(16 * 9);
        for (dw, dh) in [(8, 4), (64, 36), (33, 20)] {
            let out = resize_rgb(&solid, 16, 9, dw, dh);
            assert_eq!(out.len(), dw * dh * 3);
            assert!(out.chunks(3).all(|p| p == [10, 200, 30]), "{dw}x{dh}");
        }
        assert_eq!(scaled_height(1280, 720, 320), 180);
        assert_eq!(scaled_height(1920, 1080, 320), 180);
        let px = rgb_to_screen(&[1, 2, 3], Layout::BGRX);
        assert_eq!(px, vec![3, 2, 1, 0]);
    }
}
