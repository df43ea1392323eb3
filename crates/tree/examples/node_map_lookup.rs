//! What a lookup by path costs in a node map of a large tree, and what a copy of
//! the map costs, for the persistent hash trie the tree's node map was and two
//! alternatives: the same trie split into shards by hash, and a flat hash table
//! (the map is now such a table, split by hash; see `tree::NodeMap`). Paths are looked up in random order, as a delete run does.
//! `cargo run --release -p ensemble-tree --example node_map_lookup -- 1800000 4096`
use arcstr::ArcStr;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

// The server's allocator, so that the maps lie in memory as they do there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The tree's former node map, with a stand-in of a node's size.
type Trie = imbl::GenericHashMap<
    ArcStr,
    Arc<[u8; 120]>,
    foldhash::fast::RandomState,
    imbl::shared_ptr::DefaultSharedPtr,
>;
type Flat = HashMap<ArcStr, Arc<[u8; 120]>, foldhash::fast::RandomState>;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_800_000);
    let shards: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4096)
        .max(1);
    let paths: Vec<ArcStr> = (0..n)
        .map(|i| ArcStr::from(format!("/bench/c1a2b3-{i}")))
        .collect();
    let node = Arc::new([0u8; 120]);
    let hasher = foldhash::fast::RandomState::default();
    let shard_of = |p: &str| (hasher.hash_one(p) >> 40) as usize % shards;

    let mut trie = Trie::default();
    let mut split: Vec<Trie> = (0..shards).map(|_| Trie::default()).collect();
    let mut flat = Flat::default();
    for p in &paths {
        trie.insert(p.clone(), node.clone());
        split[shard_of(p)].insert(p.clone(), node.clone());
        flat.insert(p.clone(), node.clone());
    }

    // A random order (xorshift), the same for every map.
    let mut order: Vec<usize> = (0..n).collect();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(i, (x % (i as u64 + 1)) as usize);
    }
    let lookups = order.len().min(1_000_000);
    let time = |name: &str, get: &dyn Fn(&str) -> Option<u8>| {
        let t = Instant::now();
        let mut found = 0usize;
        for &i in &order[..lookups] {
            found += usize::from(black_box(get(paths[i].as_str())).is_some());
        }
        let ns = t.elapsed().as_nanos() as f64 / lookups as f64;
        println!("{name:<28} {ns:>6.0} ns per lookup ({found} found)");
    };
    for round in 1..=3 {
        println!("round {round}, {n} paths:");
        time("persistent trie", &|p| trie.get(p).map(|v| v[0]));
        time(&format!("trie in {shards} shards"), &|p| {
            split[shard_of(p)].get(p).map(|v| v[0])
        });
        time("flat hash table", &|p| flat.get(p).map(|v| v[0]));
    }
    let t = Instant::now();
    let copy = black_box(trie.clone());
    println!("copy of the trie: {} µs", t.elapsed().as_micros());
    drop(copy);
    let t = Instant::now();
    let copy = black_box(split.clone());
    println!(
        "copy of the {shards} shards: {} µs",
        t.elapsed().as_micros()
    );
    drop(copy);
    let t = Instant::now();
    let copy = black_box(flat.clone());
    println!("copy of the flat table: {} ms", t.elapsed().as_millis());
    drop(copy);
}
