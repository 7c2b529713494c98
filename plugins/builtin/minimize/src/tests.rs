use super::*;
use tailor_plugin_sdk::testing::{FakeHost, call, with_host};

fn history() -> Vec<Item> {
    vec![
        Item::new("1", "message", "My marathon training plan for the spring race")
            .with_timestamp(1.0e9)
            .with_field("mood", 4),
        Item::new("2", "message", "Booked the dentist for Tuesday"),
        Item::new("3", "message", "Trail running shoes with better grip for muddy training runs"),
        Item::new("4", "message", "The quarterly tax return is due"),
    ]
}

fn profile() -> Json {
    json!({
        "count": 4,
        "top_words": ["training", "running"],
        "field_means": {"mood": 4.0, "rating": 3.5},
        "kinds": {"message": 4},
    })
}

fn run(inputs: Inputs, config: Config) -> Outputs {
    call::<Minimize>(inputs, config).unwrap()
}

fn ids(out: &Outputs) -> Vec<String> {
    let items: Vec<Item> = out.get("items").unwrap().get().unwrap();
    items.into_iter().map(|i| i.text).collect()
}

#[test]
fn only_items_relevant_to_the_task_pass() {
    let inputs = Inputs::new().with("items", history()).with("task", "Which shoes for my training runs?");
    let out = run(inputs, Config::new().with("min-relevance", 0.0));
    let texts = ids(&out);
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(texts[0].starts_with("Trail running"), "the best match comes first: {texts:?}");
    assert!(texts[1].starts_with("My marathon"));
    let Some(Value::Json(withheld)) = out.get("withheld") else { panic!() };
    assert_eq!(withheld["items"], json!(2));
}

#[test]
fn min_relevance_is_a_share_of_the_best_score() {
    let scores = [4.0, 1.0, 2.0, 0.0];
    assert_eq!(reveal(Some(&scores), 4, 10, 0.5), vec![0, 2]);
    assert_eq!(reveal(Some(&scores), 4, 10, 0.2), vec![0, 2, 1]);
    assert_eq!(reveal(Some(&scores), 4, 1, 0.0), vec![0], "max-items caps");
    assert_eq!(reveal(Some(&[0.0, 0.0]), 2, 10, 0.0), Vec::<usize>::new(), "nothing relevant, nothing revealed");
    assert_eq!(reveal(None, 4, 3, 0.5), vec![0, 1, 2], "no task: the first in order");
    assert_eq!(reveal(Some(&[1.0, 3.0, 3.0]), 3, 10, 0.0), vec![1, 2, 0], "ties keep their order");
}

#[test]
fn without_a_task_the_first_items_pass_in_order() {
    let out = run(Inputs::new().with("items", history()), Config::new().with("max-items", 2.0));
    assert_eq!(ids(&out), ["My marathon training plan for the spring race", "Booked the dentist for Tuesday"]);
    assert_eq!(out.get("scores"), Some(&Value::Numbers(vec![])));
    // A task of stop words alone has nothing to rank by.
    let out =
        run(Inputs::new().with("items", history()).with("task", "what is it?"), Config::new().with("max-items", 1.0));
    assert_eq!(ids(&out).len(), 1);
}

#[test]
fn only_needed_item_fields_survive() {
    let out = run(Inputs::new().with("items", history()), Config::new().with("max-items", 1.0));
    let items: Vec<Item> = out.get("items").unwrap().get().unwrap();
    assert_eq!(items[0], Item::new("", "", "My marathon training plan for the spring race"));
    let Some(Value::Json(withheld)) = out.get("withheld") else { panic!() };
    assert_eq!(withheld["item_fields"], json!(["id", "kind", "mood", "timestamp"]));

    let config = Config::new().with("max-items", 1.0).with("item-fields", vec!["id", "timestamp", "mood"]);
    let out = run(Inputs::new().with("items", history()), config);
    let items: Vec<Item> = out.get("items").unwrap().get().unwrap();
    assert_eq!(items[0], Item::new("1", "", "").with_timestamp(1.0e9).with_field("mood", 4));
}

#[test]
fn profile_keeps_only_declared_fields() {
    let (kept, withheld) =
        keep_paths(profile().as_object().unwrap(), &["top_words".into(), "field_means.rating".into()]);
    assert_eq!(Json::Object(kept), json!({"top_words": ["training", "running"], "field_means": {"rating": 3.5}}));
    assert_eq!(withheld, ["count", "field_means.mood", "kinds"]);

    let out = run(Inputs::new().with("profile", profile()), Config::new());
    assert_eq!(out.get("profile"), Some(&Value::Json(json!({}))), "nothing declared, nothing passes");
    let Some(Value::Json(withheld)) = out.get("withheld") else { panic!() };
    assert_eq!(withheld["profile_fields"], json!(["count", "field_means", "kinds", "top_words"]));
    assert_eq!(withheld["items"], json!(0));
}

#[test]
fn a_profile_that_is_not_a_record_is_refused() {
    let out = call::<Minimize>(Inputs::new().with("profile", Value::Json(json!([1, 2]))), Config::new());
    assert!(matches!(out, Err(StageError::InvalidInput(ref m)) if m.contains("record")), "{out:?}");
}

#[test]
fn dense_relevance_asks_the_encoder_once() {
    let inputs = Inputs::new().with("items", history()).with("task", "muddy trail running shoes");
    let (out, host) = with_host(FakeHost::new(), || call::<Minimize>(inputs, Config::new().with("dense", true)));
    let out = out.unwrap();
    assert_eq!(host.embedded.len(), 1, "one batch: the task and every item");
    assert_eq!(host.embedded[0].len(), 5);
    assert!(ids(&out)[0].starts_with("Trail running"), "{:?}", ids(&out));
    assert!(host.logs.iter().any(|(_, m)| m.contains("revealed")), "{:?}", host.logs);
}

#[test]
fn bm25_prefers_rarer_shared_words() {
    let items = [Item::new("a", "m", "running running running"), Item::new("b", "m", "running grip")];
    let scores = lexical_scores("grip for running", &items).unwrap();
    assert!(scores[1] > scores[0], "{scores:?}");
    assert_eq!(lexical_scores("the and of", &items), None);
}
