//! What `monitor generate schema DIR` writes from the field table (`sink::schema`):
//! `alert-schema.md`, the documentation of every line, with example lines the real
//! renderers write ([`markdown`]), and `siem/`, the Elasticsearch component and index
//! templates ([`template`]). A unit test keeps the committed copies in docs/ equal to them.

mod markdown;
mod template;

/// The files `monitor generate schema DIR` writes, as (path under DIR, contents).
pub fn generated() -> Vec<(&'static str, String)> {
    vec![
        ("alert-schema.md", markdown::markdown()),
        ("siem/monitor-ecs-mappings.json", template::component()),
        ("siem/monitor-index-template.json", template::index()),
    ]
}

/// Write [`generated`] under `dir`; returns the files written.
pub fn write_docs(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut written = Vec::new();
    for (name, text) in generated() {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `monitor generate schema docs` has been run after the table changed.
    #[test]
    fn the_committed_docs_are_the_generated_ones() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs");
        for (name, text) in generated() {
            let committed = std::fs::read_to_string(docs.join(name)).unwrap_or_default();
            assert!(
                committed == text,
                "docs/{name} is not what the field table makes: run `cargo run -p monitor -- generate schema docs`"
            );
        }
    }
}
