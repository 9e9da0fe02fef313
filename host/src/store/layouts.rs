//! The dashboard's saved layouts: which panels, in which order, which series,
//! which time range. Kept in the host, so every browser that opens it sees the
//! same; the page's JSON is stored as it came, within bounds.

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// Name → `{"json": …, "updated_ms": …}`.
pub(super) const LAYOUTS: TableDefinition<&str, &str> = TableDefinition::new("dashboard_layouts");

/// Most layouts kept, and the largest one.
pub const MAX_LAYOUTS: usize = 50;
pub const MAX_LAYOUT_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub name: String,
    /// The page's own JSON object.
    pub json: String,
    pub updated_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct Stored {
    json: String,
    updated_ms: u64,
}

/// The layout's JSON text if `name` and `layout` are acceptable; else why not.
pub fn check(name: &str, layout: &serde_json::Value) -> Result<String, String> {
    let shown = crate::text::line(name, 80);
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_alphanumeric() || " -_.".contains(c)) {
        return Err(format!("layout name '{shown}': use 1 to 64 letters, digits, spaces, '-', '_' or '.'"));
    }
    if !layout.is_object() {
        return Err(format!("layout '{shown}' must be a JSON object"));
    }
    let json = layout.to_string();
    if json.len() > MAX_LAYOUT_BYTES {
        return Err(format!("layout '{shown}' takes {} bytes; at most {MAX_LAYOUT_BYTES}", json.len()));
    }
    Ok(json)
}

impl Store {
    /// Every saved layout, by name.
    pub fn layouts(&self) -> Result<Vec<Layout>, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(LAYOUTS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (name, value) = entry?;
            // A record this version cannot read is left out, not fatal to the page.
            if let Ok(stored) = serde_json::from_str::<Stored>(value.value()) {
                out.push(Layout { name: name.value().to_string(), json: stored.json, updated_ms: stored.updated_ms });
            }
        }
        Ok(out)
    }

    /// Saves (or replaces) layout `name`, JSON checked by [`check`]; false,
    /// saving nothing, when it is new and [`MAX_LAYOUTS`] are kept already.
    pub fn layout_save(&self, name: &str, json: &str, updated_ms: u64) -> Result<bool, StoreError> {
        let tx = self.write()?;
        {
            let mut table = tx.open_table(LAYOUTS)?;
            if table.get(name)?.is_none() && table.len()? as usize >= MAX_LAYOUTS {
                return Ok(false);
            }
            let stored =
                serde_json::to_string(&Stored { json: json.to_string(), updated_ms }).expect("a layout serializes");
            table.insert(name, stored.as_str())?;
        }
        self.commit(tx)?;
        Ok(true)
    }

    /// Deletes layout `name`; whether there was one.
    pub fn layout_remove(&self, name: &str) -> Result<bool, StoreError> {
        let tx = self.write()?;
        let removed = tx.open_table(LAYOUTS)?.remove(name)?.is_some();
        self.commit(tx)?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_are_saved_replaced_listed_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        assert!(store.layouts().unwrap().is_empty());
        store.layout_save("ops", r#"{"range":"1h"}"#, 1).unwrap();
        store.layout_save("ops", r#"{"range":"6h"}"#, 2).unwrap();
        store.layout_save("mine", "{}", 3).unwrap();
        let names: Vec<(String, String)> = store.layouts().unwrap().into_iter().map(|l| (l.name, l.json)).collect();
        assert_eq!(names, [("mine".into(), "{}".into()), ("ops".into(), r#"{"range":"6h"}"#.into())]);
        assert!(store.layout_remove("ops").unwrap());
        assert!(!store.layout_remove("ops").unwrap());
    }

    #[test]
    fn bad_names_big_layouts_and_too_many_are_refused() {
        let object = serde_json::json!({"range": "1h"});
        for bad in ["", "a/b", "<script>", &"x".repeat(65)] {
            assert!(check(bad, &object).unwrap_err().contains("layout name"), "{bad:?}");
        }
        assert!(check("ok", &serde_json::json!([1])).unwrap_err().contains("JSON object"));
        let big = serde_json::json!({"x": "y".repeat(MAX_LAYOUT_BYTES)});
        assert!(check("big", &big).unwrap_err().contains("at most"));
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("m.redb")).unwrap();
        for i in 0..MAX_LAYOUTS {
            store.layout_save(&format!("l{i}"), "{}", 0).unwrap();
        }
        assert!(!store.layout_save("one more", "{}", 0).unwrap());
        assert!(store.layout_save("l0", r#"{"kept":true}"#, 1).unwrap());
    }
}
