//! The end of a session: RSET for a transaction left open, then QUIT (in one write when the
//! server pipelines). Neither decides the verdict; both are recorded.

use super::session::ProbeSession;
use mxtrace_net::conn::ConnError;
use mxtrace_proto::model::Stage;
use mxtrace_proto::smtp::reply::Reply;
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
        let deadline = self.quit_deadline();
        let result = self.exchange(&["QUIT"], deadline).await;
        self.close(started, result).await;
    }

    /// RSET and QUIT in one write when the server offers PIPELINING: RFC 2920 lets RSET lead
    /// a group and QUIT end one. One round trip less at the end of every probe that leaves a
    /// transaction open; both start when the group was written, as MAIL and RCPT do.
    pub(super) async fn rset_and_quit(&mut self) {
        let started = Instant::now();
        let deadline = self.stage_deadline();
        let result = self.exchange(&["RSET", "QUIT"], deadline).await;
        self.settle(Stage::Rset, vec!["RSET".into()], started, result);
        let idx = self.log.last();
        self.log.note(idx, "pipelined with QUIT");
        if self.conn.is_none() {
            return;
        }
        let result = self.read_next(self.quit_deadline()).await;
        self.close(started, result).await;
    }

    fn quit_deadline(&self) -> Instant {
        Instant::now() + self.opts.stage_timeout.min(QUIT_WAIT)
    }

    /// Records QUIT's answer and closes: the session is over either way.
    async fn close(&mut self, started: Instant, result: Result<Reply, ConnError>) {
        if let Some(conn) = self.conn.as_mut() {
            conn.shutdown(Instant::now() + Duration::from_millis(200))
                .await;
        }
        self.settle(Stage::Quit, vec!["QUIT".into()], started, result);
        self.conn = None;
    }
}
