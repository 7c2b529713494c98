//! Turns the gazetteers in `data/` (one lowercase entry per line) into FST sets in `OUT_DIR`.
//! An FST is searched where it lies in the binary: a plugin instance, which lives for one call,
//! pays nothing to load it. `common_words.txt` is in frequency order and becomes a map from each
//! word to its rank. The recognizers' regular expressions (`src/regexes.rs`) become serialized
//! DFAs, so that no plugin instance compiles a pattern; the class of word characters becomes a
//! table of code-point ranges.

use std::path::PathBuf;

#[path = "src/regexes.rs"]
mod regexes;

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

    // Letters and marks, `[\p{L}\p{M}]`, as sorted inclusive ranges of code points: the word
    // scanner's table (src/names.rs), exactly the class the `regex` crates use.
    let hir = regex_syntax::Parser::new().parse(r"[\p{L}\p{M}]").expect("a valid class");
    let regex_syntax::hir::HirKind::Class(regex_syntax::hir::Class::Unicode(class)) = hir.kind() else {
        panic!("`[\\p{{L}}\\p{{M}}]` is a Unicode class")
    };
    let ranges: Vec<String> =
        class.ranges().iter().map(|r| format!("({}, {})", u32::from(r.start()), u32::from(r.end()))).collect();
    std::fs::write(out.join("letter_or_mark.rs"), format!("&[{}]", ranges.join(", "))).unwrap();

    // The recognizers' patterns, compiled to DFAs (src/regexes.rs), unless they are compiled at
    // run time (`runtime-regex`).
    let shared = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("src/regexes.rs");
    println!("cargo:rerun-if-changed={}", shared.display());
    if std::env::var_os("CARGO_FEATURE_RUNTIME_REGEX").is_some() {
        return;
    }
    for (name, pattern) in regexes::all() {
        let re = regex_automata::dfa::regex::Regex::builder()
            .build(&pattern)
            .unwrap_or_else(|e| panic!("pattern `{name}`: {e}"));
        let forward = re.forward().to_sparse().unwrap_or_else(|e| panic!("pattern `{name}`: {e}"));
        let reverse = re.reverse().to_sparse().unwrap_or_else(|e| panic!("pattern `{name}`: {e}"));
        std::fs::write(out.join(format!("{name}.fwd")), forward.to_bytes_little_endian()).unwrap();
        std::fs::write(out.join(format!("{name}.rev")), reverse.to_bytes_little_endian()).unwrap();
    }
}
