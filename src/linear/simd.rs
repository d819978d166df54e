//! Dense f64 kernels of the SVM solver: dot product and `y += a x`, written with eight
//! independent accumulators so the compiler vectorises them, and compiled twice on x86-64
//! (baseline and AVX2) with the choice made once at run time. Both builds do the same
//! operations in the same order (no fused multiply-add), so results do not depend on the CPU.

use std::sync::OnceLock;

/// `sum_k a[k] b[k]` in float64 with eight independent accumulators.
#[inline(always)]
fn dot_generic<T: Copy + Into<f64>>(a: &[T], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 8];
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for k in 0..8 {
            acc[k] += x[k].into() * y[k];
        }
    }
    let mut tail = 0.0;
    for k in n / 8 * 8..n {
        tail += a[k].into() * b[k];
    }
    // Two 4-lane halves added lane by lane, then the lanes pairwise.
    let lanes = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    ((lanes[0] + lanes[2]) + (lanes[1] + lanes[3])) + tail
}

#[inline(always)]
fn axpy_generic(alpha: f64, x: &[f64], y: &mut [f64]) {
    for (yi, xi) in y.iter_mut().zip(x) {
        *yi += alpha * *xi;
    }
}

fn has_avx2() -> bool {
    static AVX2: OnceLock<bool> = OnceLock::new();
    *AVX2.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx2")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// A public kernel `$name` that runs `$body` compiled for AVX2 when the CPU has it, and the
/// baseline build otherwise.
macro_rules! dispatched {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:expr) => {
        $(#[$doc])*
        #[inline]
        pub fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            if has_avx2() {
                #[target_feature(enable = "avx2")]
                unsafe fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $body
                }
                // SAFETY: the CPU supports AVX2 (checked above).
                return unsafe { avx2($($arg),*) };
            }
            $body
        }
    };
}

/// An element type whose 4 consecutive values load as 4 f64 lanes.
#[cfg(target_arch = "x86_64")]
trait Lanes: Copy + Into<f64> {
    /// Loads `p[0..4]` widened to f64; inlined into AVX2 code only.
    unsafe fn load4(p: *const Self) -> std::arch::x86_64::__m256d;
}

#[cfg(target_arch = "x86_64")]
impl Lanes for f64 {
    #[inline(always)]
    unsafe fn load4(p: *const f64) -> std::arch::x86_64::__m256d {
        // SAFETY: the caller reads 4 values inside its slice, on an AVX2 CPU.
        unsafe { std::arch::x86_64::_mm256_loadu_pd(p) }
    }
}

#[cfg(target_arch = "x86_64")]
impl Lanes for f32 {
    #[inline(always)]
    unsafe fn load4(p: *const f32) -> std::arch::x86_64::__m256d {
        // SAFETY: the caller reads 4 values inside its slice, on an AVX2 CPU.
        unsafe { std::arch::x86_64::_mm256_cvtps_pd(std::arch::x86_64::_mm_loadu_ps(p)) }
    }
}

/// The AVX2 build of [`dot_generic`] with explicit 4-lane registers (LLVM's vectoriser keeps
/// to 2 lanes here): lanes 0-3 of `acc0` and `acc1` are the generic version's accumulators
/// 0-3 and 4-7, reduced in the same order, so both give the same bits.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dot_avx2<T: Lanes>(a: &[T], b: &[f64]) -> f64 {
    use std::arch::x86_64::*;
    let n = a.len().min(b.len());
    let (mut acc0, mut acc1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
    for p in (0..n / 8).map(|c| c * 8) {
        // SAFETY: p + 8 <= n, the length of both slices.
        unsafe {
            let (x, y) = (a.as_ptr().add(p), b.as_ptr().add(p));
            acc0 = _mm256_add_pd(acc0, _mm256_mul_pd(T::load4(x), _mm256_loadu_pd(y)));
            acc1 = _mm256_add_pd(
                acc1,
                _mm256_mul_pd(T::load4(x.add(4)), _mm256_loadu_pd(y.add(4))),
            );
        }
    }
    let mut lanes = [0.0f64; 4];
    // SAFETY: `lanes` holds 4 f64.
    unsafe { _mm256_storeu_pd(lanes.as_mut_ptr(), _mm256_add_pd(acc0, acc1)) };
    let mut tail = 0.0;
    for k in n / 8 * 8..n {
        tail += a[k].into() * b[k];
    }
    ((lanes[0] + lanes[2]) + (lanes[1] + lanes[3])) + tail
}

/// `sum_k a[k] b[k]` over the common length.
#[inline]
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { dot_avx2(a, b) };
    }
    dot_generic(a, b)
}

/// `sum_k a[k] b[k]` of float32 and float64 slices, accumulated in float64.
#[inline]
pub fn dot_f32(a: &[f32], b: &[f64]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if has_avx2() {
        // SAFETY: the CPU supports AVX2 (checked above).
        return unsafe { dot_avx2(a, b) };
    }
    dot_generic(a, b)
}

dispatched!(
    /// `y += alpha x` over the common length.
    axpy(alpha: f64, x: &[f64], y: &mut [f64]) = axpy_generic(alpha, x, y)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_axpy_match_the_plain_loops() {
        let a: Vec<f64> = (0..37).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..37).map(|i| (i as f64 * 0.11).cos()).collect();
        let plain: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-12);
        // The run-time-chosen build does the baseline's operations in its order.
        assert_eq!(dot(&a, &b).to_bits(), dot_generic(&a, &b).to_bits());
        let mut y = b.clone();
        axpy(0.5, &a, &mut y);
        for k in 0..37 {
            assert!((y[k] - (b[k] + 0.5 * a[k])).abs() < 1e-15);
        }
        let a32: Vec<f32> = a.iter().map(|&v| v as f32).collect();
        let plain32: f64 = a32.iter().zip(&b).map(|(&x, y)| x as f64 * y).sum();
        assert!((dot_f32(&a32, &b) - plain32).abs() < 1e-12);
        assert_eq!(dot_f32(&a32, &b).to_bits(), dot_generic(&a32, &b).to_bits());
    }
}
