//! Under `privacy { egress "strict" }`, personal data planted in a user's history and in the
//! request never reaches the LLM, and the placeholders put in its place come back restored in the
//! run's output. The LLM is a fake OpenAI-compatible server on loopback that echoes its prompt,
//! so every byte that left the process is in its request log.

use std::sync::Arc;

use tailor_dsl::check::check_file;
use tailor_dsl::span::SourceFile;
use tailor_dsl::types::Value;
use tailor_engine::exec::{Executor, Loaded, MemoryStageCache, RunFailure, RunReport, RunRequest};
use tailor_engine::host::PluginHost;
use tailor_engine::host::services::{Complete, Services};
use tailor_engine::llm::testing::{FakeLlm, Reply};
use tailor_engine::llm::{OpenAi, OpenAiConfig};
use tailor_engine::registry::Registry;
use tailor_engine::retrieval::UserIndexConfig;
use tailor_engine::store::{Histories, SqliteStore, Store, StoreKv, item_from_json};

const PIPELINE: &str = r#"
pipeline "private-reply" {
    input "message" type="text"
    privacy {
        egress "strict"
    }
    stage "asked" use="builtin:pii-redact" {
        text "input.message"
    }
    stage "past" use="builtin:retrieve" grants="search" {
        query "asked.text"
        method "bm25"
        k 4
    }
    stage "context" use="builtin:pii-redact" {
        text "join(past.items, '\n')"
    }
    stage "reply" use="builtin:generate" grants="complete" {
        max-tokens 64
        prompt """
            Notes:
            {{ context.text }}
            Message: {{ asked.text }}
            """
    }
    output "reply.text"
}
"#;

/// Random personal data of the structured kinds, each valid (checksums included).
struct Planted {
    rng: fastrand::Rng,
}

impl Planted {
    fn digits(&mut self, n: usize) -> String {
        (0..n).map(|_| char::from(b'0' + self.rng.u8(0..10))).collect()
    }

    fn card(&mut self) -> String {
        let mut number: Vec<u32> = std::iter::once(4).chain((0..14).map(|_| self.rng.u32(0..10))).collect();
        let sum: u32 = number
            .iter()
            .rev()
            .enumerate()
            .map(|(i, &d)| if i % 2 == 0 { if d * 2 > 9 { d * 2 - 9 } else { d * 2 } } else { d })
            .sum();
        number.push((10 - sum % 10) % 10);
        let s: String = number.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect();
        if self.rng.bool() { format!("{} {} {} {}", &s[..4], &s[4..8], &s[8..12], &s[12..]) } else { s }
    }

    fn iban(&mut self) -> String {
        let bban = self.digits(18);
        // Check digits: 98 - (BBAN + "DE00" as digits) mod 97.
        let rearranged = format!("{bban}131400");
        let remainder = rearranged.bytes().fold(0u32, |r, b| (r * 10 + u32::from(b - b'0')) % 97);
        format!("DE{:02}{bban}", 98 - remainder)
    }

    fn email(&mut self) -> String {
        let name: String = (0..self.rng.usize(4..10)).map(|_| self.rng.lowercase()).collect();
        let domain = ["example.com", "mail.example.org", "corp.example.net"][self.rng.usize(..3)];
        format!("{name}.{}@{domain}", self.digits(2))
    }

    fn phone(&mut self) -> String {
        match self.rng.u8(..3) {
            0 => format!("+44 20 {} {}", self.digits(4), self.digits(4)),
            1 => format!("({}) 555-{}", self.rng.u32(201..990), self.digits(4)),
            _ => format!("+1-{}-{}-{}", self.rng.u32(201..990), self.digits(3), self.digits(4)),
        }
    }

    fn ssn(&mut self) -> String {
        format!("{}-{:02}-{:04}", self.rng.u32(100..666), self.rng.u32(1..100), self.rng.u32(1..10000))
    }

    fn ip(&mut self) -> String {
        format!("10.{}.{}.{}", self.rng.u8(..), self.rng.u8(..), self.rng.u8(1..255))
    }

    fn any(&mut self) -> String {
        match self.rng.u8(..6) {
            0 => self.card(),
            1 => self.iban(),
            2 => self.email(),
            3 => self.phone(),
            4 => self.ssn(),
            _ => self.ip(),
        }
    }
}

/// A pipeline checked against the built-in plugins, an executor, and an OpenAI client for a fake
/// server on loopback that echoes its prompt.
struct Setup {
    rt: tokio::runtime::Runtime,
    server: FakeLlm,
    catalog: Arc<tailor_engine::registry::Catalog>,
    loaded: Loaded,
    executor: Executor,
    llm: Arc<dyn Complete>,
}

impl Setup {
    fn new(name: &str, pipeline: &str) -> Setup {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let server = rt.block_on(FakeLlm::always(Reply::Echo { prefix: "echo: ".into() }));
        let registry = rt.block_on(async {
            Registry::with_builtins(Arc::new(PluginHost::new().unwrap())).await.expect("built-in plugins")
        });
        let catalog = registry.snapshot();
        let checked = check_file(&SourceFile::new(name, pipeline), &*catalog);
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let loaded = Loaded::new(checked.pipelines.into_iter().next().unwrap());
        let llm: Arc<dyn Complete> = Arc::new(OpenAi::new(OpenAiConfig::new(server.url(), "fake")).unwrap());
        let executor = Executor::new(Arc::clone(registry.host()), Arc::new(MemoryStageCache::new(64)));
        Setup { rt, server, catalog, loaded, executor, llm }
    }

    fn run(&self, message: &str, services: Services, history_version: u64) -> Result<RunReport, RunFailure> {
        let request = RunRequest {
            loaded: self.loaded.clone(),
            catalog: Arc::clone(&self.catalog),
            tenant: "t".into(),
            user: "u".into(),
            inputs: vec![Value::text(message)],
            services,
            history_version,
            request_id: "privacy".into(),
            deadline: None,
            wrap_complete: None,
        };
        self.rt.block_on(self.executor.run(request))
    }
}

#[test]
fn strict_egress_never_lets_planted_pii_out_and_restores_placeholders() {
    let setup = Setup::new("private-reply.kdl", PIPELINE);
    let (rt, server) = (&setup.rt, &setup.server);
    let mut planted = Planted { rng: fastrand::Rng::with_seed(42) };
    let topics = ["rent", "invoice", "dentist", "holiday", "car repair", "school trip", "insurance", "gym"];
    for case in 0..24 {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
        let histories = Arc::new(Histories::new(Arc::clone(&store), None, UserIndexConfig::default()));
        let mut secrets = Vec::new();
        let items = (0..planted.rng.usize(3..8))
            .map(|i| {
                let (a, b) = (planted.any(), planted.any());
                let topic = topics[planted.rng.usize(..topics.len())];
                secrets.extend([a.clone(), b.clone()]);
                let text = format!("About the {topic}: use {a} and, if that fails, {b}.");
                item_from_json(&serde_json::json!({"id": format!("n{i}"), "kind": "note", "text": text})).unwrap()
            })
            .collect();
        rt.block_on(histories.ingest("t", "u", items)).unwrap();
        let in_message = planted.any();
        secrets.push(in_message.clone());
        let topic = topics[planted.rng.usize(..topics.len())];
        let message = format!("Question about the {topic}: reach me at {in_message} please.");
        let services = Services {
            search: Some(Arc::clone(&histories) as _),
            complete: Some(Arc::clone(&setup.llm)),
            kv: Some(Arc::new(StoreKv(Arc::clone(&store)))),
            ..Services::default()
        };
        let before = server.requests().len();
        let report = setup.run(&message, services, 1).unwrap_or_else(|f| panic!("case {case}: {}", f.error));
        let sent: String = server.requests()[before..].iter().map(|(_, body)| body.to_string()).collect();
        assert!(!sent.is_empty(), "case {case}: the LLM was called");
        for secret in &secrets {
            let compact: String = secret.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
            assert!(!sent.contains(secret.as_str()), "case {case}: `{secret}` reached the LLM: {sent}");
            if compact.len() >= 9 {
                assert!(!sent.contains(&compact), "case {case}: `{compact}` reached the LLM: {sent}");
            }
        }
        let Value::Text(output) = &report.output else { panic!("case {case}: {:?}", report.output) };
        assert!(output.contains(in_message.as_str()), "case {case}: `{in_message}` is restored in {output}");
        assert!(!output.contains("<EMAIL_") && !output.contains("<PHONE_"), "case {case}: {output}");
    }
}

#[test]
fn strict_egress_refuses_a_request_carrying_pii_with_the_types_only() {
    // The raw message goes straight into the prompt: the guard must stop it.
    let leaky = r#"
pipeline "leaky" {
    input "message" type="text"
    privacy {
        egress "strict"
        allow "person"
    }
    stage "reply" use="builtin:generate" grants="complete" {
        prompt "{{ input.message }}"
    }
    output "reply.text"
}
"#;
    let setup = Setup::new("leaky.kdl", leaky);
    let server = &setup.server;
    let run = |message: &str| {
        setup.run(message, Services { complete: Some(Arc::clone(&setup.llm)), ..Services::default() }, 0)
    };
    let before = tailor_engine::privacy::egress_audit();
    let failure = run("Card 4111 1111 1111 1111, mail bob@example.com").unwrap_err();
    let error = failure.error.to_string();
    assert!(error.contains("credit-card") && error.contains("email"), "{error}");
    assert!(!error.contains("4111") && !error.contains("bob@"), "the error names types, never values: {error}");
    assert!(server.requests().is_empty(), "nothing left the process");
    let after = tailor_engine::privacy::egress_audit();
    assert!(after.refused > before.refused);
    assert!(
        after.found.get("credit-card").copied().unwrap_or(0) > before.found.get("credit-card").copied().unwrap_or(0)
    );
    // An allowed type goes through.
    let done = run("Say hello to Megan Payne").unwrap();
    assert_eq!(done.output, Value::text("echo: Say hello to Megan Payne"));
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn minimization_sends_only_relevant_items_and_declared_fields() {
    let pipeline = r#"
pipeline "minimal-reply" {
    input "message" type="text"
    stage "habits" use="builtin:profile" grants="search kv" {}
    stage "past" use="builtin:retrieve" grants="search" {
        query "input.message"
        method "bm25"
        k 10
    }
    stage "needed" use="builtin:minimize" {
        profile "habits.stats"
        fields "count"
        items "past.items"
        task "input.message"
        max-items 3
    }
    stage "reply" use="builtin:generate" grants="complete" {
        max-tokens 64
        prompt "Profile: {{ json(needed.profile) }} Notes: {{ json(needed.items) }} Message: {{ input.message }}"
    }
    output "reply.text"
}
"#;
    let setup = Setup::new("minimal-reply.kdl", pipeline);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::in_memory().unwrap());
    let histories = Arc::new(Histories::new(Arc::clone(&store), None, UserIndexConfig::default()));
    let notes = [
        ("r1", "Marathon training: long runs on Sunday, intervals on Tuesday.", "alpha-1"),
        ("r2", "My marathon training plan peaks at 60 km a week.", "alpha-2"),
        ("u1", "The book club meets at the library, room 4.", "omega-1"),
        ("u2", "Club dues are paid by transfer, reference Q7.", "omega-2"),
        ("u3", "Garden club: plant the tulips in October.", "omega-3"),
    ];
    let items = notes
        .iter()
        .map(|(id, text, marker)| {
            let json = serde_json::json!({"id": id, "kind": "note", "text": text, "fields": {"marker": marker}});
            item_from_json(&json).unwrap()
        })
        .collect();
    setup.rt.block_on(histories.ingest("t", "u", items)).unwrap();
    let services = Services {
        search: Some(Arc::clone(&histories) as _),
        complete: Some(Arc::clone(&setup.llm)),
        kv: Some(Arc::new(StoreKv(Arc::clone(&store)))),
        ..Services::default()
    };
    let report = setup.run("Is my marathon training plan for the running club too much?", services, 1).unwrap();
    let past = report.stages.iter().find(|s| s.label == "past").unwrap();
    let Value::List(retrieved) = &past.outputs[0].1 else { panic!("{:?}", past.outputs) };
    assert_eq!(retrieved.len(), 5, "every note shares a word with the message, so all are retrieved");

    let sent: String = setup.server.requests().iter().map(|(_, body)| body.to_string()).collect();
    for (id, text, marker) in notes {
        let revealed = id.starts_with('r');
        assert_eq!(sent.contains(&text.replace('"', "\\\"")), revealed, "`{id}` revealed: {revealed}; sent: {sent}");
        assert!(!sent.contains(marker), "item fields not declared never leave: {sent}");
        assert!(!sent.contains(&format!("\\\"{id}\\\"")), "nor do item ids: {sent}");
    }
    assert!(sent.contains(r#"{\"count\":5}"#), "only the declared profile field: {sent}");
    assert!(!sent.contains("top_words") && !sent.contains("kinds"), "{sent}");

    let needed = report.stages.iter().find(|s| s.label == "needed").unwrap();
    let withheld = &needed.outputs.iter().find(|(n, _)| n == "withheld").unwrap().1;
    let withheld = serde_json::from_str::<serde_json::Value>(&tailor_dsl::types::to_json(withheld)).unwrap();
    assert_eq!(withheld["items"], 3);
    assert_eq!(withheld["item_fields"], serde_json::json!(["id", "kind", "marker"]));
    assert!(withheld["profile_fields"].as_array().unwrap().contains(&serde_json::json!("top_words")));
    assert!(needed.logs.iter().any(|l| l.message.contains("revealed 2 of 5 items")), "{:?}", needed.logs);
}
