//! The `dispatch.v1.Admin` gRPC service: session figures, graceful end,
//! kill, notices to viewers, drain and broker status.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dispatch_proto::v1 as pb;
use dispatch_proto::v1::admin_server::{Admin, AdminServer};
use tonic::{Request, Response, Status};

use crate::error::SessionError;
use crate::procfs::{ProcessTotals, session_totals};
use crate::session::Session;
use crate::state::BrokerState;
use crate::sync::lock;

/// Grace period between SIGHUP and SIGKILL when none is given.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(5);
/// Longest grace period accepted.
pub const MAX_GRACE: Duration = Duration::from_secs(60);
/// Longest notice, in characters.
pub const MAX_NOTICE_CHARS: usize = 1024;

/// Implements `dispatch.v1.Admin`.
#[derive(Clone, Debug)]
pub struct AdminService {
    state: BrokerState,
    /// Previous CPU sample per session leader, for `cpu_percent`.
    cpu_samples: Arc<Mutex<HashMap<u32, (Instant, f64)>>>,
}

impl AdminService {
    pub fn new(state: BrokerState) -> Self {
        Self {
            state,
            cpu_samples: Arc::default(),
        }
    }

    pub fn into_server(self) -> AdminServer<Self> {
        AdminServer::new(self)
    }

    fn figures(&self, session: &Session) -> pb::SessionFigures {
        let stats = session.stats();
        let proto = session.to_proto();
        let process = stats.running.then(|| {
            let totals = session_totals(stats.pid);
            let age = Duration::from_millis(
                (dispatch_proto::time::now_ms() - proto.created_at_ms).max(1) as u64,
            );
            pb::ProcessFigures {
                processes: totals.processes,
                cpu_seconds: totals.cpu_seconds,
                cpu_percent: self.cpu_percent(stats.pid, &totals, age),
                rss_bytes: totals.rss_bytes,
            }
        });
        pb::SessionFigures {
            session: Some(proto),
            bytes_in: stats.bytes_in,
            bytes_out: stats.bytes_out,
            idle_ms: stats.idle.as_millis() as u64,
            process,
        }
    }

    /// CPU use since the previous sample of this session, or since it
    /// started.
    fn cpu_percent(&self, leader: u32, totals: &ProcessTotals, age: Duration) -> f64 {
        let now = Instant::now();
        let mut samples = lock(&self.cpu_samples);
        let (since, before) = samples
            .insert(leader, (now, totals.cpu_seconds))
            .filter(|(at, cpu)| {
                now.duration_since(*at) > Duration::from_millis(50) && *cpu <= totals.cpu_seconds
            })
            .map_or((age, 0.0), |(at, cpu)| (now.duration_since(at), cpu));
        let running: std::collections::HashSet<u32> = self
            .state
            .registry
            .list()
            .iter()
            .map(|s| s.stats().pid)
            .collect();
        samples.retain(|pid, _| running.contains(pid));
        100.0 * (totals.cpu_seconds - before) / since.as_secs_f64().max(0.001)
    }

    fn running_figures(&self) -> Vec<pb::SessionFigures> {
        self.state
            .registry
            .list()
            .iter()
            .filter(|s| s.is_running())
            .map(|s| self.figures(s))
            .collect()
    }

    fn running_session(&self, id: &str) -> Result<Arc<Session>, Status> {
        let session = self.state.registry.get(id)?;
        if !session.is_running() {
            return Err(SessionError::Ended(session.id().to_string()).into());
        }
        Ok(session)
    }
}

/// A notice made safe to show: one line, no control characters.
fn clean_notice(text: &str) -> Result<String, Status> {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = text.trim();
    if text.is_empty() {
        return Err(Status::invalid_argument("notice text is empty"));
    }
    if text.chars().count() > MAX_NOTICE_CHARS {
        return Err(Status::invalid_argument(format!(
            "notice longer than {MAX_NOTICE_CHARS} characters"
        )));
    }
    Ok(text.to_owned())
}

#[tonic::async_trait]
impl Admin for AdminService {
    async fn list_session_figures(
        &self,
        request: Request<pb::ListSessionFiguresRequest>,
    ) -> Result<Response<pb::ListSessionFiguresResponse>, Status> {
        let include_ended = request.into_inner().include_ended;
        let sessions = self
            .state
            .registry
            .list()
            .iter()
            .filter(|s| include_ended || s.is_running())
            .map(|s| self.figures(s))
            .collect();
        Ok(Response::new(pb::ListSessionFiguresResponse { sessions }))
    }

    async fn end_session_gracefully(
        &self,
        request: Request<pb::AdminSessionRequest>,
    ) -> Result<Response<pb::SessionFigures>, Status> {
        let request = request.into_inner();
        let grace = match request.grace_ms {
            0 => DEFAULT_GRACE,
            ms => Duration::from_millis(u64::from(ms)),
        };
        if grace > MAX_GRACE {
            return Err(Status::invalid_argument(format!(
                "grace_ms above {}",
                MAX_GRACE.as_millis()
            )));
        }
        let session = self.running_session(&request.session_id)?;
        tracing::info!(session = %session.id(), grace_ms = grace.as_millis() as u64, "admin: ending session");
        session.end(Some(grace)).await;
        Ok(Response::new(self.figures(&session)))
    }

    async fn kill_session(
        &self,
        request: Request<pb::AdminSessionRequest>,
    ) -> Result<Response<pb::SessionFigures>, Status> {
        let session = self.running_session(&request.into_inner().session_id)?;
        tracing::info!(session = %session.id(), "admin: killing session");
        session.end(None).await;
        Ok(Response::new(self.figures(&session)))
    }

    async fn send_notice(
        &self,
        request: Request<pb::SendNoticeRequest>,
    ) -> Result<Response<pb::SendNoticeResponse>, Status> {
        let request = request.into_inner();
        let text = clean_notice(&request.text)?;
        let targets = if request.session_id.is_empty() {
            self.state
                .registry
                .list()
                .into_iter()
                .filter(|s| s.is_running())
                .collect()
        } else {
            vec![self.running_session(&request.session_id)?]
        };
        let mut reply = pb::SendNoticeResponse::default();
        for session in &targets {
            session.notify_viewers(&text);
            reply.sessions += 1;
            reply.viewers += session.stats().viewers as u32;
        }
        tracing::info!(
            sessions = reply.sessions,
            viewers = reply.viewers,
            "admin: notice sent"
        );
        Ok(Response::new(reply))
    }

    async fn drain(
        &self,
        request: Request<pb::DrainRequest>,
    ) -> Result<Response<pb::DrainResponse>, Status> {
        let draining = !request.into_inner().resume;
        self.state.registry.set_draining(draining);
        tracing::info!(draining, "admin: drain");
        Ok(Response::new(pb::DrainResponse {
            draining,
            running: self.running_figures(),
        }))
    }

    async fn get_status(
        &self,
        _request: Request<pb::GetStatusRequest>,
    ) -> Result<Response<pb::BrokerStatus>, Status> {
        let counts = self.state.counts();
        Ok(Response::new(pb::BrokerStatus {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_ms: self.state.uptime().as_millis() as u64,
            started_at_ms: self.state.started_at_ms(),
            draining: self.state.registry.is_draining(),
            sessions_running: counts.running as u32,
            sessions_ended: counts.ended as u32,
            sessions_created_total: self.state.metrics().sessions_created(),
            viewers: counts.viewers as u32,
            max_sessions: self.state.registry.config().max_sessions as u32,
            conversations: Some(self.state.conversations().status()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_are_one_clean_line() {
        assert_eq!(
            clean_notice(" back\x1b[2Jin 5\nminutes ").unwrap(),
            "back [2Jin 5 minutes"
        );
        assert!(clean_notice(" \n ").is_err());
        assert!(clean_notice(&"x".repeat(MAX_NOTICE_CHARS + 1)).is_err());
    }
}
