//! The HTTP listener: health, readiness and Prometheus metrics today; chat callbacks and
//! intake webhooks join this one router.

use crate::ctx::Ctx;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::RequestBodyTimeoutLayer;

pub mod server;

/// The process-wide Prometheus recorder (the `metrics` facade is global by design).
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        // Delivery latency (queued → delivered) as a histogram with buckets, so alerts can
        // use histogram_quantile across replicas.
        let buckets = [0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0];
        let matcher = metrics_exporter_prometheus::Matcher::Full("carebot_delivery_latency_seconds".into());
        let builder = match builder.set_buckets_for_metric(matcher, &buckets) {
            Ok(b) => b,
            Err(_) => PrometheusBuilder::new(),
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder was installed first; then our counters are not
        // exported but /metrics still serves the database gauges.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

pub fn router(ctx: Arc<Ctx>) -> Router {
    metrics_handle();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .route("/ingest/webhook/{source}", axum::routing::post(crate::sources::webhook::receive))
        .route(
            "/ingest/facebook",
            axum::routing::get(crate::sources::facebook::verify_subscription).post(crate::sources::facebook::receive),
        )
        .route("/slack/commands", axum::routing::post(crate::chat::slack::inbound::http_command))
        .route("/slack/interactions", axum::routing::post(crate::chat::slack::inbound::http_interaction))
        .route("/slack/events", axum::routing::post(crate::chat::slack::inbound::http_event))
        .route("/discord/interactions", axum::routing::post(crate::chat::discord::inbound::http_interaction))
        .layer(RequestBodyLimitLayer::new(ctx.settings.http.body_limit_bytes))
        .layer(RequestBodyTimeoutLayer::new(ctx.settings.http.body_read_timeout.as_std()))
        .with_state(ctx)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ctx): State<Arc<Ctx>>) -> impl IntoResponse {
    // Answers within a second even while the database is down (the pool would wait).
    match ctx.store.ping(std::time::Duration::from_millis(800)).await {
        Ok(()) => (StatusCode::OK, format!("ready; playbooks {}\n", ctx.playbook_version())),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n".to_string())
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', " ")
}

/// Database-derived gauges (true across restarts and replicas) plus process counters.
pub async fn render_metrics(ctx: &Ctx) -> anyhow::Result<String> {
    let mut out = String::new();
    out.push_str("# HELP carebot_cases Cases by state.\n# TYPE carebot_cases gauge\n");
    let by_state = ctx.store.cases_by_state().await?;
    for s in crate::domain::CaseState::ALL {
        let n = by_state.iter().find(|(k, _)| k == s.as_str()).map(|(_, n)| *n).unwrap_or(0);
        out.push_str(&format!("carebot_cases{{state=\"{}\"}} {n}\n", s.as_str()));
    }
    out.push_str("# HELP carebot_mentions_stored Mentions stored, by source.\n# TYPE carebot_mentions_stored gauge\n");
    for (source, n) in ctx.store.mentions_by_source().await? {
        out.push_str(&format!("carebot_mentions_stored{{source=\"{}\"}} {n}\n", label(&source)));
    }
    let (pending, failed) = ctx.store.outbox_depth().await?;
    out.push_str(
        "# HELP carebot_outbox_pending Chat messages waiting for delivery.\n# TYPE carebot_outbox_pending gauge\n",
    );
    out.push_str(&format!("carebot_outbox_pending {pending}\n"));
    out.push_str("# HELP carebot_outbox_failed Chat messages given up on.\n# TYPE carebot_outbox_failed gauge\n");
    out.push_str(&format!("carebot_outbox_failed {failed}\n"));
    out.push_str("# HELP carebot_outbox_lane_pending Messages waiting, per delivery lane (channel or DM).\n# TYPE carebot_outbox_lane_pending gauge\n");
    out.push_str("# HELP carebot_outbox_lane_oldest_seconds Age of the oldest waiting message, per lane.\n# TYPE carebot_outbox_lane_oldest_seconds gauge\n");
    let now = ctx.now_ms();
    for (lane, count, oldest) in ctx.store.pending_by_lane().await? {
        let lane = label(&lane);
        out.push_str(&format!("carebot_outbox_lane_pending{{lane=\"{lane}\"}} {count}\n"));
        let age = (now - oldest).max(0) as f64 / 1000.0;
        out.push_str(&format!("carebot_outbox_lane_oldest_seconds{{lane=\"{lane}\"}} {age:.3}\n"));
    }
    out.push_str("# HELP carebot_source_last_success_timestamp_seconds Last successful poll, per polled source.\n# TYPE carebot_source_last_success_timestamp_seconds gauge\n");
    out.push_str("# HELP carebot_source_failing 1 while a polled source's last poll failed.\n# TYPE carebot_source_failing gauge\n");
    for c in ctx.store.source_cursors().await? {
        if let Some(t) = c.last_success_at {
            out.push_str(&format!(
                "carebot_source_last_success_timestamp_seconds{{source=\"{}\"}} {}\n",
                label(&c.source),
                t / 1000
            ));
        }
        let failing = c.last_error.is_some() && c.last_error_at >= c.last_success_at;
        out.push_str(&format!("carebot_source_failing{{source=\"{}\"}} {}\n", label(&c.source), i64::from(failing)));
    }
    out.push_str(&sla_gauges(ctx, now).await?);
    out.push_str(&metrics_handle().render());
    Ok(out)
}

/// The gauges to alert on: overdue cases by situation and clock, the oldest unclaimed P1,
/// and the share of response clocks met over the last 24 hours (README: "Alerting").
async fn sla_gauges(ctx: &Ctx, now: i64) -> anyhow::Result<String> {
    let mut out = String::from(
        "# HELP carebot_cases_overdue Unresolved cases past a due time, by situation and clock.\n# TYPE carebot_cases_overdue gauge\n",
    );
    for (situation, counts) in ctx.store.overdue_counts(now).await? {
        for (clock, n) in ["acknowledge", "first_response", "resolve"].iter().zip(counts) {
            out.push_str(&format!(
                "carebot_cases_overdue{{situation=\"{}\",clock=\"{clock}\"}} {n}\n",
                label(&situation)
            ));
        }
    }
    out.push_str("# HELP carebot_oldest_unclaimed_p1_age_seconds Age of the oldest unclaimed P1 case (0: none).\n# TYPE carebot_oldest_unclaimed_p1_age_seconds gauge\n");
    let age = ctx.store.oldest_unclaimed_p1().await?.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
    out.push_str(&format!("carebot_oldest_unclaimed_p1_age_seconds {age:.0}\n"));
    let (due, met) = ctx.store.response_clocks_due(now - 86_400_000, now).await?;
    out.push_str("# HELP carebot_response_clocks_due_24h First-response clocks that came due in the last 24 h.\n# TYPE carebot_response_clocks_due_24h gauge\n");
    out.push_str(&format!("carebot_response_clocks_due_24h {due}\n"));
    out.push_str("# HELP carebot_within_sla_share_24h Share of those answered by their due time (1 when none came due).\n# TYPE carebot_within_sla_share_24h gauge\n");
    let share = if due == 0 { 1.0 } else { met as f64 / due as f64 };
    out.push_str(&format!("carebot_within_sla_share_24h {share:.3}\n"));
    Ok(out)
}

async fn metrics_text(State(ctx): State<Arc<Ctx>>) -> impl IntoResponse {
    match render_metrics(&ctx).await {
        Ok(body) => (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "metrics failed");
            (StatusCode::SERVICE_UNAVAILABLE, [(header::CONTENT_TYPE, "text/plain")], "metrics unavailable\n".into())
        }
    }
}
