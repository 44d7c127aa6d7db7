//! The HTTP accept loop, with the limits `axum::serve` does not offer: a header-read
//! timeout, an idle timeout on every connection, a cap on open connections kept below the
//! process's open-file limit, and a graceful shutdown that lets in-flight requests finish
//! (for at most `shutdown_grace`). Idle or slow clients cannot hold the listener hostage:
//! they are closed by the timeouts, and connections over the cap are closed at once
//! instead of failing later with "Too many open files".

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Descriptors kept back for the database pool, outgoing API calls and files.
const RESERVED_FDS: u64 = 128;

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// 0: derived from the open-file limit.
    pub max_connections: usize,
    pub shutdown_grace: Duration,
}

/// The soft open-file limit of this process (Linux: `/proc/self/limits`).
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.trim_start_matches("Max open files").split_whitespace().next()?.parse().ok()
}

/// How many connections to accept at once: the configured number, never more than the
/// open-file limit less a reserve.
pub fn connection_cap(configured: usize, fd_limit: Option<u64>) -> usize {
    let derived = fd_limit.map(|l| l.saturating_sub(RESERVED_FDS).max(16)).unwrap_or(1024);
    let derived = usize::try_from(derived).unwrap_or(usize::MAX);
    if configured == 0 {
        derived
    } else {
        configured.min(derived)
    }
}

/// Serves `router` on `listener` until `stop` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let fd_limit = open_file_limit();
    let cap = connection_cap(limits.max_connections, fd_limit);
    tracing::info!(max_connections = cap, open_file_limit = ?fd_limit, "HTTP connection cap");
    let permits = Arc::new(Semaphore::new(cap));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    builder.http2().timer(TokioTimer::new());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // EMFILE and friends: keep serving the connections we have.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = async { let _ = stop.wait_for(|s| *s).await; } => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            metrics::counter!("carebot_http_connections_refused_total").increment(1);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let mut timed = tokio_io_timeout::TimeoutStream::new(stream);
        timed.set_read_timeout(Some(limits.idle_timeout));
        timed.set_write_timeout(Some(limits.idle_timeout));
        let io = TokioIo::new(Box::pin(timed));
        let service = TowerToHyperService::new(router.clone());
        let conn = graceful.watch(builder.serve_connection_with_upgrades(io, service).into_owned());
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!("stopped with requests still in flight after the shutdown grace period");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(connection_cap(0, Some(1024)), 896);
        assert_eq!(connection_cap(5000, Some(1024)), 896);
        assert_eq!(connection_cap(100, Some(1024)), 100);
        assert_eq!(connection_cap(0, None), 1024);
        assert_eq!(connection_cap(0, Some(20)), 16);
    }

    #[test]
    fn the_open_file_limit_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(open_file_limit().is_some_and(|n| n > 0));
        }
    }
}
