//! The orthonormal DCT-II that turns log-mel rows into MFCCs.

use super::mel::*;
use super::simd::*;
use super::stft::*;

/// [`DctBlock::apply_rows`] as a [`pulp::WithSimd`] job (see [`BlockJob`]).
pub(super) struct DctJob<'a> {
    dct: &'a mut DctBlock,
    rows: &'a [f32],
    out: &'a mut [f32],
}

impl pulp::WithSimd for DctJob<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.dct.apply_rows_inner(self.rows, self.out);
    }
}

/// [`DctBlock::finish_lanes`] as a [`pulp::WithSimd`] job (see [`BlockJob`]).
pub(super) struct LanesJob<'a> {
    dct: &'a mut DctBlock,
    block: &'a mut [f32],
    count: usize,
    floor: Option<f32>,
    out: &'a mut [f32],
}

impl pulp::WithSimd for LanesJob<'_> {
    type Output = ();

    #[inline(always)]
    fn with_simd<S: pulp::Simd>(self, _: S) {
        self.dct
            .finish_lanes_inner(self.block, self.count, self.floor, self.out);
    }
}

/// The orthonormal DCT-II (first `n_mfcc` coefficients) of rows of `n_mels` values.
///
/// Uses the basis' symmetry `b[k][n-1-j] = (-1)^k b[k][j]`: even coefficients are sums over
/// `s[j] = x[j] + x[n-1-j]`, odd ones over `d[j] = x[j] - x[n-1-j]` (`j < n/2`), plus the middle
/// value for odd `n` and even `k`, halving the multiply-adds. Frames are the vector lanes.
pub(super) struct Dct {
    n_mels: usize,
    n_mfcc: usize,
    /// Per coefficient `k`: `b[k][j]` for `j < n_mels/2`, then (even `k`, odd `n_mels`) the
    /// middle value's `b[k][n_mels/2]`.
    basis: Vec<Vec<f32>>,
}

impl Dct {
    pub(super) fn new(n_mels: usize, n_mfcc: usize) -> Self {
        let basis = (0..n_mfcc)
            .map(|k| {
                let scale = if k == 0 {
                    (1.0 / n_mels as f64).sqrt()
                } else {
                    (2.0 / n_mels as f64).sqrt()
                };
                let len = if k % 2 == 0 {
                    n_mels.div_ceil(2)
                } else {
                    n_mels / 2
                };
                (0..len)
                    .map(|j| {
                        let c = (std::f64::consts::PI * k as f64 * (2 * j + 1) as f64
                            / (2 * n_mels) as f64)
                            .cos();
                        (scale * c) as f32
                    })
                    .collect()
            })
            .collect();
        Self {
            n_mels,
            n_mfcc,
            basis,
        }
    }

    /// `coefs` (`[n_mfcc][BLOCK]`) = the DCT of `mel` (`[n_mels][BLOCK]`); `sums` and `diffs`
    /// are work areas (`[ceil(n_mels/2)][BLOCK]`, `[n_mels/2][BLOCK]`). The middle value (odd
    /// `n_mels`) is the last "sum".
    #[inline(always)]
    pub(super) fn apply_block(
        &self,
        mel: &[f32],
        sums: &mut [f32],
        diffs: &mut [f32],
        coefs: &mut [f32],
    ) {
        let n = self.n_mels;
        let h = n / 2;
        let (lo, rest) = mel[..n * BLOCK].split_at(h * BLOCK);
        let (mid, hi) = rest.split_at(n % 2 * BLOCK);
        for (((a, b), s), d) in lo
            .chunks_exact(BLOCK)
            .zip(hi.chunks_exact(BLOCK).rev())
            .zip(sums.chunks_exact_mut(BLOCK))
            .zip(diffs.chunks_exact_mut(BLOCK))
        {
            for i in 0..BLOCK {
                s[i] = a[i] + b[i];
                d[i] = a[i] - b[i];
            }
        }
        sums[h * BLOCK..].copy_from_slice(mid);
        for ((k, out), basis) in coefs[..self.n_mfcc * BLOCK]
            .chunks_exact_mut(BLOCK)
            .enumerate()
            .zip(&self.basis)
        {
            let src = if k % 2 == 0 { &*sums } else { &*diffs };
            let mut acc = [0f32; BLOCK];
            for (&b, x) in basis.iter().zip(src.chunks_exact(BLOCK)) {
                for i in 0..BLOCK {
                    acc[i] += b * x[i];
                }
            }
            out.copy_from_slice(&acc);
        }
    }
}

/// Work areas for [`Dct::apply_rows`].
pub(super) struct DctBlock {
    dct: Dct,
    pub(super) arch: pulp::Arch,
    /// Frame-minor: input `[n_mels][BLOCK]`, folded input `[pair][BLOCK]`, output
    /// `[n_mfcc][BLOCK]`.
    lanes: Vec<f32>,
    sums: Vec<f32>,
    diffs: Vec<f32>,
    coefs: Vec<f32>,
}

impl DctBlock {
    pub(super) fn new(n_mels: usize, n_mfcc: usize) -> Self {
        Self {
            dct: Dct::new(n_mels, n_mfcc),
            arch: pulp::Arch::new(),
            lanes: vec![0.0; n_mels * BLOCK],
            sums: vec![0.0; n_mels.div_ceil(2) * BLOCK],
            diffs: vec![0.0; n_mels / 2 * BLOCK],
            coefs: vec![0.0; n_mfcc * BLOCK],
        }
    }

    /// `out` (`[count][n_mfcc]`) = the DCT of each row of `rows` (`[count][n_mels]`), for up to
    /// [`BLOCK`] rows.
    pub(super) fn apply_rows(&mut self, rows: &[f32], out: &mut [f32]) {
        let arch = self.arch;
        arch.dispatch(DctJob {
            dct: self,
            rows,
            out,
        });
    }

    /// For a block stored frame-minor (`[n_mels][BLOCK]`, `count` frames): applies the floor,
    /// writes the MFCCs of the frames (`[count][n_mfcc]`) to `out`, and rewrites the block in
    /// place as `count` log-mel rows (`[count][n_mels]`, at the start of `block`).
    pub(super) fn finish_lanes(
        &mut self,
        block: &mut [f32],
        count: usize,
        floor: Option<f32>,
        out: &mut [f32],
    ) {
        let arch = self.arch;
        arch.dispatch(LanesJob {
            dct: self,
            block,
            count,
            floor,
            out,
        });
    }

    #[inline(always)]
    pub(super) fn finish_lanes_inner(
        &mut self,
        block: &mut [f32],
        count: usize,
        floor: Option<f32>,
        out: &mut [f32],
    ) {
        let (n_mels, n_mfcc) = (self.dct.n_mels, self.dct.n_mfcc);
        assert!(count <= BLOCK && block.len() == n_mels * BLOCK && out.len() == count * n_mfcc);
        if let Some(floor) = floor {
            clamp_below(block, floor);
        }
        self.dct
            .apply_block(block, &mut self.sums, &mut self.diffs, &mut self.coefs);
        let avx2 = avx2_token(self.arch);
        transpose_out(avx2, &self.coefs, n_mfcc, count, out);
        self.lanes.copy_from_slice(block);
        transpose_out(
            avx2,
            &self.lanes,
            n_mels,
            count,
            &mut block[..count * n_mels],
        );
    }

    #[inline(always)]
    pub(super) fn apply_rows_inner(&mut self, rows: &[f32], out: &mut [f32]) {
        let (n_mels, n_mfcc) = (self.dct.n_mels, self.dct.n_mfcc);
        let count = rows.len() / n_mels;
        assert!(count <= BLOCK && out.len() == count * n_mfcc);
        let avx2 = avx2_token(self.arch);
        transpose_in(avx2, rows, n_mels, count, &mut self.lanes);
        self.dct.apply_block(
            &self.lanes,
            &mut self.sums,
            &mut self.diffs,
            &mut self.coefs,
        );
        transpose_out(avx2, &self.coefs, n_mfcc, count, out);
    }
}
