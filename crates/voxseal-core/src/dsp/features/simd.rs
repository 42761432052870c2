//! The AVX2 paths: explicit shuffles for the packed power spectrum and the block transposes.

use super::stft::*;
use rustfft::num_complex::Complex;

/// The AVX2 token when the block loops run on AVX2, for the paths that move data with explicit
/// shuffles ([`packed_power_avx2`], [`transpose_avx2`]).
#[cfg(target_arch = "x86_64")]
pub(super) type Avx2Token = Option<pulp::x86::V3>;
#[cfg(not(target_arch = "x86_64"))]
pub(super) type Avx2Token = Option<std::convert::Infallible>;

/// [`Avx2Token`] for `arch`.
pub(super) fn avx2_token(arch: pulp::Arch) -> Avx2Token {
    #[cfg(target_arch = "x86_64")]
    if let pulp::Arch::V3(v3) = arch {
        return Some(v3);
    }
    let _ = arch;
    None
}

/// `rows[f][j] = lanes[j][f]` for the first `count` lanes.
#[inline(always)]
pub(super) fn transpose_out(
    avx2: Avx2Token,
    lanes: &[f32],
    width: usize,
    count: usize,
    rows: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = avx2 {
        return transpose_avx2(v3, lanes, BLOCK, rows, width, width, count);
    }
    let _ = avx2;
    for (f, row) in rows[..count * width].chunks_exact_mut(width).enumerate() {
        for (r, lane) in row.iter_mut().zip(lanes.chunks_exact(BLOCK)) {
            *r = lane[f];
        }
    }
}

/// [`packed_power`] with its data movement written out in AVX2 shuffles (the compiler built the
/// vectors of [`packed_power`]'s pairs element by element: ~100 instructions per 8 pairs, about
/// a fifth of the whole extraction). The arithmetic is [`split_pair`]'s, operation for
/// operation, so the bits are the same.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn packed_power_avx2(
    simd: pulp::x86::V3,
    z: &[Complex<f32>],
    tw_re: &[f32],
    tw_im: &[f32],
    power: &mut [f32],
) {
    use std::arch::x86_64::{__m256, __m256i};

    let m = z.len();
    let pairs = m.saturating_sub(1) / 2;
    if pairs < LANES {
        return packed_power(z, tw_re, tw_im, power);
    }
    let (avx, avx2) = (simd.avx, simd.avx2);
    let zf: &[f32] = pulp::bytemuck::cast_slice(z);
    let load = |s: &[f32]| -> __m256 {
        let a: [f32; 8] = s[..8].try_into().expect("8 values");
        pulp::cast(a)
    };
    let idx = |i: [i32; 8]| -> __m256i { pulp::cast(i) };
    // After `shuffle_ps` of two loads of 4 complex values, the real (or imaginary) parts sit
    // in the order 0 1 4 5 2 3 6 7; these put them in order, or in reverse order for the
    // upper half, whose loads are swapped.
    let (in_order, reversed, reverse) = (
        idx([0, 1, 4, 5, 2, 3, 6, 7]),
        idx([5, 4, 1, 0, 7, 6, 3, 2]),
        idx([7, 6, 5, 4, 3, 2, 1, 0]),
    );
    power_unpaired(z, power);
    let mut k = 1;
    while k + LANES <= pairs + 1 {
        // A = Z[k + j] and B = Z[m - k - j] for j in 0..8.
        let (l0, l1) = (load(&zf[2 * k..]), load(&zf[2 * k + 8..]));
        let h = 2 * (m + 1 - k - LANES);
        let (h0, h1) = (load(&zf[h..]), load(&zf[h + 8..]));
        let ar = avx2._mm256_permutevar8x32_ps(avx._mm256_shuffle_ps::<0x88>(l0, l1), in_order);
        let ai = avx2._mm256_permutevar8x32_ps(avx._mm256_shuffle_ps::<0xdd>(l0, l1), in_order);
        let br = avx2._mm256_permutevar8x32_ps(avx._mm256_shuffle_ps::<0x88>(h1, h0), reversed);
        let bi = avx2._mm256_permutevar8x32_ps(avx._mm256_shuffle_ps::<0xdd>(h1, h0), reversed);
        let (c, s) = (load(&tw_re[k..]), load(&tw_im[k..]));
        // split_pair, lane by lane.
        let (sr, si) = (avx._mm256_add_ps(ar, br), avx._mm256_sub_ps(ai, bi));
        let (dr, di) = (avx._mm256_sub_ps(ar, br), avx._mm256_add_ps(ai, bi));
        let tr = avx._mm256_add_ps(avx._mm256_mul_ps(c, di), avx._mm256_mul_ps(s, dr));
        let ti = avx._mm256_sub_ps(avx._mm256_mul_ps(s, di), avx._mm256_mul_ps(c, dr));
        let sq = |x: __m256| avx._mm256_mul_ps(x, x);
        let p = avx._mm256_add_ps(sq(avx._mm256_add_ps(sr, tr)), sq(avx._mm256_add_ps(si, ti)));
        let q = avx._mm256_add_ps(sq(avx._mm256_sub_ps(sr, tr)), sq(avx._mm256_sub_ps(si, ti)));
        let q = avx2._mm256_permutevar8x32_ps(q, reverse);
        power[k..k + LANES].copy_from_slice(&pulp::cast::<__m256, [f32; 8]>(p));
        power[m + 1 - k - LANES..m + 1 - k].copy_from_slice(&pulp::cast::<__m256, [f32; 8]>(q));
        k += LANES;
    }
    power_pairs_from(k, z, tw_re, tw_im, power);
}

/// `lanes[k][f] = rows[f][k]` for the first `count` rows: `rows` is `[count][width]`, `lanes`
/// `[width][BLOCK]`. Whole 4x4 tiles go through fixed-size arrays (vector shuffles).
#[inline(always)]
pub(super) fn transpose_in(
    avx2: Avx2Token,
    rows: &[f32],
    width: usize,
    count: usize,
    lanes: &mut [f32],
) {
    #[cfg(target_arch = "x86_64")]
    if let Some(v3) = avx2 {
        return transpose_avx2(v3, rows, width, lanes, BLOCK, count, width);
    }
    let _ = avx2;
    let (w4, c4) = (width / 4 * 4, count / 4 * 4);
    for f0 in (0..c4).step_by(4) {
        let r = |i: usize| &rows[(f0 + i) * width..(f0 + i + 1) * width];
        let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
        for k0 in (0..w4).step_by(4) {
            let q = |r: &[f32]| -> [f32; 4] { r[k0..k0 + 4].try_into().expect("4 values") };
            let (a, b, c, d) = (q(r0), q(r1), q(r2), q(r3));
            for j in 0..4 {
                let at = (k0 + j) * BLOCK + f0;
                lanes[at..at + 4].copy_from_slice(&[a[j], b[j], c[j], d[j]]);
            }
        }
    }
    for (f, r) in rows[..count * width].chunks_exact(width).enumerate() {
        let ks = if f < c4 { w4 } else { 0 };
        for (k, &x) in r.iter().enumerate().skip(ks) {
            lanes[k * BLOCK + f] = x;
        }
    }
}

/// `dst[j * dst_stride + i] = src[i * src_stride + j]` for `i < n_rows`, `j < n_cols`: whole
/// 8x8 tiles in AVX2 registers (8 loads, 24 shuffles, 8 stores; the compiler turned the 4x4
/// tiles of [`transpose_in`] into single-value moves), the edges one value at a time.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
pub(super) fn transpose_avx2(
    simd: pulp::x86::V3,
    src: &[f32],
    src_stride: usize,
    dst: &mut [f32],
    dst_stride: usize,
    n_rows: usize,
    n_cols: usize,
) {
    use std::arch::x86_64::__m256;

    let avx = simd.avx;
    let (rows8, cols8) = (n_rows / 8 * 8, n_cols / 8 * 8);
    for i0 in (0..rows8).step_by(8) {
        for j0 in (0..cols8).step_by(8) {
            let r = |i: usize| -> __m256 {
                let at = (i0 + i) * src_stride + j0;
                let a: [f32; 8] = src[at..at + 8].try_into().expect("8 values");
                pulp::cast(a)
            };
            let (r0, r1, r2, r3) = (r(0), r(1), r(2), r(3));
            let (r4, r5, r6, r7) = (r(4), r(5), r(6), r(7));
            // Pairs of rows interleaved, then 4-row columns per 128-bit half, then the halves
            // joined: column j of the tile ends up in `out[j]`.
            let interleave = |a, b| (avx._mm256_unpacklo_ps(a, b), avx._mm256_unpackhi_ps(a, b));
            let ((t0, t1), (t2, t3)) = (interleave(r0, r1), interleave(r2, r3));
            let ((t4, t5), (t6, t7)) = (interleave(r4, r5), interleave(r6, r7));
            let lo = |a, b| avx._mm256_shuffle_ps::<0x44>(a, b);
            let hi = |a, b| avx._mm256_shuffle_ps::<0xee>(a, b);
            let (u0, u1, u2, u3) = (lo(t0, t2), hi(t0, t2), lo(t1, t3), hi(t1, t3));
            let (u4, u5, u6, u7) = (lo(t4, t6), hi(t4, t6), lo(t5, t7), hi(t5, t7));
            let first = |a, b| avx._mm256_permute2f128_ps::<0x20>(a, b);
            let second = |a, b| avx._mm256_permute2f128_ps::<0x31>(a, b);
            let out = [
                first(u0, u4),
                first(u1, u5),
                first(u2, u6),
                first(u3, u7),
                second(u0, u4),
                second(u1, u5),
                second(u2, u6),
                second(u3, u7),
            ];
            for (j, v) in out.into_iter().enumerate() {
                let at = (j0 + j) * dst_stride + i0;
                dst[at..at + 8].copy_from_slice(&pulp::cast::<__m256, [f32; 8]>(v));
            }
        }
    }
    for i in 0..n_rows {
        let from = if i < rows8 { cols8 } else { 0 };
        for j in from..n_cols {
            dst[j * dst_stride + i] = src[i * src_stride + j];
        }
    }
}
