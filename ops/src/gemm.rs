//! The one matrix product (f32, or f64 for the tight parity checks) under the engine's kernels: gemm's AVX-512 / AVX2 / scalar
//! micro-kernels (picked at run time from what the CPU has), on strided views, with the
//! reduction cut into fixed blocks of [`K_BLOCK`] so that its order, and so every rounding,
//! depends neither on the thread count nor on the cache sizes gemm reads from the machine
//! (left to itself, gemm sizes its k-blocks from the L1 cache, which differs between CPUs).

use crate::element::Element;
use gemm::Parallelism;

/// The longest stretch of the reduction dimension one gemm call sums. gemm sizes its own
/// k-blocks as `max(512, f(L1 cache)).min(k)`, so at k <= 512 it sums each call in one pass
/// on every machine.
pub const K_BLOCK: usize = 512;

/// Products below this many multiply-adds run on the calling thread: at test sizes, waking
/// the pool costs more than it saves.
const PARALLEL_WORK: usize = 1 << 21;

/// A strided, read-only view of a matrix.
#[derive(Debug)]
pub struct MatRef<'a, T> {
    data: &'a [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
    col_stride: usize,
}

impl<T> Clone for MatRef<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for MatRef<'_, T> {}

impl<'a, T> MatRef<'a, T> {
    /// A `rows x cols` matrix stored row-major with `row_stride` between rows.
    pub fn rows(data: &'a [T], rows: usize, cols: usize, row_stride: usize) -> Self {
        Self::strided(data, rows, cols, row_stride, 1)
    }

    /// A view with arbitrary (non-negative) strides; panics if it reaches past `data`
    /// (a programming error in a kernel, never a user's input).
    pub fn strided(
        data: &'a [T],
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Self {
        assert!(reach(rows, cols, row_stride, col_stride) <= data.len());
        Self {
            data,
            rows,
            cols,
            row_stride,
            col_stride,
        }
    }

    /// The transposed view (no copy).
    pub fn t(self) -> Self {
        Self {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Columns `start..start + len`.
    fn col_range(self, start: usize, len: usize) -> Self {
        let offset = (start * self.col_stride).min(self.data.len());
        Self {
            data: &self.data[offset..],
            cols: len,
            ..self
        }
    }

    /// Rows `start..start + len`.
    fn row_range(self, start: usize, len: usize) -> Self {
        self.t().col_range(start, len).t()
    }
}

/// A strided, writable view of a matrix.
#[derive(Debug)]
pub struct MatMut<'a, T> {
    data: &'a mut [T],
    rows: usize,
    cols: usize,
    row_stride: usize,
}

impl<'a, T> MatMut<'a, T> {
    /// A `rows x cols` matrix stored row-major with `row_stride` between rows (a column
    /// block of a wider matrix when `row_stride > cols`).
    pub fn rows(data: &'a mut [T], rows: usize, cols: usize, row_stride: usize) -> Self {
        assert!(reach(rows, cols, row_stride, 1) <= data.len());
        Self {
            data,
            rows,
            cols,
            row_stride,
        }
    }
}

/// One past the last element a view touches.
fn reach(rows: usize, cols: usize, row_stride: usize, col_stride: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * row_stride + (cols - 1) * col_stride + 1
    }
}

/// `dst = lhs x rhs`, or `dst += lhs x rhs` when `accumulate`. The reduction runs in blocks of
/// [`K_BLOCK`] in order, each added into `dst`.
pub fn matmul<T: Element>(dst: MatMut<T>, accumulate: bool, lhs: MatRef<T>, rhs: MatRef<T>) {
    let (m, n, k) = (dst.rows, dst.cols, lhs.cols);
    assert!(
        lhs.rows == m && rhs.rows == k && rhs.cols == n,
        "matmul shapes"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            for r in 0..m {
                dst.data[r * dst.row_stride..][..n].fill(T::default());
            }
        }
        return;
    }
    let threads = rayon::current_num_threads();
    let parallelism = match m * n * k.min(K_BLOCK) >= PARALLEL_WORK && threads > 1 {
        true => Parallelism::Rayon(threads),
        false => Parallelism::None,
    };
    let dst_ptr = dst.data.as_mut_ptr();
    for k0 in (0..k).step_by(K_BLOCK) {
        let kb = K_BLOCK.min(k - k0);
        let a = lhs.col_range(k0, kb);
        let b = rhs.row_range(k0, kb);
        let read_dst = accumulate || k0 > 0;
        // SAFETY: every view was checked against its slice when it was made (`reach`), the
        // sub-views stay inside their parents, and `dst` is borrowed mutably for the call.
        unsafe {
            ::gemm::gemm(
                m,
                n,
                kb,
                dst_ptr,
                1,
                dst.row_stride as isize,
                read_dst,
                a.data.as_ptr(),
                a.col_stride as isize,
                a.row_stride as isize,
                b.data.as_ptr(),
                b.col_stride as isize,
                b.row_stride as isize,
                T::ONE,
                T::ONE,
                false,
                false,
                false,
                parallelism,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f64> {
        let mut out = vec![0f64; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    out[i * n + j] += a[i * k + l] as f64 * b[l * n + j] as f64;
                }
            }
        }
        out
    }

    /// Blocked over k (k > K_BLOCK), transposed operands and a column block of a wider
    /// destination, against a naive f64 product.
    #[test]
    fn blocked_products_match_the_naive_one() {
        let (m, n, k) = (7, 5, 2 * K_BLOCK + 3);
        let a: Vec<f32> = (0..m * k)
            .map(|i| ((i * 7 % 13) as f32 - 6.0) / 8.0)
            .collect();
        let b: Vec<f32> = (0..k * n)
            .map(|i| ((i * 5 % 11) as f32 - 5.0) / 8.0)
            .collect();
        let want = naive(m, n, k, &a, &b);
        // b stored transposed (n x k), read through .t().
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let wide = n + 3;
        let mut dst = vec![1f32; m * wide];
        matmul(
            MatMut::rows(&mut dst[1..], m, n, wide),
            false,
            MatRef::rows(&a, m, k, k),
            MatRef::rows(&bt, n, k, k).t(),
        );
        for i in 0..m {
            assert_eq!(dst[i * wide], 1.0, "left of the block untouched");
            for j in 0..n {
                let got = dst[1 + i * wide + j] as f64;
                assert!((got - want[i * n + j]).abs() < 1e-3, "({i},{j}) {got}");
            }
        }
        // Accumulating adds the same product again.
        matmul(
            MatMut::rows(&mut dst[1..], m, n, wide),
            true,
            MatRef::rows(&a, m, k, k),
            MatRef::rows(&b, k, n, n),
        );
        let got = dst[1 + wide + 2] as f64;
        assert!((got - 2.0 * want[n + 2]).abs() < 2e-3);
    }
}
