//! The dependency rules of ARCHITECTURE.md, read from the workspace's manifests: the
//! domain has no I/O crate, adapters depend on the domain only (never on each other, the
//! facade or the server), the facade does not depend on the server, and only the server
//! and the end-to-end tests depend on the server.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Crates whose presence in the domain would mean I/O (or a framework) in the core.
const IO_CRATES: &[&str] = &[
    "tokio",
    "warp",
    "hyper",
    "reqwest",
    "sea-orm",
    "sea-orm-migration",
    "sqlx",
    "instant-acme",
    "rcgen",
    "x509-parser",
    "aws-config",
    "aws-sdk-route53",
    "cloudflare",
    "hickory-resolver",
    "hickory-proto",
    "hickory-net",
    "rustls",
    "argon2",
    "aes-gcm",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifest(dir: &Path) -> toml::Table {
    let path = dir.join("Cargo.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.parse()
        .unwrap_or_else(|e| panic!("{} is not TOML: {e}", path.display()))
}

/// Every workspace member: package name → (directory, normal dependency names, with
/// their package names when renamed).
fn members() -> BTreeMap<String, (String, Vec<String>)> {
    let workspace = manifest(&root());
    let dirs = workspace["workspace"]["members"]
        .as_array()
        .expect("workspace.members");
    let mut members = BTreeMap::new();
    for dir in dirs {
        let dir = dir.as_str().expect("member path");
        let table = manifest(&root().join(dir));
        let name = table["package"]["name"]
            .as_str()
            .expect("package.name")
            .to_owned();
        let deps = table
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .map(|deps| {
                deps.iter()
                    .map(|(key, value)| {
                        value
                            .get("package")
                            .and_then(toml::Value::as_str)
                            .unwrap_or(key)
                            .to_owned()
                    })
                    .collect()
            })
            .unwrap_or_default();
        members.insert(name, (dir.to_owned(), deps));
    }
    members
}

#[test]
fn the_domain_depends_on_no_io_crate() {
    let members = members();
    let (_, deps) = &members["acmeport-domain"];
    let found: Vec<&String> = deps
        .iter()
        .filter(|d| {
            IO_CRATES.contains(&d.as_str()) || d.starts_with("aws-") || d.starts_with("hickory")
        })
        .collect();
    assert!(
        found.is_empty(),
        "acmeport-domain depends on I/O crates: {found:?}"
    );
}

#[test]
fn adapters_depend_on_the_domain_and_no_other_workspace_crate() {
    let members = members();
    let adapters: Vec<(&String, &(String, Vec<String>))> = members
        .iter()
        .filter(|(_, (dir, _))| dir.starts_with("adapters/"))
        .collect();
    assert!(adapters.len() >= 10, "the adapters are found: {adapters:?}");
    for (name, (_, deps)) in adapters {
        let workspace_deps: Vec<&String> = deps
            .iter()
            .filter(|d| members.contains_key(*d) && *d != "acmeport-domain")
            .collect();
        assert!(
            workspace_deps.is_empty(),
            "adapter {name} depends on workspace crates other than the domain: {workspace_deps:?}"
        );
    }
}

#[test]
fn the_facade_is_below_the_server_and_only_the_tests_use_the_server() {
    let members = members();
    let (_, facade) = &members["acmeport"];
    assert!(
        !facade.iter().any(|d| d == "acmeport-server"),
        "the facade depends on the server"
    );
    let (_, server) = &members["acmeport-server"];
    assert!(
        server.iter().any(|d| d == "acmeport"),
        "the server is built on the facade"
    );
    for (name, (_, deps)) in &members {
        if deps.iter().any(|d| d == "acmeport-server") {
            assert_eq!(name, "acmeport-tests", "{name} depends on the server");
        }
    }
}

/// The field lines of `pub struct <name> {` in `source`, or a panic when the struct is not
/// found (so a rename cannot make the check pass silently).
fn struct_fields<'a>(source: &'a str, name: &str) -> Vec<&'a str> {
    let header = format!("pub struct {name} {{");
    let start = source
        .find(&header)
        .unwrap_or_else(|| panic!("`{header}` not found"));
    let body = &source[start + header.len()..];
    let end = body
        .find("\n}")
        .unwrap_or_else(|| panic!("the end of `{header}` not found"));
    body[..end]
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//") && !line.starts_with("#["))
        .collect()
}

#[test]
fn an_orders_state_changes_only_through_its_transitions() {
    let path = root().join("domain/src/models/order.rs");
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let fields = struct_fields(&source, "Order");
    assert!(
        fields.len() >= 5,
        "the fields of `Order` are found: {fields:?}"
    );
    let public: Vec<&&str> = fields
        .iter()
        .filter(|line| line.starts_with("pub ") || line.starts_with("pub("))
        .collect();
    assert!(
        public.is_empty(),
        "`Order` has public fields; its state must change only through its transition \
         methods (read it through accessors, rebuild it with `Order::restore`): {public:?}"
    );
}
