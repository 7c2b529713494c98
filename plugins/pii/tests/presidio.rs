//! Prints the recognizers' scores on the shared Presidio sample (run with `--ignored
//! --nocapture`); `tailor eval pii` is the command users run.

use tailor_pii::Analyzer;
use tailor_pii::eval::{Sample, evaluate, overall};

#[test]
#[ignore = "a report, not a check: `tailor eval pii` and the root tests check the numbers"]
fn presidio_report() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/pii/presidio_generated_small.json");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let samples: Vec<Sample> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = s["full_text"].as_str().unwrap().to_owned();
            let byte = |c: u64| text.char_indices().nth(c as usize).map_or(text.len(), |(b, _)| b);
            let spans = s["spans"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sp| {
                    let (a, b) = (sp["start_position"].as_u64().unwrap(), sp["end_position"].as_u64().unwrap());
                    (byte(a), byte(b), sp["entity_type"].as_str().unwrap().to_owned())
                })
                .collect();
            Sample { text, spans }
        })
        .collect();
    let analyzer = Analyzer::default();
    let counts = evaluate(&analyzer, &samples, None);
    for (name, c) in &counts {
        println!(
            "{name:<20} p {:.3} r {:.3} f2 {:.3} support {} (fp {})",
            c.precision(),
            c.recall(),
            c.f2(),
            c.support(),
            c.fp
        );
    }
    let all = overall(&counts);
    println!("overall              p {:.3} r {:.3} f2 {:.3}", all.precision(), all.recall(), all.f2());
    let group = ["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS"];
    let g = overall(&evaluate(&analyzer, &samples, Some(&group)));
    println!("structured group     p {:.3} r {:.3} f2 {:.3}", g.precision(), g.recall(), g.f2());
    if std::env::var_os("PII_SHOW").is_some() {
        for s in &samples {
            let found: Vec<String> = analyzer
                .analyze(&s.text)
                .iter()
                .map(|d| format!("{}:{:?}({:.2})", d.entity.presidio(), &s.text[d.start..d.end], d.score))
                .collect();
            let gold: Vec<String> = s.spans.iter().map(|(a, b, l)| format!("{l}:{:?}", &s.text[*a..*b])).collect();
            println!("\n{:?}\n  gold {gold:?}\n  ours {found:?}", s.text);
        }
    }
}
