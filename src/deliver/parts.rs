//! The messages of one report: usually one, several when its notes are too long for one
//! Slack message. The outbox keeps them all and how many Slack has accepted, so a restart
//! continues with the next one and never reposts one.

use crate::store::ReportRecord;
use serde_json::Value;

impl ReportRecord {
    /// Fixes the messages to post (the first in `payload`, the rest in `follow_ups`), none
    /// sent yet.
    pub fn set_parts(&mut self, parts: Vec<Value>) {
        let mut parts = parts.into_iter();
        self.payload = parts.next();
        self.follow_ups = parts.collect();
        self.parts_sent = 0;
    }

    /// The next message to post; `None` once all are sent.
    pub fn next_part(&self) -> Option<&Value> {
        match self.parts_sent {
            0 => self.payload.as_ref(),
            n => self.follow_ups.get(n - 1),
        }
    }

    /// How many messages the report takes.
    pub fn parts(&self) -> usize {
        usize::from(self.payload.is_some()) + self.follow_ups.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::store::{Delivery, ReportRecord};
    use crate::window::{OpenWindow, WindowSpec};
    use chrono::DateTime;
    use chrono_tz::Tz;
    use serde_json::json;

    fn record() -> ReportRecord {
        let w = WindowSpec::new(3600, Tz::UTC)
            .unwrap()
            .window_of(DateTime::from_timestamp(1_748_520_000, 0).unwrap());
        ReportRecord::closed(OpenWindow::new(w, w.start), w.end)
    }

    #[test]
    fn parts_go_in_order_and_end() {
        let mut r = record();
        assert_eq!((r.parts(), r.next_part()), (0, None));
        r.set_parts(vec![json!(1), json!(2), json!(3)]);
        assert_eq!(r.parts(), 3);
        for expected in 1..=3 {
            assert_eq!(r.next_part(), Some(&json!(expected)));
            r.parts_sent += 1;
        }
        assert_eq!(r.next_part(), None);
    }

    #[test]
    fn records_stored_before_parts_existed_still_load() {
        let mut stored = serde_json::to_value(record()).unwrap();
        let fields = stored.as_object_mut().unwrap();
        fields.remove("follow_ups");
        fields.remove("parts_sent");
        fields.insert("payload".into(), json!({ "text": "old" }));
        fields.insert("delivery".into(), json!({ "state": "ready" }));
        let r: ReportRecord = serde_json::from_value(stored).unwrap();
        assert_eq!(r.delivery, Delivery::Ready);
        assert_eq!((r.parts(), r.parts_sent), (1, 0));
        assert_eq!(r.next_part(), Some(&json!({ "text": "old" })));
    }
}
