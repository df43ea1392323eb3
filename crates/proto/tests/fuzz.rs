//! No input makes a decoder panic: random bytes and mutated valid encodings
//! go through every record decoder and the frame splitter.

mod common;

use bytes::BytesMut;
use common::{Arb, Gen};
use ensemble_proto::frame::split_frame;
use ensemble_proto::multi::{MultiRequest, MultiResponse};
use ensemble_proto::*;
use proptest::prelude::*;

/// Decodes `bytes`; whatever decodes must survive a re-encode unchanged.
fn decode_never_panics<T: Jute + PartialEq + std::fmt::Debug>(bytes: &[u8]) {
    if let Ok(v) = T::from_bytes(bytes) {
        assert_eq!(
            T::from_bytes(&v.to_bytes()).as_ref(),
            Ok(&v),
            "{}",
            std::any::type_name::<T>()
        );
    }
}

fn mutated_never_panics<T: Jute + Arb + PartialEq + std::fmt::Debug>(seed: u64) {
    let mut g = Gen::new(seed);
    let mut bytes = T::arb(&mut g).to_bytes().to_vec();
    if bytes.is_empty() {
        return;
    }
    for _ in 0..=g.below(3) {
        let i = g.below(bytes.len() as u64) as usize;
        bytes[i] = g.next() as u8;
    }
    decode_never_panics::<T>(&bytes);
}

proptest! {
    #[test]
    fn random_bytes_never_panic_any_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        macro_rules! go { ($($t:ty),*) => { $(decode_never_panics::<$t>(&bytes);)* }; }
        for_every_record!(go);
    }

    #[test]
    fn mutated_encodings_never_panic_any_decoder(seed in any::<u64>()) {
        macro_rules! go { ($($t:ty),*) => { $(mutated_never_panics::<$t>(seed);)* }; }
        for_every_record!(go);
    }

    #[test]
    fn random_bytes_never_panic_the_frame_splitter(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut buf = BytesMut::from(&bytes[..]);
        while let Ok(Some(_)) = split_frame(&mut buf, 32) {}
    }
}
