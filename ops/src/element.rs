//! The element types the CPU kernels run in: f32 (the protocol) and f64 (the tight parity
//! checks), with the conversions to and from candle's CPU storage.

use candle_core::backend::BackendStorage;
use candle_core::{bail, CpuStorage, Layout, Result};

/// An element type of the CPU kernels.
pub trait Element:
    Copy
    + Default
    + Send
    + Sync
    + 'static
    + PartialOrd
    + std::ops::AddAssign
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
{
    /// One.
    const ONE: Self;
    /// The lowest finite value (the max-pool's padding).
    const LOWEST: Self;
    /// As f64, for sums.
    fn to_f64(self) -> f64;
    /// From f64, rounded.
    fn from_f64(v: f64) -> Self;
    /// The contents of a contiguous storage of this type; `op` and `what` name it in errors.
    fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str, what: &str) -> Result<&'a [Self]>;
    /// The whole buffer of a storage of this type, for a strided view.
    fn buffer<'a>(s: &'a CpuStorage, op: &str, what: &str) -> Result<&'a [Self]>;
    /// A storage holding `v`.
    fn storage(v: Vec<Self>) -> CpuStorage;
}

/// The contiguous part of `v` that `l` describes.
fn contiguous<'a, T>(v: &'a [T], l: &Layout, op: &str, what: &str) -> Result<&'a [T]> {
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&v[a..b]),
        None => bail!("{op}: {what} is not contiguous"),
    }
}

macro_rules! element {
    ($t:ty, $variant:ident) => {
        impl Element for $t {
            const ONE: Self = 1.0;
            const LOWEST: Self = <$t>::MIN;
            fn to_f64(self) -> f64 {
                self as f64
            }
            fn from_f64(v: f64) -> Self {
                v as $t
            }
            fn slice<'a>(
                s: &'a CpuStorage,
                l: &Layout,
                op: &str,
                what: &str,
            ) -> Result<&'a [Self]> {
                contiguous(Self::buffer(s, op, what)?, l, op, what)
            }
            fn buffer<'a>(s: &'a CpuStorage, op: &str, what: &str) -> Result<&'a [Self]> {
                match s {
                    CpuStorage::$variant(v) => Ok(v),
                    other => bail!(
                        "{op}: {what} is {:?}, expected {}",
                        other.dtype(),
                        stringify!($t)
                    ),
                }
            }
            fn storage(v: Vec<Self>) -> CpuStorage {
                CpuStorage::$variant(v)
            }
        }
    };
}

element!(f32, F32);
element!(f64, F64);

/// Runs `$body` with `$t` bound to the Rust type of `$storage`'s dtype (f32 or f64), or fails
/// naming `$op`.
#[macro_export]
#[doc(hidden)]
macro_rules! with_element {
    ($storage:expr, $op:expr, |$t:ident| $body:expr) => {
        match $storage {
            candle_core::CpuStorage::F32(_) => {
                type $t = f32;
                $body
            }
            candle_core::CpuStorage::F64(_) => {
                type $t = f64;
                $body
            }
            other => candle_core::bail!(
                "{}: {:?} is not supported on the CPU (f32 or f64)",
                $op,
                candle_core::backend::BackendStorage::dtype(other)
            ),
        }
    };
}
