//! The bus and presence on both transports: in process, and a real
//! `nats-server` that each test starts on loopback (with a password, and
//! restarted where the test needs it).

use std::time::Duration;

use lectern_bus::{Bus, BusError, DeviceKey, Filter, NodeId, Presence, PresenceEvent, Subject};
use tokio::time::timeout;

mod common;
use common::{until, Nats, USER};

async fn next(sub: &mut lectern_bus::Subscription) -> lectern_bus::Message {
    timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("nothing heard within 10 s")
        .expect("the bus closed")
}

async fn nothing_more(sub: &mut lectern_bus::Subscription) {
    if let Ok(m) = timeout(Duration::from_millis(300), sub.next()).await {
        panic!("heard more: {m:?}");
    }
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn dev(device: i64) -> DeviceKey {
    DeviceKey { school: 1, device }
}

/// Two nodes' buses: one in-process bus shared, or two NATS connections.
async fn pair(nats: Option<&Nats>) -> (Bus, Bus) {
    match nats {
        None => {
            let b = Bus::local();
            (b.clone(), b)
        }
        Some(n) => (n.bus().await, n.bus().await),
    }
}

async fn messages_reach_whom_their_subject_is_for(nats: Option<&Nats>) {
    let (a, b) = pair(nats).await;
    let gw1 = node("gw-1");
    let mut commands = b
        .subscribe(&Filter::exactly(&Subject::node_commands(&gw1)))
        .await
        .unwrap();
    let mut policy = b.subscribe(&Filter::all_school_policy()).await.unwrap();
    // Heard back on its own connection, each subscription is in place on
    // the server (a flush only says the bytes left).
    b.publish(&Subject::node_commands(&gw1), "probe")
        .await
        .unwrap();
    b.publish(&Subject::school_policy(0), "probe")
        .await
        .unwrap();
    assert_eq!(&next(&mut commands).await.payload[..], b"probe");
    assert_eq!(&next(&mut policy).await.payload[..], b"probe");
    a.publish(&Subject::node_commands(&node("gw-2")), "not yours")
        .await
        .unwrap();
    a.publish(&Subject::node_commands(&gw1), "lock")
        .await
        .unwrap();
    a.publish(&Subject::school_policy(3), "school 3")
        .await
        .unwrap();
    a.publish(&Subject::device_frames(3, 9), "frame")
        .await
        .unwrap();
    let m = next(&mut commands).await;
    assert_eq!(
        (m.subject.as_str(), &m.payload[..]),
        ("lectern.node.gw-1.commands", &b"lock"[..])
    );
    let m = next(&mut policy).await;
    assert_eq!(&m.payload[..], b"school 3");
    nothing_more(&mut commands).await;
    nothing_more(&mut policy).await;

    // Over the bus's limit: refused, nothing sent; the next one goes.
    let max = a.max_payload();
    let err = a
        .publish(&Subject::node_commands(&gw1), vec![0u8; max + 1])
        .await
        .unwrap_err();
    assert!(
        matches!(err, BusError::TooLarge { size, .. } if size == max + 1),
        "{err}"
    );
    a.publish(&Subject::node_commands(&gw1), "after")
        .await
        .unwrap();
    assert_eq!(&next(&mut commands).await.payload[..], b"after");
}

#[tokio::test]
async fn in_process_messages_reach_whom_their_subject_is_for() {
    messages_reach_whom_their_subject_is_for(None).await;
}

#[tokio::test]
async fn nats_messages_reach_whom_their_subject_is_for() {
    let nats = Nats::start(None);
    messages_reach_whom_their_subject_is_for(Some(&nats)).await;
}

#[tokio::test]
async fn a_wrong_password_or_no_server_is_refused() {
    let nats = Nats::start(None);
    let mut cfg = nats.config();
    cfg.user = Some((USER.into(), "wrong".into()));
    assert!(matches!(
        Bus::connect(&cfg).await,
        Err(BusError::Connect(_))
    ));
    cfg.servers.clear();
    assert!(matches!(
        Bus::connect(&cfg).await,
        Err(BusError::Connect(_))
    ));
}

async fn wait_event(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<PresenceEvent>,
    want: impl Fn(&PresenceEvent) -> bool,
) -> PresenceEvent {
    timeout(Duration::from_secs(10), async {
        loop {
            let e = rx.recv().await.expect("presence stopped");
            if want(&e) {
                return e;
            }
        }
    })
    .await
    .expect("no such presence event within 10 s")
}

const LEASE: Duration = Duration::from_millis(900);

async fn presence_follows_devices_and_lost_nodes(nats: Option<&Nats>) {
    let (bus_a, bus_b) = pair(nats).await;
    let (a, _a_events) = Presence::start(bus_a, node("gw-a"), LEASE).await.unwrap();
    let (b, mut events) = Presence::start(bus_b, node("gw-b"), LEASE).await.unwrap();
    a.hold(dev(1));
    a.hold(dev(2));
    b.hold(dev(3));
    wait_event(&mut events, |e| *e == PresenceEvent::Joined(node("gw-a"))).await;
    until("gw-b never saw gw-a's devices", || {
        b.holder(dev(1)) == Some(node("gw-a")) && b.holder(dev(2)) == Some(node("gw-a"))
    })
    .await;
    until("gw-a never saw gw-b's device", || {
        a.holder(dev(3)) == Some(node("gw-b"))
    })
    .await;
    assert_eq!(b.holder(dev(3)), Some(node("gw-b")), "its own");
    assert_eq!(b.nodes(), [node("gw-a"), node("gw-b")]);

    // A device moves: released at once, long before a lease.
    a.release(dev(2));
    until("the release was not told", || b.holder(dev(2)).is_none()).await;
    assert_eq!(b.held_by(&node("gw-a")), [dev(1)]);

    // gw-a stops beating without a word (killed): after its lease, lost
    // with what it held.
    let started = tokio::time::Instant::now();
    drop(a);
    let lost = wait_event(&mut events, |e| matches!(e, PresenceEvent::Lost { .. })).await;
    assert_eq!(
        lost,
        PresenceEvent::Lost {
            node: node("gw-a"),
            devices: vec![dev(1)]
        }
    );
    assert!(started.elapsed() >= LEASE / 2, "lost too soon");
    assert_eq!(b.holder(dev(1)), None);
    assert_eq!(b.nodes(), [node("gw-b")]);
}

#[tokio::test]
async fn in_process_presence_follows_devices_and_lost_nodes() {
    presence_follows_devices_and_lost_nodes(None).await;
}

#[tokio::test]
async fn nats_presence_follows_devices_and_lost_nodes() {
    let nats = Nats::start(None);
    presence_follows_devices_and_lost_nodes(Some(&nats)).await;
}

/// A node stopped on purpose is gone at once; one restarted under the same
/// name loses the old process's devices at its first beat.
#[tokio::test]
async fn a_node_that_leaves_or_restarts_is_told_at_once() {
    let nats = Nats::start(None);
    let (watcher, mut events) = Presence::start(nats.bus().await, node("api-1"), LEASE)
        .await
        .unwrap();
    let (gw, _) = Presence::start(nats.bus().await, node("gw-1"), Duration::from_secs(60))
        .await
        .unwrap();
    gw.hold(dev(1));
    until("gw-1's device not seen", || {
        watcher.holder(dev(1)).is_some()
    })
    .await;
    drop(gw);
    // The same name, a new process: holding another device.
    let (gw, _) = Presence::start(nats.bus().await, node("gw-1"), Duration::from_secs(60))
        .await
        .unwrap();
    gw.hold(dev(5));
    let lost = wait_event(&mut events, |e| matches!(e, PresenceEvent::Lost { .. })).await;
    assert_eq!(
        lost,
        PresenceEvent::Lost {
            node: node("gw-1"),
            devices: vec![dev(1)]
        },
        "lost at the new process's first beat, not after a minute's lease"
    );
    until("the new process's device not seen", || {
        watcher.holder(dev(5)) == Some(node("gw-1"))
    })
    .await;
    gw.leave().await.unwrap();
    let left = wait_event(&mut events, |e| matches!(e, PresenceEvent::Left { .. })).await;
    assert_eq!(
        left,
        PresenceEvent::Left {
            node: node("gw-1"),
            devices: vec![dev(5)]
        }
    );
    assert_eq!(watcher.holder(dev(5)), None);
}

/// More devices than one message carries (a server with 4 KiB messages):
/// the beat goes in parts and all of them are known.
#[tokio::test]
async fn many_devices_are_told_in_parts() {
    let nats = Nats::start(Some(4096));
    let (gw, _) = Presence::start(nats.bus().await, node("gw-1"), LEASE)
        .await
        .unwrap();
    let (watcher, _) = Presence::start(nats.bus().await, node("api-1"), LEASE)
        .await
        .unwrap();
    for d in 0..1000 {
        gw.hold(dev(d));
    }
    until("not every device was told", || {
        watcher.held_by(&node("gw-1")).len() == 1000
    })
    .await;
    assert_eq!(watcher.holder(dev(999)), Some(node("gw-1")));
}

/// NATS killed and started again: the nodes reconnect by themselves, their
/// subscriptions with them, and presence is whole again.
#[tokio::test]
async fn the_nodes_reconnect_when_nats_comes_back() {
    let mut nats = Nats::start(None);
    let (bus_a, bus_b) = pair(Some(&nats)).await;
    let gw1 = node("gw-1");
    let mut commands = bus_b
        .subscribe(&Filter::exactly(&Subject::node_commands(&gw1)))
        .await
        .unwrap();
    let (a, _) = Presence::start(bus_a.clone(), node("gw-a"), LEASE)
        .await
        .unwrap();
    let (b, _) = Presence::start(bus_b.clone(), node("gw-b"), LEASE)
        .await
        .unwrap();
    a.hold(dev(1));
    until("not seen before the restart", || b.holder(dev(1)).is_some()).await;

    nats.restart(Duration::from_millis(300)).await;
    // The subscription came back with the connection.
    until_delivered(&bus_a, &gw1, &mut commands).await;
    until("presence did not come back", || {
        b.holder(dev(1)) == Some(node("gw-a"))
    })
    .await;
}

/// Publishes until the subscriber hears one (the clients reconnect with
/// backoff, so the first ones may go before they are back).
async fn until_delivered(bus: &Bus, to: &NodeId, sub: &mut lectern_bus::Subscription) {
    for i in 0..100 {
        let _ = bus
            .publish(&Subject::node_commands(to), format!("after restart {i}"))
            .await;
        if let Ok(Some(m)) = timeout(Duration::from_millis(200), sub.next()).await {
            assert!(m.payload.starts_with(b"after restart"));
            return;
        }
    }
    panic!("nothing heard after NATS came back");
}

/// Beats as a node's process sends them, written by hand.
async fn beat(bus: &Bus, started: u64, seq: u64, part: u32, parts: u32, devices: &[i64]) {
    let devices: Vec<serde_json::Value> = devices
        .iter()
        .map(|d| serde_json::json!({"school": 1, "device": d}))
        .collect();
    let b = serde_json::json!({
        "node": "gw-1", "started": started, "epoch": 7, "seq": seq, "part": part,
        "parts": parts, "lease_ms": 60000, "leaving": false, "devices": devices,
    });
    bus.publish(&Subject::presence(&node("gw-1")), b.to_string())
        .await
        .unwrap();
}

/// A late beat of a process that has since restarted is not taken for a
/// restart of the new one, and a beat in parts counts each part once.
#[tokio::test]
async fn late_beats_and_repeated_parts_change_nothing() {
    let bus = Bus::local();
    let (watcher, mut events) = Presence::start(bus.clone(), node("api-1"), LEASE)
        .await
        .unwrap();
    beat(&bus, 2000, 1, 0, 1, &[5]).await;
    until("the beat not heard", || watcher.holder(dev(5)).is_some()).await;
    // The old process (started earlier), heard late.
    beat(&bus, 1000, 50, 0, 1, &[1]).await;
    // Two parts of the next beat, the first twice.
    beat(&bus, 2000, 2, 0, 2, &[7]).await;
    beat(&bus, 2000, 2, 0, 2, &[7]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(watcher.held_by(&node("gw-1")), [dev(5)], "not whole yet");
    beat(&bus, 2000, 2, 1, 2, &[8]).await;
    until("the whole beat not taken", || {
        watcher.held_by(&node("gw-1")) == [dev(7), dev(8)]
    })
    .await;
    assert_eq!(watcher.holder(dev(1)), None);
    assert_eq!(
        events.recv().await,
        Some(PresenceEvent::Joined(node("gw-1")))
    );
    assert!(events.try_recv().is_err(), "no Lost for the late beat");
}
