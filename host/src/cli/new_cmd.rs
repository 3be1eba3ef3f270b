//! `posbridge new connector NAME`: a standalone Cargo project for a connector, from the
//! templates in `new_cmd/templates/` (compiled in with `include_str!`).

use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum NewCommand {
    /// A standalone Cargo project for a connector: typed config, source/sink skeletons on the
    /// SDK's REST toolkit, a conformance test and a README; it builds to a loadable cdylib.
    Connector(NewConnectorArgs),
}

#[derive(Debug, Args)]
pub struct NewConnectorArgs {
    /// The connector's name: lowercase letters, digits and '-', starting with a letter.
    pub name: String,
    /// A source (reads records). The default when none of --source, --sink, --actions is given.
    #[arg(long)]
    pub source: bool,
    /// A sink (writes records, idempotently).
    #[arg(long)]
    pub sink: bool,
    /// Actions (named operations).
    #[arg(long)]
    pub actions: bool,
    /// The project folder to create (must not exist or be empty). Default: ./NAME
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// Build against this posbridge-plugin-api folder instead of the published crate. Default:
    /// the checkout's own `plugin-api` when DIR is inside a posbridge checkout.
    #[arg(long, value_name = "PATH")]
    pub sdk: Option<PathBuf>,
}

mod template {
    pub const CARGO_TOML: &str = include_str!("new_cmd/templates/Cargo.toml.tmpl");
    pub const GITIGNORE: &str = include_str!("new_cmd/templates/gitignore.tmpl");
    pub const README: &str = include_str!("new_cmd/templates/README.md.tmpl");
    pub const LIB: &str = include_str!("new_cmd/templates/lib.rs.tmpl");
    pub const SOURCE: &str = include_str!("new_cmd/templates/source.rs.tmpl");
    pub const SINK: &str = include_str!("new_cmd/templates/sink.rs.tmpl");
    pub const ACTIONS: &str = include_str!("new_cmd/templates/actions.rs.tmpl");
    pub const CONFORMANCE: &str = include_str!("new_cmd/templates/conformance.rs.tmpl");
    pub const CONFORMANCE_SOURCE: &str =
        include_str!("new_cmd/templates/conformance_source.rs.tmpl");
    pub const CONFORMANCE_SINK: &str = include_str!("new_cmd/templates/conformance_sink.rs.tmpl");
}

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaffold {
    pub name: String,
    pub source: bool,
    pub sink: bool,
    pub actions: bool,
    /// The `posbridge-plugin-api` dependency line's inside, e.g. `version = "0.1.0", path = "…"`.
    pub sdk_dependency: String,
}

/// Whether `name` can name a connector and a crate.
pub fn valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn type_name(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

impl Scaffold {
    fn lib_name(&self) -> String {
        format!("posbridge_{}", self.name.replace('-', "_"))
    }

    fn kinds(&self) -> Vec<&'static str> {
        let mut k = Vec::new();
        if self.source {
            k.push("source");
        }
        if self.sink {
            k.push("sink");
        }
        if self.actions {
            k.push("actions");
        }
        k
    }

    fn render(&self, template: &str) -> String {
        let stream = match (self.source, self.sink) {
            (true, true) => ".stream(posbridge_plugin_api::StreamDecl::read_write(\"products\"))",
            (true, false) => ".stream(posbridge_plugin_api::StreamDecl::read(\"products\"))",
            (false, true) => ".stream(posbridge_plugin_api::StreamDecl::write(\"products\"))",
            (false, false) => "",
        };
        let mut decls = stream.to_string();
        if self.actions {
            if !decls.is_empty() {
                decls.push_str("\n        ");
            }
            decls.push_str(
                ".action(\"get_product\", \"One product by its id, as the vendor answers it\")",
            );
        }
        let mut mods = String::new();
        let mut fns = String::new();
        let mut parts = String::new();
        let mut tests = String::new();
        let mut flags = String::new();
        let kind = |on: bool,
                    module: &str,
                    method: &str,
                    tr: &str,
                    mods: &mut String,
                    fns: &mut String| {
            if on {
                mods.push_str(&format!("\nmod {module};"));
                fns.push_str(&format!(
                    "\n    fn {method}(&self) -> Option<&dyn posbridge_plugin_api::{tr}> {{\n        Some(self)\n    }}\n"
                ));
            }
        };
        kind(
            self.source,
            "source",
            "source",
            "Source",
            &mut mods,
            &mut fns,
        );
        kind(self.sink, "sink", "sink", "Sink", &mut mods, &mut fns);
        kind(
            self.actions,
            "actions",
            "actions",
            "Actions",
            &mut mods,
            &mut fns,
        );
        if self.source {
            mods.push_str("\npub use source::to_product;");
            parts.push_str("- `src/source.rs`: `GET /v1/products` page by page, mapped to canonical products.\n");
            tests.push_str(
                ", a read resumed from every cursor with no gap and no duplicate, exact money",
            );
            flags.push_str(" --source");
        }
        if self.sink {
            parts.push_str("- `src/sink.rs`: `POST /v1/products` per record, with the host's idempotency key.\n");
            tests.push_str(", a batch written twice stored once");
            flags.push_str(" --sink");
        }
        if self.actions {
            parts.push_str("- `src/actions.rs`: the action `get_product`.\n");
            flags.push_str(" --actions");
        }
        if !mods.is_empty() {
            mods.push('\n');
        }
        let kinds_text = self.kinds().join(", ");
        let lib_file = format!(
            "{}{}{}",
            std::env::consts::DLL_PREFIX,
            self.lib_name(),
            std::env::consts::DLL_SUFFIX
        );
        let pairs = [
            (
                "{{crate_name}}",
                format!("posbridge-connector-{}", self.name),
            ),
            ("{{lib_name}}", self.lib_name()),
            ("{{lib_file}}", lib_file),
            ("{{type_name}}", type_name(&self.name)),
            ("{{sdk_dependency}}", self.sdk_dependency.clone()),
            ("{{stream_decls}}", decls),
            ("{{mod_lines}}", mods),
            ("{{connector_fns}}", fns),
            ("{{readme_parts}}", parts),
            ("{{readme_tests}}", tests),
            ("{{kinds_text}}", kinds_text),
            ("{{flags}}", flags),
            (
                "{{source_tests}}",
                if self.source {
                    template::CONFORMANCE_SOURCE.to_string()
                } else {
                    String::new()
                },
            ),
            (
                "{{sink_tests}}",
                if self.sink {
                    template::CONFORMANCE_SINK.to_string()
                } else {
                    String::new()
                },
            ),
        ];
        let mut out = template.to_string();
        for (k, v) in &pairs {
            out = out.replace(k, v);
        }
        // Last: the snippets above carry these too.
        out = out.replace("{{type_name}}", &type_name(&self.name));
        out = out.replace("{{lib_name}}", &self.lib_name());
        out = out.replace("{{vendor}}", &self.name);
        out.replace("{{name}}", &self.name)
    }

    /// The project's files: relative path and content.
    pub fn files(&self) -> Vec<(PathBuf, String)> {
        let mut f = vec![
            ("Cargo.toml", self.render(template::CARGO_TOML)),
            (".gitignore", self.render(template::GITIGNORE)),
            ("README.md", self.render(template::README)),
            ("src/lib.rs", self.render(template::LIB)),
            ("tests/conformance.rs", self.render(template::CONFORMANCE)),
        ];
        if self.source {
            f.push(("src/source.rs", self.render(template::SOURCE)));
        }
        if self.sink {
            f.push(("src/sink.rs", self.render(template::SINK)));
        }
        if self.actions {
            f.push(("src/actions.rs", self.render(template::ACTIONS)));
        }
        f.into_iter().map(|(p, c)| (PathBuf::from(p), c)).collect()
    }
}

/// The posbridge checkout `dir` is inside, if any: the nearest ancestor holding this plugin API.
fn enclosing_checkout(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|a| {
            std::fs::read_to_string(a.join("plugin-api/Cargo.toml"))
                .is_ok_and(|t| t.contains("name = \"posbridge-plugin-api\""))
        })
        .map(Path::to_path_buf)
}

/// `to` relative to `from` (both absolute), e.g. `../../plugin-api`.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    out
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// The inside of the dependency line: by version, with a path when there is a local SDK.
fn sdk_dependency(project: &Path, sdk: Option<&Path>) -> anyhow::Result<String> {
    let version = env!("CARGO_PKG_VERSION");
    let local = match sdk {
        Some(p) => {
            let p = absolute(p)?;
            if !p.join("Cargo.toml").is_file() {
                bail!("--sdk {}: no Cargo.toml there", p.display());
            }
            Some(p)
        }
        None => {
            let parent = project.parent().unwrap_or(project);
            let parent = parent
                .canonicalize()
                .unwrap_or_else(|_| parent.to_path_buf());
            // Relative inside the checkout: the project moves with it.
            enclosing_checkout(&parent).map(|c| relative(project, &c.join("plugin-api")))
        }
    };
    Ok(match local {
        Some(p) => format!(
            "version = \"{version}\", path = {}",
            toml_string(&p.to_string_lossy())
        ),
        None => format!("version = \"{version}\""),
    })
}

fn toml_string(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

pub fn run(cmd: &NewCommand) -> anyhow::Result<i32> {
    let NewCommand::Connector(a) = cmd;
    if !valid_name(&a.name) {
        bail!(
            "connector name {:?}: use lowercase letters, digits and '-', starting with a letter",
            a.name
        );
    }
    let dir = absolute(a.path.as_deref().unwrap_or(Path::new(&a.name)))?;
    if dir.exists()
        && std::fs::read_dir(&dir)
            .with_context(|| format!("{} is not a folder", dir.display()))?
            .next()
            .is_some()
    {
        bail!("{} exists and is not empty", dir.display());
    }
    let none = !(a.source || a.sink || a.actions);
    let parent = dir.parent().unwrap_or(&dir);
    std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
    let canonical_dir = parent
        .canonicalize()
        .unwrap_or_else(|_| parent.to_path_buf())
        .join(dir.file_name().unwrap_or_default());
    let scaffold = Scaffold {
        name: a.name.clone(),
        source: a.source || none,
        sink: a.sink,
        actions: a.actions,
        sdk_dependency: sdk_dependency(&canonical_dir, a.sdk.as_deref())?,
    };
    for (rel, content) in scaffold.files() {
        let path = dir.join(&rel);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("create {}", p.display()))?;
        }
        std::fs::write(&path, content).with_context(|| format!("write {}", path.display()))?;
        println!("created {}", path.display());
    }
    println!(
        "\nconnector {} ({}) in {}; posbridge-plugin-api: {{ {} }}\nnext: cd {} && cargo test && cargo build --release",
        scaffold.name,
        scaffold.kinds().join(", "),
        dir.display(),
        scaffold.sdk_dependency,
        dir.display()
    );
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scaffold(source: bool, sink: bool, actions: bool) -> Scaffold {
        Scaffold {
            name: "acme-pos".into(),
            source,
            sink,
            actions,
            sdk_dependency: "version = \"0.1.0\"".into(),
        }
    }

    #[test]
    fn every_placeholder_is_filled_in_every_combination() {
        for bits in 1..8u8 {
            let s = scaffold(bits & 1 != 0, bits & 2 != 0, bits & 4 != 0);
            for (path, content) in s.files() {
                assert!(
                    !content.contains("{{"),
                    "{bits}: {} keeps a placeholder:\n{content}",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn the_parts_asked_for_are_generated_and_wired() {
        let s = scaffold(false, true, true);
        let files = s.files();
        let names: Vec<String> = files.iter().map(|(p, _)| p.display().to_string()).collect();
        assert!(names.contains(&"src/sink.rs".to_string()), "{names:?}");
        assert!(names.contains(&"src/actions.rs".to_string()), "{names:?}");
        assert!(!names.contains(&"src/source.rs".to_string()), "{names:?}");
        let lib = &files.iter().find(|(p, _)| p.ends_with("lib.rs")).unwrap().1;
        assert!(
            lib.contains("mod sink;") && lib.contains("fn sink(&self)"),
            "{lib}"
        );
        assert!(!lib.contains("fn source(&self)"), "{lib}");
        assert!(lib.contains("pub struct AcmePos"), "{lib}");
        assert!(lib.contains("StreamDecl::write(\"products\")"), "{lib}");
        assert!(lib.contains(".action(\"get_product\""), "{lib}");
        let cargo = &files[0].1;
        assert!(cargo.contains("name = \"posbridge_acme_pos\""), "{cargo}");
        assert!(
            cargo.contains("crate-type = [\"cdylib\", \"rlib\"]"),
            "{cargo}"
        );
    }

    #[test]
    fn names_and_paths() {
        assert!(valid_name("acme-pos2"));
        for bad in ["", "Acme", "2pos", "acme_pos", "acme-", "a--b", "acme pos"] {
            assert!(!valid_name(bad), "{bad:?}");
        }
        assert_eq!(type_name("acme-pos-x"), "AcmePosX");
        assert_eq!(
            relative(Path::new("/w/examples/vendor"), Path::new("/w/plugin-api")),
            PathBuf::from("../../plugin-api")
        );
    }

    #[test]
    fn inside_a_checkout_the_checkout_s_plugin_api_is_used() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("plugin-api")).unwrap();
        std::fs::write(
            root.path().join("plugin-api/Cargo.toml"),
            "[package]\nname = \"posbridge-plugin-api\"\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("examples")).unwrap();
        let project = root.path().canonicalize().unwrap().join("examples/acme");
        let dep = sdk_dependency(&project, None).unwrap();
        assert!(dep.ends_with("path = \"../../plugin-api\""), "{dep}");
        let outside = tempfile::tempdir().unwrap();
        let dep = sdk_dependency(&outside.path().join("acme"), None).unwrap();
        assert_eq!(dep, format!("version = \"{}\"", env!("CARGO_PKG_VERSION")));
    }
}
