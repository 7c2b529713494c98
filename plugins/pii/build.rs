//! Turns the gazetteers in `data/` (one lowercase entry per line) into FST sets in `OUT_DIR`.
//! An FST is searched where it lies in the binary: a plugin instance, which lives for one call,
//! pays nothing to load it. `common_words.txt` is in frequency order and becomes a map from each
//! word to its rank.

use std::path::PathBuf;

fn main() {
    let data = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("data");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for name in ["first_names", "last_names", "places"] {
        let path = data.join(format!("{name}.txt"));
        println!("cargo:rerun-if-changed={}", path.display());
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let mut entries: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
        entries.sort_unstable();
        entries.dedup();
        let set = fst::Set::from_iter(entries).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        std::fs::write(out.join(format!("{name}.fst")), set.as_fst().as_bytes()).unwrap();
    }
    let path = data.join("common_words.txt");
    println!("cargo:rerun-if-changed={}", path.display());
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut ranked: Vec<(&str, u64)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for word in text.lines().filter(|l| !l.is_empty()) {
        if seen.insert(word) {
            ranked.push((word, ranked.len() as u64 + 1));
        }
    }
    ranked.sort_unstable();
    let map = fst::Map::from_iter(ranked).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::fs::write(out.join("common_words.fst"), map.as_fst().as_bytes()).unwrap();
}
