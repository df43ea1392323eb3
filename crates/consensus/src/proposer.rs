//! The proposal queue: turns synchronous `propose` calls into openraft writes, in call order.
//!
//! `propose` pushes onto an unbounded channel (so the order is fixed when the call returns) and
//! one task drains it, handing each payload to `Raft::write` with its own responder. The task never
//! waits for a write to commit, only for it to be queued in openraft, whose core merges
//! consecutive writes into one batch for the log and the state machine.

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::types::{Raft, Txn, WriteResponder, WriteResult};
use crate::ConsensusError;

/// How many queued proposals the drain task takes per wake-up.
const DRAIN_BATCH: usize = 1024;

type Proposal = (Txn, WriteResponder);

pub struct Proposer {
    queue: mpsc::UnboundedSender<Proposal>,
    stop: watch::Sender<bool>,
}

impl Proposer {
    /// Starts the drain task on the current tokio runtime.
    pub fn start(raft: Raft) -> Proposer {
        let (queue, rx) = mpsc::unbounded_channel();
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(drain(raft, rx, stop_rx));
        Proposer { queue, stop }
    }

    /// Enqueues a payload; the receiver yields openraft's result once it is applied.
    pub fn submit(&self, payload: Bytes) -> Result<oneshot::Receiver<WriteResult>, ConsensusError> {
        let (responder, rx) = WriteResponder::complete_only();
        self.queue
            .send((Txn(payload), responder))
            .map_err(|_| ConsensusError::Shutdown)?;
        Ok(rx)
    }

    /// Stops the drain task; queued proposals are dropped, so their callers see `Shutdown`.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }
}

async fn drain(
    raft: Raft,
    mut queue: mpsc::UnboundedReceiver<Proposal>,
    mut stop: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(DRAIN_BATCH);
    loop {
        tokio::select! {
            biased;
            _ = stop.changed() => return,
            n = queue.recv_many(&mut batch, DRAIN_BATCH) => if n == 0 { return },
        }
        for (txn, responder) in batch.drain(..) {
            // On error the responder is dropped with the request, which the caller reads as
            // `Shutdown`; openraft only fails here once its core has stopped.
            if let Err(fatal) = raft.write(txn).responder(responder).await {
                tracing::warn!(error = %fatal, "consensus stopped; dropping queued proposals");
                return;
            }
        }
    }
}
