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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use serde_json::json;

    use crate::plugins::{OpenOptions, Registry, LINKED_FILE};

    #[test]
    fn generic_is_linked_ahead_of_the_folders_and_opens_through_the_abi() {
        let reg = Registry::load(&[PathBuf::from("no-such-plugin-folder")]);
        let entry = reg.get("generic").expect("generic is linked");
        assert_eq!(entry.file, Path::new(LINKED_FILE));
        assert!(!entry.is_built_in());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("in.ndjson");
        std::fs::write(&file, "{\"a\": 1}\n").unwrap();
        let conn = reg
            .open("generic", &json!({ "path": file }), OpenOptions::default())
            .expect("opens");
        conn.check().expect("checks");
    }
}
