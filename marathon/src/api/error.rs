//! The API's errors as Marathon answers them: a status code and a JSON body,
//! in one place (`traits.raml`, `MarathonExceptionMapper`; mesos-marathon.md
//! §2.4). Plain data: the HTTP layer (to come) writes `status` and `body`.
use agora_marathon_planner::{DeploymentId, PathId, Violation};
use serde_json::{Value, json};
use thiserror::Error;

/// Why an API call failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApiError {
    /// 400: the body is not JSON, or a field has the wrong JSON type.
    /// `path` is the top-level field (`/cpus`) or `/` when unknown;
    /// `message` is serde's, with line and column.
    #[error("Invalid JSON at {path}: {message}")]
    MalformedJson {
        /// Marathon-style path of the offending field.
        path: String,
        /// What the JSON parser said.
        message: String,
    },
    /// 422: well-formed JSON that breaks Marathon's rules, every field at once.
    #[error("Object is not valid ({} fields)", .0.len())]
    Invalid(Vec<Violation>),
    /// 404: no such app.
    #[error("App '{0}' does not exist")]
    AppNotFound(PathId),
    /// 409: an app with this id exists already (POST).
    #[error("An app with id [{0}] already exists.")]
    AppExists(PathId),
    /// 409: running deployments touch the app (and `force` was not given).
    #[error("App is locked by deployments {0:?}")]
    AppLocked(Vec<DeploymentId>),
    /// 404: no such deployment.
    #[error("DeploymentPlan {0} does not exist")]
    DeploymentNotFound(String),
    /// 404: no such task (of that app).
    #[error("Task '{0}' does not exist")]
    TaskNotFound(String),
    /// 404: the app has no such version.
    #[error("App '{0}' does not exist in version {1}")]
    VersionNotFound(PathId, String),
    /// 404: no such group.
    #[error("Group '{0}' does not exist")]
    GroupNotFound(PathId),
    /// 422: the deployment cannot be planned (dependency cycle, unknown
    /// dependency).
    #[error("{0}")]
    Unplannable(String),
    /// 503: no leader is known, or the leader cannot be reached.
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status code Marathon answers with.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::MalformedJson { .. } => 400,
            ApiError::Invalid(_) => 422,
            ApiError::AppNotFound(_)
            | ApiError::DeploymentNotFound(_)
            | ApiError::TaskNotFound(_)
            | ApiError::VersionNotFound(..)
            | ApiError::GroupNotFound(_) => 404,
            ApiError::AppExists(_) | ApiError::AppLocked(_) => 409,
            ApiError::Unplannable(_) => 422,
            ApiError::Unavailable(_) => 503,
        }
    }

    /// The JSON body Marathon answers with.
    pub fn body(&self) -> Value {
        match self {
            ApiError::MalformedJson { path, message } => json!({
                "message": "Invalid JSON",
                "details": [{"path": path, "errors": [message]}],
            }),
            ApiError::Invalid(violations) => json!({
                "message": "Object is not valid",
                "details": details(violations),
            }),
            ApiError::AppNotFound(id) => json!({"message": format!("App '{id}' does not exist")}),
            ApiError::AppExists(id) => {
                json!({"message": format!("An app with id [{id}] already exists.")})
            }
            ApiError::DeploymentNotFound(_)
            | ApiError::TaskNotFound(_)
            | ApiError::VersionNotFound(..)
            | ApiError::GroupNotFound(_)
            | ApiError::Unplannable(_)
            | ApiError::Unavailable(_) => json!({"message": self.to_string()}),
            ApiError::AppLocked(ids) => json!({
                "message": "App is locked by one or more deployments. Override with the option '?force=true'. View details at '/v2/deployments/<DEPLOYMENT_ID>'.",
                "deployments": ids.iter().map(|d| json!({"id": d.0})).collect::<Vec<_>>(),
            }),
        }
    }

    /// `(status, body)`, for the HTTP layer.
    pub fn to_response(&self) -> (u16, Value) {
        (self.status(), self.body())
    }
}

/// Marathon's `details`: one entry per path, in first-seen order, with every
/// distinct message for that path.
fn details(violations: &[Violation]) -> Vec<Value> {
    let mut merged: Vec<(&str, Vec<&str>)> = Vec::new();
    for v in violations {
        let idx = match merged.iter().position(|(p, _)| *p == v.path) {
            Some(i) => i,
            None => {
                merged.push((&v.path, Vec::new()));
                merged.len() - 1
            }
        };
        if let Some((_, errors)) = merged.get_mut(idx) {
            for e in &v.errors {
                if !errors.contains(&e.as_str()) {
                    errors.push(e);
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|(path, errors)| json!({"path": path, "errors": errors}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_marathons() {
        let e = ApiError::Invalid(vec![
            Violation::at("/cpus", "got 0.0, expected 0.001 or more"),
            Violation::at("/mem", "got -1, expected 0 or more"),
            Violation::at("/cpus", "second"),
            Violation::at("/cpus", "second"),
        ]);
        assert_eq!(
            e.to_response(),
            (
                422,
                json!({"message": "Object is not valid", "details": [
                    {"path": "/cpus", "errors": ["got 0.0, expected 0.001 or more", "second"]},
                    {"path": "/mem", "errors": ["got -1, expected 0 or more"]},
                ]})
            )
        );
        let id = PathId::parse("/x").unwrap();
        assert_eq!(
            ApiError::AppNotFound(id.clone()).to_response(),
            (404, json!({"message": "App '/x' does not exist"}))
        );
        assert_eq!(ApiError::AppExists(id).status(), 409);
        let (status, body) =
            ApiError::AppLocked(vec![DeploymentId("97c136bf".into())]).to_response();
        assert_eq!(status, 409);
        assert_eq!(body["deployments"], json!([{"id": "97c136bf"}]));
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .starts_with("App is locked by one or more deployments.")
        );
        let (status, body) = ApiError::MalformedJson {
            path: "/".into(),
            message: "EOF while parsing an object at line 1 column 1".into(),
        }
        .to_response();
        assert_eq!(status, 400);
        assert_eq!(body["message"], "Invalid JSON");
        assert_eq!(body["details"][0]["path"], "/");
    }
}
