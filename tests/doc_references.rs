//! Every path, link, section and command that the README and `docs/` name
//! exists: a moved file or a renamed heading fails here, not in a reader's
//! hands. Also the `docs/...` paths that source comments and scripts cite.
#![allow(clippy::unwrap_used, reason = "test helpers panic on failure")]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use regex::Regex;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The README and every page in `docs/`.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md")];
    for entry in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    pages.sort();
    pages
}

/// GitHub's anchor for a heading: lowercase, punctuation dropped, spaces to
/// hyphens.
fn anchor(heading: &str) -> String {
    let text = heading.trim_start_matches('#').trim().to_lowercase();
    text.chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// A page's headings (outside code blocks), as written.
fn headings(text: &str) -> Vec<String> {
    let mut fenced = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if line.starts_with("```") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') {
            found.push(line.trim_start_matches('#').trim().to_string());
        }
    }
    found
}

/// Paths in the repository a text names: `scripts/x.sh`, `src/a/b.rs:12`.
fn repo_paths(text: &str) -> Vec<String> {
    let pattern = Regex::new(
        r"(?:^|[\s`(\[])((?:src|tests|scripts|docs|deploy|examples|config|bench|fuzz|\.ci)/[A-Za-z0-9_./-]*[A-Za-z0-9_])",
    )
    .unwrap();
    pattern.captures_iter(text).map(|c| c[1].to_string()).collect()
}

fn missing_paths(text: &str) -> Vec<String> {
    repo_paths(text).into_iter().filter(|path| !root().join(path).exists()).collect()
}

#[test]
fn every_link_in_the_readme_and_docs_leads_somewhere() {
    let link = Regex::new(r"\]\(([^)\s]+)\)").unwrap();
    let mut broken = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for target in link.captures_iter(&text).map(|c| c[1].to_string()) {
            if target.starts_with("http://") || target.starts_with("https://") {
                continue;
            }
            let (file, section) = target.split_once('#').unwrap_or((&target, ""));
            let file =
                if file.is_empty() { page.clone() } else { page.parent().unwrap().join(file) };
            if !file.exists() {
                broken.push(format!("{}: {target}: no such file", page.display()));
                continue;
            }
            if !section.is_empty() {
                let anchors: BTreeSet<String> = headings(&std::fs::read_to_string(&file).unwrap())
                    .iter()
                    .map(|h| anchor(h))
                    .collect();
                if !anchors.contains(section) {
                    broken.push(format!("{}: {target}: no such heading", page.display()));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_repository_path_the_readme_and_docs_name_exists() {
    let mut missing = Vec::new();
    for page in pages() {
        let text = std::fs::read_to_string(&page).unwrap();
        for path in missing_paths(&text) {
            missing.push(format!("{}: {path}", page.display()));
        }
    }
    assert!(missing.is_empty(), "paths named but not in the repository:\n{}", missing.join("\n"));
}

/// `see "Tests"`, `(README "Performance")`, `docs/x.md, "Section"`: a
/// section named in quotes is a heading of the page it points at (the same
/// page when it names none).
#[test]
fn every_section_named_in_quotes_is_a_heading() {
    let named = Regex::new(
        r#"(?:(?P<page>README|docs/[a-z-]+\.md|[a-z-]+\.md)`?[,:]? \(?|[Ss]ee )"(?P<section>[A-Z][^"]{2,60})""#,
    )
    .unwrap();
    let mut wrong = Vec::new();
    let mut sources: Vec<PathBuf> = pages();
    for dir in ["src", "scripts", "tests"] {
        collect(&root().join(dir), &mut sources);
    }
    sources.push(root().join("Dockerfile"));
    for source in sources {
        if source.ends_with("tests/doc_references.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&source).unwrap();
        for found in named.captures_iter(&text) {
            let target = match found.name("page").map(|m| m.as_str()) {
                Some("README") => root().join("README.md"),
                Some(page) if page.starts_with("docs/") => root().join(page),
                Some(page) => root().join("docs").join(page),
                None if source.extension().is_some_and(|e| e == "md") => source.clone(),
                None => continue,
            };
            // A name broken over comment lines: drop the comment markers.
            let words = found["section"].split_whitespace();
            let words = words.filter(|word| !["//!", "///", "//", "#"].contains(word));
            let section = words.collect::<Vec<_>>().join(" ");
            let section = section.as_str();
            let Ok(text) = std::fs::read_to_string(&target) else {
                wrong.push(format!("{}: {}: no such page", source.display(), target.display()));
                continue;
            };
            if !headings(&text).iter().any(|h| h == section) {
                wrong.push(format!(
                    "{}: \"{section}\" is not a heading of {}",
                    source.display(),
                    target.strip_prefix(root()).unwrap_or(&target).display()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "sections named but not found:\n{}", wrong.join("\n"));
}

/// Source files and scripts cite `docs/` pages by path.
#[test]
fn every_page_cited_in_source_and_scripts_exists() {
    let mut sources = Vec::new();
    for dir in ["src", "scripts", "deploy", "examples", "config"] {
        collect(&root().join(dir), &mut sources);
    }
    sources.push(root().join("Dockerfile"));
    let mut missing = Vec::new();
    for source in sources {
        let Ok(text) = std::fs::read_to_string(&source) else { continue };
        // Scripts also name files they make (bench output, scratch
        // folders): only the pages they cite are checked.
        let cited = missing_paths(&text).into_iter().filter(|path| path.starts_with("docs/"));
        for path in cited {
            missing.push(format!("{}: {path}", source.display()));
        }
    }
    assert!(missing.is_empty(), "paths cited but not in the repository:\n{}", missing.join("\n"));
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "node_modules" || name.starts_with('.') || name == "target" || name == "corpus" {
            continue;
        }
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| {
            ["rs", "sh", "py", "md", "mjs", "js", "toml", "yml", "yaml"]
                .contains(&&*e.to_string_lossy())
        }) {
            out.push(path);
        }
    }
}

#[test]
fn the_checker_sees_a_missing_path_and_a_wrong_anchor() {
    assert_eq!(
        missing_paths("run `scripts/no-such-script.sh` first"),
        ["scripts/no-such-script.sh"]
    );
    assert!(missing_paths("run `scripts/test.sh`, see src/server.rs:12").is_empty());
    assert_eq!(anchor("## Where everything else is"), "where-everything-else-is");
    assert_eq!(anchor("Proxy mode: shape live traffic"), "proxy-mode-shape-live-traffic");
}
