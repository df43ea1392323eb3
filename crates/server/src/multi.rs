//! The MultiResponse of an applied multi txn, shaped as ZooKeeper's
//! FinalRequestProcessor shapes it from the per-op results.

use ensemble_proto::multi::write_multi_response;
use ensemble_proto::{op, MultiResult, Writer};
use ensemble_tree::ApplyOutcome;

pub fn write_results(w: &mut Writer, out: &ApplyOutcome) {
    let results: Vec<MultiResult> = out
        .multi
        .iter()
        .map(|m| {
            let stat = m.stat.clone().unwrap_or_default();
            match m.op_type {
                op::CREATE => MultiResult::Create {
                    path: m.path.clone(),
                },
                op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => MultiResult::Create2 {
                    path: m.path.clone(),
                    stat,
                },
                op::DELETE | op::DELETE_CONTAINER => MultiResult::Delete,
                op::SET_DATA => MultiResult::SetData { stat },
                op::CHECK => MultiResult::Check,
                _ => MultiResult::Error { err: m.err },
            }
        })
        .collect();
    write_multi_response(w, &results);
}
