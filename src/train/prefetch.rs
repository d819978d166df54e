//! The batch-ahead prefetcher: the next batch is prepared on a scoped thread while the
//! current one trains, so decoding and augmentation overlap the forward and backward passes.

use anyhow::{Context, Result};
use std::ops::Range;
use std::sync::mpsc::{sync_channel, Receiver};

/// The batches of a prefetching run, received in step order.
pub struct Prefetched<B> {
    rx: Receiver<Result<B>>,
}

impl<B> Prefetched<B> {
    /// The next step's batch, or the error that preparing it raised.
    pub fn next(&mut self) -> Result<B> {
        self.rx
            .recv()
            .context("internal: the data loader stopped")?
    }
}

/// Runs `body` while a scoped thread prepares `prepare(step)` for every step of `steps`, one
/// batch ahead. The thread stops after the first batch it cannot prepare (its error reaches
/// `body` through [`Prefetched::next`]) or when `body` returns.
pub fn with_prefetch<B: Send, T>(
    steps: Range<usize>,
    mut prepare: impl FnMut(usize) -> Result<B> + Send,
    body: impl FnOnce(&mut Prefetched<B>) -> Result<T>,
) -> Result<T> {
    std::thread::scope(|scope| {
        let (tx, rx) = sync_channel::<Result<B>>(1);
        scope.spawn(move || {
            for step in steps {
                let batch = prepare(step);
                let failed = batch.is_err();
                if tx.send(batch).is_err() || failed {
                    return;
                }
            }
        });
        body(&mut Prefetched { rx })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_arrive_in_order_and_an_error_ends_the_stream() {
        let got = with_prefetch(
            2..6,
            |s| Ok(s * 10),
            |p| (2..6).map(|_| p.next()).collect::<Result<Vec<_>>>(),
        )
        .unwrap();
        assert_eq!(got, [20, 30, 40, 50]);
        let err = with_prefetch(
            0..4,
            |s| match s {
                1 => anyhow::bail!("image 1 is corrupt"),
                s => Ok(s),
            },
            |p| {
                assert_eq!(p.next().unwrap(), 0);
                let e = p.next().unwrap_err().to_string();
                assert!(p.next().is_err());
                Ok(e)
            },
        )
        .unwrap();
        assert_eq!(err, "image 1 is corrupt");
    }
}
