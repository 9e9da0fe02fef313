//! The watch jobs' routes: `GET /v1/jobs`, `POST /v1/jobs/{name}/pause|resume|run`.

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::AppState;
use crate::watch::{JobView, JobsError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs", get(list))
        .route("/v1/jobs/{name}", get(view))
        .route("/v1/jobs/{name}/pause", post(pause))
        .route("/v1/jobs/{name}/resume", post(resume))
        .route("/v1/jobs/{name}/run", post(run))
}

impl IntoResponse for JobsError {
    fn into_response(self) -> Response {
        super::failure(&self)
    }
}

async fn list(State(state): State<AppState>) -> Json<Vec<JobView>> {
    Json(state.jobs.list())
}

async fn view(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<JobView>, JobsError> {
    state.jobs.view(&name).map(Json)
}

async fn pause(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<JobView>, JobsError> {
    state.jobs.pause(&name).map(Json)
}

async fn resume(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<JobView>, JobsError> {
    state.jobs.resume(&name).map(Json)
}

async fn run(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<JobView>, JobsError> {
    state.jobs.run_now(&name).map(Json)
}
