//! `GET /tasks/{task_id}/logs?stream=stdout|stderr&offset=N&length=N` or
//! `&tail=N`: bytes of the task's sandbox log, answered like Mesos
//! `/files/read` as `{"data": "...", "offset": N}` (data is lossy UTF-8).
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

use axum::extract::{Path, Query, State as AxState};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Http, error};
use crate::event_loop::Command;

/// Most bytes one request returns (Mesos `/files/read` pages too).
pub(crate) const MAX_READ: u64 = 1024 * 1024;

/// Which log and which window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogQuery {
    /// true = stderr.
    pub(crate) stderr: bool,
    pub(crate) window: Window,
}

/// The requested byte window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Window {
    /// From `offset`, at most `length` bytes.
    Range { offset: u64, length: Option<u64> },
    /// The last `n` bytes.
    Tail(u64),
}

/// Parses the query; errors name the parameter.
pub(crate) fn parse_query(q: &HashMap<String, String>) -> Result<LogQuery, String> {
    let num = |name: &str| -> Result<Option<u64>, String> {
        q.get(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    format!("invalid parameter '{name}': {v:?} is not a non-negative integer")
                })
            })
            .transpose()
    };
    let stderr = match q.get("stream").map(String::as_str) {
        None | Some("stdout") => false,
        Some("stderr") => true,
        Some(other) => {
            return Err(format!(
                "invalid parameter 'stream': {other:?} is not stdout or stderr"
            ));
        }
    };
    if let Some(unknown) = q
        .keys()
        .find(|k| !["stream", "offset", "length", "tail"].contains(&k.as_str()))
    {
        return Err(format!("invalid parameter '{unknown}': unknown parameter"));
    }
    let (offset, length, tail) = (num("offset")?, num("length")?, num("tail")?);
    let window = match (tail, offset) {
        (Some(_), Some(_)) => {
            return Err("invalid parameter 'tail': cannot be combined with offset".to_string());
        }
        (Some(n), None) => Window::Tail(n),
        (None, offset) => Window::Range {
            offset: offset.unwrap_or(0),
            length,
        },
    };
    Ok(LogQuery { stderr, window })
}

/// The `(offset, length)` to read from a file of `size` bytes.
pub(crate) fn resolve(window: Window, size: u64) -> (u64, u64) {
    match window {
        Window::Tail(n) => {
            let n = n.min(MAX_READ);
            (size.saturating_sub(n), n.min(size))
        }
        Window::Range { offset, length } => {
            let offset = offset.min(size);
            let avail = size - offset;
            (offset, length.unwrap_or(MAX_READ).min(MAX_READ).min(avail))
        }
    }
}

pub(crate) async fn logs(
    AxState(http): AxState<Http>,
    Path(task_id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    let q = match parse_query(&params) {
        Ok(q) => q,
        Err(msg) => return error(StatusCode::BAD_REQUEST, msg),
    };
    let Some(sandbox) = http
        .ask(|reply| Command::Sandbox {
            task_id: task_id.clone(),
            reply,
        })
        .await
    else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "the agent is stopping");
    };
    let Some(sandbox) = sandbox else {
        return error(StatusCode::NOT_FOUND, format!("unknown task {task_id:?}"));
    };
    let file = sandbox.join(if q.stderr {
        agora_runtime::STDERR_FILE
    } else {
        agora_runtime::STDOUT_FILE
    });
    let read = tokio::task::spawn_blocking(move || -> std::io::Result<(u64, Vec<u8>)> {
        let mut f = match std::fs::File::open(&file) {
            Ok(f) => f,
            // No output yet.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, Vec::new())),
            Err(e) => return Err(e),
        };
        let size = f.metadata()?.len();
        let (offset, length) = resolve(q.window, size);
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::with_capacity(usize::try_from(length).unwrap_or(0));
        f.take(length).read_to_end(&mut buf)?;
        Ok((offset, buf))
    })
    .await;
    match read {
        Ok(Ok((offset, data))) => {
            axum::Json(json!({ "data": String::from_utf8_lossy(&data), "offset": offset }))
                .into_response()
        }
        Ok(Err(e)) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the log: {e}"),
        ),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading the log: {e}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn queries_parse_and_errors_name_the_parameter() {
        assert_eq!(
            parse_query(&q(&[])).unwrap(),
            LogQuery {
                stderr: false,
                window: Window::Range {
                    offset: 0,
                    length: None
                }
            }
        );
        assert_eq!(
            parse_query(&q(&[("stream", "stderr"), ("tail", "10")]))
                .unwrap()
                .window,
            Window::Tail(10)
        );
        assert!(
            parse_query(&q(&[("offset", "-1")]))
                .unwrap_err()
                .contains("'offset'")
        );
        assert!(
            parse_query(&q(&[("stream", "both")]))
                .unwrap_err()
                .contains("'stream'")
        );
        assert!(
            parse_query(&q(&[("length", "x")]))
                .unwrap_err()
                .contains("'length'")
        );
        assert!(
            parse_query(&q(&[("bogus", "1")]))
                .unwrap_err()
                .contains("'bogus'")
        );
        assert!(
            parse_query(&q(&[("tail", "1"), ("offset", "1")]))
                .unwrap_err()
                .contains("'tail'")
        );
    }

    #[test]
    fn windows_stay_inside_the_file() {
        assert_eq!(resolve(Window::Tail(4), 10), (6, 4));
        assert_eq!(resolve(Window::Tail(40), 10), (0, 10));
        assert_eq!(
            resolve(
                Window::Range {
                    offset: 3,
                    length: Some(4)
                },
                10
            ),
            (3, 4)
        );
        assert_eq!(
            resolve(
                Window::Range {
                    offset: 8,
                    length: Some(4)
                },
                10
            ),
            (8, 2)
        );
        assert_eq!(
            resolve(
                Window::Range {
                    offset: 80,
                    length: None
                },
                10
            ),
            (10, 0)
        );
    }
}
