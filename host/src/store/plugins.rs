//! The `plugins` table: one JSON record per plugin name.

use redb::ReadableTable;

use super::{PLUGINS, Store, StoreError};
pub use crate::plugin::record::PluginRecord;

impl Store {
    pub fn plugin(&self, name: &str) -> Result<Option<PluginRecord>, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(PLUGINS)?;
        let Some(json) = table.get(name)? else {
            return Ok(None);
        };
        decode(name, json.value()).map(Some)
    }

    pub fn plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let tx = self.read()?;
        let table = tx.open_table(PLUGINS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            let (name, json) = entry?;
            out.push(decode(name.value(), json.value())?);
        }
        Ok(out)
    }

    /// Reads, changes and writes one record in a single transaction.
    pub fn update_plugin<R>(&self, name: &str, change: impl FnOnce(&mut PluginRecord) -> R) -> Result<R, StoreError> {
        let tx = self.write()?;
        let result = {
            let mut table = tx.open_table(PLUGINS)?;
            let mut record = match table.get(name)? {
                Some(json) => decode(name, json.value())?,
                None => PluginRecord::new(name),
            };
            let result = change(&mut record);
            let json = serde_json::to_string(&record).expect("records serialise");
            table.insert(name, json.as_str())?;
            result
        };
        self.commit(tx)?;
        Ok(result)
    }
}

impl Store {
    /// Changes every record in one transaction: one disk flush for all of them.
    pub fn update_all_plugins(&self, mut change: impl FnMut(&mut PluginRecord)) -> Result<(), StoreError> {
        let tx = self.write()?;
        {
            let mut table = tx.open_table(PLUGINS)?;
            let mut records = Vec::new();
            for entry in table.iter()? {
                let (name, json) = entry?;
                records.push(decode(name.value(), json.value())?);
            }
            for mut record in records {
                change(&mut record);
                let json = serde_json::to_string(&record).expect("records serialise");
                table.insert(record.name.as_str(), json.as_str())?;
            }
        }
        self.commit(tx)?;
        Ok(())
    }
}

fn decode(name: &str, json: &str) -> Result<PluginRecord, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::Corrupt { key: name.into(), source })
}
