//! Configuration documents: TOML files, dotted `--set key=value` overrides, and the
//! defaults shipped in `tasks/*.toml`.

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use std::path::Path;
use toml::{Table, Value};

/// The task files embedded in the binary, the one place shipped defaults come from:
/// `extract.toml` is the base of every task document, and the `[svm]` of `voc07_svm.toml`
/// lies under every task's `[svm]`.
const SHIPPED: &[(&str, &str)] = &[
    ("extract.toml", include_str!("../tasks/extract.toml")),
    ("voc07_svm.toml", include_str!("../tasks/voc07_svm.toml")),
];

/// The shipped task file `name` (`extract.toml`, `voc07_svm.toml`) as a document.
pub fn shipped(name: &str) -> Result<Table> {
    let (_, text) = SHIPPED
        .iter()
        .find(|(n, _)| *n == name)
        .with_context(|| format!("internal: no shipped task file {name}"))?;
    parse_table(text).with_context(|| format!("internal: the shipped tasks/{name} is invalid"))
}

/// Reads a TOML file into a table, naming the file in any error.
pub fn read_table(path: &Path) -> Result<Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    parse_table(&text).with_context(|| format!("invalid TOML in {}", path.display()))
}

/// Reads a task or config file whose optional `base = "other.toml"` (relative to the file)
/// names a file it overrides: the base is read (recursively), then this file merged over it.
pub fn read_layered(path: &Path) -> Result<Table> {
    read_layered_depth(path, 0)
}

fn read_layered_depth(path: &Path, depth: usize) -> Result<Table> {
    if depth > 8 {
        bail!(
            "{}: `base` files nest more than 8 deep (a cycle?)",
            path.display()
        );
    }
    let mut top = read_table(path)?;
    let Some(base) = top.remove("base") else {
        return Ok(top);
    };
    let base = base
        .as_str()
        .with_context(|| format!("{}: `base` must be a path string", path.display()))?;
    let base_path = path.parent().unwrap_or(Path::new(".")).join(base);
    let mut doc = read_layered_depth(&base_path, depth + 1)
        .with_context(|| format!("in the base of {}", path.display()))?;
    merge(&mut doc, top);
    Ok(doc)
}

/// Parses TOML text into a table.
pub fn parse_table(text: &str) -> Result<Table> {
    Ok(text.parse::<Table>()?)
}

/// Merges `top` into `base`: tables merge key by key, any other value replaces.
pub fn merge(base: &mut Table, top: Table) {
    for (key, value) in top {
        match (base.get_mut(&key), value) {
            (Some(Value::Table(b)), Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(key, v);
            }
        }
    }
}

/// Applies one `key.path=value` override. The value is read as TOML (`256`, `true`,
/// `[1, 2]`, `"x"`), and as a bare string when it does not parse (`none`, `cuda:0`).
pub fn set(doc: &mut Table, assignment: &str) -> Result<()> {
    let (path, raw) = assignment
        .split_once('=')
        .with_context(|| format!("--set expects key=value, got `{assignment}`"))?;
    let value = format!("v = {raw}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(raw.to_string()));
    let keys: Vec<&str> = path.trim().split('.').collect();
    let (last, parents) = keys.split_last().context("--set with an empty key")?;
    let mut table = doc;
    for key in parents {
        let entry = table
            .entry(key.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        table = match entry {
            Value::Table(t) => t,
            _ => bail!("--set {path}: `{key}` is a value, not a table"),
        };
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// Applies every override in order.
pub fn set_all(doc: &mut Table, assignments: &[String]) -> Result<()> {
    assignments.iter().try_for_each(|a| set(doc, a))
}

/// Deserialises a table (or one of its sub-tables) into a typed config, naming the section.
pub fn section<T: DeserializeOwned>(doc: &Table, name: &str) -> Result<T> {
    let value = doc
        .get(name)
        .cloned()
        .with_context(|| format!("config has no [{name}] section"))?;
    value
        .try_into()
        .with_context(|| format!("invalid [{name}] section"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_parses_toml_values_and_bare_strings() {
        let mut doc = parse_table("[transform]\nresize = 256\n").unwrap();
        set(&mut doc, "transform.resize=none").unwrap();
        set(&mut doc, "transform.size=227").unwrap();
        set(&mut doc, "data.classes=[\"cat\", \"dog\"]").unwrap();
        assert_eq!(doc["transform"]["resize"].as_str(), Some("none"));
        assert_eq!(doc["transform"]["size"].as_integer(), Some(227));
        assert_eq!(doc["data"]["classes"].as_array().unwrap().len(), 2);
        assert!(set(&mut doc, "transform.size.x=1").is_err());
        assert!(set(&mut doc, "novalue").is_err());
    }

    #[test]
    fn merge_is_deep() {
        let mut base = parse_table("[a]\nx = 1\ny = 2\n").unwrap();
        merge(&mut base, parse_table("[a]\ny = 3\n").unwrap());
        assert_eq!(base["a"]["x"].as_integer(), Some(1));
        assert_eq!(base["a"]["y"].as_integer(), Some(3));
    }
}
