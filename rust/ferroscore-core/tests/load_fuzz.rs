//! The model loaders under mutated real models (the seed corpus in `tests/corpus/`, written by
//! `scripts/fuzz_corpus.py`): bytes flipped, numbers replaced by hostile ones (huge counts,
//! NaN, infinities), slices cut, repeated or dropped. Every load either refuses the file or
//! gives a model that scores and explains a row; nothing panics, aborts or overflows the stack.
//!
//! `make test` runs a short pass; run longer by hand:
//! `FERROSCORE_FUZZ_CASES=200000 cargo test --release -p ferroscore-core --test load_fuzz`.

use ferroscore_core::model::{load_within, LoadLimits};
use ferroscore_core::Output;
use proptest::prelude::*;
use std::path::PathBuf;

/// Numbers that break loaders that trust what a file declares.
const HOSTILE: &[&str] = &[
    "0",
    "-1",
    "4294967296",
    "18446744073709551615",
    "1000000000000",
    "99999999999999999999999",
    "nan",
    "inf",
    "-inf",
    "1e39",
    "1e-320",
];

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Number(usize, usize),
    Truncate(usize),
    Repeat(usize, usize),
    Drop(usize, usize),
}

fn corpus() -> &'static [(String, Vec<u8>)] {
    static SEEDS: std::sync::OnceLock<Vec<(String, Vec<u8>)>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(read_corpus)
}

fn read_corpus() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .expect("the seed corpus")
        .map(|e| e.expect("a corpus entry").path())
        .map(|p| {
            let bytes = std::fs::read(&p).expect("a seed");
            (
                p.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes,
            )
        })
        .collect();
    seeds.sort();
    assert!(seeds.len() >= 5, "the corpus has a seed of every format");
    seeds
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        4 => (any::<usize>(), 0..HOSTILE.len()).prop_map(|(at, n)| Mutation::Number(at, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Repeat(at, n)),
        1 => (any::<usize>(), 1..64usize).prop_map(|(at, n)| Mutation::Drop(at, n)),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match *m {
        Mutation::Flip(at, b) => bytes[at % len] = b,
        Mutation::Number(at, n) => {
            // The run of digits at or after `at`, replaced whole.
            let start = (at % len..len).find(|&i| bytes[i].is_ascii_digit());
            if let Some(start) = start {
                let end = (start..len)
                    .find(|&i| !bytes[i].is_ascii_digit())
                    .unwrap_or(len);
                bytes.splice(start..end, HOSTILE[n].bytes());
            } else {
                // Binary formats: a big-endian count of all ones.
                let at = at % len;
                let end = (at + 8).min(len);
                bytes[at..end].fill(0xff);
            }
        }
        Mutation::Truncate(at) => bytes.truncate(at % len),
        Mutation::Repeat(at, n) => {
            let at = at % len;
            let slice = bytes[at..(at + n).min(len)].to_vec();
            bytes.splice(at..at, slice);
        }
        Mutation::Drop(at, n) => {
            let at = at % len;
            bytes.drain(at..(at + n).min(len));
        }
    }
}

/// Loads `bytes` and, when they load, scores and explains a row of zeros and one of NaN.
fn exercise(bytes: &[u8], format: Option<&str>) {
    let limits = LoadLimits {
        memory_bytes: 256 << 20,
        ..LoadLimits::default()
    };
    let Ok(model) = load_within(bytes, format, &limits) else {
        return;
    };
    let n = model.n_features();
    for x in [0.0, f64::NAN] {
        let row = vec![x; n];
        let mut out = vec![0.0; model.n_outputs(Output::Response)];
        model.predict_row(&row, Output::Response, &mut out);
        let mut phi = vec![0.0; model.n_outputs(Output::Margin) * (n + 1)];
        let _ = model.contributions(&row, &mut phi);
    }
}

fn format_of(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("txt") => "lightgbm-text",
        Some("ubj") => "xgboost-ubjson",
        _ if name.starts_with("linear") => "ferroscore-linear",
        _ => "xgboost-json",
    }
}

fn cases() -> u32 {
    std::env::var("FERROSCORE_FUZZ_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(1500)
}

#[test]
fn every_seed_loads_scores_and_explains() {
    for (name, bytes) in corpus() {
        let model = load_within(bytes, None, &LoadLimits::default());
        assert!(model.is_ok(), "{name}: {:?}", model.err());
        exercise(bytes, Some(format_of(name)));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn mutated_models_are_refused_or_served(
        seed in any::<prop::sample::Index>(),
        mutations in prop::collection::vec(mutation(), 1..6),
        detect in any::<bool>(),
    ) {
        let seeds = corpus();
        let (name, bytes) = &seeds[seed.index(seeds.len())];
        let mut bytes = bytes.clone();
        for m in &mutations {
            apply(&mut bytes, m);
        }
        exercise(&bytes, if detect { None } else { Some(format_of(name)) });
    }
}
