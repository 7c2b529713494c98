//! The one `bindgen!` of the plugin world (`plugins/wit/tailor.wit`): host-side types and
//! traits. Every import is async (a capability may wait on a store or an LLM) and trappable
//! (the host may end a call that abuses it); exports are async so that a call can be cancelled
//! at its deadline even while the plugin waits in a host call.

wasmtime::component::bindgen!({
    world: "stage",
    path: "../plugins/wit",
    imports: { default: async | trappable },
    exports: { default: async },
});

pub use tailor::plugin::types;
