//! `pitwall --version`: the crate version and the commit the binary was built from.

mod common;

#[test]
fn version_names_the_crate_version_and_the_commit() {
    let out = common::pitwall(&["--version"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let want_prefix = format!("pitwall {} (", env!("CARGO_PKG_VERSION"));
    assert!(
        text.starts_with(&want_prefix) && text.ends_with(')'),
        "{text:?}"
    );
    let commit = &text[want_prefix.len()..text.len() - 1];
    // The commit of this checkout (build.rs reruns when HEAD moves); outside git "unknown";
    // a build given PITWALL_GIT_COMMIT shows that (hex).
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    match head {
        Some(h) if std::env::var_os("PITWALL_GIT_COMMIT").is_none() => {
            assert_eq!(commit, h, "{text:?}")
        }
        _ => assert!(
            commit == "unknown" || commit.chars().all(|c| c.is_ascii_hexdigit()),
            "{text:?}"
        ),
    }
}
