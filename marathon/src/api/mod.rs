//! Marathon's v2 REST API. For now its JSON layer only: wire types
//! ([`json`]), their conversion to and from the planner's `App`
//! ([`convert`]) and Marathon's error bodies ([`error`]).
pub mod convert;
pub mod error;
pub mod json;

#[cfg(test)]
mod tests;
