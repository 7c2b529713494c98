//! Check time for generated pipelines of 10, 100 and 1,000 stages: it should grow about
//! linearly. Run with `cargo bench --bench check`; criterion reports time per iteration and
//! stages per second for each size.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use tailor_dsl::check::check_file;
use tailor_dsl::span::SourceFile;

/// A pipeline of `n` stages: redactions, retrievals and generators, each reading earlier
/// stages, the last one feeding the output, so that every stage is reachable.
fn pipeline(n: usize) -> String {
    let mut s = String::from("pipeline \"bench\" {\n    input \"query\" type=\"text\"\n");
    for i in 0..n {
        let prev = if i == 0 { "input.query".to_string() } else { format!("s{}.text", i - 1) };
        match i % 3 {
            0 => s.push_str(&format!(
                "    stage \"s{i}\" use=\"builtin:pii-redact\" {{\n        text \"{prev}\"\n        entities \"email\" \"phone\"\n    }}\n"
            )),
            1 => s.push_str(&format!(
                "    stage \"r{i}\" use=\"builtin:retrieve\" grants=\"search\" {{\n        query \"{prev}\"\n        k 3\n        where \"item.kind == 'note' and len(item.text) > 10\"\n    }}\n    stage \"s{i}\" use=\"builtin:pii-redact\" {{\n        text \"join(r{i}.items, ' ') + {prev}\"\n    }}\n"
            )),
            _ => s.push_str(&format!(
                "    stage \"s{i}\" use=\"builtin:generate\" grants=\"complete\" {{\n        candidates 2\n        prompt \"\"\"\n            {{{{ for it in [{prev}] }}}}- {{{{ upper(it) }}}}\n            {{{{ end }}}}Answer: {{{{ input.query }}}}\n            \"\"\"\n    }}\n"
            )),
        }
    }
    s.push_str(&format!("    output \"s{}.text\"\n}}\n", n - 1));
    s
}

fn bench_check(c: &mut Criterion) {
    let (registry, _) = tailor_engine::registry::load_catalog(&[]).expect("built-in plugins load");
    let registry = &*registry;
    let mut group = c.benchmark_group("check");
    for n in [10usize, 100, 1_000] {
        let text = pipeline(n);
        let file = SourceFile::new("bench.kdl", text);
        let checked = check_file(&file, registry);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics.first());
        let stages = checked.pipelines[0].stages.len() as u64;
        group.throughput(Throughput::Elements(stages));
        group.bench_with_input(BenchmarkId::from_parameter(n), &file, |b, file| b.iter(|| check_file(file, registry)));
    }
    group.finish();
}

/// The first phase alone (KDL parsing and reading declarations), to show where time goes.
fn bench_syntax(c: &mut Criterion) {
    let mut group = c.benchmark_group("syntax");
    for n in [10usize, 100, 1_000] {
        let file = SourceFile::new("bench.kdl", pipeline(n));
        group.bench_with_input(BenchmarkId::from_parameter(n), &file, |b, file| {
            b.iter(|| tailor_dsl::syntax::parse_file(file, &mut Vec::new()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_check, bench_syntax);
criterion_main!(benches);
