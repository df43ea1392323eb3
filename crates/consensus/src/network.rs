//! Peer transport: a stub until quorum mode exists.
//!
//! openraft reaches other members only through [`RaftNetworkFactory`]/[`RaftNetworkV2`]. A
//! single-member group never calls them, so every RPC here reports the peer unreachable. Quorum
//! mode replaces this with a client that connects to `server.N`'s peerPort and a listener that
//! feeds requests into `Raft::append_entries`/`vote`/`install_full_snapshot`; overriding
//! `stream_append` there gives pipelined replication.

use std::future::Future;

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::RPCOption;
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse};
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::{BasicNode, RaftNetworkFactory, RaftNetworkV2};

use crate::state_machine::SnapshotData;
use crate::types::{Snapshot, TypeConfig, Vote};

/// Creates [`PeerClient`]s; holds nothing yet.
#[derive(Debug, Clone, Default)]
pub struct PeerNetwork;

/// A connection to one peer. Today it can reach nobody.
#[derive(Debug, Clone)]
pub struct PeerClient {
    target: u64,
}

impl PeerClient {
    fn unreachable(&self) -> Unreachable<TypeConfig> {
        Unreachable::from_string(format!(
            "server.{}: peer transport is not implemented (standalone mode)",
            self.target
        ))
    }
}

impl RaftNetworkFactory<TypeConfig> for PeerNetwork {
    type Network = PeerClient;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> PeerClient {
        PeerClient { target }
    }
}

impl RaftNetworkV2<TypeConfig> for PeerClient {
    type SnapshotData = SnapshotData;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(self.unreachable().into())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        Err(self.unreachable().into())
    }

    async fn full_snapshot(
        &mut self,
        _vote: Vote,
        _snapshot: Snapshot<SnapshotData>,
        _cancel: impl Future<Output = ReplicationClosed> + Send + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        Err(self.unreachable().into())
    }
}
