//! The coalescing and the round limit, with a confirmer the test answers by hand: each
//! round it starts is handed to the test, which decides when and how it ends.

use std::future::Future;
use std::pin::pin;
use std::time::Duration;

use futures::poll;
use tokio::sync::{mpsc, oneshot};

use super::{Confirm, ReadBarrier};
use crate::error::{EtcdError, Result};

/// Longest wait for something that must happen.
const WAIT: Duration = Duration::from_secs(10);

/// A confirmation round in progress, ended by answering it. Dropped unanswered, the
/// round never ends.
struct Round(oneshot::Sender<Result<()>>);

impl Round {
    fn answer(self, res: Result<()>) {
        self.0.send(res).expect("round abandoned");
    }
}

/// Hands every round it is asked for to the test.
struct ByHand(mpsc::UnboundedSender<Round>);

impl Confirm for ByHand {
    async fn confirm(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.0.send(Round(tx)).expect("test gone");
        match rx.await {
            Ok(res) => res,
            Err(_) => std::future::pending().await,
        }
    }
}

fn barrier(round_limit: Duration) -> (ReadBarrier<ByHand>, mpsc::UnboundedReceiver<Round>) {
    let (tx, rounds) = mpsc::unbounded_channel();
    (ReadBarrier::with_confirmer(ByHand(tx), round_limit), rounds)
}

async fn next_round(rounds: &mut mpsc::UnboundedReceiver<Round>) -> Round {
    tokio::time::timeout(WAIT, rounds.recv())
        .await
        .expect("no round started")
        .expect("barrier gone")
}

async fn done<F: Future<Output = Result<()>>>(reader: F) -> Result<()> {
    tokio::time::timeout(WAIT, reader)
        .await
        .expect("reader not released")
}

#[tokio::test]
async fn readers_arriving_during_a_round_share_the_next_one() {
    let (barrier, mut rounds) = barrier(WAIT);
    let mut first = pin!(barrier.wait());
    assert!(poll!(first.as_mut()).is_pending());
    let round = next_round(&mut rounds).await;

    // Three readers queue while the first round runs.
    let mut later = [
        Box::pin(barrier.wait()),
        Box::pin(barrier.wait()),
        Box::pin(barrier.wait()),
    ];
    for r in &mut later {
        assert!(poll!(r.as_mut()).is_pending());
    }
    round.answer(Ok(()));
    assert!(done(first).await.is_ok());
    for r in &mut later {
        assert!(
            poll!(r.as_mut()).is_pending(),
            "released by a round it missed"
        );
    }

    let round = next_round(&mut rounds).await;
    round.answer(Ok(()));
    for r in later {
        assert!(done(r).await.is_ok());
    }
    assert!(rounds.try_recv().is_err(), "one round served all three");

    // With the queue empty the driver stopped; the next reader starts a round again.
    let mut again = pin!(barrier.wait());
    assert!(poll!(again.as_mut()).is_pending());
    next_round(&mut rounds).await.answer(Ok(()));
    assert!(done(again).await.is_ok());
}

#[tokio::test(start_paused = true)]
async fn a_round_that_never_ends_times_out_and_the_next_one_runs() {
    let limit = Duration::from_secs(2);
    let (barrier, mut rounds) = barrier(limit);
    let started = tokio::time::Instant::now();
    let mut stuck = pin!(barrier.wait());
    assert!(poll!(stuck.as_mut()).is_pending());
    let never = next_round(&mut rounds).await;
    let mut next = pin!(barrier.wait());
    assert!(poll!(next.as_mut()).is_pending());

    assert!(matches!(done(stuck).await, Err(EtcdError::Timeout)));
    assert_eq!(started.elapsed(), limit);
    let round = next_round(&mut rounds).await;
    assert!(poll!(next.as_mut()).is_pending());
    round.answer(Ok(()));
    assert!(done(next).await.is_ok());
    drop(never);
}

#[tokio::test]
async fn a_round_error_reaches_exactly_its_readers() {
    let (barrier, mut rounds) = barrier(WAIT);
    let mut failing = [Box::pin(barrier.wait()), Box::pin(barrier.wait())];
    for r in &mut failing {
        assert!(poll!(r.as_mut()).is_pending());
    }
    let round = next_round(&mut rounds).await;
    let mut next = pin!(barrier.wait());
    assert!(poll!(next.as_mut()).is_pending());

    round.answer(Err(EtcdError::NoLeader));
    for r in failing {
        assert!(matches!(done(r).await, Err(EtcdError::NoLeader)));
    }
    next_round(&mut rounds).await.answer(Ok(()));
    assert!(done(next).await.is_ok());
}
