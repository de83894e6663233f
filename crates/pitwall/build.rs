//! Puts the git commit into the binary for `pitwall --version` (env `PITWALL_GIT_COMMIT` at
//! compile time): the variable `PITWALL_GIT_COMMIT` when set (the container build, which has no
//! `.git`, passes it), else `git rev-parse --short HEAD`, else "unknown". Never fails: a build
//! outside a git checkout, or without git, says "unknown".

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// A commit id as given: hex digits only, at most 40 (anything else is "unknown").
fn clean(commit: &str) -> Option<String> {
    let c = commit.trim();
    (!c.is_empty() && c.len() <= 40 && c.chars().all(|ch| ch.is_ascii_hexdigit()))
        .then(|| c.to_string())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PITWALL_GIT_COMMIT");
    let given = std::env::var("PITWALL_GIT_COMMIT").ok();
    let commit = match given.as_deref().and_then(clean) {
        Some(c) => c,
        None => {
            // Rebuild when HEAD moves: the files git keeps it in (a worktree's HEAD is in its
            // own git dir, the branch ref in the common one). Only files that exist: a missing
            // one would make cargo run this script on every build.
            let mut watch: Vec<PathBuf> = Vec::new();
            if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
                watch.push(head.into());
            }
            if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
                if let Some(p) = git(&["rev-parse", "--git-path", &r]) {
                    watch.push(p.into());
                }
            }
            if let Some(p) = git(&["rev-parse", "--git-path", "packed-refs"]) {
                watch.push(p.into());
            }
            for p in watch.iter().filter(|p| p.exists()) {
                println!("cargo:rerun-if-changed={}", p.display());
            }
            git(&["rev-parse", "--short", "HEAD"])
                .and_then(|c| clean(&c))
                .unwrap_or_else(|| "unknown".to_string())
        }
    };
    println!("cargo:rustc-env=PITWALL_GIT_COMMIT={commit}");
}
