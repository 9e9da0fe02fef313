//! Reading Server-Sent Events: the `event`, `id` and `data` fields of each
//! event, as the host's stream sends them (one `data` line per event).

use std::io::BufRead;

/// One event as received.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    pub event: Option<String>,
    pub id: Option<String>,
    pub data: String,
}

/// The next event, skipping comments (keep-alives); `None` at the end of the stream.
pub fn next_event(reader: &mut impl BufRead) -> std::io::Result<Option<Event>> {
    let mut event = Event::default();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if !event.data.is_empty() {
                return Ok(Some(event));
            }
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value).to_string();
        match field {
            "event" => event.event = Some(value),
            "id" => event.id = Some(value),
            "data" if event.data.is_empty() => event.data = value,
            "data" => event.data = format!("{}\n{value}", event.data),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_read_with_their_fields_and_comments_skipped() {
        let text = ": keep-alive\n\nevent: progress\nid: p3.a1\ndata: {\"a\":1}\n\ndata:x\ndata: y\n\n";
        let mut reader = text.as_bytes();
        let first = next_event(&mut reader).unwrap().unwrap();
        assert_eq!(first, Event { event: Some("progress".into()), id: Some("p3.a1".into()), data: "{\"a\":1}".into() });
        assert_eq!(next_event(&mut reader).unwrap().unwrap().data, "x\ny");
        assert_eq!(next_event(&mut reader).unwrap(), None);
    }
}
