//! etcd's Alarm request, decoded into what to do with the replicated
//! alarms (`agora_kv::AlarmMember`), and alarms encoded back.

use agora_kv::{AlarmAction, AlarmKind, AlarmMember, Command};

use crate::ApiError;
use crate::pb::etcdserverpb as pb;

/// What an Alarm request asks.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// List the raised alarms of one kind (`None`: of every kind).
    List(Option<AlarmKind>),
    /// Raise or clear one alarm through the log.
    Change(Command),
    /// Clear an alarm of a kind Agora never raises: nothing to change.
    Nothing,
}

pub(crate) fn decode(request: pb::AlarmRequest) -> Result<Decoded, ApiError> {
    use pb::alarm_request::AlarmAction as Wire;
    let action = Wire::try_from(request.action).map_err(|_| {
        ApiError::InvalidArgument(format!("unknown alarm action {}", request.action))
    })?;
    let kind = pb::AlarmType::try_from(request.alarm)
        .map_err(|_| ApiError::InvalidArgument(format!("unknown alarm type {}", request.alarm)))?;
    let ours = match kind {
        pb::AlarmType::Nospace => Some(AlarmKind::NoSpace),
        pb::AlarmType::None | pb::AlarmType::Corrupt => None,
    };
    let change = |action| match ours {
        Some(alarm) => Decoded::Change(Command::Alarm {
            action,
            member: AlarmMember {
                member_id: request.member_id,
                alarm,
            },
        }),
        None => Decoded::Nothing,
    };
    match (action, kind) {
        (Wire::Get, pb::AlarmType::None) => Ok(Decoded::List(None)),
        (Wire::Get, _) => Ok(match ours {
            Some(kind) => Decoded::List(Some(kind)),
            None => Decoded::Nothing,
        }),
        (Wire::Activate, pb::AlarmType::None) => Err(ApiError::InvalidArgument(
            "alarm type NONE names no alarm to raise".to_string(),
        )),
        (Wire::Activate, pb::AlarmType::Corrupt) => {
            Err(ApiError::Unsupported("raising the CORRUPT alarm"))
        }
        (Wire::Activate, _) => Ok(change(AlarmAction::Activate)),
        (Wire::Deactivate, _) => Ok(change(AlarmAction::Deactivate)),
    }
}

/// An alarm as etcd's Status lists it among its errors (the text form of
/// its `AlarmMember`, which etcdctl prints as it is).
pub(crate) fn text(alarm: &AlarmMember) -> String {
    let wire = encode(alarm);
    let kind = pb::AlarmType::try_from(wire.alarm).unwrap_or(pb::AlarmType::None);
    format!("memberID:{} alarm:{} ", wire.member_id, kind.as_str_name())
}

pub(crate) fn encode(alarm: &AlarmMember) -> pb::AlarmMember {
    let kind = match alarm.alarm {
        AlarmKind::NoSpace => pb::AlarmType::Nospace,
    };
    pb::AlarmMember {
        member_id: alarm.member_id,
        alarm: kind as i32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pb::alarm_request::AlarmAction as Wire;

    fn request(action: Wire, alarm: pb::AlarmType) -> pb::AlarmRequest {
        pb::AlarmRequest {
            action: action as i32,
            member_id: 7,
            alarm: alarm as i32,
        }
    }

    #[test]
    fn requests_decode_as_etcd_reads_them() {
        use pb::AlarmType::{Corrupt, None as NoType, Nospace};
        let nospace_of_7 = AlarmMember {
            member_id: 7,
            alarm: AlarmKind::NoSpace,
        };
        let change = |action| {
            Ok(Decoded::Change(Command::Alarm {
                action,
                member: nospace_of_7,
            }))
        };
        assert_eq!(decode(request(Wire::Get, NoType)), Ok(Decoded::List(None)));
        assert_eq!(
            decode(request(Wire::Get, Nospace)),
            Ok(Decoded::List(Some(AlarmKind::NoSpace)))
        );
        assert_eq!(decode(request(Wire::Get, Corrupt)), Ok(Decoded::Nothing));
        assert_eq!(
            decode(request(Wire::Activate, Nospace)),
            change(AlarmAction::Activate)
        );
        assert_eq!(
            decode(request(Wire::Deactivate, Nospace)),
            change(AlarmAction::Deactivate)
        );
        assert_eq!(
            decode(request(Wire::Deactivate, Corrupt)),
            Ok(Decoded::Nothing)
        );
        assert!(matches!(
            decode(request(Wire::Activate, NoType)),
            Err(ApiError::InvalidArgument(_))
        ));
        assert_eq!(
            decode(request(Wire::Activate, Corrupt)),
            Err(ApiError::Unsupported("raising the CORRUPT alarm"))
        );
        let garbage = pb::AlarmRequest {
            action: 9,
            ..request(Wire::Get, NoType)
        };
        assert!(matches!(decode(garbage), Err(ApiError::InvalidArgument(_))));
        let garbage = pb::AlarmRequest {
            alarm: 9,
            ..request(Wire::Get, NoType)
        };
        assert!(matches!(decode(garbage), Err(ApiError::InvalidArgument(_))));
        assert_eq!(encode(&nospace_of_7).alarm, Nospace as i32);
        assert_eq!(text(&nospace_of_7), "memberID:7 alarm:NOSPACE ");
    }
}
