//! The agent link on the master's port: HTTP and gRPC still answer beside
//! it, and bad input on a link gets an error frame naming the problem (or
//! a closed connection for bytes that are not frames), never a crash or a
//! change of state.
use std::time::Duration;

use agora_proto::link::{AgentLink, FrameReader, FrameWriter, LINK_MAGIC, MAX_FRAME_BYTES};
use agora_proto::v1;
use agora_proto::v1::link_frame::Frame;
use agora_tests::{SimAgent, SimAgentConfig, TestMaster, eventually};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(10);

/// The master's answer on a link after `frames`: an error frame's code and
/// message, or `None` if it closed the link without one.
async fn answer_to(master: &TestMaster, frames: &[v1::LinkFrame]) -> Option<(i32, String)> {
    let mut link = AgentLink::connect(&master.host_port(), WAIT).await.ok()?;
    for f in frames {
        link.writer.send_now(f).await.ok()?;
    }
    loop {
        match tokio::time::timeout(WAIT, link.reader.next()).await {
            Ok(Ok(Some(v1::LinkFrame {
                frame: Some(Frame::Error(e)),
            }))) => return Some((e.code, e.message)),
            Ok(Ok(Some(_))) => continue,
            _ => return None,
        }
    }
}

fn register(info: Option<v1::AgentInfo>) -> v1::LinkFrame {
    v1::LinkFrame {
        frame: Some(Frame::Register(v1::RegisterRequest {
            agent_info: info,
            ..Default::default()
        })),
    }
}

fn agent_info() -> v1::AgentInfo {
    v1::AgentInfo {
        hostname: "h".into(),
        port: 5051,
        resources: agora_proto::convert::resources_to_wire(&agora_model::Resources::cpus_mem_disk(
            1.0, 128.0, 0.0,
        )),
        ..Default::default()
    }
}

#[tokio::test]
async fn bad_frames_are_refused_with_the_reason_and_the_master_carries_on() {
    let master = TestMaster::start().await;
    let invalid = tonic::Code::InvalidArgument as i32;

    // A registration without the agent's description.
    let (code, message) = answer_to(&master, &[register(None)]).await.unwrap();
    assert_eq!((code, message.as_str()), (invalid, "agent_info: missing"));

    // Anything but Register first.
    let pong = v1::LinkFrame {
        frame: Some(Frame::Agent(v1::AgentMessage {
            message: Some(v1::agent_message::Message::Pong(v1::agent_message::Pong {
                seq: 1,
            })),
        })),
    };
    let (code, message) = answer_to(&master, std::slice::from_ref(&pong))
        .await
        .unwrap();
    assert_eq!(code, invalid);
    assert!(message.contains("must be Register"), "{message}");

    // A valid registration, then something other than Hello.
    let (code, message) = answer_to(&master, &[register(Some(agent_info())), pong])
        .await
        .unwrap();
    assert_eq!(code, invalid);
    assert!(message.contains("must be Hello"), "{message}");

    // A Hello for a session the master never gave out.
    let (code, message) = answer_to(
        &master,
        &[
            register(Some(agent_info())),
            v1::LinkFrame {
                frame: Some(Frame::Agent(v1::AgentMessage {
                    message: Some(v1::agent_message::Message::Hello(
                        v1::agent_message::Hello {
                            agent_id: "no-such-agent".into(),
                            session_id: uuid::Uuid::new_v4().to_string(),
                        },
                    )),
                })),
            },
        ],
    )
    .await
    .unwrap();
    assert_ne!(code, tonic::Code::Ok as i32, "{message}");

    // Bytes that are not frames, and a frame over the limit: refused with
    // the reason, then closed.
    for (garbage, reason) in [
        (
            vec![0u8, 0, 0, 4, 0xff, 0xff, 0xff, 0xff],
            "undecodable frame",
        ),
        (
            ((MAX_FRAME_BYTES as u32) + 1).to_be_bytes().to_vec(),
            "over the",
        ),
    ] {
        let mut raw = TcpStream::connect(master.host_port()).await.unwrap();
        raw.write_all(&LINK_MAGIC).await.unwrap();
        raw.write_all(&garbage).await.unwrap();
        let (rd, _wr) = raw.into_split();
        let mut reader = FrameReader::new(rd);
        let next = tokio::time::timeout(WAIT, reader.next()).await.unwrap();
        match next {
            Ok(Some(v1::LinkFrame {
                frame: Some(Frame::Error(e)),
            })) => {
                assert_eq!(e.code, invalid);
                assert!(e.message.contains(reason), "{}", e.message);
            }
            other => panic!("garbage answered with {other:?}"),
        }
        let end = tokio::time::timeout(WAIT, reader.next()).await.unwrap();
        assert!(matches!(end, Ok(None) | Err(_)), "{end:?}");
    }

    // The master still serves HTTP and admits a real agent; the refused
    // registrations left nothing behind.
    let state = master.state().await.unwrap();
    assert_eq!(state["activated_agents"], 0, "{state}");
    let agent = SimAgent::start(&master.endpoint(), SimAgentConfig::default()).await;
    agent.agent_id().await;
    eventually("the agent active", WAIT, || async {
        let s = master.state().await.ok()?;
        (s["activated_agents"].as_u64()? == 1).then_some(())
    })
    .await
    .unwrap();
    agent.stop().await;
}

#[tokio::test]
async fn a_prefix_of_the_magic_is_http_and_a_split_magic_is_a_link() {
    let master = TestMaster::start().await;
    // "AGORA" then HTTP: not a link; HTTP answers it (with a 4xx).
    let mut raw = TcpStream::connect(master.host_port()).await.unwrap();
    raw.write_all(b"AGORA / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        WAIT,
        tokio::io::AsyncReadExt::read_to_end(&mut raw, &mut buf),
    )
    .await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 4"), "{text}");

    // The magic in two pieces, then a registration: a link.
    let raw = TcpStream::connect(master.host_port()).await.unwrap();
    let (rd, wr) = raw.into_split();
    let mut wr = wr;
    wr.write_all(&LINK_MAGIC[..3]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    wr.write_all(&LINK_MAGIC[3..]).await.unwrap();
    let mut writer = FrameWriter::new(wr);
    writer
        .send_now(&register(Some(agent_info())))
        .await
        .unwrap();
    let mut reader = FrameReader::new(rd);
    let answer = tokio::time::timeout(WAIT, reader.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            answer,
            Some(v1::LinkFrame {
                frame: Some(Frame::Registered(_))
            })
        ),
        "{answer:?}"
    );
}
