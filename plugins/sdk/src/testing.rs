//! Running a plugin in a unit test on the machine, without a host: a mock of the capability
//! imports per thread, a ready-made [`FakeHost`], and [`call`], which goes through the same
//! checks (`describe`, defaults, validation) as a call from the host.
//!
//! Only compiled for non-wasm targets; inside a component the real imports are used.
//!
//! ```
//! use tailor_plugin_sdk::host;
//! use tailor_plugin_sdk::testing::{with_host, FakeHost};
//!
//! let fake = FakeHost::new().reply_with(|_| Ok("Hello!".to_owned()));
//! let (reply, fake) = with_host(fake, || {
//!     host::complete(&host::CompletionRequest::new().user("Hi"))
//! });
//! assert_eq!(reply.unwrap().text(), Some("Hello!"));
//! assert_eq!(fake.requests.len(), 1);
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::Duration;

use crate::args::{Config, Inputs, Outputs};
use crate::descriptor::Capability;
use crate::error::{HostError, StageError};
use crate::host::{Completion, CompletionRequest, Hit, LogLevel, SearchMethod};
use crate::value::Item;
use crate::{Context, Plugin};

/// A stand-in for the host's capability imports. Every method not overridden fails with
/// [`HostError::Unavailable`] (logging is dropped, the clock reads 0).
pub trait MockHost: Any {
    fn log(&mut self, _level: LogLevel, _message: &str) {}

    fn now(&mut self) -> f64 {
        0.0
    }

    fn search(&mut self, _text: &str, _method: SearchMethod, _k: u32) -> Result<Vec<Hit>, HostError> {
        Err(not_mocked("search"))
    }

    fn recent(&mut self, _limit: u32) -> Result<Vec<Item>, HostError> {
        Err(not_mocked("recent"))
    }

    fn embed(&mut self, _texts: &[String]) -> Result<Vec<Vec<f32>>, HostError> {
        Err(not_mocked("embed"))
    }

    fn complete(&mut self, _request: &CompletionRequest) -> Result<Completion, HostError> {
        Err(not_mocked("complete"))
    }

    fn kv_get(&mut self, _key: &str) -> Result<Option<Vec<u8>>, HostError> {
        Err(not_mocked("kv get"))
    }

    fn kv_set(&mut self, _key: &str, _value: &[u8], _ttl: Option<Duration>) -> Result<(), HostError> {
        Err(not_mocked("kv set"))
    }

    fn kv_delete(&mut self, _key: &str) -> Result<(), HostError> {
        Err(not_mocked("kv delete"))
    }
}

fn not_mocked(what: &str) -> HostError {
    HostError::Unavailable(format!("`{what}` is not available: no mock host provides it"))
}

thread_local! {
    static MOCK: RefCell<Option<Box<dyn MockHost>>> = const { RefCell::new(None) };
}

/// Runs `f` against the thread's mock host, if one is installed.
pub(crate) fn with_mock<R>(f: impl FnOnce(&mut dyn MockHost) -> R) -> Result<R, HostError> {
    MOCK.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| HostError::Unavailable("the mock host called back into the host".into()))?;
        match slot.as_deref_mut() {
            Some(host) => Ok(f(host)),
            None => Err(HostError::Unavailable(
                "no host outside a component: install a mock with `testing::with_host`".into(),
            )),
        }
    })
}

/// Runs `f` with `host` serving this thread's host calls, then hands the host back (to inspect
/// what the plugin asked of it).
pub fn with_host<H: MockHost, R>(host: H, f: impl FnOnce() -> R) -> (R, H) {
    struct Restore(Option<Box<dyn MockHost>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            MOCK.with(|cell| *cell.borrow_mut() = previous);
        }
    }
    let previous = MOCK.with(|cell| cell.borrow_mut().replace(Box::new(host)));
    let restore = Restore(previous);
    let result = f();
    let host = MOCK.with(|cell| cell.borrow_mut().take()).expect("invariant: the mock stays installed during `f`");
    drop(restore);
    let host: Box<dyn Any> = host;
    (result, *host.downcast::<H>().expect("invariant: the installed mock is an `H`"))
}

/// Calls a plugin as the host would: its inputs and config are checked against its own
/// descriptor and the descriptor's defaults filled in before `run`.
pub fn call<P: Plugin>(inputs: Inputs, config: Config) -> Result<Outputs, StageError> {
    crate::__private::call::<P>(&Context::default(), inputs, config)
}

/// A replier for [`FakeHost::reply_with`].
type Replier = Box<dyn FnMut(&CompletionRequest) -> Result<String, HostError>>;

/// An in-memory host: a user's history, a cache, a clock, a scripted LLM and a toy encoder.
/// Everything the plugin asked for is recorded.
pub struct FakeHost {
    /// Seconds since the Unix epoch.
    pub now: f64,
    /// The user's history, newest first.
    pub items: Vec<Item>,
    /// The plugin's cache, with each entry's TTL.
    pub kv: BTreeMap<String, (Vec<u8>, Option<Duration>)>,
    pub logs: Vec<(LogLevel, String)>,
    /// Every completion request, in order.
    pub requests: Vec<CompletionRequest>,
    /// Every search: text, method, k.
    pub searches: Vec<(String, SearchMethod, u32)>,
    /// Every embedding request.
    pub embedded: Vec<Vec<String>>,
    /// Capabilities this host refuses with [`HostError::NotGranted`].
    pub denied: Vec<Capability>,
    replier: Option<Replier>,
}

impl Default for FakeHost {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeHost {
    pub fn new() -> Self {
        FakeHost {
            now: 1_700_000_000.0,
            items: Vec::new(),
            kv: BTreeMap::new(),
            logs: Vec::new(),
            requests: Vec::new(),
            searches: Vec::new(),
            embedded: Vec::new(),
            denied: Vec::new(),
            replier: None,
        }
    }

    pub fn with_items(mut self, items: Vec<Item>) -> Self {
        self.items = items;
        self
    }

    pub fn at(mut self, now: f64) -> Self {
        self.now = now;
        self
    }

    pub fn deny(mut self, capability: Capability) -> Self {
        self.denied.push(capability);
        self
    }

    /// Answers each candidate of each completion request with `reply` (called once per
    /// candidate).
    pub fn reply_with(mut self, reply: impl FnMut(&CompletionRequest) -> Result<String, HostError> + 'static) -> Self {
        self.replier = Some(Box::new(reply));
        self
    }

    fn check(&self, capability: Capability) -> Result<(), HostError> {
        if self.denied.contains(&capability) { Err(HostError::NotGranted(capability)) } else { Ok(()) }
    }
}

/// Lowercased alphanumeric words, for the toy search and encoder.
fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// A toy embedding: hashed bag of words in 64 dimensions, unit length (zero for no words).
pub fn toy_embedding(text: &str) -> Vec<f32> {
    let mut v = vec![0.0_f32; 64];
    for word in words(text) {
        let h = word.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        v[(h % 64) as usize] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

impl MockHost for FakeHost {
    fn log(&mut self, level: LogLevel, message: &str) {
        self.logs.push((level, message.to_owned()));
    }

    fn now(&mut self) -> f64 {
        self.now
    }

    /// Scores each item by how many of the query's words it contains; ties keep history order.
    fn search(&mut self, text: &str, method: SearchMethod, k: u32) -> Result<Vec<Hit>, HostError> {
        self.check(Capability::Search)?;
        self.searches.push((text.to_owned(), method, k));
        let query = words(text);
        let mut hits: Vec<Hit> = self
            .items
            .iter()
            .filter_map(|item| {
                let item_words = words(&item.text);
                let score = query.iter().filter(|w| item_words.contains(w)).count();
                (score > 0).then(|| Hit { item: item.clone(), score: score as f64 })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(k as usize);
        Ok(hits)
    }

    fn recent(&mut self, limit: u32) -> Result<Vec<Item>, HostError> {
        self.check(Capability::Search)?;
        Ok(self.items.iter().take(limit as usize).cloned().collect())
    }

    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, HostError> {
        self.check(Capability::Embed)?;
        self.embedded.push(texts.to_vec());
        Ok(texts.iter().map(|t| toy_embedding(t)).collect())
    }

    fn complete(&mut self, request: &CompletionRequest) -> Result<Completion, HostError> {
        self.check(Capability::Complete)?;
        self.requests.push(request.clone());
        let replier = self.replier.as_mut().ok_or_else(|| not_mocked("complete"))?;
        let texts = (0..request.n.max(1)).map(|_| replier(request)).collect::<Result<Vec<_>, _>>()?;
        Ok(Completion { texts, prompt_tokens: 10, completion_tokens: 5 })
    }

    fn kv_get(&mut self, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        self.check(Capability::Kv)?;
        Ok(self.kv.get(key).map(|(v, _)| v.clone()))
    }

    fn kv_set(&mut self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), HostError> {
        self.check(Capability::Kv)?;
        self.kv.insert(key.to_owned(), (value.to_vec(), ttl));
        Ok(())
    }

    fn kv_delete(&mut self, key: &str) -> Result<(), HostError> {
        self.check(Capability::Kv)?;
        self.kv.remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host;

    #[test]
    fn with_host_restores_the_previous_mock() {
        let ((), _) = with_host(FakeHost::new().at(5.0), || {
            let ((), _) = with_host(FakeHost::new().at(7.0), || assert_eq!(host::now(), 7.0));
            assert_eq!(host::now(), 5.0);
        });
        assert_eq!(host::now(), 0.0);
    }

    #[test]
    fn fake_host_refuses_denied_capabilities() {
        let (r, _) = with_host(FakeHost::new().deny(Capability::Kv), || host::kv_get("a"));
        assert_eq!(r, Err(HostError::NotGranted(Capability::Kv)));
    }

    #[test]
    fn fake_search_ranks_by_shared_words() {
        let items = vec![
            Item::new("1", "m", "rain boots"),
            Item::new("2", "m", "trail running in rain"),
            Item::new("3", "m", "cats"),
        ];
        let (hits, fake) =
            with_host(FakeHost::new().with_items(items), || host::search("Trail rain", SearchMethod::Bm25, 5));
        let ids: Vec<String> = hits.unwrap().into_iter().map(|h| h.item.id).collect();
        assert_eq!(ids, vec!["2", "1"]);
        assert_eq!(fake.searches[0].2, 5);
    }

    #[test]
    fn toy_embeddings_are_unit_length() {
        let v = toy_embedding("hello world");
        assert!((v.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        assert!(toy_embedding("").iter().all(|x| *x == 0.0));
    }
}
