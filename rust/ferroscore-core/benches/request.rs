//! The hot path in pieces, on the demo model: parse + validate one 30-feature record, a batch
//! (MB/s of JSON), one row scored, and the whole endpoint. `make bench-core`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use ferroscore_core::{
    compile_schema, load_model, parse_request, Endpoint, Format, Limits, Output, Precision,
};

const MODEL: &[u8] = include_bytes!("../../../python/ferroscore/demo/model.json");
const SCHEMA: &str = include_str!("../../../python/ferroscore/demo/schema.json");
const EXAMPLE: &str = include_str!("../../../python/ferroscore/demo/example.json");

fn record() -> Vec<u8> {
    // The example row, compact and in its own key order (schema order), as clients send it.
    EXAMPLE.split_whitespace().collect::<String>().into_bytes()
}

fn batch(rows: usize) -> Vec<u8> {
    let one = String::from_utf8(record()).expect("utf-8");
    format!("{{\"rows\":[{}]}}", vec![one; rows].join(",")).into_bytes()
}

fn benches(c: &mut Criterion) {
    let schema = compile_schema(SCHEMA).expect("schema");
    let model = load_model(MODEL, None).expect("model");
    let limits = Limits::default();
    let one = record();
    let many = batch(1000);
    let parse = |body: &[u8]| {
        parse_request(
            body,
            &schema,
            &limits,
            Precision::F32,
            30,
            Format::Json,
            false,
        )
    };

    let mut g = c.benchmark_group("parse_validate");
    for (name, body) in [("record_30_features", &one), ("batch_1000_rows", &many)] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse(black_box(body.as_slice()))));
    }
    g.finish();

    let rows = parse(&one).expect("valid");
    let mut out = [0.0];
    c.bench_function("predict_row_200_trees", |b| {
        b.iter(|| model.predict_row(black_box(rows.row(0)), Output::Response, &mut out))
    });

    let endpoint = Endpoint::new(
        "demo",
        1,
        model.clone(),
        schema.clone(),
        limits,
        Default::default(),
    )
    .expect("endpoint");
    c.bench_function("endpoint_score_record", |b| {
        b.iter(|| endpoint.score(black_box(&one), Format::Json, false, 0, None))
    });
}

criterion_group!(group, benches);
criterion_main!(group);
