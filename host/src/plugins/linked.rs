//! Connectors linked into the host, for benchmarks only (feature `bench-static-connectors`,
//! off by default): the production host never links a plugin. Each is registered from the
//! very root module its library exports, so a run differs from the library's only in `dlopen`
//! (issue 11, target 4; `bench/abi.sh`, `docs/decisions/011-static-connectors-for-benchmarks.md`).

use posbridge_plugin_api::abi::PluginModuleRef;
use posbridge_plugin_api::sdk::export::root_module;

/// The root modules of the connectors linked into this host.
pub fn linked() -> Vec<PluginModuleRef> {
    vec![root_module::<posbridge_generic::GenericConnector>()]
}
