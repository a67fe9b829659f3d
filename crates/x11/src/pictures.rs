//! The broadcast picture: the teacher's frame fitted to the screen under the
//! title bar. Every other picture is a student surface
//! ([`lectern_student_ui`]).

use lectern_desktop::{Frame, Rgb};

/// An RGB buffer of `w`×`h` filled with `bg`.
fn filled(w: usize, h: usize, bg: Rgb) -> Vec<u8> {
    bg.repeat(w * h)
}

/// Copies `src` into the `dw`-wide RGB buffer `dst` at (`x`, `y`), clipped.
pub fn blit(dst: &mut [u8], dw: usize, src: &Frame, x: usize, y: usize) {
    let dh = dst.len() / 3 / dw.max(1);
    let sw = src.width as usize;
    let cols = sw.min(dw.saturating_sub(x));
    for row in 0..(src.height as usize).min(dh.saturating_sub(y)) {
        let s = &src.rgb[row * sw * 3..(row * sw + cols) * 3];
        let d = ((y + row) * dw + x) * 3;
        dst[d..d + cols * 3].copy_from_slice(s);
    }
}

/// A broadcast frame fitted to a `w`×`h` screen (aspect kept, black bars) with
/// the title bar over its top.
pub fn broadcast_frame(w: usize, h: usize, frame: &Frame, bar: &[u8]) -> Vec<u8> {
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let mut out = filled(w, h, [0, 0, 0]);
    if fw > 0 && fh > 0 {
        // Fit: the larger of the two scale factors that still fits both ways.
        let (dw, dh) = if w * fh <= h * fw {
            (w, (fh * w / fw).max(1))
        } else {
            ((fw * h / fh).max(1), h)
        };
        let scaled = Frame {
            width: dw as u32,
            height: dh as u32,
            rgb: super::scale::resize_rgb(&frame.rgb, fw, fh, dw, dh),
        };
        blit(&mut out, w, &scaled, (w - dw) / 2, (h - dh) / 2);
    }
    let n = bar.len().min(out.len());
    out[..n].copy_from_slice(&bar[..n]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(rgb: &[u8], c: Rgb) -> f32 {
        rgb.chunks(3).filter(|p| *p == c).count() as f32 / (rgb.len() / 3) as f32
    }

    #[test]
    fn broadcast_frames_fit_and_carry_the_title() {
        let red = Frame {
            width: 32,
            height: 18,
            rgb: [200, 0, 0].repeat(32 * 18),
        };
        let bar = filled(1280, 56, [20, 20, 24]);
        let px = broadcast_frame(1280, 720, &red, &bar);
        assert!(share(&px, [200, 0, 0]) > 0.9);
        assert!(share(&px, [20, 20, 24]) > 0.07, "the title bar is on top");
        // A 4:3 screen gets bars top and bottom.
        let px = broadcast_frame(1024, 768, &red, &filled(1024, 40, [20, 20, 24]));
        assert!(share(&px, [0, 0, 0]) > 0.15);
    }
}
