//! Commands relayed across nodes: an API node and two gateways (each with
//! its own bus connection, to a real `nats-server` on loopback, or one
//! in-process bus), devices split between the gateways. One message per
//! gateway, every device once, and an outcome for every device a gateway
//! could not hand the command to, did not answer for, or died with.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lectern_bus::{
    Bus, BusError, DeviceKey, Failure, Filter, LocalDevices, NodeId, Outcome, Presence,
    PresenceEvent, Relay, RelayConfig, Subject,
};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

mod common;
use common::{until, Nats};

const SCHOOL: i64 = 1;
const LEASE: Duration = Duration::from_millis(900);

/// A gateway's connections: the devices connected here, and what each got.
#[derive(Default)]
struct Connections {
    connected: Mutex<HashSet<i64>>,
    got: Mutex<Vec<(DeviceKey, i64, Vec<u8>)>>,
}

impl LocalDevices for Connections {
    fn deliver(&self, device: DeviceKey, command: i64, body: &[u8]) -> bool {
        if device.school != SCHOOL || !self.connected.lock().unwrap().contains(&device.device) {
            return false;
        }
        self.got
            .lock()
            .unwrap()
            .push((device, command, body.to_vec()));
        true
    }
}

struct Node {
    presence: Presence,
    relay: Relay,
    outcomes: UnboundedReceiver<Outcome>,
    events: UnboundedReceiver<PresenceEvent>,
    conns: Arc<Connections>,
}

impl Node {
    /// Starts a node holding `held` (in presence), of which `connected`
    /// are still connected.
    async fn start(
        bus: Bus,
        name: &str,
        held: &[i64],
        connected: &[i64],
        cfg: RelayConfig,
    ) -> Node {
        let conns = Arc::new(Connections::default());
        conns.connected.lock().unwrap().extend(connected);
        let (presence, events) = Presence::start(bus.clone(), node(name), LEASE)
            .await
            .unwrap();
        for &d in held {
            presence.hold(dev(d));
        }
        let (relay, outcomes) = Relay::start(bus, node(name), conns.clone(), cfg)
            .await
            .unwrap();
        Node {
            presence,
            relay,
            outcomes,
            events,
            conns,
        }
    }

    fn got(&self) -> Vec<(DeviceKey, i64, Vec<u8>)> {
        self.conns.got.lock().unwrap().clone()
    }

    /// Outcomes until none comes for 300 ms.
    async fn outcomes(&mut self) -> Vec<Outcome> {
        let mut all = Vec::new();
        while let Ok(Some(o)) = timeout(Duration::from_millis(300), self.outcomes.recv()).await {
            all.push(o);
        }
        all
    }

    /// Follows presence events into the relay until `want` is seen.
    async fn until_event(&mut self, want: impl Fn(&PresenceEvent) -> bool) {
        timeout(Duration::from_secs(10), async {
            loop {
                let e = self.events.recv().await.expect("presence stopped");
                self.relay.presence_event(&e);
                if want(&e) {
                    return;
                }
            }
        })
        .await
        .expect("no such presence event within 10 s");
    }
}

fn node(name: &str) -> NodeId {
    NodeId::new(name).unwrap()
}

fn dev(device: i64) -> DeviceKey {
    DeviceKey {
        school: SCHOOL,
        device,
    }
}

fn quick() -> RelayConfig {
    RelayConfig {
        receipt_timeout: Duration::from_secs(5),
        keep: Duration::from_secs(60),
    }
}

async fn bus(nats: Option<&Nats>, local: &Bus) -> Bus {
    match nats {
        Some(n) => n.bus().await,
        None => local.clone(),
    }
}

/// Every device of `got` once, with `command` and `body`.
fn once_each(got: &[(DeviceKey, i64, Vec<u8>)], command: i64, body: &[u8]) -> BTreeSet<i64> {
    let mut seen = BTreeSet::new();
    for (d, c, b) in got {
        assert_eq!((d.school, *c, &b[..]), (SCHOOL, command, body));
        assert!(seen.insert(d.device), "device {} got it twice", d.device);
    }
    seen
}

/// Counts the messages each gateway is sent.
async fn spy(bus: &Bus, nodes: &[&str]) -> Vec<lectern_bus::Subscription> {
    let mut subs = Vec::new();
    for n in nodes {
        let s = bus
            .subscribe(&Filter::exactly(&Subject::node_commands(&node(n))))
            .await
            .unwrap();
        subs.push(s);
    }
    bus.flush().await.unwrap();
    subs
}

async fn count(sub: &mut lectern_bus::Subscription) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = timeout(Duration::from_millis(300), sub.next()).await {
        n += 1;
    }
    n
}

async fn one_message_per_gateway(nats: Option<&Nats>) {
    let local = Bus::local();
    let gw1_devices: Vec<i64> = (1..=150).collect();
    let gw2_devices: Vec<i64> = (151..=300).collect();
    let gw1 = Node::start(
        bus(nats, &local).await,
        "gw-1",
        &gw1_devices,
        &gw1_devices,
        quick(),
    )
    .await;
    let gw2 = Node::start(
        bus(nats, &local).await,
        "gw-2",
        &gw2_devices,
        &gw2_devices,
        quick(),
    )
    .await;
    // The API node holds two devices itself, one of them gone.
    let mut api = Node::start(
        bus(nats, &local).await,
        "api-1",
        &[401, 402],
        &[401],
        quick(),
    )
    .await;
    let watch = bus(nats, &local).await;
    let mut spies = spy(&watch, &["gw-1", "gw-2"]).await;
    until("the gateways' devices are not seen", || {
        (1..=300).all(|d| api.presence.holder(dev(d)).is_some())
    })
    .await;

    let devices: Vec<i64> = (1..=300).chain([401, 402, 999]).collect();
    let routed = api
        .relay
        .send(&api.presence, SCHOOL, 77, b"{\"lock\":true}", &devices)
        .await
        .unwrap();
    assert_eq!(routed.here, vec![401]);
    assert_eq!(routed.not_connected, vec![402]);
    assert_eq!(routed.offline, vec![999]);
    assert_eq!(
        routed.relayed,
        vec![(node("gw-1"), 150), (node("gw-2"), 150)]
    );
    until("the gateways' devices did not all get it", || {
        gw1.got().len() == 150 && gw2.got().len() == 150
    })
    .await;
    let body = b"{\"lock\":true}";
    assert_eq!(
        once_each(&gw1.got(), 77, body),
        gw1_devices.iter().copied().collect()
    );
    assert_eq!(
        once_each(&gw2.got(), 77, body),
        gw2_devices.iter().copied().collect()
    );
    assert_eq!(once_each(&api.got(), 77, body), BTreeSet::from([401]));
    for s in &mut spies {
        assert_eq!(count(s).await, 1, "one message per gateway");
    }
    assert_eq!(
        api.outcomes().await,
        vec![],
        "every relayed device was there"
    );

    // The same device ids in another school are other devices: not sent.
    let routed = api
        .relay
        .send(&api.presence, SCHOOL + 1, 78, body, &[1, 151])
        .await
        .unwrap();
    assert_eq!(routed.offline, vec![1, 151]);
}

#[tokio::test]
async fn in_process_a_command_is_one_message_per_gateway() {
    one_message_per_gateway(None).await;
}

#[tokio::test]
async fn nats_a_command_is_one_message_per_gateway() {
    let nats = Nats::start(None);
    one_message_per_gateway(Some(&nats)).await;
}

/// Devices a gateway no longer holds fail as not connected; a gateway
/// that never answers fails its devices at the deadline; one killed fails
/// every device it was sent, after its lease.
async fn failures(nats: Option<&Nats>) {
    let local = Bus::local();
    let cfg = RelayConfig {
        receipt_timeout: Duration::from_secs(3),
        keep: Duration::from_secs(60),
    };
    // First, so that it hears the mute gateway's first beat (its next is in
    // 20 s).
    let mut api = Node::start(bus(nats, &local).await, "api-1", &[], &[], cfg.clone()).await;
    // gw-1 says it holds 1..=10, but 6..=10 have gone.
    let gw1_held: Vec<i64> = (1..=10).collect();
    let gw1 = Node::start(
        bus(nats, &local).await,
        "gw-1",
        &gw1_held,
        &[1, 2, 3, 4, 5],
        cfg,
    )
    .await;
    // gw-2 beats but runs no relay: it hears nothing, answers nothing.
    let (mute, _mute_events) = Presence::start(
        bus(nats, &local).await,
        node("gw-2"),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    for d in 11..=15 {
        mute.hold(dev(d));
    }
    until("the devices are not seen", || {
        (1..=15).all(|d| api.presence.holder(dev(d)).is_some())
    })
    .await;
    let devices: Vec<i64> = (1..=15).collect();
    api.relay
        .send(&api.presence, SCHOOL, 5, b"{}", &devices)
        .await
        .unwrap();
    let mut got: BTreeMap<i64, Failure> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while got.len() < 10 && tokio::time::Instant::now() < deadline {
        if let Ok(Some(o)) = timeout(Duration::from_millis(200), api.outcomes.recv()).await {
            assert_eq!((o.command, o.device.school), (5, SCHOOL));
            assert!(
                got.insert(o.device.device, o.failure).is_none(),
                "{o:?} twice"
            );
        }
    }
    let want: BTreeMap<i64, Failure> = (6..=10)
        .map(|d| (d, Failure::NotConnected))
        .chain((11..=15).map(|d| (d, Failure::NoReceipt)))
        .collect();
    assert_eq!(got, want);
    assert_eq!(gw1.got().len(), 5);

    // gw-1 is killed (dropped without a word) after taking command 6 and
    // before command 7 reaches it: every device sent it either fails as the
    // gateway lost, once its lease runs out (the store keeps a device's
    // answer that came before).
    api.relay
        .send(&api.presence, SCHOOL, 6, b"{}", &[1, 2])
        .await
        .unwrap();
    until("gw-1 did not take command 6", || gw1.got().len() == 7).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(gw1);
    api.relay
        .send(&api.presence, SCHOOL, 7, b"{}", &[3, 4])
        .await
        .unwrap();
    api.until_event(|e| matches!(e, PresenceEvent::Lost { node: n, .. } if *n == node("gw-1")))
        .await;
    let mut lost: Vec<(i64, i64, Failure)> = api
        .outcomes()
        .await
        .into_iter()
        .map(|o| (o.command, o.device.device, o.failure))
        .collect();
    lost.sort();
    let gone = Failure::GatewayLost;
    assert_eq!(
        lost,
        vec![
            (5, 1, gone),
            (5, 2, gone),
            (5, 3, gone),
            (5, 4, gone),
            (5, 5, gone),
            (6, 1, gone),
            (6, 2, gone),
            (7, 3, gone),
            (7, 4, gone),
        ],
        "each device sent to the lost gateway, none of the mute one's again"
    );
    assert_eq!(api.relay.remembered(), 1, "only the mute gateway's command");
}

#[tokio::test]
async fn in_process_failures_have_outcomes() {
    failures(None).await;
}

#[tokio::test]
async fn nats_failures_have_outcomes() {
    let nats = Nats::start(None);
    failures(Some(&nats)).await;
}

/// With NATS's largest message at 16 KiB, 10,000 devices on one gateway go
/// in parts, each device once; a body with no room for devices is refused
/// before anything is sent.
#[tokio::test]
async fn many_devices_go_in_parts() {
    let nats = Nats::start(Some(16 * 1024));
    let devices: Vec<i64> = (1..=10_000).collect();
    let cfg = RelayConfig {
        receipt_timeout: Duration::from_secs(1),
        keep: Duration::from_secs(60),
    };
    let gw = Node::start(nats.bus().await, "gw-1", &devices, &devices, cfg.clone()).await;
    let mut api = Node::start(nats.bus().await, "api-1", &[], &[], cfg).await;
    let watch = nats.bus().await;
    let mut spies = spy(&watch, &["gw-1"]).await;
    until("the devices are not seen", || {
        devices
            .iter()
            .all(|&d| api.presence.holder(dev(d)).is_some())
    })
    .await;
    let body = vec![b'x'; 4000];
    let routed = api
        .relay
        .send(&api.presence, SCHOOL, 9, &body, &devices)
        .await
        .unwrap();
    assert_eq!(routed.relayed, vec![(node("gw-1"), 10_000)]);
    until("not every device got it", || gw.got().len() == 10_000).await;
    assert_eq!(once_each(&gw.got(), 9, &body).len(), 10_000);
    let parts = count(&mut spies[0]).await;
    assert!((10..=64).contains(&parts), "{parts} parts");
    // Every part answered: nothing fails at the deadline.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(api.outcomes().await, vec![]);

    // A body leaving room for ten devices a message: 1,000 parts, over 64.
    let err = api
        .relay
        .send(
            &api.presence,
            SCHOOL,
            11,
            &vec![b'x'; 16 * 1024 - 420],
            &devices,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::TooLarge { .. }), "{err}");

    let err = api
        .relay
        .send(&api.presence, SCHOOL, 10, &vec![b'x'; 16 * 1024], &devices)
        .await
        .unwrap_err();
    assert!(matches!(err, BusError::TooLarge { .. }), "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        gw.got().len(),
        10_000,
        "nothing of the refused command sent"
    );
}

/// Messages that do not parse, claim to be from no node, are out of place,
/// or answer for commands and devices never sent are dropped, and the
/// relay goes on.
#[tokio::test]
async fn hostile_messages_change_nothing() {
    let nats = Nats::start(None);
    // Device 3 is held but no longer connected.
    let gw = Node::start(nats.bus().await, "gw-1", &[1, 2, 3], &[1, 2], quick()).await;
    let mut api = Node::start(nats.bus().await, "api-1", &[], &[], quick()).await;
    let evil = nats.bus().await;
    let to_gw = Subject::node_commands(&node("gw-1"));
    let header = |from: &str, part: u32, parts: u32| {
        let h = format!(
            r#"{{"from":"{from}","send":1,"school":1,"command":3,"part":{part},"parts":{parts},"devices":[1,2]}}"#
        );
        let mut f = (h.len() as u32).to_le_bytes().to_vec();
        f.extend_from_slice(h.as_bytes());
        f.extend_from_slice(b"{}");
        f
    };
    for payload in [
        Vec::new(),
        vec![0xff; 64],
        u32::MAX.to_le_bytes().to_vec(),
        header("a.>", 0, 1),
        header("api-1", 2, 2),
        header("api-1", 0, 1000),
    ] {
        evil.publish(&to_gw, payload).await.unwrap();
    }
    let to_api = Subject::node_receipts(&node("api-1"));
    for receipt in [
        &b"not json"[..],
        br#"{"node":"gw-1","send":1,"command":123,"part":0,"not_here":[1]}"#,
        br#"{"node":"a b","send":1,"command":11,"part":0,"not_here":[1]}"#,
    ] {
        evil.publish(&to_api, receipt.to_vec()).await.unwrap();
    }
    evil.flush().await.unwrap();
    until("the devices are not seen", || {
        api.presence.holder(dev(3)).is_some()
    })
    .await;
    api.relay
        .send(&api.presence, SCHOOL, 11, b"{}", &[1, 2])
        .await
        .unwrap();
    // A receipt for command 11 from gw-1, naming a device it was not sent
    // and a part it was not sent, before or after the real one.
    evil.publish(
        &to_api,
        br#"{"node":"gw-1","send":1,"command":11,"part":0,"not_here":[999]}"#.to_vec(),
    )
    .await
    .unwrap();
    evil.publish(
        &to_api,
        br#"{"node":"gw-1","send":1,"command":11,"part":5,"not_here":[1]}"#.to_vec(),
    )
    .await
    .unwrap();
    until("the devices did not get command 11", || gw.got().len() == 2).await;
    assert_eq!(once_each(&gw.got(), 11, b"{}"), BTreeSet::from([1, 2]));
    assert_eq!(api.outcomes().await, vec![]);
    // Both nodes' relays go on: the next command's receipt is heard.
    api.relay
        .send(&api.presence, SCHOOL, 12, b"{}", &[3])
        .await
        .unwrap();
    assert_eq!(
        api.outcomes().await,
        vec![Outcome {
            command: 12,
            device: dev(3),
            failure: Failure::NotConnected
        }]
    );
}

/// One command sent twice to one gateway (to more of its devices): each
/// send's receipt counts for its own devices.
#[tokio::test]
async fn a_command_sent_twice_to_one_gateway_keeps_both() {
    let local = Bus::local();
    let gw = Node::start(local.clone(), "gw-1", &[1, 2, 3, 4], &[1, 2, 3], quick()).await;
    let mut api = Node::start(local.clone(), "api-1", &[], &[], quick()).await;
    until("the devices are not seen", || {
        (1..=4).all(|d| api.presence.holder(dev(d)).is_some())
    })
    .await;
    for devices in [&[1, 2][..], &[3, 4]] {
        api.relay
            .send(&api.presence, SCHOOL, 20, b"{}", devices)
            .await
            .unwrap();
    }
    assert_eq!(
        api.outcomes().await,
        vec![Outcome {
            command: 20,
            device: dev(4),
            failure: Failure::NotConnected
        }]
    );
    assert_eq!(once_each(&gw.got(), 20, b"{}"), BTreeSet::from([1, 2, 3]));
    assert_eq!(api.relay.remembered(), 2);
}
