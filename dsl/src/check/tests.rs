//! One test per checking rule, against a small registry of test plugins.

use super::*;
use crate::descriptor::*;
use crate::diagnostic::Severity;
use crate::types::Type;

fn registry() -> StaticRegistry {
    let port =
        |name: &str, ty: Type, form| InputPort { name: name.into(), ty, required: true, form, doc: String::new() };
    let out = |name: &str, ty: Type| OutputPort { name: name.into(), ty, doc: String::new() };
    let base = |name: &str, kind| Descriptor {
        name: name.into(),
        version: semver::Version::new(1, 2, 0),
        kind,
        summary: String::new(),
        inputs: vec![],
        outputs: vec![],
        config: vec![],
        grants: vec![],
    };
    let mut summary = ConfigField {
        name: "summary".into(),
        ty: ConfigType::Bool,
        default: None,
        requires: Some(Capability::Complete),
        doc: String::new(),
    };
    summary.default = Some(Value::Bool(false));
    StaticRegistry::new([
        Descriptor {
            inputs: vec![port("query", Type::Text, PortForm::Expression)],
            outputs: vec![out("items", Type::list(Type::Item))],
            config: vec![
                ConfigField {
                    name: "k".into(),
                    ty: ConfigType::Number { min: 1.0, max: 10.0, integer: true },
                    default: None,
                    requires: None,
                    doc: String::new(),
                },
                ConfigField {
                    name: "method".into(),
                    ty: ConfigType::Choice(vec!["bm25".into(), "dense".into()]),
                    default: None,
                    requires: None,
                    doc: String::new(),
                },
                ConfigField {
                    name: "where".into(),
                    ty: ConfigType::ItemFilter,
                    default: None,
                    requires: None,
                    doc: String::new(),
                },
                ConfigField {
                    name: "every".into(),
                    ty: ConfigType::Duration,
                    default: None,
                    requires: None,
                    doc: String::new(),
                },
                summary,
            ],
            grants: vec![Capability::Search],
            ..base("find", StageKind::Retriever)
        },
        Descriptor {
            inputs: vec![port("prompt", Type::Text, PortForm::Template)],
            outputs: vec![out("text", Type::Text), out("texts", Type::list(Type::Text))],
            grants: vec![Capability::Complete],
            ..base("gen", StageKind::Generator)
        },
        Descriptor {
            inputs: vec![port("text", Type::Text, PortForm::Expression)],
            outputs: vec![out("text", Type::Text)],
            ..base("red", StageKind::Privacy)
        },
    ])
}

fn run(body: &str) -> Checked {
    let src = format!("pipeline \"p\" {{\n    input \"q\" type=\"text\"\n{body}\n}}\n");
    check_file(&SourceFile::new("t.kdl", src), &registry())
}

fn codes(c: &Checked) -> Vec<&'static str> {
    c.diagnostics.iter().filter(|d| d.severity == Severity::Error).map(|d| d.code()).collect()
}

fn help(c: &Checked, code: &str) -> String {
    c.diagnostics.iter().find(|d| d.code() == code).and_then(|d| d.problem.help()).unwrap_or_default()
}

const OK: &str = r#"
    stage "a" use="find" grants="search" { query "input.q"; k 3 }
    stage "b" use="gen" grants="complete" { prompt "{{ for it in a.items }}{{ it.text }}{{ end }}{{ input.q }}" }
    output "b.text"
"#;

#[test]
fn accepts_a_valid_pipeline() {
    let c = run(OK);
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    assert_eq!(c.pipelines[0].stages[1].deps, vec![ir::StageId(0)]);
}

#[test]
fn rejects_unknown_stage() {
    let c = run(r#"stage "a" use="red" { text "input.q" }
    output "zzz.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::unreachable_stage", "tailor::dsl::unknown_stage"]);
}

#[test]
fn a_misspelled_reference_is_one_diagnostic() {
    let c = run(r#"stage "similar" use="red" { text "input.q" }
    output "simlar.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::unknown_stage"]);
}

#[test]
fn suggests_the_closest_stage() {
    let c = run(r#"stage "similar" use="red" { text "input.q" }
    output "simlar.text""#);
    assert!(help(&c, "tailor::dsl::unknown_stage").contains("`similar`"));
}

#[test]
fn rejects_unknown_port_with_hint() {
    let c = run(r#"stage "a" use="red" { text "input.q" }
    output "a.txt""#);
    assert_eq!(codes(&c), ["tailor::dsl::unknown_port"]);
    assert!(help(&c, "tailor::dsl::unknown_port").contains("`text`"));
}

#[test]
fn rejects_unknown_input() {
    let c = run(r#"output "input.qq""#);
    assert_eq!(codes(&c), ["tailor::dsl::unknown_input"]);
}

#[test]
fn rejects_cycle_with_its_path() {
    let c = run(r#"stage "a" use="red" { text "b.text" }
    stage "b" use="red" { text "a.text" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::cycle"]);
    let Problem::Cycle { path } = &c.diagnostics[0].problem else { panic!() };
    assert_eq!(path, &["a", "b", "a"]);
}

#[test]
fn rejects_self_reference() {
    let c = run(r#"stage "a" use="red" { text "a.text" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::cycle"]);
}

#[test]
fn rejects_unreachable_stage() {
    let c = run(r#"stage "a" use="red" { text "input.q" }
    stage "b" use="red" { text "input.q" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::unreachable_stage"]);
}

#[test]
fn rejects_duplicate_stage() {
    let c = run(r#"stage "a" use="red" { text "input.q" }
    stage "a" use="red" { text "input.q" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::duplicate_name"]);
}

#[test]
fn rejects_reserved_and_invalid_names() {
    let c = run(r#"stage "input" use="red" { text "input.q" }
    stage "my-stage" use="red" { text "input.q" }
    output "input.q""#);
    assert!(codes(&c).contains(&"tailor::dsl::reserved_name"));
    assert!(codes(&c).contains(&"tailor::dsl::invalid_name"));
}

#[test]
fn rejects_ungranted_capability() {
    let c = run(r#"stage "a" use="find" { query "input.q" }
    output "a.items""#);
    assert_eq!(codes(&c), ["tailor::dsl::ungranted_capability"]);
}

#[test]
fn config_keys_can_require_capabilities() {
    let c = run(r#"stage "a" use="find" grants="search" { query "input.q"; summary #true }
    output "a.items""#);
    assert_eq!(codes(&c), ["tailor::dsl::ungranted_capability"]);
    let off = run(r#"stage "a" use="find" grants="search" { query "input.q"; summary #false }
    output "a.items""#);
    assert!(codes(&off).is_empty());
}

#[test]
fn warns_about_unused_grants() {
    let c = run(r#"stage "a" use="red" grants="search" { text "input.q" }
    output "a.text""#);
    assert!(codes(&c).is_empty());
    assert_eq!(c.diagnostics[0].code(), "tailor::dsl::unused_grant");
    assert_eq!(c.pipelines.len(), 1, "warnings do not block");
}

#[test]
fn rejects_unknown_capability() {
    let c = run(r#"stage "a" use="find" grants="search llm" { query "input.q" }
    output "a.items""#);
    assert_eq!(codes(&c), ["tailor::dsl::unknown_capability"]);
}

#[test]
fn rejects_port_type_mismatch() {
    let c = run(r#"stage "a" use="find" grants="search" { query "input.q" }
    stage "b" use="red" { text "a.items" }
    output "b.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::type_mismatch"]);
}

#[test]
fn rejects_missing_required_input() {
    let c = run(r#"stage "a" use="red"
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::missing_input"]);
}

#[test]
fn rejects_unknown_config_key_with_hint() {
    let c = run(r#"stage "a" use="find" grants="search" { query "input.q"; kk 3 }
    output "a.items""#);
    assert_eq!(codes(&c), ["tailor::dsl::unknown_key"]);
}

#[test]
fn rejects_bad_config_values() {
    let c = run(r#"stage "a" use="find" grants="search" { query "input.q"; k 11; method "bm52"; every "soon" }
    output "a.items""#);
    assert_eq!(codes(&c), ["tailor::dsl::bad_value"; 3]);
    assert!(c.diagnostics.iter().any(|d| d.problem.help().is_some_and(|h| h.contains("`bm25`"))));
}

#[test]
fn rejects_non_integer_where_integer_expected() {
    let c = run(r#"stage "a" use="find" grants="search" { query "input.q"; k 2.5 }
    output "a.items""#);
    assert_eq!(codes(&c), ["tailor::dsl::bad_value"]);
}

#[test]
fn filters_see_item_and_must_be_conditions() {
    let ok = run(
        r#"stage "a" use="find" grants="search" { query "input.q"; where "item.kind == 'paper' and days_since(item.timestamp) < 30" }
    output "a.items""#,
    );
    assert!(codes(&ok).is_empty(), "{:#?}", ok.diagnostics);
    let bad = run(r#"stage "a" use="find" grants="search" { query "input.q"; where "item.kind" }
    output "a.items""#);
    assert_eq!(codes(&bad), ["tailor::dsl::type_mismatch"]);
}

#[test]
fn when_must_be_a_condition() {
    let c = run(r#"stage "a" use="red" when="input.q" { text "input.q" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::type_mismatch"]);
}

#[test]
fn fallback_needs_its_policy_and_typed_values() {
    let c = run(r#"stage "a" use="red" { text "input.q"; fallback text="x" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::bad_shape"]);
    let c = run(r#"stage "a" use="red" on-error="fallback" { text "input.q" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::missing"]);
    let c = run(r#"stage "a" use="red" on-error="fallback" { text "input.q"; fallback text=3 }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::type_mismatch"]);
    let c = run(r#"stage "a" use="red" on-error="fallback" { text "input.q"; fallback text="-" }
    output "a.text""#);
    assert_eq!(c.pipelines[0].stages[0].on_error, ir::OnError::Fallback(vec![Value::text("-")]));
}

#[test]
fn resolves_plugin_versions() {
    let c = run(r#"stage "a" use="red@^1.1" { text "input.q" }
    output "a.text""#);
    assert!(codes(&c).is_empty());
    let c = run(r#"stage "a" use="red@^2" { text "input.q" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::no_matching_version"]);
    let c = run(r#"stage "a" use="rde" { text "input.q" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::unknown_plugin"]);
}

#[test]
fn rejects_bad_timeouts() {
    let c = run(r#"stage "a" use="red" timeout="2h" { text "input.q" }
    output "a.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::bad_value"]);
}

#[test]
fn checks_templates() {
    let c = run(r#"stage "b" use="gen" grants="complete" { prompt "{{ for x in input.q }}{{ x }}{{ end }}" }
    output "b.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::type_mismatch"]);
    let c = run(r#"stage "b" use="gen" grants="complete" { prompt "{{ if input.q }}x" }
    output "b.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::template"]);
}

#[test]
fn checks_function_calls() {
    let c = run(r#"output "lenn(input.q)""#);
    assert_eq!(codes(&c), ["tailor::dsl::unknown_function"]);
    let c = run(r#"output "len(input.q, 2)""#);
    assert_eq!(codes(&c), ["tailor::dsl::arity"]);
    let c = run(r#"output "lower(3)""#);
    assert_eq!(codes(&c), ["tailor::dsl::type_mismatch"]);
}

#[test]
fn checks_operators() {
    let c = run(r#"output "input.q == 3""#);
    assert_eq!(codes(&c), ["tailor::dsl::bad_operand"]);
    let c = run(r#"output "not input.q""#);
    assert_eq!(codes(&c), ["tailor::dsl::bad_operand"]);
}

#[test]
fn checks_tests() {
    let c = run(r#"stage "a" use="red" { text "input.q" }
    output "a.text"
    test "t" { input qq="x"; expect "a.text" }
    test "u" { expect "output == 'x'" }"#);
    let codes = codes(&c);
    assert!(codes.contains(&"tailor::dsl::unknown_input"), "{codes:?}");
    assert!(codes.contains(&"tailor::dsl::type_mismatch"), "{codes:?}");
    assert!(codes.contains(&"tailor::dsl::missing_test_input"), "{codes:?}");
}

#[test]
fn reports_all_errors_at_once() {
    let c = run(r#"stage "a" use="find" { query "input.qq"; kk 1 }
    stage "b" use="gen" grants="complete" timout="1s" { prompt "{{ aa.items }}" }
    output "b.txt""#);
    assert!(codes(&c).len() >= 5, "{:?}", codes(&c));
}

#[test]
fn a_file_is_all_or_nothing() {
    let src = "pipeline \"good\" {\n    input \"q\" type=\"text\"\n    output \"input.q\"\n}\npipeline \"bad\" {\n    output \"nope.x\"\n}\n";
    let c = check_file(&SourceFile::new("t.kdl", src), &registry());
    assert!(c.has_errors());
    assert!(c.pipelines.is_empty());
}

#[test]
fn ir_ignores_whitespace_and_comments() {
    let a = run(OK);
    let b = run(&OK.replace("    ", "\t  ").replace("stage \"b\"", "// note\n    stage  \"b\""));
    assert_eq!(a.pipelines, b.pipelines);
}

#[test]
fn orders_stages_topologically() {
    let c = run(r#"stage "late" use="red" { text "early.text" }
    stage "early" use="red" { text "input.q" }
    output "late.text""#);
    let p = &c.pipelines[0];
    assert_eq!(p.stages[0].label.0.as_ref(), "early");
    assert_eq!(p.stages[1].deps, vec![ir::StageId(0)]);
    let ir::ExprKind::StageOutput { stage, .. } = p.output.kind else { panic!() };
    assert_eq!(stage, ir::StageId(1));
}

#[test]
fn rejects_empty_names() {
    let c = run(r#"stage "" use="red" { text "input.q" }
    output "input.q""#);
    assert!(codes(&c).contains(&"tailor::dsl::invalid_name"), "{:?}", codes(&c));
}

#[test]
fn loop_variables_cannot_hide_stages_or_be_reserved() {
    let c = run(r#"stage "a" use="find" grants="search" { query "input.q" }
    stage "b" use="gen" grants="complete" { prompt "{{ for a in a.items }}{{ end }}{{ for true in a.items }}{{ end }}" }
    output "b.text""#);
    assert_eq!(codes(&c), ["tailor::dsl::invalid_name"; 2]);
}

#[test]
fn rejects_non_finite_numbers() {
    let c = run(r#"stage "a" use="find" grants="search" { query "input.q"; k #nan }
    output "a.items""#);
    assert_eq!(codes(&c), ["tailor::dsl::bad_value"]);
}

#[test]
fn rejects_a_test_input_given_twice() {
    let c = run(r#"output "input.q"
    test "t" { input q="a"; input q="b"; expect "true" }"#);
    assert_eq!(codes(&c), ["tailor::dsl::duplicate_name"]);
}
