//! The end of a session: RSET for a transaction left open, then QUIT. Neither decides the
//! verdict; both are recorded.

use super::session::ProbeSession;
use mxtrace_proto::model::Stage;
use std::time::Duration;
use tokio::time::Instant;

/// How long QUIT waits for its 221: the transaction is over, so a slow server is not waited on.
const QUIT_WAIT: Duration = Duration::from_secs(2);

impl ProbeSession<'_> {
    pub(super) async fn rset(&mut self) {
        self.command(Stage::Rset, "RSET", "RSET").await;
    }

    pub(super) async fn quit(&mut self) {
        if self.conn.is_none() {
            return;
        }
        let started = Instant::now();
        let deadline = Instant::now() + self.opts.stage_timeout.min(QUIT_WAIT);
        let result = self.exchange(&["QUIT"], deadline).await;
        if let Some(conn) = self.conn.as_mut() {
            conn.shutdown(Instant::now() + Duration::from_millis(200))
                .await;
        }
        self.settle(Stage::Quit, vec!["QUIT".into()], started, result);
        self.conn = None;
    }
}
