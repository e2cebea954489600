//! The Mesos JSON form of `Resources` (an array of resource objects), the
//! summary dashboards read, and serde through the JSON form.
use serde::{Deserialize, Serialize};

use super::*;

impl Resources {
    /// Parses the Mesos JSON form (an array of resource objects).
    pub fn from_json(json: &str) -> Result<Resources, ModelError> {
        let items: Vec<ResourceJson> = serde_json::from_str(json)
            .map_err(|e| ParseError::new(json_err_pos(json, &e), e.to_string()))?;
        let mut out = Resources::new();
        for (i, item) in items.into_iter().enumerate() {
            let role = match item.role.as_deref() {
                None | Some("") => Role::star(),
                Some(r) => Role::parse(r)
                    .map_err(|e| ModelError::invalid(format!("[{i}].role"), e.to_string()))?,
            };
            let value = match item.kind.as_str() {
                "SCALAR" => {
                    let v = item
                        .scalar
                        .ok_or_else(|| ModelError::invalid(format!("[{i}].scalar"), "missing"))?;
                    Value::Scalar(Scalar::from_f64(v.value).map_err(|e| {
                        ModelError::invalid(format!("[{i}].scalar.value"), e.to_string())
                    })?)
                }
                "RANGES" => {
                    let v = item
                        .ranges
                        .ok_or_else(|| ModelError::invalid(format!("[{i}].ranges"), "missing"))?;
                    for (j, r) in v.range.iter().enumerate() {
                        if r.end < r.begin {
                            return Err(ModelError::invalid(
                                format!("[{i}].ranges.range[{j}]"),
                                "end is below begin",
                            ));
                        }
                    }
                    Value::Ranges(Ranges::from_pairs(v.range.iter().map(|r| (r.begin, r.end))))
                }
                "SET" => {
                    let v = item
                        .set
                        .ok_or_else(|| ModelError::invalid(format!("[{i}].set"), "missing"))?;
                    Value::Set(v.item.into_iter().collect())
                }
                other => {
                    return Err(ModelError::invalid(
                        format!("[{i}].type"),
                        format!("unknown type {other:?}"),
                    ));
                }
            };
            out.push(item.name, role, value);
        }
        out.validate()?;
        Ok(out)
    }

    /// The Mesos JSON form.
    pub fn to_json(&self) -> serde_json::Value {
        let items: Vec<ResourceJson> = self
            .iter()
            .map(|r| {
                let mut j = ResourceJson {
                    name: r.name.to_string(),
                    kind: String::new(),
                    role: Some(r.role.to_string()),
                    scalar: None,
                    ranges: None,
                    set: None,
                };
                match r.value {
                    Value::Scalar(s) => {
                        j.kind = "SCALAR".into();
                        j.scalar = Some(ScalarJson { value: s.as_f64() });
                    }
                    Value::Ranges(rg) => {
                        j.kind = "RANGES".into();
                        j.ranges = Some(RangesJson {
                            range: rg
                                .pairs()
                                .iter()
                                .map(|&(begin, end)| RangeJson { begin, end })
                                .collect(),
                        });
                    }
                    Value::Set(s) => {
                        j.kind = "SET".into();
                        j.set = Some(SetJson {
                            item: s.iter().cloned().collect(),
                        });
                    }
                }
                j
            })
            .collect();
        serde_json::to_value(items).unwrap_or(serde_json::Value::Null)
    }

    /// A compact summary object `{"cpus": 4, "mem": 8192, "ports": "[31000-32000]"}`
    /// over all roles, for status pages.
    pub fn summary_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for name in [CPUS, MEM, DISK, GPUS] {
            m.insert(name.into(), serde_json::json!(self.scalar(name).as_f64()));
        }
        m.insert(PORTS.into(), serde_json::json!(self.ports().to_string()));
        serde_json::Value::Object(m)
    }
}

fn json_err_pos(json: &str, e: &serde_json::Error) -> usize {
    // serde_json reports line/column; turn them into a byte offset.
    let mut pos = 0;
    for (i, line) in json.split_inclusive('\n').enumerate() {
        if i + 1 == e.line() {
            return pos + e.column().saturating_sub(1);
        }
        pos += line.len();
    }
    pos
}

impl Serialize for Resources {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Resources {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        match v {
            serde_json::Value::String(s) => Resources::parse(&s).map_err(serde::de::Error::custom),
            other => Resources::from_json(&other.to_string()).map_err(serde::de::Error::custom),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ResourceJson {
    name: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scalar: Option<ScalarJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ranges: Option<RangesJson>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    set: Option<SetJson>,
}

#[derive(Serialize, Deserialize)]
struct ScalarJson {
    value: f64,
}

#[derive(Serialize, Deserialize)]
struct RangesJson {
    #[serde(default)]
    range: Vec<RangeJson>,
}

#[derive(Serialize, Deserialize)]
struct RangeJson {
    begin: u64,
    end: u64,
}

#[derive(Serialize, Deserialize)]
struct SetJson {
    #[serde(default)]
    item: Vec<String>,
}
